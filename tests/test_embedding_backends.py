"""QA_EMBED_BACKEND: the bundled model in torch, exported to onnxruntime in fp32 and int8, and auto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.embedding import Embedder
from qa.errors import ConfigError, EmbeddingMismatchError
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import SEEDS, as_qa_runs

SENTENCES = [
    "Japan and the United States would work closely together in the event of a Taiwan incident.",
    "The storm knocked out power to thousands of homes across the region.",
    "Repairs to the grid would take several days, the utility warned.",
    "Kishi met Austin in Tokyo.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def _sharing(embedder: Embedder, backend: str, cache) -> Embedder:
    other = Embedder(embedder.model_name, backend=backend, cache_dir=cache)
    other.model = embedder.model  # the same loaded model: only the encoder differs
    return other


@pytest.fixture(scope="module")
def onnx_fp32(embedder, cache) -> Embedder:
    return _sharing(embedder, "onnx", cache)


@pytest.fixture(scope="module")
def onnx_int8(embedder, cache) -> Embedder:
    return _sharing(embedder, "onnx-int8", cache)


@pytest.fixture(scope="module")
def int8_file(onnx_int8, cache) -> Path:
    onnx_int8.load()  # exported and quantized the first time
    return next(cache.glob("*-int8.onnx"))


def test_onnx_fp32_gives_the_torch_vectors(embedder, onnx_fp32, cache):
    cosines = (np.array(onnx_fp32.embed_documents(SENTENCES)) * np.array(embedder.embed_documents(SENTENCES))).sum(1)
    assert cosines.min() > 0.9999
    assert [p.name for p in cache.glob("*.onnx")] == [next(cache.glob("*-fp32.onnx")).name]


def test_short_texts_go_through_onnxruntime_fp32_once_sped_up_with_the_same_vectors(embedder, cache):
    torch_only = Embedder(embedder.model_name, cache_dir=cache)
    torch_only.model = embedder.model
    fast = Embedder(embedder.model_name, cache_dir=cache)
    fast.model = embedder.model
    assert fast.speed_up_short_texts() and fast._short is not None
    question = "Who met in Tokyo?"
    assert float(np.dot(fast.embed_query(question), torch_only.embed_query(question))) > 0.99999
    assert (fast.embed_sentences(SENTENCES) * torch_only.embed_sentences(SENTENCES)).sum(1).min() > 0.99999
    calls = []
    fast._short.encode = lambda texts, batch: calls.append(texts) or torch_only.embed_sentences(texts)
    fast.embed_query("a question not asked before")
    fast.embed_documents(SENTENCES)  # documents stay on torch
    assert calls == [["a question not asked before"]]
    assert fast.identity == torch_only.identity  # the index still says torch: the vectors are the same
    int8 = Embedder(embedder.model_name, backend="onnx-int8", cache_dir=cache)
    assert not int8.speed_up_short_texts()  # already onnxruntime


def test_int8_vectors_stay_close_to_fp32_and_keep_the_ranking(embedder, onnx_int8):
    reference = embedder.embed_sentences(SENTENCES)
    vectors = onnx_int8.embed_sentences(SENTENCES)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert (vectors * reference).sum(1).min() > 0.98
    query = "Who met in Tokyo?"
    assert np.argmax(vectors @ onnx_int8.embed_query(query)) == np.argmax(reference @ embedder.embed_query(query)) == 3


def test_int8_attention_is_fused_without_a_mask_and_the_torch_model_keeps_its_attention(embedder, int8_file):
    import onnx

    graph = onnx.load(str(int8_file)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("MultiHeadAttention") == 6 and not set(ops) & {"Where", "IsNaN", "Softmax"}  # SDPA's mask ops
    assert ops.count("MatMulInteger") == 6 * 6  # Q, K, V, output and the two feed-forward weights of each layer
    assert [i.name for i in graph.input] == ["input_ids", "token_type_ids"]  # no attention mask: no padding
    assert embedder.model[0].auto_model.config._attn_implementation == "sdpa"


def test_texts_of_every_length_get_the_vectors_they_get_alone(embedder, onnx_fp32, onnx_int8, monkeypatch):
    texts = SENTENCES + ["Tokyo.", SENTENCES[0] * 12]  # 3 to 256 tokens (the last one cut at the window)
    together = onnx_fp32.embed_sentences(texts)
    alone = np.concatenate([onnx_fp32.embed_sentences([text]) for text in texts])
    assert np.allclose(together, alone, atol=1e-5)
    monkeypatch.setattr("index.onnx_backend.TOKENIZED_AT_ONCE", 4)  # two windows, each grouped by length
    assert np.allclose(onnx_fp32.embed_sentences(texts), together, atol=1e-5)
    assert np.allclose(together, embedder.embed_sentences(texts), atol=1e-4)
    # The int8 graph has no mask: a padded batch would give cosines of 0.4-0.7 here (measured). Int8
    # vectors still move a little with their batch (each MatMul quantizes its input per batch).
    int8_together = onnx_int8.embed_sentences(texts)
    int8_alone = np.concatenate([onnx_int8.embed_sentences([text]) for text in texts])
    assert (int8_together * int8_alone).sum(1).min() > 0.99 and (int8_together * together).sum(1).min() > 0.98


def test_batches_run_side_by_side_on_one_core_each_and_a_lone_one_on_the_callers_thread(onnx_int8, monkeypatch):
    import threading

    from index import onnx_backend

    if onnx_backend.CORES < 2:
        pytest.skip("needs 2 cores: batches run side by side on them")
    encoder = onnx_int8._onnx
    options = encoder.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    texts = SENTENCES + ["Tokyo.", SENTENCES[0] * 3]
    lengths = {len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=256)["input_ids"]}
    assert len(lengths) >= 4  # a batch a token length
    one_by_one = np.concatenate([encoder.encode([text]) for text in texts])
    met, threads, run = threading.Barrier(2, timeout=20), [], encoder._encode_batch
    meetings = iter([met.wait, met.wait])

    def meeting(ids):  # the first two batches wait for each other: it fails unless they run at once
        threads.append(threading.current_thread().name)
        next(meetings, lambda: None)()
        return run(ids)

    monkeypatch.setattr(encoder, "_encode_batch", meeting)
    together = encoder.encode(texts)
    assert len(threads) == len(lengths) and all(name.startswith("onnx-run") for name in threads)
    # int8 quantizes each MatMul's input per batch: texts batched with others move a little
    assert (together * one_by_one).sum(1).min() > 0.99
    threads.clear()
    encoder.encode(["Kishi met Austin in Tokyo."] * 3)  # one length, one batch
    assert threads == [threading.current_thread().name]


def test_a_question_waits_behind_a_few_batches_of_an_ingest_not_behind_all(onnx_int8, monkeypatch):
    import threading
    import time

    from index import onnx_backend

    encoder = onnx_int8._onnx
    ids = encoder.tokenize(["Kishi met Austin in Tokyo."])[0]
    pool = [ids] * 8 * 40  # 40 batches of one length: an ingest pool
    question = [ids[:5], ids[:6]]  # two token lengths: two batches, sent to the runners too
    done, run = [], encoder._encode_batch

    def slow(batch):  # each batch takes 20 ms, and says whose it was
        time.sleep(0.02)
        done.append("question" if batch.shape[1] < len(ids) else "pool")
        return run(batch)

    monkeypatch.setattr(encoder, "_encode_batch", slow)
    ingest = threading.Thread(target=encoder.run, args=(pool,))
    ingest.start()
    while not done:
        time.sleep(0.005)
    encoder.run(question)
    asked_after = done.index("question")
    ingest.join()
    assert done.count("pool") == 40 and done.count("question") == 2
    assert asked_after <= 2 * onnx_backend.QUEUED + 2  # submitted all at once, the pool's 40 would all go first


def test_chunks_reuse_the_articles_wordpieces_and_get_the_vectors_of_their_texts(embedder, onnx_fp32, monkeypatch):
    import dataclasses

    from index.chunking import Chunker
    from index.documents import Article
    from index.loading import Loader
    from tests.test_chunking import ODD, long_article

    [seed] = list(Loader().load([SEEDS]))
    odd = Article("odd", "Zürich’s “odd” title — 北京, 3.14%", "\n\n".join(ODD * (i + 1) for i in range(6)))
    chunks = [chunk for size in (200, 300) for article in (seed, long_article(), odd)  # 300: cut at the window
              for chunk in Chunker(embedder.count_tokens, size, 40, embedder.wordpieces).split(article)]
    tokenizer = embedder.model.tokenizer
    made = [tokenizer(c.embedding_text(), truncation=True, max_length=embedder.max_tokens)["input_ids"] for c in chunks]
    assert onnx_fp32._pieces_fit and any(len(ids) == embedder.max_tokens for ids in made)
    reused = [onnx_fp32._input_ids(chunk, {}) for chunk in chunks]
    assert sum(ids is not None for ids in reused) > 0.9 * len(chunks)
    assert all(ids == expected for ids, expected in zip(reused, made) if ids is not None)

    tokenized = []

    def counting(texts, **options):
        tokenized.extend(texts)
        return tokenizer(texts, **options)

    monkeypatch.setattr(onnx_fp32._onnx, "tokenizer", counting)
    texts = [chunk.embedding_text() for chunk in chunks]
    expected = np.array(onnx_fp32.embed_documents(texts))
    tokenized.clear()
    assert np.allclose(onnx_fp32.embed_chunks(chunks), expected, atol=1e-5)
    assert tokenized == [text for text, ids in zip(texts, reused) if ids is None]  # only chunks without pieces
    rebuilt = [dataclasses.replace(c, pieces=None) if i % 2 else c for i, c in enumerate(chunks)]  # as from the ledger
    tokenized.clear()
    assert np.allclose(onnx_fp32.embed_chunks(rebuilt), expected, atol=1e-5)
    assert tokenized == [text for i, (text, ids) in enumerate(zip(texts, reused)) if i % 2 or ids is None]


def test_a_document_prompt_reaches_chunks_without_the_tokenizer_shortcut(embedder, onnx_fp32, monkeypatch):
    from index.chunking import Chunker
    from tests.test_chunking import long_article

    chunks = Chunker(embedder.count_tokens, 120, 20, embedder.wordpieces).split(long_article())[:4]
    plain = np.array(onnx_fp32.embed_chunks(chunks))
    monkeypatch.setitem(onnx_fp32.card.prompts, "document", "passage: ")  # as e5-style models have
    prompted = np.array(onnx_fp32.embed_chunks(chunks))
    assert np.allclose(prompted, onnx_fp32.embed_documents([c.embedding_text() for c in chunks]), atol=1e-5)
    assert (prompted * plain).sum(1).max() < 0.999  # the prompt was put before each text


def test_int8_layer_norms_and_gelu_run_unfused_as_the_recipe_says(onnx_int8, int8_file, tmp_path):
    import onnx

    from index.onnx_backend import _session

    slower = {"SkipLayerNormalization", "BiasGelu"}
    assert not slower & {node.op_type for node in onnx.load(str(int8_file)).graph.node}
    session = _session(int8_file, profile_prefix=str(tmp_path / "ops"))  # as OnnxEncoder opens it, recording each op
    encoded = onnx_int8.model.tokenizer(["a sentence to run"], return_tensors="np")
    session.run(None, {i.name: encoded[i.name].astype(np.int64) for i in session.get_inputs()})
    events = json.loads(Path(session.end_profiling()).read_text())
    ran = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and "op_name" in e.get("args", {})}
    # onnxruntime's own fusions would make them again at load: they are switched off
    assert {"MultiHeadAttention", "LayerNormalization", "Gelu"} <= ran and not slower & ran


def test_exported_files_are_made_once_and_reused(embedder, tmp_path):
    models = tmp_path / "models"
    int8 = _sharing(embedder, "onnx-int8", models)
    int8.embed_query("warm up")
    made = {p: p.stat().st_mtime_ns for p in models.iterdir()}
    # the fp32 export was only a step; beside the file, the record that the folder's tokenizer is the model's
    assert sorted(p.name.rsplit("-", 1)[1] for p in made) == ["int8.onnx", "tokenizer.ok"]
    again = _sharing(embedder, "onnx-int8", models)
    again.embed_query("again")
    assert {p: p.stat().st_mtime_ns for p in models.iterdir()} == made  # reused, not made again
    fp32 = _sharing(embedder, "onnx", models)  # a torch index's server wants it
    fp32.embed_query("fp32")
    assert sorted(p.name.rsplit("-", 1)[1] for p in models.glob("*.onnx")) == ["fp32.onnx", "int8.onnx"]


def test_an_int8_index_answers_and_refuses_fp32_vectors_with_advice(tmp_path, onnx_int8, embedder):
    service = QAService(Settings(data_dir=tmp_path / "data", embed_backend="onnx-int8"), embedder=onnx_int8)
    service.ingest([SEEDS])
    answer = service.ask("What did the 2+2 statement say about Taiwan?")
    assert not answer.abstained and "Taiwan Strait" in answer.answer
    assert service.store._collection().metadata["embed_model"] == "all-MiniLM-L6-v2 (int8 v2)"
    torch_service = QAService(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    with pytest.raises(EmbeddingMismatchError, match="QA_EMBED_BACKEND"):
        torch_service.search("Taiwan")


def test_auto_builds_new_indexes_in_int8_and_keeps_each_index_on_the_backend_it_was_built_with(
        tmp_path, embedder, onnx_int8, cache):
    def default(name: str, **settings) -> QAService:
        """The default settings with the service's own embedder, which settles "auto" by the index."""
        service = as_qa_runs(Settings(data_dir=tmp_path / name, models_dir=cache, **settings), embedder)
        assert service.settings.embed_backend == "auto"
        return service

    before = QAService(Settings(data_dir=tmp_path / "torch", embed_backend="torch"), embedder=embedder)
    before.ingest([SEEDS])  # an index made when torch was the default
    upgraded = default("torch")
    hits = upgraded.search("What did the 2+2 statement say about Taiwan?")
    assert upgraded.embedder.backend == "torch" and upgraded.status()["embed_backend"] == "torch"
    assert [(p.chunk_id, round(p.score, 4)) for p in hits] == \
        [(p.chunk_id, round(p.score, 4)) for p in before.search("What did the 2+2 statement say about Taiwan?")]

    new = default("new")
    assert new.embedder.question_encoder.startswith("not chosen yet")
    assert new.ingest([SEEDS]).count("added") == 1
    assert new.store.recorded() == onnx_int8.identity == "all-MiniLM-L6-v2 (int8 v2)"
    again = default("new")  # a later process on the int8 index
    answer = again.ask("What did the 2+2 statement say about Taiwan?")
    assert again.embedder.backend == "onnx-int8" and again.embedder.question_encoder == "onnxruntime int8"
    assert not answer.abstained and "Taiwan Strait" in answer.answer
    assert np.allclose(again.embedder.embed_query("Taiwan"), onnx_int8.embed_query("Taiwan"), atol=1e-6)

    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2"):  # another model: auto does not guess
        QAService(Settings(data_dir=tmp_path / "torch", embed_model="some-other-model")).store.check()
    with pytest.raises(EmbeddingMismatchError, match="int8 v2"):  # a named backend is never overridden
        QAService(Settings(data_dir=tmp_path / "new", embed_backend="torch"), embedder=embedder).search("Taiwan")


