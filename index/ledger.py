"""The document ledger: one SQLite row per stored article (its text, hash and chunk ids).

Chroma holds the vectors; the ledger answers "what is stored, and is it current?" without
loading a model, and keeps the full text that citations point into.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from index.documents import Article

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    path TEXT,
    title TEXT NOT NULL,
    published TEXT,
    source TEXT,
    url TEXT,
    authors TEXT NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class Ledger:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "ledger.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5)
        connection.row_factory = sqlite3.Row
        connection.execute(SCHEMA)
        return connection

    def hash_of(self, doc_id: str) -> str | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT hash FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row["hash"] if row else None

    def chunk_ids(self, doc_id: str) -> list[str]:
        with closing(self._connect()) as db:
            row = db.execute("SELECT chunk_ids FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row["chunk_ids"]) if row else []

    def record(self, article: Article, chunk_ids: list[str]) -> None:
        row = (
            article.id, article.path, article.title, article.published, article.source, article.url,
            json.dumps(list(article.authors)), article.text, article.content_hash(),
            json.dumps(chunk_ids), time.time(),
        )
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)

    def get(self, doc_id: str) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return _as_dict(row) if row else None

    def list(self) -> list[dict]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, path, title, published, source, url, authors, hash, chunk_ids, updated_at "
                "FROM documents ORDER BY published DESC, id"
            ).fetchall()
        return [_as_dict(row) for row in rows]

    def texts(self, doc_ids: set[str]) -> dict[str, str]:
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT id, text FROM documents WHERE id IN ({marks})", list(doc_ids))
            return {row["id"]: row["text"] for row in rows}


def _as_dict(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["authors"] = json.loads(record["authors"])
    record["chunk_ids"] = json.loads(record.pop("chunk_ids"))
    record["chunks"] = len(record["chunk_ids"])
    return record
