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
    # How retrieval found it: dense and keyword ranks, fused score, date boost (qa/retrieve.py).
    why: dict | None = None

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
    supported: bool = True  # the cited sentence was checked against this passage (qa/verify.py)

    @classmethod
    def quoting(
        cls, n: int, passage: Passage, offset: int, length: int, score: float, supported: bool = True
    ) -> Citation:
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
            supported=supported,
        )


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer, `answer[start:end]`, with the passages it cites and its check."""

    text: str
    start: int
    end: int
    citations: list[int]
    supported: bool
    reason: str = ""  # why it is not supported; empty when it is


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
    # Citation checks: the share of claims their passages support, and every sentence flagged.
    grounded: float = 1.0
    sentences: list[AnswerSentence] = field(default_factory=list)
    removed_markers: int = 0  # [n] markers that pointed at no passage
    warnings: list[str] = field(default_factory=list)  # e.g. a fallback to the extractive answerer
    standalone_question: str | None = None  # a follow-up rewritten before retrieval

    def to_dict(self) -> dict:
        return asdict(self)
