"""Updates, deletes, prune, near-duplicates and interrupted writes, against a real Chroma."""

import json
import subprocess
import sys

import pytest

from index.documents import Article
from index.pipeline import IngestReport, WriteLock
from qa.errors import QAError, StoreError


def write_article(folder, name, title, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"{title}\n{text}", encoding="utf-8")


def consistent(service) -> bool:
    """Store and ledger agree: every stored chunk is live and every live chunk is stored."""
    return service.store.ids() == service.ledger.all_chunk_ids()


WIRE = ("The central bank raised interest rates by half a percentage point on Wednesday, its largest increase in "
        "two decades, as policymakers tried to cool inflation running at a forty-year high. The decision was "
        "unanimous, and officials signalled that further increases were likely at the next two meetings. Markets "
        "rose after the announcement, with investors relieved that the bank had not moved more aggressively.")


def test_syndicated_copies_are_recorded_and_collapsed(make_service, tmp_path):
    rows = [
        {"id": "wire-a", "title": "Bank raises rates", "text": WIRE, "source": "apnews.com", "published": "2022-05-04"},
        {"id": "wire-b", "title": "Central bank lifts rates", "text": WIRE + " Reporting by staff.", "source": "example.com", "published": "2022-05-04"},
        {"id": "other", "title": "Zoo news", "text": "A baby giraffe was born at the city zoo on Tuesday, keepers said.", "published": "2022-05-05"},
    ]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    service = make_service()
    report = service.ingest([tmp_path / "feed.jsonl"])
    assert [r.duplicate_of for r in report.results] == [None, "wire-a", None]
    assert service.document("wire-b")["duplicate_of"] == "wire-a"
    doc_ids = [p.doc_id for p in service.search("How much did the central bank raise rates?", top_k=5)]
    assert len({"wire-a", "wire-b"} & set(doc_ids)) == 1 and "other" in doc_ids  # one copy stands for both
    service.delete("wire-a")  # the copy takes over as the canonical article
    assert service.document("wire-b")["duplicate_of"] is None
    assert "wire-b" in [p.doc_id for p in service.search("How much did the central bank raise rates?", top_k=5)]


def test_delete_and_prune(make_service, tmp_path):
    folder = tmp_path / "news"
    write_article(folder, "a.txt", "Alpha", "The alpha story is about apples.")
    write_article(folder, "b.txt", "Beta", "The beta story is about bananas.")
    write_article(folder, "c.txt", "Gamma", "The gamma story is about grapes.")
    service = make_service()
    service.ingest([folder])
    service.delete("a.txt")
    assert {d["id"] for d in service.documents()} == {"b.txt", "c.txt"} and consistent(service)
    with pytest.raises(QAError, match="no stored article"):
        service.delete("a.txt")
    (folder / "c.txt").unlink()
    report = service.ingest([folder], prune=True)
    # a.txt's file is still there, so the sync adds it back; c.txt's is gone, so it goes
    assert (report.count("added"), report.count("unchanged"), report.count("deleted")) == (1, 1, 1)
    assert {d["id"] for d in service.documents()} == {"a.txt", "b.txt"} and consistent(service)
    assert "c.txt" not in {p.doc_id for p in service.search("grapes", top_k=5)}
    for name in ("a.txt", "b.txt"):
        (folder / name).unlink()
    report = service.ingest([folder], prune=True)  # an empty folder is more often a wrong path
    assert report.count("failed") == 1 and report.count("deleted") == 0
    assert "--prune removes nothing" in report.results[0].message
    assert {d["id"] for d in service.documents()} == {"a.txt", "b.txt"} and consistent(service)


def test_only_one_version_counts_at_every_step_of_a_replacement(make_service, embedder):
    """Replay the replacement step by step, as a crash could stop it anywhere."""
    service = make_service()
    old = Article("doc", "Port", "The port is open and ships are sailing today.", root="r")
    new = Article("doc", "Port", "The port is closed because of the storm.", root="r")
    indexer = service.indexer
    report = IngestReport()
    indexer._write(indexer._start([old], report), _no_duplicates(), report)
    chunks = indexer.chunker.split(new)
    vectors = embedder.embed_documents([c.embedding_text() for c in chunks])

    def visible():
        return {p.text for p in service.search("Is the port open?", top_k=5)}

    service.ledger.mark_pending([c.id for c in chunks])
    service.store.add(chunks, vectors)  # crash here: the new chunks exist but do not count yet
    assert visible() == {old.text}
    service.ledger.record_many([(new, chunks, None, None)])  # the switch
    assert visible() == {new.text}  # the old chunks are still stored but no longer count
    assert not consistent(service)
    assert indexer.sweep() >= 1  # what the next writer does first
    assert visible() == {new.text} and consistent(service)


