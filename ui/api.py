"""The JSON API under /api: ask (JSON, or server-sent events), search, ingest, documents, health.

Every handler calls the one QAService the UI uses. Errors are JSON (`{"error": ...}`), mapped
from the QAError tree by ui/server.py.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from pydantic import AfterValidator, BaseModel, Field

from index.pipeline import FileResult
from qa.citations import Answer, Passage
from qa.conversation import Turn
from qa.errors import QAError
from qa.question import checked_day, checked_question
from qa.retrieve import Filters
from qa.settings import Settings
from ui.gate import Gate, GatedStream

Backend = Settings.model_fields["llm"].annotation  # the QA_LLM choices: extractive, openai, …
COPY_BLOCK = 1024 * 1024
JSON_BODY_BYTES = 1024 * 1024  # a question's request: room for a long conversation, not for a flood


def unicode_text(text: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"): not text, and the model and the store fail on them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text") from None
    return text


Text = Annotated[str, AfterValidator(unicode_text)]


def day_in_range(day: dt.date) -> dt.date:
    try:
        return checked_day(day, "the day")
    except QAError as exc:
        raise ValueError(str(exc)) from None


Day = Annotated[dt.date, AfterValidator(day_in_range)]


def json_body_limit(settings: Settings) -> int:
    """Bytes a question's request may have: the question escaped as \\uXXXX pairs, and room for a conversation."""
    return JSON_BODY_BYTES + 12 * settings.max_question_chars


class FiltersIn(BaseModel):
    since: Day | None = Field(None, description="Only articles published on or after this day.")
    until: Day | None = Field(None, description="Only articles published on or before this day.")
    sources: list[Text] = Field([], description="Only these outlets (domains, e.g. cnn.com).")
    doc_ids: list[Text] = Field([], description="Only these articles.")

    def to_filters(self) -> Filters:
        return Filters(self.since, self.until, tuple(self.sources), tuple(self.doc_ids))


class SearchRequest(BaseModel):
    question: Text = Field(description="The question, as a user would type it (at most QA_MAX_QUESTION_CHARS).", examples=["What did the 2+2 statement say about Taiwan?"])
    top_k: int | None = Field(None, ge=1, le=100, description="Passages to retrieve (default QA_TOP_K).")
    as_of: Day | None = Field(None, description="The day the question is asked on (default today): 'last week' is read from it.")
    filters: FiltersIn | None = None


class TurnIn(BaseModel):
    question: Text
    answer: Text


class AskRequest(SearchRequest):
    history: list[TurnIn] = Field([], description="Earlier questions and answers of this conversation, oldest first.")
    backend: Backend | None = Field(None, description="Answer backend for this question (default QA_LLM).")
    stream: bool = Field(False, description="Server-sent events: `delta` {text} events, then one `answer` event.")


class SearchResponse(BaseModel):
    question: str
    as_of: str
    date_range: dict | None
    filters: dict
    passages: list[Passage]


class DocumentSummary(BaseModel):
    id: str
    title: str | None = None
    source: str | None = None
    published: str | None = None
    url: str | None = None
    authors: list[str] = []
    chunks: int
    duplicate_of: str | None = None
    updated_at: float | None = Field(None, description="When it was last stored, in seconds since 1970.")


class Document(DocumentSummary):
    text: str


class IngestResponse(BaseModel):
    added: int
    updated: int
    unchanged: int
    failed: int
    deleted: int
    chunks: int
    stages: dict[str, float] = Field(description="Seconds by stage: model, read, chunk, embed, store, ledger, keywords; "
                                                 "they add up to the ingest's time, and on onnx backends `embed` is only "
                                                 "the wait for the encoder that the other stages did not hide")
    encoder_seconds: float = Field(description="The embedding model's own time on the chunks (on onnx backends it runs "
                                               "beside the other stages)")
    results: list[FileResult]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    articles: int
    chunks: int
    embed_model: str
    embed_backend: str = Field(description="How documents are embedded: torch, onnx or onnx-int8 (auto, settled by the index)")
    question_encoder: str = Field(description="What embeds questions: torch, or onnxruntime fp32/int8")
    backend: str
    llm_model: str | None
    data_dir: str
    store: str


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def question_of(service, text: str, status: int = 422) -> str:
    """The question as the service will take it, checked before any work or waiting (and before a stream's 200)."""
    try:
        return checked_question(text, service.settings.max_question_chars)
    except QAError as exc:
        raise HTTPException(status, f"question: {exc}") from None


