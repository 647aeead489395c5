"""Ollama's native /api/chat, through llama-index's Ollama integration."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from qa.errors import BackendUnavailableError, ConfigError
from qa.llm.base import LLMBackend, Message, http_error, import_extra


class OllamaBackend(LLMBackend):
    name = "ollama"

    def __init__(self, url: str, model: str, context_size: int, **limits):
        super().__init__(**limits)
        if not model:
            raise ConfigError("QA_LLM=ollama needs a model: set QA_LLM_MODEL to one `ollama list` shows (e.g. llama3.2)")
        self.url = url.rstrip("/")
        self.model = model
        self.context_size = context_size

    @property
    def where(self) -> str:
        return f"the Ollama server at {self.url} (QA_OLLAMA_URL)"

    @cached_property
    def llm(self):
        ollama = import_extra("llama_index.llms.ollama", "ollama", self.name)
        return ollama.Ollama(
            model=self.model, base_url=self.url, request_timeout=self.timeout, temperature=0.0,
            context_window=self.context_size,  # given, so no /api/show round trip
            additional_kwargs={"num_predict": self.max_tokens},
        )

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        import httpx
        import ollama
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        try:
            for chunk in self.llm.stream_chat(chat):
                yield chunk.delta or ""
        except ollama.ResponseError as exc:
            if exc.status_code < 0:  # an error sent inside the stream
                raise BackendUnavailableError(f"{self.where} failed: {exc.error}") from exc
            raise http_error(exc.status_code, exc.error, self.where, self.model, "QA_LLM_MODEL") from exc
        except ConnectionError as exc:  # what the ollama client raises when nothing listens
            raise BackendUnavailableError(f"cannot reach {self.where}; is `ollama serve` running? check QA_OLLAMA_URL") from exc
        except httpx.TimeoutException as exc:
            raise BackendUnavailableError(f"{self.where} did not answer within {self.timeout:g} s; raise QA_LLM_TIMEOUT") from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"{self.where} failed: {exc}; check QA_OLLAMA_URL") from exc
