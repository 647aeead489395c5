"""`qa index repair`: make the vector store and the keyword index agree with the ledger again.

Orphan chunks are deleted; missing or altered ones are embedded again from the texts the ledger
stores; a damaged embedded Chroma folder is set aside and rebuilt the same way. A damaged ledger
is rebuilt from its rows that still read back sound, and the articles it lost are reassembled
from their chunks in Chroma (text, spans and metadata), kept only when the content hash that
every chunk carries matches. Damaged files are moved aside, never deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from index.check import CheckReport, IndexChecker
from index.chunking import doc_id_of
from index.dedup import NearDuplicates
from index.documents import Article
from index.ledger import chunks_of
from index.pipeline import CHARS_PER_CHUNK, FLUSH_BATCHES, Indexer, WriteLock
from qa.errors import StoreError

GAP_FILLS = (" ", "\n")  # what the splitter may have dropped between two chunks that do not overlap


@dataclass
class RepairReport:
    before: CheckReport
    after: CheckReport | None = None
    actions: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # articles reassembled from Chroma into a new ledger
    lost: list[str] = field(default_factory=list)  # articles in Chroma that could not be reassembled
    embedded: int = 0  # chunks embedded again
    deleted: int = 0  # chunks deleted from the store

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(before=self.before.to_dict(), after=self.after.to_dict() if self.after else None)
        return data


class IndexRepairer:
    def __init__(self, indexer: Indexer, on_step: Callable[[str], None] | None = None):
        self.indexer = indexer
        self.store, self.ledger, self.embedder = indexer.store, indexer.ledger, indexer.embedder
        self.checker = IndexChecker(self.store, self.ledger)
        self.on_step = on_step or (lambda step: None)

    def repair(self) -> RepairReport:
        with WriteLock(self.ledger.path.parent), self.store.writing(self.ledger.generation):
            report = RepairReport(before=self.checker.check())
            if report.before.ledger_problems:
                self._rebuild_ledger(report, readable_store=report.before.store_problem is None)
            if report.before.store_problem:
                if self.store.url:
                    raise StoreError(f"the Chroma server at {self.store.url} cannot be read "
                                     f"({report.before.store_problem}); repair the server, then run `qa index repair` again")
                kept = self.store.set_aside()
                self._step(report, f"moved the damaged vector store to {kept}; rebuilding it from the ledger")
            found = self.checker.check() if report.actions else report.before
            stale = found.orphans + found.leftovers + found.mismatched
            if stale:
                self.store.delete(stale)
                report.deleted = len(stale)
                self._step(report, f"deleted {len(stale)} chunks the ledger does not hold as they are")
            self.ledger.clear_pending(self.ledger.pending())
            redo = set(found.missing) | set(found.mismatched)
            if redo:
                report.embedded = self._embed(redo)
                self._step(report, f"embedded {report.embedded} chunks again from the ledger's texts "
                                   f"(with {self.embedder.backend})")
            if found.keyword_problem or found.keyword_behind or report.actions:
                self.indexer.keywords.rebuild(self.ledger, fresh=True)
                self._step(report, "rebuilt the keyword index")
            report.after = self.checker.check()
        return report

    def _step(self, report: RepairReport, action: str) -> None:
        report.actions.append(action)
        self.on_step(action)

    def _embed(self, chunk_ids: set[str]) -> int:
        """Embed the given live chunks again, from the ledger's text and spans, in large batches."""
        limit = FLUSH_BATCHES * self.embedder.batch_size * CHARS_PER_CHUNK
        batch, size, done = [], 0, 0
        for row in self.ledger.rows():
            for chunk in chunks_of(row):
                if chunk.id in chunk_ids:
                    batch.append(chunk)
                    size += len(chunk.text)
            if size >= limit:
                done += self._add(batch)
                batch, size = [], 0
        return done + self._add(batch)

    def _add(self, chunks: list) -> int:
        if chunks:
            self.store.add(chunks, self.embedder.embed_chunks(chunks))
        return len(chunks)

    def _rebuild_ledger(self, report: RepairReport, readable_store: bool) -> None:
        rows, problem = self.ledger.salvage()
        self._step(report, f"read {len(rows)} sound articles from the damaged ledger" + (f" ({problem})" if problem else ""))
        known = {row["id"] for row in rows}
        by_article: dict[str, list] = {}
        if readable_store:
            for chunk_id, metadata, text in self.store.records():
                by_article.setdefault(doc_id_of(chunk_id), []).append((chunk_id, metadata or {}, text or ""))
        duplicates = NearDuplicates(((r["id"], r["minhash"]) for r in rows if r.get("minhash")),
                                    {r["id"]: r.get("duplicate_of") for r in rows})
        for doc_id in sorted(set(by_article) - known):
            row = reassembled(doc_id, by_article[doc_id])
            if row is None:
                report.lost.append(doc_id)
                continue
            row["duplicate_of"], row["minhash"] = duplicates.add(doc_id, row["text"])
            rows.append(row)
            report.restored.append(doc_id)
        for row in rows:  # a copy whose canonical article was lost becomes canonical itself
            if row.get("duplicate_of") and row["duplicate_of"] not in {r["id"] for r in rows}:
                row["duplicate_of"] = None
        generation = max(self.indexer.keywords.persisted_generation() or 0, _generation_or_zero(self.ledger)) + 1
        kept = self.ledger.replace(rows, generation)
        self._step(report, f"rebuilt the ledger with {len(rows)} articles ({len(report.restored)} reassembled from the "
                           f"vector store, {len(report.lost)} lost); the damaged file was moved to {kept}")


