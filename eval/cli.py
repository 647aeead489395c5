"""`qa eval`: run an evaluation set and save the run with its reports; compare two runs.

    qa eval SET.jsonl [--corpus PATH] [--split dev] [--backend NAME] [--out DIR] [--json]
    qa eval compare RUN_A RUN_B
Heavy libraries load inside the commands, so `qa --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from qa.errors import ConfigError
from qa.settings import Settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _RunByDefault(TyperGroup):
    """`qa eval SET.jsonl ...` means `qa eval run SET.jsonl ...`; `qa eval compare A B` is itself."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, help="Evaluate on a question set; compare runs.")


class ExportFormat(str, Enum):
    ragas = "ragas"


Thresholds = Annotated[
    Optional[list[str]],
    typer.Option("--fail-under", help="METRIC=VALUE: exit 1 when the metric is below it (repeatable)."),
]
Ceilings = Annotated[
    Optional[list[str]],
    typer.Option("--fail-over", help="METRIC=VALUE: exit 1 when a lower-is-better metric is above it (repeatable)."),
]


def settings_for(backend: str | None) -> Settings:
    """The settings with QA_LLM set to `backend`; an unknown name says which ones exist."""
    from pydantic import ValidationError

    if backend is None:
        return Settings()
    try:
        return Settings(llm=backend)
    except ValidationError as exc:
        if not any(error["loc"] == ("llm",) for error in exc.errors()):
            raise ConfigError(f"the settings are not valid: {exc}") from exc
        names = ", ".join(map(str, getattr(Settings.model_fields["llm"].annotation, "__args__", ())))
        raise ConfigError(f"unknown backend {backend!r} (QA_LLM); choose one of: {names}") from exc


@eval_app.command("run")
def run_set(
    set_path: Annotated[Path, typer.Argument(metavar="SET.jsonl", help="The evaluation set (schema: eval/README.md).")],
    corpus: Annotated[Optional[str], typer.Option(help="Articles to ingest first; unchanged ones are skipped.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only the questions of this split (e.g. dev).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Answer backend for this run (sets QA_LLM).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write the run here instead of QA_DATA_DIR/eval-runs/<timestamp>.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    export: Annotated[Optional[ExportFormat], typer.Option(help="Also write the records for LLM-judged evaluators.")] = None,
    fail_under: Thresholds = None,
    fail_over: Ceilings = None,
):
    """Run every question of SET.jsonl, then write summary.json, results.jsonl and the reports."""
    from eval import export as exporter
    from eval.report import write_run
    from eval.runner import run
    from eval.runs import new_run_dir, run_config, source_version
    from eval.sets import load_set
    from eval.summary import summarize
    from qa.service import QAService

    version = source_version()
    items = load_set(set_path, split)
    settings = settings_for(backend)
    _check_thresholds(fail_under or [], fail_over or [])  # a typo should fail before the long run
    service = QAService(settings)
    if corpus:
        _ingest(service, corpus)
    results = _run_with_progress(run, service, items)
    summary = {"config": run_config(service, set_path, split, corpus, results, version), **summarize(results)}
    run_dir = out_dir or new_run_dir(settings.data_dir)
    write_run(run_dir, summary, results)
    if export:
        exporter.export(results, run_dir, export.value)
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        _print_overall(summary)
    err.print(f"report: {run_dir / 'report.html'}", highlight=False, markup=False)
    _gate(summary["overall"], fail_under or [], fail_over or [])


@eval_app.command("compare")
def compare_runs(
    run_a: Annotated[str, typer.Argument(help="A run folder, or its name under QA_DATA_DIR/eval-runs.")],
    run_b: Annotated[str, typer.Argument(help="The run to compare with it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    fail_under: Thresholds = None,
    fail_over: Ceilings = None,
):
    """Metric deltas (B - A) and the questions that went from right to wrong, and back."""
    from eval.runs import compare, direction, load_run, resolve_run

    data_dir = Settings().data_dir
    b = load_run(resolve_run(run_b, data_dir))
    result = compare(load_run(resolve_run(run_a, data_dir)), b)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        table = Table("metric", "A", "B", "B - A")
        for name, row in result["metrics"].items():
            delta = row["delta"]
            colour = "" if not delta else "green" if delta * direction(name) > 0 else "red"
            table.add_row(name, str(row["a"]), str(row["b"]), f"[{colour}]{delta:+}[/]" if colour else str(delta))
        out.print(table)
        for verdict, flips in result["flips"].items():
            for kind, title in (("broke", "right → wrong"), ("fixed", "wrong → right")):
                out.print(f"\n{verdict}: {title} ({len(flips[kind])})", style="bold", highlight=False)
                for row in flips[kind]:
                    out.print(f"  {row['id']}: {row['question']}" + (f"  [{row['reason']}]" if row["reason"] else ""), highlight=False, markup=False)
    _gate(b[0]["overall"], fail_under or [], fail_over or [])


def _check_thresholds(under: list[str], over: list[str]) -> None:
    from eval.runs import unmet
    from eval.summary import LATENCY, METRICS

    known = dict.fromkeys([*METRICS, *LATENCY], 1.0)
    unmet(known, under, below=True)
    unmet(known, over, below=False)


def _gate(overall: dict, under: list[str], over: list[str]) -> None:
    from eval.runs import unmet

    misses = unmet(overall, under, below=True) + unmet(overall, over, below=False)
    for miss in misses:
        err.print(f"[red]gate failed:[/red] {miss}", highlight=False)
    if misses:
        raise typer.Exit(1)


def _ingest(service, corpus: str) -> None:
    from qa.ingest_view import IngestView

    with IngestView(err) as view:
        report = service.ingest([corpus], view.on_result)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("added", "updated", "unchanged", "failed"))
    err.print(f"corpus {corpus}: {counts} in {view.seconds} s", highlight=False, markup=False)


def _run_with_progress(run, service, items):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("questions", total=len(items))
        passed = [0]

        def advance(result) -> None:
            passed[0] += result.passed
            bar.update(task, advance=1, description=f"questions ({passed[0]} passed)")

        return run(service, items, advance)


def _print_overall(summary: dict) -> None:
    from eval.markdown_report import shown
    from eval.summary import LATENCY, METRICS

    table = Table("metric", "value", "questions")
    for name in (*METRICS, *LATENCY):
        table.add_row(name, shown(name, summary["overall"][name]), str(summary["counts"].get(name, summary["questions"])))
    out.print(table)
