"""Follow-up questions rewritten into standalone ones before retrieval.

"What did he say next?" retrieves nothing useful on its own. With an LLM the model rewrites
the question from the conversation (a rewrite sharing no word with it is not trusted); the
extractive answerer, or a distrusted rewrite, uses a rule instead: person
pronouns become the person last asked about (for a "who" question, the name its answer gave),
and a question too short to stand alone borrows the previous question. A question with enough
words of its own ("what kind of missiles does it say China deployed?") is left alone: borrowed
words would outweigh its own in retrieval and in the choice of sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.errors import BackendUnavailableError
from qa.llm.base import LLMBackend
from qa.sentences import STOPWORDS, terms

REWRITE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace "
    "words like he, she, it, they, that or the meeting with what they refer to. Reply with the rewritten "
    "question only, on one line. If it already stands alone, repeat it unchanged."
)
TURNS_KEPT = 3
ANSWER_CHARS_KEPT = 600
PERSON = re.compile(r"\b(he|she|him|his|her|hers)\b", re.I)
REFERENCE = re.compile(r"\b(it|its|they|them|their|this|that|these|those|there|then)\b", re.I)
# Two or more capitalised words in a row: "Nobuo Kishi", "Secretary Austin".
NAME = re.compile(r"\b[A-Z][\w’'.-]+(?:\s+[A-Z][\w’'.-]+)+")
MARKERS = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")
BORROWED = re.compile(r"\s*\(.*\)\s*$")  # the context an earlier rewrite appended
WHO = re.compile(r"^\s*who\b", re.I)
OWN_TERMS = 3  # a question with this many content words of its own stands alone


@dataclass(frozen=True)
class Turn:
    question: str  # as it was retrieved for: the standalone question
    answer: str


class FollowUpRewriter:
    def __init__(self, backend: LLMBackend | None = None, fallback: bool = False):
        self.backend = backend
        self.fallback = fallback  # QA_LLM_FALLBACK=extractive: an unreachable model means the rule

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        rewritten = ""
        if self.backend is not None:
            try:
                rewritten = self._by_model(question, history[-TURNS_KEPT:])
            except BackendUnavailableError:
                if not self.fallback:
                    raise
                # Falls back to the rule; the answer falls back too, and says so in its warnings.
        return rewritten or self._by_rule(question, history[-1])

    def _by_model(self, question: str, history: Sequence[Turn]) -> str:
        lines = []
        for turn in history:
            lines += [f"Q: {turn.question}", f"A: {MARKERS.sub('', turn.answer)[:ANSWER_CHARS_KEPT]}"]
        user = "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {question}"
        reply = self.backend.complete([{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": user}])
        line = next((l.strip() for l in reply.splitlines() if l.strip()), "")
        line = re.sub(r"^(rewritten question|question)\s*:\s*", "", line, flags=re.I).strip(" \"'“”")
        # A rewrite that rambles, or shares no word with the conversation, is not trusted with the retrieval.
        said = terms(question + " " + " ".join(f"{t.question} {t.answer}" for t in history))
        return line if len(line) <= 4 * len(question) + 200 and terms(line) & said else ""

    def _by_rule(self, question: str, last: Turn) -> str:
        previous = BORROWED.sub("", last.question)
        person = _person(previous, MARKERS.sub("", last.answer))
        if person and PERSON.search(question):
            return PERSON.sub(lambda m: _pronoun_to(person, m.group(1)), question)
        own = len(terms(question))
        if own < 2 or (REFERENCE.search(question) and own < OWN_TERMS):
            return f"{question} ({previous})"
        return question


def _person(question: str, answer: str) -> str:
    """Who a "he" or "she" in the next question means.

    After "Who is Japan's Foreign Minister?" it is the name the answer gave (of the names there,
    "Foreign Minister Toshichika Mogi" shares most words with the question); otherwise the name
    asked about.
    """
    asked = _names(question)
    if WHO.match(question):
        wanted = terms(question)
        given = [name for name in _names(answer) if name not in asked]
        if given:
            best = max(given, key=lambda name: len(terms(name) & wanted))
            if terms(best) & wanted:
                return " ".join(best.split()[-2:])  # the name without its title: "Toshichika Mogi"
    return asked[0] if asked else next(iter(_names(answer)), "")


def _names(text: str) -> list[str]:
    """Capitalised runs, less a leading "Did", "What" and the like."""
    names = []
    for run in NAME.findall(text):
        words = run.split()
        while words and words[0].lower() in STOPWORDS:
            words.pop(0)
        if len(words) >= 2:
            names.append(" ".join(words))
    return names


def _pronoun_to(name: str, pronoun: str) -> str:
    return f"{name}’s" if pronoun.lower() in ("his", "hers") else name
