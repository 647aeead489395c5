"""Saved runs: where they live, the configuration they record, and comparing two of them.

    QA_DATA_DIR/eval-runs/<timestamp>/  summary.json  results.jsonl  report.md  report.html
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

from eval.judge import QuestionResult
from eval.summary import LOWER_IS_BETTER
from qa.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SECRET_WORDS = ("key", "token", "secret", "password")


def new_run_dir(data_dir: Path) -> Path:
    runs = Path(data_dir) / "eval-runs"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target, n = runs / stamp, 1
    while target.exists():  # two runs in one second
        n += 1
        target = runs / f"{stamp}-{n}"
    return target


def source_version() -> dict:
    """The git commit, and whether tracked files differ from it. Take it before the run: the
    code in memory is what was on disk when the process started, whatever is committed later."""
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def run_config(service, set_path: Path, split: str | None, corpus: str | None, results: list[QuestionResult],
               version: dict | None = None) -> dict:
    settings = service.settings
    public = {k: v for k, v in settings.model_dump(mode="json").items() if not any(w in k for w in SECRET_WORDS)}
    records = service.documents()
    return {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "set": str(set_path),
        "set_sha256": hashlib.sha256(Path(set_path).read_bytes()).hexdigest(),
        "split": split,
        "corpus": corpus,
        "corpus_hash": corpus_hash(records),
        "articles": len(records),
        "embed_model": settings.embed_model,
        "embed_backend": service.embedder.backend,  # what "auto" settled on for this index
        "backend": getattr(settings, "llm", "extractive"),
        "answer_backends": sorted({r.backend for r in results}),
        "settings": public,
        **(version or source_version()),
    }


def corpus_hash(records: list[dict]) -> str:
    """What was searched: every stored article's id and content hash, order-free."""
    lines = sorted(f"{r['id']}\t{r.get('hash', '')}" for r in records)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def resolve_run(name: str, data_dir: Path) -> Path:
    """A run folder given as a path, or by its name under QA_DATA_DIR/eval-runs/."""
    for candidate in (Path(name), Path(data_dir) / "eval-runs" / name):
        if (candidate / "summary.json").is_file():
            return candidate
    raise ConfigError(f"{name} is not a saved evaluation run (no summary.json there or in {Path(data_dir) / 'eval-runs'})")


def load_run(path: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return summary, [json.loads(line) for line in lines if line.strip()]


def compare(a: tuple[dict, list[dict]], b: tuple[dict, list[dict]]) -> dict:
    """Metric deltas (B - A) and the questions whose verdict flipped, by id."""
    (summary_a, rows_a), (summary_b, rows_b) = a, b
    deltas = {}
    for name, before in summary_a["overall"].items():
        after = summary_b["overall"].get(name)
        delta = None if before is None or after is None else round(after - before, 4)
        deltas[name] = {"a": before, "b": after, "delta": delta}
    before = {row["id"]: row for row in rows_a}
    common = [row for row in rows_b if row["id"] in before]
    flips = {}
    for verdict in VERDICTS:
        flips[verdict] = {"broke": [], "fixed": []}
        for row in common:
            was, now = _verdict(before[row["id"]], verdict), _verdict(row, verdict)
            if was is not None and now is not None and was != now:
                entry = {"id": row["id"], "question": row["question"], "reason": row["reason"]}
                flips[verdict]["fixed" if now else "broke"].append(entry)
    return {"metrics": deltas, "flips": flips, "only_in_a": len(rows_a) - len(common), "only_in_b": len(rows_b) - len(common)}


# A question is right or wrong twice over: judged as a whole, and (multiple choice) by its pick.
VERDICTS = ("passed", "choice")


def _verdict(row: dict, verdict: str) -> bool | None:
    if verdict == "passed":
        return bool(row["passed"])
    value = row["metrics"].get("choice.accuracy")
    return None if value is None else bool(value)


def parse_threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise ConfigError(f"{text!r} is not METRIC=VALUE (e.g. retrieval.hit@5=0.8)") from None


def unmet(overall: dict, thresholds: list[str], below: bool = True) -> list[str]:
    """The thresholds a run misses: below a --fail-under, or above a --fail-over value."""
    misses = []
    for text in thresholds:
        name, limit = parse_threshold(text)
        if name not in overall:
            raise ConfigError(f"unknown metric {name!r}; metrics: {', '.join(overall)}")
        value = overall[name]
        if value is None or (value < limit if below else value > limit):
            word = "under" if below else "over"
            misses.append(f"{name} = {value} is {word} {limit}" if value is not None else f"{name} was not measured")
    return misses


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is."""
    return -1 if name in LOWER_IS_BETTER else 1
