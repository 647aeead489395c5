"""The JSON API and the OpenAI-compatible /v1 of a real `qa serve`, with httpx and the official openai client."""

from __future__ import annotations

import json

import httpx
import pytest

from index.pipeline import WriteLock
from tests.conftest import SEED_ID, free_port
from tests.serving import ingest_seeds, qa_serve

TOKEN = "api-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
LIGHTHOUSE = (
    "Harbor town restores lighthouse\n\nThe town of Port Ellery reopened its 1870 lighthouse on Saturday after a "
    "two-year restoration.\n\nMayor Linnea Okafor said the lamp would be lit every evening from May to October.\n"
)
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    # A 50 KB upload limit, and an LLM server address where nothing listens.
    settings = dict(QA_API_TOKEN=TOKEN, QA_MAX_FILE_MB="0.05", QA_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
                    QA_LLM_MODEL="nothing-here", QA_LLM_TIMEOUT="5")
    with qa_serve(folder, **settings) as url:
        ingest_seeds(url, **AUTH)
        yield url, folder / "data"


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server[0], headers=AUTH, timeout=120) as client:
        yield client


def test_health_needs_no_token_and_counts_the_corpus(server):
    health = httpx.get(f"{server[0]}/api/health", timeout=10).json()
    assert health["status"] == "ok" and health["articles"] >= 1 and health["embed_model"] == "all-MiniLM-L6-v2"
    assert health["backend"] == "extractive"
    # a new data dir is built in int8 (QA_EMBED_BACKEND=auto), and its questions are embedded the same way
    assert health["embed_backend"] == "onnx-int8" and health["question_encoder"] == "onnxruntime int8"


