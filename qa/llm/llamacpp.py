"""A GGUF model run in this process by llama-cpp-python (the `llamacpp` extra)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from qa.errors import ConfigError
from qa.llm.base import LLMBackend, Message, import_extra


class LlamaCppBackend(LLMBackend):
    name = "llamacpp"

    def __init__(self, model_path: str, context_size: int, **limits):
        super().__init__(**limits)
        self.path = Path(model_path).expanduser()
        if not model_path or not self.path.is_file():
            raise ConfigError(f"QA_LLM=llamacpp needs a .gguf file: set QA_LLM_MODEL_PATH (now {model_path!r})")
        self.context_size = context_size
        # One llama.cpp context serves one request at a time.
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the GGUF model {self.path} (QA_LLM_MODEL_PATH)"

    @cached_property
    def llm(self):
        llama_cpp = import_extra("llama_cpp", "llamacpp", self.name)
        try:
            return llama_cpp.Llama(model_path=str(self.path), n_ctx=self.context_size, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load {self.path} as a GGUF model ({exc}); set QA_LLM_MODEL_PATH") from exc

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        with self._lock:
            try:
                chunks = self.llm.create_chat_completion(
                    messages=messages, stream=True, max_tokens=self.max_tokens, temperature=0.0
                )
                for chunk in chunks:
                    yield chunk["choices"][0]["delta"].get("content") or ""
            except ValueError as exc:  # llama-cpp-python's word for a prompt longer than the context
                raise ConfigError(
                    f"{self.where}: {exc}; raise QA_LLM_CONTEXT_SIZE or lower QA_TOP_K"
                ) from exc
