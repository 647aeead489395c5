"""`qa serve` for real, behind QA_AUTH: the login, the Gradio API (gradio_client), what Gradio serves."""

from __future__ import annotations

import httpx
import pytest

from tests.serving import ingest_seeds, qa_serve

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
LOGIN = ("tester", "s3cret")
BASIC = {"Authorization": "Basic dGVzdGVyOnMzY3JldA=="}  # tester:s3cret


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui")
    with qa_serve(folder, QA_AUTH=":".join(LOGIN)) as url:
        ingest_seeds(url, **BASIC)  # without QA_API_TOKEN, the API takes the UI's login as basic auth
        yield url, folder


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], auth=LOGIN, verbose=False)


def test_the_ui_asks_for_a_login(server):
    assert httpx.get(server[0] + "/", timeout=10).status_code == 200  # the login page
    assert httpx.get(server[0] + "/config", timeout=10).status_code == 401  # the app itself, not before the login
    assert httpx.post(server[0] + "/login", data={"username": "tester", "password": "wrong"}, timeout=10).status_code == 400
    assert httpx.get(server[0] + "/api/documents", timeout=10).status_code == 401


def test_gradio_api_answers_with_citations(client):
    answer_html, sources_html = client.predict(SEED_QUESTION, 5, api_name="/ask")
    assert "peace and stability in the Taiwan Strait" in answer_html
    assert 'href="#cite-1">[1]</a>' in answer_html
    assert 'id="cite-1"' in sources_html and "<mark>" in sources_html and "Japan-U.S. Defense Secretary" in sources_html
    assert '<span class="badge ok">supported</span>' in sources_html


def test_the_chat_endpoint_streams_and_keeps_the_conversation(client):
    job = client.submit(SEED_QUESTION, 5, None, None, [], "extractive", None, api_name="/chat")
    updates = list(job)
    chat, sources, question_box = job.outputs()[-1]
    assert len(updates) >= 2  # "searching…", the text, then the cited answer
    assert '<div class="turn" id="turn-1">' in chat and 'href="#cite-1-1">[1]</a>' in chat and "as of " in chat
    assert 'id="cite-1-1"' in sources and "<mark>" in sources


def test_empty_question_shows_an_error_not_a_traceback(client):
    with pytest.raises(Exception) as info:
        client.predict("  ", 5, api_name="/ask")
    assert "empty" in str(info.value) and "Traceback" not in str(info.value)


def test_gradio_serves_no_file_outside_its_cache(server):
    with httpx.Client(base_url=server[0], timeout=10) as browser:
        assert browser.post("/login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        assert browser.get("/config").status_code == 200  # logged in
        for path in ("/etc/passwd", str(server[1] / "data" / "ledger.sqlite"), str(server[1] / "serve.log")):
            response = browser.get(f"/gradio_api/file={path}")
            assert response.status_code in (403, 404), path
            assert "root:" not in response.text