def test_a_pool_of_articles_switches_in_one_commit(make_service, tmp_path):
    """The ledger records a pool's articles in one transaction: when one row fails, none of the
    pool counts and the articles stored before keep their chunks."""
    folder = tmp_path / "news"
    write_article(folder, "a.txt", "Alpha", "The alpha story is about apples.")
    service = make_service()
    service.ingest([folder])
    before, generation = service.ledger.chunk_ids("a.txt"), service.ledger.generation()
    indexer = service.indexer
    changed = Article("a.txt", "Alpha", "The alpha story is about pears now.", root="r")
    fresh = Article("b.txt", "Beta", "The beta story is about bananas.", root="r")
    entries = [(changed, indexer.chunker.split(changed), None, None),
               (fresh, indexer.chunker.split(fresh), None, {"not": "a signature"})]  # SQLite cannot bind it
    with pytest.raises(StoreError, match="ledger"):
        service.ledger.record_many(entries)
    assert service.ledger.chunk_ids("a.txt") == before and service.ledger.get("b.txt") is None
    assert service.ledger.generation() == generation and service.ledger.pending() == []
    olds = service.ledger.record_many(entries[:1] + [(fresh, entries[1][1], None, None)])
    assert olds == [before, []] and service.ledger.generation() == generation + 2
    assert set(service.ledger.pending()) == set(before)  # the old version's chunks, until swept


def test_a_second_writer_fails_fast_and_readers_keep_working(make_service, tmp_path):
    service = make_service()
    write_article(tmp_path / "n", "a.txt", "Alpha", "The alpha story is about apples.")
    service.ingest([tmp_path / "n"])
    script = (
        "import sys, time; from index.pipeline import WriteLock; from qa.errors import StoreError\n"
        f"began = time.time()\ntry:\n    WriteLock({str(service.settings.data_dir)!r}).__enter__()\n"
        "except StoreError as exc:\n    print(round(time.time() - began, 2), exc); sys.exit(3)\n"
    )
    with WriteLock(service.settings.data_dir):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert service.search("apples", top_k=1)[0].doc_id == "a.txt"  # reading is not blocked
    assert result.returncode == 3
    seconds, message = result.stdout.split(" ", 1)
    assert float(seconds) < 5 and "another qa process" in message and "wait" in message
    with pytest.raises(StoreError):
        with WriteLock(service.settings.data_dir):
            service.ingest([tmp_path / "n"])


def _no_duplicates():
    from index.dedup import NearDuplicates

    return NearDuplicates([], {})


def test_stored_signatures_are_read_at_the_first_add_and_still_find_the_copy():
    from index.dedup import NearDuplicates

    story = "The harbour reopened on Monday after repairs that took most of the winter, the port said. " * 4
    read = []

    def stored():
        read.append(True)
        yield "wire", NearDuplicates([], {}).add("wire", story)[1]  # as the ledger keeps it

    duplicates = NearDuplicates(stored(), {"wire": None})
    assert not read  # nothing read (nor datasketch imported) before the first pool is written
    assert duplicates.add("copy", story.replace("Monday", "Monday,"))[0] == "wire" and read == [True]
    assert duplicates.add("other", "A storm closed the railway line through the valley for a week. " * 4)[0] is None


def _three_pools(tmp_path, monkeypatch):
    """A feed of three articles, each its own ingest pool (the pool size cut to ~300 characters)."""
    monkeypatch.setattr("index.pipeline.FLUSH_BATCHES", 1)
    monkeypatch.setattr("index.pipeline.CHARS_PER_CHUNK", 10)  # x 32 texts a model batch
    topics = ("harbour", "orchard", "railway")
    rows = [{"id": topic, "title": f"The {topic} reopens",
             "text": f"The {topic} reopened on Monday after repairs that took most of the winter. " * 6}
            for topic in topics]
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return feed, list(topics)


