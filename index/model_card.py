"""What the ONNX backends need of a sentence-transformers model, read from its folder.

Loading the model itself imports torch, transformers and sentence-transformers: ~6 s of a
`qa ask` on 2 cores, more than the rest of it together. An ONNX index needs none of them once
its model file is made (index/onnx_backend.py), only the tokenizer, the length, the prompts and
the pooling. So a folder in the usual layout (Transformer at the root with a `tokenizer.json`,
then Pooling, then an optional Normalize) is read here with the `tokenizers` library, and used
once it has been checked against the loaded model (`agrees`, once per model: index/embedding.py
records it beside the ONNX files); any other model, and the export itself, load the model
(`card_of_model`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import ConfigError

MODULES = "sentence_transformers.models."  # the type names modules.json gives them


@dataclass(frozen=True)
class ModelCard:
    source: str  # the model's folder (or name): the ONNX files are made per source
    tokenizer: Any  # transformers' tokenizer, or Tokenizer below: the calls used are the same
    max_seq_length: int
    dimension: int
    modules: tuple[str, ...]  # the pipeline, by module type: Transformer, Pooling, ...
    pooling_mode: str | None  # Pooling's mode, where the second module is one
    prompts: dict[str, str] = field(default_factory=dict)

    def pipeline(self) -> tuple[str, bool]:
        """The pooling mode and whether vectors are normalised, for the ONNX backend, which
        refuses other pipelines."""
        modules = self.modules
        if not modules or modules[0] != "Transformer" or len(modules) < 2 or modules[1] != "Pooling" or \
                any(name != "Normalize" for name in modules[2:]):
            raise ConfigError(f"the ONNX embedding backend handles Transformer + Pooling (+ Normalize) models, "
                              f"not {' + '.join(modules)}; set QA_EMBED_BACKEND=torch")
        if self.pooling_mode not in ("mean", "cls"):
            raise ConfigError(f"the ONNX embedding backend handles mean or CLS pooling, not {self.pooling_mode!r}; "
                              "set QA_EMBED_BACKEND=torch")
        return self.pooling_mode, len(modules) > 2


def card_of_model(model) -> ModelCard:
    """The card of a loaded SentenceTransformer."""
    modules = tuple(type(m).__name__ for m in model)
    mode = model[1].get_config_dict().get("pooling_mode") if len(modules) > 1 and modules[1] == "Pooling" else None
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    transformer = getattr(model[0], "auto_model", None)
    return ModelCard(source=str(getattr(getattr(transformer, "config", None), "_name_or_path", "")),
                     tokenizer=model.tokenizer, max_seq_length=int(model.max_seq_length), dimension=int(method()),
                     modules=modules, pooling_mode=mode, prompts=model.prompts if model.prompts is not None else {})


def read_card(source: str) -> ModelCard | None:
    """The card from the model's files, without loading it; None where the folder is not in the
    layout read here (the caller loads the model instead)."""
    root = Path(source)
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].removeprefix(MODULES) for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or modules[0]["path"] != "" or \
                any(kind != "Normalize" for kind in kinds[2:]):
            return None
        config = json.loads((root / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling = json.loads((root / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        extra = root / "config_sentence_transformers.json"
        prompts = (json.loads(extra.read_text(encoding="utf-8")).get("prompts") or {}) if extra.exists() else {}
        if config.get("do_lower_case") or not (root / "tokenizer.json").exists():
            return None  # sentence-transformers would lower-case the text itself; or no fast tokenizer
        modes = [mode for mode in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                                   "lasttoken") if pooling.get(f"pooling_mode_{mode}")]
        if modes not in (["cls_token"], ["mean_tokens"]):
            return None  # the loaded model names it in the ONNX backend's refusal
        return ModelCard(source=source, tokenizer=Tokenizer(root), max_seq_length=int(config["max_seq_length"]),
                         dimension=int(pooling["word_embedding_dimension"]), modules=tuple(kinds),
                         pooling_mode=modes[0].removesuffix("_token").removesuffix("_tokens"), prompts=dict(prompts))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


# Texts whose tokenization must agree with the loaded model's before a folder's card is used:
# accents, CJK, emoji, odd spaces and punctuation, numbers, and one long enough to be cut.
SAMPLES = ["Zürich’s “odd” title — 北京, 3.14% 😀 naïve café… U.S.A.\u00a0e-mail\u200b #tag @user http://x.co/a_b",
           "Running, the town's mayor said: \"no.\" Dr. Smith’s re-election (2022) cost $1,200,000; half-way\tthere?!",
           "unbelievably counterintuitive antidisestablishmentarianism photosynthesis " * 40, ""]


def agrees(card: ModelCard, loaded: ModelCard) -> bool:
    """Whether a folder's card is the loaded model's: the same pipeline, length, prompts (empty
    ones aside: sentence-transformers adds those) and special tokens, and SAMPLES tokenized alike.
    Checked once per model (the caller records it), since transformers may set a tokenizer up
    otherwise than its tokenizer.json says."""
    theirs = loaded.tokenizer
    return (card.modules, card.pooling_mode, card.dimension, card.max_seq_length, _said(card.prompts),
            card.tokenizer.cls_token_id, card.tokenizer.sep_token_id) == \
        (loaded.modules, loaded.pooling_mode, loaded.dimension, loaded.max_seq_length, _said(loaded.prompts),
         theirs.cls_token_id, theirs.sep_token_id) and \
        [card.tokenizer.tokenize(t) for t in SAMPLES] == [theirs.tokenize(t) for t in SAMPLES] and \
        card.tokenizer(SAMPLES, max_length=card.max_seq_length)["input_ids"] == \
        theirs(SAMPLES, truncation=True, max_length=card.max_seq_length)["input_ids"]


def _said(prompts: dict[str, str]) -> dict[str, str]:
    return {name: text for name, text in prompts.items() if text}


class Tokenizer:
    """The calls the ONNX path makes on transformers' tokenizer, over the model's tokenizer.json.
    tokenizer.json may carry its own truncation and padding (all-MiniLM-L6-v2's cut at 128 and
    pad); transformers sets both on each call, and so does this."""

    def __init__(self, root: Path):
        from tokenizers import Tokenizer as Rust

        self.backend_tokenizer = Rust.from_file(str(root / "tokenizer.json"))
        self.backend_tokenizer.no_padding()
        self.backend_tokenizer.no_truncation()
        self._cut = copy.deepcopy(self.backend_tokenizer)
        special = json.loads((root / "special_tokens_map.json").read_text(encoding="utf-8"))
        self.cls_token_id = self._id(special, "cls_token")
        self.sep_token_id = self._id(special, "sep_token")

    def _id(self, special: dict, name: str) -> int | None:
        token = special.get(name)
        token = token.get("content") if isinstance(token, dict) else token
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    def tokenize(self, text: str) -> list[str]:
        return self.backend_tokenizer.encode(text, add_special_tokens=False).tokens

    def __call__(self, texts: str | list[str], truncation: bool = True, max_length: int | None = None) -> dict:
        """{"input_ids": ...} with the special tokens, cut to `max_length`; one text or a list."""
        if truncation and max_length:
            self._cut.enable_truncation(max_length)
        else:
            self._cut.no_truncation()
        if isinstance(texts, str):
            return {"input_ids": self._cut.encode(texts).ids}
        return {"input_ids": [encoding.ids for encoding in self._cut.encode_batch(texts)]}
