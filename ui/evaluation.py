"""The Evaluation tab: run a set through the service with a progress bar, then the summary,
the questions (failures first), the plots, and the report to download. The runner is eval/'s."""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from functools import cache
from pathlib import Path

import gradio as gr

from qa.errors import QAError
from qa.service import BACKENDS

ROOT = Path(__file__).resolve().parent.parent
QUESTION_HEADERS = ["id", "verdict", "question", "answer", "what went wrong"]


def eval_sets(data_dir: Path) -> list[tuple[str, str]]:
    """(label, path) of the sets shipped in eval/ and those saved in QA_DATA_DIR/eval-sets/."""
    found = sorted((ROOT / "eval").glob("*.jsonl")) + sorted((Path(data_dir) / "eval-sets").glob("*.jsonl"))
    return [(p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else p.name, str(p)) for p in found]


def _run_stream(service, items):
    """Each QuestionResult as it is judged, then the list of them all (or the exception)."""
    from eval.runner import run

    done: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            done.put(run(service, items, done.put))
        except Exception as exc:  # handed to the UI's thread
            done.put(exc)

    threading.Thread(target=work, name="ui-eval", daemon=True).start()
    while True:
        item = done.get()
        yield item
        if isinstance(item, (list, Exception)):
            return


def _plots(summary: dict, results) -> str:
    from eval import plots
    from eval.summary import METRICS, TAG_METRICS

    overall, tags = summary["overall"], list(summary["per_tag"])
    heat = [[summary["per_tag"][t][m] for m in TAG_METRICS] for t in tags]
    return (
        "<h4>Metrics</h4>" + plots.bar_chart([(name, overall[name]) for name in METRICS])
        + "<h4>Latency</h4>" + plots.histogram([r.latency_ms for r in results])
        + "<h4>Per tag</h4>" + plots.heatmap([f"{t} ({summary['per_tag'][t]['questions']})" for t in tags], list(TAG_METRICS), heat)
    )


def _tables(summary: dict, results) -> tuple[list[list], list[list]]:
    from eval.markdown_report import shown
    from eval.summary import LATENCY, METRICS

    metrics = [[n, shown(n, summary["overall"][n]), summary["counts"].get(n, summary["questions"])] for n in (*METRICS, *LATENCY)]
    ordered = sorted(results, key=lambda r: r.passed)  # failures first, file order kept within each
    questions = [[r.id, "pass" if r.passed else "FAIL", r.question, r.answer, r.reason] for r in ordered]
    return metrics, questions


def evaluation_tab(service) -> gr.Dropdown:
    """Builds the tab; returns the set picker, whose choices the caller refreshes on load."""
    with gr.Row():
        picked = gr.Dropdown([], label="Evaluation set", scale=3, elem_id="eval-set")
        upload = gr.File(label="Or upload a set (.jsonl, schema in eval/README.md)", file_types=[".jsonl"], scale=2, elem_id="eval-upload")
        backend = gr.Dropdown(list(BACKENDS), value=service.settings.llm, label="Answer backend", scale=1, elem_id="eval-backend")
    start = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
    summary_md = gr.Markdown(elem_id="eval-summary")
    report = gr.File(label="Report and results", file_count="multiple", interactive=False, elem_id="eval-report")
    metrics = gr.Dataframe(headers=["metric", "value", "questions"], value=[], interactive=False, elem_id="eval-metrics")
    questions = gr.Dataframe(headers=QUESTION_HEADERS, value=[], interactive=False, wrap=True, max_height=400, elem_id="eval-questions")
    plots_html = gr.HTML(elem_id="eval-plots")

    def run_set(set_path, uploaded, backend, progress=gr.Progress()):
        from eval.report import write_run
        from eval.runs import new_run_dir, run_config
        from eval.sets import load_set
        from eval.summary import summarize

        known = {path for _, path in eval_sets(service.settings.data_dir)}
        path = Path(uploaded) if uploaded else Path(set_path) if set_path in known else None
        if path is None:  # only listed sets: the picker must not become a way to read other files
            raise gr.Error("pick an evaluation set or upload one")
        try:
            items = load_set(path)
            answering = service.with_llm(backend)
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        passed = 0
        progress((0, len(items)), desc="questions")
        for n, item in enumerate(_run_stream(answering, items), start=1):
            if isinstance(item, list):
                results = item
            elif isinstance(item, Exception):
                raise gr.Error(str(item)) if isinstance(item, QAError) else item
            else:
                passed += item.passed
                progress((n, len(items)), desc=f"{n} of {len(items)} questions, {passed} passed")
        summary = {"config": run_config(answering, path, None, None, results), **summarize(results)}
        run_dir = write_run(new_run_dir(service.settings.data_dir), summary, results)
        metric_rows, question_rows = _tables(summary, results)
        overall = summary["overall"]
        text = (f"**{summary['questions']} questions, {overall['passed'] * 100:.1f} % passed** "
                f"(backend `{backend}`, {summary['config']['articles']} articles). Run saved in `{run_dir}`.")
        return text, _downloads(run_dir), metric_rows, question_rows, _plots(summary, results)

    start.click(run_set, [picked, upload, backend], [summary_md, report, metrics, questions, plots_html],
                api_name="evaluate", concurrency_limit=1)
    return picked


@cache
def _download_folder() -> tempfile.TemporaryDirectory:
    """One per process, made at the first evaluation run and removed at exit."""
    return tempfile.TemporaryDirectory(prefix="qa-eval-")


def _downloads(run_dir: Path) -> list[str]:
    """Copies in this process's temp folder: Gradio serves its own cache copy, never the data dir.
    Each run replaces the last run's copies (runs are one at a time: concurrency_limit=1)."""
    target = Path(_download_folder().name)
    return [str(shutil.copy(run_dir / name, target / name)) for name in ("report.html", "results.jsonl", "summary.json")]


def set_choices(service):
    choices = eval_sets(service.settings.data_dir)
    return gr.update(choices=choices, value=choices[0][1] if choices else None)