def test_the_model_embeds_a_pool_while_the_one_before_is_written(tmp_path, int8_embedder, monkeypatch):
    import threading

    from qa.service import QAService
    from qa.settings import Settings

    feed, ids = _three_pools(tmp_path, monkeypatch)
    service = QAService(Settings(data_dir=tmp_path / "data"), embedder=int8_embedder)
    int8_embedder.load()
    encoder, store = int8_embedder._onnx, service.store
    run, add, runs, second = encoder.run, store.add, [], threading.Event()

    def running(tokens, batch_size=32):
        runs.append(threading.current_thread().name)
        if len(runs) == 2:
            second.set()
        return run(tokens, batch_size)

    def adding(chunks, vectors):  # a sequential ingest embeds the second pool only after this returns
        assert second.wait(20), "the first pool was written before the second was being embedded"
        add(chunks, vectors)

    monkeypatch.setattr(encoder, "run", running)
    monkeypatch.setattr(store, "add", adding)
    report = service.ingest([feed])
    assert report.count("added") == 3 and len(runs) == 3 and all(name.startswith("embed") for name in runs)
    assert 0 < report.stages["embed"] and 0 < report.encoder and consistent(service)
    assert [r.doc_id for r in report.results] == ids  # written, and reported, in the feed's order


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_the_first_pools_grow_from_one_model_batch_only_where_the_model_embeds_in_the_background(
        tmp_path, embedder, int8_embedder, monkeypatch, backend):
    from index.pipeline import Indexer
    from qa.service import QAService
    from qa.settings import Settings

    monkeypatch.setattr("index.pipeline.FLUSH_BATCHES", 4)
    monkeypatch.setattr("index.pipeline.CHARS_PER_CHUNK", 10)  # a model batch: 32 x 10 characters
    words = "harbour orchard railway bridge library market stadium museum ferry tunnel canal airport".split()
    rows = [{"id": word, "title": f"The {word} reopens",  # each article just over one batch
             "text": " ".join(f"The {word} reopened on day {n} after repairs." for n in range(8))} for word in words]
    assert all(320 <= len(row["text"]) < 2 * 320 for row in rows)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    start, pools = Indexer._start, []

    def starting(self, articles, report):
        pools.append(len(articles))
        return start(self, articles, report)

    monkeypatch.setattr(Indexer, "_start", starting)
    service = QAService(Settings(data_dir=tmp_path / "data"), embedder=int8_embedder if backend != "torch" else embedder)
    report = service.ingest([feed])
    assert report.count("added") == len(words) and consistent(service)
    # 1, 2, then 4 batches' worth of characters; torch embeds each pool before the next is read.
    assert pools == ([1, 2, 4, 4, 1] if backend != "torch" else [4, 4, 4])


def test_each_pools_keyword_counts_are_made_as_it_is_written_and_the_rebuild_tokenizes_none(
        tmp_path, int8_embedder, monkeypatch):
    from index.keyword import KeywordIndex
    from qa.service import QAService
    from qa.settings import Settings
    from tests.test_keyword import counting_tokenizer

    feed, ids = _three_pools(tmp_path, monkeypatch)
    (tmp_path / "canal.txt").write_text("Canal lock\n\nThe canal lock was rebuilt by hand over the summer.", encoding="utf-8")
    service = QAService(Settings(data_dir=tmp_path / "data"), embedder=int8_embedder)
    tokenized, rebuild, during = counting_tokenizer(monkeypatch), KeywordIndex.rebuild, []

    def rebuilding(self, ledger, fresh=False, counted=()):
        before = len(tokenized)
        rebuild(self, ledger, fresh, counted)
        during.extend(tokenized[before:])

    monkeypatch.setattr(KeywordIndex, "rebuild", rebuilding)
    report = service.ingest([feed, tmp_path / "canal.txt"])
    texts = sorted(text for _, text, _ in service.ledger.chunk_texts())
    assert report.count("added") == 4, [(r.source, r.status, r.message) for r in report.results]
    assert sorted(tokenized) == texts and during == []
    assert service.indexer.keywords.search("canal lock rebuilt", 3, service.ledger)[0][0].startswith("canal.txt")
    fresh = KeywordIndex(tmp_path / "fresh")
    rebuild(fresh, service.ledger, fresh=True)
    for query in ("harbour reopened", "orchard winter repairs", "railway"):
        assert service.indexer.keywords.search(query, 5, service.ledger) == fresh.search(query, 5, service.ledger)


def test_an_encoder_failure_in_the_background_stops_the_ingest_with_the_pools_before_it_stored(
        tmp_path, int8_embedder, monkeypatch):
    from qa.service import QAService
    from qa.settings import Settings

    feed, ids = _three_pools(tmp_path, monkeypatch)
    service = QAService(Settings(data_dir=tmp_path / "data"), embedder=int8_embedder)
    int8_embedder.load()
    encoder = int8_embedder._onnx
    run, runs = encoder.run, []

    def failing(tokens, batch_size=32):
        runs.append(len(tokens))
        if len(runs) == 2:
            raise RuntimeError("the encoder failed")
        return run(tokens, batch_size)

    monkeypatch.setattr(encoder, "run", failing)
    with pytest.raises(RuntimeError, match="the encoder failed"):
        service.ingest([feed])
    assert {d["id"] for d in service.documents()} == {ids[0]} and consistent(service)
    assert not service.ledger.pending()  # the failed pool never reached the store
    monkeypatch.setattr(encoder, "run", run)
    again = service.ingest([feed])
    assert (again.count("unchanged"), again.count("added")) == (1, 2) and consistent(service)
