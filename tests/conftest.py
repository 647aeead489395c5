"""Shared fixtures: the real bundled embedding model, loaded once; real Chroma in tmp dirs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from index.embedding import Embedder
from qa.service import QAService
from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ID = "000_816be8fe4ddfb075.txt"
QA_BIN = str(Path(sys.executable).parent / "qa")
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored
# `qa` processes export the model to ONNX (int8 for new indexes, fp32 for a server's questions):
# once per machine and recipe, shared through QA_MODELS_DIR, not once per test's data dir.
MODELS = Path(tempfile.gettempdir()) / f"qa-test-models-{os.getuid()}"


def qa_env(**settings) -> dict:
    """Environment for a `qa` subprocess: none of the caller's QA_* settings, offline, the shared
    model exports, then `settings` (QA_* variables, QA_DATA_DIR among them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", QA_MODELS_DIR=str(MODELS), **{k: str(v) for k, v in settings.items()})
    return env


def record_fuzz_counts(tried: dict[str, int]) -> None:
    """Inputs tried by each fuzzer: printed, and appended to test-artifacts/fuzz.txt for docs/reliability.md."""
    if tried:
        ARTIFACTS.mkdir(exist_ok=True)
        lines = [f"{name}: {count} inputs" for name, count in sorted(tried.items())]
        with open(ARTIFACTS / "fuzz.txt", "a", encoding="utf-8") as log:
            log.write("\n".join(lines) + "\n")
        print("\n" + "\n".join(lines))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """Torch, named: in-process services share it across data dirs, so it cannot settle "auto"
    per index. `qa` subprocesses (qa_env) run the default, auto, which builds int8 indexes."""
    return Embedder(Settings().embed_model, backend="torch")


@pytest.fixture(scope="session")
def int8_embedder(embedder) -> Embedder:
    """What a `qa` subprocess embeds a new index with (auto → onnx-int8, from the shared MODELS),
    for in-process readers of such an index; the loaded model is shared."""
    int8 = Embedder(embedder.model_name, backend="onnx-int8", cache_dir=MODELS)
    int8.model = embedder.model
    return int8


def as_qa_runs(settings: Settings, embedder: Embedder) -> QAService:
    """A service with its own embedder, as `qa` builds one (QA_EMBED_BACKEND=auto settles by the
    index), that reuses `embedder`'s loaded model instead of loading it again."""
    service = QAService(settings)
    service.embedder.model = embedder.model
    return service


@pytest.fixture
def make_service(tmp_path, embedder):
    """A service over a fresh data dir, sharing the loaded model."""

    def make(name: str = "data", **overrides) -> QAService:
        return QAService(Settings(data_dir=tmp_path / name, **overrides), embedder=embedder)

    return make


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, embedder) -> QAService:
    """A service with seeds/ ingested; read-only for the tests that use it."""
    service = QAService(Settings(data_dir=tmp_path_factory.mktemp("seeded")), embedder=embedder)
    report = service.ingest([SEEDS])
    assert report.count("added") == 1
    return service


@pytest.fixture
def cli_env(tmp_path) -> dict:
    """Environment for `qa` subprocesses: its own data dir, offline."""
    # A wide terminal for rich's tables: long tmp paths would otherwise wrap mid-name.
    return {**qa_env(QA_DATA_DIR=tmp_path / "cli-data"), "COLUMNS": "250"}


NEWS_PAGE = """<html><head><title>Storm hits coast - Example News</title>
<link rel="canonical" href="https://www.example.com/2022/03/04/storm">
<meta property="og:site_name" content="Example News"><meta name="author" content="Jane Roe">
<meta property="article:published_time" content="2022-03-04T10:00:00Z"></head>
<body><nav>Home | World | Sport</nav><article><h1>Storm hits coast</h1>
<p>The storm hit the coast on Friday and knocked out power to thousands of homes across the region, officials said.</p>
<p>Repairs to the grid would take several days, the utility company warned in a statement on Saturday morning.</p>
</article><footer>Copyright 2022 Example News. All rights reserved.</footer></body></html>"""


@pytest.fixture(scope="session")
def news_site():
    """A real HTTP server on loopback serving NEWS_PAGE at /storm (404 elsewhere)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == "/storm"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(NEWS_PAGE.encode() if found else b"")

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on loopback, for the server-mode tests."""
    import subprocess
    import time

    import httpx

    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = open(path / "server.log", "w")
    chroma = str(Path(sys.executable).parent / "chroma")
    process = subprocess.Popen([chroma, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"chroma run did not start: {(path / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(params=["embedded", "server"])
def store_mode(request) -> dict:
    """Settings overrides for each way of storing vectors; the server test starts `chroma run`."""
    if request.param == "embedded":
        return {}
    return {"chroma_url": request.getfixturevalue("chroma_server"), "collection": f"t{abs(hash(request.node.nodeid)) % 10**8}"}


def copy_seeds(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for file in SEEDS.iterdir():
        shutil.copy(file, target / file.name)
    return target
