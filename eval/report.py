"""Writes a run's files: summary.json, results.jsonl, report.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path

from eval.html_report import render_html
from eval.judge import QuestionResult
from eval.markdown_report import render_markdown


def write_run(run_dir: Path, summary: dict, results: list[QuestionResult]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    (run_dir / "report.md").write_text(render_markdown(summary, results), encoding="utf-8")
    (run_dir / "report.html").write_text(render_html(summary, results), encoding="utf-8")
    return run_dir
