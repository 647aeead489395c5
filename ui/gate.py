"""Admission control for the API: a few requests work at once, a bounded number wait, the rest are refused.

A refusal is quick and says when to come back: 429 with Retry-After when the waiting line is
full, 503 with Retry-After when a request waited QA_QUEUE_TIMEOUT seconds without a turn. So a
burst costs a bounded number of threads and requests in memory, never an unbounded queue.
"""

from __future__ import annotations

import math
import threading
import time

from fastapi import HTTPException
from fastapi.responses import StreamingResponse


class Gate:
    """`with gate:` around API work; `enter`/`leave` when the work outlives the handler (a stream)."""

    def __init__(self, concurrency: int, max_waiting: int, timeout: float):
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        self._seconds_per_request = 1.0  # a running average, for Retry-After
        self._began = threading.local()

    def enter(self) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise self._busy(429, f"busy: {self.concurrency} requests at work and {self._waiting} waiting, "
                                      "the most allowed (QA_CONCURRENCY, QA_MAX_WAITING); try again after Retry-After seconds")
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=self.timeout):
                raise self._busy(503, f"busy: no turn came within {self.timeout:g} s (QA_QUEUE_TIMEOUT); "
                                      "try again after Retry-After seconds")
        finally:
            with self._lock:
                self._waiting -= 1

    def leave(self, seconds: float | None = None) -> None:
        if seconds is not None:
            with self._lock:
                self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * seconds
        self._slots.release()

    def __enter__(self) -> Gate:
        self.enter()
        self._began.at = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.leave(time.perf_counter() - self._began.at)

    @property
    def waiting(self) -> int:
        return self._waiting

    def retry_after(self, waiting: int | None = None) -> int:
        """Seconds until the line ahead has likely cleared: its length times the average time a request takes."""
        ahead = self.concurrency + (self._waiting if waiting is None else waiting)
        return max(1, min(60, math.ceil(ahead * self._seconds_per_request / self.concurrency)))

    def _busy(self, status: int, message: str) -> HTTPException:
        return HTTPException(status, message, headers={"Retry-After": str(self.retry_after())})


class GatedStream(StreamingResponse):
    """A stream that holds a turn of `gate` (taken before the 200 is sent) until it ends or the client leaves."""

    def __init__(self, content, gate: Gate, **kwargs):
        super().__init__(content, **kwargs)
        self._gate = gate

    async def __call__(self, scope, receive, send) -> None:
        began = time.perf_counter()
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._gate.leave(time.perf_counter() - began)
