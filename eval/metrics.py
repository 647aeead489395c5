"""Metric functions: pure, small, and checked against hand-computed values in tests/test_metrics.py.

Ranking metrics take a ranked list of ids (best first, no repeats) and the set of relevant ids.
Answer metrics follow SQuAD: lower case, no punctuation, no articles, single spaces.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

ARTICLES = re.compile(r"\b(a|an|the)\b")
# Curly quotes and dashes count as punctuation too: news text is full of them.
PUNCTUATION = set(string.punctuation) | set("“”‘’—–…«»")


def first_relevant_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant id, None if there is none."""
    return next((rank for rank, item in enumerate(ranked, start=1) if item in relevant), None)


def hit_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 / rank if rank else 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-relevance nDCG@k: 1 when every relevant id heads the ranking."""
    if not relevant:
        return 0.0
    dcg = sum(1 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def normalize_answer(text: str) -> str:
    text = "".join(" " if ch in PUNCTUATION else ch for ch in text.lower())
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """Best token-overlap F1 over the acceptable answers."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        expected = normalize_answer(answer).split()
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_contains(prediction: str, answers: Iterable[str]) -> float:
    """1 when an acceptable answer appears, as whole words, in the prediction."""
    padded = f" {normalize_answer(prediction)} "
    return float(any(normalize_answer(a) and f" {normalize_answer(a)} " in padded for a in answers))


def span_overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Characters that the half-open spans a and b share."""
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def covers(span: tuple[int, int], quote: tuple[int, int]) -> bool:
    """A passage or citation covers an evidence quote when it holds at least half of it."""
    return span_overlap(span, quote) * 2 >= max(quote[1] - quote[0], 1)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that apply (None means 'not applicable' and is skipped)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
