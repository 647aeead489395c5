"""The Chroma vector store: llama-index nodes, in the layout its ChromaVectorStore reads.

Embedded (a PersistentClient in the data dir) by default, or a Chroma server (`QA_CHROMA_URL`).
The collection records which embedding model built it; opening it with another model is
refused, because vectors from two models cannot be compared. Chroma's own errors are turned
into ones that say what to do: an unreachable server (503, names QA_CHROMA_URL), a damaged
folder (`qa index repair`), a full disk.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

from index.documents import Chunk
from index.readers import Readers
from index.space import disk_full, is_disk_full
from qa.errors import BackendUnavailableError, EmbeddingMismatchError, IndexCorruptError, QAError, StoreError

if TYPE_CHECKING:
    from index.keyword import Passing

# llama-index turns Chroma's distance d into exp(-d); in cosine space d = 1 - cos.
COSINE_SPACE = {"hnsw:space": "cosine"}
# What Chroma says when its files are damaged (SQLite codes 11 and 26, a broken HNSW segment).
DAMAGE = ("malformed", "not a database", "code: 11", "code: 26", "hnsw", "corrupt", "unpickling", "pickle")
# The chunk metadata Chroma filters on (qa/retrieve.py, Filters.chroma_where): kept flat.
FILTERED = ("doc_id", "published_days", "source")
PAGE = 1000  # ids read from the collection a page at a time
# Another process's writes are followed at most this often (seconds): each reopen reloads the
# vector index, and during a long ingest elsewhere the ledger moves on with every article.
REOPEN_EVERY = 1.0
# A filtered search (`nearest` with `among`): up to EXACT_AMONG passing chunks are compared
# exactly; a larger share is looked for among the SLACK * top_k / share nearest of all chunks,
# then four times as many, up to OVERFETCH_MOST; else Chroma searches among the passing ids. At
# 47k chunks: reading 400 vectors by id and comparing them ~12 ms, 1,000 unfiltered neighbours
# ~9 ms, a search among 800-6,400 ids 6-12 ms (among fewer up to 32 ms, as its graph search
# passes over more chunks that fail; among 20-35k, 20-27 ms), Chroma's `where` 30-290 ms.
EXACT_AMONG = 400
OVERFETCH_MOST = 1000
SLACK = 1.5


class ChromaStore:
    def __init__(self, data_dir: Path, collection: str, identity: str | Callable[[str | None], str],
                 url: str | None = None):
        """`identity`: the embedding model (and int8 recipe) this index must be built with; a
        function of what the collection records (None for none yet) where that decides it
        (QA_EMBED_BACKEND=auto keeps an index on the backend it was built with)."""
        self.path = Path(data_dir) / "chroma"
        self.collection_name = collection
        self._identity = identity if callable(identity) else (lambda built_with: identity)
        self.url = url
        self._use = Readers()  # every Chroma call reads; a reopen waits for them and goes alone
        self._own_writers = 0  # writes in this process (their changes are in this client already)
        self._generation: int | None = None  # the ledger generation this client has seen
        self._reopened = 0.0
        self._kept: tuple | None = None  # (client, its checked collection): embedded only

    @property
    def where(self) -> str:
        return self.url or str(self.path)

    @contextmanager
    def _using(self, doing: str):
        """A Chroma call: never cut off by a reopen, its errors named."""
        with self._use.reading(), self._guard(doing):
            yield

    @contextmanager
    def _guard(self, doing: str):
        """Chroma's errors, named: the server, the folder or the disk, and what to do about it."""
        try:
            yield
        except QAError:
            raise
        except BaseException as exc:  # chromadb raises bare exceptions; Rust panics are BaseExceptions
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise self._explained(exc, doing) from exc

    def _explained(self, exc: BaseException, doing: str) -> QAError:
        message = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        if self.url:
            if _unreachable(exc):
                return BackendUnavailableError(
                    f"cannot reach the Chroma server at {self.url} while {doing} ({message}); "
                    "start it, or fix QA_CHROMA_URL"
                )
            return StoreError(f"the Chroma server at {self.url} failed while {doing}: {message}")
        if is_disk_full(exc, self.path.parent):
            return disk_full(self.path.parent, doing)
        if any(marker in message.lower() for marker in DAMAGE):
            return IndexCorruptError(
                f"the vector store {self.path} is damaged ({message}); run `qa index repair` "
                "to rebuild it from the texts in the ledger"
            )
        return StoreError(f"the vector store {self.path} failed while {doing}: {message}")

    @cached_property
    def _client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        with self._guard("connecting"):
            if self.url:
                parsed = urlparse(self.url)
                client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                    ssl=parsed.scheme == "https", settings=settings,
                )
                client.heartbeat()
                return client
            self.path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self.path), settings=settings)

    def _collection(self, dimension: int | None = None):
        """The checked collection. An embedded one is kept until the client is opened again
        (`_reopen`): fetching and checking it cost every search ~2 ms. A server's is fetched each
        time, since another process may delete and create it again there."""
        with self._using("opening the collection"):
            client = self._client
            if dimension is None and self._kept is not None and self._kept[0] is client:
                return self._kept[1]
            collection = self._open_collection(dimension)
            if collection is not None and not self.url:
                self._kept = (client, collection)
            return collection

    def _open_collection(self, dimension: int | None = None):
        """The collection; created (recording the model) only when a dimension is given."""
        collection = self._existing()
        if collection is None:
            if dimension is None:
                return None
            metadata = {**COSINE_SPACE, "embed_model": self._identity(None), "embed_dim": dimension}
            return self._client.get_or_create_collection(self.collection_name, metadata=metadata)
        built_with = (collection.metadata or {}).get("embed_model")
        built_dim = (collection.metadata or {}).get("embed_dim")
        expected = self._identity(built_with)
        if built_with != expected or (dimension is not None and built_dim != dimension):
            raise EmbeddingMismatchError(
                f"the index in {self.where} was built with embedding model {built_with!r} "
                f"({built_dim} dimensions), but QA_EMBED_MODEL and QA_EMBED_BACKEND give {expected!r}. "
                f"Set them back ({built_with!r}; \"(int8 vN)\" means QA_EMBED_BACKEND=onnx-int8 quantized by "
                "recipe N, and an index of another recipe must be built again) to use this index, "
                "or point QA_DATA_DIR (or QA_COLLECTION) at a new one and ingest again to build it with the new model."
            )
        return collection

    def _existing(self):
        """The collection as it is, unchecked, or None (inside a `_using`). One call: listing the
        collections first cost a search ~2 ms at 47k chunks."""
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(self.collection_name)
        except NotFoundError:
            return None

    def recorded(self) -> str | None:
        """The embedding model (and int8 recipe) the collection records, unchecked; None for none."""
        with self._using("reading which model built the index"):
            collection = self._existing()
        return None if collection is None else (collection.metadata or {}).get("embed_model")

    def check(self) -> None:
        """Raise EmbeddingMismatchError, BackendUnavailableError or IndexCorruptError now, not at
        the first query; counting makes Chroma load its segments, so damage shows here."""
        self.count()

    def follow(self, generation: int) -> None:
        """See what other processes stored since this client opened.

        Embedded Chroma holds its vector index in memory: another process's writes reach its
        SQLite (count sees them) but not its nearest-neighbour queries, until the client is
        opened again. So a reader reopens when the ledger's generation has moved on, waiting for
        the calls in flight (a reopen under them broke them), at most every REOPEN_EVERY
        seconds, and not while this process writes (its own writes are in this client).
        """
        # `<=`: a search that read the generation before this process's own write ended is not news
        if self.url or (self._generation is not None and generation <= self._generation):
            return
        if self._generation is None:  # the first look: the client opened now is current
            self._generation = generation
            return
        if self._own_writers or time.monotonic() - self._reopened < REOPEN_EVERY:
            return
        with self._use.alone():
            if generation <= self._generation or self._own_writers:
                return  # another thread reopened meanwhile, or a write began
            self._reopen()
            self._generation = generation

    @contextmanager
    def writing(self, generation: Callable[[], int]):
        """Around a write by this process; at its end this client is current with the ledger."""
        self._own_writers += 1
        try:
            yield
        finally:
            with suppress(Exception):  # a broken ledger is the writer's error to report, not this
                self._generation = generation()
            self._own_writers -= 1

    def _reopen(self) -> None:
        """A new client on the folder (only under `self._use.alone()`): a new Chroma System,
        which loads the vector index from disk."""
        from chromadb.api.shared_system_client import SharedSystemClient

        client = self.__dict__.pop("_client", None)
        if client is not None:
            with suppress(Exception):
                client.close()
        # Another client on this folder in this process would keep the old System cached; drop it.
        SharedSystemClient._identifier_to_system.pop(str(self.path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(self.path), None)
        self._reopened = time.monotonic()

    def add(self, chunks: list[Chunk], embeddings: list[list[float]]) -> None:
        """Each chunk as llama-index's ChromaVectorStore stores a node, but with the text in the
        node's JSON (`_node_content`) instead of Chroma's document: Chroma indexes every
        document for full-text search (SQLite FTS5, trigrams), which cost more than the rest of
        the write together (~2 ms a chunk here) and which nothing reads: keyword search is
        index/keyword.py. llama-index reads such a node back whole (its text comes from the
        JSON when the document is empty), and `records` reads both layouts."""
        if not chunks:
            return
        with self._using("adding chunks"):
            collection = self._collection(len(embeddings[0]))
            for part in self._parts(len(chunks)):
                collection.add(ids=[chunk.id for chunk in chunks[part]], embeddings=embeddings[part],
                               metadatas=[stored_metadata(chunk) for chunk in chunks[part]])

    def delete(self, chunk_ids: list[str]) -> None:
        with self._using("deleting chunks"):
            collection = self._collection()
            if collection is None or not chunk_ids:
                return
            for part in self._parts(len(chunk_ids)):
                collection.delete(ids=list(chunk_ids[part]))

    def _parts(self, n: int) -> list[slice]:
        """Slices of n items that the client takes in one call (its own limit, not llama-index's)."""
        batch = self._client.get_max_batch_size()
        return [slice(offset, offset + batch) for offset in range(0, n, batch)]

    def count(self) -> int:
        with self._using("counting chunks"):
            collection = self._collection()
            return 0 if collection is None else collection.count()

    def ids(self) -> set[str]:
        return {chunk_id for chunk_id, _, _ in self.records(include=())}

    def records(self, include: tuple[str, ...] = ("metadatas", "documents")) -> Iterator[tuple[str, dict | None, str | None]]:
        """(chunk id, metadata, text) of every stored chunk, a page at a time; the metadata is the
        node's whole (`_read`), and with `include=()` only ids are read (both None). The collection
        is fetched again for each page: a reopen between pages closes the client it came from."""
        offset = 0
        while True:
            with self._using("reading chunks"):
                collection = self._collection()
                if collection is None:
                    return
                page = collection.get(include=list(include), limit=PAGE, offset=offset)
            metadatas = page.get("metadatas") or [None] * len(page["ids"])
            documents = page.get("documents") or [None] * len(page["ids"])
            for chunk_id, metadata, document in zip(page["ids"], metadatas, documents):
                yield (chunk_id, *_read(metadata, document)) if include else (chunk_id, None, None)
            if len(page["ids"]) < PAGE:
                return
            offset += PAGE

    def probe(self) -> None:
        """One nearest-neighbour query, which reads the vector index itself (not just SQLite)."""
        with self._using("searching"):
            collection = self._collection()
            if collection is None or not collection.count():
                return
            dimension = (collection.metadata or {}).get("embed_dim") or 384
            collection.query(query_embeddings=[[1.0] + [0.0] * (int(dimension) - 1)], n_results=1, include=[])

    def set_aside(self) -> Path | None:
        """Move a damaged embedded folder out of the way (kept, not deleted) so a fresh one can
        be built; returns where it went. Not for a Chroma server, whose files are its own."""
        if self.url or not self.path.exists():
            return None
        kept = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        with self._use.alone():
            os.replace(self.path, kept)
            self._reopen()  # else this process would go on using the moved files
        return kept

    def nearest(self, embedding: list[float], top_k: int, where: dict | None = None,
                among: Passing | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the nearest chunks, best first: ids and distances only.

        The retriever reads texts from the ledger, so this asks Chroma directly for nothing
        else, instead of llama-index's query, which also fetches and parses every node.

        `where` filters in Chroma, which reads every chunk id it lets through from SQLite for
        each query: 30-290 ms at 47k chunks, against 3.5 ms unfiltered (docs/benchmarks.md).
        `among`, the chunks the same filter passes as the keyword index knows them, spares that:
        a few passing chunks are compared exactly, a large share of them is picked from the
        unfiltered nearest (asked for enough of them that top_k pass), and otherwise Chroma
        searches among their ids. `where` is left to Chroma only when an id the keyword index
        passes is not in this client's collection (another process's change not seen yet)."""
        if where and among is not None:
            if among.count <= EXACT_AMONG:
                return self._exact(embedding, top_k, among.ids())
            for wanted in _widening(math.ceil(SLACK * top_k / among.share)):
                found = self._query(embedding, wanted)
                kept = [hit for hit in found if hit[0] in among][:top_k]
                if len(kept) == top_k or len(found) < wanted:  # fewer found: every chunk was looked at
                    return kept
            try:
                return self._query(embedding, top_k, ids=among.ids())
            except BackendUnavailableError:
                raise
            except StoreError:  # Chroma refuses ids it does not hold; its own filter skips them
                pass
        return self._query(embedding, top_k, where)

    def _query(self, embedding: list[float], top_k: int, where: dict | None = None,
               ids: list[str] | None = None) -> list[tuple[str, float]]:
        with self._using("searching"):
            collection = self._collection()
            if collection is None:
                return []
            found = collection.query(query_embeddings=[embedding], n_results=top_k, where=where or None, ids=ids,
                                     include=["distances"])
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in zip(found["ids"][0], found["distances"][0])]

    def _exact(self, embedding: list[float], top_k: int, ids: list[str]) -> list[tuple[str, float]]:
        """The top_k of `ids` by cosine similarity, from their stored vectors."""
        if not ids:
            return []
        with self._using("searching"):
            collection = self._collection()
            if collection is None:
                return []
            found = collection.get(ids=ids, include=["embeddings"])
        if not found["ids"]:
            return []
        vectors, query = np.asarray(found["embeddings"], dtype=np.float32), np.asarray(embedding, dtype=np.float32)
        similarity = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(query), 1e-12)
        best = np.argsort(-similarity, kind="stable")[:top_k]
        return [(found["ids"][i], float(similarity[i])) for i in best]


def _widening(first: int) -> list[int]:
    """How many unfiltered neighbours a filtered search asks for in turn: `first`, four times
    as many, and so on up to OVERFETCH_MOST; none when `first` is already more."""
    sizes = [first] if first <= OVERFETCH_MOST else []
    while sizes and sizes[-1] < OVERFETCH_MOST:
        sizes.append(min(sizes[-1] * 4, OVERFETCH_MOST))
    return sizes


def expected_node(chunk: Chunk, vector: list[float] | None = None):
    """The node stored for a chunk. Its source relationship makes llama-index write the
    article id into Chroma's `doc_id` metadata (else the string "None"), which `--doc` filters on."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    return TextNode(
        id_=chunk.id,
        text=chunk.text,
        embedding=vector,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        metadata=expected_metadata(chunk),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=chunk.article.id)},
    )


