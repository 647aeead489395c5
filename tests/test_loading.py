"""Loading every supported format, and the clear one-line errors for bad input."""

import datetime as dt
import gzip
import json
import socket


from index.documents import Article
from index.documents import days_since_epoch
from index.formats import normalise_source, parse_date, title_from_url
from index.loading import Loader
from qa.errors import IngestError
from tests.conftest import NEWS_PAGE, SEED_ID, SEEDS




def load(*paths, **options):
    return list(Loader(**options).load(paths))


def articles(items):
    return [i for i in items if isinstance(i, Article)]


def errors(items):
    return [i for i in items if isinstance(i, IngestError)]


def test_text_file_title_is_first_non_empty_line(tmp_path):
    (tmp_path / "a.md").write_text("\n\n# Big news\n\nBody line one.\nBody line two.\n", encoding="utf-8")
    [article] = load(tmp_path)
    assert (article.id, article.title, article.text) == ("a.md", "Big news", "Body line one.\nBody line two.")
    assert article.root == str(tmp_path.resolve())


def test_ids_are_paths_relative_to_the_ingested_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Title\nText", encoding="utf-8")
    assert [a.id for a in load(tmp_path)] == ["sub/b.txt"]
    assert [a.id for a in load(tmp_path / "sub" / "b.txt")] == ["b.txt"]


def test_seed_article_loads_with_its_title():
    [article] = load(SEEDS)
    assert article.id == SEED_ID and article.title.startswith("Japan-U.S. Defense Secretary")


def test_jsonl_record_fields(tmp_path):
    record = {"id": "x1", "title": "T", "text": "Some text.", "published": "2022-06-12", "source": "cnn.com",
              "url": "https://example.org/a", "authors": ["A. Writer"]}
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    [article] = load(tmp_path / "a.jsonl")
    assert (article.id, article.title, article.text, article.published, article.source, article.url, article.authors) == (
        "x1", "T", "Some text.", "2022-06-12", "cnn.com", "https://example.org/a", ("A. Writer",))


