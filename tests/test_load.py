"""Load: a full queue is refused at once with Retry-After; 32 clients for 60 s while an ingest runs lose nothing.

The fast tests squeeze a real `qa serve` to one request at work and one waiting. The long one
(`make reliability`) holds 32 clients on /api/ask, /api/search, /v1/chat/completions and the
Gradio UI for 60 s while `qa ingest` writes to the same data dir, and prints the figures that
docs/reliability.md records.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException

from tests.conftest import QA_BIN
from tests.serving import ingest_seeds, qa_serve
from ui.gate import Gate

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
QUICK_REFUSAL_S = 2.0  # the promise: a refusal comes back at once, not after a wait


# -- the gate alone ---------------------------------------------------------------------------------


def test_the_gate_lets_some_wait_and_refuses_the_rest_at_once():
    gate = Gate(concurrency=1, max_waiting=1, timeout=0.5)
    gate.enter()  # the one turn is taken
    waited: list[str] = []

    def waiter():
        try:
            gate.enter()
            waited.append("turn")
            gate.leave()
        except HTTPException as exc:
            waited.append(str(exc.status_code))

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.time() + 5
    while gate.waiting < 1 and time.time() < deadline:
        time.sleep(0.01)
    began = time.perf_counter()
    with pytest.raises(HTTPException) as refused:
        gate.enter()  # the line is full
    assert time.perf_counter() - began < 0.1
    assert refused.value.status_code == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert "QA_MAX_WAITING" in refused.value.detail
    thread.join()
    assert waited == ["503"]  # it waited its 0.5 s for a turn that never came
    gate.leave()
    with gate:  # the turn is free again
        assert gate.waiting == 0


# -- a real server squeezed to one at work and one waiting ---------------------------------------------


@pytest.fixture(scope="module")
def squeezed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load")
    # A leaked turn would make every later request wait QA_QUEUE_TIMEOUT and get a 503: it shows.
    with qa_serve(folder, QA_CONCURRENCY="1", QA_MAX_WAITING="1", QA_QUEUE_TIMEOUT="5") as url:
        ingest_seeds(url)
        yield url


REQUESTS = [  # (route, JSON body, check of a 200's body)
    ("/api/ask", {"question": SEED_QUESTION}, lambda b: "Taiwan Strait" in b["answer"] and b["citations"]),
    ("/api/search", {"question": SEED_QUESTION}, lambda b: b["passages"]),
    ("/v1/chat/completions", {"model": "news-qa", "messages": [{"role": "user", "content": SEED_QUESTION}]},
     lambda b: "Sources:" in b["choices"][0]["message"]["content"]),
]


def burst(url: str, count: int) -> list[dict]:
    """`count` requests sent at the same instant (a barrier), from warmed-up connections."""
    barrier, results = threading.Barrier(count), []

    def one(i: int) -> None:
        route, body, check = REQUESTS[i % len(REQUESTS)]
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/api/health")
            barrier.wait()
            began = time.perf_counter()
            response = client.post(route, json=body)
            seconds = time.perf_counter() - began
        results.append({"route": route, "status": response.status_code, "seconds": seconds, "text": response.text,
                        "retry_after": response.headers.get("retry-after"),
                        "well_formed": response.status_code == 200 and bool(check(response.json()))})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_full_api_queue_refuses_at_once_with_retry_after(squeezed):
    results = burst(squeezed, 18)
    answered = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] == 429]
    assert len(answered) + len(refused) == len(results), [(r["status"], r["text"][:200]) for r in results]
    assert answered and refused and all(r["well_formed"] for r in answered)
    for r in refused:
        error = json.loads(r["text"])["error"]
        message = error["message"] if r["route"].startswith("/v1") else error  # OpenAI's error shape on /v1
        assert int(r["retry_after"]) >= 1 and "QA_MAX_WAITING" in message and "Traceback" not in r["text"]
    slowest_refusal = max(r["seconds"] for r in refused)
    print(f"\nburst of {len(results)}: {len(answered)} answered (slowest {max(r['seconds'] for r in answered):.2f} s), "
          f"{len(refused)} refused with 429 (slowest refusal {slowest_refusal * 1000:.0f} ms)")
    assert slowest_refusal < QUICK_REFUSAL_S
    # The server is fine afterwards: the next question gets its answer.
    assert httpx.post(f"{squeezed}/api/ask", json={"question": SEED_QUESTION}, timeout=60).status_code == 200


def test_a_stream_holds_its_turn_only_while_it_runs(squeezed):
    with httpx.Client(base_url=squeezed, timeout=60) as client:
        with client.stream("POST", "/api/ask", json={"question": SEED_QUESTION, "stream": True}) as response:
            assert response.status_code == 200
            next(response.iter_lines())  # the client leaves after the first line
        for _ in range(3):  # a turn kept by the abandoned stream would make these wait 5 s and get 503
            began = time.perf_counter()
            assert client.post("/api/search", json={"question": SEED_QUESTION}).status_code == 200
            assert time.perf_counter() - began < 5


def test_a_full_ui_queue_says_busy_with_retry_after(squeezed):
    from gradio_client import Client

    config = httpx.get(f"{squeezed}/config", timeout=10).json()
    ask = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "ask")
    barrier, responses = threading.Barrier(10), []

    def join() -> None:
        body = {"data": [SEED_QUESTION, 5], "fn_index": ask, "session_hash": uuid.uuid4().hex, "event_data": None, "trigger_id": None}
        with httpx.Client(base_url=squeezed, timeout=30) as client:
            client.get("/config")
            barrier.wait()
            began = time.perf_counter()
            response = client.post("/gradio_api/queue/join", json=body)
            responses.append((response, time.perf_counter() - began))

    threads = [threading.Thread(target=join) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy = [(r, s) for r, s in responses if r.status_code == 503]
    assert busy and {r.status_code for r, _ in responses} <= {200, 503}
    for response, seconds in busy:
        assert "Queue is full" in response.json()["detail"] and int(response.headers["retry-after"]) >= 1
        assert seconds < QUICK_REFUSAL_S
    # gradio_client reports the same refusal as QueueError ("Queue is full! Please try again."); the page
    # shows Gradio's "This application is currently busy. Please try again." Once drained, it answers.
    deadline = time.time() + 30
    while True:
        try:
            answer_html, _ = Client(squeezed, verbose=False).predict(SEED_QUESTION, 5, api_name="/ask")
            break
        except Exception as exc:
            assert "Queue is full" in str(exc) and time.time() < deadline
            time.sleep(0.5)
    assert "Taiwan Strait" in answer_html


# -- 32 clients for 60 s while an ingest runs ------------------------------------------------------------


WORDS = ("harbor council budget bridge election storm river school hospital railway festival museum drought "
         "farmers mayor court ferry museum lighthouse vaccine border tariff strike airport glacier forest").split()


def write_corpus(folder: Path, count: int, seed: int) -> Path:
    """`count` made-up articles, distinct enough that none is a near-duplicate of another."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        town = f"Town{seed}x{i}"
        sentences = [f"In {town} the {rng.choice(WORDS)} {rng.choice(WORDS)} report was published on day {rng.randint(1, 28)}."
                     for _ in range(12)]
        sentences += [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(8)]
        (folder / f"{town}.txt").write_text(f"News from {town}\n\n" + " ".join(sentences) + "\n", encoding="utf-8")
    return folder


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, str, float]] = []  # (route, outcome: ok | refused | error: …, seconds)

    def add(self, route: str, outcome: str, seconds: float) -> None:
        with self.lock:
            self.rows.append((route, outcome, seconds))


