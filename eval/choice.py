"""Multiple choice: the system picks the choice that the retrieved passages support best.

Each choice is read as a hypothesis, "question + choice". A sentence of the passages supports
it by meaning (embedding similarity to the hypothesis) and by wording (the share of the
choice's own words, those the other choices do not share, that the sentence contains).
The choice with the best-supporting sentence wins; without passages there is no pick.
"""

from __future__ import annotations

import re

from index.embedding import Embedder
from qa.citations import Passage
from qa.sentences import sentence_spans, terms

SEMANTIC_WEIGHT = 0.5
DIGITS = re.compile(r"\d+")


class ChoicePicker:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def pick(self, question: str, choices: list[str] | tuple[str, ...], passages: list[Passage]) -> int | None:
        sentences = _sentences(passages)
        if not choices or not sentences:
            return None
        hypotheses = [f"{question} {choice}" for choice in choices]
        vectors = self.embedder.embed_sentences([*hypotheses, *sentences])
        similarity = vectors[len(choices):] @ vectors[: len(choices)].T  # sentence × choice
        wording = _wording(choices, sentences)
        scores = [
            max(SEMANTIC_WEIGHT * float(similarity[s, c]) + (1 - SEMANTIC_WEIGHT) * wording[s][c] for s in range(len(sentences)))
            for c in range(len(choices))
        ]
        return max(range(len(choices)), key=lambda c: (scores[c], -c))


def _sentences(passages: list[Passage]) -> list[str]:
    seen: dict[str, None] = {}  # overlapping chunks repeat sentences; keep each once, in order
    for passage in passages:
        for start, end in sentence_spans(passage.text):
            seen.setdefault(passage.text[start:end], None)
    return list(seen)


def _wording(choices, sentences: list[str]) -> list[list[float]]:
    """For each sentence and choice, the share of the choice's distinctive terms it contains."""
    choice_terms = [_terms(choice) for choice in choices]
    shared = set.intersection(*choice_terms) if choice_terms else set()
    distinctive = [t - shared for t in choice_terms]
    sentence_terms = [_terms(s) for s in sentences]
    return [[len(d & found) / len(d) if d else 0.0 for d in distinctive] for found in sentence_terms]


def _terms(text: str) -> set[str]:
    # Content terms skip one-character words; choices such as "3" or "5" need them.
    return terms(text) | set(DIGITS.findall(text))
