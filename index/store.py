"""The Chroma vector store, used through llama-index's ChromaVectorStore.

The collection records which embedding model built it; opening it with another model is
refused, because vectors from two models cannot be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from index.documents import Chunk
from qa.errors import EmbeddingMismatchError, StoreError

# llama-index turns Chroma's distance d into exp(-d); in cosine space d = 1 - cos.
COSINE_SPACE = {"hnsw:space": "cosine"}


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict
    score: float  # cosine similarity to the query


class ChromaStore:
    def __init__(self, data_dir: Path, collection: str, embed_model: str):
        self.path = Path(data_dir) / "chroma"
        self.collection_name = collection
        self.embed_model = embed_model

    @cached_property
    def _client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False)
        )

    def _collection(self, dimension: int | None = None):
        """The collection; created (recording the model) only when a dimension is given."""
        names = {c.name if hasattr(c, "name") else c for c in self._client.list_collections()}
        if self.collection_name not in names:
            if dimension is None:
                return None
            metadata = {**COSINE_SPACE, "embed_model": self.embed_model, "embed_dim": dimension}
            return self._client.create_collection(self.collection_name, metadata=metadata)
        collection = self._client.get_collection(self.collection_name)
        built_with = (collection.metadata or {}).get("embed_model")
        built_dim = (collection.metadata or {}).get("embed_dim")
        if built_with != self.embed_model or (dimension is not None and built_dim != dimension):
            raise EmbeddingMismatchError(
                f"the index in {self.path.parent} was built with embedding model {built_with!r} "
                f"({built_dim} dimensions), but QA_EMBED_MODEL is {self.embed_model!r}. Set "
                f"QA_EMBED_MODEL={built_with} to use this index, or point QA_DATA_DIR at a new "
                "folder and ingest again to build one with the new model."
            )
        return collection

    def _vector_store(self, dimension: int | None = None):
        from llama_index.vector_stores.chroma import ChromaVectorStore

        collection = self._collection(dimension)
        return None if collection is None else ChromaVectorStore(chroma_collection=collection)

    def check(self) -> None:
        """Raise EmbeddingMismatchError now rather than at the first query."""
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
        self._vector_store(len(embeddings[0])).add(nodes)

    def delete(self, chunk_ids: list[str]) -> None:
        store = self._vector_store()
        if store is not None and chunk_ids:
            store.delete_nodes(node_ids=list(chunk_ids))

    def count(self) -> int:
        collection = self._collection()
        return 0 if collection is None else collection.count()

    def query(self, embedding: list[float], top_k: int) -> list[StoredChunk]:
        from llama_index.core.vector_stores.types import VectorStoreQuery

        store = self._vector_store()
        if store is None:
            return []
        try:
            result = store.query(VectorStoreQuery(query_embedding=embedding, similarity_top_k=top_k))
        except Exception as exc:  # chromadb raises bare exceptions for dimension and I/O faults
            raise StoreError(f"querying the index in {self.path} failed: {exc}") from exc
        return [
            StoredChunk(
                id=node.node_id,
                text=node.get_content(),
                metadata=dict(node.metadata),
                score=1.0 + math.log(max(similarity, 1e-12)),
            )
            for node, similarity in zip(result.nodes, result.similarities)
        ]
