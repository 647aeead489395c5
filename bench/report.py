"""results.json → the goals of issue 9 (met or not) and the tables of docs/benchmarks.md.

The doc's tables live between BEGIN and END; everything outside them is written by hand.
"""

from __future__ import annotations

from pathlib import Path

from bench.merge import SIZE_STEPS, kept_run

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
GIB_MB = 1536  # 1.5 GB of peak RSS, in MB of 2**20 bytes
QUERY_GOALS = (  # goal, figure, target in ms, the size it is about
    ("search p50 ≤ 20 ms at ~35k chunks", "search_p50_ms", 20, "all"),
    ("search p95 ≤ 60 ms at ~35k chunks", "search_p95_ms", 60, "all"),
    ("extractive ask p50 ≤ 100 ms", "ask_p50_ms", 100, None),
)


# -- goals ---------------------------------------------------------------------------------------------------

def _sizes(results: dict, step: str) -> list[str]:
    """Sizes where `step` was measured, smallest corpus first."""
    measured = [(s["corpus"]["articles"], name) for name, s in results.get("sizes", {}).items() if step in s]
    return [name for _, name in sorted(measured)]


def _goal(goal: str, figure, target: float, unit: str, size: str | None, step: str,
          at_most: bool = True, needs: str | None = None, backends: tuple = (None,)) -> dict:
    """One goal row from `step`'s figures at `size` for `backends`; `needs` names the size the goal is about
    (met stays null when it was not measured there)."""
    met = None
    if figure is not None and (needs is None or size == needs):
        met = figure <= target if at_most else figure >= target
    return {"goal": goal, "target": target, "unit": unit, "figure": figure, "size": size, "met": met, "step": step,
            "backends": backends}


def _median(node: dict | None, *path: str):
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node["median"] if isinstance(node, dict) else node


def goals(results: dict) -> list[dict]:
    rows = []
    backends = _backends(results)
    sizes = results.get("sizes", {})
    ingest = _sizes(results, "ingest")
    if ingest:
        size = ingest[-1]
        for backend in backends:
            rows.append(_goal(f"ingest ≤ 1.10× raw encode of the same chunks ({backend})",
                              _median(sizes[size]["ingest"], backend, "ratio"), 1.10, "×", size, "ingest", backends=(backend,)))
        for backend in backends:
            rows.append(_goal(f"ingest of all 3,773 articles under 1.5 GB peak RSS ({backend})",
                              _median(sizes[size]["ingest"], backend, "peak_rss_mb"), GIB_MB, "MB", size, "ingest", needs="all",
                              backends=(backend,)))
    speedup = _sizes(results, "int8_speedup")
    if speedup:
        size = speedup[-1]
        rows.append(_goal("int8 ingest of the whole corpus ≥ 2.5× faster than torch fp32 raw encode",
                          _median(sizes[size], "int8_speedup"), 2.5, "×", size, "int8_speedup", at_most=False, needs="all"))
    graded = [s for s in _sizes(results, "query") if all(_hits(sizes[s], b, "default") is not None for b in ("torch", "onnx-int8"))]
    if graded:
        size = graded[-1]
        lost = 100 * (_hits(sizes[size], "torch", "default") - _hits(sizes[size], "onnx-int8", "default"))
        rows.append(_goal("int8 dev hit@10 within 1 point of torch fp32 (points lost)", round(lost, 2), 1.0, "points", size,
                          "query", needs="all", backends=("torch", "onnx-int8")))
    query = _sizes(results, "query")
    if query:
        size = query[-1]
        for backend in backends:
            for goal, name, target, needs in QUERY_GOALS:
                rows.append(_goal(f"{goal} ({backend})", _median(sizes[size]["query"], backend, name), target, "ms", size, "query",
                                  needs=needs, backends=(backend,)))
    cold = _sizes(results, "coldstart")
    if cold:
        for backend in backends:
            rows.append(_goal(f"cold start of `qa ask` ≤ 1.5× the bare torch + sentence-transformers import ({backend})",
                              _median(sizes[cold[-1]]["coldstart"], backend, "ratio"), 1.5, "×", cold[-1], "coldstart",
                              backends=(backend,)))
    served = _sizes(results, "server")
    if served:
        for backend in backends:
            rows.append(_goal(f"8 concurrent clients: p95 ≤ 3× the single-client p50 ({backend})",
                              _median(sizes[served[-1]]["server"], backend, "p95_ratio"), 3.0, "×", served[-1], "server",
                              backends=(backend,)))
    if results.get("imports"):
        importing = [r["command"] for r in results["imports"] if r["imports_torch"]]
        rows.append(_goal("commands that need no model do not import torch", len(importing), 0, "commands", None, "imports"))
    for row in rows:  # a figure kept from an earlier run (--merge) says which (the oldest, if its backends differ)
        step, backends = row.pop("step"), row.pop("backends")
        runs = [run for backend in backends if (run := kept_run(results, row["size"], step, backend))]
        run = min(runs, key=lambda r: r["date"]) if runs else None
        if run:
            row["run"] = run
    return rows


