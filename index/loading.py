"""Finds articles in files, folders and URLs, and reads each with the parser for its format.

Errors are yielded, not raised, so one bad file or line never stops the others.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from index import formats
from index.documents import Article
from qa.errors import IngestError

SUFFIXES = {".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz", ".pdf"}
MAX_LINE_BYTES = 10 * 1024 * 1024
SKIP_BLOCK = 1024 * 1024
# Byte order marks, UTF-32 before UTF-16: a UTF-32-LE mark starts with the UTF-16-LE one.
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


class Loader:
    """`load(paths)` yields an Article or an IngestError for every article found."""

    def __init__(self, max_file_mb: float = 20, fetch_timeout: float = 20):
        self.max_file_bytes = int(max_file_mb * 1024 * 1024)
        self.fetch_timeout = fetch_timeout

    def load(self, paths: Iterable[str | Path]) -> Iterator[Article | IngestError]:
        for raw in paths:
            if str(raw).startswith(("http://", "https://")):
                yield self._load_url(str(raw))
                continue
            path = Path(raw)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file() and suffix_of(p) in SUFFIXES)
                if not files:  # more often a wrong path than a wish to delete everything: --prune keeps all
                    yield IngestError(str(path), "no supported files in this folder (" + ", ".join(sorted(SUFFIXES)) +
                                      "); --prune removes nothing for it (`qa delete ID` removes an article)")
                root = str(path.resolve())
                for file in files:
                    yield from self._load_file(file, file.relative_to(path).as_posix(), root)
            elif path.is_file():
                yield from self._load_file(path, path.name, str(path.resolve()))
            else:
                yield IngestError(str(path), "no such file or folder; check the path")

    def _load_file(self, path: Path, doc_id: str, root: str) -> Iterator[Article | IngestError]:
        suffix = suffix_of(path)
        if suffix not in SUFFIXES:
            yield IngestError(str(path), f"unsupported file type {suffix!r}; use one of {', '.join(sorted(SUFFIXES))}")
            return
        if suffix in (".jsonl", ".jsonl.gz"):
            for item in self._load_jsonl(path, doc_id):
                yield _rooted(item, root)
            return
        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                raise ValueError(
                    f"the file is {size / 1e6:.0f} MB, over the {self.max_file_bytes / 1e6:.0f} MB limit "
                    "(QA_MAX_FILE_MB); split it or raise the limit"
                )
            data = path.read_bytes()
            if suffix == ".json":
                for item in self._load_json(data, path, doc_id):
                    yield _rooted(item, root)
                return
            if suffix == ".pdf":
                article = formats.article_from_pdf(data, doc_id, str(path))
            elif suffix in (".html", ".htm"):
                article = formats.article_from_html(decode(data)[0], doc_id, str(path))
            else:
                text, warning = decode(data)
                article = formats.article_from_text(text, doc_id, str(path))
                if warning:
                    article = _with(article, warnings=(warning, *article.warnings))
            yield _rooted(article, root)
        except OSError as exc:
            yield IngestError(str(path), f"cannot read the file ({exc.strerror}); check its permissions")
        except ValueError as exc:
            yield IngestError(str(path), one_line(exc))

    def _load_json(self, data: bytes, path: Path, doc_id: str) -> Iterator[Article | IngestError]:
        try:
            payload = json.loads(decode(data)[0])
        except json.JSONDecodeError as exc:
            yield IngestError(str(path), f"not valid JSON ({exc.msg}) at line {exc.lineno}", line=exc.lineno)
            return
        except (RecursionError, ValueError) as exc:
            yield IngestError(str(path), f"not usable JSON ({_json_problem(exc)})")
            return
        records = payload if isinstance(payload, list) else [payload]
        if not records:
            yield IngestError(str(path), "the JSON list is empty; it should hold article objects")
        for number, record in enumerate(records, start=1):
            default_id = doc_id if len(records) == 1 else f"{doc_id}#{number}"
            try:
                yield formats.article_from_record(record, default_id, f"{path}#{number}")
            except ValueError as exc:
                yield IngestError(str(path), f"record {number}: {one_line(exc)}")

    def _load_jsonl(self, path: Path, doc_id: str) -> Iterator[Article | IngestError]:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        number = records = 0
        try:
            with opener(path, "rb") as handle:  # a stream: big files never sit in memory whole
                for number, raw in _lines(handle):
                    if raw is None:
                        records += 1
                        yield IngestError(str(path), f"line is over {MAX_LINE_BYTES / 2**20:g} MB; one article a line, under that", line=number)
                        continue
                    if not raw.strip():
                        continue
                    records += 1
                    try:
                        record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
                    except UnicodeDecodeError:
                        yield IngestError(str(path), "not UTF-8 text; save the file as UTF-8", line=number)
                        continue
                    except json.JSONDecodeError as exc:
                        yield IngestError(str(path), f"not valid JSON ({exc.msg} at column {exc.colno})", line=number)
                        continue
                    except (RecursionError, ValueError) as exc:
                        yield IngestError(str(path), f"not usable JSON ({_json_problem(exc)})", line=number)
                        continue
                    try:
                        yield formats.article_from_record(record, f"{doc_id}#{number}", f"{path}:{number}")
                    except ValueError as exc:
                        yield IngestError(str(path), one_line(exc), line=number)
        except (OSError, EOFError, zlib.error) as exc:
            where = f" after line {number}" if number else ""
            yield IngestError(str(path), f"cannot read the file{where} ({one_line(exc)}); check that it is (gzipped) JSON Lines")
            return
        if not records:
            yield IngestError(str(path), "the file holds no records; JSON Lines has one article object a line")

    def _load_url(self, url: str) -> Article | IngestError:
        import httpx

        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=self.fetch_timeout, headers={"User-Agent": "newsqa"}) as response:
                response.raise_for_status()
                content = bytearray()
                for block in response.iter_bytes():  # read up to the limit, never a whole huge page
                    content += block
                    if len(content) > self.max_file_bytes:
                        return IngestError(url, "the page is over the size limit (QA_MAX_FILE_MB)")
        except httpx.HTTPStatusError as exc:
            return IngestError(url, f"the server answered {exc.response.status_code}; check the URL")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError: e.g. a host name IDNA refuses
            return IngestError(url, f"cannot fetch the page ({type(exc).__name__}: {one_line(exc)}); check the URL and the network")
        try:
            if "pdf" in response.headers.get("content-type", ""):
                article = formats.article_from_pdf(bytes(content), url, url)
            else:
                article = formats.article_from_html(bytes(content).decode(response.encoding or "utf-8", "replace"), url, url, url=url)
        except (ValueError, LookupError) as exc:  # LookupError: a charset Python does not know
            return IngestError(url, one_line(exc))
        return _with(article, url=article.url or url, root=url)


def _lines(handle) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; None for a line over MAX_LINE_BYTES, which is skipped, never held whole."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) <= MAX_LINE_BYTES:
            yield number, raw
            continue
        while not raw.endswith(b"\n") and (raw := handle.readline(SKIP_BLOCK)):
            pass
        yield number, None


def one_line(exc: Exception) -> str:
    """A parser's message as one line: the CLI prints one line a failed file."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"


