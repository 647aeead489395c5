"""Runs an evaluation set through the service, one question at a time, and judges each.

The service (and its model) is built once by the caller; this module only asks and searches.
"""

from __future__ import annotations

from collections.abc import Callable

from eval.choice import ChoicePicker
from eval.judge import QuestionResult, judge
from eval.sets import EvalItem, load_set  # noqa: F401  (load_set is part of this module's API)
from qa.conversation import Turn

# Chunks searched for the article ranking: long articles fill several of the top chunks, and
# hit@10 needs ten distinct articles.
RETRIEVAL_DEPTH = 50


class LedgerCorpus:
    """Article texts and duplicate links from the service's ledger, each read once."""

    def __init__(self, service):
        self.service = service
        self._records: dict[str, dict | None] = {}

    def _record(self, doc_id: str) -> dict | None:
        if doc_id not in self._records:
            self._records[doc_id] = self.service.ledger.get(doc_id)
        return self._records[doc_id]

    def text(self, doc_id: str) -> str:
        return (self._record(doc_id) or {}).get("text", "")

    def canonical(self, doc_id: str) -> str:
        return (self._record(doc_id) or {}).get("duplicate_of") or doc_id


def run(service, items: list[EvalItem], on_result: Callable[[QuestionResult], None] | None = None) -> list[QuestionResult]:
    picker = ChoicePicker(service.embedder)
    results = []
    conversations: dict[str, list[Turn]] = {}  # a follow-up is asked with its conversation so far
    for item in items:
        history = conversations.setdefault(item.conversation, []) if item.conversation else []
        answer = service.ask(item.question, as_of=item.as_of, history=history)
        asked = answer.standalone_question or item.question  # what retrieval was given
        history.append(Turn(asked, answer.answer))
        ranked = service.search(asked, top_k=RETRIEVAL_DEPTH, as_of=item.as_of)
        choice = picker.pick(asked, item.choices, answer.passages) if item.choices else None
        result = judge(item, answer, ranked, LedgerCorpus(service), choice)
        results.append(result)
        if on_result:
            on_result(result)
    return results
