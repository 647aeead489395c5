"""Bad input at every door: questions (empty, 100 KB, control and bidi characters), the API fuzzed from its
OpenAPI description (schemathesis) and with hand-aimed random requests (hypothesis), and `qa ingest` on a
folder of broken files. Always a clear 4xx or one-line error; never a 500 or a traceback.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections import Counter

import httpx
import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.errors import QAError
from qa.question import checked_question
from tests.conftest import QA_BIN, SEEDS, record_fuzz_counts
from tests.serving import ingest_seeds, qa_serve

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
MAX_CHARS = 2000  # QA_MAX_QUESTION_CHARS's default
TRIED: Counter[str] = Counter()

# (question, what the message must say)
BAD_QUESTIONS = [
    ("", "the question is empty"),
    (" \t\n  ", "the question is empty"),
    ("Taiwan " * 15_000, "characters long; keep it under 2000 (QA_MAX_QUESTION_CHARS)"),  # 105 KB
    ("What did \x1b[31mthe statement\x1b[0m say?", "a control character (U+001B)"),
    ("What did the statement say\x07?", "a control character (U+0007)"),
    ("What did the \u202estatement say?", "a bidirectional formatting character (U+202E RIGHT-TO-LEFT OVERRIDE)"),
    ("Who is \u2066Austin\u2069?", "a bidirectional formatting character (U+2066 LEFT-TO-RIGHT ISOLATE)"),
]


@pytest.fixture(scope="module", autouse=True)
def record_counts():
    yield
    record_fuzz_counts(TRIED)


# -- the rule itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question, says", BAD_QUESTIONS + [("a\x00b", "a control character (U+0000)"), ("a\ud800", "U+D800")])
def test_bad_questions_are_refused_with_the_reason(question, says):
    with pytest.raises(QAError) as refused:
        checked_question(question, MAX_CHARS)
    message = str(refused.value)
    assert says in message and "\n" not in message and len(message) < 200  # one line; never the question echoed


@pytest.mark.parametrize("question", [
    "  What did the 2+2 statement say about Taiwan?\n",
    "Line one\nline two\twith a tab",
    "ما الذي قاله البيان عن تايوان؟",  # right-to-left text is text
    "Who said \u200fשלום\u200e today?",  # the implicit marks RLM and LRM are allowed
    "Is it 🌏 or 🌍?",
    "x" * MAX_CHARS,
])
def test_good_questions_pass_unchanged_but_trimmed(question):
    assert checked_question(question, MAX_CHARS) == question.strip()


# -- the API, the UI and the CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    with qa_serve(folder, QA_MAX_FILE_MB="0.05") as url:
        ingest_seeds(url)
        yield url


def error_of(response: httpx.Response) -> str:
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error  # /v1 has OpenAI's error shape


@pytest.mark.parametrize("question, says", BAD_QUESTIONS)
def test_the_api_refuses_bad_questions_with_a_clear_4xx(server, question, says):
    requests = [
        ("/api/ask", {"question": question}, 422),
        ("/api/ask", {"question": question, "stream": True}, 422),  # refused before the stream starts
        ("/api/search", {"question": question}, 422),
        ("/v1/chat/completions", {"model": "news-qa", "messages": [{"role": "user", "content": question}]}, 400),
    ]
    for route, body, status in requests:
        response = httpx.post(server + route, json=body, timeout=30)
        assert response.status_code == status, (route, response.text[:300])
        assert response.headers["content-type"].startswith("application/json")
        message = error_of(response)
        if route.startswith("/v1") and not question.strip():
            assert "there is none" in message  # /v1: no user message to answer
        else:
            assert says in message, (route, message)
        assert "Traceback" not in response.text and len(response.text) < 500


def test_the_api_refuses_days_it_cannot_count_from(server):
    for body in ({"question": "What happened last week?", "as_of": "0001-01-01", "stream": True},
                 {"question": "What happened?", "filters": {"since": "9999-12-31"}}):
        response = httpx.post(server + "/api/ask", json=body, timeout=30)
        assert response.status_code == 422 and "give a day between 1900-01-01 and 2999-12-31" in error_of(response)


def test_an_oversized_body_is_refused_before_it_is_read(server):
    body = {"question": SEED_QUESTION, "history": [{"question": "q" * 1000, "answer": "a" * 1000}] * 1000}  # 2 MB
    for route in ("/api/ask", "/v1/chat/completions"):
        payload = body if route == "/api/ask" else {"messages": [{"role": "user", "content": "x" * 2_000_000}]}
        response = httpx.post(server + route, json=payload, timeout=30)
        assert response.status_code == 413 and "over the" in error_of(response)
    assert httpx.post(server + "/api/ask", json={"question": SEED_QUESTION}, timeout=60).status_code == 200


def test_the_ui_says_what_is_wrong_with_a_question(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    for question, says in BAD_QUESTIONS:
        with pytest.raises(Exception) as refused:
            client.predict(question, 5, api_name="/ask")
        assert says in str(refused.value) and "Traceback" not in str(refused.value)
    job = client.submit(BAD_QUESTIONS[5][0], 5, None, None, [], "extractive", None, api_name="/chat")
    with pytest.raises(Exception) as refused:
        job.result(timeout=60)
    assert "U+202E" in str(refused.value)


def test_qa_ask_prints_one_clear_line(cli_env):
    runs = [(subprocess.Popen([QA_BIN, "ask", question], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), says)
            for question, says in BAD_QUESTIONS[:6]]  # (a NUL cannot be passed in argv)
    for run, says in runs:
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 1 and stdout == "", stdout[:300]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], stderr[:300]


# -- the API fuzzed: schemathesis from /api/openapi.json, and random requests aimed at each field ----------------


@pytest.fixture(scope="module")
def api_cases(server):
    """Every operation of /api/openapi.json, requests that fit it and requests that do not.

    Drawn through `st.data()`: schemathesis's own pytest plugin (`from_fixture`) fails under pytest 9."""
    schema = schemathesis.openapi.from_url(f"{server}/api/openapi.json")
    return schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE)


FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck))


def call_and_check(case, counter: str) -> None:
    TRIED[counter] += 1
    response = case.call(timeout=120)
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "/' not in response.text


@given(data=st.data())
@settings(max_examples=50, **FUZZ)
def test_schemathesis_finds_no_server_error(api_cases, data):
    call_and_check(data.draw(api_cases), "API, schemathesis (make test)")


@pytest.mark.reliability
@given(data=st.data())
@settings(max_examples=3000, **FUZZ)
def test_schemathesis_finds_no_server_error_long(api_cases, data):
    call_and_check(data.draw(api_cases), "API, schemathesis (reliability)")


nasty_text = st.one_of(
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Lo"]), max_size=50),  # surrogates, controls, bidi
    st.sampled_from(["", " ", "\x00", "\ud800", "\u202e", "%s%n", "../../etc/passwd", "[/bold]", "<script>", "' OR 1=1 --"]),
    st.text(max_size=30).map(lambda t: t * 3000),  # up to ~90 KB
)
nasty = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def maybe(value):
    return st.one_of(value, nasty)


ask_bodies = st.fixed_dictionaries({"question": maybe(nasty_text)}, optional={
    "top_k": maybe(st.integers(-5, 200)), "as_of": maybe(st.dates().map(str)), "stream": maybe(st.booleans()),
    "backend": maybe(st.sampled_from(["extractive", "openai", "nope"])),
    "history": maybe(st.lists(st.fixed_dictionaries({"question": maybe(nasty_text), "answer": maybe(nasty_text)}), max_size=3)),
    "filters": maybe(st.fixed_dictionaries({}, optional={"since": maybe(st.dates().map(str)), "until": maybe(st.dates().map(str)),
                                                           "sources": maybe(st.lists(nasty_text, max_size=3)),
                                                           "doc_ids": maybe(st.lists(nasty_text, max_size=3))})),
})
chat_bodies = st.fixed_dictionaries({"messages": maybe(st.lists(st.fixed_dictionaries({
    "role": maybe(st.sampled_from(["user", "assistant", "system"])),
    "content": maybe(nasty_text | st.lists(st.fixed_dictionaries({"type": maybe(st.just("text")), "text": maybe(nasty_text)}), max_size=2)),
}), max_size=4))}, optional={"model": nasty_text, "stream": maybe(st.booleans()), "top_k": maybe(st.integers(-5, 200))})
api_requests = st.one_of(
    st.tuples(st.just("/api/ask"), ask_bodies),
    st.tuples(st.just("/api/search"), ask_bodies),
    st.tuples(st.just("/v1/chat/completions"), chat_bodies),
    st.tuples(st.sampled_from(["/api/ask", "/api/search", "/v1/chat/completions"]), nasty),  # not even an object
)


