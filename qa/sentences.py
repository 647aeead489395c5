"""Sentence spans (paragraphs first, then Punkt with news abbreviations) and content terms."""

from __future__ import annotations

import re
from functools import lru_cache

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Punkt's English model splits after "U.S." and the like, which news text is full of.
ABBREVIATIONS = {
    "u.s", "u.k", "u.n", "e.u", "u.s.a", "d.c", "mr", "mrs", "ms", "dr", "gen", "lt", "col", "sen",
    "rep", "gov", "prof", "st", "jr", "sr", "inc", "corp", "co", "ltd", "no", "vs", "jan", "feb",
    "mar", "apr", "aug", "sept", "sep", "oct", "nov", "dec", "a.m", "p.m",
}


@lru_cache(maxsize=1)
def _punkt():
    from index.chunking import punkt

    tokenizer = punkt()  # its own parameters: the chunker's Punkt must not learn these
    tokenizer._params.abbrev_types.update(ABBREVIATIONS)
    return tokenizer


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace trimmed, none empty."""
    spans = []
    paragraph_start = 0
    for match in [*PARAGRAPH_BREAK.finditer(text), None]:
        paragraph_end = match.start() if match else len(text)
        paragraph = text[paragraph_start:paragraph_end]
        for start, end in _punkt().span_tokenize(paragraph):
            piece = paragraph[start:end]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            if end - trail > start + lead:
                spans.append((paragraph_start + start + lead, paragraph_start + end - trail))
        if match:
            paragraph_start = match.end()
    return spans


STOPWORDS = set(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    do does did done has have had having this that these those it its it's he she they them his her
    their there here what which who whom whose when where why how whether than then so such not no
    can could would should will shall may might must about into over after before during between
    also any all some each other more most very just only own same too up down out off again
    further once i me my we our you your us say said says tell told according""".split()
)
WORD = re.compile(r"[\w][\w'’+-]*", re.UNICODE)


def terms(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


@lru_cache(maxsize=200_000)  # a news vocabulary: stemming each word once, not once per passage
def _stem(word: str) -> str:
    word = word.replace("’", "'").removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