def test_an_unknown_backend_is_a_config_error_naming_the_setting():
    with pytest.raises(ConfigError, match="QA_EMBED_BACKEND"):
        Embedder("all-MiniLM-L6-v2", backend="tensorrt")


def test_an_onnx_backend_reads_the_model_from_its_folder_as_the_loaded_model_has_it(embedder, tmp_path):
    """Tokenizer, length, pooling and dimension come from the model's files (no torch import);
    they must be the loaded model's, ids included, at every length and on odd text."""
    import shutil

    from index.embedding import resolve_model
    from index.model_card import card_of_model, read_card
    from tests.test_chunking import ODD

    folder = resolve_model(embedder.model_name)
    card, loaded = read_card(folder), card_of_model(embedder.model)
    assert type(card.tokenizer).__module__ == "index.model_card"  # not transformers': that imports torch
    assert (card.source, card.max_seq_length, card.dimension, card.modules, card.pooling_mode, card.pipeline()) == \
           (loaded.source, 256, 384, ("Transformer", "Pooling", "Normalize"), "mean", ("mean", True))
    texts = SENTENCES + [ODD, "", "Zürich’s “odd” title — 北京, 3.14% 😀", "a\u00a0b\u200bc", SENTENCES[0] * 40]
    theirs = embedder.model.tokenizer
    assert [card.tokenizer.tokenize(t) for t in texts] == [theirs.tokenize(t) for t in texts]
    for length in (8, 256):
        assert card.tokenizer(texts, truncation=True, max_length=length)["input_ids"] == \
               theirs(texts, truncation=True, max_length=length)["input_ids"]
    assert len(card.tokenizer(texts[-1], truncation=True, max_length=256)["input_ids"]) == 256
    assert (card.tokenizer.cls_token_id, card.tokenizer.sep_token_id) == (theirs.cls_token_id, theirs.sep_token_id)

    other = tmp_path / "dense"  # a pipeline this does not read: the model is loaded, and names itself
    shutil.copytree(folder, other, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    modules = json.loads((other / "modules.json").read_text())
    (other / "modules.json").write_text(json.dumps(modules[:2] + [{**modules[1], "type": "sentence_transformers.models.Dense"}]))
    assert read_card(str(other)) is None and read_card(str(tmp_path / "nothing here")) is None


def test_a_folders_tokenizer_is_used_only_once_checked_against_the_loaded_models(embedder, tmp_path, monkeypatch):
    import dataclasses

    import index.embedding as embedding_module
    from index.model_card import agrees, card_of_model, read_card

    folder_card, loaded = read_card(embedder.card.source), card_of_model(embedder.model)
    assert agrees(folder_card, loaded) and not agrees(dataclasses.replace(folder_card, max_seq_length=128), loaded)
    assert not agrees(dataclasses.replace(folder_card, prompts={"query": "query: "}), loaded)  # e5's, say
    cased = read_card(embedder.card.source)
    cased.tokenizer.backend_tokenizer.normalizer = cased.tokenizer._cut.normalizer = None  # no lower-casing
    assert not agrees(cased, loaded)

    first = _sharing(embedder, "onnx-int8", tmp_path)
    assert type(first.card.tokenizer).__module__ == "index.model_card"
    assert len(list(tmp_path.glob("*-tokenizer.ok"))) == 1  # recorded: the next process loads no model
    monkeypatch.setattr(embedding_module, "agrees", lambda card, loaded: False)
    assert type(_sharing(embedder, "onnx-int8", tmp_path).card.tokenizer).__module__ == "index.model_card"
    for marker in tmp_path.glob("*-tokenizer.ok"):
        marker.unlink()
    doubted = _sharing(embedder, "onnx-int8", tmp_path)
    assert doubted.card.tokenizer is embedder.model.tokenizer and not list(tmp_path.glob("*-tokenizer.ok"))
