"""The Library tab: ingest uploaded files or URLs, list and search stored articles, read, delete."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import gradio as gr

from index.pipeline import FileResult, IngestReport
from qa.errors import QAError
from ui.render import document_html

FILE_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".json", ".jsonl", ".gz"]
RESULT_HEADERS = ["file", "status", "id", "chunks", "message"]
DOCUMENT_HEADERS = ["id", "title", "source", "date", "chunks"]


def ingest_inputs(files: list[str] | None, urls: str | None) -> list[str]:
    """Uploaded files and http(s) URLs only: a path typed here must never read the server's disk."""
    lines = [line.strip() for line in (urls or "").splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith(("http://", "https://"))]
    if bad:
        raise gr.Error(f"not an http(s) URL: {bad[0]}; upload files instead of typing paths")
    return [*(files or []), *lines]


def ingest_stream(service, paths: list[str]):
    """FileResults as each article finishes, then the IngestReport (or the QAError that stopped it)."""
    results: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            results.put(service.ingest(paths, results.put))
        except Exception as exc:  # handed to the UI's thread, which shows or re-raises it
            results.put(exc)

    threading.Thread(target=work, name="ui-ingest", daemon=True).start()
    while True:
        item = results.get()
        yield item
        if not isinstance(item, FileResult):
            return


def _row(result: FileResult) -> list:
    shown = result.source if result.source.startswith(("http://", "https://")) else Path(result.source).name
    return [shown, result.status, result.doc_id or "", result.chunks, result.message]


def _summary(report: IngestReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("added", "updated", "unchanged", "failed"))
    return f"**Done:** {counts}; {report.chunks} chunks written."


def document_rows(service, search: str = "") -> list[list]:
    needle = (search or "").strip().lower()
    rows = []
    for r in service.documents():
        row = [r["id"], r.get("title") or "", r.get("source") or "", r.get("published") or "undated", r["chunks"]]
        if not needle or any(needle in str(cell).lower() for cell in row[:3]):
            rows.append(row)
    return rows


def library_tab(service) -> tuple[gr.Dataframe, gr.Dropdown, gr.Textbox]:
    """Builds the tab; returns the article table, the article picker and the search box (refreshed on load)."""
    with gr.Row():
        files = gr.File(label="Articles: txt, md, html, pdf, json, jsonl, jsonl.gz", file_count="multiple",
                        file_types=FILE_TYPES, elem_id="upload")
        urls = gr.Textbox(label="Or article URLs, one a line", lines=4, placeholder="https://…", elem_id="urls")
    ingest = gr.Button("Ingest", variant="primary", elem_id="ingest")
    summary = gr.Markdown(elem_id="ingest-summary")
    results = gr.Dataframe(headers=RESULT_HEADERS, value=[], interactive=False, wrap=True, elem_id="ingest-results")
    gr.Markdown("### Stored articles")
    search = gr.Textbox(label="Search titles, sources and ids", elem_id="doc-search")
    table = gr.Dataframe(headers=DOCUMENT_HEADERS, value=[], interactive=False, wrap=True, max_height=320, elem_id="documents",
                         column_widths=["24%", "44%", "14%", "11%", "7%"])
    with gr.Row():
        picked = gr.Dropdown([], label="Article", scale=4, elem_id="doc-pick")
        read = gr.Button("Open", scale=1, elem_id="doc-open")
        delete = gr.Button("Delete", variant="stop", scale=1, elem_id="doc-delete")
    message = gr.Markdown(elem_id="library-message")
    article = gr.HTML(elem_id="article")

    def run_ingest(files, urls, search, progress=gr.Progress()):
        paths = ingest_inputs(files, urls)
        if not paths:
            raise gr.Error("choose files to upload or paste URLs first")
        rows = []
        progress((0, len(paths)), desc="ingesting")
        for item in ingest_stream(service, paths):
            if isinstance(item, FileResult):
                rows.append(_row(item))
                progress((len(rows), max(len(paths), len(rows))), desc=f"{len(rows)} articles done")
                yield f"Ingesting… {len(rows)} done", rows, gr.skip(), gr.skip()
            elif isinstance(item, IngestReport):
                yield _summary(item), rows, document_rows(service, search), article_picker(service)
            elif isinstance(item, QAError):  # e.g. another writer holds the data dir's lock
                yield f"**Not ingested:** {item}", rows, gr.skip(), gr.skip()
                raise gr.Error(str(item))
            else:
                raise item

    def open_article(doc_id):
        if not doc_id:
            return gr.skip(), "Pick an article first."
        try:
            return document_html(service.document(doc_id)), ""
        except QAError as exc:
            return "", f"**Error:** {exc}"

    def delete_article(doc_id, search):
        if not doc_id:  # nothing picked, or the confirmation was cancelled
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            service.delete(doc_id)
        except QAError as exc:
            return f"**Not deleted:** {exc}", gr.skip(), gr.skip(), gr.skip()
        return f"Deleted `{doc_id}`.", "", document_rows(service, search), article_picker(service)

    def pick_row(evt: gr.SelectData):
        doc_id = evt.row_value[0]  # the id column of the clicked row
        return gr.update(value=doc_id), *open_article(doc_id)

    ingest.click(run_ingest, [files, urls, search], [summary, results, table, picked], api_name="ingest", concurrency_limit=1)
    search.change(lambda s: document_rows(service, s), search, table, api_name=False, queue=False)
    read.click(open_article, picked, [article, message], api_name="document")
    picked.input(open_article, picked, [article, message], api_name=False)
    table.select(pick_row, None, [picked, article, message], api_name=False)
    delete.click(delete_article, [picked, search], [message, article, table, picked], api_name="delete",
                 js="(id, search) => [id && confirm('Delete ' + id + ' and all its chunks?') ? id : null, search]")
    return table, picked, search


def article_picker(service):
    choices = [(f"{r.get('title') or r['id']} ({r['id']})", r["id"]) for r in service.documents()]
    return gr.update(choices=choices, value=None)
