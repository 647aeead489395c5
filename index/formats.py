"""Turns one input (bytes of a file, a JSON record, a fetched page) into an Article.

Every function raises ValueError with a message for the user; the loader adds the file/line.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import reprlib
from urllib.parse import unquote, urlparse

from index.documents import Article

# JSON field aliases seen in real news dumps, in order of preference.
ALIASES = {
    "id": ("id", "doc_id"),
    "text": ("text", "body", "content"),
    "published": ("published", "date", "publish_date", "published_at"),
    "source": ("source", "outlet", "site"),
    "authors": ("authors", "author"),
    "title": ("title", "headline"),
    "url": ("url", "link"),
}
MIN_HTML_TEXT = 80
MAX_TITLE_CHARS = 300  # longer than any headline: a paragraph, or a file without line breaks
SHORT_TITLE_CHARS = 120
DATE_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y/%m/%d", "%m/%d/%Y", "%Y%m%d")


def pick(record: dict, field: str):
    for name in ALIASES[field]:
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


def parse_date(value: object, today: dt.date | None = None) -> tuple[str | None, str | None]:
    """(ISO date or None, warning or None). Unparseable or future dates become undated."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    parsed = _to_date(value)
    if parsed is None:
        return None, f"date {reprlib.repr(value)} not understood; stored as undated"  # shortened: any JSON may be here
    if parsed > (today or dt.date.today()) + dt.timedelta(days=1):
        return None, f"date {parsed.isoformat()} is in the future; stored as undated"
    return parsed.isoformat(), None


def _to_date(value: object) -> dt.date | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:  # epoch seconds (or milliseconds)
            return dt.datetime.fromtimestamp(value / 1000 if value > 1e11 else value, dt.timezone.utc).date()
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def normalise_source(source: object, url: str | None) -> str | None:
    """A domain ("cnn.com") when the source is a domain or URL, or when only the url says."""
    text = str(source).strip() if source else ""
    if text and re.fullmatch(r"(https?://)?[\w.-]+\.[a-z]{2,}(/.*)?", text, re.I):
        return _domain(text if "://" in text else f"http://{text}")
    if url and url.startswith(("http://", "https://")):
        return _domain(url) or text or None
    return text or None


def _domain(url: str) -> str | None:
    try:
        host = (urlparse(url).hostname or "").lower()
    except ValueError:  # e.g. "http://[::1": not a URL we can take a domain from
        return None
    return host.removeprefix("www.") or None


def storable(value: object) -> str:
    """`value` as text that UTF-8 can hold: JSON may carry lone surrogates ("\\ud800"); they become U+FFFD."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def short_title(title: str) -> tuple[str, tuple[str, ...]]:
    """The title, or the start of an over-long one (cut at a word) with a warning."""
    if len(title) <= MAX_TITLE_CHARS:
        return title, ()
    cut = title[:SHORT_TITLE_CHARS].rsplit(" ", 1)[0] or title[:SHORT_TITLE_CHARS]
    return cut + "…", (f"the title is {len(title)} characters long; its first words are used",)


def title_from_url(url: str | None) -> str:
    """The words of a news URL's slug ("/2022/06/15/business/ford-recall/index.html" → "Ford
    recall"), for an article that came without a title: the slug is the headline's gist, and a
    passage needs a subject. Empty when no path segment has two words or more."""
    try:
        path = urlparse(url or "").path
    except ValueError:
        return ""
    best: list[str] = []
    for segment in unquote(path).split("/"):
        segment = re.sub(r"\.[A-Za-z]{2,5}$", "", segment)  # ".html", ".php", ".cnn": a file type, no word
        words = [w for w in re.split(r"[-_+.\s]+", segment) if w]
        # ids and hashes ("h_c164ac93…", "a1b2") are no words; plain numbers ("2022") are
        words = [w for w in words if w.isalpha() or w.isdigit()]
        if sum(w.isalpha() for w in words) >= 2 and len(words) > len(best):
            best = words
    return " ".join(best).capitalize()[:SHORT_TITLE_CHARS]


def title_or_slug(title: str, warnings: tuple[str, ...], url: str | None) -> tuple[str, tuple[str, ...]]:
    """(title, warnings) as given, or the URL's slug words with a warning when there is no title."""
    slug = "" if title else title_from_url(url)
    return (slug, ("no title; the words of its URL are used",)) if slug else (title, warnings)


