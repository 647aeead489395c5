"""Evaluation sets: JSONL questions with acceptable answers and evidence (schema in eval/README.md).

Records in RealTime QA's layout (`evidence_doc_ids`, `answer_text`, `question_date`) are read
as they are, mapped onto the same fields.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import ConfigError, IngestError


@dataclass(frozen=True)
class Evidence:
    doc_id: str
    quote: str = ""  # empty when only the article is known


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    answerable: bool = True
    choices: tuple[str, ...] = ()
    answer_index: tuple[int, ...] = ()  # indices into `choices` that are right
    as_of: dt.date | None = None
    tags: tuple[str, ...] = ()
    conversation: str | None = None
    split: str | None = None
    extra: dict = field(default_factory=dict, compare=False)  # fields the schema does not use

    @property
    def gold_doc_ids(self) -> set[str]:
        return {e.doc_id for e in self.evidence}

    @property
    def quotes(self) -> list[Evidence]:
        return [e for e in self.evidence if e.quote]


KNOWN = {
    "id", "question", "answers", "evidence", "answerable", "choices", "answer_index", "as_of",
    "question_date", "tags", "conversation", "split", "evidence_doc_ids", "answer_text",
}


def parse_item(record: dict, number: int) -> EvalItem:
    """One JSON object → EvalItem; KeyError/TypeError/ValueError on a malformed record."""
    if not isinstance(record, dict):
        raise TypeError("expected a JSON object")
    question = record["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    evidence = [Evidence(e["doc_id"], e.get("quote") or "") for e in record.get("evidence", [])]
    evidence += [Evidence(doc_id) for doc_id in record.get("evidence_doc_ids", [])]
    answers = record.get("answers", record.get("answer_text", []))
    index = record.get("answer_index", [])
    index = [index] if isinstance(index, int) else index
    choices = record.get("choices") or []
    if any(not 0 <= i < len(choices) for i in index):
        raise ValueError("'answer_index' must point into 'choices'")
    date = record.get("as_of") or record.get("question_date")
    tags = record.get("tags")
    if tags is None:  # sets without tags (RealTime QA) still get a useful per-tag breakdown
        tags = (["multiple-choice"] if choices else []) + (["gold-article"] if evidence else ["no-gold-article"])
    return EvalItem(
        id=str(record.get("id", number)),
        question=question,
        answers=tuple(str(a) for a in answers),
        evidence=tuple(evidence),
        answerable=bool(record.get("answerable", True)),
        choices=tuple(str(c) for c in choices),
        answer_index=tuple(int(i) for i in index),
        as_of=dt.date.fromisoformat(str(date)[:10]) if date else None,
        tags=tuple(str(t) for t in tags),
        conversation=record.get("conversation"),
        split=record.get("split"),
        extra={k: v for k, v in record.items() if k not in KNOWN},
    )


def load_set(path: str | Path, split: str | None = None) -> list[EvalItem]:
    """Every item of the set (or of one split), in file order; a bad line names file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(str(path), f"cannot read the evaluation set ({exc})") from exc
    items: list[EvalItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(parse_item(json.loads(line), number))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise IngestError(str(path), f"not a valid evaluation record ({exc!r}); see eval/README.md", number) from exc
    if len({item.id for item in items}) != len(items):
        raise IngestError(str(path), "two questions share an id; ids must be unique")
    if split is None:
        return items
    chosen = [item for item in items if item.split == split]
    if not chosen:
        splits = sorted({str(item.split) for item in items})
        raise ConfigError(f"no question in {path} has split {split!r}; its splits are {', '.join(splits)}")
    return chosen
