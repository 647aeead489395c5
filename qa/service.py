"""Puts the stages together for the CLI and the UI: ingest, search, ask, list documents."""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from typing import get_args

from index.embedding import Embedder
from index.ledger import Ledger
from index.loading import Loader
from index.pipeline import FileResult, Indexer, IngestReport
from index.store import ChromaStore
from qa.answer import ExtractiveAnswerer
from qa.citations import Answer, Passage
from qa.conversation import FollowUpRewriter, Turn
from qa.errors import ConfigError, NotFoundError, QAError
from qa.question import checked_question
from qa.retrieve import Filters, Retrieval, Retriever
from qa.settings import Settings

BACKENDS: tuple[str, ...] = get_args(Settings.model_fields["llm"].annotation)  # extractive, openai, …


class QAService:
    """Cheap to build: nothing is loaded until a method needs it."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        # An embedder may be shared between services (tests, several data dirs in one process).
        self.embedder = embedder or Embedder(settings.embed_model, settings.embed_batch_size, settings.embed_backend,
                                             settings.models_dir or settings.data_dir / "models",
                                             recorded=lambda: self.store.recorded())
        self.store = ChromaStore(settings.data_dir, settings.collection, self.embedder.identity_for, settings.chroma_url)
        self.ledger = Ledger(settings.data_dir)

    @cached_property
    def retriever(self) -> Retriever:
        reranker = None
        if self.settings.rerank_model:
            from qa.rerank import CrossEncoderReranker

            reranker = CrossEncoderReranker(self.settings.rerank_model)
        return Retriever(self.embedder, self.store, self.ledger, self.settings.top_k,
                         self.settings.max_passages_per_article, reranker)

    @cached_property
    def answerer(self):
        """ExtractiveAnswerer, or LLMAnswerer for QA_LLM=openai|ollama|llamacpp|hf; both stream."""
        extractive = ExtractiveAnswerer(self.embedder, self.settings.min_answer_score, self.settings.max_answer_sentences)
        if self.settings.llm == "extractive":
            return extractive
        from qa.generate import LLMAnswerer
        from qa.verify import CitationVerifier

        return LLMAnswerer(
            self.backend, CitationVerifier(self.embedder, self.settings.citation_min_support), extractive,
            self.settings.llm_min_evidence, fallback=self.settings.llm_fallback == "extractive",
        )

    @cached_property
    def backend(self):
        from qa.llm import make_backend

        return make_backend(self.settings)

    @cached_property
    def rewriter(self) -> FollowUpRewriter:
        if self.settings.llm == "extractive":
            return FollowUpRewriter()
        return FollowUpRewriter(self.backend, fallback=self.settings.llm_fallback == "extractive")

    @property
    def indexer(self) -> Indexer:
        loader = Loader(max_file_mb=self.settings.max_file_mb)
        return Indexer(self.embedder, self.store, self.ledger, self.settings.chunk_size, self.settings.chunk_overlap, loader,
                       min_free_mb=self.settings.min_free_mb)

    def ingest(self, paths: Iterable[str], on_result: Callable[[FileResult], None] | None = None,
               prune: bool = False) -> IngestReport:
        return self.indexer.ingest(paths, on_result, prune=prune)

    def delete(self, doc_id: str) -> None:
        if not self.indexer.delete(doc_id):
            raise NotFoundError(f"no stored article has id {doc_id!r}; `qa docs list` shows the ids")

    def search(self, question: str, top_k: int | None = None, as_of: dt.date | None = None,
               filters: Filters | None = None) -> list[Passage]:
        return self.retrieve(question, top_k, as_of, filters).passages

    def retrieve(self, question: str, top_k: int | None = None, as_of: dt.date | None = None,
                 filters: Filters | None = None) -> Retrieval:
        """Passages with the as-of date, the date range read from the question, and the filters."""
        return self.retriever.retrieve(checked_question(question, self.settings.max_question_chars), top_k, as_of=as_of, filters=filters)

    def ask(
        self, question: str, top_k: int | None = None, as_of: dt.date | None = None, history: Sequence[Turn] = (),
        filters: Filters | None = None,
    ) -> Answer:
        """`as_of` is the date the question is asked on (default today): "last week" is read from it.

        `history` holds the conversation so far; a follow-up is rewritten to stand alone first.
        """
        *_, answer = self.ask_stream(question, top_k, as_of, history, filters)
        return answer

    def ask_stream(
        self, question: str, top_k: int | None = None, as_of: dt.date | None = None, history: Sequence[Turn] = (),
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        """Text deltas as the answer is written, then the final Answer, the same one `ask` returns."""
        question = checked_question(question, self.settings.max_question_chars)
        began = time.perf_counter()
        standalone = self.rewriter.rewrite(question, history)
        rewritten = time.perf_counter()
        passages = self.retriever.search(standalone, top_k, as_of=as_of, filters=filters)
        retrieved = time.perf_counter()
        answer = None
        for item in self.answerer.answer_stream(standalone, passages, as_of):
            if isinstance(item, Answer):
                answer = item
            else:
                yield item
        done = time.perf_counter()
        answer.question = question
        answer.timings_ms = {
            "retrieve": round((retrieved - rewritten) * 1000, 1),
            "answer": round((done - retrieved) * 1000, 1),
            "total": round((done - began) * 1000, 1),
        }
        if standalone != question:
            answer.standalone_question = standalone
            answer.timings_ms["rewrite"] = round((rewritten - began) * 1000, 1)
        yield answer

    def check_index(self):
        """`qa index check`: the vector store and keyword index against the ledger (a CheckReport)."""
        from index.check import IndexChecker
        from index.pipeline import WriteLock

        with WriteLock(self.settings.data_dir):  # no writer half-way through while we compare
            return IndexChecker(self.store, self.ledger).check()

    def repair_index(self, on_step: Callable[[str], None] | None = None):
        """`qa index repair`: make them agree again, from the ledger's texts (a RepairReport)."""
        from index.repair import IndexRepairer

        return IndexRepairer(self.indexer, on_step).repair()

    def check_readable(self) -> None:
        """Fail now, naming the damaged file, rather than at the first question (`qa serve`)."""
        problems = self.ledger.integrity(quick=True)
        if problems:
            from qa.errors import IndexCorruptError

            raise IndexCorruptError(f"the ledger {self.ledger.path} is damaged ({problems[0]}); run `qa index repair`")
        self.ledger.generation()
        self.store.check()

    def documents(self) -> list[dict]:
        return self.ledger.list()

    def document(self, doc_id: str) -> dict:
        record = self.ledger.get(doc_id)
        if record is None:
            raise NotFoundError(f"no stored article has id {doc_id!r}; `qa docs list` shows the ids")
        return record

    def status(self) -> dict:
        """What `qa serve` shows and `/api/health` returns: the corpus and how it is searched."""
        records = self.documents()
        return {
            "articles": len(records),
            "chunks": sum(r["chunks"] for r in records),
            "embed_model": self.settings.embed_model,
            "embed_backend": self._embed_backend(),
            "question_encoder": self.embedder.question_encoder,
            "backend": self.settings.llm,
            "llm_model": self.settings.llm_model or self.settings.llm_model_path or None,
            "data_dir": str(self.settings.data_dir),
            "store": self.store.where,
        }

    def _embed_backend(self) -> str:
        try:
            return self.embedder.backend
        except QAError:  # "auto" cannot read the index now; the search or ingest will say why
            return "auto"

    def with_llm(self, llm: str) -> QAService:
        """The same corpus, model and retriever, answered by another backend; one per name, reused."""
        if llm == self.settings.llm:
            return self
        if llm not in BACKENDS:
            raise ConfigError(f"unknown backend {llm!r} (QA_LLM); choose one of: {', '.join(BACKENDS)}")
        variants = self.__dict__.setdefault("_variants", {})
        if llm not in variants:
            other = copy.copy(self)
            other.settings = self.settings.model_copy(update={"llm": llm})
            for name in ("answerer", "backend", "rewriter", "_variants"):
                other.__dict__.pop(name, None)  # cached for this backend; the other builds its own
            variants[llm] = other
        return variants[llm]