def decode(data: bytes) -> tuple[str, str | None]:
    """Text and a warning when it was not UTF-8; ValueError for binary data.

    A byte order mark decides (UTF-8, UTF-16, UTF-32); then NUL bytes mean binary, unless the
    text is plainly UTF-16 without a mark; then UTF-8; then charset detection, with a warning.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), None
            except UnicodeDecodeError:
                raise ValueError(f"starts with a {encoding.upper().removesuffix('-SIG')} byte order mark but is not "
                                 "valid text in it; save it as UTF-8") from None
    if b"\x00" in data[:8192]:
        text = _bomless_utf16(data)
        if text is None:
            raise ValueError("binary content, not a text article; remove it or convert it to text")
        return text
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.chaos > 0.3:
        raise ValueError("not UTF-8 text and no other encoding fits; save it as UTF-8")
    # Short Western text often fits several code pages equally well: the web's default legacy one wins a tie.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for m in tied if m.encoding == "cp1252"), best)
    return str(best), f"not UTF-8; read as {best.encoding}"


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 text without a byte order mark: mostly-ASCII text has a NUL in every other byte."""
    sample = data[:8192]
    for encoding, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if len(data) % 2 == 0 and zeros.count(0) >= 0.6 * len(zeros):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                return None
            if "\x00" not in text and sum(c.isprintable() or c.isspace() for c in text[:4096]) >= 0.95 * len(text[:4096]):
                return text, f"not UTF-8; read as {encoding.upper()} (no byte order mark)"
    return None


def _with(article: Article, **changes) -> Article:
    from dataclasses import replace

    return replace(article, **changes)


def _rooted(item: Article | IngestError, root: str) -> Article | IngestError:
    return _with(item, root=root) if isinstance(item, Article) else item
