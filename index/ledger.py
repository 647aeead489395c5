"""The document ledger: one SQLite row per stored article, the source of truth for what is live.

Chroma holds the vectors; the ledger says which chunk ids are current for each article, keeps
the full text that citations point into, and remembers chunk ids that may be left over from an
interrupted write (`pending`), so the next writer can sweep them away.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from index.documents import Article
from qa.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    path TEXT,
    root TEXT,
    title TEXT NOT NULL,
    published TEXT,
    source TEXT,
    url TEXT,
    authors TEXT NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    spans TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'stored',
    duplicate_of TEXT,
    minhash BLOB,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_root ON documents(root);
CREATE TABLE IF NOT EXISTS pending (chunk_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
COLUMNS = ("id", "path", "root", "title", "published", "source", "url", "authors", "text", "hash", "chunk_ids",
           "spans", "status", "duplicate_of", "minhash", "updated_at")
LIST_COLUMNS = "id, path, root, title, published, source, url, authors, hash, chunk_ids, status, duplicate_of, updated_at"


class Ledger:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "ledger.sqlite"
        self._ready = False  # schema created and migrated, once per instance, not per query

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5)
            connection.row_factory = sqlite3.Row
            if not self._ready:
                connection.execute("PRAGMA journal_mode=WAL")  # persistent: readers never wait for the writer
                connection.executescript(SCHEMA)
                _migrate(connection)
                self._ready = True
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"the ledger {self.path} cannot be opened ({exc}); restore it or start a new QA_DATA_DIR") from exc
        return connection

    # -- reading ---------------------------------------------------------------------------

    def get(self, doc_id: str) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return _as_dict(row) if row else None

    def hash_of(self, doc_id: str) -> str | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT hash FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row["hash"] if row else None

    def chunk_ids(self, doc_id: str) -> list[str]:
        with closing(self._connect()) as db:
            row = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row["chunk_ids"]) if row else []

    def list(self) -> list[dict]:
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT {LIST_COLUMNS} FROM documents ORDER BY published DESC, id").fetchall()
        return [_as_dict(row) for row in rows]

    def ids_under(self, root: str) -> set[str]:
        with closing(self._connect()) as db:
            return {row["id"] for row in db.execute("SELECT id FROM documents WHERE root = ?", (root,))}

    def live(self, doc_ids: Iterable[str]) -> dict[str, dict]:
        """hash and duplicate_of of the given stored documents; ids not stored are absent."""
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT id, hash, duplicate_of FROM documents WHERE id IN ({marks})", doc_ids)
            return {row["id"]: {"hash": row["hash"], "duplicate_of": row["duplicate_of"]} for row in rows}

    def chunk_records(self, doc_ids: Iterable[str]) -> dict[str, dict]:
        """Live chunks of the given articles: chunk id → article metadata with the chunk's text and span."""
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        found = {}
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT id, title, published, source, url, text, chunk_ids, spans, duplicate_of FROM documents WHERE id IN ({marks})",
                doc_ids,
            )
            for row in rows:
                for chunk_id, (start, end) in zip(json.loads(row["chunk_ids"]), json.loads(row["spans"])):
                    found[chunk_id] = {
                        "doc_id": row["id"], "title": row["title"], "published": row["published"] or "",
                        "source": row["source"] or "", "url": row["url"] or "", "start": start, "end": end,
                        "text": row["text"][start:end], "duplicate_of": row["duplicate_of"],
                    }
        return found

    def minhashes(self) -> Iterable[tuple[str, bytes]]:
        with closing(self._connect()) as db:
            yield from ((r["id"], r["minhash"]) for r in db.execute("SELECT id, minhash FROM documents WHERE minhash IS NOT NULL"))

    def all_chunk_ids(self) -> set[str]:
        with closing(self._connect()) as db:
            return {cid for row in db.execute("SELECT chunk_ids FROM documents") for cid in json.loads(row["chunk_ids"])}

    def pending(self) -> list[str]:
        with closing(self._connect()) as db:
            return [row["chunk_id"] for row in db.execute("SELECT chunk_id FROM pending")]

    # -- writing (only under the data dir's write lock) --------------------------------------

    def mark_pending(self, chunk_ids: Iterable[str]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((c,) for c in chunk_ids))

    def clear_pending(self, chunk_ids: Iterable[str]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany("DELETE FROM pending WHERE chunk_id = ?", ((c,) for c in chunk_ids))

    def generation(self) -> int:
        """Goes up with every change to what is stored; derived indexes compare against it."""
        with closing(self._connect()) as db:
            return db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()["value"]

    def chunk_texts(self) -> Iterable[tuple[str, str, dict]]:
        """(chunk id, title + chunk text, article metadata) for every live chunk."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, title, published, source, text, chunk_ids, spans FROM documents ORDER BY id")
            for row in rows:
                meta = {"doc_id": row["id"], "published": row["published"], "source": row["source"]}
                for chunk_id, (start, end) in zip(json.loads(row["chunk_ids"]), json.loads(row["spans"])):
                    yield chunk_id, f"{row['title']}\n{row['text'][start:end]}", meta

    def record(self, article: Article, chunks: list, duplicate_of: str | None = None, minhash: bytes | None = None) -> None:
        """One transaction: from its commit on, the new chunks are the article's live ones, and
        the old ones are pending (to be deleted from the store)."""
        chunk_ids = [chunk.id for chunk in chunks]
        row = (
            article.id, article.path, article.root, article.title, article.published, article.source, article.url,
            json.dumps(list(article.authors)), article.text, article.content_hash(), json.dumps(chunk_ids),
            json.dumps([[chunk.start, chunk.end] for chunk in chunks]), "stored", duplicate_of, minhash, time.time(),
        )
        with closing(self._connect()) as db, db:
            old = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (article.id,)).fetchone()
            stale = set(json.loads(old["chunk_ids"])) - set(chunk_ids) if old else set()
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((c,) for c in stale))
            marks = ",".join("?" * len(COLUMNS))
            db.execute(f"INSERT OR REPLACE INTO documents ({','.join(COLUMNS)}) VALUES ({marks})", row)
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")

    def remove(self, doc_id: str) -> list[str]:
        """Forget a document (its chunks become pending); returns its chunk ids."""
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                return []
            chunk_ids = json.loads(row["chunk_ids"])
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((c,) for c in chunk_ids))
            db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            # Copies of the removed article lose their canonical; the first copy takes over.
            copies = [r["id"] for r in db.execute("SELECT id FROM documents WHERE duplicate_of = ? ORDER BY id", (doc_id,))]
            if copies:
                db.execute("UPDATE documents SET duplicate_of = NULL WHERE id = ?", (copies[0],))
                db.executemany("UPDATE documents SET duplicate_of = ? WHERE id = ?", ((copies[0], c) for c in copies[1:]))
        return chunk_ids


def _migrate(db: sqlite3.Connection) -> None:
    """Add columns that ledgers written by earlier versions lack."""
    present = {row["name"] for row in db.execute("PRAGMA table_info(documents)")}
    types = {"root": "TEXT", "spans": "TEXT NOT NULL DEFAULT '[]'", "status": "TEXT NOT NULL DEFAULT 'stored'", "duplicate_of": "TEXT", "minhash": "BLOB"}
    for column, kind in types.items():
        if column not in present:
            db.execute(f"ALTER TABLE documents ADD COLUMN {column} {kind}")


def _as_dict(row: sqlite3.Row) -> dict:
    record = {key: row[key] for key in row.keys() if key != "minhash"}
    record["authors"] = json.loads(record["authors"])
    record["chunk_ids"] = json.loads(record["chunk_ids"])
    record.pop("spans", None)
    record["chunks"] = len(record["chunk_ids"])
    return record
