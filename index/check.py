"""`qa index check`: the Chroma collection and the keyword index verified against the ledger.

The ledger is the source of truth. Every chunk it holds must be in Chroma with the article's
metadata and text; Chroma must hold nothing else, apart from chunks an interrupted write left
and listed as pending (the next writer sweeps them); the persisted keyword index must hold the
ledger's chunks; and SQLite must find the ledger file sound (`PRAGMA integrity_check`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from index.keyword import KeywordIndex
from index.ledger import Ledger, chunks_of, row_is_sound
from index.store import ChromaStore, expected_metadata
from qa.errors import BackendUnavailableError, EmbeddingMismatchError, StoreError

COMPARED = ("doc_id", "title", "published", "source", "url", "authors", "content_hash", "published_days", "start", "end", "index")
SHOWN = 3  # ids quoted in a one-line summary


@dataclass
class CheckReport:
    ledger_file: str
    store: str
    articles: int = 0
    chunks: int = 0  # live chunks in the ledger
    stored: int = 0  # chunks in Chroma
    ledger_problems: list[str] = field(default_factory=list)  # SQLite's complaints, unreadable or inconsistent rows
    store_problem: str | None = None  # Chroma could not be read: what went wrong
    missing: list[str] = field(default_factory=list)  # in the ledger, not in Chroma
    mismatched: list[str] = field(default_factory=list)  # in both, but metadata or text differ
    orphans: list[str] = field(default_factory=list)  # in Chroma, unknown to the ledger
    keyword_problem: str | None = None
    leftovers: list[str] = field(default_factory=list)  # in Chroma and pending: the next writer deletes them
    keyword_behind: bool = False  # readers build it in memory until the next write persists it

    @property
    def problems(self) -> list[str]:
        found = [f"ledger {self.ledger_file}: {p}" for p in self.ledger_problems]
        if self.store_problem:
            found.append(self.store_problem)
        for ids, what in ((self.missing, "missing from the vector store"),
                          (self.mismatched, "stored with other metadata or text than the ledger's"),
                          (self.orphans, "in the vector store but unknown to the ledger")):
            if ids:
                found.append(f"{len(ids)} chunks {what}: {_some(ids)}")
        if self.keyword_problem:
            found.append(f"keyword index: {self.keyword_problem}")
        return found

    @property
    def notes(self) -> list[str]:
        found = []
        if self.leftovers:
            found.append(f"{len(self.leftovers)} chunks left by an interrupted write, to be swept by the next write: {_some(self.leftovers)}")
        if self.keyword_behind:
            found.append("the persisted keyword index is older than the ledger; searches build a current one in memory")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes, **asdict(self)}


class IndexChecker:
    def __init__(self, store: ChromaStore, ledger: Ledger):
        self.store = store
        self.ledger = ledger
        self.keywords = KeywordIndex(ledger.path.parent)

    def check(self) -> CheckReport:
        """Read-only; call it holding the write lock, so no writer is half-way through."""
        report = CheckReport(ledger_file=str(self.ledger.path), store=self.store.where)
        rows = self._ledger_rows(report)
        stored = self._stored(report)
        if rows is None or stored is None:
            return report
        try:
            pending = set(self.ledger.pending())
        except StoreError as exc:
            report.ledger_problems.append(f"its pending table cannot be read ({exc.__cause__ or exc})")
            pending = set()
        live = set()
        for row in rows:
            for chunk in chunks_of(row):
                live.add(chunk.id)
                if chunk.id not in stored:
                    report.missing.append(chunk.id)
                    continue
                metadata, text = stored[chunk.id]
                expected = expected_metadata(chunk)
                if text != chunk.text or any((metadata or {}).get(k) != expected.get(k) for k in COMPARED):
                    report.mismatched.append(chunk.id)
        for chunk_id in sorted(set(stored) - live):
            (report.leftovers if chunk_id in pending else report.orphans).append(chunk_id)
        self._keywords(report, live)
        return report

    def _ledger_rows(self, report: CheckReport) -> list[dict] | None:
        report.ledger_problems = self.ledger.integrity()
        try:
            rows = list(self.ledger.rows())
        except StoreError as exc:
            if not report.ledger_problems:
                report.ledger_problems.append(f"cannot be read ({exc.__cause__ or exc})")
            return None
        sound = []
        for row in rows:
            if row_is_sound(row):
                sound.append(row)
            else:
                report.ledger_problems.append(f"article {row['id']!r} disagrees with its own hash, chunk ids or spans")
        report.articles = len(rows)
        report.chunks = sum(len(chunks_of(row)) for row in sound)
        return sound

    def _stored(self, report: CheckReport) -> dict[str, tuple[dict | None, str | None]] | None:
        try:
            stored = {chunk_id: (metadata, text) for chunk_id, metadata, text in self.store.records()}
            self.store.probe()
        except (BackendUnavailableError, EmbeddingMismatchError):
            raise  # not damage: the message says what to do
        except StoreError as exc:
            report.store_problem = str(exc)
            return None
        report.stored = len(stored)
        return stored

    def _keywords(self, report: CheckReport, live: set[str]) -> None:
        try:
            generation = self.ledger.generation()
        except StoreError as exc:
            report.ledger_problems.append(f"its generation cannot be read ({exc.__cause__ or exc})")
            return
        try:
            persisted = self.keywords.persisted()
        except Exception as exc:  # json and numpy raise many kinds on damaged files
            report.keyword_problem = f"{self.keywords.folder} cannot be read ({type(exc).__name__}: {exc})"
            return
        if persisted is None:
            report.keyword_behind = bool(live)
        elif persisted[0] > generation:
            report.keyword_problem = f"its generation {persisted[0]} is ahead of the ledger's {generation}"
        elif persisted[0] < generation:
            report.keyword_behind = True
        elif sorted(persisted[1]) != sorted(live):
            report.keyword_problem = f"it holds other chunks than the ledger at the same generation {generation}"


def _some(ids: list[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
