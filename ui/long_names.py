"""A request for one of Gradio's static files under a name longer than a file name can be is
refused with 404 here: Gradio would hand it to the file system and answer 500 (ENAMETOOLONG)."""

from __future__ import annotations

from starlette.responses import PlainTextResponse

STATIC_PREFIXES = ("/static/", "/assets/", "/svelte/")
NAME_MAX = 255  # bytes in one file name on Linux


class LongNameGuard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(STATIC_PREFIXES) and any(len(part.encode("utf-8", "surrogatepass")) > NAME_MAX for part in path.split("/")):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