def post_and_check(url: str, route: str, body, counter: str) -> None:
    TRIED[counter] += 1
    content = json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \ud800 escapes, as a client may send them
    response = httpx.post(url + route, content=content, headers={"Content-Type": "application/json"}, timeout=120)
    text = response.text
    assert response.status_code < 500, (route, body if len(content) < 2000 else content[:2000], response.status_code, text[:500])
    assert "Traceback" not in text and 'File "/' not in text
    if response.status_code >= 400:
        assert response.json()["error"]  # a JSON error with a message, on every route


@given(api_requests)
@settings(max_examples=40, **FUZZ)
def test_random_requests_get_answers_or_clear_errors(server, request_case):
    post_and_check(server, *request_case, "API, aimed random requests (make test)")


@pytest.mark.reliability
@given(api_requests)
@settings(max_examples=1500, **FUZZ)
def test_random_requests_get_answers_or_clear_errors_long(server, request_case):
    post_and_check(server, *request_case, "API, aimed random requests (reliability)")


# -- `qa ingest` on a folder of broken files ------------------------------------------------------------------


FEED = "".join(json.dumps({"id": f"feed-{i}", "text": f"Story number {i} about the {w} in the harbour."}) + "\n"
               for i, w in enumerate("ferry council storm budget lighthouse festival".split())).encode()
CUT_GZIP = gzip.compress(FEED)[: len(gzip.compress(FEED)) * 2 // 3]  # ends mid-stream


def test_qa_ingest_names_each_bad_file_in_one_line(tmp_path, cli_env):
    folder = tmp_path / "in"
    folder.mkdir()
    good = (SEEDS / sorted(p.name for p in SEEDS.iterdir())[0]).read_text(encoding="utf-8")
    (folder / "good.txt").write_text(good, encoding="utf-8")
    (folder / "utf16.txt").write_bytes("Harbour news\n\nThe ferry to Port Ellery runs again, the council said.\n".encode("utf-16"))
    bad = {
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 4,
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "lines.jsonl": b'{"id": "fine", "text": "A fine line."}\n{"text": \n{"text": "x", "id": 1' + b"9" * 5000 + b"}\n",
        "cut.jsonl.gz": CUT_GZIP,
        "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        "menu.html": b"<html><body><nav>Home | World</nav></body></html>",
        "huge.txt": b"Huge\n\n" + b"word " * 3_000_000,  # over QA_MAX_FILE_MB
        "[bold]odd name.txt": b"\x00\x01\x02",  # rich markup in a file name is printed as it is
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "dates.jsonl").write_text(json.dumps({"id": "d1", "text": "Dated text.", "published": "[/bold]"}) + "\n", encoding="utf-8")
    env = {**cli_env, "QA_MAX_FILE_MB": "1", "COLUMNS": "400"}  # a wide table: one row a file
    run = subprocess.run([QA_BIN, "ingest", str(folder)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr and "unexpected" not in run.stderr, run.stderr[-2000:]
    failed = [line for line in run.stderr.splitlines() if line.startswith("failed: ")]
    for name in bad:
        mine = [line for line in failed if line.startswith(f"failed: {folder / name}")]
        assert len(mine) >= 1, (name, run.stderr[-3000:])
    assert any(line.startswith(f"failed: {folder / 'lines.jsonl'}:2: not valid JSON") for line in failed)
    assert any(line.startswith(f"failed: {folder / 'lines.jsonl'}:3: not usable JSON") for line in failed)
    assert any(line.startswith(f"failed: {folder / 'cut.jsonl.gz'}: cannot read the file after line") for line in failed)
    assert f"warning: {folder / 'dates.jsonl'}:1: date '[/bold]' not understood" in run.stderr
    assert f"{folder / '[bold]odd name.txt'} " in run.stdout and "total" in run.stdout  # the name as it is
    listed = subprocess.run([QA_BIN, "docs", "list", "--json"], env=cli_env, capture_output=True, text=True, timeout=120)
    ids = {d["id"] for d in json.loads(listed.stdout)}
    fed = {i for i in ids if i.startswith("feed-")}  # the lines before the gzip stream broke off
    assert ids - fed == {"good.txt", "utf16.txt", "fine", "d1"} and 0 < len(fed) < 6


def test_days_out_of_range_are_a_clear_error_not_an_overflow(seeded):
    """Found by schemathesis: as_of 0001-01-01 made "last week" overflow into a 500."""
    import datetime as dt

    from qa.errors import QAError

    with pytest.raises(QAError, match="as_of is 0001-01-01; give a day between 1900-01-01 and 2999-12-31"):
        seeded.search("What happened last week?", as_of=dt.date(1, 1, 1))
    assert seeded.search("What happened last week?", as_of=dt.date(2999, 12, 31)) is not None
