"""The records that flow through indexing: an Article as loaded, a Chunk as stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field


def days_since_epoch(day: dt.date | str | None) -> int | None:
    """Dates as integers (days since 1970-01-01), which Chroma can compare with $gte/$lte."""
    if not day:
        return None
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return (day - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    published: str | None = None  # ISO date, YYYY-MM-DD
    source: str | None = None
    url: str | None = None
    authors: tuple[str, ...] = ()
    # Where it came from, and what the loader noticed: not part of what it says.
    path: str | None = None
    root: str | None = None  # the folder (or file, or url) it was ingested through; `--prune` syncs by it
    warnings: tuple[str, ...] = ()

    def content_hash(self) -> str:
        """Changes whenever anything a reader sees changes; where it was read from does not count.
        Kept once computed (the article is frozen): every chunk's id and metadata ask for it."""
        known = self.__dict__.get("_content_hash")
        if known is not None:
            return known
        payload = {name: value for name, value in asdict(self).items() if name not in ("path", "root", "warnings")}
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        self.__dict__["_content_hash"] = known = hashlib.sha256(blob).hexdigest()  # not a field: eq and replace ignore it
        return known

    def metadata(self) -> dict:
        """Chunk metadata in Chroma. `published_days` (days since 1970-01-01) exists only for
        dated articles, so `$gte`/`$lte` date filters leave undated ones out."""
        metadata = {
            "doc_id": self.id,
            "title": self.title,
            "published": self.published or "",
            "source": self.source or "",
            "url": self.url or "",
            "authors": "; ".join(self.authors),
            "content_hash": self.content_hash(),
        }
        if self.published:
            metadata["published_days"] = days_since_epoch(self.published)
        return metadata


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    text: str  # == article.text[start:end]
    start: int
    end: int
    article: Article = field(repr=False, compare=False)
    # The model's wordpiece ids of `text`, cut from the article's tokenization by the chunker
    # (None where it could not be cut exactly): the ONNX encoder need not tokenize it again.
    pieces: tuple[int, ...] | None = field(default=None, repr=False, compare=False)

    def embedding_text(self) -> str:
        """What the model sees: the title gives short passages their subject."""
        return f"{self.article.title}\n{self.text}" if self.article.title else self.text

    def keyword_text(self) -> str:
        """What the keyword index counts (index/ledger.py `chunk_texts`)."""
        return keyword_text(self.article.title, self.text)


def keyword_text(title: str, text: str) -> str:
    return f"{title}\n{text}"
