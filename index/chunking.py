"""Splits an article into overlapping, sentence-aware chunks that fit the embedding window.

llama-index's SentenceSplitter does the splitting; its token counter is the embedding model's
own wordpiece tokenizer, so `chunk_size` means what the model will actually see. Its sentences
are its default ones (an untrained Punkt), found faster (`punkt`).
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from functools import cache
from operator import itemgetter

from index.documents import Article, Chunk


class Chunker:
    def __init__(self, count_tokens: Callable[[str], list], chunk_size: int, chunk_overlap: int,
                 wordpieces: Callable[[str], object] | None = None):
        """`wordpieces` (Embedder.wordpieces), when given, tokenizes each article once: the
        splitter asks the size of every sentence and merge, ~8 tokenizer calls a chunk, which
        took ~4 % of an ingest's time."""
        from llama_index.core.node_parser import SentenceSplitter

        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self._count_tokens = count_tokens
        self._wordpieces = wordpieces
        self._article: _Pieces | None = None  # the article being split, under the lock
        self._lock = threading.Lock()
        self._splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=self._count,
                                          chunking_tokenizer_fn=_sentences)

    def _count(self, text: str):
        counted = self._article.count(text) if self._article is not None else None
        return self._count_tokens(text) if counted is None else range(counted)  # the splitter takes len()

    def split(self, article: Article) -> list[Chunk]:
        encoding = self._wordpieces(article.text) if self._wordpieces else None
        tokens = _Pieces(article.text, encoding) if encoding is not None else None
        with self._lock:
            self._article = tokens
            try:
                pieces = self._splitter.split_text(article.text)
            finally:
                self._article = None
        chunks = []
        cursor = 0
        for index, piece in enumerate(pieces):
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
                    pieces=tokens.ids(start, end) if tokens is not None else None,
                )
            )
            # The next chunk starts inside this one (overlap), but never before its start.
            cursor = start + 1
        return chunks


class _Pieces:
    """Counts the wordpieces of a substring of one article from the article's own tokenization.

    Exact only where the substring starts and ends between words (wordpieces are made per
    word, so a cut word would be tokenized differently); anywhere else `count` says None and
    the substring is tokenized on its own."""

    def __init__(self, text: str, encoding):
        self.text = text
        self.token_ids = encoding.ids  # each read of an Encoding's field builds a new list
        # Searched in place (bisect by key) and read at a piece's two edges: lists of starts, ends
        # and word-edge flags per token cost more than the splitting's lookups (~1 ms an article).
        self.offsets, self.words = encoding.offsets, encoding.word_ids

    def count(self, piece: str) -> int | None:
        at = self.text.find(piece)
        if at < 0 or not piece.strip():
            return None
        span = self._tokens(at, at + len(piece))
        return None if span is None else span[1] - span[0]

    def ids(self, start: int, end: int) -> tuple[int, ...] | None:
        """The wordpiece ids of text[start:end], or None where `count` would say None."""
        span = self._tokens(start, end) if self.text[start:end].strip() else None
        return None if span is None else tuple(self.token_ids[span[0] : span[1]])

    def _tokens(self, at: int, end: int) -> tuple[int, int] | None:
        """The range of tokens that make text[at:end] exactly, or None."""
        offsets, words = self.offsets, self.words
        first = bisect_left(offsets, at, key=_start)  # the first token starting inside the piece
        last = bisect_right(offsets, end, key=_end) - 1  # the last token ending inside it
        if first > last:
            return None
        if first > 0 and offsets[first - 1][1] > at or last + 1 < len(offsets) and offsets[last + 1][0] < end:
            return None  # a token straddles an edge
        if first > 0 and words[first] == words[first - 1] or last + 1 < len(words) and words[last] == words[last + 1]:
            return None  # an edge falls inside a word
        return first, last + 1


_start, _end = itemgetter(0), itemgetter(1)

# A word of two or more letters, then ".", "?" or "!", then space and a token (see Punkt).
_PLAIN_BREAK = re.compile(r"([^\W\d_]{2,})([.?!])\s+\S")


def punkt():
    """A Punkt sentence tokenizer as llama-index's SentenceSplitter makes its default one:
    untrained (no abbreviations, collocations or sentence starters learnt)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    class Punkt(PunktSentenceTokenizer):
        """Punkt asks `text_contains_sentbreak` of every ".", "?" or "!" with the word before it
        and the token after; in pure Python that was ~75 % of splitting an article. For "word.
        Next" the answer is yes unless "word" is a known abbreviation: the first pass marks a
        period after any other word a break, and the second pass takes that back only for
        collocations (checked: none), initials ("J."), numbers, abbreviations and ellipses, none
        of which a run of two or more letters is. Such contexts are ~80 % of them in news text;
        the rest go to Punkt's own code. Same splits on all 3,773 RealTime QA articles, in a
        third to half the time (tests/test_chunking.py compares a slice)."""

        def text_contains_sentbreak(self, text: str) -> bool:
            plain = _PLAIN_BREAK.match(text)
            if plain and not self._params.collocations and \
                    (plain[2] != "." or plain[1].lower() not in self._params.abbrev_types):
                return True
            return super().text_contains_sentbreak(text)

    return Punkt()


def _sentences(text: str) -> list[str]:
    """The sentences of `text` as llama-index's default splits them, with our Punkt."""
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer_internal

    return split_by_sentence_tokenizer_internal(text, _chunker_punkt())


@cache
def _chunker_punkt():
    return punkt()


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