@pytest.mark.parametrize("path", ["/api/documents", "/v1/models"])
def test_everything_else_needs_the_token(server, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(server[0] + path, headers=headers, timeout=10)
        assert response.status_code == 401 and "QA_API_TOKEN" in response.text and "Traceback" not in response.text


def test_ask_answers_with_citations_that_point_into_the_article(api):
    answer = api.post("/api/ask", json={"question": SEED_QUESTION}).json()
    assert "[1]" in answer["answer"] and "peace and stability in the Taiwan Strait" in answer["answer"]
    citation = answer["citations"][0]
    text = api.get(f"/api/documents/{citation['doc_id']}").json()["text"]
    assert text[citation["start"] : citation["end"]] == citation["quote"] and citation["supported"] is True


def test_ask_streams_server_sent_events(api):
    events = []
    with api.stream("POST", "/api/ask", json={"question": SEED_QUESTION, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for block in response.read().decode().split("\n\n"):
            if block.strip():
                kind, data = block.split("\n", 1)
                events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"}
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    assert streamed == events[-1][1]["answer"] and events[-1][1]["citations"][0]["n"] == 1


def test_a_follow_up_is_rewritten_from_the_history(api):
    first = api.post("/api/ask", json={"question": "Who attended the 2+2 meeting in Tokyo?"}).json()
    history = [{"question": first["question"], "answer": first["answer"]}]
    answer = api.post("/api/ask", json={"question": "And what did they say about China?", "history": history}).json()
    assert answer["standalone_question"] and answer["standalone_question"] != "And what did they say about China?"


def test_search_returns_the_retrieval_with_its_filters(api):
    found = api.post("/api/search", json={"question": "Taiwan Strait", "top_k": 2}).json()
    assert 1 <= len(found["passages"]) <= 2 and found["passages"][0]["doc_id"] == SEED_ID
    none = api.post("/api/search", json={"question": "Taiwan Strait", "filters": {"since": "2099-01-01"}}).json()
    assert none["passages"] == [] and none["filters"]["since"] == "2099-01-01"


def test_errors_are_json_with_the_message_never_a_traceback(api):
    empty = api.post("/api/ask", json={"question": "   "})
    assert empty.status_code == 422 and "the question is empty" in empty.json()["error"]
    missing = api.get("/api/documents/no-such-article")
    assert missing.status_code == 404 and "no stored article" in missing.json()["error"]
    assert api.delete("/api/documents/no-such-article").status_code == 404
    # The openai backend with nothing listening: the setting to fix is named.
    down = api.post("/api/ask", json={"question": SEED_QUESTION, "backend": "openai"})
    assert down.status_code in (400, 503) and "QA_LLM" in down.json()["error"]
    for response in (empty, missing, down):
        assert "Traceback" not in response.text


def test_upload_ingest_read_and_delete(api):
    report = api.post("/api/ingest", files=[("files", ("lighthouse.txt", LIGHTHOUSE.encode(), "text/plain"))]).json()
    assert report["added"] == 1 and report["results"][0]["source"] == "lighthouse.txt" and report["encoder_seconds"] > 0
    assert "lighthouse.txt" in [d["id"] for d in api.get("/api/documents").json()]
    article = api.get("/api/documents/lighthouse.txt").json()
    assert article["title"] == "Harbor town restores lighthouse" and "Port Ellery" in article["text"]
    answer = api.post("/api/ask", json={"question": "When is the Port Ellery lamp lit?"}).json()
    assert any(c["doc_id"] == "lighthouse.txt" for c in answer["citations"])
    assert api.delete("/api/documents/lighthouse.txt").json() == {"deleted": "lighthouse.txt"}
    assert api.get("/api/documents/lighthouse.txt").status_code == 404


def test_ingest_by_url_and_filter_by_its_source(api, news_site):
    url = f"{news_site}/storm"
    report = api.post("/api/ingest", data={"urls": [url]}).json()
    assert report["added"] == 1 and report["results"][0]["doc_id"] == url
    only = api.post("/api/search", json={"question": "power outage storm", "filters": {"sources": ["example.com"]}}).json()
    assert only["passages"] and {p["doc_id"] for p in only["passages"]} == {url}
    assert api.delete(f"/api/documents/{url}").status_code == 200


def test_only_http_urls_and_files_under_the_size_limit(api):
    bad = api.post("/api/ingest", data={"urls": ["file:///etc/passwd"]})
    assert bad.status_code == 400 and "not an http(s) URL" in bad.json()["error"]
    big = api.post("/api/ingest", files=[("files", ("big.txt", b"Big\n\n" + b"word " * 20_000, "text/plain"))])
    assert big.status_code == 413 and "QA_MAX_FILE_MB" in big.json()["error"]


def test_a_second_writer_is_told_who_holds_the_lock(api, server):
    with WriteLock(server[1]):  # this test process is the other writer
        response = api.post("/api/ingest", files=[("files", ("lighthouse.txt", LIGHTHOUSE.encode(), "text/plain"))])
        assert response.status_code == 409 and "another qa process" in response.json()["error"]
        assert api.delete(f"/api/documents/{SEED_ID}").status_code == 409
    assert SEED_ID in [d["id"] for d in api.get("/api/documents").json()]


def test_openapi_docs_describe_the_api(server):
    docs = httpx.get(f"{server[0]}/api/docs", timeout=10)
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    # the Swagger UI assets come from this server, so the page renders without internet
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/static-docs/{asset}" in docs.text
        assert httpx.get(f"{server[0]}/api/static-docs/{asset}", timeout=10).status_code == 200
    paths = httpx.get(f"{server[0]}/api/openapi.json", timeout=10).json()["paths"]
    assert {"/api/ask", "/api/search", "/api/ingest", "/api/documents", "/v1/chat/completions"} <= set(paths)


# -- /v1 with the official OpenAI client ---------------------------------------------------------


@pytest.fixture(scope="module")
def openai_client(server):
    import openai  # in the dev extra: a missing install must fail, not skip
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key=TOKEN, max_retries=0, timeout=120)


def test_openai_models_and_a_cited_completion(openai_client):
    assert [m.id for m in openai_client.models.list()] == ["news-qa"]
    completion = openai_client.chat.completions.create(model="news-qa", messages=[{"role": "user", "content": SEED_QUESTION}])
    text = completion.choices[0].message.content
    assert "[1]" in text and "\n\nSources:\n[1] Japan-U.S. Defense Secretary" in text
    citations = completion.model_extra["citations"]
    assert citations[0]["n"] == 1 and "peace and stability" in citations[0]["quote"]


def test_openai_streaming_keeps_the_citations(openai_client):
    chunks = list(openai_client.chat.completions.create(
        model="news-qa", stream=True, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEED_QUESTION}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "[1]" in text and "Sources:" in text
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["citations"][0]["n"] == 1


def test_openai_follow_up_and_errors(openai_client):
    import openai

    messages = [{"role": "user", "content": "Who attended the 2+2 meeting in Tokyo?"}]
    first = openai_client.chat.completions.create(model="news-qa", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "And what did they say about China?"}]
    follow_up = openai_client.chat.completions.create(model="news-qa", messages=messages)
    assert follow_up.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="news-qa", messages=[{"role": "assistant", "content": "hi"}])
    assert "no" in str(info.value) and "Traceback" not in str(info.value)
