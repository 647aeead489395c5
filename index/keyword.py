"""The BM25 keyword index, persisted beside the vectors and derived from the ledger.

Writers rebuild it after every change, under the write lock, into a new folder and switch a
pointer file atomically. A reader whose ledger generation is newer than the persisted index
(a writer was killed before rebuilding) builds one in memory instead of using a stale one.

Why not bm25s's own index: it stores each (term, chunk) pair's final BM25 score, which depends
on the whole corpus (idf, mean length), so adding one article meant tokenizing and scoring all
47k chunks again (5.6 s). Here the index keeps each chunk's term counts, keyed by a hash of its
text: a rebuild tokenizes only chunks it has not seen (bm25s's tokenizer and stemmer, as before)
and the scores, Lucene's BM25 as bm25s computes them, are derived from the counts in numpy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from index.documents import days_since_epoch
from index.ledger import Ledger

K1, B = 1.5, 0.75  # bm25s's defaults, which retrieval was tuned with
ARRAYS = ("indptr", "terms", "counts", "keys")
TOKENIZE_BATCH = 2000  # chunks tokenized at a time


@dataclass
class _Counts:
    """Each chunk's term counts, one row per chunk (CSR: a row's terms are terms[indptr[i]:indptr[i+1]])."""

    vocab: list[str]
    indptr: np.ndarray  # int64, rows + 1
    terms: np.ndarray  # int32 term ids
    counts: np.ndarray  # int32, how often each term occurs in the row's chunk
    keys: np.ndarray  # uint64, a hash of each row's text: the next build reuses rows by it


@dataclass
class _State:
    generation: int
    rows: _Counts
    chunk_ids: list[str]
    doc_ids: np.ndarray
    days: np.ndarray  # days since 1970; -1 for undated
    sources: np.ndarray

    @cached_property
    def position(self) -> dict[str, int]:
        return {chunk_id: i for i, chunk_id in enumerate(self.chunk_ids)}

    @cached_property
    def source_codes(self) -> tuple[dict[str, int], np.ndarray]:
        return _codes(self.sources)

    @cached_property
    def doc_codes(self) -> tuple[dict[str, int], np.ndarray]:
        return _codes(self.doc_ids)

    @cached_property
    def vocab(self) -> dict[str, int]:
        return {term: i for i, term in enumerate(self.rows.vocab)}

    @cached_property
    def postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Term → (chunk, BM25 weight), the form a query reads: made on the first search, as a
        writer process never searches. Lucene's BM25 with bm25s's idf and length norm."""
        rows, n = self.rows, len(self.chunk_ids)
        by_chunk = _matrix(rows, len(rows.vocab))
        size = np.asarray(by_chunk.sum(axis=1), dtype=np.float32).ravel()  # tokens per chunk
        by_term = by_chunk.tocsc()  # chunks ascending within each term
        starts, chunks = by_term.indptr.astype(np.int64), by_term.indices
        df = np.diff(starts)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = by_term.data.astype(np.float32)
        norm = K1 * ((1 - B) + B * size / max(float(size.mean()) if n else 1.0, 1e-9))
        return starts, chunks, (np.repeat(idf, df) * tf / (tf + norm[chunks])).astype(np.float32)

    def scores(self, terms: list[int]) -> np.ndarray:
        """Every chunk's BM25 score for these term ids (a repeated term counts again, as in bm25s)."""
        starts, chunks, weights = self.postings
        out = np.zeros(len(self.chunk_ids), dtype=np.float32)
        for term in terms:
            lo, hi = starts[term], starts[term + 1]
            out[chunks[lo:hi]] += weights[lo:hi]
        return out


