"""Which modules a `qa` command imports: commands that need no model must not import torch.

Runs the real `qa` entry point with PYTHONPROFILEIMPORTTIME=1 and reads the module names from
its stderr (`import time: self | cumulative | name`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.measure import QA, clean_env

COMMANDS = (("--help",), ("docs", "list"), ("eval", "--help"))
HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "chromadb", "gradio")


def imported(command: tuple[str, ...], data_dir: Path) -> tuple[set[str], float, subprocess.CompletedProcess]:
    """The top-level packages `qa COMMAND` imports, its wall time, and the finished process."""
    env = clean_env(QA_DATA_DIR=str(data_dir), PYTHONPROFILEIMPORTTIME="1")
    began = time.perf_counter()
    done = subprocess.run([QA, *command], env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - began
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return names, seconds, done


def check(data_dir: Path) -> list[dict]:
    """One row a command: the heavy packages it imported (none is the goal) and its wall time."""
    rows = []
    for command in COMMANDS:
        names, seconds, done = imported(command, data_dir)
        rows.append({"command": "qa " + " ".join(command), "exit_code": done.returncode, "seconds": round(seconds, 3),
                     "heavy_imports": sorted(n for n in HEAVY if n in names),
                     "imports_torch": "torch" in names or "sentence_transformers" in names})
    return rows
