"""`make bench`: ingest, query, memory and concurrency figures of issue 9, side by side with their yardsticks.

    .venv/bin/python bench/run.py [--sizes seed,300,1000,all] [--backends torch,onnx-int8] [--repeats N]
                                  [--skip STEP ...] [--out bench/results.json] [--doc docs/benchmarks.md]
    .venv/bin/python bench/run.py --report-only        # rewrite the doc's tables from --out

Every measured command runs in a fresh process on a fresh data dir in a temporary folder. Every
figure is the median of the repeats with their min and max; every comparison is a ratio taken
within one repeat of this run. results.json is written after each step, so an interrupted run
keeps what it measured; docs/benchmarks.md describes its schema.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import imports, report  # noqa: E402
from bench import server as serving  # noqa: E402
from bench.corpus import Corpus, Unavailable, parse_sizes, prepare  # noqa: E402
from bench.merge import merged  # noqa: E402
from bench.measure import QA, ROOT, clean_env, figure, last_json, machine, python_worker, run_measured  # noqa: E402

STEPS = ("imports", "ingest", "llamaindex", "query", "coldstart", "server")
SCHEMA = 1


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.models = workdir / "models"  # ONNX files, made once per run and linked into each data dir
        self.results = {
            "schema": SCHEMA,
            "machine": machine(),
            "options": {"sizes": args.sizes, "backends": args.backends, "repeats": args.repeats, "skip": args.skip,
                        "max_questions": args.max_questions, "merge": args.merge},
            "onnx_export_seconds": {},
            "imports": [],
            "sizes": {},
            "skipped": [],
        }
        # --merge: the last results.json, under this run's figures at every save (bench/merge.py)
        self.earlier = json.loads(args.out.read_text()) if args.merge and args.out.exists() else None

    def save(self) -> None:
        self.results["machine"]["load_average_end"] = list(os.getloadavg())
        results = merged(self.results, self.earlier) if self.earlier else self.results
        results["goals"] = report.goals(results)
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    def skip(self, size: str | None, step: str, reason: str) -> None:
        log(f"skipped {step}{f' at {size}' if size else ''}: {reason}")
        self.results["skipped"].append({"size": size, "step": step, "reason": reason})

    def wanted(self, step: str) -> bool:
        return step not in self.args.skip

    def repeats(self, size: str) -> int:
        return self.args.repeats or (1 if size == "all" else 3)

    def run(self) -> None:
        if self.wanted("imports"):
            (self.workdir / "empty").mkdir()
            self.results["imports"] = imports.check(self.workdir / "empty")
            self.save()
        for size in self.args.sizes:
            try:
                corpus = prepare(size, self.workdir)
            except Unavailable as exc:
                self.skip(size, "every step", str(exc))
                self.save()
                continue
            if self.args.max_questions:
                corpus.questions = corpus.questions[: self.args.max_questions]
            self.run_size(corpus)
        self.results["machine"]["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.save()

    def run_size(self, corpus: Corpus) -> None:
        self.results["sizes"].pop(corpus.size, None)
        section = self.results["sizes"].setdefault(corpus.size, {"corpus": corpus.describe()})
        questions = self.workdir / f"questions-{corpus.size}.json"
        questions.write_text(json.dumps(corpus.questions))
        if self.wanted("ingest"):
            section["ingest"], data_dirs = self.ingest(corpus)
            if "torch" in section["ingest"] and "onnx-int8" in section["ingest"]:
                section["int8_speedup"] = figure([t / i for t, i in zip(section["ingest"]["torch"]["raw_encode_seconds"]["runs"],
                                                                        section["ingest"]["onnx-int8"]["seconds"]["runs"])], 3)
        else:
            data_dirs = {b: self.ingested(corpus, b) for b in self.args.backends
                         if any(self.wanted(s) for s in ("query", "coldstart", "server"))}
        self.save()
        if self.wanted("llamaindex"):
            section["llamaindex"] = self.llamaindex(corpus, questions, section.get("ingest", {}))
            self.save()
        for step in ("query", "coldstart", "server"):
            if not self.wanted(step):
                continue
            if not corpus.questions:
                self.skip(corpus.size, step, "no questions for this corpus")
                continue
            measure = getattr(self, step)
            section[step] = {b: measure(corpus, questions, data_dirs[b], b) for b in self.args.backends}
            self.save()
        for data_dir in data_dirs.values():
            shutil.rmtree(data_dir, ignore_errors=True)

    # -- step 1: ingest, against raw encode of the same chunks -------------------------------------------

    def ingest(self, corpus: Corpus) -> tuple[dict, dict[str, Path]]:
        runs: dict[str, list[dict]] = {b: [] for b in self.args.backends}
        kept: dict[str, Path] = {}
        for repeat in range(self.repeats(corpus.size)):
            for backend in self.args.backends:
                data_dir = self.fresh_data_dir(corpus, backend)
                env = clean_env(QA_DATA_DIR=str(data_dir), QA_EMBED_BACKEND=backend)
                done = run_measured([QA, "ingest", str(corpus.path), "--json"], env)
                summary = last_json(done, "qa ingest")
                raw_done = run_measured(python_worker("encode.py", "--backend", backend, "--models", str(self.models),
                                                      str(corpus.path)), env)
                raw = last_json(raw_done, "raw encode")
                if raw["chunks"] != summary["chunks"]:  # kept in results.json: the ratio then compares unlike work
                    log(f"warning: raw encode made {raw['chunks']} chunks, qa ingest {summary['chunks']}: "
                        "bench/encode.py no longer reproduces the pipeline's chunk texts")
                runs[backend].append({
                    "seconds": summary["seconds"], "wall_seconds": done.seconds, "chunks": summary["chunks"],
                    "failed": summary["failed"], "peak_rss_mb": done.peak_rss_mb,
                    "raw_encode_seconds": raw["encode_seconds"], "raw_load_seconds": raw["load_seconds"],
                    "raw_chunks": raw["chunks"], "raw_peak_rss_mb": raw_done.peak_rss_mb,
                    "stages": summary.get("stages") or {}, "encoder_seconds": summary.get("encoder_seconds"),
                })
                log(f"{corpus.size} ingest {backend} {repeat + 1}/{self.repeats(corpus.size)}: {summary['chunks']} chunks "
                    f"in {summary['seconds']:.1f} s (raw encode {raw['encode_seconds']:.1f} s, load {raw['load_seconds']:.1f} s), "
                    f"peak RSS {done.peak_rss_mb:.0f} MB")
                if backend in kept:
                    shutil.rmtree(kept[backend], ignore_errors=True)
                kept[backend] = data_dir  # the last repeat's index serves the query steps
        return {backend: _ingest_figures(rows) for backend, rows in runs.items()}, kept

    def fresh_data_dir(self, corpus: Corpus, backend: str) -> Path:
        """An empty data dir, holding only the ONNX files a user's data dir keeps after its first ingest."""
        data_dir = Path(tempfile.mkdtemp(prefix=f"data-{corpus.size}-{backend}-", dir=self.workdir))
        if backend != "torch":
            self.prepare_onnx(backend)
            (data_dir / "models").mkdir()
            for file in self.models.iterdir():
                try:
                    os.link(file, data_dir / "models" / file.name)
                except OSError:
                    shutil.copy2(file, data_dir / "models" / file.name)
        return data_dir

    def prepare_onnx(self, backend: str) -> None:
        """Export (and quantize) in a fresh process when the backend's file is missing; the one-time
        cost is reported on its own. Quantizing removes the fp32 file, so with onnx and onnx-int8
        both measured, the fp32 one is made again (not timed again) for onnx's next data dir."""
        kind = "int8" if backend == "onnx-int8" else "fp32"
        if any(self.models.glob(f"*-{kind}.onnx")):
            return
        done = run_measured(python_worker("encode.py", "--prepare", "--backend", backend, "--models", str(self.models)),
                            clean_env())
        seconds = last_json(done, f"ONNX export for {backend}")["prepare_seconds"]
        self.results["onnx_export_seconds"].setdefault(backend, seconds)
        log(f"ONNX files for {backend}: {seconds:.1f} s")

    def ingested(self, corpus: Corpus, backend: str) -> Path:
        """An index for the query steps when the ingest step is skipped (not timed)."""
        data_dir = self.fresh_data_dir(corpus, backend)
        last_json(run_measured([QA, "ingest", str(corpus.path), "--json"],
                               clean_env(QA_DATA_DIR=str(data_dir), QA_EMBED_BACKEND=backend)), "qa ingest")
        return data_dir

    # -- step 2: llama-index's default path ---------------------------------------------------------------

    def llamaindex(self, corpus: Corpus, questions: Path, ours: dict) -> dict:
        rows = []
        repeats = self.repeats(corpus.size)
        for repeat in range(repeats):
            data_dir = Path(tempfile.mkdtemp(prefix=f"llamaindex-{corpus.size}-", dir=self.workdir))
            graded = ["--questions", str(questions)] if repeat == repeats - 1 and corpus.graded else []
            done = run_measured(python_worker("baseline.py", "--data-dir", str(data_dir), *graded, str(corpus.path)), clean_env())
            rows.append({**last_json(done, "llama-index baseline"), "peak_rss_mb": done.peak_rss_mb})
            shutil.rmtree(data_dir, ignore_errors=True)
            log(f"{corpus.size} llama-index {repeat + 1}/{repeats}: {rows[-1]['nodes']} nodes in {rows[-1]['seconds']:.1f} s")
        last = rows[-1]
        result = {"embedding": last["embedding"], "documents": last["documents"], "nodes": last["nodes"],
                  "seconds": figure([r["seconds"] for r in rows]), "load_seconds": figure([r["load_seconds"] for r in rows]),
                  "peak_rss_mb": figure([r["peak_rss_mb"] for r in rows], 1)}
        if "hit@10" in last:
            result.update({"hit@10": last["hit@10"], "questions": last["questions"]})
        if "torch" in ours:  # ours / theirs, repeat by repeat
            result["ingest_time_ratio"] = figure([o / r["seconds"] for o, r in zip(ours["torch"]["seconds"]["runs"], rows)])
        return result

    # -- step 3: query latency (warm), cold start ---------------------------------------------------------

    def query(self, corpus: Corpus, questions: Path, data_dir: Path, backend: str) -> dict:
        env = clean_env(QA_DATA_DIR=str(data_dir), QA_EMBED_BACKEND=backend)
        worker = python_worker("query.py", "--questions", str(questions), "--repeats", str(self.repeats(corpus.size)))
        result = last_json(run_measured(worker, env), "query worker")
        runs = result.pop("runs")
        result.update({name: figure([r[name] for r in runs], 2) for name in runs[0]})
        log(f"{corpus.size} query {backend}: search p50 {result['search_p50_ms']['median']:.1f} ms, "
            f"ask p50 {result['ask_p50_ms']['median']:.1f} ms, hit@10 {result['hit@10'] or '-'}")
        return result

    def coldstart(self, corpus: Corpus, questions: Path, data_dir: Path, backend: str) -> dict:
        first = corpus.questions[0]
        command = [QA, "ask", first["question"], "--json"]
        if first.get("question_date"):
            command += ["--as-of", first["question_date"]]
        env = clean_env(QA_DATA_DIR=str(data_dir), QA_EMBED_BACKEND=backend)
        bare = [sys.executable, "-c", "import torch, sentence_transformers"]
        _first_output(command, env), _first_output(bare, env)  # one untimed round: the page cache is warm for all
        asks, imports_ = [], []
        for _ in range(self.repeats(corpus.size)):
            asks.append(_first_output(command, env))
            imports_.append(_first_output(bare, env))
        log(f"{corpus.size} cold start {backend}: qa ask {min(asks):.2f} s, bare import {min(imports_):.2f} s")
        return {"ask_seconds": figure(asks, 3), "import_seconds": figure(imports_, 3),
                "ratio": figure([a / i for a, i in zip(asks, imports_)], 3)}

    # -- steps 4 and 5: the server's memory, concurrency ---------------------------------------------------

    def server(self, corpus: Corpus, questions: Path, data_dir: Path, backend: str) -> dict:
        runs = []
        for repeat in range(self.repeats(corpus.size)):
            runs.append(serving.measure(data_dir, backend, corpus.questions, self.workdir / "serve.log"))
            log(f"{corpus.size} server {backend} {repeat + 1}: single p50 {runs[-1]['single_p50_ms']:.0f} ms, "
                f"8 clients p95 {runs[-1]['concurrent_p95_ms']:.0f} ms, {runs[-1]['answers_per_second']:.1f} answers/s, "
                f"CPU an answer {runs[-1]['single_cpu_ms']:.0f} / {runs[-1]['concurrent_cpu_ms']:.0f} ms (floor "
                f"{runs[-1]['p95_floor']:.1f}×), VmHWM {runs[-1]['peak_rss_mb']:.0f} MB")
        return {"clients": serving.CLIENTS, "asks": serving.CLIENTS * serving.ASKS_PER_CLIENT, "single_asks": serving.SINGLE_ASKS,
                "cores": serving.CORES,
                **{name: figure([r[name] for r in runs], 3) for name in runs[0]}}


