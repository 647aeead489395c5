"""Saved runs (eval/runs.py), their reports (eval/report.py) and the ragas export, on results built here."""

import json
import re

import pytest

from eval.export import export
from eval.judge import QuestionResult
from eval.report import write_run
from eval.runs import compare, corpus_hash, load_run, resolve_run, unmet
from eval.summary import summarize
from qa.errors import ConfigError


def result(id, passed, choice_right=None, latency=100.0, tags=("factoid",)):
    metrics = {"passed": float(passed), "answer.f1": 0.5 if passed else 0.0, "choice.accuracy": choice_right}
    return QuestionResult(
        id=id, question=f"Question {id}?", asked=f"Question {id}?", conversation=None, tags=list(tags), answerable=True, answers=[f"answer {id}"],
        abstained=False, answer=f"An answer <b>{id}</b> [1]", backend="extractive", passed=passed,
        reason="" if passed else "no acceptable answer in the answer text", citations_exact=True,
        choice=None, retrieved=["d1"], contexts=[f"passage about {id}"], latency_ms=latency, metrics=metrics,
    )


def save(tmp_path, name, results):
    summary = {"config": {"set": "set.jsonl", "embed_model": "m", "backend": "extractive", "git_commit": "abc"}, **summarize(results)}
    return write_run(tmp_path / "eval-runs" / name, summary, results)


@pytest.fixture
def runs(tmp_path):
    a = save(tmp_path, "A", [result("1", True, 1.0), result("2", False, 0.0), result("3", True, None, tags=("list",))])
    b = save(tmp_path, "B", [result("1", False, 0.0), result("2", True, 1.0), result("3", True, None, 900.0)])
    return a, b


def test_compare_shows_deltas_and_flips_both_ways(runs):
    a, b = runs
    diff = compare(load_run(a), load_run(b))
    assert diff["metrics"]["passed"] == {"a": 0.666667, "b": 0.666667, "delta": 0.0}
    assert diff["metrics"]["latency.p95_ms"]["delta"] == pytest.approx(720.0)  # p95 of 100,100,900 is 820
    assert [r["id"] for r in diff["flips"]["passed"]["broke"]] == ["1"]
    assert [r["id"] for r in diff["flips"]["passed"]["fixed"]] == ["2"]
    assert [r["id"] for r in diff["flips"]["choice"]["fixed"]] == ["2"]  # question 3 has no choices


def test_runs_are_found_by_path_or_by_name(runs, tmp_path):
    a, _ = runs
    assert resolve_run(str(a), tmp_path) == a
    assert resolve_run("A", tmp_path) == tmp_path / "eval-runs" / "A"
    with pytest.raises(ConfigError, match="not a saved evaluation run"):
        resolve_run("nope", tmp_path)


def test_gates_name_what_they_miss():
    overall = {"passed": 0.7, "latency.p95_ms": 900.0, "choice.accuracy": None}
    assert unmet(overall, ["passed=0.7"]) == []
    assert unmet(overall, ["passed=0.75"]) == ["passed = 0.7 is under 0.75"]
    assert unmet(overall, ["latency.p95_ms=500"], below=False) == ["latency.p95_ms = 900.0 is over 500.0"]
    assert unmet(overall, ["choice.accuracy=0.1"]) == ["choice.accuracy was not measured"]
    with pytest.raises(ConfigError, match="unknown metric 'pased'"):
        unmet(overall, ["pased=0.5"])
    with pytest.raises(ConfigError, match="METRIC=VALUE"):
        unmet(overall, ["passed"])


def test_the_files_of_a_run(runs):
    a, _ = runs
    assert sorted(p.name for p in a.iterdir()) == ["report.html", "report.md", "results.jsonl", "summary.json"]
    summary = json.loads((a / "summary.json").read_text())
    assert summary["config"]["embed_model"] == "m" and summary["per_tag"]["list"]["questions"] == 1
    rows = [json.loads(line) for line in (a / "results.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == ["", "no acceptable answer in the answer text", ""]
    markdown = (a / "report.md").read_text()
    assert "| passed | 66.7 % | 3 |" in markdown and "## Per tag" in markdown and "| 2 | no |" in markdown


def test_the_html_report_is_one_self_contained_file(runs):
    html = (runs[0] / "report.html").read_text()
    assert html.count("<svg") == 3  # metrics, per-tag breakdown, latency histogram
    assert not re.search(r"https?://|<script|<link|src=", html)
    assert "An answer &lt;b&gt;1&lt;/b&gt;" in html  # answer text is escaped


def test_the_ragas_export(tmp_path):
    path = export([result("1", True)], tmp_path, "ragas")
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["user_input"] == record["question"] == "Question 1?"
    assert record["retrieved_contexts"] == record["contexts"] == ["passage about 1"]
    assert record["response"] == record["answer"] and record["reference"] == record["ground_truth"] == "answer 1"


def test_the_corpus_hash_ignores_order_and_sees_changes():
    docs = [{"id": "a", "hash": "1"}, {"id": "b", "hash": "2"}]
    assert corpus_hash(docs) == corpus_hash(docs[::-1])
    assert corpus_hash(docs) != corpus_hash([{"id": "a", "hash": "1"}, {"id": "b", "hash": "3"}])