def api_client(url: str, route: str, stop: float, tally: Tally, rng: random.Random) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        while time.time() < stop:
            question = rng.choice([SEED_QUESTION, "Who attended the 2+2 meeting in Tokyo?", "What happened in Town1x3?",
                                   "Which report was published about the harbor budget?"])
            began = time.perf_counter()
            try:
                outcome = api_call(client, route, question, rng.random() < 0.5)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                outcome = f"error: {type(exc).__name__}: {exc}"
            tally.add(route, outcome, time.perf_counter() - began)


def api_call(client: httpx.Client, route: str, question: str, stream: bool) -> str:
    if route == "/api/ask" and stream:
        with client.stream("POST", route, json={"question": question, "stream": True}) as response:
            if response.status_code != 200:
                return refusal(response)
            events = [block for block in response.read().decode().split("\n\n") if block.strip()]
        kind, data = events[-1].split("\n", 1)
        answer = json.loads(data.removeprefix("data: "))
        return "ok" if kind == "event: answer" and isinstance(answer["answer"], str) else f"error: last event {events[-1][:200]}"
    body = {"question": question}
    if route == "/v1/chat/completions":
        body = {"model": "news-qa", "messages": [{"role": "user", "content": question}]}
    response = client.post(route, json=body)
    if response.status_code != 200:
        return refusal(response)
    payload = response.json()
    if route == "/api/ask":
        ok = isinstance(payload["answer"], str) and all(c["quote"] for c in payload["citations"])
    elif route == "/api/search":
        ok = isinstance(payload["passages"], list)
    else:
        ok = isinstance(payload["choices"][0]["message"]["content"], str)
    return "ok" if ok else f"error: malformed {response.text[:200]}"


