"""Faults, for real: damaged files under every command, a Chroma server killed and restarted
under a running `qa serve`, a full disk (a small tmpfs), and `kill -9` of `qa serve` while
clients ask and an ingest runs. Each one ends in a clear one-line error, then a consistent
index with nothing lost and nothing duplicated."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from qa.errors import DiskFullError
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import MODELS, QA_BIN, SEED_ID, as_qa_runs, free_port, qa_env
from tests.serving import ingest_seeds, qa_serve

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
WORDS = ["amber", "basalt", "cobalt", "dahlia", "ember", "fennel", "garnet", "hazel", "indigo", "juniper", "kelp",
         "lupin", "marram", "nutmeg", "ochre", "pumice", "quartz", "russet", "sorrel", "tansy", "umber", "vetch",
         "wicker", "yarrow", "zinnia"]


FIGURES = Path(__file__).resolve().parent.parent / "test-artifacts" / "faults.txt"


def record(test: str, **figures) -> None:
    """The figures docs/reliability.md quotes, one JSON line a run."""
    FIGURES.parent.mkdir(exist_ok=True)
    with open(FIGURES, "a", encoding="utf-8") as out:
        out.write(json.dumps({"test": test, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}) + "\n")


def qa(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([QA_BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


def one_clear_line(result: subprocess.CompletedProcess) -> str:
    """The command failed with exit 1 and one `error:` line on stderr, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def articles(prefix: str, count: int, start: int = 0) -> list[dict]:
    """One-chunk articles, each with a word and numbers no other article uses (so a search finds
    it); a number is one article whatever the prefix, so keep the ranges apart."""
    rows = []
    for i in range(start, start + count):
        word = f"{WORDS[i % len(WORDS)]}{i}"
        text = " ".join(f"The {word} cooperative in district {i} sold {j + 2} crates of pears on market day {j}." for j in range(9))
        rows.append({"id": f"{prefix}{i:03d}", "title": f"Market report {word}", "text": text, "published": "2022-06-02"})
    return rows


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def found_first(service: QAService, row: dict) -> bool:
    """Asked with the article's own opening, retrieval puts it first."""
    passages = service.search(row["text"][:160], top_k=3)
    return bool(passages) and passages[0].doc_id == row["id"]


# --- damaged files -------------------------------------------------------------------------------

