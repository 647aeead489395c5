"""Splits an article into overlapping, sentence-aware chunks that fit the embedding window.

llama-index's SentenceSplitter does the splitting; its token counter is the embedding model's
own wordpiece tokenizer, so `chunk_size` means what the model will actually see.
"""

from __future__ import annotations

from collections.abc import Callable

from index.documents import Article, Chunk


class Chunker:
    def __init__(self, count_tokens: Callable[[str], list], chunk_size: int, chunk_overlap: int):
        from llama_index.core.node_parser import SentenceSplitter

        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=count_tokens
        )

    def split(self, article: Article) -> list[Chunk]:
        chunks = []
        cursor = 0
        for index, piece in enumerate(self._splitter.split_text(article.text)):
            start, end = _locate(article.text, piece, cursor)
            chunks.append(
                Chunk(
                    id=chunk_id(article, index),
                    doc_id=article.id,
                    index=index,
                    text=article.text[start:end],
                    start=start,
                    end=end,
                    article=article,
                )
            )
            # The next chunk starts inside this one (overlap), but never before its start.
            cursor = start + 1
        return chunks


def chunk_id(article: Article, index: int) -> str:
    """Versioned by content: a changed article's chunks never reuse its old chunks' ids."""
    return f"{article.id}::{article.content_hash()[:12]}::{index}"


def doc_id_of(chunk_id: str) -> str:
    """The article id inside a chunk id (article ids may hold "::" themselves, so from the right)."""
    return chunk_id.rsplit("::", 2)[0]


def _locate(text: str, piece: str, cursor: int) -> tuple[int, int]:
    """Character span of `piece` in `text`, searched from `cursor`.

    The splitter returns substrings of the text (stripped), so an exact find works; if it ever
    normalised whitespace, fall back to matching the first and last words, so the stored span
    still covers the piece and `text[start:end]` stays the source of truth.
    """
    at = text.find(piece, cursor)
    if at < 0:
        at = text.find(piece)
    if at >= 0:
        return at, at + len(piece)
    words = piece.split()
    head = text.find(words[0], cursor)
    head = head if head >= 0 else cursor
    tail = text.find(words[-1], head)
    end = tail + len(words[-1]) if tail >= 0 else min(len(text), head + len(piece))
    return head, end