def author_names(value: object) -> tuple[str, ...]:
    """A string, or a list of strings or {"name": ...} objects; anything else is no author."""
    items = value if isinstance(value, list) else [value]
    names = (item.get("name") if isinstance(item, dict) else item for item in items)
    return tuple(storable(n).strip() for n in names if isinstance(n, (str, int, float)) and not isinstance(n, bool) and str(n).strip())


def article_from_record(record: object, default_id: str, path: str) -> Article:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object with at least a 'text' field")
    text = pick(record, "text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("field 'text' (or 'body'/'content') is missing or empty")
    published, warning = parse_date(pick(record, "published"))
    url = storable(pick(record, "url")) if pick(record, "url") else None
    title, title_warnings = title_or_slug(*short_title(storable(pick(record, "title") or "").strip()), url)
    return Article(
        id=storable(pick(record, "id") or default_id),
        title=title,
        text=storable(text).strip(),
        published=published,
        source=normalise_source(storable(pick(record, "source") or ""), url),
        url=url,
        authors=author_names(pick(record, "authors")),
        path=path,
        warnings=((warning,) if warning else ()) + title_warnings,
    )


def article_from_text(text: str, doc_id: str, path: str) -> Article:
    """The first non-empty line is the title (a leading markdown # is dropped)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip():
            title = line.strip().lstrip("#").strip()
            body = "".join(lines[i + 1 :]).strip()
            break
    else:
        raise ValueError("the file is empty; an article needs a title line and a text")
    title, warnings = short_title(title)
    if warnings:  # a first line this long is text, not a headline: keep it in the text
        body = "".join(lines[i:]).strip()
    if not body:
        raise ValueError("the file has a title but no text")
    return Article(id=doc_id, title=title, text=body, path=path, warnings=warnings)


def article_from_html(html: str, doc_id: str, path: str, url: str | None = None) -> Article:
    """Main text and metadata by trafilatura: boilerplate (menus, footers, ads) is left out."""
    import trafilatura

    from index.hidden import visible_tree

    try:
        document = trafilatura.bare_extraction(visible_tree(html), url=url, with_metadata=True, include_comments=False)
    except Exception as exc:  # broken markup trips trafilatura's helpers in many ways (an AssertionError in lxml…)
        raise ValueError(f"cannot read this HTML page ({type(exc).__name__}: {exc})") from exc
    text = (getattr(document, "text", None) or "").strip() if document else ""
    if len(text) < MIN_HTML_TEXT:  # trafilatura falls back to menus and footers on non-article pages
        raise ValueError("no article text found in this HTML page")
    title, title_warnings = title_or_slug(*short_title((document.title or "").strip()), document.url or url)
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # trafilatura repeats the headline as the first line
    # One paragraph a line in trafilatura's output; blank lines make paragraphs for sentence splitting.
    text = re.sub(r"\n+", "\n\n", text)
    published, warning = parse_date(document.date)
    page_url = document.url or url
    authors = tuple(a.strip() for a in re.split(r";|\band\b|,", document.author or "") if a.strip())
    return Article(
        id=doc_id,
        title=title or short_title(text.split("\n", 1)[0])[0],
        text=text,
        published=published,
        source=normalise_source(document.hostname or document.sitename, page_url),
        url=page_url,
        authors=authors,
        path=path,
        warnings=((warning,) if warning else ()) + title_warnings,
    )


def article_from_pdf(data: bytes, doc_id: str, path: str) -> Article:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [storable(page.extract_text() or "").strip() for page in reader.pages]
        title = (reader.metadata or {}).get("/Title")
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF ({exc})") from exc
    except Exception as exc:  # a broken file trips pypdf in many ways (IndexError, RecursionError, zlib.error…)
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise ValueError("the PDF has no extractable text (a scan? run OCR first)")
    title, warnings = short_title(storable(title).strip() if isinstance(title, str) else "")
    if not title:
        return article_from_text(text, doc_id, path)
    return Article(id=doc_id, title=title, text=text, path=path, warnings=warnings)