@pytest.fixture
def damaged_copy(seeded, tmp_path):
    """A copy of the seeded data dir, for a test to damage."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    return Path(shutil.copytree(seeded.settings.data_dir, tmp_path / "data"))


@pytest.mark.parametrize("damage", ["ledger", "chroma"])
def test_every_command_names_the_damaged_file_and_says_qa_index_repair(damaged_copy, tmp_path, embedder, damage):
    target = damaged_copy / ("ledger.sqlite" if damage == "ledger" else "chroma/chroma.sqlite3")
    target.write_bytes(random.Random(3).randbytes(target.stat().st_size))
    env = qa_env(QA_DATA_DIR=damaged_copy)
    commands = [["ask", SEED_QUESTION], ["ingest", str(tmp_path / "nothing.txt")], ["serve", "--port", str(free_port())]]
    commands += [["docs", "list"]] if damage == "ledger" else []  # it reads only the ledger
    (tmp_path / "nothing.txt").write_text("A title\nSome text.", encoding="utf-8")
    running = [subprocess.Popen([QA_BIN, *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    for command, process in zip(commands, running):
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"qa {' '.join(command)} did not stop on a damaged {damage}")
        line = one_clear_line(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
        assert str(target.parent if damage == "chroma" else target) in line and "qa index repair" in line, (command, line)
    record(f"damaged {damage}", commands=[" ".join(c[:2]) for c in commands], one_line_errors=len(commands))

    repaired = qa("index", "repair", "--json", env=env)
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert len(report["before"]["problems"]) == 1 and report["after"]["ok"] and report["lost"] == []
    assert any(("rebuilt the ledger" if damage == "ledger" else "moved the damaged vector store") in a for a in report["actions"])
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    service = as_qa_runs(Settings(data_dir=damaged_copy, models_dir=MODELS), embedder)
    assert "peace and stability in the Taiwan Strait" in service.ask(SEED_QUESTION).answer
    # a vector store rebuilt from nothing is a new index: built with the default, int8 (it was torch)
    assert service.embedder.backend == ("onnx-int8" if damage == "chroma" else "torch")
    assert any("with onnx-int8" in a for a in report["actions"]) == (damage == "chroma")


# --- a Chroma server stopped and restarted ---------------------------------------------------------

class ChromaProcess:
    """`chroma run` on a fixed loopback port and folder, so it can be killed and started again."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.process = folder, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaProcess:
        chroma = str(Path(QA_BIN).parent / "chroma")
        with open(self.folder / "chroma.log", "a") as log:
            self.process = subprocess.Popen([chroma, "run", "--path", str(self.folder / "db"), "--host", "127.0.0.1",
                                             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        pytest.fail(f"chroma run did not start: {(self.folder / 'chroma.log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


def test_a_chroma_server_killed_and_restarted_under_queries_gives_503_then_answers_again(tmp_path):
    chroma = ChromaProcess(tmp_path).start()
    try:
        with qa_serve(tmp_path, QA_CHROMA_URL=chroma.url, QA_COLLECTION="faults") as url:
            ingest_seeds(url)
            question = {"question": SEED_QUESTION, "top_k": 3}
            before = httpx.post(f"{url}/api/search", json=question, timeout=60).json()["passages"]
            pid = _serving_pid(url)
            assert pid > 0
            log, stop = [], threading.Event()

            def client() -> None:
                with httpx.Client(base_url=url, timeout=60) as http:
                    while not stop.is_set():
                        path = random.choice(["/api/search", "/api/ask"])
                        began = time.time()
                        response = http.post(path, json=question)
                        log.append((began, path, response.status_code, response.json()))  # by when it was asked
                        time.sleep(0.05)

            threads = [threading.Thread(target=client) for _ in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            chroma.kill()
            killed = time.time()
            time.sleep(3)
            restarting = time.time()  # from here on it may answer again
            chroma.start()
            restarted = time.time()
            deadline = time.time() + 60
            while time.time() < deadline and not any(t > restarted and s == 200 for t, _, s, _ in log[-4:]):
                time.sleep(0.2)
            time.sleep(1)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            assert _serving_pid(url) == pid  # the same process throughout
            after = httpx.post(f"{url}/api/search", json=question, timeout=60).json()["passages"]
            # and a ledger damaged under the running server: 503, naming it and the repair
            ledger = tmp_path / "data" / "ledger.sqlite"
            ledger.write_bytes(random.Random(4).randbytes(ledger.stat().st_size))
            damaged = [httpx.post(f"{url}/api/search", json=question, timeout=60), httpx.get(f"{url}/api/documents", timeout=60)]
    finally:
        chroma.kill()

    outage = [entry for entry in log if killed < entry[0] < restarting]
    assert len(outage) >= 4, "too few queries fell in the outage to show anything"
    refused = [entry for entry in log if entry[2] != 200]
    assert refused and all(status == 503 and "QA_CHROMA_URL" in body["error"] and chroma.url in body["error"]
                           for _, _, status, body in refused), {s: b for _, _, s, b in refused}
    assert all(status == 503 for _, _, status, _ in outage)
    recovered = min(t for t, _, s, _ in log if t > restarted and s == 200)  # without a restart of qa serve
    assert [p["chunk_id"] for p in after] == [p["chunk_id"] for p in before]
    for response in damaged:
        error = response.json()["error"]
        assert response.status_code == 503 and str(ledger) in error and "qa index repair" in error
    record("chroma server restart", queries=len(log), during_outage=len(outage), refused_503=len(refused),
           other_errors=sum(1 for entry in log if entry[2] not in (200, 503)), recovered_s_after_restart=round(recovered - restarted, 2))


def _serving_pid(url: str) -> int:
    """The pid of the process listening on the url's port (from /proc, no extra tools)."""
    port = int(url.rsplit(":", 1)[1])
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[").rstrip("]") in inodes:
                    return int(pid)
        except OSError:
            continue
    return -1


def test_the_api_answers_503_for_a_damaged_index_and_507_for_a_full_disk():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from qa.errors import IndexCorruptError, StoreError
    from ui.server import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    faults = {"damaged": IndexCorruptError("the ledger x is damaged; run `qa index repair`"),
              "full": DiskFullError("no space left on the device holding QA_DATA_DIR"),
              "busy": StoreError("another qa process is writing")}

    @app.get("/{name}")
    def fail(name: str):
        raise faults[name]

    client = TestClient(app)
    assert [client.get(f"/{name}").status_code for name in faults] == [503, 507, 409]
    assert client.get("/full").json()["error"] == str(faults["full"])


# --- a full disk ------------------------------------------------------------------------------------

@contextmanager
def small_disk(folder: Path, megabytes: int):
    """A real tmpfs of that size (root may mount one; elsewhere the test is skipped, saying so)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the full-disk test needs root")
    try:
        yield folder
    finally:
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave_kb: int) -> Path:
    """Ballast: another file on the same disk, leaving about `leave_kb` free."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with open(ballast, "ab") as handle:
        handle.write(b"\0" * max(0, free - leave_kb * 1024))
    return ballast


@pytest.mark.reliability  # about a minute: three ingests that run a small disk full
def test_a_full_disk_is_a_clear_error_and_the_stored_index_stays_intact(tmp_path, embedder):
    def fresh() -> QAService:
        """A new view of the data dir, as a new process has: embedded Chroma caches what it read."""
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        return QAService(Settings(data_dir=data, min_free_mb=0, embed_batch_size=1), embedder=embedder)

    with small_disk(tmp_path / "disk", 16) as disk:
        data = disk / "data"
        service = fresh()
        first = articles("a", 6)
        assert service.ingest([jsonl(tmp_path / "first.jsonl", first)]).count("added") == 6

        # 1. Under QA_MIN_FREE_MB, ingest stops before a batch, and everything stored still answers.
        ballast = fill(disk, leave_kb=1100)
        more = articles("b", 40, start=100)
        refused = qa("ingest", str(jsonl(tmp_path / "more.jsonl", more)), env=qa_env(QA_DATA_DIR=data, QA_MIN_FREE_MB="1", QA_EMBED_BATCH_SIZE="1"))
        line = one_clear_line(refused)
        assert "QA_MIN_FREE_MB=1" in line and str(data) in line
        service = fresh()
        stored = {d["id"] for d in service.documents()}
        assert {r["id"] for r in first} <= stored and len(stored) < 46
        assert service.check_index().ok
        assert all(found_first(service, r) for r in first + more if r["id"] in stored)

        # 2. With no margin, the disk fills mid-write: a clear error, and nothing stored is lost.
        fill(disk, leave_kb=250)
        full = qa("ingest", str(tmp_path / "more.jsonl"), env=qa_env(QA_DATA_DIR=data, QA_MIN_FREE_MB="0", QA_EMBED_BATCH_SIZE="1"))
        line = one_clear_line(full)
        assert "no space left on the device holding QA_DATA_DIR" in line and str(data) in line
        service = fresh()
        try:  # while the disk is full, a query answers or says the disk is full, nothing else
            service.search(first[0]["text"][:160])
        except DiskFullError as exc:
            assert "QA_DATA_DIR" in str(exc)
        ballast.unlink()  # space freed
        service = fresh()
        acknowledged = stored
        report = service.check_index()
        assert report.ok, report.problems
        now = {d["id"] for d in service.documents()}
        assert acknowledged <= now
        assert all(found_first(service, r) for r in first + more if r["id"] in now)

        # 3. Run again: it finishes, and the index is exactly the ledger's, with nothing left over.
        assert service.ingest([tmp_path / "more.jsonl"]).count("failed") == 0
        final = service.check_index()
        assert final.ok and final.notes == [] and final.articles == 46 and final.stored == final.chunks
    record("full disk", stored_before_refusal=len(stored), stored_when_full=len(now), lost=len(acknowledged - now),
           leftovers_swept=len(report.leftovers), error=line)


# --- kill -9 of the server under load ---------------------------------------------------------------

def start_server(folder: Path, data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(folder / "serve.log", "a")
    process = subprocess.Popen([QA_BIN, "serve", "--port", str(port)], env=qa_env(QA_DATA_DIR=data, QA_EMBED_BATCH_SIZE="1"),
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"qa serve did not come up: {(folder / 'serve.log').read_text()[-3000:]}")


def upload(url: str, rows: list[dict], name: str) -> httpx.Response:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    return httpx.post(f"{url}/api/ingest", files=[("files", (name, body, "application/x-ndjson"))], timeout=300)


@pytest.mark.reliability
def test_kill_9_of_the_server_under_load_loses_and_duplicates_nothing(tmp_path):
    data = tmp_path / "data"
    server, url = start_server(tmp_path, data)
    # The third batch is killed mid-write: big enough for several flushes (QA_EMBED_BATCH_SIZE=1
    # flushes ~23 of these articles at a time), since one flush's ledger rows land all at once.
    batches = [articles("k", 6), articles("k", 6, start=6), articles("k", 60, start=12)]
    acknowledged, answers, refusals, stop = set(), [], [], threading.Event()
    try:
        ingest_seeds(url)
        acknowledged.add(SEED_ID)

        def asker() -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/api/ask", json={"question": SEED_QUESTION})
                    except httpx.HTTPError:
                        return  # the server is gone
                    answers.append(response.status_code)
                    if response.status_code != 200:
                        refusals.append(response.text[:300])

        askers = [threading.Thread(target=asker) for _ in range(3)]
        for thread in askers:
            thread.start()
        in_flight = None
        for number, batch in enumerate(batches):
            if number == 2:  # the third batch is sent, and the server killed while it is being written
                in_flight = batch
                sender = threading.Thread(target=lambda: _quietly(upload, url, batch, f"batch{number}.jsonl"))
                sender.start()
                deadline = time.time() + 60
                while time.time() < deadline and len(_ledger_ids(data)) < len(acknowledged) + 2:
                    time.sleep(0.05)
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=30)
                sender.join(timeout=60)
                break
            response = upload(url, batch, f"batch{number}.jsonl")
            assert response.status_code == 200 and response.json()["added"] == len(batch), response.text
            acknowledged |= {r["id"] for r in batch}
        stop.set()
        for thread in askers:
            thread.join(timeout=120)
        assert answers and not refusals, (refusals[:3], (tmp_path / "serve.log").read_text()[-4000:])

        server, url = start_server(tmp_path, data)
        check = qa("index", "check", "--json", env=qa_env(QA_DATA_DIR=data))
        report = json.loads(check.stdout)
        assert check.returncode == 0 and report["ok"], report["problems"]
        assert report["stored"] == report["chunks"] + len(report["leftovers"])  # nothing else in Chroma
        documents = [d["id"] for d in httpx.get(f"{url}/api/documents", timeout=30).json()]
        assert len(documents) == len(set(documents)) and acknowledged <= set(documents)
        for row in (r for batch in batches for r in batch if r["id"] in documents):
            found = httpx.post(f"{url}/api/search", json={"question": row["text"][:160], "top_k": 3}, timeout=60).json()
            assert found["passages"][0]["doc_id"] == row["id"]

        landed = [r["id"] for r in in_flight if r["id"] in documents]
        assert len(landed) < len(in_flight), "the batch finished before the kill; the test proves nothing"
        again = upload(url, in_flight, "batch2.jsonl").json()
        assert again["added"] + again["unchanged"] == len(in_flight) and again["failed"] == 0
        final = json.loads(qa("index", "check", "--json", env=qa_env(QA_DATA_DIR=data)).stdout)
        assert final["ok"] and final["leftovers"] == [] and final["stored"] == final["chunks"]
        assert final["articles"] == len(acknowledged | {r["id"] for r in in_flight})
        record("kill -9 of qa serve", answers_before_kill=len(answers), acknowledged=len(acknowledged),
               in_flight_stored_at_kill=f"{len(landed)}/{len(in_flight)}", leftovers_swept=len(report["leftovers"]),
               lost=len(acknowledged - set(documents)), duplicated=len(documents) - len(set(documents)))
    finally:
        stop.set()
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except httpx.HTTPError:
        pass  # the server was killed under it


def _ledger_ids(data: Path) -> set[str]:
    import sqlite3

    try:
        with sqlite3.connect(data / "ledger.sqlite", timeout=1) as db:
            return {row[0] for row in db.execute("SELECT id FROM documents")}
    except sqlite3.Error:
        return set()
