"""Aggregates per-question results: overall, per tag, and the latency percentiles."""

from __future__ import annotations

from collections.abc import Sequence

from eval.judge import QuestionResult
from eval.metrics import mean, percentile

# The order metrics are shown in; `passed` is the share of questions judged right.
METRICS = (
    "passed",
    "retrieval.hit@1", "retrieval.hit@3", "retrieval.hit@5", "retrieval.hit@10", "retrieval.mrr", "retrieval.ndcg@10",
    "evidence.hit@1", "evidence.hit@3", "evidence.hit@5", "evidence.hit@10", "evidence.mrr", "evidence.ndcg@10",
    "answer.exact_match", "answer.f1", "answer.contains",
    "choice.accuracy",
    "citation.precision", "citation.recall", "citation.verbatim", "citation.supported",
    "abstention.right_refusal", "abstention.false_refusal",
)
LATENCY = ("latency.p50_ms", "latency.p95_ms")
LOWER_IS_BETTER = {"abstention.false_refusal", *LATENCY}
# The few shown per tag, in reports and tables.
TAG_METRICS = ("passed", "retrieval.hit@5", "answer.f1", "choice.accuracy", "citation.precision", "abstention.right_refusal")


def aggregate(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    for name in METRICS:
        scores[name] = _rounded(mean(r.metrics.get(name) for r in results))
    latencies = [r.latency_ms for r in results]
    scores["latency.p50_ms"] = _rounded(percentile(latencies, 50), 1)
    scores["latency.p95_ms"] = _rounded(percentile(latencies, 95), 1)
    return scores


def counts(results: Sequence[QuestionResult]) -> dict[str, int]:
    """How many questions each metric was computed over (it may not apply to all)."""
    return {name: sum(r.metrics.get(name) is not None for r in results) for name in METRICS}


def summarize(results: Sequence[QuestionResult]) -> dict:
    tags = sorted({tag for r in results for tag in r.tags})
    return {
        "questions": len(results),
        "overall": aggregate(results),
        "counts": counts(results),
        "per_tag": {tag: {"questions": sum(tag in r.tags for r in results), **aggregate([r for r in results if tag in r.tags])} for tag in tags},
    }


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)
