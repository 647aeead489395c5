"""Sentence spans for answer selection: paragraphs first, then Punkt with news abbreviations."""

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
    from llama_index.core.utils import globals_helper  # ships Punkt's data, so nothing is fetched

    tokenizer = globals_helper.punkt_tokenizer
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
