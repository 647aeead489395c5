"""LLM backends, chosen by QA_LLM. Each implements one streaming method (qa/llm/base.py)."""

from __future__ import annotations

from qa.errors import ConfigError
from qa.llm.base import LLMBackend, Message
from qa.settings import Settings

__all__ = ["LLMBackend", "Message", "make_backend"]


def make_backend(settings: Settings) -> LLMBackend:
    """The configured backend; cheap: no model is loaded and no server is called here."""
    limits = dict(timeout=settings.llm_timeout, max_retries=settings.llm_max_retries, max_tokens=settings.llm_max_tokens)
    if settings.llm == "openai":
        from qa.llm.openai_compatible import OpenAICompatibleBackend

        return OpenAICompatibleBackend(
            settings.llm_base_url, settings.llm_api_key.get_secret_value(), settings.llm_model, **limits
        )
    if settings.llm == "ollama":
        from qa.llm.ollama_native import OllamaBackend

        return OllamaBackend(settings.ollama_url, settings.llm_model, settings.llm_context_size, **limits)
    if settings.llm == "llamacpp":
        from qa.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend(settings.llm_model_path, settings.llm_context_size, **limits)
    if settings.llm == "hf":
        from qa.llm.hf import TransformersBackend

        return TransformersBackend(settings.llm_model_path, **limits)
    raise ConfigError(f"QA_LLM={settings.llm} is not an LLM backend")
