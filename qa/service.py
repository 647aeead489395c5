"""Puts the stages together for the CLI and the UI: ingest, search, ask, list documents."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from functools import cached_property

from index.embedding import Embedder
from index.ledger import Ledger
from index.pipeline import FileResult, Indexer, IngestReport
from index.store import ChromaStore
from qa.answer import ExtractiveAnswerer
from qa.citations import Answer, Passage
from qa.errors import QAError
from qa.retrieve import Retriever
from qa.settings import Settings

MAX_QUESTION_CHARS = 2000


class QAService:
    """Cheap to build: nothing is loaded until a method needs it."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        # An embedder may be shared between services (tests, several data dirs in one process).
        self.embedder = embedder or Embedder(settings.embed_model, settings.embed_batch_size)
        self.store = ChromaStore(settings.data_dir, settings.collection, settings.embed_model)
        self.ledger = Ledger(settings.data_dir)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.store, self.settings.top_k)

    @cached_property
    def answerer(self) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(self.embedder, self.settings.min_answer_score, self.settings.max_answer_sentences)

    def ingest(self, paths: Iterable[str], on_result: Callable[[FileResult], None] | None = None) -> IngestReport:
        indexer = Indexer(self.embedder, self.store, self.ledger, self.settings.chunk_size, self.settings.chunk_overlap)
        return indexer.ingest(paths, on_result)

    def search(self, question: str, top_k: int | None = None, as_of: dt.date | None = None) -> list[Passage]:
        return self.retriever.search(_checked(question), top_k, as_of=as_of)

    def ask(self, question: str, top_k: int | None = None, as_of: dt.date | None = None) -> Answer:
        """`as_of` is the date the question is asked on (default today): "last week" is read from it."""
        question = _checked(question)
        began = time.perf_counter()
        passages = self.retriever.search(question, top_k, as_of=as_of)
        retrieved = time.perf_counter()
        answer = self.answerer.answer(question, passages)
        done = time.perf_counter()
        answer.timings_ms = {
            "retrieve": round((retrieved - began) * 1000, 1),
            "answer": round((done - retrieved) * 1000, 1),
            "total": round((done - began) * 1000, 1),
        }
        return answer

    def documents(self) -> list[dict]:
        return self.ledger.list()

    def document(self, doc_id: str) -> dict:
        record = self.ledger.get(doc_id)
        if record is None:
            raise QAError(f"no stored article has id {doc_id!r}; `qa docs list` shows the ids")
        return record


def _checked(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise QAError("the question is empty; type a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise QAError(f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}")
    return question
