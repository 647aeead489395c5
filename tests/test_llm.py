"""The openai and llamacpp backends against a real model: a tiny random-weight GGUF written
here, served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1, and loaded in
process. It writes nonsense, so these tests check the protocol, streaming, timeouts, errors,
and that the nonsense is flagged as unsupported."""

from __future__ import annotations

import json
import subprocess

import pytest

from qa.citations import Answer
from qa.conversation import Turn
from qa.errors import BackendUnavailableError, ConfigError
from qa.llm.base import import_extra
from qa.llm.llamacpp import LlamaCppBackend
from qa.llm.openai_compatible import OpenAICompatibleBackend
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import QA_BIN, SEED_ID, qa_env
from tests.llm_fixtures import API_KEY, LlamaServer, free_port, write_gguf

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who met in Tokyo?"}]
LIMITS = dict(timeout=30.0, max_retries=0, max_tokens=16)


@pytest.fixture(scope="module")
def gguf_model(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def llama_server(gguf_model, tmp_path_factory):
    server = LlamaServer(gguf_model, tmp_path_factory.mktemp("llama-server") / "server.log")
    yield server
    server.stop()


def llm_service(seeded, embedder, **overrides) -> QAService:
    """A service over the seeded index that answers with an LLM."""
    settings = Settings(**{**seeded.settings.model_dump(), "top_k": 3, "llm_max_tokens": 48, **overrides})
    return QAService(settings, embedder=embedder)


@pytest.fixture(scope="module")
def openai_service(seeded, embedder, llama_server):
    return llm_service(seeded, embedder, llm="openai", llm_base_url=llama_server.base_url, llm_api_key=API_KEY, llm_model="tiny")


def assert_quotes_exact(service, answer):
    text = service.document(SEED_ID)["text"]
    for c in answer.citations:
        assert text[c.start : c.end] == c.quote


# --- the model and the protocol ------------------------------------------------------------

def test_the_model_is_tiny(gguf_model):
    assert gguf_model.stat().st_size < 1_000_000


def test_openai_backend_streams_and_completes_over_http(llama_server):
    backend = OpenAICompatibleBackend(llama_server.base_url, API_KEY, "tiny", **LIMITS)
    deltas = list(backend.stream(MESSAGES))
    text = "".join(deltas)
    assert len(deltas) > 1 and text.strip() and text.isascii()
    assert backend.complete(MESSAGES) == text  # temperature 0: greedy, so the same text


def test_concurrent_streams_both_finish(llama_server):
    backend = OpenAICompatibleBackend(llama_server.base_url, API_KEY, "tiny", **LIMITS)
    first, second = backend.stream(MESSAGES), backend.stream(MESSAGES)
    a, b = [next(first)], [next(second)]
    a += list(first)
    b += list(second)
    assert "".join(a) == "".join(b) and len(a) > 1


# --- answers from it ----------------------------------------------------------------------

def test_nonsense_is_answered_but_flagged_unsupported(openai_service):
    answer = openai_service.ask(SEED_QUESTION)
    assert answer.backend == "openai" and not answer.abstained
    assert answer.sentences and not any(s.supported for s in answer.sentences)
    assert answer.grounded == 0.0
    assert not any(c.supported for c in answer.citations)
    assert_quotes_exact(openai_service, answer)


def test_streaming_gives_deltas_then_the_same_answer_as_without(openai_service):
    *deltas, final = openai_service.ask_stream(SEED_QUESTION)
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas) and isinstance(final, Answer)
    whole = openai_service.ask(SEED_QUESTION)
    assert (final.answer, final.citations, final.sentences, final.grounded) == (
        whole.answer, whole.citations, whole.sentences, whole.grounded
    )


