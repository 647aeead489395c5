"""HTML for answers, sources, the conversation and articles. Article text is untrusted:
everything from it (and from the answer, which quotes it) is escaped here, nowhere else."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from qa.citations import Answer, Citation, Passage

MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Exchange:
    """One question of a conversation and its answer, with the date it was asked as of."""

    question: str
    answer: Answer
    as_of: str


def _anchor(n: int | str, turn: int | None) -> str:
    return f"cite-{n}" if turn is None else f"cite-{turn}-{n}"


def _chips(escaped: str, turn: int | None) -> str:
    """[n] in already escaped text becomes a link to its source card."""
    return MARKER.sub(lambda m: f'<a class="cite-chip" href="#{_anchor(m.group(1), turn)}">[{m.group(1)}]</a>', escaped)


def answer_html(answer: Answer, turn: int | None = None) -> str:
    """The answer with clickable [n] chips; sentences the check did not support are flagged."""
    text, pieces, at = answer.answer, [], 0
    for sentence in sorted(answer.sentences, key=lambda s: s.start):
        if sentence.supported or sentence.start < at:
            continue
        pieces.append(_chips(html.escape(text[at : sentence.start]), turn))
        reason = html.escape(sentence.reason or "not supported by its sources", quote=True)
        body = _chips(html.escape(text[sentence.start : sentence.end]), turn)
        pieces.append(f'<span class="unsupported" title="{reason}">{body}<sup class="flag">✗</sup></span>')
        at = sentence.end
    pieces.append(_chips(html.escape(text[at:]), turn))
    kind = "abstained" if answer.abstained else "answered"
    notes = [f'<div class="qa-warning">⚠ {html.escape(w)}</div>' for w in answer.warnings]
    notes += [
        f'<div class="qa-flagged">✗ not supported: “{html.escape(s.text)}” — {html.escape(s.reason or "no citation")}</div>'
        for s in answer.sentences if not s.supported
    ]
    return f'<div class="qa-answer {kind}">{"".join(pieces)}</div>' + "".join(notes)


def sources_html(answer: Answer, turn: int | None = None) -> str:
    if not answer.citations:
        return '<div class="qa-sources empty">No sources cited.</div>'
    passages = {p.chunk_id: p for p in answer.passages}
    cards = [_source_card(c, passages.get(c.chunk_id), turn) for c in answer.citations]
    return '<div class="qa-sources">' + "".join(cards) + "</div>"


def _source_card(c: Citation, passage: Passage | None, turn: int | None) -> str:
    context = _in_paragraph(passage.text, c.start - passage.start, c.end - passage.start) if passage else f"<mark>{html.escape(c.quote)}</mark>"
    link = ""
    if c.url.startswith(("http://", "https://")):  # never javascript: or data: from an article
        link = f' · <a href="{html.escape(c.url, quote=True)}" target="_blank" rel="noopener noreferrer">link</a>'
    badge = '<span class="badge ok">supported</span>' if c.supported else '<span class="badge bad">unsupported</span>'
    return (
        f'<div class="qa-source" id="{_anchor(c.n, turn)}">'
        f"<div><b>[{c.n}] {html.escape(c.title or c.doc_id)}</b> {badge}</div>"
        f'<div class="meta">{html.escape(c.source or "unknown source")} · {html.escape(c.published or "undated")}{link} · <code>{html.escape(c.doc_id)}</code></div>'
        f"<blockquote>{context}</blockquote></div>"
    )


def _in_paragraph(text: str, start: int, end: int) -> str:
    """The paragraph of the passage that holds the quote, the quote marked."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end)
    last = len(text) if last < 0 else last
    return _highlight(text[first:last], start - first, end - first)


def _highlight(text: str, start: int, end: int) -> str:
    return f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>{html.escape(text[end:])}"


def conversation_html(exchanges: list[Exchange], pending: tuple[str, str] | None = None) -> str:
    """The chat so far; `pending` is the question being answered and the text streamed so far."""
    if not exchanges and pending is None:
        return '<div class="qa-chat empty">Ask a question about the stored articles, or pick an example below.</div>'
    turns = [_exchange_html(e, i + 1) for i, e in enumerate(exchanges)]
    if pending is not None:
        question, partial = pending
        shown = _chips(html.escape(partial), None) if partial else '<span class="thinking">searching the articles…</span>'
        turns.append(f'<div class="turn streaming">{_question_html(question)}<div class="qa-answer">{shown}</div></div>')
    return '<div class="qa-chat">' + "".join(turns) + "</div>"


def _question_html(question: str) -> str:
    return f'<div class="qa-question">{html.escape(question)}</div>'


def _exchange_html(e: Exchange, turn: int) -> str:
    a = e.answer
    meta = [f"as of {html.escape(e.as_of)}", html.escape(a.backend)]
    if a.sentences:
        meta.append(f"grounded {a.grounded:.0%}")
    if a.timings_ms.get("total") is not None:
        meta.append(f"{a.timings_ms['total']:.0f} ms")
    searched = f'<div class="meta">searched for: {html.escape(a.standalone_question)}</div>' if a.standalone_question else ""
    abstained = '<div class="meta">No passage answers this; nothing is quoted.</div>' if a.abstained else ""
    return (
        f'<div class="turn" id="turn-{turn}">{_question_html(e.question)}{searched}'
        f'{answer_html(a, turn)}{abstained}<div class="meta">{" · ".join(meta)}</div></div>'
    )


def sources_panel_html(exchanges: list[Exchange]) -> str:
    """The latest answer's sources open; earlier ones folded, so every chip still has its card."""
    if not exchanges:
        return '<div class="qa-sources empty">Sources appear here, with the quoted sentence highlighted.</div>'
    parts = []
    for turn in range(len(exchanges), 0, -1):
        e = exchanges[turn - 1]
        is_open = " open" if turn == len(exchanges) else ""
        parts.append(f"<details{is_open}><summary>{html.escape(e.question)}</summary>{sources_html(e.answer, turn)}</details>")
    return "".join(parts)


def document_html(record: dict) -> str:
    """One stored article in full."""
    url = record.get("url") or ""
    link = f' · <a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{html.escape(url)}</a>' if url.startswith(("http://", "https://")) else ""
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in (record.get("text") or "").split("\n") if p.strip())
    return (
        f'<article class="qa-article"><h3>{html.escape(record.get("title") or record["id"])}</h3>'
        f'<div class="meta">{html.escape(record.get("source") or "unknown source")} · {html.escape(record.get("published") or "undated")}'
        f' · {record.get("chunks", 0)} chunks · <code>{html.escape(record["id"])}</code>{link}</div>{paragraphs}</article>'
    )
