"""What every LLM backend shares. A backend implements one method, `_stream`; the
non-streaming call, the timeout and the retries with backoff live here, once.

The timeout is enforced here rather than trusted to each client library: `_stream` runs in
a worker thread and the caller gives up when no text arrives for `timeout` seconds, which
also covers in-process models that have no timeout of their own.
"""

from __future__ import annotations

import importlib
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import ModuleType

from qa.errors import BackendBusyError, BackendUnavailableError, ConfigError, QAError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
MAX_BACKOFF_S = 20.0


class LLMBackend(ABC):
    name: str

    def __init__(self, timeout: float, max_retries: int, max_tokens: int, backoff_s: float = 1.0):
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s

    @abstractmethod
    def _stream(self, messages: list[Message]) -> Iterator[str]:
        """Yield the reply's text as it is written, temperature 0.

        Raise BackendBusyError on a 429 or 5xx (it is retried), ConfigError when a setting is
        wrong, BackendUnavailableError when the model cannot be reached; each names the setting.
        """

    @property
    @abstractmethod
    def where(self) -> str:
        """The model or server, with the setting that chooses it, for error messages."""

    def complete(self, messages: list[Message]) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: list[Message]) -> Iterator[str]:
        """Text deltas. A refused request is retried, but only before any text was given out."""
        attempt = 0
        while True:
            produced = False
            try:
                for delta in self._watched(messages):
                    produced = True
                    yield delta
                return
            except BackendBusyError as exc:
                if produced or attempt >= self.max_retries:
                    raise BackendBusyError(
                        f"{exc}; gave up after {attempt + 1} tries (QA_LLM_MAX_RETRIES={self.max_retries})"
                    ) from exc
                time.sleep(self._delay(attempt, exc.retry_after))
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_BACKOFF_S)
        return min(self.backoff_s * 2**attempt * (1 + random.random() / 4), MAX_BACKOFF_S)

    def _watched(self, messages: list[Message]) -> Iterator[str]:
        updates: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                deltas = self._stream(messages)
                try:
                    for delta in deltas:
                        if stop.is_set():
                            break
                        updates.put(("delta", delta))
                finally:
                    deltas.close()  # closes the HTTP response, or stops the local model
            except BaseException as exc:  # handed to the caller's thread
                updates.put(("error", exc))
            else:
                updates.put(("done", None))

        threading.Thread(target=work, name=f"llm-{self.name}", daemon=True).start()
        try:
            while True:
                try:
                    kind, value = updates.get(timeout=self.timeout)
                except queue.Empty:
                    raise BackendUnavailableError(
                        f"{self.where} sent nothing for {self.timeout:g} s; raise QA_LLM_TIMEOUT or use a faster model"
                    ) from None
                if kind == "done":
                    return
                if kind == "error":
                    if isinstance(value, QAError):
                        raise value
                    raise BackendUnavailableError(f"{self.where} failed: {value}") from value
                if value:
                    yield value
        finally:
            stop.set()


def import_extra(module: str, extra: str, backend: str) -> ModuleType:
    """Import a backend's optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"QA_LLM={backend} needs the '{extra}' extra ({module} is not installed): pip install -e '.[{extra}]'"
        ) from exc


def http_error(
    status: int, detail: str, where: str, model: str, model_setting: str, retry_after: float | None = None
) -> QAError:
    """The error for an HTTP status from a model server: what to fix, in one line."""
    detail = " ".join(str(detail).split())[:200]
    if status in (401, 403):
        return ConfigError(f"{where} refused the API key ({status}: {detail}); set QA_LLM_API_KEY")
    if status == 404:
        return ConfigError(f"{where} does not know the model {model!r} ({status}: {detail}); set {model_setting}")
    if status == 429 or status >= 500:
        return BackendBusyError(f"{where} answered {status}: {detail}", retry_after)
    return BackendUnavailableError(f"{where} answered {status}: {detail}")
