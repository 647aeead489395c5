"""The `qa` command as a user runs it: real subprocesses over one data dir."""

import json
import os
import re
import subprocess

import pytest

from tests.conftest import QA_BIN, SEED_ID, SEEDS, qa_env

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"


def qa(*args, env, input=None):
    return subprocess.run([QA_BIN, *map(str, args)], env=env, capture_output=True, text=True, timeout=300, input=input)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qa_env(QA_DATA_DIR=tmp_path_factory.mktemp("cli") / "data")
    result = qa("ingest", SEEDS, "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 1 and summary["failed"] == 0 and summary["chunks"] > 0
    env["SEED_CHUNKS"] = str(summary["chunks"])
    env["SEED_INGEST"] = result.stdout
    return env


def test_ingest_reports_its_time_by_stage(env):
    """A new data dir: the model is loaded (and exported to int8) once, then every stage has run."""
    summary = json.loads(env["SEED_INGEST"])
    stages = summary["stages"]
    assert list(stages) == ["model", "read", "chunk", "embed", "store", "ledger", "keywords"]
    assert all(stages[s] > 0 for s in ("model", "chunk", "embed", "store", "ledger"))
    assert sum(stages.values()) <= summary["seconds"] and 0 < summary["encoder_seconds"] < summary["seconds"]
    again = json.loads(qa("ingest", SEEDS, "--json", env=env).stdout)
    assert again["stages"]["model"] == again["stages"]["chunk"] == again["stages"]["embed"] == 0  # unchanged: nothing is loaded or embedded
    assert again["encoder_seconds"] == 0


def test_ask_json_acceptance(env):
    result = qa("ask", SEED_QUESTION, "--json", env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"question", "answer", "abstained", "backend", "citations", "passages", "timings_ms"}
    assert answer["backend"] == "extractive" and answer["abstained"] is False
    at = answer["answer"].index("peace and stability in the Taiwan Strait")
    assert "[1]" in answer["answer"][at:]
    text = (SEEDS / SEED_ID).read_text(encoding="utf-8").split("\n", 1)[1].strip()
    for citation in answer["citations"]:
        assert set(citation) == {"n", "doc_id", "title", "source", "published", "url", "chunk_id", "quote", "start", "end", "score", "supported"}
        assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_ask_plain_prints_answer_and_numbered_sources(env):
    result = qa("ask", SEED_QUESTION, env=env)
    assert result.returncode == 0
    assert "peace and stability" in result.stdout and "Sources:" in result.stdout and "[1] Japan-U.S." in result.stdout


def test_reingest_is_a_no_op(env):
    result = qa("ingest", SEEDS, "--json", env=env)
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["unchanged"], summary["chunks"]) == (0, 1, 0)
    listing = json.loads(qa("docs", "list", "--json", env=env).stdout)
    assert [(d["id"], d["chunks"]) for d in listing] == [(SEED_ID, int(env["SEED_CHUNKS"]))]


