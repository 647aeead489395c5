"""Finds articles in files, folders and URLs, and reads each with the parser for its format.

Errors are yielded, not raised, so one bad file or line never stops the others.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from index import formats
from index.documents import Article
from qa.errors import IngestError

SUFFIXES = {".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz", ".pdf"}
MAX_LINE_BYTES = 10 * 1024 * 1024


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
                if not files:
                    yield IngestError(str(path), "no supported files in this folder (" + ", ".join(sorted(SUFFIXES)) + ")")
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
                    article = _with(article, warnings=(warning,))
            yield _rooted(article, root)
        except OSError as exc:
            yield IngestError(str(path), f"cannot read the file ({exc.strerror}); check its permissions")
        except ValueError as exc:
            yield IngestError(str(path), str(exc))

    def _load_json(self, data: bytes, path: Path, doc_id: str) -> Iterator[Article | IngestError]:
        try:
            payload = json.loads(decode(data)[0])
        except json.JSONDecodeError as exc:
            yield IngestError(str(path), f"not valid JSON ({exc.msg}) at line {exc.lineno}", line=exc.lineno)
            return
        records = payload if isinstance(payload, list) else [payload]
        for number, record in enumerate(records, start=1):
            default_id = doc_id if len(records) == 1 else f"{doc_id}#{number}"
            try:
                yield formats.article_from_record(record, default_id, f"{path}#{number}")
            except ValueError as exc:
                yield IngestError(str(path), f"record {number}: {exc}")

    def _load_jsonl(self, path: Path, doc_id: str) -> Iterator[Article | IngestError]:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with opener(path, "rb") as handle:  # a stream: big files never sit in memory whole
                for number, raw in enumerate(handle, start=1):
                    if not raw.strip():
                        continue
                    if len(raw) > MAX_LINE_BYTES:
                        yield IngestError(str(path), f"line is {len(raw) / 1e6:.0f} MB; one article a line, under 10 MB", line=number)
                        continue
                    try:
                        record = json.loads(raw.decode("utf-8"))
                    except UnicodeDecodeError:
                        yield IngestError(str(path), "not UTF-8 text; save the file as UTF-8", line=number)
                        continue
                    except json.JSONDecodeError as exc:
                        yield IngestError(str(path), f"not valid JSON ({exc.msg} at column {exc.colno})", line=number)
                        continue
                    try:
                        yield formats.article_from_record(record, f"{doc_id}#{number}", f"{path}:{number}")
                    except ValueError as exc:
                        yield IngestError(str(path), str(exc), line=number)
        except (OSError, EOFError) as exc:
            yield IngestError(str(path), f"cannot read the file ({exc}); check that it is (gzipped) JSON Lines")

    def _load_url(self, url: str) -> Article | IngestError:
        import httpx

        try:
            response = httpx.get(url, follow_redirects=True, timeout=self.fetch_timeout, headers={"User-Agent": "newsqa"})
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            return IngestError(url, f"the server answered {exc.response.status_code}; check the URL")
        except httpx.HTTPError as exc:
            return IngestError(url, f"cannot fetch the page ({type(exc).__name__}: {exc}); check the URL and the network")
        if len(response.content) > self.max_file_bytes:
            return IngestError(url, "the page is over the size limit (QA_MAX_FILE_MB)")
        try:
            if "pdf" in response.headers.get("content-type", ""):
                article = formats.article_from_pdf(response.content, url, url)
            else:
                article = formats.article_from_html(response.text, url, url, url=url)
        except ValueError as exc:
            return IngestError(url, str(exc))
        return _with(article, url=article.url or url, root=url)


def decode(data: bytes) -> tuple[str, str | None]:
    """Text and a warning when it was not UTF-8; ValueError for binary data."""
    if b"\x00" in data[:8192]:
        raise ValueError("binary content, not a text article; remove it or convert it to text")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > 0.3:
        raise ValueError("not UTF-8 text and no other encoding fits; save it as UTF-8")
    return str(best), f"not UTF-8; read as {best.encoding}"


def _with(article: Article, **changes) -> Article:
    from dataclasses import replace

    return replace(article, **changes)


def _rooted(item: Article | IngestError, root: str) -> Article | IngestError:
    return _with(item, root=root) if isinstance(item, Article) else item