def _backends(results: dict) -> list[str]:
    """This run's backends, then any other that kept figures (--merge) have."""
    backends = list(results.get("options", {}).get("backends", []))
    for section in results.get("sizes", {}).values():
        for step in SIZE_STEPS:
            if step != "llamaindex":  # its figures are not per backend
                backends += [b for b in section.get(step, {}) if b not in backends]
    return backends


# -- tables --------------------------------------------------------------------------------------------------

def _pair(query: dict, name: str) -> str:
    """`p50 / p95` of a query figure pair, or "–" for runs before it was measured."""
    if f"{name}_p50_ms" not in query:
        return "–"
    return f"{fmt(query[f'{name}_p50_ms'])} / {fmt(query[f'{name}_p95_ms'])}"


def fmt(figure, digits: int = 1) -> str:
    """`median (min–max)`, or the median alone when the runs agree (or there was one)."""
    if figure is None:
        return "–"
    if not isinstance(figure, dict):
        return f"{figure:.{digits}f}" if isinstance(figure, float) else str(figure)
    median, low, high = (f"{figure[k]:.{digits}f}" for k in ("median", "min", "max"))
    return median if low == high else f"{median} ({low}–{high})"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["Not measured in this run.", ""]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows), ""]


def _label(results: dict, size: str, step: str, backend: str | None = None) -> str:
    label = "seed" if size == "seed" else f"{results['sizes'][size]['corpus']['articles']:,} articles"
    run = kept_run(results, size, step, backend)
    return label + f" ({_run(run)})" if run else label  # kept from an earlier run by --merge


def _run(run: dict) -> str:
    return f"run of {run['date'][:10]}, `{(run['git_commit'] or 'unknown')[:7]}`"


def _flags(m: dict) -> str:
    return f" [{' '.join(m['cpu_flags'])}]" if m.get("cpu_flags") else ""  # runs before the field have none


