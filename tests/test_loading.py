import gzip
import json

from index.documents import Article
from index.loading import Loader, parse_date
from qa.errors import IngestError
from tests.conftest import SEEDS, SEED_ID


def load(*paths):
    return list(Loader().load(paths))


def test_text_file_title_is_first_non_empty_line(tmp_path):
    (tmp_path / "a.md").write_text("\n\n# Big news\n\nBody line one.\nBody line two.\n", encoding="utf-8")
    [article] = load(tmp_path)
    assert article.id == "a.md"
    assert article.title == "Big news"
    assert article.text == "Body line one.\nBody line two."


def test_ids_are_paths_relative_to_the_ingested_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Title\nText", encoding="utf-8")
    assert [a.id for a in load(tmp_path)] == ["sub/b.txt"]
    assert [a.id for a in load(tmp_path / "sub" / "b.txt")] == ["b.txt"]


def test_seed_article_loads_with_its_title():
    [article] = load(SEEDS)
    assert article.id == SEED_ID
    assert article.title.startswith("Japan-U.S. Defense Secretary")
    assert "peace and stability in the Taiwan Strait" in article.text


def test_jsonl_record_fields(tmp_path):
    record = {"id": "x1", "title": "T", "text": "Some text.", "published": "2022-06-12", "source": "cnn.com",
              "url": "https://example.org/a", "authors": ["A. Writer"]}
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    [article] = load(tmp_path / "a.jsonl")
    assert article == Article("x1", "T", "Some text.", "2022-06-12", "cnn.com", "https://example.org/a", ("A. Writer",), article.path)


def test_jsonl_gz_is_read_as_a_stream(tmp_path):
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        for i in range(3):
            handle.write(json.dumps({"id": f"g{i}", "title": "t", "text": f"text {i}"}) + "\n")
    assert [a.id for a in load(tmp_path)] == ["g0", "g1", "g2"]


def test_malformed_jsonl_lines_name_the_line_and_keep_the_rest(tmp_path):
    lines = [json.dumps({"id": "ok1", "text": "fine"}), "{not json", json.dumps({"id": "no-text"}), json.dumps({"id": "ok2", "text": "fine too"})]
    (tmp_path / "a.jsonl").write_text("\n".join(lines), encoding="utf-8")
    items = load(tmp_path / "a.jsonl")
    assert [i.id for i in items if isinstance(i, Article)] == ["ok1", "ok2"]
    errors = [i for i in items if isinstance(i, IngestError)]
    assert [(e.line, "a.jsonl" in str(e)) for e in errors] == [(2, True), (3, True)]
    assert "not valid JSON" in str(errors[0]) and "'text'" in str(errors[1])


def test_bad_files_give_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("  \n\t\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x01\x02" * 50)
    (tmp_path / "latin1.txt").write_bytes("Titre\nCaf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "title-only.txt").write_text("Just a title\n", encoding="utf-8")
    (tmp_path / "good.txt").write_text("Good\nA fine article.", encoding="utf-8")
    items = load(tmp_path)
    assert [a.id for a in items if isinstance(a, Article)] == ["good.txt"]
    errors = {e.source.rsplit("/", 1)[-1]: str(e) for e in items if isinstance(e, IngestError)}
    assert set(errors) == {"empty.txt", "blank.txt", "binary.txt", "latin1.txt", "title-only.txt"}
    assert all("\n" not in message for message in errors.values())
    assert "binary" in errors["binary.txt"] and "UTF-8" in errors["latin1.txt"] and "empty" in errors["empty.txt"]


def test_missing_path_is_an_error_not_an_exception(tmp_path):
    [error] = load(tmp_path / "nope")
    assert isinstance(error, IngestError) and "no such file" in str(error)


def test_parse_date():
    assert parse_date("2022-06-12") == "2022-06-12"
    assert parse_date("2022-06-12T10:00:00Z") == "2022-06-12"
    assert parse_date("June 12") is None
    assert parse_date(None) is None


def test_content_hash_ignores_path_but_not_text():
    a = Article("id", "t", "text", path="a")
    assert a.content_hash() == Article("id", "t", "text", path="b").content_hash()
    assert a.content_hash() != Article("id", "t", "text!", path="a").content_hash()