def _ingest_figures(rows: list[dict]) -> dict:
    return {
        "chunks": rows[-1]["chunks"],
        "raw_chunks": rows[-1]["raw_chunks"],  # the same as chunks, or the comparison is off (a warning was logged)
        "failed": rows[-1]["failed"],
        "seconds": figure([r["seconds"] for r in rows], 3),
        "wall_seconds": figure([r["wall_seconds"] for r in rows], 3),
        "chunks_per_second": figure([r["chunks"] / r["seconds"] for r in rows], 2),
        "raw_encode_seconds": figure([r["raw_encode_seconds"] for r in rows], 3),
        "raw_load_seconds": figure([r["raw_load_seconds"] for r in rows], 3),
        "raw_chunks_per_second": figure([r["chunks"] / r["raw_encode_seconds"] for r in rows], 2),
        "ratio": figure([r["seconds"] / r["raw_encode_seconds"] for r in rows], 3),
        "ratio_with_load": figure([r["seconds"] / (r["raw_encode_seconds"] + r["raw_load_seconds"]) for r in rows], 3),
        # `qa ingest --json`'s seconds by stage (index/pipeline.py STAGES), and the encoder's time
        # inside the ingest (beside the other stages on onnx) against raw encode of the same chunks
        "stages": {stage: figure([r["stages"].get(stage, 0.0) for r in rows], 3) for stage in rows[-1]["stages"]},
        "encoder_seconds": figure([r["encoder_seconds"] for r in rows], 3) if all(r.get("encoder_seconds") for r in rows) else None,
        "embed_ratio": figure([r["encoder_seconds"] / r["raw_encode_seconds"] for r in rows], 3)
        if all(r.get("encoder_seconds") for r in rows) else None,
        "peak_rss_mb": figure([r["peak_rss_mb"] for r in rows], 1),
        "raw_peak_rss_mb": figure([r["raw_peak_rss_mb"] for r in rows], 1),
    }