def test_passages_that_do_not_answer_mean_abstaining_without_asking_the_model(seeded, embedder):
    # Nothing listens at this address: an abstention proves the model was never asked.
    service = llm_service(seeded, embedder, llm="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="tiny")
    answer = service.ask("What is the recipe for sourdough bread?")
    assert answer.abstained and answer.citations == [] and answer.backend == "openai"
    with pytest.raises(BackendUnavailableError):
        service.ask(SEED_QUESTION)


def test_a_follow_up_the_model_rewrites_into_nonsense_falls_back_to_the_rule(openai_service):
    history = [Turn("What did Nobuo Kishi say about Taiwan?", "Nobuo Kishi also mentioned the same point [1].")]
    answer = openai_service.ask("What did he say next?", history=history)
    assert answer.question == "What did he say next?"
    assert answer.standalone_question == "What did Nobuo Kishi say next?"
    assert "rewrite" in answer.timings_ms


# --- errors -------------------------------------------------------------------------------

def test_a_wrong_key_names_the_setting(llama_server):
    backend = OpenAICompatibleBackend(llama_server.base_url, "wrong-key", "tiny", **LIMITS)
    with pytest.raises(ConfigError, match="QA_LLM_API_KEY"):
        backend.complete(MESSAGES)


def test_a_missing_model_name_names_the_setting():
    with pytest.raises(ConfigError, match="QA_LLM_MODEL"):
        OpenAICompatibleBackend("http://127.0.0.1:1/v1", "", "", **LIMITS)


def test_a_slow_server_times_out_naming_the_setting(llama_server):
    backend = OpenAICompatibleBackend(llama_server.base_url, API_KEY, "tiny", **{**LIMITS, "timeout": 0.001})
    with pytest.raises(BackendUnavailableError, match="QA_LLM_TIMEOUT"):
        backend.complete(MESSAGES)


def test_a_server_that_dies_mid_stream_and_then_is_gone(gguf_model, tmp_path):
    server = LlamaServer(gguf_model, tmp_path / "server.log")
    backend = OpenAICompatibleBackend(server.base_url, API_KEY, "tiny", **{**LIMITS, "max_tokens": 4000})
    try:
        stream = backend.stream(MESSAGES)
        assert next(stream)
        server.kill()
        with pytest.raises(BackendUnavailableError):
            for _ in stream:
                pass
    finally:
        server.stop()
    with pytest.raises(BackendUnavailableError, match="QA_LLM_BASE_URL"):
        backend.complete(MESSAGES)


def test_fallback_to_extractive_only_when_configured_and_never_silently(seeded, embedder):
    gone = dict(llm="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="tiny")
    answer = llm_service(seeded, embedder, **gone, llm_fallback="extractive").ask(SEED_QUESTION)
    assert answer.backend == "extractive" and not answer.abstained
    assert "QA_LLM_BASE_URL" in answer.warnings[0] and "QA_LLM_FALLBACK=extractive" in answer.warnings[0]
    with pytest.raises(BackendUnavailableError, match="QA_LLM_BASE_URL"):
        llm_service(seeded, embedder, **gone).ask(SEED_QUESTION)


def test_a_missing_extra_is_named():
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[llamacpp\]'"):
        import_extra("no_such_module_here", "llamacpp", "llamacpp")


# --- llamacpp: the same file, in process ---------------------------------------------------

def test_llamacpp_backend_runs_the_same_file_in_process(seeded, embedder, gguf_model):
    service = llm_service(seeded, embedder, llm="llamacpp", llm_model_path=str(gguf_model), llm_context_size=8192)
    *deltas, answer = service.ask_stream(SEED_QUESTION)
    assert len(deltas) > 1 and answer.backend == "llamacpp"
    assert answer.sentences and answer.grounded == 0.0
    assert answer.answer == service.ask(SEED_QUESTION).answer


def test_llamacpp_errors_name_the_setting(gguf_model, tmp_path):
    with pytest.raises(ConfigError, match="QA_LLM_MODEL_PATH"):
        LlamaCppBackend(str(tmp_path / "missing.gguf"), 4096, **LIMITS)
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(ConfigError, match="QA_LLM_MODEL_PATH"):
        LlamaCppBackend(str(tmp_path / "bad.gguf"), 4096, **LIMITS).complete(MESSAGES)
    small = LlamaCppBackend(str(gguf_model), 256, **LIMITS)
    with pytest.raises(ConfigError, match="QA_LLM_CONTEXT_SIZE"):
        small.complete([{"role": "user", "content": "Who met in Tokyo? " * 40}])


# --- the command line ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def llm_env(seeded, llama_server):
    return {
        **qa_env(QA_DATA_DIR=seeded.settings.data_dir), "QA_LLM": "openai", "QA_TOP_K": "3",
        "QA_LLM_BASE_URL": llama_server.base_url, "QA_LLM_API_KEY": API_KEY, "QA_LLM_MODEL": "tiny", "QA_LLM_MAX_TOKENS": "48",
    }


def qa(*args, env, input=None):
    return subprocess.run([QA_BIN, *args], env=env, capture_output=True, text=True, timeout=300, input=input)


def test_cli_ask_json_carries_the_checks(llm_env):
    result = qa("ask", SEED_QUESTION, "--json", env=llm_env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["backend"] == "openai" and answer["grounded"] == 0.0
    assert answer["sentences"] and all(s["supported"] is False and s["reason"] for s in answer["sentences"])
    assert {"removed_markers", "warnings"} <= set(answer)
    assert all("supported" in c for c in answer["citations"])


def test_cli_ask_streams_and_flags_unsupported_sentences(llm_env):
    result = qa("ask", SEED_QUESTION, "--stream", env=llm_env)
    assert result.returncode == 0, result.stderr
    assert "Unsupported (0% of the claims are supported by their sources):" in result.stdout
    assert "✗" in result.stdout


def test_cli_names_the_setting_when_the_server_is_gone(llm_env):
    result = qa("ask", SEED_QUESTION, env={**llm_env, "QA_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "QA_LLM_BASE_URL" in result.stderr


def test_cli_chat_rewrites_a_follow_up_by_rule_for_the_extractive_answerer(seeded):
    env = qa_env(QA_DATA_DIR=seeded.settings.data_dir)
    result = qa("chat", "--json", env=env, input="What did Nobuo Kishi mention about Taiwan?\nWhat did he say next?\n")
    assert result.returncode == 0, result.stderr
    first, second = map(json.loads, result.stdout.splitlines())
    assert first["standalone_question"] is None
    assert second["question"] == "What did he say next?" and second["standalone_question"] == "What did Nobuo Kishi say next?"
