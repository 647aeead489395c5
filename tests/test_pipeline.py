"""Ingest against a real Chroma: idempotent, replaces changed articles, refuses another model."""

import json

import pytest

from index.store import ChromaStore
from qa.errors import EmbeddingMismatchError
from tests.conftest import SEEDS


def test_ingesting_twice_leaves_the_same_chunks(make_service, store_mode):
    service = make_service(**store_mode)
    first = service.ingest([SEEDS])
    count = service.store.count()
    assert first.count("added") == 1 and count == first.chunks > 0
    second = service.ingest([SEEDS])
    assert second.count("unchanged") == 1 and second.chunks == 0
    assert service.store.count() == count


def test_a_changed_article_replaces_all_its_chunks(make_service, tmp_path, store_mode):
    folder = tmp_path / "articles"
    folder.mkdir()
    long_text = " ".join(f"Paragraph {i} says the harbour has {i} ships." for i in range(200))
    (folder / "a.txt").write_text("Harbour news\n" + long_text, encoding="utf-8")
    service = make_service(**store_mode)
    assert service.ingest([folder]).count("added") == 1
    long_count = service.store.count()
    (folder / "a.txt").write_text("Harbour news\nThe harbour is closed today.", encoding="utf-8")
    report = service.ingest([folder])
    assert report.count("updated") == 1
    assert service.store.count() == 1 < long_count
    [passage] = service.search("Is the harbour open?", top_k=5)
    assert passage.text == "The harbour is closed today."
    assert service.document("a.txt")["chunk_ids"] == [passage.chunk_id]


def test_bad_files_fail_alone_and_stored_articles_survive(make_service, tmp_path):
    service = make_service()
    service.ingest([SEEDS])
    before = service.store.count()
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "feed.jsonl").write_text(json.dumps({"id": "j1", "title": "Ok", "text": "Rain fell in Oslo."}) + "\n{oops\n", encoding="utf-8")
    report = service.ingest([folder])
    assert report.count("added") == 1 and report.count("failed") == 3
    failed = {r.source.rsplit("/", 1)[-1]: r.message for r in report.results if r.status == "failed"}
    assert set(failed) == {"empty.txt", "binary.txt", "feed.jsonl:2"}
    assert service.store.count() == before + 1
    assert {d["id"] for d in service.documents()} == {"000_816be8fe4ddfb075.txt", "j1"}


def test_a_different_embedding_model_is_refused_with_advice(make_service, store_mode):
    service = make_service("shared", **store_mode)
    service.ingest([SEEDS])
    other = ChromaStore(service.settings.data_dir, service.settings.collection, "some-other-model", service.settings.chroma_url)
    with pytest.raises(EmbeddingMismatchError) as info:
        other.check()
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message and "QA_EMBED_MODEL" in message and "QA_DATA_DIR" in message


def test_collection_records_model_and_dimension(make_service):
    service = make_service()
    service.ingest([SEEDS])
    metadata = service.store._collection().metadata
    assert metadata["embed_model"] == "all-MiniLM-L6-v2" and metadata["embed_dim"] == 384


def test_seed_question_is_answered_from_either_store(make_service, store_mode):
    service = make_service(**store_mode)
    service.ingest([SEEDS])
    answer = service.ask("What did the 2+2 statement say about Taiwan?")
    assert "peace and stability in the Taiwan Strait" in answer.answer
    service.delete("000_816be8fe4ddfb075.txt")
    assert service.store.count() == 0 and service.search("Taiwan") == []


def test_an_unreachable_chroma_server_is_a_clear_error(make_service):
    from qa.errors import BackendUnavailableError
    from tests.conftest import free_port

    service = make_service(chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailableError, match="QA_CHROMA_URL"):
        service.search("anything")