def stored_metadata(chunk: Chunk) -> dict:
    """What Chroma holds as a chunk's metadata: llama-index's flat node dict (its `_node_content`
    JSON with the text kept in it; None made "" as ChromaVectorStore does), less the flat copies
    of the node's metadata that nothing filters on.

    Chroma writes each key as a row of its SQLite metadata table, indexed by value: in a
    47k-chunk collection the whole dict's 17 keys cost ~1.6 ms a chunk of the writer's CPU, these
    7 ~1.1 ms (docs/benchmarks.md). The rest is in the node JSON, where llama-index and `records`
    read it; only a llama-index metadata filter on one of them finds nothing."""
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    node = expected_node(chunk)
    flat = node_to_metadata_dict(node, remove_text=False, flat_metadata=True)
    copies = node.metadata.keys() - set(FILTERED)
    return {key: "" if value is None else value for key, value in flat.items() if key not in copies}


def _read(metadata: dict | None, document: str | None) -> tuple[dict | None, str | None]:
    """A stored chunk's metadata and text. The metadata is the node JSON's under the flat keys
    (filters read those, so they win where the two differ): chunks stored without the flat
    copies read as whole as those stored with them. The text is Chroma's document (indexes
    built before the text moved into the node JSON) or the node JSON's."""
    if not metadata or "_node_content" not in metadata:
        return metadata, document
    try:
        node = json.loads(metadata["_node_content"])
        inner, text = node.get("metadata"), node.get("text")
    except (ValueError, AttributeError):  # damaged JSON reads as no text: check and repair see that
        inner, text = None, None
    return {**(inner if isinstance(inner, dict) else {}), **metadata}, text if document is None else document


def expected_metadata(chunk: Chunk) -> dict:
    """A chunk's metadata in Chroma: its article's, its span, and where the article came from
    (so a ledger can be rebuilt from Chroma with its paths)."""
    article = chunk.article
    return {**article.metadata(), "start": chunk.start, "end": chunk.end, "index": chunk.index,
            "path": article.path or "", "root": article.root or ""}


def _unreachable(exc: BaseException) -> bool:
    import httpx

    text = str(exc).lower()
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError)) or any(
        marker in text for marker in ("connection refused", "could not connect", "timed out", "connecterror"))
