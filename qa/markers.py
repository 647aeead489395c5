"""The raw text of an LLM's answer made safe to show and to check.

Markdown images and links (inline, reference-style, autolinks, bare URLs) that do not point at
a source are stripped, and so are active HTML tags (an image, a link or a script can carry data
out of the page, or send a reader somewhere no source went). `[n]`, `[1, 2]`, `[1-3]` and
`[1][2]` markers are normalised to `[1][2]`; markers that point at no passage are dropped and
counted. `claim_spans` splits the text into sentences and gives each the passages it cites.
`quoted` gives an article's sentence as an answer shows it: only the answer's markers are markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.injection import INVISIBLE
from qa.sentences import sentence_spans

_URL_TAIL = r"\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
IMAGE = re.compile(r"!\[([^\]]*)\]" + _URL_TAIL)
LINK = re.compile(r"\[([^\]]*)\]" + _URL_TAIL)
AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>", re.I)
# Reference style: "![x][ref]" takes its address from a "[ref]: http://…" line.
REFERENCE_IMAGE = re.compile(r"!\[[^\]]*\]\[[^\]]*\]")
REFERENCE = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)>?[^\n]*\n?", re.M)
BARE_URL = re.compile(r"(?<![(<\w/])(?:https?|ftp)://[^\s<>()\[\]\"']*[^\s<>()\[\]\"'.,;:!?]", re.I)
# Tags that fetch, run or link something when a client renders the text as HTML or markdown.
ACTIVE_HTML = re.compile(
    r"</?(?:img|image|script|style|iframe|frame|object|embed|svg|math|video|audio|source|track|picture|"
    r"link|meta|base|form|input|button|a)\b[^>]*>", re.I)
# A group such as [3], [1, 2] or [1-3]; not a markdown link's label (those are handled first).
MARKER_GROUP = re.compile(r"([ \t]*)\[\s*(\d+(?:\s*[-–,;]\s*\d+)*)\s*\](?!\()")
MARKER_RUN = re.compile(r"(?:\s*\[\d+\])+")  # used with .match, so anchored
# A hostile or confused model could write "[1-100000]"; nothing cites that many passages.
MAX_RANGE = 50


@dataclass(frozen=True)
class ClaimSpan:
    start: int  # text[start:end] is the sentence with its markers
    end: int
    numbers: tuple[int, ...]  # passages it cites, in order, without repeats

    def bare(self, text: str) -> str:
        """The sentence without its markers: what is checked against the passages."""
        return re.sub(r"\s*\[\d+\]", "", text[self.start : self.end]).strip()


def strip_links(text: str, allowed_urls: set[str]) -> tuple[str, int]:
    """Drop images and links whose address is not one of `allowed_urls`; a link keeps its words."""
    stripped = 0

    def unless_allowed(url_group: int, replacement):
        """A substitution that keeps allowed addresses and otherwise counts and replaces."""

        def substitute(match: re.Match) -> str:
            nonlocal stripped
            if match.group(url_group) in allowed_urls:
                return match.group(0)
            stripped += 1
            return replacement(match)

        return substitute

    image = unless_allowed(2, lambda m: "")
    # a link keeps its words; "[2](http://…)" stays a citation marker
    link = unless_allowed(2, lambda m: f"[{m.group(1)}]" if m.group(1).strip().isdigit() else m.group(1))
    address = unless_allowed(1, lambda m: "")
    bare = unless_allowed(0, lambda m: "")

    text = IMAGE.sub(image, text)
    text, references = REFERENCE_IMAGE.subn("", text)
    text, tags = ACTIVE_HTML.subn("", text)
    text = REFERENCE.sub(address, text)
    text = LINK.sub(link, text)
    text = AUTOLINK.sub(address, text)
    text = BARE_URL.sub(bare, text)
    if stripped or tags or references:
        text = re.sub(r"[ \t]{2,}", " ", text)
    return text, stripped + tags + references


def quoted(sentence: str, allowed_urls: set[str]) -> str:
    """An article's sentence as an answer shows it: without the article's own "[7]" footnotes
    (they would pass for the answer's citations), links and images not from the sources, active
    HTML, and invisible characters that could carry hidden text to whoever reads the answer next."""
    text, _ = strip_links(INVISIBLE.sub("", sentence), allowed_urls)
    text = MARKER_GROUP.sub("", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def clean_markers(text: str, passage_count: int) -> tuple[str, int]:
    """Normalise every marker group to `[a][b]`; drop numbers outside 1..passage_count, counted."""
    removed = 0

    def group(match: re.Match) -> str:
        nonlocal removed
        numbers = _numbers(match.group(2))
        valid = [n for n in numbers if 1 <= n <= passage_count]
        removed += len(numbers) - len(valid)
        if not valid:
            return ""  # with the space before it, so "claim [9]." becomes "claim."
        return match.group(1) + "".join(f"[{n}]" for n in dict.fromkeys(valid))

    text = MARKER_GROUP.sub(group, text)
    return re.sub(r"(\[\d+\])\1+", r"\1", text), removed  # "[2][2]" is one citation


def claim_spans(text: str) -> list[ClaimSpan]:
    """Sentences and the passages each cites.

    Sentence splitting puts markers written after the full stop ("Claim.[1] Next") at the
    start of the next sentence; they belong to the one before.
    """
    spans: list[list] = []
    for start, end in sentence_spans(text):
        lead = MARKER_RUN.match(text, start, end)
        if lead and spans:
            spans[-1][1] = lead.end()
            start = lead.end()
            while start < end and text[start].isspace():
                start += 1
        if start < end:
            spans.append([start, end])
    return [ClaimSpan(start, end, _cited(text[start:end])) for start, end in spans]


def _cited(sentence: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", sentence)))


def _numbers(group: str) -> list[int]:
    numbers = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = [int(b) for b in re.split(r"\s*[-–]\s*", part)]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] < MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers
