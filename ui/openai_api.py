"""An OpenAI-compatible /v1 (chat completions and models), so existing chat clients can ask the corpus.

The last user message is the question and earlier user/assistant pairs are the conversation.
Citations stay: `[n]` markers and a "Sources:" list in the text, and a `citations` field with the
same data `/api/ask` returns. `top_k`, `as_of` and `filters` may be sent as extra body fields.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qa.citations import Answer
from qa.conversation import Turn
from qa.errors import QAError
from qa.markers import quoted
from ui.api import FiltersIn, json_body_limit, question_of, unicode_text
from ui.gate import GatedStream

MODEL = "news-qa"
SOURCES_HEADING = "\n\nSources:\n"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only the text ones mean anything here
            return " ".join(part["text"] for part in self.content if part.get("type") == "text" and isinstance(part.get("text"), str))
        return self.content or ""

    @model_validator(mode="after")
    def _is_text(self) -> Message:
        unicode_text(self.text)
        return self


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens… are accepted and ignored
    model: str = MODEL
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    top_k: int | None = Field(None, ge=1, le=100)
    as_of: dt.date | None = None
    filters: FiltersIn | None = None


def conversation(messages: list[Message]) -> tuple[str, list[Turn]]:
    """The last user message, and the user/assistant pairs before it (their source lists cut off)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users or not messages[users[-1]].text.strip():
        raise HTTPException(400, "the last user message is the question, and there is none")
    history, question = [], None
    for message in messages[: users[-1]]:
        if message.role == "user":
            question = message.text
        elif message.role == "assistant" and question is not None:
            history.append(Turn(question, message.text.split(SOURCES_HEADING)[0]))
            question = None
    return messages[users[-1]].text, history


def sources_text(answer: Answer) -> str:
    if not answer.citations:
        return ""
    # Chat clients render markdown (some HTML too): an article's title or url must not become an image, a script or a link.
    lines = [f"[{c.n}] {quoted(c.title or c.doc_id, set())} — {quoted(c.source or 'unknown source', set())}, {c.published or 'undated'}"
             + (f" {c.url}" if c.url.startswith(("http://", "https://")) else "") for c in answer.citations]
    return SOURCES_HEADING + "\n".join(lines)


def extras(answer: Answer) -> dict:
    """The fields an OpenAI client ignores and a citing client reads."""
    return {"citations": [c.__dict__ for c in answer.citations], "abstained": answer.abstained,
            "grounded": answer.grounded, "warnings": answer.warnings}


def router(service, gate, authorized) -> APIRouter:
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized)], tags=["OpenAI-compatible"])

    @v1.get("/models", summary="The one model: answers from the corpus")
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "news-qa"}]}

    json_limit = json_body_limit(service.settings)

    @v1.post("/chat/completions", summary="Chat completions answered from the corpus, with citations", max_body_size=json_limit)
    def chat(request: ChatRequest):
        question, history = conversation(request.messages)
        question = question_of(service, question, status=400)  # OpenAI's status for an invalid request
        filters = request.filters.to_filters() if request.filters else None
        args = (question, request.top_k, request.as_of, history)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL}
        if not request.stream:
            with gate:
                answer = service.ask(*args, filters=filters)
            message = {"role": "assistant", "content": answer.answer + sources_text(answer)}
            return {**head, "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    **extras(answer)}

        def chunk(delta: dict, finish: str | None = None, **more) -> str:
            body = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            streamed = ""
            try:
                for item in service.ask_stream(*args, filters=filters):
                    if isinstance(item, Answer):
                        # The check may have removed markers or links: then the checked text follows.
                        checked = "" if item.answer == streamed else f"\n\n(checked: {item.answer})"
                        yield chunk({"content": checked + sources_text(item)})
                        yield chunk({}, "stop", **extras(item))
                    else:
                        streamed += item
                        yield chunk({"content": item})
            except QAError as exc:  # the OpenAI client raises this as an APIError
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            yield "data: [DONE]\n\n"

        gate.enter()  # a busy refusal is a 429 before the stream starts
        return GatedStream(events(), gate, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return v1
