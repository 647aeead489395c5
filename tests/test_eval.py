"""The seed evaluation set, judged per question against the recorded expectations.

eval/expected/seed-extractive.json records which questions the extractive answerer gets
right. A question that regresses fails its own test; one that starts passing fails too, as
a reminder to record the improvement (`python -m eval.record`).
"""

import json
from pathlib import Path

import pytest

from eval.runner import load_set, run

ROOT = Path(__file__).resolve().parent.parent
ITEMS = load_set(ROOT / "eval" / "seed.jsonl")
EXPECTED = json.loads((ROOT / "eval" / "expected" / "seed-extractive.json").read_text())


@pytest.fixture(scope="module")
def results(seeded):
    return {r.id: r for r in run(seeded, ITEMS)}


def test_the_set_is_well_formed():
    text = (ROOT / "seeds" / "000_816be8fe4ddfb075.txt").read_text(encoding="utf-8")
    assert len(ITEMS) >= 30 and sum(not i["answerable"] for i in ITEMS) >= 5
    assert len({i["id"] for i in ITEMS}) == len(ITEMS)
    for item in ITEMS:
        for evidence in item["evidence"]:
            assert evidence["quote"] in text, item["id"]
    assert set(EXPECTED) == {i["id"] for i in ITEMS}


@pytest.mark.parametrize("item", ITEMS, ids=[i["id"] for i in ITEMS])
def test_question(results, item):
    result = results[item["id"]]
    assert result.citations_exact
    assert result.passed == EXPECTED[item["id"]], f"{result.reason or 'now passes'}: {result.answer[:200]}"


def test_overall_rates(results):
    answerable = [r for r in results.values() if r.answerable]
    unanswerable = [r for r in results.values() if not r.answerable]
    assert sum(r.passed for r in answerable) / len(answerable) >= 0.85
    assert sum(r.passed for r in unanswerable) >= 5
