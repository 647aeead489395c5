"""The `qa` command. Heavy libraries are imported inside commands, so `qa --help` stays fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape  # file names, ids and messages may hold [tags]
from rich.table import Table
from rich.text import Text

from eval.cli import eval_app
from qa.errors import QAError
from qa.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Question answering over news articles, with citations.")
docs_app = typer.Typer(no_args_is_help=True, help="The stored articles.")
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")
index_app = typer.Typer(no_args_is_help=True, help="The index: check it against the ledger, repair it.")
app.add_typer(index_app, name="index")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # one error, one line, whatever the width


def _service():
    from qa.service import QAService

    return QAService(Settings())


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(1)


def _emit_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files (.txt .md .html .json .jsonl[.gz] .pdf), folders, or http(s) URLs.")],
    prune: Annotated[bool, typer.Option("--prune", help="Remove stored articles whose files are gone from these folders.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
):
    """Add articles to the index; unchanged ones are skipped, changed ones replaced."""
    from qa.ingest_view import IngestView

    service = _service()
    with IngestView(err) as view:
        report = service.ingest(paths, view.on_result, prune=prune)
    summary = {**report.to_dict(), "seconds": view.seconds}
    if as_json:
        _emit_json(summary)
    else:
        out.print(view.table(report))
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
        err.print(f"[red]error:[/red] {escape(problem)}", highlight=False)
        _emit_json({"id": item_id, "error": problem})
    if failed:
        raise typer.Exit(1)


TopK = Annotated[Optional[int], typer.Option("--top-k", min=1, max=100, help="Passages to retrieve.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Batch = Annotated[Optional[Path], typer.Option("--batch", help="JSONL file, one {\"id\", \"question\"} a line.")]
Since = Annotated[Optional[str], typer.Option("--since", help="Only articles published on or after this date (YYYY-MM-DD).")]
Until = Annotated[Optional[str], typer.Option("--until", help="Only articles published on or before this date (YYYY-MM-DD).")]
Source = Annotated[Optional[list[str]], typer.Option("--source", help="Only articles from this source (a domain); repeatable.")]
Doc = Annotated[Optional[list[str]], typer.Option("--doc", help="Only these article ids; repeatable.")]
AsOf = Annotated[Optional[str], typer.Option("--as-of", help="The date the question is asked on (default today): 'last week' is read from it.")]


def _scope(since, until, source, doc, as_of):
    """(as-of date, Filters) from the command-line options, with errors that name the option."""
    import datetime as dt

    from qa.retrieve import Filters

    def day(value, option):
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise QAError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None

    filters = Filters(day(since, "--since"), day(until, "--until"), tuple(source or ()), tuple(doc or ()))
    return day(as_of, "--as-of"), filters


@app.command()
def ask(
    question: Annotated[Optional[str], typer.Argument()] = None,
    top_k: TopK = None,
    as_json: AsJson = False,
    batch: Batch = None,
    stream: Stream = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    doc: Doc = None,
    as_of: AsOf = None,
):
    """Answer a question from the stored articles, with numbered citations."""
    from qa.answer_view import AnswerView

    day, filters = _scope(since, until, source, doc, as_of)
    service = _service()
    if batch:
        _run_batch(batch, lambda q: service.ask(q, top_k, day, filters=filters).to_dict())
        return
    if as_json:
        _emit_json(service.ask(question or "", top_k, day, filters=filters).to_dict())
        return
    view = AnswerView(out, err)
    if _streaming(stream):
        view.stream(service.ask_stream(question or "", top_k, day, filters=filters))
    else:
        view.show(service.ask(question or "", top_k, day, filters=filters))


Stream = Annotated[Optional[bool], typer.Option("--stream/--no-stream", help="Print the answer as it is written (default: on a terminal).")]


def _streaming(stream: bool | None) -> bool:
    return sys.stdout.isatty() if stream is None else stream


@app.command()
def chat(top_k: TopK = None, as_json: AsJson = False, stream: Stream = None):
    """A conversation: each follow-up is rewritten to stand alone before retrieval. Ends on EOF, `exit` or an empty line."""
    from qa.answer_view import AnswerView
    from qa.conversation import Turn

    service, view, history = _service(), AnswerView(out, err), []
    while True:
        if sys.stdin.isatty():
            err.print("[bold]?[/bold] ", end="")
        line = sys.stdin.readline()
        if not line or line.strip() in ("exit", "quit") or (not line.strip() and sys.stdin.isatty()):
            return
        if not line.strip():
            continue
        try:
            if as_json:
                answer = service.ask(line, top_k, history=history)
                _emit_json(answer.to_dict())
            elif _streaming(stream):
                answer = view.stream(service.ask_stream(line, top_k, history=history))
            else:
                answer = service.ask(line, top_k, history=history)
                view.show(answer)
        except QAError as exc:  # one bad turn does not end the conversation
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            continue
        history.append(Turn(answer.standalone_question or answer.question, answer.answer))
        if not as_json:
            out.print()


@app.command()
def search(
    question: Annotated[Optional[str], typer.Argument()] = None,
    top_k: TopK = None,
    as_json: AsJson = False,
    batch: Batch = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    doc: Doc = None,
    as_of: AsOf = None,
):
    """Retrieve passages only, best first, each saying why it was found (with --json)."""
    day, filters = _scope(since, until, source, doc, as_of)
    service = _service()
    if batch:
        _run_batch(batch, lambda q: service.retrieve(q, top_k, day, filters).to_dict())
        return
    retrieval = service.retrieve(question or "", top_k, day, filters)
    if as_json:
        _emit_json(retrieval.to_dict())
        return
    if retrieval.date_range:
        r = retrieval.date_range
        err.print(f"dates: {r.start} to {r.end} ({r.mode}, from “{r.label}”; as of {retrieval.as_of})", highlight=False, markup=False)
    passages = retrieval.passages
    for rank, p in enumerate(passages, start=1):
        out.print(f"{rank}. {p.score:.3f}  {p.title} ({p.doc_id} [{p.start}:{p.end}])", style="bold", highlight=False, markup=False)
        out.print(f"   {p.text[:300]}", highlight=False, markup=False)


@docs_app.command("list")  # 50 by default: rich lays a table out at ~1.5 ms a row (3,773 articles: 5 s)
def docs_list(as_json: AsJson = False, limit: Annotated[int, typer.Option(
        min=0, help="Show the newest N (0: all); --json lists all.")] = 50):
    """List stored articles, newest first."""
    records = _service().documents()
    if as_json:
        _emit_json([{k: r[k] for k in ("id", "title", "source", "published", "url", "chunks")} for r in records])
        return
    shown = records[:limit] if limit else records
    table = Table("id", "title", "source", "published", "chunks")
    for r in shown:  # Text, not str: rich would read "[/b]" or "[link=…]" in a title as markup
        table.add_row(*map(Text, (r["id"], r["title"], r["source"] or "", r["published"] or "undated", str(r["chunks"]))))
    out.print(table)
    if len(shown) < len(records):
        out.print(f"… and {len(records) - len(shown)} older: --limit 0 lists all {len(records)}, --json too",
                  style="dim", highlight=False, markup=False)


@docs_app.command("delete")
def docs_delete(doc_id: str):
    """Delete a stored article and all its chunks."""
    _service().delete(doc_id)
    out.print(f"deleted {doc_id}", highlight=False, markup=False)


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


def _show_check(report) -> None:
    out.print(f"ledger   {report.ledger_file}: {report.articles} articles, {report.chunks} chunks", highlight=False, markup=False)
    out.print(f"vectors  {report.store}: {report.stored} chunks", highlight=False, markup=False)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    for problem in report.problems:
        out.print(f"✗ {problem}", style="red", highlight=False, markup=False)
    if report.ok:
        out.print("✓ the vector store and the keyword index agree with the ledger", style="green", highlight=False)


@index_app.command("check")
def index_check(as_json: AsJson = False):
    """Verify Chroma and the keyword index against the ledger; exit 1 when anything disagrees."""
    report = _service().check_index()
    if as_json:
        _emit_json(report.to_dict())
    else:
        _show_check(report)
        if not report.ok:
            err.print("run `qa index repair` to fix these", highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


@index_app.command("repair")
def index_repair(as_json: AsJson = False):
    """Delete orphan chunks, embed missing ones again, rebuild a damaged Chroma folder or ledger."""
    report = _service().repair_index(None if as_json else lambda step: err.print(f"· {step}", highlight=False, markup=False))
    if as_json:
        _emit_json(report.to_dict())
    else:
        if not report.actions:
            err.print("nothing to repair", highlight=False, markup=False)
        if report.lost:
            err.print(f"{len(report.lost)} articles could not be restored; ingest them again: {', '.join(report.lost)}",
                      highlight=False, markup=False)
        _show_check(report.after)
    if not report.after.ok:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to bind (default QA_HOST, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default QA_PORT, 7860).")] = None,
):
    """Serve the browser UI, the JSON API (/api) and the OpenAI-compatible /v1."""
    from ui.app import launch  # noqa: E402

    settings = Settings()
    launch(settings, host or settings.host, port or settings.port)


def main() -> None:
    """Entry point: QAError becomes a one-line message; nothing else leaks a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the exit code of typer.Exit in this mode
        sys.exit(code if isinstance(code, int) else 0)
    except QAError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
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
        err.print(f"[red]error:[/red] unexpected failure: {escape(repr(exc))} (set QA_DEBUG=1 to see the traceback)", highlight=False)
        sys.exit(1)
