"""Property-based: random add / change / delete / re-ingest / restart sequences keep the store
equal to a simple model (as Chroma tests itself, with a hypothesis state machine)."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from qa.service import QAService
from qa.settings import Settings

NAMES = [f"art{i}.txt" for i in range(5)]
WORDS = ["river", "mayor", "budget", "stadium", "ferry", "orchard", "strike", "vaccine", "comet", "tariff"]
texts = st.lists(st.sampled_from(WORDS), min_size=3, max_size=40).map(lambda ws: "The " + " ".join(ws) + " story.")


class IngestMachine(RuleBasedStateMachine):
    embedder = None  # set by the test, shared across examples

    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="qa-model-"))
        self.folder = self.tmp / "articles"
        self.folder.mkdir()
        self.files: dict[str, str] = {}  # what is on disk
        self.model: dict[str, str] = {}  # what the store should hold after the last ingest
        self.service = self._open()

    def _open(self) -> QAService:
        return QAService(Settings(data_dir=self.tmp / "data", chunk_size=48, chunk_overlap=8), embedder=self.embedder)

    @rule(name=st.sampled_from(NAMES), text=texts)
    def write_file(self, name, text):
        (self.folder / name).write_text(f"Title {name}\n{text}", encoding="utf-8")
        self.files[name] = text

    @rule(name=st.sampled_from(NAMES))
    def remove_file(self, name):
        if name in self.files:
            (self.folder / name).unlink()
            del self.files[name]

    @rule(prune=st.booleans())
    def ingest(self, prune):
        report = self.service.ingest([self.folder], prune=prune)
        assert report.count("failed") == (0 if self.files else 1)  # an empty folder is reported
        if prune and self.files:  # an empty folder fails, and --prune then removes nothing
            self.model = dict(self.files)
        else:
            self.model.update(self.files)

    @rule(name=st.sampled_from(NAMES))
    def delete_document(self, name):
        if name in self.model:
            self.service.delete(name)
            del self.model[name]

    @rule()
    def restart(self):
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # a new process would open the files afresh
        self.service = self._open()

    @invariant()
    def store_equals_model(self):
        documents = {d["id"]: self.service.document(d["id"]) for d in self.service.documents()}
        assert set(documents) == set(self.model)
        for name, text in self.model.items():
            assert documents[name]["text"] == text
        live = self.service.ledger.all_chunk_ids()
        stored = self.service.store.ids()
        assert stored == live  # no orphans, nothing missing, no duplicates
        assert self.service.store.count() == sum(len(d["chunk_ids"]) for d in documents.values())

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_ingest_state_machine(embedder):
    IngestMachine.embedder = embedder
    machine = IngestMachine.TestCase
    machine.settings = settings(max_examples=12, stateful_step_count=10, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
    machine().runTest()