def _tokenizer():
    import Stemmer
    from bm25s.tokenization import Tokenizer

    return Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class KeywordIndex:
    def __init__(self, data_dir: Path):
        self.folder = Path(data_dir) / "bm25"
        self._state: _State | None = None

    def rebuild(self, ledger: Ledger, fresh: bool = False, counted: Iterable[_Counts] = ()) -> None:
        """Build from the ledger and persist; only call this holding the data dir's write lock.
        `counted`: counts already made (`counts_of`) that may be reused, as the last index's are;
        `fresh`: tokenize every chunk again instead of reusing any (repair)."""
        state = self._build(ledger, [] if fresh else [self._earlier(), *counted])
        target = self.folder / f"g{state.generation}"
        shutil.rmtree(target, ignore_errors=True)
        try:
            target.mkdir(parents=True)
            for name in ARRAYS:
                np.save(target / f"{name}.npy", getattr(state.rows, name))
            (target / "chunks.json").write_text(json.dumps({
                "vocab": state.rows.vocab, "chunk_ids": state.chunk_ids, "doc_ids": state.doc_ids.tolist(),
                "days": state.days.tolist(), "sources": state.sources.tolist(),
            }))
            pointer = self.folder / "current.tmp"
            pointer.write_text(target.name)
        except OSError:  # e.g. a full disk: the old index stays current, and the half-written one goes
            shutil.rmtree(target, ignore_errors=True)
            raise
        os.replace(pointer, self.folder / "current")  # readers see the old or the new, never half
        for old in self.folder.iterdir():
            if old.is_dir() and old.name != target.name:
                shutil.rmtree(old, ignore_errors=True)
        self._state = state

    def persisted(self) -> tuple[int, list[str]] | None:
        """The generation and chunk ids of the index on disk, loaded in full (so damaged files
        raise OSError or ValueError); None when none was persisted."""
        generation = self.persisted_generation()
        if generation is None:
            return None
        state = self._load(self.folder / f"g{generation}", generation)
        return generation, state.chunk_ids

    def persisted_generation(self) -> int | None:
        pointer = self.folder / "current"
        name = pointer.read_text().strip() if pointer.exists() else ""
        return int(name[1:]) if name.startswith("g") and name[1:].isdigit() else None

    def search(self, query: str, k: int, ledger: Ledger, among: Passing | None = None,
               window: tuple[int, int] | None = None, window_k: int = 0,
               generation: int | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first: the k best chunks (of those `among`, the chunks a
        filter passes, from `passing`) and, with `window` (days since 1970, both ends included),
        the window_k best published in it too. One scoring of the corpus serves both picks.
        `generation`: the ledger's, where the caller has just read it."""
        state = among.state if among is not None else self._current(ledger, generation)
        if not state.chunk_ids:
            return []
        words = _tokenizer().tokenize([query], return_as="string", show_progress=False)[0]
        terms = [state.vocab[word] for word in words if word in state.vocab]
        if not terms:
            return []
        scores = state.scores(terms) if among is None else np.where(among.mask, state.scores(terms), 0.0)
        picked = _best(scores, k)
        if window is not None and window_k:
            in_window = (state.days >= window[0]) & (state.days <= window[1])
            picked = np.union1d(picked, _best(np.where(in_window, scores, 0.0), window_k))
        order = picked[np.argsort(-scores[picked], kind="stable")]
        return [(state.chunk_ids[i], float(scores[i])) for i in order]

    def passing(self, ledger: Ledger, since_days: int | None = None, until_days: int | None = None,
                sources: set[str] | None = None, doc_ids: set[str] | None = None,
                generation: int | None = None) -> Passing:
        """The chunks that pass these filters, for `search` and the dense search (index/store.py)."""
        state = self._current(ledger, generation)
        return Passing(state, _mask(state, since_days, until_days, sources, doc_ids))

    def _current(self, ledger: Ledger, generation: int | None = None) -> _State:
        generation = ledger.generation() if generation is None else generation
        if self._state is not None and self._state.generation == generation:
            return self._state
        pointer = self.folder / "current"
        name = pointer.read_text().strip() if pointer.exists() else ""
        if name == f"g{generation}":
            try:
                self._state = self._load(self.folder / name, generation)
                return self._state
            except Exception:  # replaced under us by a writer, or damaged: build it here instead
                pass
        self._state = self._build(ledger, [self._earlier()])
        return self._state

    def _earlier(self) -> _Counts | None:
        """Counts a build may reuse: this process's last index, else the persisted one if it loads."""
        if self._state is not None:
            return self._state.rows
        generation = self.persisted_generation()
        try:
            return self._load(self.folder / f"g{generation}", generation).rows if generation is not None else None
        except Exception:  # damaged or replaced: tokenize everything
            return None

    def _load(self, folder: Path, generation: int) -> _State:
        meta = json.loads((folder / "chunks.json").read_text())
        if "vocab" not in meta:  # bm25s's own files, before the index kept term counts
            raise ValueError(f"{folder} was written by an older version; `qa index repair` or the next ingest rebuilds it")
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
        rows = _Counts(meta["vocab"], **arrays)
        n = len(meta["chunk_ids"])
        if not (len(rows.indptr) == n + 1 == len(rows.keys) + 1 and rows.indptr[0] == 0
                and rows.indptr[-1] == len(rows.terms) == len(rows.counts) and np.all(np.diff(rows.indptr) >= 0)
                and (not len(rows.terms) or 0 <= rows.terms.min() <= rows.terms.max() < len(rows.vocab))
                and len(meta["doc_ids"]) == len(meta["days"]) == len(meta["sources"]) == n):
            raise ValueError(f"{folder}: the keyword index's arrays do not fit together")
        return _State(generation, rows, meta["chunk_ids"], np.array(meta["doc_ids"], dtype=object),
                      np.array(meta["days"], dtype=np.int64), np.array(meta["sources"], dtype=object))

    def _build(self, ledger: Ledger, known: list[_Counts | None]) -> _State:
        """`known`: counts whose rows may be reused by text (None: none there)."""
        generation = ledger.generation()
        entries = list(ledger.chunk_texts())
        return _State(
            generation, _counts([text for _, text, _ in entries], [rows for rows in known if rows is not None]), [chunk_id for chunk_id, _, _ in entries],
            np.array([m["doc_id"] for _, _, m in entries], dtype=object),
            np.array([days_since_epoch(m["published"]) or -1 for _, _, m in entries], dtype=np.int64),
            np.array([m["source"] or "" for _, _, m in entries], dtype=object),
        )


class Passing:
    """The chunks that pass a search's filters, as the keyword index knows them from the ledger:
    their number, their share of all chunks, their ids, and a membership test."""

    def __init__(self, state: _State, mask: np.ndarray):
        self.state, self.mask = state, mask  # the index it was read from, which `search` then scores
        self.count = int(mask.sum())
        self.share = self.count / max(len(mask), 1)

    def __contains__(self, chunk_id: str) -> bool:
        i = self.state.position.get(chunk_id)
        return i is not None and bool(self.mask[i])

    def ids(self) -> list[str]:
        return [self.state.chunk_ids[i] for i in np.flatnonzero(self.mask)]


def _mask(state: _State, since_days: int | None, until_days: int | None, sources: set[str] | None,
          doc_ids: set[str] | None) -> np.ndarray:
    """Which chunks pass: published on or after `since_days` and on or before `until_days` (an
    undated chunk passes neither), from one of `sources`, of one of `doc_ids`."""
    mask = np.ones(len(state.chunk_ids), dtype=bool)
    if since_days is not None:
        mask &= state.days >= since_days
    if until_days is not None:
        mask &= (state.days <= until_days) & (state.days >= 0)
    for wanted, (code_of, codes) in ((sources, state.source_codes), (doc_ids, state.doc_codes)):
        if wanted:
            mask &= np.isin(codes, [code_of[value] for value in wanted if value in code_of])
    return mask


def _codes(values: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """Each distinct value's code, and each row's: np.isin on strings took ~5 ms at 47k chunks,
    on these codes a tenth of that."""
    distinct, codes = np.unique(values.astype(str), return_inverse=True)
    return {value: i for i, value in enumerate(distinct.tolist())}, codes


def counts_of(texts: list[str]) -> _Counts:
    """The term counts of `texts` (bm25s's tokenizer and stemmer), with a vocabulary of their own.
    An ingest counts each pool's chunks while the model embeds the next pool, so that the rebuild
    at its end only puts rows together: tokenizing there, with the model done, took ~0.3 ms a
    chunk (~14 s of the RealTime QA corpus on the Zen 3 host of docs/benchmarks.md)."""
    ids: dict[str, int] = {}
    terms, counts = [], []
    for at in range(0, len(texts), TOKENIZE_BATCH):  # in slices: all 47k chunks' word lists at once took ~0.5 GB
        for words in _tokenizer().tokenize(texts[at : at + TOKENIZE_BATCH], return_as="string", show_progress=False):
            counter = Counter(ids.setdefault(word, len(ids)) for word in words)
            terms.append(np.fromiter(counter.keys(), np.int32, len(counter)))
            counts.append(np.fromiter(counter.values(), np.int32, len(counter)))
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in terms], dtype=np.int64)]).astype(np.int64)
    return _Counts(list(ids), indptr, np.concatenate(terms or [np.zeros(0, np.int32)]),
                   np.concatenate(counts or [np.zeros(0, np.int32)]), np.array([_key(t) for t in texts], dtype=np.uint64))


