"""One process serves the UI and the API: FastAPI with /api and /v1, and Gradio mounted at /.

The model loads once and one QAService answers both. Safety: loopback unless --host says
otherwise, optional login (QA_AUTH) and API token (QA_API_TOKEN), an upload size limit, a
queue with a concurrency limit, no share links, and Gradio serves only its own cache.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import secrets
import sys
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.errors import (BackendUnavailableError, ConfigError, DiskFullError, IndexCorruptError, NotFoundError, QAError,
                       StoreError)
from qa.settings import Settings
from ui.gate import Gate

# A damaged index cannot serve (503, until `qa index repair`); a full disk is 507 Insufficient Storage.
STATUS = ((NotFoundError, 404), (IndexCorruptError, 503), (DiskFullError, 507), (StoreError, 409),
          (BackendUnavailableError, 503), (QAError, 400))
QUESTION_ROUTES = ("/api/ask", "/api/search", "/v1/chat/completions")  # JSON bodies, limited in size
SPARE_THREADS = 16  # for the handlers the gate does not hold back (health, documents, Gradio's own)
QUEUE_IDLE_POLL_SECONDS = 0.01  # how often an idle Gradio queue looks for work (create_app)
log = logging.getLogger("qa.server")


def ui_login(settings: Settings) -> tuple[str, str] | None:
    value = settings.auth.get_secret_value()
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("QA_AUTH must be user:password")
    return user, password


def token_check(settings: Settings):
    """A dependency: a bearer QA_API_TOKEN, or QA_AUTH's user:password as basic auth; open when neither is set."""
    token, login = settings.api_token.get_secret_value(), ui_login(settings)

    def authorized(request: Request) -> None:
        if not token and not login:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if token and scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), token.encode()):
            return
        if login and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if secrets.compare_digest(f"{user}:{password}".encode(), ":".join(login).encode()):
                return
        raise HTTPException(401, "missing or wrong credentials: send `Authorization: Bearer <QA_API_TOKEN>`",
                            headers={"WWW-Authenticate": "Bearer"})

    return authorized


def _error(request: Request, status: int, message: str, kind: str) -> JSONResponse:
    if request.url.path.startswith("/v1"):  # the shape OpenAI clients read
        return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)
    return JSONResponse({"error": message, "type": kind}, status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError):
        status = next(code for kind, code in STATUS if isinstance(exc, kind))
        return _error(request, status, str(exc), type(exc).__name__)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        response = _error(request, exc.status_code, str(exc.detail), "HTTPError")
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        return _error(request, 422, "; ".join(parts), "ValidationError")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)  # the traceback goes to the log, never the client
        return _error(request, 500, f"internal error ({type(exc).__name__}); the server log has the details", "InternalError")


def create_app(service, settings: Settings) -> FastAPI:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ui import api, openai_api
    from ui.app import CSS, HEAD, build
    from ui.long_names import LongNameGuard

    from fastapi_offline import FastAPIOffline

    # API work at once and waiting; more are refused at once. The UI's queue has the same two limits.
    gate = Gate(settings.concurrency, settings.max_waiting, settings.queue_timeout)

    @asynccontextmanager
    async def threads(app):
        # Every waiting API request holds a worker thread: make room for all the gate lets in, and more.
        import anyio.to_thread

        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 2 * settings.concurrency + settings.max_waiting + SPARE_THREADS)
        yield

    # Swagger UI's JS and CSS are served from the package, not a CDN: /api/docs works offline.
    app = FastAPIOffline(title="News QA", version="0.1.0", docs_url="/api/docs", redoc_url=None,
                         openapi_url="/api/openapi.json", static_url="/api/static-docs", lifespan=threads,
                         description="Answers from the stored news articles, with citations. The browser UI is at /.")
    install_error_handlers(app)
    app.add_middleware(RetryAfterWhenQueueFull, gate=gate)
    authorized = token_check(settings)
    app.include_router(api.router(service, gate, authorized))
    app.include_router(openai_api.router(service, gate, authorized))
    app.add_middleware(TooLargeAsJson, limits=dict.fromkeys(QUESTION_ROUTES, api.json_body_limit(settings)))
    app.add_middleware(LongNameGuard)  # a 404, not Gradio's 500, for an over-long static file name
    demo = build(service).queue(default_concurrency_limit=settings.concurrency, max_size=settings.max_waiting)
    # Gradio's queue looks for work every 1 ms while it has none (gradio/queueing.py, `sleep_when_free`):
    # 60-84 ms of CPU a second for a server nobody uses (17-30 at 10 ms), on the event loop that serves
    # the API too. A UI event now starts at most 10 ms later; the API never waits in this queue. An
    # internal of Gradio's: if a release renames it, the server still starts, only busier when idle.
    queue = getattr(demo, "_queue", None)
    if isinstance(getattr(queue, "sleep_when_free", None), (int, float)):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_IDLE_POLL_SECONDS)
    return gr.mount_gradio_app(
        app, demo, path="/", auth=ui_login(settings), css=CSS, head=HEAD, show_error=True,
        max_file_size=int(settings.max_file_mb * 1024 * 1024), footer_links=["api", "settings"], run_history=False,
        ssr_mode=False, mcp_server=False, allowed_paths=None,  # only Gradio's own cache is served
    )


class RetryAfterWhenQueueFull:
    """Gradio turns a question away from its full queue with a bare 503 (the page says "busy, try again");
    this adds the Retry-After header that HTTP clients look for, as the API's own refusals have."""

    def __init__(self, app, gate: Gate):
        self.app = app
        self.gate = gate

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/queue/join"):
            return await self.app(scope, receive, send)

        async def send_with_hint(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                hint = str(self.gate.retry_after(waiting=self.gate.max_waiting)).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"retry-after", hint)]}
            await send(message)

        await self.app(scope, receive, send_with_hint)


class TooLargeAsJson:
    """A body declared (Content-Length) over the limit is refused before it is read, with the API's JSON
    error (Starlette's own is plain text). Bodies sent in chunks meet the route's own max_body_size."""

    def __init__(self, app, limits: dict[str, int]):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if limit is not None and length.isdigit() and int(length) > limit:
            message = f"the request body is {int(length)} bytes, over the {limit} this route takes"
            return await _error(Request(scope), 413, message, "HTTPError")(scope, receive, send)
        await self.app(scope, receive, send)


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from qa.service import QAService

    service = QAService(settings)
    service.check_readable()  # a damaged ledger or Chroma folder is named now, not at the first question
    service.embedder.load()  # now, so the first question does not wait for it
    # questions go faster through onnxruntime once it is loaded; until then torch answers them
    threading.Thread(target=service.embedder.speed_up_short_texts, name="short-texts", daemon=True).start()
    service.retriever  # built once, then shared by every backend's service (QAService.with_llm)
    app = create_app(service, settings)
    if not _loopback(host) and not (settings.auth.get_secret_value() and settings.api_token.get_secret_value()):
        print(f"warning: serving on {host} without both QA_AUTH and QA_API_TOKEN; anyone who can reach it can use it",
              file=sys.stderr)
    print(f"News QA on http://{host}:{port}/  (API docs: /api/docs, OpenAI-compatible: /v1)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
