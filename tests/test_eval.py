"""The seed evaluation set: every metric above its floor, and every question judged as recorded.

eval/expected/seed-extractive.json records which questions the extractive answerer gets
right. A question that regresses fails its own test; one that starts passing fails too, as
a reminder to record the improvement (`python -m eval.record`). The floors catch a drop in
a metric that no single verdict shows (retrieval ranks, citation precision, latency).
"""

import json
from pathlib import Path

import pytest

from eval.report import write_run
from eval.runner import load_set, run
from eval.runs import run_config
from eval.summary import summarize

ROOT = Path(__file__).resolve().parent.parent
ITEMS = load_set(ROOT / "eval" / "seed.jsonl")
EXPECTED = json.loads((ROOT / "eval" / "expected" / "seed-extractive.json").read_text())

# Floors a little under what the extractive answerer scores on the seed set today.
FLOORS = {
    "passed": 0.72,
    "retrieval.hit@1": 1.0,  # one article: it must always come first
    "evidence.hit@5": 0.95,
    "evidence.mrr": 0.80,
    "evidence.ndcg@10": 0.85,
    "answer.contains": 0.85,
    "answer.f1": 0.15,
    "choice.accuracy": 0.80,
    "citation.precision": 0.80,
    "citation.recall": 0.80,
    "citation.verbatim": 1.0,
    "citation.supported": 1.0,
    "abstention.right_refusal": 0.35,
}
CEILINGS = {"abstention.false_refusal": 0.10, "latency.p95_ms": 30_000}  # latency: only a hang fails


@pytest.fixture(scope="module")
def results(seeded):
    return {r.id: r for r in run(seeded, ITEMS)}


@pytest.fixture(scope="module")
def overall(results):
    return summarize(list(results.values()))["overall"]


def test_the_set_is_well_formed():
    text = (ROOT / "seeds" / "000_816be8fe4ddfb075.txt").read_text(encoding="utf-8")
    assert len(ITEMS) >= 60
    tags = {tag for item in ITEMS for tag in item.tags}
    assert {"factoid", "list", "date", "multi-part", "follow-up", "unanswerable"} <= tags
    assert sum(not i.answerable for i in ITEMS) >= 10 and sum(bool(i.choices) for i in ITEMS) >= 5
    assert all(i.answers and i.evidence for i in ITEMS if i.answerable)
    for item in ITEMS:
        for evidence in item.evidence:
            assert evidence.quote in text, item.id
    conversations = [i.conversation for i in ITEMS if "follow-up" in i.tags]
    assert conversations and all(conversations)
    assert set(EXPECTED) == {i.id for i in ITEMS}


@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_question(results, item):
    result = results[item.id]
    assert result.citations_exact
    assert result.passed == EXPECTED[item.id], f"{result.reason or 'now passes'}: {result.answer[:200]}"


@pytest.mark.parametrize("name", FLOORS)
def test_metric_floor(overall, name):
    assert overall[name] >= FLOORS[name]


@pytest.mark.parametrize("name", CEILINGS)
def test_metric_ceiling(overall, name):
    assert overall[name] <= CEILINGS[name]


def test_the_run_is_saved_with_its_configuration(seeded, results, tmp_path):
    rows = list(results.values())
    version = {"git_commit": "0" * 40, "git_dirty": True}  # as taken when the run began
    summary = {"config": run_config(seeded, ROOT / "eval" / "seed.jsonl", None, "seeds", rows, version), **summarize(rows)}
    run_dir = write_run(tmp_path / "run", summary, rows)
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["config"]["articles"] == 1 and len(saved["config"]["corpus_hash"]) == 64
    assert saved["config"]["git_commit"] == "0" * 40 and saved["config"]["git_dirty"]
    assert saved["config"]["settings"]["top_k"] == seeded.settings.top_k
    assert not any("key" in name for name in saved["config"]["settings"])  # no secrets in saved runs
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == len(ITEMS)
    assert "<svg" in (run_dir / "report.html").read_text()
