"""Follow-up questions rewritten by rule (the extractive answerer's way) and by a model."""

import pytest

from qa.conversation import FollowUpRewriter, Turn
from qa.errors import BackendUnavailableError
from qa.llm.ollama_native import OllamaBackend
from tests.llm_fixtures import FakeOllamaServer, free_port

HISTORY = [Turn("Did Nobuo Kishi meet Lloyd Austin?", "Defense Minister Nobuo Kishi and U.S. Defense Secretary Austin met on the 16th [1].")]


@pytest.mark.parametrize(
    "follow_up, standalone",
    [
        ("What did he say next?", "What did Nobuo Kishi say next?"),
        ("What was his view on Taiwan?", "What was Nobuo Kishi’s view on Taiwan?"),
        ("Where was it held?", "Where was it held? (Did Nobuo Kishi meet Lloyd Austin?)"),
        ("Why?", "Why? (Did Nobuo Kishi meet Lloyd Austin?)"),
        ("What did the think tank report say about missiles?", "What did the think tank report say about missiles?"),
    ],
)
def test_the_rule_resolves_what_a_follow_up_refers_to(follow_up, standalone):
    assert FollowUpRewriter().rewrite(follow_up, HISTORY) == standalone


WHO_HISTORY = [Turn("Who is Japan's Foreign Minister?",
                    "Secretary of State Blinken, Japanese Foreign Minister Toshichika Mogi and Defense "
                    "Minister Nobuo Kishi attended the 2+2 meeting. [1]")]


def test_after_a_who_question_he_is_the_person_the_answer_named():
    assert FollowUpRewriter().rewrite("What did he say they had confirmed?", WHO_HISTORY) == \
        "What did Toshichika Mogi say they had confirmed?"


def test_a_question_with_words_of_its_own_borrows_nothing_and_borrowed_context_does_not_nest():
    history = [Turn("Who compiled it? (What is the name of the annual report?)", "The Defense Research Institute [1].")]
    asked = "What kind of missiles does it say China has deployed?"
    assert FollowUpRewriter().rewrite(asked, history) == asked
    assert FollowUpRewriter().rewrite("Where is it?", history) == "Where is it? (Who compiled it?)"


def test_a_first_question_is_left_alone():
    assert FollowUpRewriter().rewrite("What did he say next?", []) == "What did he say next?"


@pytest.fixture(scope="module")
def fake():
    server = FakeOllamaServer()
    yield server
    server.stop()


def model_rewriter(fake, reply: str) -> FollowUpRewriter:
    fake.reply = reply
    return FollowUpRewriter(OllamaBackend(fake.url, "tiny", 4096, timeout=10.0, max_retries=0, max_tokens=64))


def test_a_model_rewrite_is_used_when_it_stays_on_the_conversation(fake):
    rewriter = model_rewriter(fake, "Rewritten question: “What did Nobuo Kishi say after meeting Austin?”\n")
    assert rewriter.rewrite("What did he say next?", HISTORY) == "What did Nobuo Kishi say after meeting Austin?"


@pytest.mark.parametrize("reply", ["lvvvvvvvvvvvvv", "Sure! " + "blah " * 200])
def test_a_rewrite_that_wanders_off_is_replaced_by_the_rule(fake, reply):
    assert model_rewriter(fake, reply).rewrite("What did he say next?", HISTORY) == "What did Nobuo Kishi say next?"


def test_an_unreachable_model_rewrites_by_rule_only_when_fallback_is_configured():
    gone = OllamaBackend(f"http://127.0.0.1:{free_port()}", "tiny", 4096, timeout=10.0, max_retries=0, max_tokens=64)
    assert FollowUpRewriter(gone, fallback=True).rewrite("What did he say next?", HISTORY) == "What did Nobuo Kishi say next?"
    with pytest.raises(BackendUnavailableError, match="QA_OLLAMA_URL"):
        FollowUpRewriter(gone).rewrite("What did he say next?", HISTORY)
