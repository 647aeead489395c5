"""kill -9 during ingest, for real, then a re-run: the index equals a clean ingest's."""

import json
import signal
import sqlite3
import subprocess
import time

from qa.service import QAService
from qa.settings import Settings
from tests.conftest import QA_BIN, qa_env

TOPICS = ["harbour", "railway", "election", "vaccine", "drought", "bridge", "museum", "festival"]


def feed(path, count=48):
    rows = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        sentences = " ".join(f"Report {i} on the {topic}: detail {j} about the {topic} in district {i * 7 + j}." for j in range(12))
        rows.append({"id": f"n{i:03d}", "title": f"{topic.title()} update {i}", "text": sentences, "published": "2022-06-01"})
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def ledger_rows(data_dir) -> int:
    try:
        with sqlite3.connect(data_dir / "ledger.sqlite", timeout=1) as db:
            return db.execute("SELECT count(*) FROM documents").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_ingest(env, source):
    return subprocess.Popen([QA_BIN, "ingest", str(source), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def snapshot(data_dir, embedder):
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # read what the other processes wrote, not a cached view
    service = QAService(Settings(data_dir=data_dir), embedder=embedder)
    store_ids = service.store.ids()
    return {
        "ids": sorted(store_ids),
        "consistent": store_ids == service.ledger.all_chunk_ids(),
        "docs": sorted((d["id"], d["hash"]) for d in service.documents()),
        "pending": service.ledger.pending(),
    }


def test_kill_during_ingest_at_several_points_then_rerun_equals_clean_ingest(tmp_path, int8_embedder):
    embedder = int8_embedder  # `qa ingest` builds new indexes in int8 (QA_EMBED_BACKEND=auto)
    source = feed(tmp_path / "feed.jsonl")
    # small model batches, so the articles are written in several rounds a kill can fall between
    base = qa_env(QA_EMBED_BATCH_SIZE=1)

    clean_dir = tmp_path / "clean"
    clean = run_ingest({**base, "QA_DATA_DIR": str(clean_dir)}, source)
    while ledger_rows(clean_dir) < 8 and clean.poll() is None:
        time.sleep(0.02)
    # queries keep working while another process writes
    reader = QAService(Settings(data_dir=clean_dir), embedder=embedder)
    assert reader.search("railway district", top_k=3) != []
    assert clean.wait(timeout=600) == 0, clean.stderr.read()

    crash_dir = tmp_path / "crash"
    env = {**base, "QA_DATA_DIR": str(crash_dir)}
    kills = []
    # killed while loading, then part-way through, then later still: each run resumes the last
    for target in (0, 8, 30):
        process = run_ingest(env, source)
        deadline = time.time() + 300
        while ledger_rows(crash_dir) < target and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if target == 0:  # still importing: the first small pool is written ~4 s after the start
            time.sleep(1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills.append(ledger_rows(crash_dir))
    assert kills[-1] < 48, f"the ingest finished before the last kill ({kills}); the test proves nothing"
    assert kills[1] >= 8, kills

    rerun = subprocess.run([QA_BIN, "ingest", str(source), "--json"], env=env, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["unchanged"] == kills[-1] and summary["added"] == 48 - kills[-1]

    crashed, reference = snapshot(crash_dir, embedder), snapshot(clean_dir, embedder)
    assert crashed["consistent"] and crashed["pending"] == []
    assert crashed["ids"] == reference["ids"] and crashed["docs"] == reference["docs"]
