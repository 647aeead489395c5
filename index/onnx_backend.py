"""The embedding model run by onnxruntime, in fp32 or int8 (QA_EMBED_BACKEND=onnx / onnx-int8).

Why our own: sentence-transformers' ONNX backend needs `optimum`, whose pins downgrade the
transformers and huggingface-hub that sentence-transformers 6 and gradio 6 need. So the
transformer is exported with `torch.onnx.export`, quantized with `onnxruntime.quantization`,
and the pooling and normalisation of the sentence-transformers pipeline are done here in numpy.

The files are made once per model and kept in `QA_DATA_DIR/models/` under a key of the model's
folder and the recipe, so a changed model or recipe makes new ones; an int8 data dir keeps only
the int8 file. Int8 quantizes the weights
of the MatMuls and fused attention per output channel, after onnxruntime's BERT graph fusion,
and keeps the embedding tables (Gather) in fp32: quantizing those, per tensor, is what cost a
plain `quantize_dynamic` most of its accuracy (mean cosine to fp32 0.938 → 0.994).

The export uses transformers' eager attention, not its default SDPA: SDPA's traced graph (mask
arithmetic through Where/IsNaN) defeats onnxruntime's attention fusion, so attention stayed in
unfused fp32 ops (a fifth of the int8 run time in Where alone). Eager attention fuses into one
Attention op, quantized as QAttention: int8 25 % faster, fp32 ONNX ~15 %, the same vectors.

Recipe v5 (v3 and v4 had the first two of these) leaves fusions out where onnxruntime 1.32's CPU
kernel for the fused op is slower than its parts, and drops the attention mask (op profiles and
timings on 400 RealTime QA chunks):
- layer norms stay Add + LayerNormalization (SkipLayerNormalization took 17 % of the int8 run
  time, the two 4 %), and the feed-forward bias stays in the MatMul before Gelu (BiasGelu 9 %,
  Gelu 5.5 %): int8 1.19x faster than v2;
- attention is MultiHeadAttention with its Q, K and V projections as quantized MatMuls, and with
  no key padding mask, which lets onnxruntime run its CPU flash attention (one layer of 8 x 200
  tokens: 4.0 ms, 5.8 ms with a mask). A graph without a mask is only right for batches without
  padding, so `encode` batches texts of one token length together: 1.20x faster again, although
  the batches get smaller (~5 rows instead of 8).
The weights are quantized as in v2 (per output column, so Q, K and V alone or as QAttention's one
matrix are the same), so indexes keep "(int8 v2)": the vectors differ from v2's (mean cosine
0.998) less than v2's own vectors did between 8-row and 1-row batches (0.994), because each
MatMul quantizes its input per batch, padding included then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from index.model_card import ModelCard

# Rows per onnxruntime run, whatever the caller's batch: its arena keeps the largest activations
# it has seen (batch x tokens^2 for attention), so 32 rows of 256 tokens held ~600 MB more than
# 8 rows do, at the same speed on 2 cores (measured on 300 RealTime QA chunks).
ROWS_PER_RUN = 8
# Texts tokenized (and grouped by length) at a time, whatever the caller hands in: all 47,445
# chunks of the RealTime QA corpus at once held 2.7 GB of token lists (bench/encode.py).
TOKENIZED_AT_ONCE = 2048
# Batches run side by side, each on one core (the session's own thread count is 1), instead of
# each batch on all cores, where onnxruntime's threads split every op and wait (spinning) for
# each other at its end. Raw encode is about the same (1,000 RealTime QA articles, int8, 2 cores:
# 76 against 80 s, one run each), but work beside it, the ingest's own, no longer stalls it
# (index/pipeline.py), and `qa serve`'s concurrent questions no longer fight over the same spinning
# threads: 8 clients got 41 answers/s against 29 (bench/server.py, 300 articles).
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
QUEUED = 2 * CORES  # a caller's batches waiting or running at a time: the cores stay fed
RECIPE = "v5"  # bump when the export or quantization below changes: old files are not reused
VECTORS = "v2"  # what an int8 index records: bump when the weights' quantization changes (module docstring)
UNFUSED = ["SkipLayerNormFusion"]  # onnxruntime would fuse the layer norms again at load (module docstring)
OPSET = 17
MASK_INPUT = 4  # MultiHeadAttention's key_padding_mask (onnxruntime's contrib op schema)


class OnnxEncoder:
    """Transformer → Pooling (mean or CLS) → optional Normalize, as the sentence-transformers model does."""

    def __init__(self, card: ModelCard, cache_dir: Path, quantize: bool, model: Callable[[], Any]):
        """`model` loads the sentence-transformers model: only to make the file, the first time."""
        self.tokenizer = card.tokenizer
        self.max_tokens = card.max_seq_length
        self.pooling, self.normalize = card.pipeline()
        self.session = _session(_exported(card, model, cache_dir, quantize))
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str], batch_size: int = 32, known: list[list[int] | None] | None = None) -> np.ndarray:
        """`known`, where given, holds each text's input ids (special tokens included) or None:
        only the texts without are tokenized."""
        if not texts:
            return self.run([])
        return np.concatenate([
            self.run(self.tokenize(texts[start : start + TOKENIZED_AT_ONCE],
                                   known[start : start + TOKENIZED_AT_ONCE] if known else None), batch_size)
            for start in range(0, len(texts), TOKENIZED_AT_ONCE)
        ])

    def tokenize(self, texts: list[str], known: list[list[int] | None] | None = None) -> list[list[int]]:
        """Each text's input ids: the `known` ones as given, the others (None) from the tokenizer.
        On one thread at a time: a call may change the tokenizer's truncation settings."""
        tokens = list(known) if known else [None] * len(texts)
        missing = [i for i, ids in enumerate(tokens) if ids is None]
        if missing:
            made = self.tokenizer([texts[i] for i in missing], truncation=True, max_length=self.max_tokens)["input_ids"]
            for i, ids in zip(missing, made):
                tokens[i] = ids
        return tokens

    def run(self, tokens: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """The vectors of tokenized texts, in their order: the model's runs alone, from any thread."""
        if not tokens:
            return np.zeros((0, 0), dtype=np.float32)
        out: list[np.ndarray] = [None] * len(tokens)  # type: ignore[list-item]
        batches = list(_same_length(tokens, min(batch_size, ROWS_PER_RUN)))
        for batch, vectors in zip(batches, self._run_all([np.array([tokens[i] for i in b], dtype=np.int64) for b in batches])):
            for i, vector in zip(batch, vectors):
                out[i] = vector
        return np.stack(out)

    def _run_all(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Each batch's vectors, in order: a lone batch on the caller's thread, more on the cores,
        at most QUEUED at a time, so that another caller's batches (a question's sentences while
        an ingest embeds a pool of ~100 batches) wait behind a few of them, not behind them all."""
        if len(batches) == 1:
            return [self._encode_batch(batches[0])]
        runners, ahead, out = _runners(), deque(), []
        for batch in batches:
            ahead.append(runners.submit(self._encode_batch, batch))
            if len(ahead) >= QUEUED:
                out.append(ahead.popleft().result())
        return out + [future.result() for future in ahead]

    def _encode_batch(self, ids: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids}
        if "attention_mask" in self.inputs:  # the fp32 export's: all ones in a batch without padding
            feed["attention_mask"] = np.ones_like(ids)
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        pooled = hidden[:, 0] if self.pooling == "cls" else hidden.mean(axis=1)
        if self.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


def _same_length(tokens: list[list[int]], rows: int) -> Iterator[list[int]]:
    """Indexes of up to `rows` texts of one token length, longest first: batches without padding,
    so without a mask (the int8 graph takes none, module docstring) and no work on padding."""
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(tokens):
        by_length.setdefault(len(ids), []).append(i)
    for length in sorted(by_length, reverse=True):
        same = by_length[length]
        yield from (same[at : at + rows] for at in range(0, len(same), rows))


@cache
def _runners() -> ThreadPoolExecutor:
    """The threads that run batches, one a core, shared by every encoder in the process."""
    return ThreadPoolExecutor(max_workers=CORES, thread_name_prefix="onnx-run")


def _session(path: Path, profile_prefix: str | None = None):
    """An onnxruntime session whose runs each use one core (CORES); `profile_prefix` records each
    op's time (tests, studies)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False  # it plans for one input shape; ours change every batch
    options.intra_op_num_threads = 1  # and inter_op: the runs themselves are spread over the cores
    options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED)


