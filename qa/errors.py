"""The exception tree. Only the CLI and the UI turn these into user messages.

    QAError
    ├── ConfigError              a setting is wrong; names the setting
    ├── IngestError              one input could not be read; names the file (and line)
    ├── NotFoundError            no stored article has that id
    ├── StoreError               the data dir cannot be used as it is
    │   ├── EmbeddingMismatchError   the index was built with another embedding model
    │   ├── IndexCorruptError        the ledger or the Chroma folder is damaged; names the file
    │   └── DiskFullError            no space left where QA_DATA_DIR lives
    └── BackendUnavailableError  a model or server cannot be reached; names the setting
        └── BackendBusyError     it answered 429 or 5xx; retried with backoff first
"""

from __future__ import annotations


class QAError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(QAError):
    pass


class IngestError(QAError):
    def __init__(self, source: str, message: str, line: int | None = None):
        self.source = source
        self.line = line
        self.reason = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class NotFoundError(QAError):
    pass


class StoreError(QAError):
    pass


class EmbeddingMismatchError(StoreError):
    pass


class IndexCorruptError(StoreError):
    """Damaged files; the message names them and says `qa index repair`."""


class DiskFullError(StoreError):
    """A write ran out of space; what was stored before it is intact."""


class BackendUnavailableError(QAError):
    pass


class BackendBusyError(BackendUnavailableError):
    """A transient refusal (rate limit, server error); `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)
