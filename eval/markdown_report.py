"""The Markdown report, and the formatting the HTML report shares with it."""

from __future__ import annotations

from eval.judge import QuestionResult
from eval.summary import LATENCY, METRICS, TAG_METRICS


def shown(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} ms" if name.startswith("latency.") else f"{value * 100:.1f} %"


def config_lines(config: dict) -> list[str]:
    commit = (config.get("git_commit") or "unknown")[:12] + (" (with uncommitted changes)" if config.get("git_dirty") else "")
    return [
        f"set `{config.get('set')}`" + (f", split `{config['split']}`" if config.get("split") else ""),
        f"corpus: {config.get('articles')} articles, hash `{(config.get('corpus_hash') or '')[:12]}`"
        + (f", ingested from `{config['corpus']}`" if config.get("corpus") else ""),
        f"embedding model `{config.get('embed_model')}` (`{config.get('embed_backend', 'torch')}`), backend `{config.get('backend')}`, top_k {config.get('settings', {}).get('top_k')}",
        f"git commit `{commit}`, run {config.get('created')}",
    ]


def render_markdown(summary: dict, results: list[QuestionResult]) -> str:
    overall, counts = summary["overall"], summary["counts"]
    lines = [f"# Evaluation: {summary['questions']} questions", ""]
    lines += [f"- {line}" for line in config_lines(summary.get("config", {}))]
    lines += ["", "## Metrics", "", "| metric | value | questions |", "|---|---|---|"]
    lines += [f"| {name} | {shown(name, overall[name])} | {counts[name]} |" for name in METRICS]
    lines += [f"| {name} | {shown(name, overall[name])} | {summary['questions']} |" for name in LATENCY]
    lines += ["", "## Per tag", "", "| tag | questions | " + " | ".join(TAG_METRICS) + " |", "|---" * (len(TAG_METRICS) + 2) + "|"]
    for tag, scores in summary["per_tag"].items():
        lines.append(f"| {tag} | {scores['questions']} | " + " | ".join(shown(m, scores[m]) for m in TAG_METRICS) + " |")
    failed = [r for r in results if r.reason]
    lines += ["", f"## What went wrong ({len(failed)} questions)", "", "| id | passed | reason | question |", "|---|---|---|---|"]
    for r in failed:
        lines.append(f"| {r.id} | {'yes' if r.passed else 'no'} | {r.reason} | {_cell(r.question)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 120) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
