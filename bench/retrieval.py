"""Retrieval quality and latency on RealTime QA (../shared/bench/realtimeqa), dev split.

    QA_DATA_DIR=/tmp/rtqa-data .venv/bin/python bench/retrieval.py [--ingest] [--split dev] [--write-doc]

Each question is asked as of its `question_date`. A question counts when its gold article is
among the first K distinct articles. Prints a table (dense, BM25, hybrid, hybrid + dates) and,
with --write-doc, replaces the table in docs/retrieval.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.retrieve import Retriever  # noqa: E402
from qa.service import QAService  # noqa: E402
from qa.settings import Settings  # noqa: E402

CORPUS = ROOT.parent / "shared" / "bench" / "realtimeqa"
KS = (1, 3, 5, 10)
MODES = {
    "dense": dict(keyword=False, dates=False, title=False),
    "bm25": dict(dense=False, dates=False, title=False),
    "hybrid": dict(dates=False, title=False),
    "hybrid + dates": dict(title=False),
    "hybrid + dates + titles": dict(),
}


def load_questions(split: str) -> list[dict]:
    rows = [json.loads(line) for line in (CORPUS / "questions.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["split"] == split and r["evidence_doc_ids"]]


def evaluate(retriever: Retriever, questions: list[dict]) -> dict:
    hits = {k: 0 for k in KS}
    reciprocal = 0.0
    latencies = []
    for q in questions:
        began = time.perf_counter()
        passages = retriever.search(q["question"], top_k=10, as_of=dt.date.fromisoformat(q["question_date"]))
        latencies.append((time.perf_counter() - began) * 1000)
        articles = list(dict.fromkeys(p.doc_id for p in passages))
        gold = set(q["evidence_doc_ids"])
        rank = next((i for i, doc in enumerate(articles, start=1) if doc in gold), None)
        for k in KS:
            hits[k] += rank is not None and rank <= k
        reciprocal += 1 / rank if rank else 0
    n = len(questions)
    latencies.sort()
    return {
        **{f"hit@{k}": hits[k] / n for k in KS},
        "mrr": reciprocal / n,
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "questions": n,
    }


def table(results: dict[str, dict]) -> str:
    lines = ["| retrieval | " + " | ".join(f"hit@{k}" for k in KS) + " | MRR | p50 ms | p95 ms |",
             "|---|" + "---:|" * (len(KS) + 3)]
    for name, r in results.items():
        cells = [f"{100 * r[f'hit@{k}']:.1f} %" for k in KS] + [f"{r['mrr']:.3f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="dev", choices=["dev", "test"])
    parser.add_argument("--ingest", action="store_true", help="ingest the corpus first (skips unchanged articles)")
    parser.add_argument("--write-doc", action="store_true", help="update the table in docs/retrieval.md")
    args = parser.parse_args()
    if not (CORPUS / "questions.jsonl").exists():
        print(f"skipped: the RealTime QA corpus is not at {CORPUS} (it lives in ../shared, outside the repository)")
        return
    service = QAService(Settings())
    service.embedder.speed_up_short_texts()  # as `qa serve` does: questions through onnxruntime fp32
    if args.ingest:
        service.ingest([CORPUS / "articles.jsonl.gz"])
    if service.store.count() == 0:
        print("the index is empty: run with --ingest, or set QA_DATA_DIR to an ingested data dir")
        sys.exit(1)
    questions = load_questions(args.split)
    results = {}
    for name, switches in MODES.items():
        retriever = Retriever(service.embedder, service.store, service.ledger, 10, max_per_article=1, **switches)
        for q in questions[:5]:  # warm: the first searches load Chroma's index and the page cache
            retriever.search(q["question"], as_of=dt.date.fromisoformat(q["question_date"]))
        service.embedder.forget_queries()  # each mode embeds its questions itself: p50 includes it
        results[name] = evaluate(retriever, questions)
    text = table(results)
    chunks = service.store.count()
    print(f"RealTime QA {args.split}: {len(questions)} questions with a gold article; {chunks} chunks indexed\n")
    print(text)
    if args.write_doc:
        doc = ROOT / "docs" / "retrieval.md"
        content = doc.read_text()
        begin, end = "<!-- table:begin -->", "<!-- table:end -->"
        head, _, rest = content.partition(begin)
        _, _, tail = rest.partition(end)
        stamp = f"\n{args.split} split, {len(questions)} questions, {chunks} chunks, {dt.date.today().isoformat()}\n\n"
        doc.write_text(head + begin + stamp + text + "\n" + end + tail)


if __name__ == "__main__":
    main()