def render(results: dict) -> str:
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        f"Run of {m['date']} at commit `{(m['git_commit'] or 'unknown')[:12]}`"
        f"{' (with uncommitted changes)' if m['git_dirty'] else ''}: `bench/run.py {_options(results['options'])}`.",
        "",
        f"Machine: {m['cpu']}{_flags(m)}, {m['cores_usable']} of {m['cores']} cores usable, {m['memory_gb']} GB; {m['os']}; "
        f"Python {m['python']}; {versions}. Load average at start {m['load_average'][0]:.2f}, "
        f"at the end {m.get('load_average_end', [0])[0]:.2f} (figures taken on a busy machine are slower and noisier).",
        "",
        "Figures: median of the repeats (min–max in brackets); ratios are taken within each repeat.",
        "",
        "### Goals of issue 9",
        "",
    ]
    lines += _table(["goal", "target", "figure", "measured at", "met?"], [_goal_row(g) for g in goals(results)])
    sizes = {name: results["sizes"][name] for name in _sizes(results, "corpus")}  # smallest corpus first
    lines += ["### Ingest against raw encode of the same chunks", ""]
    lines += _table(
        ["corpus", "backend", "chunks", "`qa ingest` s", "chunks/s", "raw encode s", "raw chunks/s", "ingest / raw",
         "ingest / (load + raw)", "peak RSS MB (raw)"],
        [[_label(results, size, "ingest", backend), backend, str(f["chunks"]), fmt(f["seconds"]), fmt(f["chunks_per_second"]), fmt(f["raw_encode_seconds"]),
          fmt(f["raw_chunks_per_second"]), fmt(f["ratio"], 2), fmt(f["ratio_with_load"], 2),
          f"{fmt(f['peak_rss_mb'], 0)} ({fmt(f.get('raw_peak_rss_mb'), 0)})"]
         for size, s in sizes.items() for backend, f in s.get("ingest", {}).items()])
    staged = [(size, s, backend, f) for size, s in sizes.items() for backend, f in s.get("ingest", {}).items() if f.get("stages")]
    if staged:
        lines += ["Where `qa ingest`'s time goes (its `--json` stages, seconds, which add up to its time; on onnx "
                  "backends the encoder runs beside the other stages and \"embed\" is the wait for it that they did not "
                  "hide; \"encoder\" is the model's own time, \"encoder / raw\" that against raw encode of the same "
                  "chunks; runs before `encoder_seconds` existed show their \"embed\" there):", ""]
        names = list(staged[-1][3]["stages"])
        lines += _table(["corpus", "backend", *names, "encoder", "encoder / raw"],
                        [[_label(results, size, "ingest", backend), backend, *(fmt(f["stages"].get(n)) for n in names),
                          fmt(f.get("encoder_seconds") or f["stages"].get("embed")), fmt(f.get("embed_ratio"), 2)]
                         for size, s, backend, f in staged])
    speedups = [[_label(results, size, "int8_speedup"), fmt(s["int8_speedup"], 2)] for size, s in sizes.items() if "int8_speedup" in s]
    if speedups:
        lines += _table(["corpus", "int8 speedup: torch raw encode s / int8 `qa ingest` s"], speedups)
    if results.get("onnx_export_seconds"):
        lines += ["One-time ONNX export (and quantization) per data dir, not in the ingest times: " +
                  ", ".join(f"{b} {s:.1f} s" for b, s in results["onnx_export_seconds"].items()) + ".", ""]
    lines += ["### llama-index's default path (`VectorStoreIndex.from_documents` into Chroma) against ours", ""]
    lines += _table(
        ["corpus", "embedding", "nodes / our chunks", "llama-index s", "ours (torch) / llama-index time", "hit@10 llama-index",
         "ours torch dense", "ours torch default", "ours int8 default", "questions"],
        [[_label(results, size, "llamaindex"), li["embedding"].split(" ")[0], f"{li['nodes']} / {_chunks(s)}",
          fmt(li["seconds"]), fmt(li.get("ingest_time_ratio"), 2), pct(li.get("hit@10")),
          pct(_hits(s, "torch", "dense")), pct(_hits(s, "torch", "default")), pct(_hits(s, "onnx-int8", "default")),
          str(li.get("questions", "–"))]
         for size, s in sizes.items() if (li := s.get("llamaindex"))])
    lines += ["### Query (warm process)", ""]
    lines += _table(
        ["corpus", "backend", "chunks", "questions", "search p50 ms", "search p95 ms", "ask p50 ms", "ask p95 ms",
         "filtered search p50 / p95 ms", "with Chroma's filter p50 / p95 ms", "hit@10 dense", "hit@10 default"],
        [[_label(results, size, "query", backend), backend, str(q["chunks"]), str(q["questions"]), fmt(q["search_p50_ms"]), fmt(q["search_p95_ms"]),
          fmt(q["ask_p50_ms"]), fmt(q["ask_p95_ms"]),
          _pair(q, "filtered"), _pair(q, "filtered_chroma"),
          pct(q["hit@10"].get("dense")), pct(q["hit@10"].get("default"))]
         for size, s in sizes.items() for backend, q in s.get("query", {}).items()])
    lines += ["### Cold start: `qa ask` from process start to answer", ""]
    lines += _table(
        ["corpus", "backend", "`qa ask` s", "`import torch, sentence_transformers` s", "ratio"],
        [[_label(results, size, "coldstart", backend), backend, fmt(c["ask_seconds"], 2), fmt(c["import_seconds"], 2), fmt(c["ratio"], 2)]
         for size, s in sizes.items() for backend, c in s.get("coldstart", {}).items()])
    lines += ["### `qa serve`: memory and 8 concurrent clients on /api/ask", ""]
    lines += _table(
        ["corpus", "backend", "startup s", "1 client p50 ms", "8 clients p50 ms", "8 clients p95 ms", "answers/s",
         "p95 (8) / p50 (1)", "its floor", "CPU ms an answer, 1 / 8 clients", "idle CPU ms/s", "peak RSS (VmHWM) MB"],
        [[_label(results, size, "server", backend), backend, fmt(v["startup_seconds"]), fmt(v["single_p50_ms"], 0), fmt(v["concurrent_p50_ms"], 0),
          fmt(v["concurrent_p95_ms"], 0), fmt(v["answers_per_second"], 2), fmt(v["p95_ratio"], 2), fmt(v.get("p95_floor"), 2),
          f"{fmt(v.get('single_cpu_ms'), 0)} / {fmt(v.get('concurrent_cpu_ms'), 0)}", fmt(v.get("idle_cpu_ms_per_s"), 0),
          fmt(v["peak_rss_mb"], 0)]
         for size, s in sizes.items() for backend, v in s.get("server", {}).items()])
    kept = kept_run(results, None, "imports")
    lines += [f"### Commands that need no model{f' ({_run(kept)})' if kept else ''}", ""]
    lines += _table(["command", "heavy packages imported", "seconds"],
                    [[f"`{r['command']}`", ", ".join(r["heavy_imports"]) or "none", f"{r['seconds']:.2f}"]
                     for r in results.get("imports", [])])
    if results.get("skipped"):
        lines += ["Skipped: " + "; ".join(f"{r['step']}{' at ' + r['size'] if r['size'] else ''} ({r['reason']})"
                                        for r in results["skipped"]) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def _options(options: dict) -> str:
    text = f"--sizes {','.join(options['sizes'])} --backends {','.join(options['backends'])}"
    text += f" --repeats {options['repeats']}" if options.get("repeats") else ""
    text += f" --max-questions {options['max_questions']}" if options.get("max_questions") else ""
    text += " --merge" if options.get("merge") else ""
    return text + (f" --skip {' '.join(options['skip'])}" if options.get("skip") else "")


def _chunks(section: dict) -> str:
    return str(next((f["chunks"] for f in section.get("ingest", {}).values()), "–"))


def _hits(section: dict, backend: str, mode: str):
    return section.get("query", {}).get(backend, {}).get("hit@10", {}).get(mode)


def _goal_row(goal: dict) -> list[str]:
    digits = 0 if goal["unit"] in ("MB", "commands") else 2
    figure = "–" if goal["figure"] is None else f"{goal['figure']:.{digits}f} {goal['unit']}"
    met = {True: "yes", False: "**no**", None: "not yet (needs `all`)" if goal["figure"] is not None else "–"}[goal["met"]]
    where = goal["size"] or "–"
    if goal.get("run"):
        where += f" ({_run(goal['run'])})"
    return [goal["goal"], f"{goal['target']:g} {goal['unit']}", figure, where, met]


def write_doc(doc: Path, results: dict) -> None:
    """Replaces what lies between the markers; a doc without them gets them appended."""
    content = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if BEGIN not in content or END not in content:
        content = content.rstrip() + f"\n\n## Latest results\n\n{BEGIN}\n{END}\n"
    head, _, rest = content.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(head + BEGIN + "\n" + render(results) + END + tail)