def _counts(texts: list[str], known: list[_Counts]) -> _Counts:
    """Term counts of `texts`, in order: a row of `known` whose text is the same is copied, the
    rest tokenized. Terms that only deleted chunks used are dropped once they are half the vocabulary."""
    keys = np.array([_key(text) for text in texts], dtype=np.uint64)
    rows, offset = {}, 0
    for part in known:
        for row, key in enumerate(part.keys):
            rows.setdefault(int(key), offset + row)
        offset += len(part.keys)
    source = np.array([rows.get(int(key), -1) for key in keys], dtype=np.int64)
    new = np.flatnonzero(source < 0)
    parts = [*known, counts_of([texts[i] for i in new])]
    source[new] = offset + np.arange(len(new))

    # One vocabulary (the first part's ids stay), each part's term ids mapped onto it; then one
    # fancy index puts every row where its text is.
    from scipy.sparse import csr_matrix, vstack

    ids: dict[str, int] = {}
    remaps = [np.array([ids.setdefault(term, len(ids)) for term in part.vocab], dtype=np.int32) for part in parts]
    picked = vstack([csr_matrix((part.counts, remap[part.terms], part.indptr), shape=(len(part.keys), len(ids)))
                     for part, remap in zip(parts, remaps)], format="csr")[source]
    indptr, terms, counts = picked.indptr.astype(np.int64), picked.indices.astype(np.int32), picked.data.astype(np.int32)
    result = _Counts(list(ids), indptr, terms, counts, keys)
    used = np.unique(terms)
    return _compact(result, used) if len(used) * 2 < len(ids) else result


def _matrix(rows: _Counts, width: int):
    """The counts as a scipy CSR matrix, chunks × `width` terms."""
    from scipy.sparse import csr_matrix

    return csr_matrix((rows.counts, rows.terms, rows.indptr), shape=(len(rows.keys), width))


def _compact(rows: _Counts, used: np.ndarray) -> _Counts:
    remap = np.full(len(rows.vocab), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    return _Counts([rows.vocab[i] for i in used], rows.indptr, remap[rows.terms], rows.counts, rows.keys)


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest positive scores, in no order. Only the chunks sharing a term
    with the query are partitioned: argpartition over an array of mostly zeros (bm25s's own
    top-k) took 3 ms at 47k chunks, this takes a tenth of that."""
    matching = np.flatnonzero(scores > 0)
    if len(matching) > k:
        matching = matching[np.argpartition(scores[matching], -k)[-k:]]
    return matching
