"""Query latency in a warm process, and retrieval hit@10 (a benchmark worker).

    QA_DATA_DIR=DIR QA_EMBED_BACKEND=... .venv/bin/python bench/query.py --questions FILE [--repeats N]

Opens the index in QA_DATA_DIR with QAService as `qa serve` does, warms it up with one search
and one ask, then times `QAService.search` and the extractive `QAService.ask` over every
question, each asked as of its date and embedded afresh (the question cache is emptied
before each pass); p50 and p95 per repeat. Filtered searches too: each question with the
filters a user sets (published in the 30 days before its date; from the source with the
most articles; within its gold article, or else the newest), as the retriever runs them and
with Chroma's own filter for every one (`filtered_chroma_*`), in the same pass. With gold
articles, also hit@10 by bench/retrieval.py's `evaluate`: dense only, and as users get it
(hybrid + dates). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import percentile  # noqa: E402
from qa.answer import quotable  # noqa: E402
from qa.retrieve import Filters, Retriever  # noqa: E402
from qa.service import QAService  # noqa: E402
from qa.settings import Settings  # noqa: E402

HIT_MODES = {"dense": dict(keyword=False, dates=False), "default": {}}


def as_of(question: dict) -> dt.date | None:
    return dt.date.fromisoformat(question["question_date"]) if question.get("question_date") else None


def latencies_ms(service: QAService, call, questions: list[dict]) -> list[float]:
    service.embedder.forget_queries()  # each pass embeds its questions and splits its passages anew:
    quotable.cache_clear()  # a new question's real cost (both caches serve questions asked again)
    times = []
    for q in questions:
        began = time.perf_counter()
        call(q["question"], as_of=as_of(q), filters=q.get("filters"))
        times.append((time.perf_counter() - began) * 1000)
    return times


def filtered_searches(service: QAService, questions: list[dict]) -> list[tuple[dict, Filters]]:
    """(question, filters) for each filter a user might set on it."""
    articles = service.ledger.list()  # newest first
    sources = Counter(doc["source"] for doc in articles if doc.get("source"))
    searches = []
    for q in questions:
        if as_of(q):
            searches.append((q, Filters(since=as_of(q) - dt.timedelta(days=30), until=as_of(q))))
        if sources:
            searches.append((q, Filters(sources=(sources.most_common(1)[0][0],))))
        if q.get("evidence_doc_ids") or articles:
            searches.append((q, Filters(doc_ids=tuple(q.get("evidence_doc_ids") or [articles[0]["id"]]))))
    return searches


def filtered_ms(service: QAService, searches: list[tuple[dict, Filters]], chroma: bool) -> list[float]:
    """Search latencies with filters; `chroma`: every filter applied by Chroma's `where`, as
    before 2026-12-07 (the store is not told which chunks pass)."""
    store = service.store
    if chroma:
        store.nearest = lambda embedding, top_k, where=None, among=None: type(store).nearest(store, embedding, top_k, where)
    try:
        return latencies_ms(service, service.search, [dict(q, filters=filters) for q, filters in searches])
    finally:
        store.__dict__.pop("nearest", None)


def hits(service: QAService, questions: list[dict]) -> dict:
    from bench.retrieval import evaluate  # needs ../shared only for its default paths, not here

    graded = [q for q in questions if q["evidence_doc_ids"]]
    if not graded:
        return {}
    result = {}
    for mode, switches in HIT_MODES.items():
        retriever = Retriever(service.embedder, service.store, service.ledger, 10, max_per_article=1, **switches)
        result[mode] = round(evaluate(retriever, graded)["hit@10"], 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    questions = json.loads(args.questions.read_text())
    service = QAService(Settings())
    service.embedder.speed_up_short_texts()  # as `qa serve` does
    service.search(questions[0]["question"], as_of=as_of(questions[0]))  # loads the model, the store, BM25
    service.ask(questions[0]["question"], as_of=as_of(questions[0]))
    searches = filtered_searches(service, questions)
    runs = []
    for _ in range(args.repeats):
        search, ask = latencies_ms(service, service.search, questions), latencies_ms(service, service.ask, questions)
        runs.append({"search_p50_ms": percentile(search, 0.5), "search_p95_ms": percentile(search, 0.95),
                     "ask_p50_ms": percentile(ask, 0.5), "ask_p95_ms": percentile(ask, 0.95)})
        if searches:
            filtered, chroma = filtered_ms(service, searches, chroma=False), filtered_ms(service, searches, chroma=True)
            runs[-1].update({"filtered_p50_ms": percentile(filtered, 0.5), "filtered_p95_ms": percentile(filtered, 0.95),
                             "filtered_chroma_p50_ms": percentile(chroma, 0.5), "filtered_chroma_p95_ms": percentile(chroma, 0.95)})
    print(json.dumps({"questions": len(questions), "filtered_searches": len(searches), "chunks": service.store.count(), "runs": runs,
                      "hit@10": hits(service, questions)}))


if __name__ == "__main__":
    main()
