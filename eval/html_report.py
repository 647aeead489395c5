"""The single-file HTML report: inline CSS and SVG plots, nothing fetched when it is opened."""

from __future__ import annotations

from html import escape

from eval import plots
from eval.judge import QuestionResult
from eval.markdown_report import config_lines, shown
from eval.summary import LATENCY, METRICS, TAG_METRICS

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }
.fail { color: #a33; } .pass { color: #262; } .muted { color: #777; } details { margin: .2em 0; }
"""


def render_html(summary: dict, results: list[QuestionResult]) -> str:
    overall = summary["overall"]
    tags = list(summary["per_tag"])
    heat = [[summary["per_tag"][t][m] for m in TAG_METRICS] for t in tags]
    body = [
        f"<h1>Evaluation: {summary['questions']} questions</h1>",
        "<ul>" + "".join(f"<li>{_code(line)}</li>" for line in config_lines(summary.get("config", {}))) + "</ul>",
        "<h2>Metrics</h2>",
        plots.bar_chart([(name, overall[name]) for name in METRICS]),
        "<p>" + " · ".join(f"{name}: <b>{shown(name, overall[name])}</b>" for name in LATENCY) + "</p>",
        "<h2>Per tag</h2>",
        plots.heatmap([f"{t} ({summary['per_tag'][t]['questions']})" for t in tags], list(TAG_METRICS), heat),
        "<h2>Latency</h2>",
        plots.histogram([r.latency_ms for r in results]),
        "<h2>Questions</h2>",
        _questions(results),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation report</title>"
        f"<style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _questions(results: list[QuestionResult]) -> str:
    rows = ["<table><tr><th>id</th><th>verdict</th><th>question</th><th>what went wrong</th></tr>"]
    for r in results:
        verdict = "<span class='pass'>pass</span>" if r.passed else "<span class='fail'>fail</span>"
        detail = (
            f"<details><summary>{escape(r.question)}</summary><p><b>answer:</b> {escape(r.answer)}</p>"
            f"<p class='muted'>acceptable: {escape(' | '.join(r.answers)) or 'none (unanswerable)'}</p></details>"
        )
        rows.append(f"<tr><td>{escape(r.id)}</td><td>{verdict}</td><td>{detail}</td><td>{escape(r.reason)}</td></tr>")
    return "\n".join(rows) + "</table>"


def _code(markdown_line: str) -> str:
    """`x` in the shared config lines becomes <code>x</code>, everything else escaped."""
    pieces = escape(markdown_line).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
