"""The keyword index: bm25s's BM25 scores from per-chunk term counts, rebuilt incrementally."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest

import index.keyword as keyword
from index.keyword import KeywordIndex

WORDS = ("treaty parliament geneva signed rejected storm power grid repairs utility minister election vote "
         "court ruling appeal wildfire evacuation harbour strike union wages bank rates inflation").split()


class Ledger:
    """What KeywordIndex reads of the ledger: a generation and (chunk id, text, metadata) rows."""

    def __init__(self, texts: dict[str, str]):
        self.texts, self.gen = dict(texts), 1

    def generation(self) -> int:
        return self.gen

    def chunk_texts(self):
        for chunk_id, text in sorted(self.texts.items()):
            yield chunk_id, text, {"doc_id": chunk_id.split("::")[0], "published": "2022-05-01", "source": "wire"}

    def change(self, add: dict[str, str] = (), remove=()) -> None:
        self.texts.update(add)
        for chunk_id in remove:
            del self.texts[chunk_id]
        self.gen += 1


def corpus(rng: random.Random, n: int, prefix: str = "d") -> dict[str, str]:
    return {f"{prefix}{i:04d}.txt::abc::0": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
            for i in range(n)}


def bm25s_scores(texts: list[str], query: str) -> np.ndarray:
    tokenizer = keyword._tokenizer()
    model = bm25s.BM25()
    model.index(tokenizer.tokenize(texts, return_as="tuple", show_progress=False), show_progress=False)
    words = [w for w in keyword._tokenizer().tokenize([query], return_as="string", show_progress=False)[0]
             if w in model.vocab_dict]
    return model.get_scores(words)


def all_scores(index: KeywordIndex, ledger: Ledger, query: str) -> np.ndarray:
    hits = dict(index.search(query, 10_000, ledger))
    return np.array([hits.get(chunk_id, 0.0) for chunk_id in sorted(ledger.texts)])


def counting_tokenizer(monkeypatch) -> list[str]:
    """Every text keyword's tokenizer is given from now on."""
    tokenized, real = [], keyword._tokenizer

    def counting():
        tokenizer = real()
        inner = tokenizer.tokenize
        tokenizer.tokenize = lambda texts, **kw: tokenized.extend(texts) or inner(texts, **kw)
        return tokenizer

    monkeypatch.setattr(keyword, "_tokenizer", counting)
    return tokenized


@pytest.mark.parametrize("seed", range(5))
def test_scores_are_bm25s_scores_repeated_query_terms_included(tmp_path, seed, monkeypatch):
    monkeypatch.setattr(keyword, "TOKENIZE_BATCH", 7)  # several slices share one vocabulary
    rng = random.Random(seed)
    ledger = Ledger(corpus(rng, rng.randint(5, 80)))
    index = KeywordIndex(tmp_path)
    index.rebuild(ledger)
    for query in ["treaty treaty signed", " ".join(rng.sample(WORDS, 3)), "storm grid repairs utility"]:
        expected = bm25s_scores([text for _, text, _ in ledger.chunk_texts()], query)
        assert np.allclose(all_scores(index, ledger, query), expected, rtol=1e-5, atol=1e-6)
        assert expected.max() > 0 or query.split()[0] not in " ".join(ledger.texts.values())


def test_a_rebuild_tokenizes_only_new_texts_and_equals_a_fresh_build(tmp_path, monkeypatch):
    rng = random.Random(11)
    ledger = Ledger(corpus(rng, 60))
    index = KeywordIndex(tmp_path / "a")
    index.rebuild(ledger)
    real = keyword._tokenizer
    tokenized = counting_tokenizer(monkeypatch)
    added = corpus(rng, 3, prefix="new")
    removed = sorted(ledger.texts)[:20]
    ledger.change(add=added, remove=removed)
    KeywordIndex(tmp_path / "a").rebuild(ledger)  # a new process: reuses the persisted counts
    assert sorted(tokenized) == sorted(added.values())

    monkeypatch.setattr(keyword, "_tokenizer", real)
    fresh = KeywordIndex(tmp_path / "b")
    fresh.rebuild(ledger, fresh=True)
    reopened = KeywordIndex(tmp_path / "a")
    for query in ["treaty signed", "storm power grid", "wages wages union"]:
        assert np.allclose(all_scores(reopened, ledger, query), all_scores(fresh, ledger, query), rtol=1e-6)
        assert np.allclose(all_scores(reopened, ledger, query),
                           bm25s_scores([t for _, t, _ in ledger.chunk_texts()], query), rtol=1e-5, atol=1e-6)