def test_a_running_reader_finds_what_another_process_ingests(make_service, tmp_path, cli_env):
    """Embedded Chroma keeps its vector index in memory; the reader reopens it when the ledger moves on."""
    import subprocess

    from qa.retrieve import Retriever
    from tests.conftest import QA_BIN

    reader = make_service("shared")
    reader.ingest([SEEDS])
    dense = Retriever(reader.embedder, reader.store, reader.ledger, top_k=3, keyword=False, dates=False)
    assert {p.doc_id for p in dense.search("volcano eruption on the island")} == {"000_816be8fe4ddfb075.txt"}
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "volcano.txt").write_text("Volcano erupts\n\nA volcano erupted on the island of Tanna on Monday, "
                                        "sending ash over villages and closing the airport.", encoding="utf-8")
    env = {**cli_env, "QA_DATA_DIR": str(reader.settings.data_dir)}
    done = subprocess.run([QA_BIN, "ingest", str(folder)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert dense.search("volcano eruption on the island")[0].doc_id == "volcano.txt"


def test_chunks_are_llama_index_nodes_with_their_text_and_only_filtered_keys_flat(make_service, store_mode):
    """The text lives in the node JSON, not in Chroma's document (which Chroma indexes for
    full-text search at ~2 ms a chunk); llama-index's own ChromaVectorStore reads the nodes whole."""
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index.store import FILTERED

    service = make_service(**store_mode)
    service.ingest([SEEDS])
    collection = service.store._collection()
    stored = collection.get(include=["documents", "metadatas"])
    assert len(stored["ids"]) == service.store.count() > 1 and set(stored["documents"]) == {None}
    texts = {p.chunk_id: p.text for p in service.search("Taiwan Strait", top_k=20)}
    found = ChromaVectorStore(chroma_collection=collection).query(VectorStoreQuery(
        query_embedding=service.embedder.embed_query("Taiwan Strait"), similarity_top_k=3))
    assert len(found.nodes) == 3
    for node in found.nodes:
        assert node.get_content() == texts[node.node_id] and node.metadata["title"] and node.ref_doc_id
    # Flat beside the node JSON: only the keys filters read (the seed is undated: no
    # published_days), and llama-index's own.
    assert {key for m in stored["metadatas"] for key in m} == {
        *FILTERED, "_node_content", "_node_type", "document_id", "ref_doc_id"} - {"published_days"}

    def filtered(key, value):  # a llama-index metadata filter, which Chroma applies to the flat keys
        return ChromaVectorStore(chroma_collection=collection).query(VectorStoreQuery(
            query_embedding=service.embedder.embed_query("Taiwan Strait"), similarity_top_k=50,
            filters=MetadataFilters(filters=[MetadataFilter(key=key, value=value)]))).nodes

    source, title = found.nodes[0].metadata["source"], found.nodes[0].metadata["title"]
    assert len(filtered("source", source)) == len(stored["ids"]) and filtered("source", "No such outlet") == []
    assert filtered("title", title) == []  # in the node JSON only: not a filter any more
    if not store_mode:  # Chroma's full-text index holds nothing
        import sqlite3

        with sqlite3.connect(service.settings.data_dir / "chroma" / "chroma.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM embedding_fulltext_search").fetchone()[0] == 0


def test_an_index_with_texts_as_chroma_documents_still_checks_clean(make_service):
    """Indexes written before the text moved into the node JSON hold it as Chroma's document,
    as llama-index's ChromaVectorStore.add writes it: they read the same and need no rebuild."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index.ledger import chunks_of
    from index.store import expected_node

    service = make_service()
    service.ingest([SEEDS])
    collection = service.store._collection()
    old = collection.get(include=["embeddings"])
    texts = {chunk_id: text for chunk_id, _, text in service.store.records()}
    chunks = {chunk.id: chunk for row in service.ledger.rows() for chunk in chunks_of(row)}
    assert set(texts) == set(chunks) and all(texts[i] == chunks[i].text for i in texts)
    collection.delete(ids=old["ids"])
    ChromaVectorStore(chroma_collection=collection).add(
        [expected_node(chunks[i], list(map(float, v))) for i, v in zip(old["ids"], old["embeddings"])])
    again = collection.get(include=["documents", "metadatas"])
    assert all(again["documents"]) and all('"text": ""' in m["_node_content"] for m in again["metadatas"])
    assert {chunk_id: text for chunk_id, _, text in service.store.records()} == texts
    assert service.check_index().ok
    assert "peace and stability in the Taiwan Strait" in service.ask("What did the 2+2 statement say about Taiwan?").answer


def test_every_key_a_filter_asks_chroma_for_is_stored_flat():
    """Chroma filters on flat keys only: one a filter names but `stored_metadata` left in the
    node JSON would silently match nothing."""
    import datetime as dt

    from index.store import FILTERED
    from qa.retrieve import Filters

    where = Filters(dt.date(2022, 1, 1), dt.date(2022, 2, 1), ("Reuters",), ("a.txt",)).chroma_where()
    asked = {key for clause in where["$and"] for key in clause}
    assert asked == set(FILTERED)


@pytest.mark.parametrize("exact_among, overfetch_most", [
    (400, 1000),  # few passing chunks: their vectors compared here
    (0, 1000),  # else the unfiltered nearest that pass
    (0, 0),  # else Chroma searches among the passing ids
])
def test_a_filtered_search_from_either_store(make_service, tmp_path, store_mode, monkeypatch, exact_among, overfetch_most):
    import index.store
    from qa.retrieve import Filters

    monkeypatch.setattr(index.store, "EXACT_AMONG", exact_among)
    monkeypatch.setattr(index.store, "OVERFETCH_MOST", overfetch_most)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"id": "strait", "title": "Ferries cross the strait", "source": "example.com",
                                "text": "Ferries crossed the Taiwan Strait again after the storm passed."}) + "\n", encoding="utf-8")
    service = make_service(**store_mode)
    service.ingest([SEEDS, feed])
    for doc_id in ("strait", "000_816be8fe4ddfb075.txt"):
        passages = service.search("Taiwan Strait", top_k=5, filters=Filters(doc_ids=(doc_id,)))
        assert passages and {p.doc_id for p in passages} == {doc_id} and "dense_rank" in passages[0].why
    [passage] = service.search("Taiwan Strait", top_k=5, filters=Filters(sources=("example.com",)))
    assert passage.doc_id == "strait" and "dense_rank" in passage.why
    # its vectors gone from Chroma behind the ledger's back (as when another process deleted it
    # and this one has not followed yet): no error, only its keyword match is left
    service.store._collection().delete(where={"doc_id": "strait"})
    [passage] = service.search("Taiwan Strait", top_k=5, filters=Filters(sources=("example.com",)))
    assert passage.doc_id == "strait" and "dense_rank" not in passage.why and "keyword_rank" in passage.why
