"""The document ledger: one SQLite row per stored article, the source of truth for what is live.

Chroma holds the vectors; the ledger says which chunk ids are current for each article, keeps
the full text that citations point into, and remembers chunk ids that may be left over from an
interrupted write (`pending`), so the next writer can sweep them away.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from index.chunking import chunk_id as chunk_id_of, doc_id_of
from index.documents import Article, Chunk, keyword_text
from index.space import disk_full, is_disk_full
from qa.errors import IndexCorruptError, StoreError

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
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5)
        connection.row_factory = sqlite3.Row
        if not self._ready:
            try:
                connection.execute("PRAGMA journal_mode=WAL")  # persistent: readers never wait for the writer
                connection.executescript(SCHEMA)
                _migrate(connection)
            except BaseException:
                connection.close()
                raise
            self._ready = True
        return connection

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection, closed after use; SQLite's errors become ones that say what to do."""
        try:
            with closing(self._connect()) as connection:
                yield connection
        except sqlite3.Error as exc:
            raise self._explained(exc) from exc
        except OSError as exc:  # the data dir itself cannot be created or written
            raise StoreError(f"the ledger {self.path} cannot be opened ({exc})") from exc

    def _explained(self, exc: sqlite3.Error) -> StoreError:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and is_disk_full(exc, self.path.parent)):
            return disk_full(self.path.parent, f"writing the ledger {self.path}")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StoreError(f"the ledger {self.path} is busy ({exc}); try again in a moment")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(exc) is sqlite3.DatabaseError:
            return IndexCorruptError(
                f"the ledger {self.path} is damaged ({exc}); run `qa index repair` to rebuild it "
                "from its readable rows and the chunks stored in Chroma"
            )
        return StoreError(f"the ledger {self.path} cannot be used ({exc}); check the file, its permissions and the disk")

    # -- reading ---------------------------------------------------------------------------

    def get(self, doc_id: str) -> dict | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return _as_dict(row) if row else None

    def hash_of(self, doc_id: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT hash FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row["hash"] if row else None

    def chunk_ids(self, doc_id: str) -> list[str]:
        with self._db() as db:
            row = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row["chunk_ids"]) if row else []

    def list(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute(f"SELECT {LIST_COLUMNS} FROM documents ORDER BY published DESC, id").fetchall()
        return [_as_dict(row) for row in rows]

    def ids_under(self, root: str) -> set[str]:
        with self._db() as db:
            return {row["id"] for row in db.execute("SELECT id FROM documents WHERE root = ?", (root,))}

    def live(self, doc_ids: Iterable[str]) -> dict[str, dict]:
        """hash and duplicate_of of the given stored documents; ids not stored are absent."""
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        with self._db() as db:
            rows = db.execute(f"SELECT id, hash, duplicate_of FROM documents WHERE id IN ({marks})", doc_ids)
            return {row["id"]: {"hash": row["hash"], "duplicate_of": row["duplicate_of"]} for row in rows}

    def chunk_records(self, chunk_ids: Iterable[str]) -> dict[str, dict]:
        """The given chunks that are live (their article's current version): chunk id → article
        metadata with the chunk's text and span."""
        wanted = set(chunk_ids)
        doc_ids = list({doc_id_of(chunk_id) for chunk_id in wanted})
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        found = {}
        with self._db() as db:
            rows = db.execute(
                f"SELECT id, title, published, source, url, text, chunk_ids, spans, duplicate_of FROM documents WHERE id IN ({marks})",
                doc_ids,
            )
            for row in rows:
                for chunk_id, (start, end) in zip(json.loads(row["chunk_ids"]), json.loads(row["spans"])):
                    if chunk_id not in wanted:
                        continue
                    found[chunk_id] = {
                        "doc_id": row["id"], "title": row["title"], "published": row["published"] or "",
                        "source": row["source"] or "", "url": row["url"] or "", "start": start, "end": end,
                        "text": row["text"][start:end], "duplicate_of": row["duplicate_of"],
                    }
        return found

    def minhashes(self) -> Iterable[tuple[str, bytes]]:
        with self._db() as db:
            yield from ((r["id"], r["minhash"]) for r in db.execute("SELECT id, minhash FROM documents WHERE minhash IS NOT NULL"))

    def all_chunk_ids(self) -> set[str]:
        with self._db() as db:
            return {cid for row in db.execute("SELECT chunk_ids FROM documents") for cid in json.loads(row["chunk_ids"])}

    def pending(self) -> list[str]:
        with self._db() as db:
            return [row["chunk_id"] for row in db.execute("SELECT chunk_id FROM pending")]

    def rows(self) -> Iterator[dict]:
        """Every stored article in full, as SQLite holds it (for `qa index check` and repair)."""
        with self._db() as db:
            for row in db.execute(f"SELECT {','.join(COLUMNS)} FROM documents ORDER BY id"):
                yield dict(row)

    def integrity(self, quick: bool = False) -> list[str]:
        """SQLite's own verdict on the file (`PRAGMA integrity_check`, or the faster
        `quick_check`): empty when sound."""
        if not self.path.exists():
            return []
        try:
            with closing(sqlite3.connect(self.path, timeout=5)) as db:
                found = [row[0] for row in db.execute(f"PRAGMA {'quick_check' if quick else 'integrity_check'}")]
        except sqlite3.Error as exc:
            return [str(exc)]
        return [] if found == ["ok"] else found

    # -- writing (only under the data dir's write lock) --------------------------------------

    def mark_pending(self, chunk_ids: Iterable[str]) -> None:
        with self._db() as db, db:
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((c,) for c in chunk_ids))

    def clear_pending(self, chunk_ids: Iterable[str]) -> None:
        with self._db() as db, db:
            db.executemany("DELETE FROM pending WHERE chunk_id = ?", ((c,) for c in chunk_ids))

    def generation(self) -> int:
        """Goes up with every change to what is stored; derived indexes compare against it."""
        with self._db() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()["value"]

    def chunk_texts(self) -> Iterable[tuple[str, str, dict]]:
        """(chunk id, title + chunk text, article metadata) for every live chunk."""
        with self._db() as db:
            rows = db.execute("SELECT id, title, published, source, text, chunk_ids, spans FROM documents ORDER BY id")
            for row in rows:
                meta = {"doc_id": row["id"], "published": row["published"], "source": row["source"]}
                for chunk_id, (start, end) in zip(json.loads(row["chunk_ids"]), json.loads(row["spans"])):
                    yield chunk_id, keyword_text(row["title"], row["text"][start:end]), meta

    def record_many(self, entries: list[tuple[Article, list, str | None, bytes | None]]) -> list[list[str]]:
        """One transaction for all (article, chunks, duplicate_of, minhash): from its commit on,
        each article's new chunks are its live ones and its old ones are pending (to be deleted
        from the store). Returns each article's old chunk ids. One commit a pool, not one an
        article: each commit is an fsync (~2.4 ms an article here)."""
        marks = ",".join("?" * len(COLUMNS))
        olds = []
        with self._db() as db, db:
            for article, chunks, duplicate_of, minhash in entries:
                chunk_ids = [chunk.id for chunk in chunks]
                old = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (article.id,)).fetchone()
                olds.append(json.loads(old["chunk_ids"]) if old else [])
                stale = set(olds[-1]) - set(chunk_ids)
                db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((c,) for c in stale))
                row = (
                    article.id, article.path, article.root, article.title, article.published, article.source, article.url,
                    json.dumps(list(article.authors)), article.text, article.content_hash(), json.dumps(chunk_ids),
                    json.dumps([[chunk.start, chunk.end] for chunk in chunks]), "stored", duplicate_of, minhash, time.time(),
                )
                db.execute(f"INSERT OR REPLACE INTO documents ({','.join(COLUMNS)}) VALUES ({marks})", row)
            db.execute("UPDATE meta SET value = value + ? WHERE key = 'generation'", (len(entries),))
        return olds

    def remove(self, doc_id: str) -> list[str]:
        """Forget a document (its chunks become pending); returns its chunk ids."""
        with self._db() as db, db:
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


    # -- rebuilding (`qa index repair`, under the write lock) -----------------------------------

    def salvage(self) -> tuple[list[dict], str | None]:
        """The rows that can still be read from a damaged file, each checked against its own
        content hash; and what went wrong reading the rest (None when nothing did)."""
        rows, problem = {}, None
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)) as db:
                db.row_factory = sqlite3.Row
                present = {r["name"] for r in db.execute("PRAGMA table_info(documents)")}
                columns = [c for c in COLUMNS if c in present]
                try:  # the whole table in one pass, then, if that breaks off, one row at a time
                    for row in db.execute(f"SELECT {','.join(columns)} FROM documents"):
                        rows[row["id"]] = dict(row)
                except sqlite3.Error as exc:
                    problem = str(exc)
                    for rowid in range(1, _max_rowid(db) + 1):
                        try:
                            row = db.execute(f"SELECT {','.join(columns)} FROM documents WHERE rowid = ?", (rowid,)).fetchone()
                        except sqlite3.Error:
                            continue
                        if row is not None:
                            rows[row["id"]] = dict(row)
        except sqlite3.Error as exc:
            problem = problem or str(exc)
        return [row for row in rows.values() if row_is_sound(row)], problem

    def replace(self, rows: list[dict], generation: int) -> Path | None:
        """Write a new ledger holding `rows` and put it in place; a damaged old file is kept
        beside it (returned) rather than deleted."""
        fresh = self.path.with_name(self.path.name + ".rebuilt")
        for leftover in _files_of(fresh):
            leftover.unlink()
        with closing(sqlite3.connect(fresh)) as db, db:
            db.executescript(SCHEMA)
            marks = ",".join("?" * len(COLUMNS))
            db.executemany(f"INSERT INTO documents ({','.join(COLUMNS)}) VALUES ({marks})",
                           [tuple(row.get(c) for c in COLUMNS) for row in rows])
            db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (generation,))
        kept = None
        if self.path.exists():
            kept = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            for old in _files_of(self.path):
                os.replace(old, kept.with_name(kept.name + old.name[len(self.path.name):]))
        os.replace(fresh, self.path)
        self._ready = False
        return kept


