"""Exports per-question records for LLM-judged evaluators (ragas, llama-index).

Each line of `ragas.jsonl` carries the fields of ragas' SingleTurnSample (user_input,
retrieved_contexts, response, reference: `EvaluationDataset.from_jsonl` reads it, and they are
llama-index evaluators' query, contexts, response and reference) and, with the same values,
the older ragas names (question, contexts, answer, ground_truth). Unknown fields are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.judge import QuestionResult
from qa.citations import ABSTENTION

FORMATS = ("ragas",)


def ragas_record(result: QuestionResult) -> dict:
    # ragas takes one reference; an unanswerable question has none, and declining is right.
    reference = result.answers[0] if result.answers else ABSTENTION
    return {
        "id": result.id,
        "user_input": result.asked,
        "retrieved_contexts": result.contexts,
        "response": result.answer,
        "reference": reference,
        "question": result.asked,
        "contexts": result.contexts,
        "answer": result.answer,
        "ground_truth": reference,
    }


def export(results: list[QuestionResult], run_dir: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ValueError(fmt)
    target = Path(run_dir) / f"{fmt}.jsonl"
    with target.open("w", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps(ragas_record(result), ensure_ascii=False) + "\n")
    return target