def _first_output(command: list[str], env: dict) -> float:
    """Seconds from process start to its first line of output (the answer), or to its exit when it prints none."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline()
    seconds = time.perf_counter() - began
    _, err = process.communicate()
    if process.returncode != 0 or (command[0] == QA and not line.startswith("{")):
        raise RuntimeError(f"{' '.join(command[:2])} failed (exit {process.returncode}): {err[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="seed,300,1000,all", type=parse_sizes,
                        help="seed, all, or a number N (the first N RealTime QA articles), comma-separated")
    parser.add_argument("--backends", default="torch,onnx-int8", type=lambda s: [b for b in s.split(",") if b],
                        help="QA_EMBED_BACKEND values, comma-separated (torch, onnx, onnx-int8)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (default: 3, and 1 for `all`)")
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS, metavar="STEP", help=f"steps to leave out: {', '.join(STEPS)}")
    parser.add_argument("--max-questions", type=int, default=0, help="ask only the first N questions of each size (0: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="the figures (JSON)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the page whose tables are rewritten")
    parser.add_argument("--merge", action="store_true",
                        help="keep from --out the figures of every size, step and backend this run leaves out (each marked with its run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data dirs, logs) and print it")
    parser.add_argument("--report-only", action="store_true", help="only rewrite --doc's tables from --out")
    args = parser.parse_args()
    if not args.report_only:
        workdir = Path(tempfile.mkdtemp(prefix="qa-bench-"))
        try:
            Bench(args, workdir).run()
        finally:
            if args.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        log(f"wrote {args.out}")
    report.write_doc(args.doc, json.loads(args.out.read_text()))
    log(f"updated {args.doc}")


if __name__ == "__main__":
    main()