def test_counts_made_beforehand_are_reused_by_text_and_score_as_bm25s(tmp_path, monkeypatch):
    monkeypatch.setattr(keyword, "TOKENIZE_BATCH", 5)
    rng = random.Random(7)
    ledger = Ledger(corpus(rng, 40))
    texts = [text for _, text, _ in ledger.chunk_texts()]
    gone = "harbour harbour strike wages"  # counted, then deleted before the rebuild: not in the index
    counted = [keyword.counts_of(texts[:15] + [gone]), keyword.counts_of(texts[15:30])]  # vocabularies of their own
    tokenized = counting_tokenizer(monkeypatch)
    index = KeywordIndex(tmp_path)
    index.rebuild(ledger, counted=counted)
    assert sorted(tokenized) == sorted(texts[30:])  # only what was not counted before
    for query in ["treaty signed", "harbour strike wages", "storm storm grid"]:
        assert np.allclose(all_scores(index, ledger, query), bm25s_scores(texts, query), rtol=1e-5, atol=1e-6)
    tokenized.clear()
    KeywordIndex(tmp_path / "fresh").rebuild(ledger, fresh=True, counted=counted)
    assert sorted(tokenized) == sorted(texts)  # fresh (repair) reuses nothing


def test_terms_left_only_by_deleted_chunks_are_dropped_once_they_are_half_the_vocabulary(tmp_path):
    ledger = Ledger({"a.txt::x::0": "treaty signed geneva", "b.txt::x::0": "alpha beta gamma delta epsilon zeta"})
    index = KeywordIndex(tmp_path)
    index.rebuild(ledger)
    ledger.change(remove=["b.txt::x::0"])
    index.rebuild(ledger)
    assert sorted(index._state.rows.vocab) == ["geneva", "sign", "treati"]
    assert [chunk_id for chunk_id, _ in index.search("geneva treaty", 5, ledger)] == ["a.txt::x::0"]
    assert index.search("gamma", 5, ledger) == []


def test_arrays_that_do_not_fit_together_are_refused_and_a_fresh_build_replaces_them(tmp_path):
    ledger = Ledger(corpus(random.Random(3), 10))
    index = KeywordIndex(tmp_path)
    index.rebuild(ledger)
    folder = tmp_path / "bm25" / f"g{ledger.gen}"
    np.save(folder / "terms.npy", np.load(folder / "terms.npy")[:-1])
    with pytest.raises(ValueError, match="do not fit together"):
        KeywordIndex(tmp_path).persisted()
    reader = KeywordIndex(tmp_path)
    assert reader._earlier() is None  # damaged counts are never reused
    assert len(reader.search("treaty", 5, ledger)) > 0  # built in memory from the ledger instead


def test_an_index_written_by_bm25s_is_named_as_older_and_rebuilt_by_the_next_write(tmp_path):
    ledger = Ledger(corpus(random.Random(5), 8))
    folder = tmp_path / "bm25" / f"g{ledger.gen}"
    model = bm25s.BM25()
    model.index(keyword._tokenizer().tokenize(list(ledger.texts.values()), return_as="tuple", show_progress=False),
                show_progress=False)
    model.save(str(folder))  # the layout of the releases before term counts
    (folder / "chunks.json").write_text('{"chunk_ids": [], "doc_ids": [], "days": [], "sources": []}')
    (tmp_path / "bm25" / "current").write_text(folder.name)
    with pytest.raises(ValueError, match="older version"):
        KeywordIndex(tmp_path).persisted()
    ledger.change(add={"z.txt::x::0": "treaty"})
    KeywordIndex(tmp_path).rebuild(ledger)
    assert KeywordIndex(tmp_path).persisted() == (ledger.gen, sorted(ledger.texts))
