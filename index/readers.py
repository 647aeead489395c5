"""A readers-writer lock for one process's Chroma client: any number of calls at once, or a
reopen alone. Reopening under calls in flight broke them (a KeyError from Chroma's system
cache, seen as 409s and 500s under load while another process ingested)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Readers:
    def __init__(self):
        self._changed = threading.Condition()
        self._count = 0
        self._alone = False  # a reopen waits or runs: new readers wait, so it is not starved
        self._depth = threading.local()  # a reader inside a reader never waits (it would deadlock)

    @contextmanager
    def reading(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        if not depth:
            with self._changed:
                self._changed.wait_for(lambda: not self._alone)
                self._count += 1
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if not depth:
                with self._changed:
                    self._count -= 1
                    self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Waits for the calls in flight to end; a thread that is reading must not call this."""
        if getattr(self._depth, "value", 0):
            raise RuntimeError("a Chroma reader cannot reopen the client it is using")
        with self._changed:
            self._changed.wait_for(lambda: not self._alone)
            self._alone = True
            self._changed.wait_for(lambda: self._count == 0)
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()
