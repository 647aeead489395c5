"""What every benchmark step shares: summaries of repeated runs, child processes with their
peak memory, the environment the measured commands run in, and the machine's description."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QA = str(BIN / "qa")
# The cores this process (and the commands it starts) may run on.
CORES_USABLE = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def figure(values: list[float], digits: int = 4) -> dict:
    """One figure of results.json: the median of the repeats, with their min, max and the runs themselves."""
    values = [round(float(v), digits) for v in values]
    return {"median": round(statistics.median(values), digits), "min": min(values), "max": max(values), "runs": values}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0.5: the median of an odd list, 0.95: p95)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def clean_env(**settings: str) -> dict:
    """The environment of a measured command: offline, no QA_* of the caller, only `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float  # wall time, from process start to exit
    peak_rss_mb: float  # the process's own high-water mark (ru_maxrss of that one child)


def run_measured(command: list[str], env: dict, timeout: float = 24 * 3600) -> Finished:
    """Runs `command` and reads its peak RSS from wait4: RUSAGE_CHILDREN would mix all our children."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=ROOT)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Finished(process.returncode, out.read(), err.read(), seconds, usage.ru_maxrss / 1024)


def last_json(finished: Finished, what: str) -> dict:
    """The JSON object a worker prints on its last line of output; its stderr's tail when it failed."""
    import json

    lines = [line for line in finished.stdout.splitlines() if line.startswith(("{", "["))]
    if finished.returncode not in (0, 1) or not lines:
        raise RuntimeError(f"{what} failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    return json.loads(lines[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_worker(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / script), *args]


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def machine() -> dict:
    """CPU, cores, memory, library versions and the git commit: what a figure was measured on."""
    first = itertools.takewhile(str.strip, _lines("/proc/cpuinfo"))  # the first processor's block
    info = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in first if ":" in line)}
    cpu = info.get("model name") or platform.processor() or "unknown"
    if "cpu family" in info:  # VMs here all say "AMD EPYC": the generation is in the family
        cpu += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    memory_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    versions = {}
    for package in ("torch", "onnxruntime", "sentence-transformers", "transformers", "chromadb", "llama-index-core",
                    "llama-index-embeddings-huggingface"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        # int8 and bf16 speed depend on these (int8 encode was 2x faster on a host with a full-width AVX-512)
        "cpu_flags": [f for f in info.get("flags", "").split() if f in SPEED_FLAGS],
        "cores": os.cpu_count(),
        "cores_usable": CORES_USABLE,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_average": list(os.getloadavg()),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
