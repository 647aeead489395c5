"""A server's embedded Chroma client follows writes by other processes without breaking the
searches in flight, and does not reopen for its own writes."""

import json
import subprocess
import threading
import time

import pytest

from index import store as store_module
from index.readers import Readers
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import QA_BIN, qa_env


def rows(prefix: str, count: int, start: int = 0) -> list[dict]:
    return [{"id": f"{prefix}{i}", "title": f"Orchard report {prefix}{i}",
             "text": " ".join(f"The {prefix}{i} orchard in valley {i} picked {j} tonnes of plums on day {j}." for j in range(8)),
             "published": "2022-06-02"} for i in range(start, start + count)]


def write(path, items) -> str:
    path.write_text("\n".join(json.dumps(r) for r in items), encoding="utf-8")
    return str(path)


def searching(service: QAService, stop: threading.Event, failures: list, done: list) -> None:
    while not stop.is_set():
        try:
            service.search("plums picked in the orchard", top_k=3)
            done.append(1)
        except Exception as exc:  # any error here is the bug
            failures.append(repr(exc))


def test_searches_survive_reopens_while_another_process_ingests(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(store_module, "REOPEN_EVERY", 0.0)  # reopen at every generation seen
    data = tmp_path / "data"
    service = QAService(Settings(data_dir=data), embedder=embedder)
    service.ingest([write(tmp_path / "first.jsonl", rows("p", 4))])
    reopens = []
    original = store_module.ChromaStore._reopen
    monkeypatch.setattr(store_module.ChromaStore, "_reopen", lambda self: (reopens.append(1), original(self)))

    stop, failures, done = threading.Event(), [], []
    threads = [threading.Thread(target=searching, args=(service, stop, failures, done)) for _ in range(4)]
    for thread in threads:
        thread.start()
    env = qa_env(QA_DATA_DIR=data, QA_EMBED_BATCH_SIZE=1)  # several flushes
    try:
        run = subprocess.run([QA_BIN, "ingest", write(tmp_path / "more.jsonl", rows("q", 24, start=10)), "--json"],
                             env=env, capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert run.returncode == 0, run.stderr[-2000:]
    assert not failures, failures[:3]
    assert done and reopens, (len(done), len(reopens))  # the searches ran, across reopens

    # the other process's last article is found by its meaning (dense), not only by keyword
    service.search("anything", top_k=1)
    found = service.retriever.store.nearest(embedder.embed_query(rows("q", 1, start=33)[0]["text"]), 1)
    assert found and found[0][0].startswith("q33::")


def test_its_own_writes_do_not_reopen_the_client(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(store_module, "REOPEN_EVERY", 0.0)
    service = QAService(Settings(data_dir=tmp_path / "data", embed_batch_size=2), embedder=embedder)
    service.ingest([write(tmp_path / "first.jsonl", rows("p", 2))])
    service.search("plums", top_k=1)
    reopens = []
    monkeypatch.setattr(store_module.ChromaStore, "_reopen", lambda self: reopens.append(1))

    stop, failures, done = threading.Event(), [], []
    thread = threading.Thread(target=searching, args=(service, stop, failures, done))
    thread.start()
    try:
        report = service.ingest([write(tmp_path / "more.jsonl", rows("q", 30, start=10))])
    finally:
        stop.set()
        thread.join()
    assert report.count("added") == 30 and not failures
    assert service.search("the q39 orchard in valley 39", top_k=1)[0].doc_id == "q39"
    assert done and reopens == []


def test_a_reopen_waits_for_the_calls_in_flight_and_a_nested_call_never_deadlocks():
    readers, events = Readers(), []
    inside, release = threading.Event(), threading.Event()

    def reader():
        with readers.reading():
            inside.set()
            release.wait(5)
            with readers.reading():  # nested, while a reopen is waiting: must not block
                events.append("nested")
            events.append("reader done")

    def reopen():
        with readers.alone():
            events.append("reopened")

    first = threading.Thread(target=reader)
    first.start()
    inside.wait(5)
    second = threading.Thread(target=reopen)
    second.start()
    time.sleep(0.2)
    assert events == []  # the reopen waits for the reader
    release.set()
    first.join(5)
    second.join(5)
    assert events == ["nested", "reader done", "reopened"]
    with readers.reading(), pytest.raises(RuntimeError):
        with readers.alone():
            pass


def test_an_embedded_collection_is_fetched_once_until_the_client_reopens(make_service, monkeypatch, store_mode):
    """Fetching and checking the collection cost each search ~2 ms; an embedded one is kept until
    the client is opened again, a server's is fetched each time (another process may create it anew)."""
    from tests.conftest import SEEDS

    service = make_service(**store_mode)
    service.ingest([SEEDS])
    fetched, generations = [], []
    original = store_module.ChromaStore._existing
    monkeypatch.setattr(store_module.ChromaStore, "_existing", lambda self: fetched.append(1) or original(self))
    generation = type(service.ledger).generation
    monkeypatch.setattr(type(service.ledger), "generation", lambda self: generations.append(1) or generation(self))
    for _ in range(3):
        assert service.search("Taiwan", top_k=2)
    assert len(generations) == 3  # and the ledger's generation is read once a search (each read opens it)
    if store_mode:
        assert len(fetched) == 3
        return
    assert fetched == []  # the ingest's own, checked then
    with service.store._use.alone():
        service.store._reopen()  # as following another process's writes does
    for _ in range(2):
        assert service.search("Taiwan", top_k=2)
    assert len(fetched) == 1
