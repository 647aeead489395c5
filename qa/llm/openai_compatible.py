"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server, LM Studio, Ollama's /v1),
through llama-index's OpenAILike."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property

from qa.errors import BackendUnavailableError, ConfigError
from qa.llm.base import LLMBackend, Message, http_error, import_extra

# Local servers ignore the key, but the client refuses to start without one.
NO_KEY = "no-key"


class OpenAICompatibleBackend(LLMBackend):
    name = "openai"

    def __init__(self, base_url: str, api_key: str, model: str, **limits):
        super().__init__(**limits)
        if not model:
            raise ConfigError("QA_LLM=openai needs a model: set QA_LLM_MODEL (e.g. gpt-4o-mini, or the name your server serves)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "") or NO_KEY
        self.model = model

    @property
    def where(self) -> str:
        return f"the OpenAI-compatible server at {self.base_url} (QA_LLM_BASE_URL)"

    @cached_property
    def llm(self):
        openai_like = import_extra("llama_index.llms.openai_like", "openai", self.name)
        return openai_like.OpenAILike(
            model=self.model, api_base=self.base_url, api_key=self.api_key, is_chat_model=True,
            temperature=0.0, max_tokens=self.max_tokens, timeout=self.timeout,
            max_retries=0,  # retries live in LLMBackend, once
        )

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        import openai
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        try:
            for chunk in self.llm.stream_chat(chat):
                yield chunk.delta or ""
        except openai.APITimeoutError as exc:
            raise BackendUnavailableError(f"{self.where} did not answer within {self.timeout:g} s; raise QA_LLM_TIMEOUT") from exc
        except openai.APIConnectionError as exc:
            raise BackendUnavailableError(f"cannot reach {self.where}: {exc.__cause__ or exc}; check QA_LLM_BASE_URL") from exc
        except openai.APIStatusError as exc:
            retry_after = _seconds(exc.response.headers.get("retry-after"))
            raise http_error(exc.status_code, exc.message, self.where, self.model, "QA_LLM_MODEL", retry_after) from exc


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff applies instead
