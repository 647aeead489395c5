"""`qa eval` and `qa eval compare`, run in-process on three seed questions.

In-process (typer's CliRunner) rather than as subprocesses, so the loaded model is shared:
the service the command builds is the real one, handed the session's embedder.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import qa.service
from eval.cli import settings_for
from qa.cli import app
from qa.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PICKED = ("seed-001", "seed-016", "seed-056")  # a factoid, a multiple choice, an unanswerable one


@pytest.fixture
def env(tmp_path, monkeypatch, embedder):
    real = qa.service.QAService
    monkeypatch.setattr(qa.service, "QAService", lambda settings: real(settings, embedder=embedder))
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "data"))
    lines = (ROOT / "eval" / "seed.jsonl").read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(line for line in lines if json.loads(line)["id"] in PICKED) + "\n", encoding="utf-8")
    return small


def test_a_run_is_saved_gated_and_compared(env, tmp_path):
    runner = CliRunner()
    first = tmp_path / "first"
    args = ["eval", str(env), "--corpus", str(ROOT / "seeds"), "--out", str(first), "--json", "--export", "ragas",
            "--fail-under", "citation.verbatim=1"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["questions"] == 3 and summary["config"]["articles"] == 1
    assert summary["config"]["embed_model"] and summary["config"]["corpus_hash"] and summary["config"]["backend"] == "extractive"
    assert summary["config"]["embed_backend"] == "torch"  # the backend in use (the shared embedder), not "auto"
    assert {p.name for p in first.iterdir()} == {"summary.json", "results.jsonl", "report.md", "report.html", "ragas.jsonl"}

    # No --corpus: the index is reused. The run lands under QA_DATA_DIR/eval-runs/, and a gate it misses exits 1.
    gated = runner.invoke(app, ["eval", str(env), "--fail-under", "passed=1.01"])
    assert gated.exit_code == 1 and "passed = " in gated.stderr and "under 1.01" in gated.stderr
    [second] = (tmp_path / "data" / "eval-runs").iterdir()
    assert (second / "report.html").is_file()

    compared = runner.invoke(app, ["eval", "compare", str(first), second.name])
    assert compared.exit_code == 0, compared.output
    assert "B - A" in compared.stdout and "right → wrong (0)" in compared.stdout


def test_a_typo_fails_before_the_long_run(env):
    done = CliRunner().invoke(app, ["eval", str(env), "--fail-under", "pased=0.5"])
    assert isinstance(done.exception, ConfigError) and "unknown metric 'pased'" in str(done.exception)


def test_an_unknown_backend_is_named():
    assert settings_for("extractive").llm == "extractive"
    with pytest.raises(ConfigError, match="unknown backend 'nosuch'.*extractive"):
        settings_for("nosuch")