def test_batch_ask_and_search_keep_order_and_ids(env, tmp_path):
    batch = tmp_path / "q.jsonl"
    rows = [{"id": "a", "question": SEED_QUESTION}, {"id": 7, "question": "Who is Nobuo Kishi?"}, {"id": "c", "question": "How do I bake bread?"}]
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    asked = [json.loads(line) for line in qa("ask", "--batch", batch, "--json", env=env).stdout.splitlines()]
    assert [r["id"] for r in asked] == ["a", 7, "c"]
    assert "peace and stability" in asked[0]["answer"] and asked[2]["abstained"] is True
    searched = [json.loads(line) for line in qa("search", "--batch", batch, "--json", env=env).stdout.splitlines()]
    assert [r["id"] for r in searched] == ["a", 7, "c"]
    passage = searched[0]["passages"][0]
    assert set(passage) >= {"doc_id", "chunk_id", "title", "text", "start", "end", "score"}
    scores = [p["score"] for p in searched[0]["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_docs_show_gives_full_text(env):
    shown = json.loads(qa("docs", "show", SEED_ID, "--json", env=env).stdout)
    assert shown["title"].startswith("Japan-U.S.") and "Kyodo News" in shown["text"]
    missing = qa("docs", "show", "nope", env=env)
    assert missing.returncode == 1 and "nope" in missing.stderr and "Traceback" not in missing.stderr


def test_bad_inputs_fail_in_one_line_each_and_keep_the_rest(env, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (folder / "feed.jsonl").write_text('{"id": "fine", "title": "Fine", "text": "Snow closed the Alpine passes."}\n[1, 2\n')
    result = qa("ingest", folder, env=env)
    assert result.returncode == 1
    assert re.search(r"\ntime by stage: model [\d.]+ s · (\w+ [\d.]+ s · )*store [\d.]+ s", result.stdout)  # those of >= 0.05 s
    error_lines = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(error_lines) == 3
    assert any("empty.txt" in l for l in error_lines) and any("binary.txt" in l for l in error_lines)
    assert any("feed.jsonl:2" in l for l in error_lines)
    assert "Traceback" not in result.stderr
    ids = {d["id"] for d in json.loads(qa("docs", "list", "--json", env=env).stdout)}
    assert ids == {SEED_ID, "fine"}
    again = json.loads(qa("ask", SEED_QUESTION, "--json", env=env).stdout)
    assert "peace and stability" in again["answer"]


def test_empty_question_is_a_clear_error(env):
    result = qa("ask", "   ", env=env)
    assert result.returncode == 1 and "empty" in result.stderr and "Traceback" not in result.stderr


def test_help_does_not_import_torch(env):
    code = "import sys; from qa.cli import app; from qa import service; print('torch' in sys.modules)"
    result = subprocess.run([os.path.join(os.path.dirname(QA_BIN), "python"), "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "False"


def test_asking_an_int8_index_imports_neither_torch_nor_sentence_transformers(env):
    """`env`'s index is int8 (auto), its model file made by the ingest: a question needs only
    onnxruntime and the tokenizer (~6 s less of every `qa ask` on 2 cores)."""
    code = ("import atexit, sys; atexit.register(lambda: print(sorted(m for m in ('torch', 'transformers', "
            "'sentence_transformers') if m in sys.modules), file=sys.stderr)); "
            "sys.argv = ['qa', 'ask', 'What did the 2+2 statement say about Taiwan?']; from qa.cli import main; main()")
    result = subprocess.run([os.path.join(os.path.dirname(QA_BIN), "python"), "-c", code], capture_output=True, text=True, env=env)
    assert "peace and stability" in result.stdout and result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_prune_delete_and_the_per_file_table(cli_env, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha\nThe alpha story is about apples.")
    (folder / "b.txt").write_text("Beta\nThe beta story is about bananas.")
    first = qa("ingest", folder, env=cli_env)
    assert first.returncode == 0 and "a.txt" in first.stdout and "total" in first.stdout
    (folder / "b.txt").unlink()
    summary = json.loads(qa("ingest", folder, "--prune", "--json", env=cli_env).stdout)
    assert (summary["unchanged"], summary["deleted"]) == (1, 1)
    deleted = qa("docs", "delete", "a.txt", env=cli_env)
    assert deleted.returncode == 0
    assert json.loads(qa("docs", "list", "--json", env=cli_env).stdout) == []


def test_docs_list_prints_titles_as_text_not_markup(cli_env, tmp_path):
    # article text is data: a title rich would read as markup neither breaks the table nor links
    title = "Poll [/b] results [link=https://evil.example]here[/link] [bold]now[/bold]"
    feed = tmp_path / "feed.jsonl"
    rows = [{"id": "poll", "title": title, "source": "[red]x.com", "text": "The poll closed on Monday.", "published": "2022-03-02"},
            {"id": "older", "title": "Older news", "text": "The council met.", "published": "2022-03-01"}]
    feed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert qa("ingest", feed, env=cli_env).returncode == 0
    listed = qa("docs", "list", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert title in listed.stdout and "[red]x.com" in listed.stdout  # read as markup, "[link=…]" would vanish
    # the newest N, and how many more
    newest = qa("docs", "list", "--limit", "1", env=cli_env).stdout
    assert "poll" in newest and "Older news" not in newest and "and 1 older: --limit 0 lists all 2" in newest
    assert "Older news" in qa("docs", "list", "--limit", "0", env=cli_env).stdout


def test_a_warning_is_printed_as_text_not_markup():
    import io

    from rich.console import Console

    from qa.answer_view import AnswerView
    from qa.citations import Answer

    out, err = io.StringIO(), io.StringIO()
    warning = "the server said: closing tag [/b] and [link=https://evil.example]this[/link]"
    AnswerView(Console(file=out), Console(file=err, width=200)).show(Answer("Q?", "No answer.", True, "llm", warnings=[warning]))
    assert warning in err.getvalue()
