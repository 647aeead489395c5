"""Ingest speed and peak memory of `qa ingest` on RealTime QA articles (or any .jsonl[.gz]).

    .venv/bin/python bench/ingest.py [--limit N] [--corpus PATH] [--data-dir DIR]

Runs the real command in a fresh process on a fresh data dir and prints documents, chunks,
seconds, chunks/s and the process's peak RSS (the issue's target: under 1.5 GB for all
3,773 articles).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "bench" / "realtimeqa" / "articles.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, default=0, help="first N articles only (0: all)")
    parser.add_argument("--data-dir", type=Path, help="keep the index here (default: a temporary folder)")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"skipped: no corpus at {args.corpus} (RealTime QA lives in ../shared, outside the repository)")
        return
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        source = args.corpus
        if args.limit:
            source = Path(tmp) / "slice.jsonl"
            with gzip.open(args.corpus, "rt", encoding="utf-8") as handle, open(source, "w", encoding="utf-8") as out:
                for i, line in enumerate(handle):
                    if i == args.limit:
                        break
                    out.write(line)
        data_dir = args.data_dir or Path(tmp) / "data"
        env = {**os.environ, "QA_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
        began = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "qa"), "ingest", str(source), "--json"],
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        if done.returncode not in (0, 1):
            sys.exit(f"qa ingest failed: {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    documents = summary["added"] + summary["updated"]
    print(f"documents {documents}  chunks {summary['chunks']}  failed {summary['failed']}  "
          f"seconds {seconds:.1f} (in-process {summary['seconds']:.1f})  "
          f"chunks/s {summary['chunks'] / summary['seconds']:.1f}  peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