def router(service, gate: Gate, authorized) -> APIRouter:
    """`gate` bounds concurrent and waiting work (ui/gate.py); `authorized` is the token check (a dependency)."""
    api = APIRouter(prefix="/api")
    secured = APIRouter(dependencies=[Depends(authorized)])

    @api.get("/health", response_model=Health, summary="Liveness and the corpus size (no token needed)")
    def health():
        return Health(**service.status())

    json_limit = json_body_limit(service.settings)

    @secured.post("/ask", response_model=Answer, summary="Answer a question with citations", max_body_size=json_limit,
                  responses={200: {"content": {"text/event-stream": {}}, "description": "With `stream: true`: events."}})
    def ask(request: AskRequest):
        answering = service.with_llm(request.backend or service.settings.llm)
        history = [Turn(t.question, t.answer) for t in request.history]
        filters = request.filters.to_filters() if request.filters else None
        args = (question_of(service, request.question), request.top_k, request.as_of, history)
        if not request.stream:
            with gate:
                return answering.ask(*args, filters=filters)

        def events() -> Iterator[str]:
            try:
                for item in answering.ask_stream(*args, filters=filters):
                    yield sse("answer", item.to_dict()) if isinstance(item, Answer) else sse("delta", {"text": item})
            except QAError as exc:  # after the 200 is sent, an error can only be an event
                yield sse("error", {"error": str(exc), "type": type(exc).__name__})

        gate.enter()  # a busy refusal is a 429 before the stream starts, not an event inside it
        return GatedStream(events(), gate, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @secured.post("/search", response_model=SearchResponse, summary="Retrieval only: the passages, best first", max_body_size=json_limit)
    def search(request: SearchRequest):
        filters = request.filters.to_filters() if request.filters else None
        question = question_of(service, request.question)
        with gate:
            return service.retrieve(question, request.top_k, request.as_of, filters).to_dict()

    @secured.post("/ingest", response_model=IngestResponse, summary="Ingest uploaded files and/or URLs")
    def ingest(files: list[UploadFile] = File([], description="txt, md, html, pdf, json, jsonl, jsonl.gz"),
               urls: list[str] = Form([], description="http(s) URLs of articles")):
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise HTTPException(400, f"not an http(s) URL: {bad[0]}")
        if not files and not urls:
            raise HTTPException(400, "send files (multipart field `files`) or URLs (field `urls`)")
        folder = Path(tempfile.mkdtemp(prefix="qa-upload-"))
        try:
            paths = [_saved(upload, folder, service.settings.max_file_mb) for upload in files]
            with gate:
                report = service.ingest([*map(str, paths), *urls])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for result in report.results:  # the client's file name, not where it was kept meanwhile
            if result.source.startswith(str(folder)):
                result.source = Path(result.source).name
        return report.to_dict()

    @secured.get("/documents", response_model=list[DocumentSummary], summary="The stored articles")
    def documents():
        return service.documents()

    @secured.get("/documents/{doc_id:path}", response_model=Document, summary="One article with its full text")
    def document(doc_id: str):
        return service.document(doc_id)

    @secured.delete("/documents/{doc_id:path}", summary="Delete an article and all its chunks")
    def delete(doc_id: str) -> dict:
        with gate:
            service.delete(doc_id)
        return {"deleted": doc_id}

    api.include_router(secured)
    return api


def _saved(upload: UploadFile, folder: Path, max_file_mb: float) -> Path:
    """Copies an upload under its own name (the article's id), refusing one over QA_MAX_FILE_MB."""
    name = Path(upload.filename or "").name
    if name in ("", ".", ".."):
        raise HTTPException(400, "every uploaded file needs a file name")
    target = folder / name
    if target.exists():
        raise HTTPException(400, f"two uploaded files are named {name}")
    limit, written = int(max_file_mb * 1024 * 1024), 0
    with target.open("wb") as out:
        while block := upload.file.read(COPY_BLOCK):
            written += len(block)
            if written > limit:
                raise HTTPException(413, f"{name} is over {max_file_mb:g} MB (QA_MAX_FILE_MB)")
            out.write(block)
    return target
