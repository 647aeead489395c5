"""What `qa ingest` shows: a live line with documents/s and chunks/s, then a per-file table."""

from __future__ import annotations

import time
from collections import defaultdict

from rich.console import Console
from rich.markup import escape  # file names and messages may hold [tags]
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from index.pipeline import STATUSES, FileResult, IngestReport


class IngestView:
    def __init__(self, console: Console):
        self.console = console
        self.began = time.perf_counter()
        self.documents = 0
        self.chunks = 0
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True)

    def __enter__(self) -> IngestView:
        self._progress.__enter__()
        self._task = self._progress.add_task("loading the model and the index…")
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.began, 2)

    def on_result(self, result: FileResult) -> None:
        self.documents += 1
        if result.status in ("added", "updated"):
            self.chunks += result.chunks
        elapsed = max(time.perf_counter() - self.began, 1e-6)
        self._progress.update(
            self._task,
            description=f"{self.documents} documents ({self.documents / elapsed:.1f}/s), {self.chunks} chunks ({self.chunks / elapsed:.1f}/s)",
        )
        if result.status == "failed":
            self.console.print(f"[red]failed:[/red] {escape(result.source)}: {escape(result.message)}", highlight=False)
        elif result.message:
            self.console.print(f"[yellow]warning:[/yellow] {escape(result.source)}: {escape(result.message)}", highlight=False)

    def table(self, report: IngestReport) -> Table:
        """One row a file (a .jsonl file's records are added up), then the totals."""
        rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for result in report.results:
            file = result.source.rsplit(":", 1)[0] if result.source.rsplit(":", 1)[-1].isdigit() else result.source
            rows[file][result.status] += 1
            rows[file]["chunks"] += result.chunks if result.status in ("added", "updated") else 0
        table = Table(Column("file", overflow="fold"), *STATUSES, "chunks", title=f"ingest finished in {self.seconds} s")
        for file, counts in list(rows.items())[:50]:
            table.add_row(escape(file), *(str(counts[s] or "") for s in STATUSES), str(counts["chunks"]))
        if len(rows) > 50:
            table.add_row(f"… {len(rows) - 50} more files", *[""] * (len(STATUSES) + 1))
        table.add_row("total", *(str(report.count(s)) for s in STATUSES), str(report.chunks), style="bold")
        spent = [f"{stage} {seconds:.1f} s" for stage, seconds in report.stages.items() if seconds >= 0.05]
        if spent:  # on onnx backends the model runs beside the other stages: "embed" is the wait for it
            table.caption = "time by stage: " + " · ".join(spent) + (f"; the model's own time {report.encoder:.1f} s" if report.encoder else "")
        return table
