"""Reads article files (.txt, .md, .jsonl, .jsonl.gz) into Articles.

Errors are yielded, not raised, so one bad file or line never stops the others.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from index.documents import Article
from qa.errors import IngestError

TEXT_SUFFIXES = {".txt", ".md"}
JSONL_SUFFIXES = {".jsonl", ".jsonl.gz"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def is_supported(path: Path) -> bool:
    return _suffix(path) in TEXT_SUFFIXES | JSONL_SUFFIXES


class Loader:
    """`load(paths)` yields an Article or an IngestError for every article found."""

    def load(self, paths: Iterable[str | Path]) -> Iterator[Article | IngestError]:
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file() and is_supported(p))
                if not files:
                    yield IngestError(str(path), "no .txt, .md or .jsonl files in this folder")
                for file in files:
                    yield from self._load_file(file, file.relative_to(path).as_posix())
            elif path.is_file():
                yield from self._load_file(path, path.name)
            else:
                yield IngestError(str(path), "no such file or folder; check the path")

    def _load_file(self, path: Path, rel_id: str) -> Iterator[Article | IngestError]:
        suffix = _suffix(path)
        if suffix in TEXT_SUFFIXES:
            yield self._load_text(path, rel_id)
        elif suffix in JSONL_SUFFIXES:
            yield from self._load_jsonl(path, rel_id)
        else:
            yield IngestError(str(path), f"unsupported file type {suffix!r}; use .txt, .md or .jsonl")

    def _load_text(self, path: Path, rel_id: str) -> Article | IngestError:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return IngestError(str(path), f"cannot read the file ({exc.strerror}); check its permissions")
        if b"\x00" in raw[:8192]:
            return IngestError(str(path), "binary content, not a text article; remove it or convert it to text")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return IngestError(str(path), f"not UTF-8 text (byte {exc.start}); save it as UTF-8")
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.strip():
                title = line.strip().lstrip("#").strip()
                body = "".join(lines[i + 1 :]).strip()
                break
        else:
            return IngestError(str(path), "the file is empty; an article needs a title line and a text")
        if not body:
            return IngestError(str(path), "the file has a title but no text")
        return Article(id=rel_id, title=title, text=body, path=str(path))

    def _load_jsonl(self, path: Path, rel_id: str) -> Iterator[Article | IngestError]:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield self._parse_record(line, path, rel_id, number)
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            yield IngestError(str(path), f"cannot read the file ({exc}); check that it is UTF-8 JSON Lines")

    def _parse_record(self, line: str, path: Path, rel_id: str, number: int) -> Article | IngestError:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            return IngestError(str(path), f"not valid JSON ({exc.msg} at column {exc.colno})", line=number)
        if not isinstance(record, dict):
            return IngestError(str(path), "expected a JSON object with at least a 'text' field", line=number)
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            return IngestError(str(path), "field 'text' is missing or empty", line=number)
        authors = record.get("authors") or ()
        if isinstance(authors, str):
            authors = (authors,)
        return Article(
            id=str(record.get("id") or f"{rel_id}#{number}"),
            title=str(record.get("title") or "").strip(),
            text=text.strip(),
            published=parse_date(record.get("published")),
            source=(str(record["source"]) if record.get("source") else None),
            url=(str(record["url"]) if record.get("url") else None),
            authors=tuple(str(a) for a in authors),
            path=f"{path}:{number}",
        )


def parse_date(value: object) -> str | None:
    """ISO date or None: an unparseable date is stored as undated rather than guessed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None