def refusal(response: httpx.Response) -> str:
    response.read()
    if response.status_code in (429, 503) and response.headers.get("retry-after", "").isdigit():
        return "refused"
    return f"error: {response.status_code} {response.text[:200]}"


def ui_client(url: str, stop: float, tally: Tally) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    while time.time() < stop:
        began = time.perf_counter()
        try:
            answer_html, sources_html = client.predict(SEED_QUESTION, 5, api_name="/ask")
            outcome = "ok" if "Taiwan Strait" in answer_html and "cite-1" in sources_html else f"error: {answer_html[:200]}"
        except Exception as exc:  # gradio_client raises QueueError for a full queue, anything else is an error
            outcome = "refused" if "Queue is full" in str(exc) else f"error: {type(exc).__name__}: {exc}"
        tally.add("ui /ask", outcome, time.perf_counter() - began)


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1] if len(values) > 1 else values[0]


@pytest.mark.reliability
def test_32_clients_for_60_seconds_while_an_ingest_runs(tmp_path):
    seconds, clients = 60, {"/api/ask": 8, "/api/search": 8, "/v1/chat/completions": 8, "ui /ask": 8}
    with qa_serve(tmp_path) as url:
        ingest_seeds(url)
        env = {"QA_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        corpora = [write_corpus(tmp_path / f"corpus-{n}", 150, n) for n in (1, 2, 3)]
        tally, stop = Tally(), time.time() + seconds
        threads = [threading.Thread(target=api_client, args=(url, route, stop, tally, random.Random(i)))
                   for route, n in clients.items() if route != "ui /ask" for i in range(n)]
        threads += [threading.Thread(target=ui_client, args=(url, stop, tally)) for _ in range(clients["ui /ask"])]
        for thread in threads:
            thread.start()
        ingests, added = [], 0
        for corpus in corpora:  # `qa ingest` in its own process, on the server's data dir, one after another
            began = time.perf_counter()
            run = subprocess.run([QA_BIN, "ingest", str(corpus), "--json"], env=env, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr[-2000:]
            summary = json.loads(run.stdout)
            added += summary["added"]
            ingests.append((summary["added"], round(time.perf_counter() - began, 1)))
            if time.time() > stop - 5:
                break
        for thread in threads:
            thread.join()
        documents = httpx.get(f"{url}/api/documents", timeout=60).json()

    errors = [row for row in tally.rows if row[1].startswith("error")]
    lines = [f"{seconds} s, {sum(clients.values())} clients; ingests (articles added, s) while loaded: {ingests}"]
    for route in clients:
        rows = [r for r in tally.rows if r[0] == route]
        done = [r[2] for r in rows if r[1] == "ok"]
        lines.append(f"{route:22} requests {len(rows):5}  ok {len(done):5}  refused {sum(r[1] == 'refused' for r in rows):3}  "
                     f"errors {sum(r[1].startswith('error') for r in rows)}  p50 {percentile(done, 0.5):.2f} s  p95 {percentile(done, 0.95):.2f} s")
    done = [r[2] for r in tally.rows if r[1] == "ok"]
    lines.append(f"{'all':22} requests {len(tally.rows):5}  ok {len(done):5}  refused {sum(r[1] == 'refused' for r in tally.rows):3}  "
                 f"errors {len(errors)}  p50 {percentile(done, 0.5):.2f} s  p95 {percentile(done, 0.95):.2f} s")
    report = "\n".join(lines)
    print("\n" + report)
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "load.txt").write_text(report + "\n", encoding="utf-8")

    assert not errors, (errors[:5], (tmp_path / "serve.log").read_text()[-4000:])
    assert all(any(r[0] == route and r[1] == "ok" for r in tally.rows) for route in clients)  # every route was served
    assert len(documents) == 1 + added and added >= 150  # the ingest finished under load, nothing lost
