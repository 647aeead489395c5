"""Judges one answered question: pass or fail with the reason, and every per-question metric.

A question passes when an answerable one is answered with an acceptable answer, or an
unanswerable one is declined, and every citation quotes its article exactly. A metric that
does not apply to the question (retrieval without evidence, answers to an unanswerable
question) is None and is left out of the averages.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Protocol

from eval import metrics as m
from eval.sets import EvalItem
from qa.citations import Answer, Passage

RANKED_ARTICLES = 10
RANK_CUTOFFS = (1, 3, 5, 10)
MARKER = re.compile(r"\s*\[\d+\]")


class Corpus(Protocol):
    def text(self, doc_id: str) -> str: ...
    def canonical(self, doc_id: str) -> str: ...  # the article a syndicated copy duplicates


@dataclass
class QuestionResult:
    id: str
    question: str
    asked: str  # the question retrieval was given: a follow-up rewritten to stand alone
    conversation: str | None
    tags: list[str]
    answerable: bool
    answers: list[str]
    abstained: bool
    answer: str
    backend: str
    passed: bool
    reason: str  # everything that went wrong, '; '-joined; empty when nothing did
    citations_exact: bool
    choice: int | None  # the picked choice, for multiple-choice questions
    retrieved: list[str]  # the top articles, best first
    contexts: list[str]  # the passages the answer was written from
    latency_ms: float
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def judge(item: EvalItem, answer: Answer, ranked: list[Passage], corpus: Corpus,
          choice: int | None = None) -> QuestionResult:
    citations_exact = all(corpus.text(c.doc_id)[c.start : c.end] == c.quote for c in answer.citations)
    articles = _article_ranking(ranked)
    scores = {
        **_retrieval(item, articles, ranked, corpus),
        **_answer(item, answer),
        **_citations(item, answer, corpus),
        "choice.accuracy": float(choice in item.answer_index) if item.choices else None,
        "abstention.right_refusal": None if item.answerable else float(answer.abstained),
        "abstention.false_refusal": float(answer.abstained) if item.answerable else None,
    }
    reasons = []
    if not citations_exact:
        reasons.append("a citation does not quote its article exactly")
    if not item.answerable and not answer.abstained:
        reasons.append("answered a question the sources cannot answer")
    elif item.answerable and answer.abstained:
        reasons.append("declined an answerable question")
    elif item.answerable and not scores["answer.contains"]:
        reasons.append("no acceptable answer in the answer text")
    passed = not reasons
    scores["passed"] = float(passed)
    if scores["retrieval.hit@10"] == 0.0:
        reasons.append(f"no gold article in the top {RANKED_ARTICLES}")
    if scores["choice.accuracy"] == 0.0:
        picked = "nothing" if choice is None else repr(item.choices[choice])
        reasons.append(f"picked {picked}, expected {item.choices[item.answer_index[0]]!r}")
    return QuestionResult(
        id=item.id, question=item.question, asked=answer.standalone_question or item.question,
        conversation=item.conversation, tags=list(item.tags),
        answerable=item.answerable, answers=list(item.answers), abstained=answer.abstained,
        answer=answer.answer, backend=answer.backend, passed=passed, reason="; ".join(reasons),
        citations_exact=citations_exact, choice=choice, retrieved=articles,
        contexts=[p.text for p in answer.passages], latency_ms=float(answer.timings_ms.get("total", 0.0)),
        metrics=scores,
    )


def _article_ranking(ranked: list[Passage]) -> list[str]:
    articles: list[str] = []
    for passage in ranked:
        if passage.doc_id not in articles:
            articles.append(passage.doc_id)
    return articles[:RANKED_ARTICLES]


def _quote_spans(item: EvalItem, corpus: Corpus) -> list[tuple[str, tuple[int, int]]]:
    spans = []
    for evidence in item.quotes:
        start = corpus.text(evidence.doc_id).find(evidence.quote)
        if start >= 0:
            spans.append((evidence.doc_id, (start, start + len(evidence.quote))))
    return spans


def _retrieval(item: EvalItem, articles: list[str], ranked: list[Passage], corpus: Corpus) -> dict:
    scores: dict[str, float | None] = {}
    gold = {corpus.canonical(d) for d in item.gold_doc_ids}
    canonical = list(dict.fromkeys(corpus.canonical(d) for d in articles))  # a copy and its original rank once
    quotes = _quote_spans(item, corpus) if item.quotes else []
    # Passage level: each passage gets the label of the first evidence quote it newly covers.
    labels, found = [], set()
    for rank, passage in enumerate(ranked[:RANKED_ARTICLES]):
        new = [i for i, (doc, span) in enumerate(quotes)
               if i not in found and corpus.canonical(doc) == corpus.canonical(passage.doc_id)
               and m.covers((passage.start, passage.end), span)]
        found.update(new)
        labels.append(f"quote{new[0]}" if new else f"passage{rank}")
    relevant_quotes = {f"quote{i}" for i in range(len(quotes))}
    for level, ranking, relevant in (("retrieval", canonical, gold), ("evidence", labels, relevant_quotes)):
        applies = bool(relevant) and item.answerable
        for k in RANK_CUTOFFS:
            scores[f"{level}.hit@{k}"] = m.hit_at(ranking, relevant, k) if applies else None
        scores[f"{level}.mrr"] = m.reciprocal_rank(ranking, relevant) if applies else None
        scores[f"{level}.ndcg@10"] = m.ndcg_at(ranking, relevant, 10) if applies else None
    return scores


def _answer(item: EvalItem, answer: Answer) -> dict:
    if not item.answerable or not item.answers:
        return {"answer.exact_match": None, "answer.f1": None, "answer.contains": None}
    text = "" if answer.abstained else MARKER.sub("", answer.answer)
    return {
        "answer.exact_match": m.exact_match(text, item.answers),
        "answer.f1": m.token_f1(text, item.answers),
        "answer.contains": m.answer_contains(text, item.answers),
    }


def _citations(item: EvalItem, answer: Answer, corpus: Corpus) -> dict:
    cited = answer.citations
    # Evidence at quote level where quotes are given, else the gold articles (span None).
    evidence = _quote_spans(item, corpus) or [(doc, None) for doc in sorted(item.gold_doc_ids)]
    applies = bool(evidence) and item.answerable
    precision = sum(any(_cites(c, ev, corpus) for ev in evidence) for c in cited) / len(cited) if cited and applies else None
    recall = sum(any(_cites(c, ev, corpus) for c in cited) for ev in evidence) / len(evidence) if applies else None
    verbatim = sum(c.quote != "" and corpus.text(c.doc_id)[c.start : c.end] == c.quote for c in cited)
    return {
        "citation.precision": precision,
        "citation.recall": recall,
        "citation.verbatim": verbatim / len(cited) if cited else None,
        "citation.supported": None if answer.abstained else _supported_share(answer),
    }


def _cites(citation, evidence: tuple[str, tuple[int, int] | None], corpus: Corpus) -> bool:
    """A citation holds evidence when it overlaps the quote, or (no quote) is from the article."""
    doc, span = evidence
    if span is None:
        return corpus.canonical(citation.doc_id) == corpus.canonical(doc)
    return citation.doc_id == doc and m.span_overlap((citation.start, citation.end), span) > 0


def _supported_share(answer: Answer) -> float:
    """The share of the answer's sentences that cite a passage which supports them."""
    if answer.sentences:
        supported = {c.n for c in answer.citations if c.supported}
        return sum(bool(s.supported and set(s.citations) & supported) for s in answer.sentences) / len(answer.sentences)
    return 1.0 if answer.citations else 0.0  # a backend that reports no sentences: cited or not
