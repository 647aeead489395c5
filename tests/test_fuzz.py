"""Fuzzing the loaders, the ingest pipeline, `qa ingest` and the API: bad input gives clear errors, never a crash.

Hypothesis writes files of every supported type from random bytes, odd encodings (UTF-16 and
UTF-32 with and without a byte order mark, latin-1, Shift JIS, mixed), huge lines, NUL bytes,
deeply nested or invalid JSON, truncated or corrupted gzip, broken HTML and mutated PDFs. Each
file must give articles that can be stored, or one-line errors that name it (and the line, for
JSON Lines). Schemathesis sends requests generated from /api/openapi.json to a real `qa serve`:
no 500s and no tracebacks. The short runs are part of `make test`; the long ones are marked
`reliability`, and every run adds its count to test-artifacts/fuzz.txt.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import loading
from index.documents import Article
from index.formats import MAX_TITLE_CHARS
from index.loading import Loader
from index.pipeline import STATUSES
from qa.errors import IngestError
from tests.conftest import QA_BIN, record_fuzz_counts

TRIED: Counter[str] = Counter()  # inputs tried, by fuzzer: printed and recorded at the end of the module
SMALL_LINE_LIMIT = 4096  # stands in for the 10 MB JSON Lines limit, so huge lines cost little to make

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis", "koi8-r")
WORDS = st.sampled_from("the storm harbor mayor said on Friday café naïve 東京 Москва قال \u202e \t \x00 \x1b[31m [/bold] <b> &amp;".split(" "))
prose = st.lists(WORDS, max_size=60).map(" ".join) | st.text(max_size=400)


@pytest.fixture(scope="module", autouse=True)
def record_counts():
    yield
    record_fuzz_counts(TRIED)


# -- what a file may hold --------------------------------------------------------------------------------


@st.composite
def encoded(draw, text=prose) -> bytes:
    return draw(text).encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@st.composite
def mixed_encodings(draw) -> bytes:
    return b"".join(draw(st.lists(encoded(), min_size=2, max_size=4)))


@st.composite
def huge_line(draw) -> bytes:
    unit = draw(st.sampled_from([b"a", b"word ", "é".encode(), b"\xe9", b"\x00", b"<p>", b'{"text": "']))
    return draw(st.sampled_from([b"", b"Title\n", b"Title\n\n"])) + unit * draw(st.integers(1, 60_000))


@st.composite
def with_nuls(draw, inner) -> bytes:
    data = bytearray(draw(inner))
    for _ in range(draw(st.integers(1, 5))):
        data.insert(draw(st.integers(0, len(data))), 0)
    return bytes(data)


@st.composite
def mutated(draw, inner) -> bytes:
    """Truncated, with bytes flipped, or with random bytes inserted."""
    data = bytearray(draw(inner))
    how = draw(st.sampled_from(["truncate", "flip", "insert"]))
    if how == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)):]
    elif how == "flip" and data:
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    else:
        data[draw(st.integers(0, len(data))):0] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | prose,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["name", "text", "a"]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["id", "doc_id", "title", "headline", "text", "body", "content", "published", "date", "publish_date",
          "published_at", "source", "outlet", "site", "url", "link", "authors", "author"]


@st.composite
def record(draw) -> dict:
    """An article object whose fields hold anything JSON can: mostly with a text, so the other fields get read."""
    fields = draw(st.dictionaries(st.sampled_from(FIELDS), json_values | prose, max_size=8))
    if draw(st.booleans()):
        fields["text"] = draw(prose.filter(str.strip))
    return fields


@st.composite
def json_text(draw) -> bytes:
    kind = draw(st.sampled_from(["records", "record", "value", "deep", "bigint", "surrogate", "invalid"]))
    if kind == "records":
        text = json.dumps(draw(st.lists(record(), max_size=4)), ensure_ascii=draw(st.booleans()))
    elif kind == "record":
        text = json.dumps(draw(record()), ensure_ascii=draw(st.booleans()))
    elif kind == "value":
        text = json.dumps(draw(json_values))
    elif kind == "deep":
        depth = draw(st.integers(500, 200_000))
        text = draw(st.sampled_from(["[", '{"a":'])) * depth + draw(st.sampled_from(["]" * depth, "}" * depth, "1"]))
    elif kind == "bigint":
        text = '{"text": "t", "id": ' + "9" * draw(st.integers(4000, 20_000)) + "}"
    elif kind == "surrogate":
        text = '{"text": "a \\ud800 b", "title": "\\udfff", "id": "x\\udbff", "authors": ["\\ud83d"]}'
    else:
        text = json.dumps(draw(record()))[: draw(st.integers(0, 40))]
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])), errors="replace")


@st.composite
def jsonl_text(draw) -> bytes:
    lines = draw(st.lists(json_text() | st.just(b"") | encoded() | huge_line(), max_size=6))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + b"\n".join(line.replace(b"\n", b" ") for line in lines)


@st.composite
def gzipped(draw) -> bytes:
    data = gzip.compress(draw(jsonl_text()))
    return draw(st.just(data) | mutated(st.just(data)))


@st.composite
def html(draw) -> bytes:
    tags = st.sampled_from(["<html>", "<body>", "<article>", "<p>", "</p>", "<div>", "<<", ">>", "<!--", "-->", "<script>",
                            "</script>", "<title>", "<meta charset='shift_jis'>", "<h1>", "&#0;", "&#xD800;", "<![CDATA[",
                            "<svg><foreignObject>", "<span style='display:none'>", "</html>"])
    parts = draw(st.lists(tags | prose, max_size=40))
    return "".join(parts).encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


def _sample_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Harbour report")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "The harbour reopened on Monday after the storm. Ferries resumed their schedules.")
    return bytes(pdf.output())


PDF = _sample_pdf()
pdfs = st.just(PDF) | mutated(st.just(PDF)) | st.binary(max_size=2048).map(lambda b: b"%PDF-1.4\n" + b)

TEXTS = st.binary(max_size=2048) | encoded() | mixed_encodings() | huge_line() | with_nuls(encoded())
CONTENT = {
    ".txt": TEXTS,
    ".md": TEXTS,
    ".html": html() | with_nuls(html()) | huge_line() | st.binary(max_size=1024),
    ".json": json_text() | mutated(json_text()) | st.binary(max_size=1024),
    ".jsonl": jsonl_text() | mutated(jsonl_text()),
    ".jsonl.gz": gzipped() | st.binary(max_size=512),
    ".pdf": pdfs,
}
files = st.sampled_from(sorted(CONTENT)).flatmap(lambda suffix: st.tuples(st.just(suffix), CONTENT[suffix]))


# -- the loaders --------------------------------------------------------------------------------------------


def assert_clear(items: list, path: Path, suffix: str) -> None:
    """Articles that can be stored, or one-line errors naming the file (and the line, for JSON Lines)."""
    assert items, f"{path.name} gave neither an article nor an error"
    for item in items:
        if isinstance(item, IngestError):
            message = str(item)
            assert item.source == str(path) and message.startswith(str(path)), message
            assert item.reason.strip() and "\n" not in message and "Traceback" not in message, message
            assert item.line is None or (item.line >= 1 and suffix in (".json", ".jsonl", ".jsonl.gz")), message
            continue
        assert isinstance(item, Article)
        assert item.text.strip() and len(item.title) <= MAX_TITLE_CHARS + 1
        for value in (item.id, item.title, item.text, item.source or "", item.url or "", *item.authors, *item.warnings):
            value.encode("utf-8")  # SQLite and Chroma take UTF-8 only: a lone surrogate would fail there
        assert item.content_hash() and item.metadata()["doc_id"] == item.id


def load_one(suffix: str, data: bytes) -> tuple[Path, list]:
    # hypothesis runs thousands of examples per test: each gets a folder that is gone when it returns
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        path = Path(folder) / f"case{suffix}"
        path.write_bytes(data)
        with mock.patch.object(loading, "MAX_LINE_BYTES", SMALL_LINE_LIMIT):
            return path, list(Loader(max_file_mb=1).load([path]))


FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@given(files)
@settings(max_examples=150, **FUZZ)
def test_loaders_give_articles_or_clear_errors(case):
    suffix, data = case
    TRIED["loaders (make test)"] += 1
    path, items = load_one(suffix, data)
    assert_clear(items, path, suffix)


@pytest.mark.reliability
@given(files)
@settings(max_examples=5000, **FUZZ)
def test_loaders_give_articles_or_clear_errors_long(case):
    suffix, data = case
    TRIED["loaders (reliability)"] += 1
    path, items = load_one(suffix, data)
    assert_clear(items, path, suffix)


def test_odd_encodings_are_read_not_refused(tmp_path):
    text = "Café au lait in Zürich\n\nThe naïve barista served crème brûlée on Friday, officials said.\n"
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig", "cp1252"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        [article] = Loader().load([path])
        assert isinstance(article, Article) and article.title == "Café au lait in Zürich", (encoding, article)
        assert "crème brûlée" in article.text
        assert (encoding in ("utf-16", "utf-32", "utf-8-sig")) == (not article.warnings), (encoding, article.warnings)


def test_a_huge_jsonl_line_is_skipped_without_being_read_whole(tmp_path):
    path = tmp_path / "feed.jsonl"
    huge = json.dumps({"text": "x" * (loading.MAX_LINE_BYTES + 10)})
    path.write_text(json.dumps({"id": "a", "text": "first"}) + "\n" + huge + "\n" + json.dumps({"id": "b", "text": "after"}) + "\n")
    reads = []
    real_readline = io.BufferedReader.readline

    class Spy(io.BufferedReader):
        def readline(self, size=-1):
            reads.append(size)
            return real_readline(self, size)

    with mock.patch.object(loading, "open", lambda p, mode: Spy(io.FileIO(p, "rb")), create=True):
        items = list(Loader().load([path]))
    assert [getattr(i, "id", None) for i in items] == ["a", None, "b"]
    assert items[1].line == 2 and "over 10 MB" in items[1].reason
    assert all(0 < size <= loading.MAX_LINE_BYTES + 1 for size in reads)  # never an unbounded read


# -- through the pipeline and `qa ingest` ---------------------------------------------------------------------


def ingest_checked(service, suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        (Path(folder) / f"case{suffix}").write_bytes(data)
        report = service.ingest([Path(folder)])
    assert report.results
    for result in report.results:
        assert result.status in STATUSES and (result.status != "failed" or result.message.strip())
        if result.status in ("added", "updated"):
            stored = service.document(result.doc_id)
            assert stored["text"].strip() and stored["chunks"] == result.chunks


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory, embedder):
    from qa.service import QAService
    from qa.settings import Settings

    return QAService(Settings(data_dir=tmp_path_factory.mktemp("fuzz-store"), max_file_mb=0.02), embedder=embedder)


@given(files)
@settings(max_examples=15, **FUZZ)
def test_ingest_stores_what_loads_and_reports_the_rest(fuzz_service, case):
    TRIED["ingest pipeline (make test)"] += 1
    ingest_checked(fuzz_service, *case)


@pytest.mark.reliability
@given(files)
@settings(max_examples=400, **FUZZ)
def test_ingest_stores_what_loads_and_reports_the_rest_long(fuzz_service, case):
    TRIED["ingest pipeline (reliability)"] += 1
    ingest_checked(fuzz_service, *case)


@pytest.mark.reliability
@given(st.lists(files, min_size=1, max_size=12))
@settings(max_examples=8, **FUZZ)
def test_qa_ingest_reports_every_file_without_a_traceback(cases):
    """The command itself (a new process each time): exit 0 or 1, a JSON summary, no traceback."""
    TRIED["qa ingest files (reliability)"] += len(cases)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for number, (suffix, data) in enumerate(cases):
            (root / "in").mkdir(exist_ok=True)
            (root / "in" / f"case{number}{suffix}").write_bytes(data)
        env = {"QA_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "QA_MAX_FILE_MB": "0.25"}
        run = subprocess.run([QA_BIN, "ingest", str(root / "in"), "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1) and "Traceback" not in run.stderr and "unexpected failure" not in run.stderr, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    named = {r["source"].split("/in/")[-1].split(":")[0].split("#")[0] for r in summary["results"]}
    assert named == {f"case{n}{suffix}" for n, (suffix, _) in enumerate(cases)}
    assert (run.returncode == 1) == (summary["failed"] > 0)
