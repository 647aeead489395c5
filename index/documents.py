"""The records that flow through indexing: an Article as loaded, a Chunk as stored."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    published: str | None = None  # ISO date, YYYY-MM-DD
    source: str | None = None
    url: str | None = None
    authors: tuple[str, ...] = ()
    path: str | None = None  # where it was read from; not part of its identity

    def content_hash(self) -> str:
        """Changes whenever anything a reader sees changes; the path does not count."""
        payload = asdict(self)
        payload.pop("path")
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def metadata(self) -> dict:
        return {
            "doc_id": self.id,
            "title": self.title,
            "published": self.published or "",
            "source": self.source or "",
            "url": self.url or "",
            "authors": "; ".join(self.authors),
        }


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    text: str  # == article.text[start:end]
    start: int
    end: int
    article: Article = field(repr=False, compare=False)

    def embedding_text(self) -> str:
        """What the model sees: the title gives short passages their subject."""
        return f"{self.article.title}\n{self.text}" if self.article.title else self.text
