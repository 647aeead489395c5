"""Ingest orchestration: load → skip unchanged → chunk → embed (in large batches) → store + ledger.

Writes are crash-safe without a transaction spanning Chroma and SQLite: new chunks get new ids
(the content hash is in them), the ledger switches a pool of articles to their new chunks in
one SQLite commit, and chunk ids that may be left over are kept in the ledger's `pending` table
until they are gone from the store. Readers only trust chunks whose hash the ledger holds.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.chunking import Chunker
from index.dedup import NearDuplicates
from index.documents import Article
from index.embedding import Embedder
from index.keyword import KeywordIndex, counts_of
from index.ledger import Ledger
from index.loading import Loader
from index.space import disk_full, ensure_free
from index.store import ChromaStore
from qa.errors import IngestError, QAError, StoreError

# Articles are embedded together once about this many model batches of chunks are waiting:
# big pools keep the model busy and let it sort by length (a pool of ~128 chunks padded 5.3 %
# more tokens than sorting all of them, ~512 chunks 2.3 %, measured on 600 RealTime QA
# articles); bounded ones keep memory flat on huge inputs.
FLUSH_BATCHES = 16
CHARS_PER_CHUNK = 1000
STATUSES = ("added", "updated", "unchanged", "failed", "deleted")
# Where an ingest's time goes (IngestReport.stages): loading the model (and exporting it, the first
# time), reading and parsing files, splitting, waiting for the encoder, Chroma's writes, the ledger
# (with the near-duplicate signatures) and the keyword index. They add up to the ingest's time; on
# an onnx backend the encoder runs beside the other stages, so "embed" is only what they did not
# hide, and the encoder's own time is IngestReport.encoder. The encoder is the floor; docs/benchmarks.md.
STAGES = ("model", "read", "chunk", "embed", "store", "ledger", "keywords")


@dataclass
class FileResult:
    source: str
    status: str  # one of STATUSES
    doc_id: str | None = None
    chunks: int = 0
    message: str = ""
    duplicate_of: str | None = None


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))  # seconds
    encoder: float = 0.0  # seconds the model spent on the chunks, in the background or not

    @contextmanager
    def timing(self, stage: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] += time.perf_counter() - began

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "updated"))

    def to_dict(self) -> dict:
        return {
            **{status: self.count(status) for status in STATUSES},
            "chunks": self.chunks,
            "stages": {stage: round(seconds, 3) for stage, seconds in self.stages.items()},
            "encoder_seconds": round(self.encoder, 3),
            "results": [asdict(r) for r in self.results],
        }


class WriteLock:
    """One writer per data dir: a second one fails at once instead of waiting on SQLite."""

    def __init__(self, data_dir: Path):
        from filelock import FileLock

        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(Path(data_dir) / "write.lock"), timeout=0)
        self._owner = Path(data_dir) / "write.pid"
        self.data_dir = data_dir

    def __enter__(self):
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            owner = self._owner.read_text().strip() if self._owner.exists() else "unknown"
            raise StoreError(
                f"another qa process (pid {owner}) is writing to {self.data_dir}; "
                "wait for it to finish (queries still work meanwhile)"
            ) from None
        try:
            self._owner.write_text(str(os.getpid()))
        except OSError:  # only informational (who holds the lock); a full disk must not stop a repair
            pass
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


class Indexer:
    def __init__(self, embedder: Embedder, store: ChromaStore, ledger: Ledger, chunk_size: int, chunk_overlap: int,
                 loader: Loader | None = None, min_free_mb: float = 0):
        self.embedder = embedder
        self.store = store
        self.ledger = ledger
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.loader = loader or Loader()
        self.keywords = KeywordIndex(ledger.path.parent)
        self._counted: list = []  # term counts of the pools an ingest wrote (_keywords_follow)
        self.min_free_mb = min_free_mb  # a pool is not written with less free than this

    @property
    def chunker(self) -> Chunker:
        if not hasattr(self, "_chunker"):
            self._chunker = Chunker(self.embedder.count_tokens, self.chunk_size, self.chunk_overlap,
                                    self.embedder.wordpieces)
        return self._chunker

    def ingest(self, paths: Iterable[str | Path], on_result: Callable[[FileResult], None] | None = None,
               prune: bool = False) -> IngestReport:
        report = IngestReport()
        emit = on_result or (lambda result: None)

        def finish(result: FileResult) -> None:
            report.results.append(result)
            emit(result)

        with WriteLock(self.ledger.path.parent), self.store.writing(self.ledger.generation), \
                self._keywords_follow(report):
            with report.timing("store"):
                self.store.check()
                self.sweep()
            with report.timing("ledger"):
                duplicates = NearDuplicates(self.ledger.minhashes(), {d["id"]: d["duplicate_of"] for d in self.ledger.list()})
            pending: list[Article] = []
            encoded = self.embedder.chunk_seconds
            in_flight: Pool | None = None  # a pool being embedded, written when the next one starts
            pools = 0
            seen: dict[str, set[str]] = {}  # root → ids found there
            for item in _timed(self.loader.load(paths), report, "read"):
                if isinstance(item, IngestError):
                    finish(FileResult(source=_where(item), status="failed", message=item.reason))
                    continue
                if item.id in seen.get(item.root, set()) or any(item.id == p.id for p in pending):
                    finish(FileResult(item.path or item.id, "failed", item.id, message=f"duplicate id {item.id!r}; the first one was kept"))
                    continue
                seen.setdefault(item.root, set()).add(item.id)
                with report.timing("ledger"):
                    unchanged = self.ledger.hash_of(item.id) == item.content_hash()
                if unchanged:
                    finish(FileResult(item.path or item.id, "unchanged", item.id, len(self.ledger.chunk_ids(item.id))))
                    continue
                pending.append(item)
                if sum(len(a.text) for a in pending) >= self._pool_chars(pools):
                    in_flight = self._flush(pending, in_flight, duplicates, report, finish)
                    pending, pools = [], pools + 1
            in_flight = self._flush(pending, in_flight, duplicates, report, finish)
            self._flush([], in_flight, duplicates, report, finish)
            report.encoder = self.embedder.chunk_seconds - encoded
            if prune:
                for root, ids in seen.items():
                    for doc_id in sorted(self.ledger.ids_under(root) - ids):
                        finish(FileResult(doc_id, "deleted", doc_id, message="its file is gone (--prune)"))
                        with report.timing("store"):
                            self._delete(doc_id, duplicates)
        return report

    @contextmanager
    def _keywords_follow(self, report: IngestReport):
        """The keyword index catches up with the ledger when a write ends, also one that failed
        part-way (if a full disk refuses that too, readers build it in memory meanwhile), with
        the term counts `_write` made of each pool."""
        self._counted = []
        try:
            yield
        except Exception:
            with suppress(QAError, OSError):
                self._sync_keywords(self._counted)
            raise
        else:
            with report.timing("keywords"):
                self._sync_keywords(self._counted)
        finally:
            self._counted = []

    def _sync_keywords(self, counted: list = ()) -> None:
        """Rebuild the BM25 index when the ledger moved on since it was built."""
        if self.keywords.persisted_generation() != self.ledger.generation():
            with _disk_named(self.ledger.path.parent, "writing the keyword index"):
                self.keywords.rebuild(self.ledger, counted=counted)

    def delete(self, doc_id: str) -> bool:
        with WriteLock(self.ledger.path.parent), self.store.writing(self.ledger.generation):
            deleted = self._delete(doc_id, None)
            self._sync_keywords()
            return deleted

    def _delete(self, doc_id: str, duplicates: NearDuplicates | None) -> bool:
        chunk_ids = self.ledger.remove(doc_id)  # from here on the chunks no longer count
        if duplicates is not None:
            duplicates.remove(doc_id)
        self.store.delete(chunk_ids)
        self.ledger.clear_pending(chunk_ids)
        return bool(chunk_ids)

    def sweep(self) -> int:
        """Delete chunks an interrupted write left in the store; returns how many."""
        pending = self.ledger.pending()
        if not pending:
            return 0
        live = self.ledger.all_chunk_ids()
        stale = [c for c in pending if c not in live]
        self.store.delete(stale)
        self.ledger.clear_pending(pending)
        return len(stale)

    def _flush(self, articles: list[Article], in_flight: Pool | None, duplicates: NearDuplicates,
               report: IngestReport, finish: Callable[[FileResult], None]) -> Pool | None:
        """Start embedding `articles`, then write the pool started before them: the model works
        on one pool while the one before is written and the one after read and chunked.
        Returns the pool now in flight."""
        started = None
        try:
            if articles:
                started = self._start(articles, report)
            if in_flight is not None:
                if self.min_free_mb:  # checked before each pool's writes, which lag its start by a pool
                    ensure_free(self.ledger.path.parent, self.min_free_mb)
                for result in self._write(in_flight, duplicates, report):
                    finish(result)
        except BaseException:
            if started is not None:
                started.vectors.cancel()  # not written: its vectors are not needed (a running one ends alone)
            raise
        finally:
            if in_flight is not None:
                _return_freed_memory()
        return started

    def _pool_chars(self, started: int) -> int:
        """Characters of articles that make the next pool, `started` pools in. Where the model
        embeds in the background, it waits for the first pool to be chunked (711 chunks, 2.4 s on
        the Zen 3 host of docs/benchmarks.md): so the first pool is one model batch and each one
        after twice the one before, up to FLUSH_BATCHES, each chunked in about a fifth of the
        time the model takes over the one before it."""
        batches = min(FLUSH_BATCHES, 2**started) if self.embedder.in_background else FLUSH_BATCHES
        return batches * self.embedder.batch_size * CHARS_PER_CHUNK

    def _start(self, articles: list[Article], report: IngestReport) -> Pool:
        with report.timing("model"):  # once per process: the model, and the ONNX export the first time
            self.embedder.load()
        with report.timing("chunk"):
            chunked = [(article, self.chunker.split(article)) for article in articles]
        chunks = [chunk for _, pieces in chunked for chunk in pieces]
        with report.timing("embed"):
            vectors = self.embedder.embed_chunks_later(chunks)
        return Pool(chunked, chunks, vectors)

    def _write(self, pool: Pool, duplicates: NearDuplicates, report: IngestReport) -> list[FileResult]:
        chunks = pool.chunks
        with report.timing("embed"):  # what is left of the pool's embedding, if anything
            vectors = pool.vectors.result()
        new_ids = [chunk.id for chunk in chunks]
        with report.timing("ledger"):
            self.ledger.mark_pending(new_ids)  # written before the store, so a crash can be swept
        # One add for the whole batch: Chroma's cost is mostly per call (1,500 vectors in 150
        # calls took 6 s, in one call 0.9 s).
        with report.timing("store"):
            self.store.add(chunks, vectors)
        results, stale = [], []
        with report.timing("ledger"):
            entries = [(article, pieces, *duplicates.add(article.id, article.text)) for article, pieces in pool.chunked]
            olds = self.ledger.record_many(entries)  # the switch, for the whole pool in one commit
        for (article, pieces, duplicate_of, _), old_ids in zip(entries, olds):
            current = {chunk.id for chunk in pieces}
            stale += [c for c in old_ids if c not in current]
            status = "updated" if old_ids else "added"
            results.append(FileResult(article.path or article.id, status, article.id, len(pieces),
                                      "; ".join(article.warnings), duplicate_of))
        with report.timing("store"):
            self.store.delete(stale)
        with report.timing("ledger"):
            self.ledger.clear_pending(new_ids + stale)
        with report.timing("keywords"):  # while the model embeds the next pool, not after the last
            self._counted.append(counts_of([chunk.keyword_text() for chunk in chunks]))
        return results


@dataclass
class Pool:
    """Articles chunked, all their chunks in order, and the chunks' vectors on the way
    (index.embedding's `embed_chunks_later`)."""
    chunked: list[tuple[Article, list]]
    chunks: list
    vectors: Future


@contextmanager
def _disk_named(data_dir: Path, doing: str):
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(data_dir, doing) from exc
        raise


def _timed(items: Iterable, report: IngestReport, stage: str) -> Iterator:
    """`items`, with the time spent producing each one (the loader reads and parses lazily) added to `stage`."""
    iterator = iter(items)
    while True:
        with report.timing(stage):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def _return_freed_memory() -> None:
    """Hand freed heap back to the OS after each batch. Model activations of varying shapes
    fragment glibc's heap, and without this an ingest's RSS creeps up batch after batch."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _where(error: IngestError) -> str:
    return f"{error.source}:{error.line}" if error.line is not None else error.source
