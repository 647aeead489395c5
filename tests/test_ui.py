"""`qa serve` for real: the page loads and the Gradio API answers the seed question."""

import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import QA_BIN, SEEDS

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_DATA_DIR=str(tmp_path_factory.mktemp("ui") / "data"), HF_HUB_OFFLINE="1")
    subprocess.run([QA_BIN, "ingest", SEEDS], env=env, check=True, capture_output=True, timeout=300)
    port = free_port()
    log = tmp_path_factory.mktemp("ui-log") / "serve.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([QA_BIN, "serve", "--port", str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"qa serve exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"qa serve did not come up: {log.read_text()}")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_page_loads_on_loopback(server):
    page = httpx.get(server, timeout=10)
    assert page.status_code == 200 and "<title>News QA</title>" in page.text or "News QA" in page.text


def test_gradio_api_answers_with_citations(server):
    from gradio_client import Client

    answer_html, sources_html = Client(server, verbose=False).predict(SEED_QUESTION, 5, api_name="/ask")
    assert "peace and stability in the Taiwan Strait" in answer_html
    assert 'href="#cite-1">[1]</a>' in answer_html
    assert 'id="cite-1"' in sources_html and "<mark>" in sources_html and "Japan-U.S. Defense Secretary" in sources_html


def test_empty_question_shows_an_error_not_a_traceback(server):
    from gradio_client import Client

    with pytest.raises(Exception) as info:
        Client(server, verbose=False).predict("  ", 5, api_name="/ask")
    assert "empty" in str(info.value) and "Traceback" not in str(info.value)
