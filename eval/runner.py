"""Runs an evaluation set through the service and judges each question.

A question passes when an answerable one is answered with an acceptable answer inside the
cited text, or an unanswerable one is declined. Every citation must quote its article exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class QuestionResult:
    id: str
    question: str
    answerable: bool
    abstained: bool
    answer: str
    passed: bool
    reason: str  # why it failed; empty when it passed
    citations_exact: bool

    def to_dict(self) -> dict:
        return asdict(self)


def load_set(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(item: dict, answer, article_texts: dict[str, str]) -> QuestionResult:
    citations_exact = all(
        article_texts.get(c.doc_id, "")[c.start : c.end] == c.quote for c in answer.citations
    )
    answerable = bool(item.get("answerable", True))
    text = answer.answer.lower()
    if not citations_exact:
        passed, reason = False, "a citation does not quote its article exactly"
    elif not answerable:
        passed, reason = answer.abstained, "" if answer.abstained else "answered a question the sources cannot answer"
    elif answer.abstained:
        passed, reason = False, "declined an answerable question"
    elif any(expected.lower() in text for expected in item.get("answers", [])):
        passed, reason = True, ""
    else:
        passed, reason = False, "no acceptable answer in the answer text"
    return QuestionResult(
        id=item["id"], question=item["question"], answerable=answerable, abstained=answer.abstained,
        answer=answer.answer, passed=passed, reason=reason, citations_exact=citations_exact,
    )


def run(service, items: list[dict]) -> list[QuestionResult]:
    results = []
    for item in items:
        answer = service.ask(item["question"])
        texts = {c.doc_id: service.document(c.doc_id)["text"] for c in answer.citations}
        results.append(judge(item, answer, texts))
    return results
