"""The hf backend on a tiny random LlamaForCausalLM saved with its tokenizer to a tmp folder."""

from __future__ import annotations

import pytest

from qa.errors import ConfigError
from qa.llm.hf import TransformersBackend
from qa.service import QAService
from qa.settings import Settings
from tests.llm_fixtures import write_hf_model

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who met in Tokyo?"}]
LIMITS = dict(timeout=60.0, max_retries=0, max_tokens=16)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return write_hf_model(tmp_path_factory.mktemp("hf-model"))


def test_streams_and_completes_the_same_text(hf_folder):
    backend = TransformersBackend(str(hf_folder), **LIMITS)
    text = "".join(backend.stream(MESSAGES))
    assert text.strip() and text.isascii()
    assert backend.complete(MESSAGES) == text  # greedy


def test_answers_through_the_service_and_flags_nonsense(seeded, embedder, hf_folder):
    settings = Settings(**{**seeded.settings.model_dump(), "llm": "hf", "llm_model_path": str(hf_folder), "top_k": 2, "llm_max_tokens": 24})
    answer = QAService(settings, embedder=embedder).ask("What did the 2+2 statement say about Taiwan?")
    assert answer.backend == "hf" and answer.sentences and answer.grounded == 0.0


def test_a_missing_folder_or_chat_template_names_the_problem(hf_folder, tmp_path):
    with pytest.raises(ConfigError, match="QA_LLM_MODEL_PATH"):
        TransformersBackend(str(tmp_path / "missing"), **LIMITS)
    with pytest.raises(ConfigError, match="QA_LLM_MODEL_PATH"):
        TransformersBackend(str(tmp_path), **LIMITS).complete(MESSAGES)
    (hf_folder / "chat_template.jinja").rename(tmp_path / "template")
    try:
        with pytest.raises(ConfigError, match="no chat template"):
            TransformersBackend(str(hf_folder), **LIMITS).complete(MESSAGES)
    finally:
        (tmp_path / "template").rename(hf_folder / "chat_template.jinja")