def reassembled(doc_id: str, chunks: list[tuple[str, dict, str]]) -> dict | None:
    """A ledger row rebuilt from an article's chunks in Chroma, or None unless its content hash
    proves the text, title, dates and authors are exactly the ones ingested."""
    chunks = sorted(chunks, key=lambda c: c[1].get("index", -1))
    first = chunks[0][1]
    content_hash = first.get("content_hash", "")
    if [c[1].get("index") for c in chunks] != list(range(len(chunks))) or any(
            c[1].get("content_hash") != content_hash or c[0] != f"{doc_id}::{content_hash[:12]}::{i}" for i, c in enumerate(chunks)):
        return None  # a chunk is missing, or two versions of the article are mixed
    for fill in GAP_FILLS:
        text = _joined(chunks, fill)
        if text is None:
            return None
        article = Article(
            id=doc_id, title=first.get("title", ""), text=text, published=first.get("published") or None,
            source=first.get("source") or None, url=first.get("url") or None,
            authors=tuple(first["authors"].split("; ")) if first.get("authors") else (),
            path=first.get("path") or None, root=first.get("root") or None,
        )
        if article.content_hash() == content_hash:
            return {
                "id": doc_id, "path": article.path, "root": article.root, "title": article.title,
                "published": article.published, "source": article.source, "url": article.url,
                "authors": json.dumps(list(article.authors)), "text": text, "hash": content_hash,
                "chunk_ids": json.dumps([c[0] for c in chunks]),
                "spans": json.dumps([[c[1]["start"], c[1]["end"]] for c in chunks]),
                "status": "stored", "duplicate_of": None, "minhash": None, "updated_at": time.time(),
            }
    return None


def _joined(chunks: list[tuple[str, dict, str]], fill: str) -> str | None:
    """The article text from overlapping spans; None when two chunks disagree where they overlap."""
    text = ""
    for _, metadata, piece in chunks:
        start, end = metadata.get("start"), metadata.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or end - start != len(piece):
            return None
        if start > len(text):
            text += fill * (start - len(text))
        overlap = text[start:]
        if not piece.startswith(overlap[: len(piece)]):
            return None
        text = text[:start] + piece if end >= len(text) else text
    return text


def _generation_or_zero(ledger) -> int:
    try:
        return ledger.generation()
    except StoreError:
        return 0