def test_an_untitled_record_takes_its_title_from_the_url_slug(tmp_path):
    records = [
        {"id": "slug", "text": "Ad player text only.", "url": "https://www.cnn.com/2022/06/15/business/ford-recall/index.html"},
        {"id": "bare", "text": "Some text.", "url": "https://example.org/click"},
        {"id": "titled", "title": "Own title", "text": "Some text.", "url": "https://example.org/2022/other-words-here"},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    by_id = {a.id: a for a in load(tmp_path / "a.jsonl")}
    assert by_id["slug"].title == "Ford recall" and any("URL" in w for w in by_id["slug"].warnings)
    assert by_id["bare"].title == "" and not by_id["bare"].warnings  # one word is no headline
    assert by_id["titled"].title == "Own title"


def test_title_from_url_takes_the_wordiest_segment_and_skips_ids():
    live = "https://www.cnn.com/europe/live-news/russia-ukraine-war-news-07-12-22/h_c164ac931cc8414108b8bbae8f859e65"
    assert title_from_url(live) == "Russia ukraine war news 07 12 22"
    assert title_from_url("https://a.b/2022/tony-awards-photos-2022/index.html#:~:text=x%20y") == "Tony awards photos 2022"
    assert title_from_url("https://a.b/videos/desantis-vineyard-probe-vpx.cnn") == "Desantis vineyard probe vpx"
    assert title_from_url("https://a.b/p?slug=query-words-ignored") == ""
    assert title_from_url("http://[::1") == "" and title_from_url(None) == ""


def test_json_aliases_are_accepted(tmp_path):
    record = {"doc_id": "d9", "headline": "H", "body": "Body text.", "publish_date": "March 4, 2022",
              "outlet": "https://www.Reuters.com/world", "author": "Sam Lee"}
    (tmp_path / "one.json").write_text(json.dumps(record), encoding="utf-8")
    (tmp_path / "many.json").write_text(json.dumps([{"content": "c1", "date": "2021-01-02"}, {"text": "c2", "site": "bbc.co.uk"}]), encoding="utf-8")
    by_id = {a.id: a for a in load(tmp_path)}
    assert set(by_id) == {"d9", "many.json#1", "many.json#2"}
    d9 = by_id["d9"]
    assert (d9.title, d9.text, d9.published, d9.source, d9.authors) == ("H", "Body text.", "2022-03-04", "reuters.com", ("Sam Lee",))
    assert by_id["many.json#1"].published == "2021-01-02" and by_id["many.json#2"].source == "bbc.co.uk"


def test_jsonl_gz_is_read_as_a_stream(tmp_path):
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        for i in range(3):
            handle.write(json.dumps({"id": f"g{i}", "title": "t", "text": f"text {i}"}) + "\n")
    assert [a.id for a in load(tmp_path)] == ["g0", "g1", "g2"]


def test_html_news_page_main_text_and_metadata(tmp_path):
    (tmp_path / "storm.html").write_text(NEWS_PAGE, encoding="utf-8")
    [article] = load(tmp_path)
    assert article.title == "Storm hits coast"
    assert article.published == "2022-03-04" and article.source == "example.com"
    assert article.url == "https://www.example.com/2022/03/04/storm" and article.authors == ("Jane Roe",)
    assert "knocked out power" in article.text and "Repairs to the grid" in article.text
    assert "Copyright" not in article.text and "Home | World" not in article.text


def test_pdf_text_is_extracted(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Harbour report")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "The harbour reopened on Monday after the storm. Ferries resumed their schedules.")
    pdf.output(str(tmp_path / "report.pdf"))
    [article] = load(tmp_path)
    assert article.title == "Harbour report" and "harbour reopened on Monday" in article.text


def test_non_utf8_text_is_detected_with_a_warning(tmp_path):
    (tmp_path / "cp1252.txt").write_bytes("Café news\nThe café served crème brûlée to the mayor’s guests all weekend long.".encode("cp1252"))
    [article] = load(tmp_path)
    assert article.title == "Café news" and "crème brûlée" in article.text
    assert any("not UTF-8" in w for w in article.warnings)


def test_dates_unparseable_or_future_become_undated_with_a_warning(tmp_path):
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    rows = [{"id": "f", "text": "t", "published": future}, {"id": "u", "text": "t", "published": "sometime soon"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    by_id = {a.id: a for a in load(tmp_path)}
    assert by_id["f"].published is None and "future" in by_id["f"].warnings[0]
    assert by_id["u"].published is None and "not understood" in by_id["u"].warnings[0]


def test_malformed_jsonl_lines_name_the_line_and_keep_the_rest(tmp_path):
    lines = [json.dumps({"id": "ok1", "text": "fine"}), "{not json", json.dumps({"id": "no-text"}), json.dumps({"id": "ok2", "text": "fine too"})]
    (tmp_path / "a.jsonl").write_text("\n".join(lines), encoding="utf-8")
    items = load(tmp_path / "a.jsonl")
    assert [a.id for a in articles(items)] == ["ok1", "ok2"]
    problems = errors(items)
    assert [(e.line, "a.jsonl" in str(e)) for e in problems] == [(2, True), (3, True)]
    assert "not valid JSON" in str(problems[0]) and "'text'" in str(problems[1])


def test_bad_files_give_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("  \n\t\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x01\x02" * 50)
    (tmp_path / "title-only.txt").write_text("Just a title\n", encoding="utf-8")
    (tmp_path / "menu.html").write_text("<html><body><nav>Home</nav></body></html>", encoding="utf-8")
    (tmp_path / "huge.txt").write_bytes(b"Title\n" + b"word " * (11 * 1024 * 1024))  # 55 MB
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "good.txt").write_text("Good\nA fine article.", encoding="utf-8")
    items = load(tmp_path)
    assert [a.id for a in articles(items)] == ["good.txt"]
    found = {e.source.rsplit("/", 1)[-1]: str(e) for e in errors(items)}
    assert set(found) == {"empty.txt", "blank.txt", "binary.txt", "title-only.txt", "menu.html", "huge.txt", "broken.pdf"}
    assert all("\n" not in message for message in found.values())
    assert "binary" in found["binary.txt"] and "empty" in found["empty.txt"]
    assert "no article text" in found["menu.html"] and "QA_MAX_FILE_MB" in found["huge.txt"] and "PDF" in found["broken.pdf"]


def test_missing_path_is_an_error_not_an_exception(tmp_path):
    [error] = load(tmp_path / "nope")
    assert isinstance(error, IngestError) and "no such file" in str(error)


def test_urls_are_fetched_and_extracted(news_site):
    [article] = load(f"{news_site}/storm")
    assert article.id == f"{news_site}/storm" and article.title == "Storm hits coast"
    assert "knocked out power" in article.text and article.published == "2022-03-04"


def test_unreachable_and_missing_urls_are_clear_errors(news_site):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    missing, unreachable = load(f"{news_site}/gone", f"http://127.0.0.1:{closed}/x", fetch_timeout=3)
    assert "404" in str(missing) and "cannot fetch" in str(unreachable)


def test_parse_date_and_days():
    assert parse_date("2022-06-12T10:00:00Z") == ("2022-06-12", None)
    assert parse_date("Sun, 12 Jun 2022 10:00:00 GMT")[0] == "2022-06-12"
    assert parse_date(None) == (None, None)
    assert days_since_epoch("1970-01-11") == 10


def test_normalise_source():
    assert normalise_source("https://www.CNN.com/2022/x", None) == "cnn.com"
    assert normalise_source("CNN", "https://edition.cnn.com/a") == "edition.cnn.com"
    assert normalise_source("Reuters", None) == "Reuters"


def test_content_hash_ignores_where_it_came_from():
    a = Article("id", "t", "text", path="a", root="r1")
    assert a.content_hash() == Article("id", "t", "text", path="b", root="r2", warnings=("w",)).content_hash()
    assert a.content_hash() != Article("id", "t", "text!", path="a").content_hash()
