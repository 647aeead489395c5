"""The corpus sizes of the benchmark and the questions asked at each.

`seed` is seeds/ with the 64 questions of eval/seed.jsonl; a number N is the first N articles
of ../shared/bench/realtimeqa/articles.jsonl.gz and `all` is that whole file (3,773 articles),
each with the RealTime QA dev questions whose gold article is in the slice. The shared corpus
is read where it is, never copied into the repository.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import ROOT

REALTIMEQA = ROOT.parent / "shared" / "bench" / "realtimeqa"
ARTICLES = REALTIMEQA / "articles.jsonl.gz"
QUESTIONS = REALTIMEQA / "questions.jsonl"
SEED_QUESTIONS = ROOT / "eval" / "seed.jsonl"


class Unavailable(Exception):
    """A size that cannot run here; the message says why (printed, and kept in results.json)."""


@dataclass
class Corpus:
    size: str
    path: Path  # what `qa ingest` is given
    articles: int
    # {"question", "question_date" (or None), "evidence_doc_ids" (empty for the seed set)}
    questions: list[dict] = field(default_factory=list)

    @property
    def graded(self) -> bool:
        """Whether hit@10 means anything here: RealTime QA questions with a gold article in the slice."""
        return any(q["evidence_doc_ids"] for q in self.questions)

    def describe(self) -> dict:
        path = "seeds/" if self.size == "seed" else "../shared/bench/realtimeqa/articles.jsonl.gz"
        if self.size.isdigit():
            path += f" (the first {self.size} articles)"
        return {"path": path, "articles": self.articles, "questions": len(self.questions),
                "question_set": "eval/seed.jsonl" if self.size == "seed" else "RealTime QA dev, gold article in the slice"}


def prepare(size: str, folder: Path) -> Corpus:
    """The corpus for `size`; slices are written into `folder` (the run's temporary directory)."""
    if size == "seed":
        seeds = ROOT / "seeds"
        questions = [{"question": q["question"], "question_date": None, "evidence_doc_ids": []}
                     for q in map(json.loads, SEED_QUESTIONS.read_text().splitlines()) if q]
        return Corpus(size, seeds, sum(1 for p in seeds.iterdir() if p.is_file()), questions)
    if not ARTICLES.exists() or not QUESTIONS.exists():
        raise Unavailable(f"no RealTime QA corpus at {REALTIMEQA} (it lives in ../shared, outside the repository)")
    if size == "all":
        path = ARTICLES
        with gzip.open(ARTICLES, "rt", encoding="utf-8") as handle:
            ids = [json.loads(line)["id"] for line in handle if line.strip()]
    else:
        limit = int(size)
        path = folder / f"realtimeqa-{limit}.jsonl"
        ids = []
        with gzip.open(ARTICLES, "rt", encoding="utf-8") as handle, open(path, "w", encoding="utf-8") as out:
            for line in handle:
                if len(ids) == limit:
                    break
                if line.strip():
                    out.write(line)
                    ids.append(json.loads(line)["id"])
    return Corpus(size, path, len(ids), dev_questions(set(ids)))


def dev_questions(article_ids: set[str]) -> list[dict]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [{"question": r["question"], "question_date": r["question_date"], "evidence_doc_ids": r["evidence_doc_ids"]}
            for r in rows if r["split"] == "dev" and set(r["evidence_doc_ids"]) & article_ids]


def parse_sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    for size in sizes:
        if size not in ("seed", "all") and not (size.isdigit() and int(size) > 0):
            raise SystemExit(f"--sizes: {size!r} is not seed, all or a number of articles")
    return sizes

