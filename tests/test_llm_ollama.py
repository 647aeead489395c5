"""The ollama backend against FakeOllamaServer, since no real Ollama can run here; also the
retries, timeouts and checked citations of LLM answers, with replies written to be right."""

from __future__ import annotations

import pytest

from qa.citations import Answer
from qa.conversation import FollowUpRewriter, Turn
from qa.errors import BackendBusyError, BackendUnavailableError, ConfigError
from qa.llm.ollama_native import OllamaBackend
from qa.service import QAService
from qa.settings import Settings
from tests.conftest import SEED_ID
from tests.llm_fixtures import FakeOllamaServer, free_port

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
MESSAGES = [{"role": "user", "content": "Who met in Tokyo?"}]
LIMITS = dict(timeout=10.0, max_retries=2, max_tokens=64, backoff_s=0.01)


@pytest.fixture
def fake():
    server = FakeOllamaServer()
    yield server
    server.stop()


def backend(url: str, model: str = "tiny", **limits) -> OllamaBackend:
    return OllamaBackend(url, model, context_size=4096, **{**LIMITS, **limits})


def ollama_service(seeded, embedder, url: str, **overrides) -> QAService:
    settings = Settings(**{**seeded.settings.model_dump(), "llm": "ollama", "ollama_url": url, "llm_model": "tiny",
                           "top_k": 3, **overrides})
    return QAService(settings, embedder=embedder)


def test_streams_over_the_native_api(fake):
    deltas = list(backend(fake.url).stream(MESSAGES))
    assert deltas == ["Kishi", " and", " Austin", " met", " [1]."]
    [request] = fake.requests
    assert request["path"] == "/api/chat" and request["stream"] is True and request["messages"] == MESSAGES
    assert request["options"]["temperature"] == 0.0 and request["options"]["num_predict"] == 64


def test_an_unknown_model_names_the_setting(fake):
    with pytest.raises(ConfigError, match="QA_LLM_MODEL") as caught:
        backend(fake.url, model="no-such-model").complete(MESSAGES)
    assert "not found" in str(caught.value)


def test_429_and_5xx_are_retried_with_backoff(fake):
    fake.statuses = [429, 503]
    assert backend(fake.url).complete(MESSAGES) == "Kishi and Austin met [1]."
    assert len(fake.requests) == 3


def test_retries_give_up_naming_the_setting(fake):
    fake.statuses = [500, 502, 503]
    with pytest.raises(BackendBusyError, match="QA_LLM_MAX_RETRIES=1"):
        backend(fake.url, max_retries=1).complete(MESSAGES)
    assert len(fake.requests) == 2


def test_an_unreachable_server_names_the_setting():
    with pytest.raises(BackendUnavailableError, match="QA_OLLAMA_URL"):
        backend(f"http://127.0.0.1:{free_port()}").complete(MESSAGES)


def test_a_stalled_stream_times_out_naming_the_setting():
    slow = FakeOllamaServer(delay_s=1.0)
    try:
        with pytest.raises(BackendUnavailableError, match="QA_LLM_TIMEOUT"):
            backend(slow.url, timeout=0.3).complete(MESSAGES)
    finally:
        slow.stop()


def test_a_missing_model_name_names_the_setting():
    with pytest.raises(ConfigError, match="QA_LLM_MODEL"):
        OllamaBackend("http://127.0.0.1:1", "", 4096, **LIMITS)


# --- answers with written replies: right, wrong and out-of-range citations -------------------

def cited(seeded, phrase: str) -> int:
    """The number the prompt gives the retrieved passage holding `phrase`."""
    passages = seeded.search(SEED_QUESTION, top_k=3)
    return next(n for n, p in enumerate(passages, start=1) if phrase in p.text)


def test_a_right_answer_is_grounded_and_its_quotes_are_exact(seeded, embedder, fake):
    n = cited(seeded, "the importance of peace and stability")
    fake.reply = f"The joint statement stressed “the importance of peace and stability in the Taiwan Strait.” [{n}]"
    answer = ollama_service(seeded, embedder, fake.url).ask(SEED_QUESTION)
    assert answer.backend == "ollama" and not answer.abstained and answer.grounded == 1.0
    [citation] = answer.citations
    assert citation.n == n and citation.supported
    text = seeded.document(SEED_ID)["text"]
    assert text[citation.start : citation.end] == citation.quote and "peace and stability" in citation.quote
    # The prompt carried the fenced passages and the as-of date.
    prompt = fake.requests[-1]["messages"]
    assert "Today is" in prompt[0]["content"] and "<<<BEGIN PASSAGE 1>>>" in prompt[1]["content"]


def test_a_wrong_and_an_out_of_range_citation_are_flagged(seeded, embedder, fake):
    n = cited(seeded, "anti-ship ballistic missiles")
    fake.reply = (f"The statement stressed peace and stability in the Taiwan Strait [{n}]. "
                  f"China deployed anti-ship ballistic missiles [{n}][7]. ![x](https://evil.example/p.png)")
    answer = ollama_service(seeded, embedder, fake.url).ask(SEED_QUESTION)
    assert [s.supported for s in answer.sentences] == [False, True] and answer.grounded == 0.5
    assert answer.removed_markers == 1 and "[7]" not in answer.answer and "evil" not in answer.answer
    assert not answer.citations[0].supported  # one of the claims citing it is not what it says
    assert any("pointing at no passage" in w for w in answer.warnings)


def test_streaming_resolves_the_same_citations(seeded, embedder, fake):
    n = cited(seeded, "the importance of peace and stability")
    fake.reply = f"The statement stressed peace and stability in the Taiwan Strait [{n}]. Nothing else [9]."
    service = ollama_service(seeded, embedder, fake.url)
    *deltas, streamed = service.ask_stream(SEED_QUESTION)
    assert "".join(deltas) == fake.reply and isinstance(streamed, Answer)
    whole = service.ask(SEED_QUESTION)
    assert streamed.citations == whole.citations and streamed.citations
    assert (streamed.answer, streamed.sentences, streamed.grounded) == (whole.answer, whole.sentences, whole.grounded)


def test_a_model_that_says_the_sources_do_not_answer_abstains(seeded, embedder, fake):
    fake.reply = "The sources do not answer this question."
    answer = ollama_service(seeded, embedder, fake.url).ask(SEED_QUESTION)
    assert answer.abstained and answer.citations == [] and answer.grounded == 1.0


def test_the_model_rewrites_a_follow_up(fake):
    fake.reply = "What did Nobuo Kishi say after the 2+2 meeting?"
    history = [Turn("Who attended the 2+2 meeting?", "Nobuo Kishi and Lloyd Austin attended [1].")]
    rewritten = FollowUpRewriter(backend(fake.url)).rewrite("What did he say next?", history)
    assert rewritten == "What did Nobuo Kishi say after the 2+2 meeting?"
    assert "Who attended the 2+2 meeting?" in fake.requests[-1]["messages"][1]["content"]


def test_fallback_is_named_in_a_warning(seeded, embedder):
    service = ollama_service(seeded, embedder, f"http://127.0.0.1:{free_port()}", llm_fallback="extractive")
    *deltas, answer = service.ask_stream(SEED_QUESTION)
    assert answer.backend == "extractive" and deltas == [answer.answer]
    assert "QA_OLLAMA_URL" in answer.warnings[0] and "QA_LLM_FALLBACK=extractive" in answer.warnings[0]
