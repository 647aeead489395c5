"""Optional cross-encoder reranking (`QA_RERANK_MODEL`): any sentence-transformers CrossEncoder.

Off by default: no reranker ships offline here, and it costs a model pass per passage.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

from qa.citations import Passage
from qa.errors import ConfigError


class CrossEncoderReranker:
    def __init__(self, model_name: str):
        self.model_name = model_name

    @cached_property
    def model(self):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.model_name, device="cpu")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load reranker {self.model_name!r} ({exc}); fix QA_RERANK_MODEL or unset it") from exc

    def rerank(self, question: str, passages: list[Passage]) -> list[Passage]:
        if not passages:
            return passages
        scores = self.model.predict([(question, f"{p.title}\n{p.text}") for p in passages], show_progress_bar=False)
        reranked = [
            replace(p, why={**(p.why or {}), "rerank": round(float(s), 4)}, score=round(float(s), 5))
            for p, s in zip(passages, scores)
        ]
        return sorted(reranked, key=lambda p: -p.score)
