"""Finds the passages that may answer a question (dense top-k; hybrid and filters come later)."""

from __future__ import annotations

import datetime as dt

from index.embedding import Embedder
from index.store import ChromaStore
from qa.citations import Passage


class Retriever:
    def __init__(self, embedder: Embedder, store: ChromaStore, top_k: int):
        self.embedder = embedder
        self.store = store
        self.top_k = top_k

    def search(self, question: str, top_k: int | None = None, as_of: dt.date | None = None) -> list[Passage]:
        if self.store.count() == 0:
            return []
        hits = self.store.query(self.embedder.embed_query(question), top_k or self.top_k)
        passages = [Passage.from_metadata(hit.id, hit.text, hit.metadata, hit.score) for hit in hits]
        return sorted(passages, key=lambda p: -p.score)
