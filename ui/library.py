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
SKIP_VIEW = (gr.skip(), gr.skip(), gr.skip())  # library_view's outputs left as they are
RESULT_HEADERS = ["file", "status", "id", "chunks", "message"]
DOCUMENT_HEADERS = ["id", "title", "source", "date", "chunks"]
# Rows in the article table and choices in its picker. All 3,773 RealTime QA articles took the
# tab 3-4 s to show and made every page load send them; a search reaches the others.
SHOWN = 100


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


def library_view(service, search: str = "") -> tuple[list[list], dict, str]:
    """The table's rows, the picker's choices and the line under the table: the newest SHOWN
    articles whose title, source or id holds the search (case-insensitive)."""
    needle = (search or "").strip().lower()
    found = [r for r in service.documents()  # newest first
             if not needle or any(needle in (r.get(key) or "").lower() for key in ("id", "title", "source"))]
    shown = found[:SHOWN]
    rows = [[r["id"], r.get("title") or "", r.get("source") or "", r.get("published") or "undated", r["chunks"]] for r in shown]
    choices = [(f"{r.get('title') or r['id']} ({r['id']})", r["id"]) for r in shown]
    note = "" if len(found) <= SHOWN else (
        f"The newest {SHOWN} of {len(found):,} {'matching ' if needle else ''}articles: search titles, sources or ids for the others.")
    return rows, gr.update(choices=choices, value=None), note


def library_tab(service) -> tuple[gr.Textbox, list]:
    """Builds the tab; returns the search box and what library_view fills (refreshed when the tab opens)."""
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
    shown = gr.Markdown(elem_id="documents-shown")
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
                yield f"Ingesting… {len(rows)} done", rows, *SKIP_VIEW
            elif isinstance(item, IngestReport):
                yield _summary(item), rows, *library_view(service, search)
            elif isinstance(item, QAError):  # e.g. another writer holds the data dir's lock
                yield f"**Not ingested:** {item}", rows, *SKIP_VIEW
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
            return gr.skip(), gr.skip(), *SKIP_VIEW
        try:
            service.delete(doc_id)
        except QAError as exc:
            return f"**Not deleted:** {exc}", gr.skip(), *SKIP_VIEW
        return f"Deleted `{doc_id}`.", "", *library_view(service, search)

    def pick_row(evt: gr.SelectData):
        doc_id = evt.row_value[0]  # the id column of the clicked row
        return gr.update(value=doc_id), *open_article(doc_id)

    view = [table, picked, shown]  # library_view's three
    ingest.click(run_ingest, [files, urls, search], [summary, results, *view], api_name="ingest", concurrency_limit=1)
    search.change(lambda s: library_view(service, s), search, view, api_name=False, queue=False)
    read.click(open_article, picked, [article, message], api_name="document")
    picked.input(open_article, picked, [article, message], api_name=False)
    table.select(pick_row, None, [picked, article, message], api_name=False)
    delete.click(delete_article, [picked, search], [message, article, *view], api_name="delete",
                 js="(id, search) => [id && confirm('Delete ' + id + ' and all its chunks?') ? id : null, search]")
    return search, view
