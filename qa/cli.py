"""The `qa` command. Heavy libraries are imported inside commands, so `qa --help` stays fast."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from qa.errors import QAError
from qa.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Question answering over news articles, with citations.")
docs_app = typer.Typer(no_args_is_help=True, help="The stored articles.")
app.add_typer(docs_app, name="docs")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # one error, one line, whatever the width


def _service():
    from qa.service import QAService

    return QAService(Settings())


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(1)


def _emit_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files (.txt, .md, .jsonl, .jsonl.gz) or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
):
    """Add articles to the index; unchanged ones are skipped."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    service = _service()
    began = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("loading the model…")
        tally = {"docs": 0, "chunks": 0}

        def on_result(result):
            tally["docs"] += 1
            tally["chunks"] += result.chunks if result.status in ("added", "updated") else 0
            rate = tally["docs"] / max(time.perf_counter() - began, 1e-6)
            bar.update(task, description=f"{tally['docs']} documents, {tally['chunks']} chunks ({rate:.1f} docs/s)")
            if result.status == "failed":
                bar.console.print(f"[red]failed:[/red] {result.source}: {result.message}", highlight=False)

        report = service.ingest(paths, on_result)
    summary = report.to_dict()
    summary["seconds"] = round(time.perf_counter() - began, 2)
    if as_json:
        _emit_json(summary)
    else:
        table = Table("added", "updated", "unchanged", "failed", "chunks", "seconds")
        table.add_row(*(str(summary[k]) for k in ("added", "updated", "unchanged", "failed", "chunks", "seconds")))
        out.print(table)
    if report.count("failed"):
        raise typer.Exit(1)


def _read_batch(path: Path):
    """(id, question or None, error or None) for each non-empty line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"{path}: cannot read the batch file ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            question = record["question"]
            yield record.get("id", number), question, None
        except (json.JSONDecodeError, KeyError, TypeError):
            yield number, None, f"{path}:{number}: expected a JSON object with a 'question' field"


def _run_batch(path: Path, run) -> None:
    failed = False
    for item_id, question, problem in _read_batch(path):
        if problem is None:
            try:
                _emit_json({"id": item_id, **run(question)})
                continue
            except QAError as exc:
                problem = str(exc)
        failed = True
        err.print(f"[red]error:[/red] {problem}", highlight=False)
        _emit_json({"id": item_id, "error": problem})
    if failed:
        raise typer.Exit(1)


TopK = Annotated[Optional[int], typer.Option("--top-k", min=1, max=100, help="Passages to retrieve.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Batch = Annotated[Optional[Path], typer.Option("--batch", help="JSONL file, one {\"id\", \"question\"} a line.")]


@app.command()
def ask(
    question: Annotated[Optional[str], typer.Argument()] = None,
    top_k: TopK = None,
    as_json: AsJson = False,
    batch: Batch = None,
):
    """Answer a question from the stored articles, with numbered citations."""
    service = _service()
    if batch:
        _run_batch(batch, lambda q: service.ask(q, top_k).to_dict())
        return
    answer = service.ask(question or "", top_k)
    if as_json:
        _emit_json(answer.to_dict())
        return
    out.print(answer.answer, highlight=False, markup=False)
    if answer.citations:
        out.print("\nSources:", style="bold")
    for c in answer.citations:
        out.print(f"[{c.n}] {c.title} — {c.source or 'unknown source'}, {c.published or 'undated'}  ({c.doc_id})", highlight=False, markup=False)
        out.print(f"    “{c.quote}”", highlight=False, markup=False, style="dim")


@app.command()
def search(
    question: Annotated[Optional[str], typer.Argument()] = None,
    top_k: TopK = None,
    as_json: AsJson = False,
    batch: Batch = None,
):
    """Retrieve passages only, best first."""
    from dataclasses import asdict

    service = _service()
    if batch:
        _run_batch(batch, lambda q: {"question": q, "passages": [asdict(p) for p in service.search(q, top_k)]})
        return
    passages = service.search(question or "", top_k)
    if as_json:
        _emit_json({"question": question, "passages": [asdict(p) for p in passages]})
        return
    for rank, p in enumerate(passages, start=1):
        out.print(f"{rank}. {p.score:.3f}  {p.title} ({p.doc_id} [{p.start}:{p.end}])", style="bold", highlight=False, markup=False)
        out.print(f"   {p.text[:300]}", highlight=False, markup=False)


@docs_app.command("list")
def docs_list(as_json: AsJson = False):
    """List stored articles."""
    records = _service().documents()
    if as_json:
        _emit_json([{k: r[k] for k in ("id", "title", "source", "published", "url", "chunks")} for r in records])
        return
    table = Table("id", "title", "source", "published", "chunks")
    for r in records:
        table.add_row(r["id"], r["title"], r["source"] or "", r["published"] or "undated", str(r["chunks"]))
    out.print(table)


@docs_app.command("show")
def docs_show(doc_id: str, as_json: AsJson = False):
    """Show one article's metadata and full text."""
    record = _service().document(doc_id)
    if as_json:
        _emit_json(record)
        return
    out.print(record["title"], style="bold", highlight=False, markup=False)
    meta = f"{record['source'] or 'unknown source'} · {record['published'] or 'undated'} · {record['url'] or ''}"
    out.print(meta, style="dim", highlight=False, markup=False)
    out.print("\n" + record["text"], highlight=False, markup=False)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to bind (default QA_HOST, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default QA_PORT, 7860).")] = None,
):
    """Serve the browser UI."""
    from ui.app import launch  # noqa: E402

    settings = Settings()
    launch(settings, host or settings.host, port or settings.port)


def main() -> None:
    """Entry point: QAError becomes a one-line message; nothing else leaks a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the exit code of typer.Exit in this mode
        sys.exit(code if isinstance(code, int) else 0)
    except QAError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence for users; QA_DEBUG shows the traceback
        if os.environ.get("QA_DEBUG"):
            raise
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        err.print(f"[red]error:[/red] unexpected failure: {exc!r} (set QA_DEBUG=1 to see the traceback)", highlight=False)
        sys.exit(1)
