"""HTML for answers and sources. Article text is untrusted: everything from it is escaped."""

from __future__ import annotations

import html
import re

from qa.citations import Answer

MARKER = re.compile(r"\[(\d+)\]")


def answer_html(answer: Answer) -> str:
    body = html.escape(answer.answer)
    body = MARKER.sub(lambda m: f'<a class="cite-chip" href="#cite-{m.group(1)}">[{m.group(1)}]</a>', body)
    kind = "abstained" if answer.abstained else "answered"
    return f'<div class="qa-answer {kind}">{body}</div>'


def sources_html(answer: Answer) -> str:
    if not answer.citations:
        return '<div class="qa-sources empty">No sources cited.</div>'
    passages = {p.chunk_id: p for p in answer.passages}
    items = []
    for c in answer.citations:
        passage = passages.get(c.chunk_id)
        context = _highlight(passage.text, c.start - passage.start, c.end - passage.start) if passage else f"<mark>{html.escape(c.quote)}</mark>"
        link = f' · <a href="{html.escape(c.url, quote=True)}" target="_blank" rel="noopener noreferrer">link</a>' if c.url.startswith(("http://", "https://")) else ""
        items.append(
            f'<div class="qa-source" id="cite-{c.n}">'
            f"<div><b>[{c.n}] {html.escape(c.title or c.doc_id)}</b></div>"
            f'<div class="meta">{html.escape(c.source or "unknown source")} · {html.escape(c.published or "undated")}{link} · <code>{html.escape(c.doc_id)}</code></div>'
            f'<blockquote>{context}</blockquote></div>'
        )
    return '<div class="qa-sources">' + "".join(items) + "</div>"


def _highlight(text: str, start: int, end: int) -> str:
    return f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>{html.escape(text[end:])}"
