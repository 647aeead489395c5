"""Ingest orchestration: load → skip unchanged → chunk → embed (in large batches) → store + ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.chunking import Chunker
from index.documents import Article
from index.embedding import Embedder
from index.ledger import Ledger
from index.loading import Loader
from index.store import ChromaStore
from qa.errors import IngestError

# Articles are embedded together once this many chunks are waiting: big batches keep the model busy.
FLUSH_CHUNKS = 256


@dataclass
class FileResult:
    source: str
    status: str  # added | updated | unchanged | failed
    doc_id: str | None = None
    chunks: int = 0
    message: str = ""


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "updated"))

    def to_dict(self) -> dict:
        statuses = ("added", "updated", "unchanged", "failed")
        return {
            **{status: self.count(status) for status in statuses},
            "chunks": self.chunks,
            "results": [asdict(r) for r in self.results],
        }


class Indexer:
    def __init__(self, embedder: Embedder, store: ChromaStore, ledger: Ledger, chunk_size: int, chunk_overlap: int):
        self.embedder = embedder
        self.store = store
        self.ledger = ledger
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.loader = Loader()

    def ingest(self, paths: Iterable[str | Path], on_result: Callable[[FileResult], None] | None = None) -> IngestReport:
        self.store.check()
        report = IngestReport()
        emit = on_result or (lambda result: None)
        pending: list[Article] = []
        seen: set[str] = set()

        def finish(result: FileResult) -> None:
            report.results.append(result)
            emit(result)

        for item in self.loader.load(paths):
            if isinstance(item, IngestError):
                finish(FileResult(source=str(item).split(": ", 1)[0], status="failed", message=item.reason))
                continue
            if item.id in seen:
                finish(FileResult(item.path or item.id, "failed", item.id, message=f"duplicate id {item.id!r}; the first one was kept"))
                continue
            seen.add(item.id)
            if self.ledger.hash_of(item.id) == item.content_hash():
                finish(FileResult(item.path or item.id, "unchanged", item.id, len(self.ledger.chunk_ids(item.id))))
                continue
            pending.append(item)
            if len(pending) * 8 >= FLUSH_CHUNKS:  # ~8 chunks a news article; refined in _flush
                for result in self._flush(pending):
                    finish(result)
                pending = []
        for result in self._flush(pending):
            finish(result)
        return report

    @property
    def chunker(self) -> Chunker:
        if not hasattr(self, "_chunker"):
            self._chunker = Chunker(self.embedder.count_tokens, self.chunk_size, self.chunk_overlap)
        return self._chunker

    def _flush(self, articles: list[Article]) -> list[FileResult]:
        if not articles:
            return []
        chunked = [(article, self.chunker.split(article)) for article in articles]
        texts = [chunk.embedding_text() for _, chunks in chunked for chunk in chunks]
        vectors = iter(self.embedder.embed_documents(texts)) if texts else iter(())
        results = []
        for article, chunks in chunked:
            embeddings = [next(vectors) for _ in chunks]
            old_ids = self.ledger.chunk_ids(article.id)
            # Remove the old version first: chunk ids are positional, so a shorter new version
            # would otherwise leave its tail behind. The ledger row is written last, so a crash
            # here leaves a stale hash and the next run redoes this article.
            self.store.delete(old_ids)
            self.store.add(chunks, embeddings)
            self.ledger.record(article, [chunk.id for chunk in chunks])
            status = "updated" if old_ids else "added"
            results.append(FileResult(article.path or article.id, status, article.id, len(chunks)))
        return results
