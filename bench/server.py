"""`qa serve` under load: one client, then 8 concurrent ones, on /api/ask; then the server's peak RSS.

Each run starts a fresh server on a free loopback port over an ingested data dir, waits for
it to be warm (/api/health: questions no longer on torch), asks one question to warm it up,
asks SINGLE_ASKS questions one at a time (single-client latency), then
has CLIENTS clients ask ASKS_PER_CLIENT questions each at once (throughput and latency under
load), and reads the server's VmHWM from /proc. QA_CONCURRENCY keeps its default.

The server's CPU time (/proc/PID/stat, all its threads) is read around each phase: CPU per
answer alone and under load, and per second while idle. They give `p95_floor`, the least
p95 (8) / p50 (1) this work per answer allows on this machine's cores (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import httpx

from bench.measure import CORES_USABLE, QA, clean_env, free_port, percentile

CLIENTS = 8
ASKS_PER_CLIENT = 8
SINGLE_ASKS = 16
IDLE_SECONDS = 3  # the idle server's CPU is read over this long, after the asks
CORES = CORES_USABLE  # the server's too: it runs beside this process
START_TIMEOUT = 300
WARM_TIMEOUT = 60  # for the torch backend's questions to move to onnxruntime (about 2 s once exported)


def measure(data_dir: Path, backend: str, questions: list[dict], log: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(QA_DATA_DIR=str(data_dir), QA_EMBED_BACKEND=backend)
    with open(log, "w") as handle:
        began = time.perf_counter()
        process = subprocess.Popen([QA, "serve", "--port", str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, process, log)
        started = time.perf_counter() - began
        with httpx.Client(base_url=url, timeout=300) as client:
            _ask(client, questions[0])  # loads the model and the index
            cpu = _cpu_ms(process.pid)
            single = [_ask(client, questions[i % len(questions)]) for i in range(SINGLE_ASKS)]
            single_cpu = (_cpu_ms(process.pid) - cpu) / SINGLE_ASKS
        cpu = _cpu_ms(process.pid)
        latencies, seconds = _concurrent(url, questions)
        concurrent_cpu = (_cpu_ms(process.pid) - cpu) / len(latencies)
        cpu = _cpu_ms(process.pid)
        time.sleep(IDLE_SECONDS)
        idle_cpu = (_cpu_ms(process.pid) - cpu) / IDLE_SECONDS
        peak_mb = _vm_hwm_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    single_p50 = percentile(single, 0.5)
    concurrent_p95 = percentile(latencies, 0.95)
    return {
        "startup_seconds": started,
        "single_p50_ms": single_p50,
        "concurrent_p50_ms": percentile(latencies, 0.5),
        "concurrent_p95_ms": concurrent_p95,
        "answers_per_second": len(latencies) / seconds,
        "p95_ratio": concurrent_p95 / single_p50,
        "single_cpu_ms": single_cpu,
        "concurrent_cpu_ms": concurrent_cpu,
        "p95_floor": p95_floor(single_cpu, concurrent_cpu, CORES),
        "idle_cpu_ms_per_s": idle_cpu,
        "peak_rss_mb": peak_mb,
    }


def p95_floor(single_cpu_ms: float, concurrent_cpu_ms: float, cores: int, clients: int = CLIENTS) -> float:
    """The least p95 (clients) / p50 (one client) that this CPU per answer allows on `cores`.

    With `clients` asks always in flight the server answers at most cores / concurrent_cpu_ms
    per ms, so an ask waits clients * concurrent_cpu_ms / cores on average (Little's law); a
    p95 is above that mean unless the slowest 5 % are far slower than the rest. One client's
    ask waits for nothing but the CPU, so it takes at most its own CPU time, single_cpu_ms (less
    only by running on several cores at once, which raises the ratio). Hence the floor. Faster
    code lowers both CPU times alike; only work that concurrent answers share (concurrent_cpu_ms
    below single_cpu_ms) lowers the floor. The clients' own CPU, on the same cores, raises it."""
    return clients * concurrent_cpu_ms / (cores * single_cpu_ms)


def _ask(client: httpx.Client, question: dict) -> float:
    body = {"question": question["question"]}
    if question.get("question_date"):
        body["as_of"] = question["question_date"]
    began = time.perf_counter()
    response = client.post("/api/ask", json=body)
    elapsed = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"/api/ask answered {response.status_code}: {response.text[:500]}")
    return elapsed


def _concurrent(url: str, questions: list[dict]) -> tuple[list[float], float]:
    """CLIENTS threads, each with its own connection, released together; their latencies and the wall time."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS + 1)

    def client_run(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            start.wait()
            for i in range(ASKS_PER_CLIENT):
                try:
                    latencies.append(_ask(client, questions[(offset * ASKS_PER_CLIENT + i) % len(questions)]))
                except (httpx.HTTPError, RuntimeError) as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=client_run, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} of {CLIENTS * ASKS_PER_CLIENT} concurrent asks failed: {errors[0]}")
    return latencies, seconds


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    """Until /api/health answers, and then (up to WARM_TIMEOUT more) until questions have moved
    off torch: the server is measured as users meet it once warm, not while it loads
    onnxruntime in the background."""
    deadline = time.time() + START_TIMEOUT
    warm_by = None
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"qa serve exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            response = httpx.get(f"{url}/api/health", timeout=2)
            if response.status_code == 200:
                warm_by = warm_by or time.time() + WARM_TIMEOUT
                if response.json().get("question_encoder") != "torch" or time.time() > warm_by:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"qa serve did not answer /api/health within {START_TIMEOUT} s: {log.read_text()[-2000:]}")


def _cpu_ms(pid: int) -> float:
    """User + system CPU time of the process so far, all its threads, in ms (Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/PID/status (Linux only)")
