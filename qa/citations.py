"""Citations are data: passages, the citations that point into them, and the answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk; `text == article_text[start:end]`."""

    chunk_id: str
    doc_id: str
    title: str
    source: str
    published: str
    url: str
    text: str
    start: int
    end: int
    score: float

    @classmethod
    def from_metadata(cls, chunk_id: str, text: str, metadata: dict, score: float) -> Passage:
        return cls(
            chunk_id=chunk_id,
            doc_id=metadata.get("doc_id", ""),
            title=metadata.get("title", ""),
            source=metadata.get("source", ""),
            published=metadata.get("published", ""),
            url=metadata.get("url", ""),
            text=text,
            start=int(metadata.get("start", 0)),
            end=int(metadata.get("end", 0)),
            score=round(float(score), 4),
        )


@dataclass(frozen=True)
class Citation:
    """`[n]` in an answer: the quoted sentence and where it sits in its article."""

    n: int
    doc_id: str
    title: str
    source: str
    published: str
    url: str
    chunk_id: str
    quote: str  # == article_text[start:end]
    start: int
    end: int
    score: float

    @classmethod
    def quoting(cls, n: int, passage: Passage, offset: int, length: int, score: float) -> Citation:
        """Cite `passage.text[offset:offset+length]`, with its span in the whole article."""
        return cls(
            n=n,
            doc_id=passage.doc_id,
            title=passage.title,
            source=passage.source,
            published=passage.published,
            url=passage.url,
            chunk_id=passage.chunk_id,
            quote=passage.text[offset : offset + length],
            start=passage.start + offset,
            end=passage.start + offset + length,
            score=round(float(score), 4),
        )


ABSTENTION = "The sources do not answer this question."


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    backend: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
