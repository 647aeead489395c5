"""Shared fixtures: the real bundled embedding model, loaded once; real Chroma in tmp dirs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from index.embedding import Embedder
from qa.service import QAService
from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ID = "000_816be8fe4ddfb075.txt"
QA_BIN = str(Path(sys.executable).parent / "qa")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(Settings().embed_model)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_DATA_DIR=str(tmp_path / "cli-data"), HF_HUB_OFFLINE="1")
    return env


def copy_seeds(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for file in SEEDS.iterdir():
        shutil.copy(file, target / file.name)
    return target