def article_of(row: dict) -> Article:
    authors = row["authors"]
    return Article(
        id=row["id"], title=row["title"], text=row["text"], published=row["published"], source=row["source"],
        url=row["url"], authors=tuple(json.loads(authors) if isinstance(authors, str) else authors),
        path=row.get("path"), root=row.get("root"),
    )


def chunks_of(row: dict) -> list[Chunk]:
    """The article's stored chunks, rebuilt from its text and spans (no re-splitting)."""
    article = article_of(row)
    spans = json.loads(row["spans"]) if isinstance(row["spans"], str) else row["spans"]
    ids = json.loads(row["chunk_ids"]) if isinstance(row["chunk_ids"], str) else row["chunk_ids"]
    return [Chunk(cid, article.id, index, article.text[start:end], start, end, article)
            for index, (cid, (start, end)) in enumerate(zip(ids, spans))]


def row_is_sound(row: dict) -> bool:
    """A row agrees with itself: its hash is its content's, its chunk ids carry that hash, its spans fit."""
    try:
        article = article_of(row)
        ids, spans = json.loads(row["chunk_ids"]), json.loads(row["spans"])
        return (article.content_hash() == row["hash"] and len(ids) == len(spans)
                and ids == [chunk_id_of(article, i) for i in range(len(ids))]
                and all(0 <= start < end <= len(article.text) for start, end in spans))
    except (KeyError, TypeError, ValueError):
        return False


def _max_rowid(db: sqlite3.Connection) -> int:
    try:
        return db.execute("SELECT max(rowid) FROM documents").fetchone()[0] or 0
    except sqlite3.Error:
        return 100_000


def _files_of(path: Path) -> list[Path]:
    """The database file and its WAL and shared-memory files, where they exist."""
    return [p for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if p.exists()]


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
