"""The extractive answerer: offline and deterministic, it quotes the sentences that answer best.

A sentence's score mixes its embedding similarity to the question with the share of the
question's terms (weighted by rarity) that it contains. Terms found in no passage pull the
score down, which is what lets it abstain on questions the sources do not cover.
Paragraphs that speak to an AI model (qa/injection.py) are never quoted, a sentence repeated by
several articles is quoted once, and a quote is shown without the article's own "[7]"
footnotes, links or images (qa/markers.py); the citation keeps the article's exact text.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np

from index.embedding import Embedder
from qa.citations import ABSTENTION, Answer, AnswerSentence, Citation, Passage
from qa.injection import instruction_spans
from qa.markers import quoted
from qa.sentences import sentence_spans, terms

SEMANTIC_WEIGHT = 0.5
# Sentences encoded per question (see _score): the model's runs on them are most of an answer's
# time. 4 answered RealTime QA's dev split as well as 8 (30.7 against 30.1 % holding the answer)
# and the seed set's 64 questions the same, 12 ms a question sooner (docs/evaluation.md).
SEMANTIC_CANDIDATES = 4
# Questions that ask for a number or a date are only answered by sentences that hold one.
NUMBER_QUESTION = re.compile(r"\bhow (many|much|long|old|far)\b", re.I)
DATE_QUESTION = re.compile(r"\b(when|what (date|day|year|month|time))\b", re.I)
NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|thousands?|millions?)\b", re.I)
DATE = re.compile(
    r"\b(\d{1,2}(st|nd|rd|th)|\d{4}|january|february|march|april|may|june|july|august|september|"
    r"october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b",
    re.I,
)
ANSWER_TYPE_PENALTY = 0.5
# Extra sentences join the answer only when nearly as good as the best one.
EXTRA_SENTENCE_MARGIN = 0.06


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, embedder: Embedder, min_score: float, max_sentences: int):
        self.embedder = embedder
        self.min_score = min_score
        self.max_sentences = max_sentences

    def answer(self, question: str, passages: list[Passage]) -> Answer:
        candidates = self._candidates(passages)
        if not candidates:
            return Answer(question, ABSTENTION, True, self.name, passages=passages)
        scored = sorted(self._score(question, candidates), key=lambda item: -item[0])
        best = scored[0][0]
        if best < self.min_score:
            return Answer(question, ABSTENTION, True, self.name, passages=passages)
        chosen = [item for item in scored if item[0] >= best - EXTRA_SENTENCE_MARGIN][: self.max_sentences]
        # [n] is the passage's number in `passages`, as in an LLM's answer: one numbering everywhere.
        number = {id(p): n for n, p in enumerate(passages, start=1)}
        quotes: dict[int, tuple[float, Passage, int, int]] = {}
        for score, passage, start, end in chosen:
            n = number[id(passage)]
            if n not in quotes:
                quotes[n] = (score, passage, start, end)
                continue
            # Two sentences of one passage: one citation, quoting both when they are neighbours.
            first, last = sorted([quotes[n][2:], (start, end)])
            if not passage.text[first[1] : last[0]].strip():
                quotes[n] = (quotes[n][0], passage, first[0], last[1])
        citations = [Citation.quoting(n, passage, start, end - start, score) for n, (score, passage, start, end) in quotes.items()]
        sources = {p.url for p in passages if p.url}
        pieces = [f"{quoted(c.quote, sources)} [{c.n}]" for c in citations]
        sentences, at = [], 0
        for piece, citation in zip(pieces, citations):  # quotes are verbatim, so supported by construction
            sentences.append(AnswerSentence(piece, at, at + len(piece), [citation.n], True))
            at += len(piece) + 1
        return Answer(question, " ".join(pieces), False, self.name, citations=citations, passages=passages, sentences=sentences)

    def answer_stream(self, question: str, passages: list[Passage], as_of=None):
        """The LLM answerers' streaming shape: the whole text at once, then the Answer."""
        answer = self.answer(question, passages)
        yield answer.answer
        yield answer

    def best_score(self, question: str, passages: list[Passage]) -> float:
        """How well the best sentence answers: the evidence an LLM answer is allowed to start from."""
        candidates = self._candidates(passages)
        return max((score for score, *_ in self._score(question, candidates)), default=0.0)

    def _candidates(self, passages: list[Passage]) -> list[tuple[Passage, int, int]]:
        """Every sentence of every passage once (overlapping chunks, and copies of one story in
        several articles, repeat sentences), less those that speak to an AI model."""
        seen = set()
        candidates = []
        for passage in passages:
            for start, end, key in quotable(passage.text):
                if key not in seen:
                    seen.add(key)
                    candidates.append((passage, start, end))
        return candidates

    def _score(self, question: str, candidates: list[tuple[Passage, int, int]]):
        sentences = [passage.text[start:end] for passage, start, end in candidates]
        sentence_terms = [terms(s) for s in sentences]
        question_terms = terms(question)
        needs = NUMBER if NUMBER_QUESTION.search(question) else DATE if DATE_QUESTION.search(question) else None
        weights = {t: _idf(t, sentence_terms) for t in question_terms}
        total = sum(weights.values()) or 1.0
        overlaps = [sum(weights[t] for t in question_terms & found) / total for found in sentence_terms]
        # Encoding is the cost of an answer: only the sentences sharing most of the question's
        # terms are encoded (ties in retrieval order). The rest could not win on meaning alone.
        kept = sorted(range(len(candidates)), key=lambda i: -overlaps[i])[:SEMANTIC_CANDIDATES]
        asked = np.asarray(self.embedder.embed_query(question), dtype=np.float32)  # cached by retrieval
        similarities = self.embedder.embed_sentences([sentences[i] for i in kept]) @ asked if kept else []
        for i, similarity in zip(kept, similarities):
            (passage, start, end), overlap = candidates[i], overlaps[i]
            score = SEMANTIC_WEIGHT * float(similarity) + (1 - SEMANTIC_WEIGHT) * overlap
            if needs is not None and not needs.search(passage.text[start:end]):
                score *= ANSWER_TYPE_PENALTY
            yield score, passage, start, end


@lru_cache(maxsize=4096)  # passages come back for related questions: splitting one is ~0.5 ms
def quotable(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, key) of each sentence of a passage that may be quoted: with words once shown,
    outside paragraphs that speak to a model; the key compares copies of one sentence."""
    hostile = instruction_spans(text)
    found = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        if terms(quoted(sentence, set())) and not any(s <= start < e for s, e in hostile):
            found.append((start, end, " ".join(sentence.split()).casefold()))
    return tuple(found)


def _idf(term: str, documents: list[set[str]]) -> float:
    frequency = sum(1 for d in documents if term in d)
    return math.log(1 + (len(documents) + 1) / (frequency + 0.5))
