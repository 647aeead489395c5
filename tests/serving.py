"""A real `qa serve` process for the UI, API and browser tests: one per test module."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import QA_BIN, SEEDS, free_port, qa_env


@contextmanager
def qa_serve(folder: Path, **settings: str) -> Iterator[str]:
    """Serves a fresh data dir in `folder` on a free loopback port; `settings` are extra QA_* variables."""
    env = qa_env(QA_DATA_DIR=folder / "data", **settings)
    port = free_port()
    log = folder / "serve.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([QA_BIN, "serve", "--port", str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        if process.poll() is not None:
            pytest.fail(f"qa serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"qa serve did not come up: {log.read_text()}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def ingest_seeds(url: str, **headers: str) -> None:
    """The seed article, ingested through the server's own API (the model is loaded there already)."""
    files = [("files", (p.name, p.read_bytes(), "text/plain")) for p in sorted(SEEDS.iterdir())]
    response = httpx.post(f"{url}/api/ingest", files=files, headers=headers, timeout=300)
    assert response.status_code == 200 and response.json()["added"] == 1, response.text
