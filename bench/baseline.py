"""The path a user would otherwise write, in a fresh process (a benchmark worker):
llama-index's `VectorStoreIndex.from_documents` with its defaults into a Chroma collection.

    .venv/bin/python bench/baseline.py --data-dir DIR --questions FILE PATH...

Defaults, as a user gets them: the SentenceSplitter of llama-index's Settings (1,024 tiktoken
tokens, 200 overlap), the metadata (title, date, outlet) embedded with each node, and
`HuggingFaceEmbedding` (llama-index-embeddings-huggingface; embed_batch_size 10) around the
same bundled all-MiniLM-L6-v2, which cuts each node to its 256-wordpiece window. When that
package is missing, a BaseEmbedding subclass around our SentenceTransformer with the same
batch size stands in, and the result says so. The time covers what our ingest's does: model
load, reading the articles, splitting, embedding and writing. Then hit@10 on the questions:
the gold article among the first 10 distinct articles of the retriever's top 50 nodes.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_index.core.embeddings import BaseEmbedding  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

from index.documents import Article  # noqa: E402
from index.embedding import resolve_model  # noqa: E402
from index.loading import Loader  # noqa: E402
from qa.settings import Settings  # noqa: E402

TOP_NODES = 50  # enough nodes for 10 distinct articles: a 1,024-token node is most of an article


def embedding_model(path: str):
    """llama-index's own HuggingFaceEmbedding when installed; else a stand-in with the same defaults."""
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError:
        return StandInEmbedding(path), "StandInEmbedding (llama-index-embeddings-huggingface is not installed)"
    return HuggingFaceEmbedding(model_name=path, device="cpu"), "HuggingFaceEmbedding"


class StandInEmbedding(BaseEmbedding):
    """What HuggingFaceEmbedding does for this model: normalised vectors, embed_batch_size (10) at a time."""

    _model = PrivateAttr()

    def __init__(self, model_path: str):
        from sentence_transformers import SentenceTransformer

        super().__init__(model_name=model_path)
        self._model = SentenceTransformer(model_path, device="cpu")

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, batch_size=self.embed_batch_size, normalize_embeddings=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def build(paths: list[str], data_dir: Path):
    import chromadb
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    began = time.perf_counter()
    embed_model, embedding = embedding_model(resolve_model(Settings().embed_model))
    loaded = time.perf_counter()
    documents = [
        Document(id_=a.id, text=a.text, metadata={"title": a.title, "published": a.published or "", "source": a.source or ""})
        for a in Loader().load(paths) if isinstance(a, Article)
    ]
    client = chromadb.PersistentClient(str(data_dir), chromadb.Settings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("baseline"))
    index = VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=embed_model)
    done = time.perf_counter()
    return index, {"embedding": embedding, "documents": len(documents), "nodes": store._collection.count(),
                   "seconds": round(done - began, 3), "load_seconds": round(loaded - began, 3)}


def hit_at_10(index, questions: list[dict]) -> float:
    retriever = index.as_retriever(similarity_top_k=TOP_NODES)
    hits = 0
    for q in questions:
        articles = list(dict.fromkeys(n.node.ref_doc_id for n in retriever.retrieve(q["question"])))[:10]
        hits += bool(set(articles) & set(q["evidence_doc_ids"]))
    return hits / len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--questions", type=Path, help="JSON list of {question, evidence_doc_ids}; hit@10 when given")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    index, result = build(args.paths, args.data_dir)
    questions = [q for q in json.loads(args.questions.read_text()) if q["evidence_doc_ids"]] if args.questions else []
    if questions:
        result.update({"hit@10": round(hit_at_10(index, questions), 4), "questions": len(questions)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
