"""`qa index check` and `qa index repair` against a real Chroma (embedded and server): damage
made by hand (chunks deleted from Chroma, orphans added, metadata altered, files overwritten
with garbage) is found exactly, and repair gives back the index a clean ingest gave."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from index.store import COSINE_SPACE
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import QA_BIN, SEEDS
from tests.test_faults import record

PLACES = ["Aldmoor", "Brenfield", "Corrach", "Dunmere", "Elstow", "Farrowby"]
QUESTIONS = ["What did the 2+2 statement say about Taiwan?", "Which bridge reopened in Brenfield?",
             "How many lanterns were lit in Dunmere?", "Who repaired the Corrach lighthouse?"]


def write_corpus(folder):
    """The seed article and six invented ones; the even ones long enough for several chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEEDS / "000_816be8fe4ddfb075.txt", folder)
    rows = []
    for i, place in enumerate(PLACES):
        sentences = [f"In {place}, the council reopened the old stone bridge after {i + 3} months of repairs.",
                     f"Engineers from {place} repaired the lighthouse and lit {40 + i} lanterns along the quay."]
        sentences += [f"Resident {j} of {place} said the market on street {j} sold {i * j} baskets of plums." for j in range(24 if i % 2 == 0 else 3)]
        rows.append({"id": f"{place.lower()}", "title": f"{place} reopens its bridge", "text": " ".join(sentences),
                     "published": f"2022-05-{10 + i:02d}", "url": f"https://news.example/{place.lower()}", "authors": ["A. Writer", "B. Reporter"]})
    (folder / "towns.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return folder


def fingerprint(service) -> list:
    """What retrieval returns for the test questions: passages and their rounded scores."""
    return [[(p.chunk_id, p.start, p.end, round(p.score, 4)) for p in service.search(q, top_k=6)] for q in QUESTIONS]


def ledger_view(service) -> list:
    return sorted((r["id"], r["hash"], r["text"], json.dumps(r["chunk_ids"]), r["title"], r["published"], r["url"],
                   tuple(r["authors"])) for r in (service.ledger.get(d["id"]) for d in service.documents()))


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    """The corpus ingested once (embedded store), with what retrieval and the ledger gave."""
    folder = tmp_path_factory.mktemp("built")
    service = QAService(Settings(data_dir=folder / "data"), embedder=embedder)
    hnsw_persisted_early(service)
    service.ingest([write_corpus(folder / "corpus")])
    return {"data": folder / "data", "search": fingerprint(service), "documents": ledger_view(service)}


@pytest.fixture
def copied(built, tmp_path, embedder) -> QAService:
    """A service over a private copy of the built index: each test damages its own."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # Chroma's files closed before they are copied
    shutil.copytree(built["data"], tmp_path / "data")
    return QAService(Settings(data_dir=tmp_path / "data"), embedder=embedder)


def reopen(service):
    """A fresh view of the embedded store, as a new process would have."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    service.store.__dict__.pop("_client", None)
    return service


def test_a_clean_index_checks_clean(copied):
    service = copied
    report = service.check_index()
    assert report.ok and report.problems == [] and report.notes == []
    assert report.articles == 7 and report.chunks == report.stored == service.store.count() > 7


def test_check_finds_exactly_the_damage_and_repair_restores_the_same_search(make_service, tmp_path, store_mode, built, request):
    if store_mode:  # a Chroma server: its own collection, ingested here
        service = make_service(**store_mode)
        service.ingest([write_corpus(tmp_path / "corpus")])
    else:
        service = request.getfixturevalue("copied")
    clean = fingerprint(service)
    assert clean == built["search"]  # the same corpus gives the same retrieval in either store
    collection = service.store._collection()
    live = sorted(service.ledger.all_chunk_ids())
    rng = random.Random(7)
    deleted = sorted(rng.sample(live, 3))
    altered = next(c for c in live if c not in deleted)
    collection.delete(ids=deleted)
    [metadata] = collection.get(ids=[altered], include=["metadatas"])["metadatas"]
    collection.update(ids=[altered], metadatas=[{**metadata, "title": "Tampered title"}])
    orphans = ["ghost.txt::0123456789ab::0", "ghost.txt::0123456789ab::1"]
    collection.add(ids=orphans, embeddings=[[rng.random() for _ in range(384)] for _ in orphans],
                   documents=["not in the ledger"] * 2, metadatas=[{"doc_id": "ghost.txt"}] * 2)
    keyword_files = list((service.settings.data_dir / "bm25").glob("g*/*.npy"))
    keyword_files[0].write_bytes(b"\x93NUMPY garbage" * 10)

    report = service.check_index()
    assert not report.ok
    assert report.missing == deleted and report.mismatched == [altered] and report.orphans == orphans
    assert "cannot be read" in report.keyword_problem and report.ledger_problems == [] and report.store_problem is None
    assert len(report.problems) == 4

    repaired = service.repair_index()
    assert repaired.after.ok and repaired.after.notes == []
    assert repaired.deleted == 3 and repaired.embedded == 4  # 2 orphans + 1 altered; 3 missing + 1 altered
    assert fingerprint(service) == clean
    assert service.repair_index().actions == []  # a second repair has nothing to do
    record(f"check and repair ({'server' if store_mode else 'embedded'})", missing=len(report.missing),
           orphans=len(report.orphans), mismatched=len(report.mismatched), keyword=int(bool(report.keyword_problem)),
           found_exactly=True, search_identical_after_repair=True)


def test_metadata_altered_in_the_node_json_or_in_a_flat_filter_key_is_found_and_repaired(copied):
    """Chroma keeps the title and the rest only in the node JSON, and flat only what filters
    read: a change in either place is a mismatch, and repair writes the chunk again."""
    collection = copied.store._collection()
    live = sorted(copied.ledger.all_chunk_ids())
    in_json, in_flat = live[0], live[-1]
    [metadata] = collection.get(ids=[in_json], include=["metadatas"])["metadatas"]
    assert "title" not in metadata and "source" in metadata
    node = json.loads(metadata["_node_content"])
    node["metadata"]["title"] = "Tampered title"
    collection.update(ids=[in_json], metadatas=[{**metadata, "_node_content": json.dumps(node)}])
    [metadata] = collection.get(ids=[in_flat], include=["metadatas"])["metadatas"]
    collection.update(ids=[in_flat], metadatas=[{**metadata, "source": "Tampered source"}])

    assert copied.check_index().mismatched == sorted([in_json, in_flat])
    repaired = copied.repair_index()
    assert repaired.after.ok and repaired.embedded == 2
    stored = {chunk_id: metadata for chunk_id, metadata, _ in copied.store.records()}
    assert stored[in_json]["title"] != "Tampered title" and stored[in_flat]["source"] != "Tampered source"


def test_cli_check_exits_1_with_the_problems_and_0_once_repaired(copied, cli_env):
    service = copied
    chunk_id = sorted(service.ledger.all_chunk_ids())[0]
    service.store._collection().delete(ids=[chunk_id])
    env = {**cli_env, "QA_DATA_DIR": str(service.settings.data_dir)}

    found = subprocess.run([QA_BIN, "index", "check", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["ok"] is False and report["missing"] == [chunk_id] and len(report["problems"]) == 1

    assert reopen(service).repair_index().embedded == 1  # `qa index repair` is run in tests/test_faults.py
    again = subprocess.run([QA_BIN, "index", "check"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "✓" in again.stdout and "7 articles" in again.stdout, again.stdout + again.stderr


def hnsw_persisted_early(service) -> None:
    """Have Chroma write its HNSW files after 4 vectors (by default: after 1000), so a small
    index has them to damage. The collection records our model, so the store accepts it."""
    service.store._client.create_collection(service.settings.collection, metadata={
        **COSINE_SPACE, "embed_model": service.embedder.identity, "embed_dim": service.embedder.dimension,
        "hnsw:sync_threshold": 4, "hnsw:batch_size": 4})


@pytest.mark.parametrize("damage", ["sqlite", "hnsw"])
def test_a_damaged_chroma_folder_is_set_aside_and_rebuilt_from_the_ledger(copied, built, damage):
    service = copied
    clean, documents = built["search"], built["documents"]
    folder = service.settings.data_dir / "chroma"
    targets = [folder / "chroma.sqlite3"] if damage == "sqlite" else list(folder.glob("*/*.bin"))
    assert targets and all(t.stat().st_size for t in targets)
    for target in targets:
        target.write_bytes(random.Random(1).randbytes(target.stat().st_size))

    report = reopen(service).check_index()
    assert not report.ok and "damaged" in report.store_problem and "qa index repair" in report.store_problem
    assert report.ledger_problems == [] and report.missing == []  # nothing compared against an unreadable store

    repaired = service.repair_index()
    assert repaired.after.ok and repaired.after.notes == []
    kept = [p for p in folder.parent.iterdir() if p.name.startswith("chroma.damaged-")]
    assert len(kept) == 1 and any(kept[0].rglob(targets[0].name))  # set aside, not deleted
    assert repaired.embedded == repaired.after.chunks
    assert fingerprint(reopen(service)) == clean and ledger_view(service) == documents
    record(f"damaged chroma ({damage})", chunks_embedded_again=repaired.embedded, search_identical_after_repair=True)


@pytest.mark.parametrize("damage", ["whole file", "one page"])
def test_a_damaged_ledger_is_rebuilt_from_its_sound_rows_and_the_chunks_in_chroma(copied, built, damage):
    service = copied
    clean, documents = built["search"], built["documents"]
    ledger = service.ledger.path
    with open(ledger, "r+b") as handle:  # the WAL is checkpointed into the file when the last connection closes
        if damage == "whole file":
            handle.write(random.Random(2).randbytes(ledger.stat().st_size))
        else:  # the page holding part of one long article's text
            handle.seek(ledger.read_bytes().find(b"Resident 20 of Corrach") // 4096 * 4096)
            handle.write(b"\xde\xad\xbe\xef" * 1024)

    report = service.check_index()
    assert not report.ok and report.ledger_problems

    repaired = service.repair_index()
    assert repaired.after.ok and repaired.after.notes == [] and repaired.lost == []
    if damage == "whole file":
        assert sorted(repaired.restored) == sorted(d[0] for d in documents)  # every article from its chunks
    else:
        assert "corrach" in repaired.restored and len(repaired.restored) < len(documents)  # the rest read back
    assert ledger_view(service) == documents  # texts, hashes, chunk ids, metadata: as ingested
    assert fingerprint(service) == clean
    assert any(p.name.startswith("ledger.sqlite.damaged-") for p in ledger.parent.iterdir())
    record(f"damaged ledger ({damage})", articles=len(documents), reassembled_from_chroma=len(repaired.restored),
           lost=len(repaired.lost), search_identical_after_repair=True)
