"""The Chroma vector store, used through llama-index's ChromaVectorStore.

Embedded (a PersistentClient in the data dir) by default, or a Chroma server (`QA_CHROMA_URL`).
The collection records which embedding model built it; opening it with another model is
refused, because vectors from two models cannot be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

from index.documents import Chunk
from qa.errors import BackendUnavailableError, EmbeddingMismatchError, StoreError

# llama-index turns Chroma's distance d into exp(-d); in cosine space d = 1 - cos.
COSINE_SPACE = {"hnsw:space": "cosine"}


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict
    score: float  # cosine similarity to the query


class ChromaStore:
    def __init__(self, data_dir: Path, collection: str, embed_model: str, url: str | None = None):
        self.path = Path(data_dir) / "chroma"
        self.collection_name = collection
        self.embed_model = embed_model
        self.url = url

    @property
    def where(self) -> str:
        return self.url or str(self.path)

    @cached_property
    def _client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.url:
            parsed = urlparse(self.url)
            try:
                client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                    ssl=parsed.scheme == "https", settings=settings,
                )
                client.heartbeat()
            except Exception as exc:  # chromadb raises bare ValueError/ConnectionError here
                raise BackendUnavailableError(
                    f"cannot reach the Chroma server at {self.url} ({exc}); start it or fix QA_CHROMA_URL"
                ) from exc
            return client
        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path), settings=settings)

    def _collection(self, dimension: int | None = None):
        """The collection; created (recording the model) only when a dimension is given."""
        names = {c.name if hasattr(c, "name") else c for c in self._client.list_collections()}
        if self.collection_name not in names:
            if dimension is None:
                return None
            metadata = {**COSINE_SPACE, "embed_model": self.embed_model, "embed_dim": dimension}
            return self._client.get_or_create_collection(self.collection_name, metadata=metadata)
        collection = self._client.get_collection(self.collection_name)
        built_with = (collection.metadata or {}).get("embed_model")
        built_dim = (collection.metadata or {}).get("embed_dim")
        if built_with != self.embed_model or (dimension is not None and built_dim != dimension):
            raise EmbeddingMismatchError(
                f"the index in {self.where} was built with embedding model {built_with!r} "
                f"({built_dim} dimensions), but QA_EMBED_MODEL is {self.embed_model!r}. Set "
                f"QA_EMBED_MODEL={built_with} to use this index, or point QA_DATA_DIR (or QA_COLLECTION) "
                "at a new one and ingest again to build it with the new model."
            )
        return collection

    def _vector_store(self, dimension: int | None = None):
        from llama_index.vector_stores.chroma import ChromaVectorStore

        collection = self._collection(dimension)
        return None if collection is None else ChromaVectorStore(chroma_collection=collection)

    def check(self) -> None:
        """Raise EmbeddingMismatchError (or BackendUnavailableError) now, not at the first query."""
        self._collection()

    def add(self, chunks: list[Chunk], embeddings: list[list[float]]) -> None:
        from llama_index.core.schema import TextNode

        if not chunks:
            return
        nodes = [
            TextNode(
                id_=chunk.id,
                text=chunk.text,
                embedding=vector,
                start_char_idx=chunk.start,
                end_char_idx=chunk.end,
                metadata={**chunk.article.metadata(), "start": chunk.start, "end": chunk.end, "index": chunk.index},
            )
            for chunk, vector in zip(chunks, embeddings)
        ]
        store = self._vector_store(len(embeddings[0]))
        batch = self._client.get_max_batch_size()  # the client's own limit, not llama-index's
        for offset in range(0, len(nodes), batch):
            store.add(nodes[offset : offset + batch])

    def delete(self, chunk_ids: list[str]) -> None:
        store = self._vector_store()
        if store is not None and chunk_ids:
            batch = self._client.get_max_batch_size()
            for offset in range(0, len(chunk_ids), batch):
                store.delete_nodes(node_ids=list(chunk_ids[offset : offset + batch]))

    def count(self) -> int:
        collection = self._collection()
        return 0 if collection is None else collection.count()

    def ids(self) -> set[str]:
        collection = self._collection()
        return set() if collection is None else set(collection.get(include=[])["ids"])

    def query(self, embedding: list[float], top_k: int, where: dict | None = None) -> list[StoredChunk]:
        from llama_index.core.vector_stores.types import VectorStoreQuery

        store = self._vector_store()
        if store is None:
            return []
        try:
            result = store.query(VectorStoreQuery(query_embedding=embedding, similarity_top_k=top_k), where=where or {})
        except Exception as exc:  # chromadb raises bare exceptions for dimension and I/O faults
            raise StoreError(f"querying the index in {self.where} failed: {exc}") from exc
        return [
            StoredChunk(
                id=node.node_id,
                text=node.get_content(),
                metadata=dict(node.metadata),
                score=1.0 + math.log(max(similarity, 1e-12)),
            )
            for node, similarity in zip(result.nodes, result.similarities)
        ]
