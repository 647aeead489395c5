"""eval/sets.py: the schema, RealTime QA's layout mapped onto it, splits, and bad lines."""

import datetime as dt
import json
from pathlib import Path

import pytest

from eval.sets import Evidence, load_set
from qa.errors import ConfigError, IngestError

REALTIMEQA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "realtimeqa" / "questions.jsonl"

# Shaped like a RealTime QA record; the content is made up.
RTQA_RECORD = {
    "id": "20220101_0", "split": "dev", "question": "Which city hosted the summit?", "question_date": "2022-01-01",
    "choices": ["Oslo", "Lima", "Pune", "Kobe"], "answer_index": [2], "answer_text": ["Pune"],
    "evidence_doc_ids": ["rtqa_1"], "search_top10_doc_ids": ["rtqa_9", "rtqa_1"],
}


def write(tmp_path, *records, raw: str = "") -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n" + raw, encoding="utf-8")
    return path


def test_the_native_schema(tmp_path):
    record = {
        "id": "q1", "question": "Who?", "answers": ["Kishi"], "answerable": True, "tags": ["who"],
        "evidence": [{"doc_id": "d", "quote": "Kishi said."}], "as_of": "2021-03-20", "conversation": "c1",
    }
    [item] = load_set(write(tmp_path, record))
    assert item.answers == ("Kishi",) and item.evidence == (Evidence("d", "Kishi said."),)
    assert item.as_of == dt.date(2021, 3, 20) and item.conversation == "c1" and item.tags == ("who",)
    assert item.quotes and item.gold_doc_ids == {"d"}


def test_realtimeqa_records_map_onto_the_schema(tmp_path):
    [item] = load_set(write(tmp_path, RTQA_RECORD))
    assert item.answers == ("Pune",) and item.answer_index == (2,) and item.choices[2] == "Pune"
    assert item.evidence == (Evidence("rtqa_1"),) and not item.quotes
    assert item.as_of == dt.date(2022, 1, 1) and item.answerable and item.split == "dev"
    assert item.tags == ("multiple-choice", "gold-article")  # derived: the set has no tags
    assert item.extra == {"search_top10_doc_ids": ["rtqa_9", "rtqa_1"]}


def test_a_split_is_chosen_and_a_missing_one_is_named(tmp_path):
    path = write(tmp_path, RTQA_RECORD, {**RTQA_RECORD, "id": "t", "split": "test"})
    assert [i.id for i in load_set(path, "dev")] == ["20220101_0"]
    with pytest.raises(ConfigError, match="no question .* has split 'train'; its splits are dev, test"):
        load_set(path, "train")


@pytest.mark.parametrize("raw, problem", [
    ("{not json", "not a valid evaluation record"),
    ('{"id": "x"}', "question"),
    ('{"id": "x", "question": "Q?", "choices": ["a"], "answer_index": 3}', "answer_index"),
])
def test_a_bad_line_names_file_and_line(tmp_path, raw, problem):
    path = write(tmp_path, {"id": "ok", "question": "Fine?"}, raw=raw)
    with pytest.raises(IngestError, match=problem) as caught:
        load_set(path)
    assert caught.value.line == 2 and str(path) in str(caught.value)


def test_ids_must_be_unique(tmp_path):
    with pytest.raises(IngestError, match="share an id"):
        load_set(write(tmp_path, {"id": "a", "question": "Q?"}, {"id": "a", "question": "R?"}))


@pytest.mark.skipif(not REALTIMEQA.is_file(), reason="the RealTime QA benchmark is not in ../shared")
def test_the_realtimeqa_dev_split_loads_as_it_is():
    items = load_set(REALTIMEQA, "dev")
    assert len(items) == 329 and all(i.split == "dev" for i in items)
    assert sum(bool(i.evidence) for i in items) == 103
    assert all(i.choices and i.answer_index and i.as_of for i in items)
