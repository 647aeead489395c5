"""Disk space where QA_DATA_DIR lives: a full disk is named as such, and ingest stops before it.

Chroma reports a full disk indirectly ("Failed to apply logs to the metadata segment"), so an
error counts as a full disk when it says so or when the data dir's device is nearly full.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from qa.errors import DiskFullError

NEARLY_FULL = 8 * 1024 * 1024  # bytes free below which a failed write is taken for a full disk
MARKERS = ("no space left", "disk is full", "database or disk is full", "os error 28", "sqlite_full")


def free_bytes(data_dir: Path) -> int | None:
    """Free bytes on the device holding the data dir (or its nearest existing parent)."""
    path = Path(data_dir).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, data_dir: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if any(marker in str(exc).lower() for marker in MARKERS):
        return True
    free = free_bytes(data_dir)
    return free is not None and free < NEARLY_FULL


def disk_full(data_dir: Path, doing: str) -> DiskFullError:
    free = free_bytes(data_dir)
    left = f", {free // 1024} KB free" if free is not None else ""
    return DiskFullError(
        f"no space left on the device holding QA_DATA_DIR ({data_dir}{left}) while {doing}; free some space "
        "(or point QA_DATA_DIR elsewhere) and run it again: what was stored before is intact (`qa index check`)"
    )


def ensure_free(data_dir: Path, min_free_mb: float) -> None:
    """Refuse to start a write with less than `min_free_mb` free: a full disk mid-write leaves
    Chroma unable even to answer queries until space is freed."""
    free = free_bytes(data_dir)
    if free is not None and free < min_free_mb * 1024 * 1024:
        raise DiskFullError(
            f"only {free / 1024 / 1024:.1f} MB free on the device holding QA_DATA_DIR ({data_dir}), under "
            f"QA_MIN_FREE_MB={min_free_mb:g}; free some space (or point QA_DATA_DIR elsewhere) before ingesting more. "
            "The stored articles still answer."
        )
