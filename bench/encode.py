"""Raw encode of exactly the chunk texts `qa ingest` embeds, in a fresh process (a benchmark worker).

    .venv/bin/python bench/encode.py --backend torch|onnx|onnx-int8 --models DIR PATH...

The chunk texts are made by the project's own code, as index/pipeline.py `_write` makes them
(Loader → Chunker sized by the model's wordpieces → `Chunk.embedding_text()`); then the bare
model encodes them: `SentenceTransformer.encode(texts, batch_size=32, normalize_embeddings=True)`
for torch, `OnnxEncoder.encode(texts, 32)` for ONNX. Model loading is timed apart from encoding.
Prints one JSON line: chunks, load_seconds, chunk_seconds, encode_seconds.
With --prepare, only makes the ONNX files in DIR (export and quantization) and times that.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.chunking import Chunker  # noqa: E402
from index.documents import Article  # noqa: E402
from index.embedding import BACKENDS, Embedder  # noqa: E402
from index.loading import Loader  # noqa: E402
from qa.settings import Settings  # noqa: E402

RAW_BATCH_SIZE = 32  # sentence-transformers' own default: the yardstick, whatever QA_EMBED_BATCH_SIZE says


def chunk_texts(paths: list[str], settings: Settings, embedder: Embedder) -> list[str]:
    """The texts an ingest of `paths` into an empty data dir embeds, in its order."""
    chunker = Chunker(embedder.count_tokens, settings.chunk_size, settings.chunk_overlap, embedder.wordpieces)
    texts, seen = [], set()
    for item in Loader(max_file_mb=settings.max_file_mb).load(paths):
        if not isinstance(item, Article) or (item.root, item.id) in seen:
            continue  # failed or duplicate-id articles are not embedded by the ingest either
        seen.add((item.root, item.id))
        texts.extend(chunk.embedding_text() for chunk in chunker.split(item))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--backend", choices=[b for b in BACKENDS if b != "auto"], default="torch")
    parser.add_argument("--models", type=Path, required=True, help="where the ONNX files are (or are made)")
    parser.add_argument("--prepare", action="store_true", help="only make the ONNX files and time that")
    args = parser.parse_args()
    settings = Settings()
    embedder = Embedder(settings.embed_model, RAW_BATCH_SIZE, args.backend, args.models)

    began = time.perf_counter()
    model = embedder.model if args.backend == "torch" or args.prepare else None  # ONNX runs need no torch model
    torch_loaded = time.perf_counter()
    encoder = embedder._onnx if args.backend != "torch" else None  # exports and quantizes when DIR lacks the files
    loaded = time.perf_counter()
    if args.prepare:
        print(json.dumps({"backend": args.backend, "prepare_seconds": round(loaded - torch_loaded, 3)}))
        return
    texts = chunk_texts(args.paths, settings, embedder)
    chunked = time.perf_counter()
    if encoder is None:
        model.encode(texts, batch_size=RAW_BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
    else:
        encoder.encode(texts, RAW_BATCH_SIZE)
    encoded = time.perf_counter()
    print(json.dumps({"backend": args.backend, "chunks": len(texts), "load_seconds": round(loaded - began, 3),
                      "chunk_seconds": round(chunked - loaded, 3), "encode_seconds": round(encoded - chunked, 3)}))


if __name__ == "__main__":
    main()