def key_of(card: ModelCard) -> str:
    """The model's folder contents (names, sizes, times) and the recipe: a new model or recipe, new files."""
    source = card.source
    stats = []
    root = Path(source)
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                stats.append((str(path.relative_to(root)), stat.st_size, int(stat.st_mtime)))
    blob = json.dumps([source, stats, RECIPE, OPSET]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _exported(card: ModelCard, model: Callable[[], Any], cache_dir: Path, quantize: bool) -> Path:
    """The model file for this model and recipe, made when missing. For int8 the fp32 export is
    only a step: it is removed once quantized (90 of a new data dir's 150 MB), and made again
    (~5 s) only if a torch index's server wants it for its questions."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = key_of(card)
    fp32 = cache_dir / f"{key}-fp32.onnx"
    int8 = cache_dir / f"{key}-int8.onnx"
    if quantize and int8.exists():
        return int8
    if not fp32.exists():
        _export(model(), fp32)
    if not quantize:
        return fp32
    try:
        _quantize(model(), fp32, int8)
    except Exception:
        if not int8.exists():  # else another process quantized it, and removed the fp32 file under this one
            raise
    fp32.unlink(missing_ok=True)
    return int8


def _private(target: Path, kind: str) -> Path:
    """A work file of this process and thread only: two exporting at once (`qa serve` and `qa
    ingest` on a new data dir, or one server's two encoders) must not write into each other's;
    each renames its finished file over the target, and the two are the same."""
    return target.with_name(f"{target.stem}.{os.getpid()}-{threading.get_ident()}.{kind}")


def _export(model, target: Path) -> None:
    import torch

    transformer = model[0].auto_model.eval()
    names = ["input_ids", "attention_mask"]
    sample = model.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    if "token_type_ids" in sample:
        names.append("token_type_ids")

    class Hidden(torch.nn.Module):  # the last hidden state only, from keyword inputs in a fixed order
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    partial = _private(target, "partial")
    config = transformer.config
    attention = getattr(config, "_attn_implementation", None)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the model's Python branches: expected
        try:
            if attention is not None:
                config._attn_implementation = "eager"  # fusable (module docstring); read at each forward
            torch.onnx.export(Hidden(transformer), tuple(sample[n] for n in names), str(partial),
                              input_names=names, output_names=["hidden"],
                              dynamic_axes={**axes, "hidden": {0: "batch", 1: "tokens"}},
                              opset_version=OPSET, dynamo=False)
            os.replace(partial, target)  # a crash mid-export leaves no half file under the real name
        finally:
            if attention is not None:
                config._attn_implementation = attention  # the torch model in this process is shared
            partial.unlink(missing_ok=True)


def _quantize(model, source: Path, target: Path) -> None:
    """Fuse the BERT graph (attention, GELU; not with the layer norms or biases), drop the attention
    mask, then int8 weights per output channel (module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    config = model[0].auto_model.config
    fused = _private(target, "fused")
    partial = _private(target, "partial")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's root-logger advice to pre-process: not for this graph
    try:
        fusions = FusionOptions("bert")
        fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = False  # slower (module docstring)
        fusions.enable_bias_gelu = False
        fusions.use_multi_head_attention = True  # Q, K, V as MatMuls: MultiHeadAttention can do without a mask
        graph = optimizer.optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, optimization_options=fusions)
        for node in graph.get_nodes_by_op_type("MultiHeadAttention"):
            if len(node.input) > MASK_INPUT:
                node.input[MASK_INPUT] = ""  # batches have no padding (`encode`)
        graph.prune_graph()  # the mask's computation, and the graph input if nothing else reads it
        graph.save_model_to_file(str(fused))
        quantize_dynamic(str(fused), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"],  # attention's Q, K and V are MatMuls too
                         extra_options={"DefaultTensorType": 1})  # FLOAT, for the fused ops' outputs
        os.replace(partial, target)
    finally:
        root.setLevel(level)
        fused.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
