"""The UI in a real browser: Playwright driving Debian's chromium against a real `qa serve`.

Screenshots land in test-artifacts/ (git-ignored); docs/ui.png is written when missing, or
when QA_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright import sync_api  # in the dev extra: a missing install fails, it does not skip

from tests.conftest import ROOT
from tests.serving import ingest_seeds, qa_serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium to drive: `apt-get install -y chromium` (.ci/run does this as root)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"
WAIT_MS = 90_000  # the machine may be busy; a question takes seconds, not minutes
HOSTILE_ARTICLE = (
    "Harbor town restores lighthouse <img src=x onerror=\"document.title='pwned'\">\n\n"
    "The town of Port Ellery reopened its 1870 lighthouse on Saturday after a two-year restoration.\n\n"
    "Mayor Linnea Okafor said the lamp would be lit every evening from May to October.\n"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    with qa_serve(folder) as url:
        ingest_seeds(url)
        yield url, folder / "data"


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1400, "height": 1000}, accept_downloads=True,
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server + "/")
    page.wait_for_selector("#question textarea")
    yield page
    page.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    return ARTIFACTS / name


def ask(page, question: str, turn: int) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_selector(f"#chat #turn-{turn}")


def test_the_seed_question_streams_in_with_a_chip_and_the_quote_highlighted(page):
    # Record whether the chat ever showed an answer still being written.
    page.evaluate("""() => {
        window.sawStreaming = false;
        new MutationObserver(() => { if (document.querySelector('#chat .turn.streaming')) window.sawStreaming = true; })
            .observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
    }""")
    ask(page, SEED_QUESTION, 1)
    assert page.evaluate("window.sawStreaming")
    answer = page.locator("#turn-1 .qa-answer")
    assert "peace and stability in the Taiwan Strait" in answer.inner_text()
    assert answer.locator("a.cite-chip").first.inner_text() == "[1]"
    card = page.locator("#cite-1-1")
    assert "peace and stability in the Taiwan Strait" in card.locator("mark").inner_text()
    assert card.locator(".badge.ok").inner_text() == "supported"
    assert "as of " in page.locator("#turn-1").inner_text()
    answer.locator("a.cite-chip").first.click()
    page.wait_for_selector("#cite-1-1.flash")
    path = shot(page, "ask.png")
    docs = ROOT / "docs" / "ui.png"
    if not docs.exists() or os.environ.get("QA_UPDATE_SCREENSHOT") == "1":
        shutil.copy(path, docs)


def test_a_follow_up_in_the_same_chat_is_rewritten_and_its_sources_kept(page):
    ask(page, "Who attended the 2+2 meeting in Tokyo?", 1)
    ask(page, "And what did they say about China?", 2)
    assert "searched for:" in page.locator("#turn-2").inner_text()
    assert page.locator("#sources details").count() == 2  # the first answer's sources are folded, not lost
    shot(page, "follow-up.png")
    page.click("#new-chat")
    page.wait_for_selector("#chat .qa-chat.empty")


def test_filters_and_an_abstention_are_shown_plainly(page):
    page.click("#filters button")
    page.fill("#since input", "2099-01-01")
    page.fill("#as-of input", "2022-06-20")
    page.keyboard.press("Tab")
    ask(page, SEED_QUESTION, 1)
    turn = page.locator("#turn-1")
    assert turn.locator(".qa-answer.abstained").inner_text() == "The sources do not answer this question."
    assert "as of 2022-06-20" in turn.inner_text() and "nothing is quoted" in turn.inner_text()


def test_upload_an_article_ask_about_it_read_it_and_delete_it(page, tmp_path):
    article = tmp_path / "lighthouse.txt"
    article.write_text(HOSTILE_ARTICLE)
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete lighthouse.txt and all its chunks?"
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#upload input[type=file]", str(article))
    page.wait_for_selector('#upload [aria-label="lighthouse.txt"]')
    page.click("#ingest")
    page.wait_for_selector("#ingest-summary :text('1 added')")
    assert "added" in page.locator("#ingest-results").inner_text()
    page.fill("#doc-search textarea, #doc-search input", "harbor")
    page.wait_for_function("() => !document.querySelector('#documents').innerText.includes('000_816be8fe4ddfb075.txt')")
    assert "lighthouse.txt" in page.locator("#documents").inner_text()
    shot(page, "library-ingested.png")

    page.get_by_role("tab", name="Ask").click()
    ask(page, "When is the Port Ellery lamp lit?", 1)
    assert "lighthouse.txt" in page.locator("#sources").inner_text()

    page.get_by_role("tab", name="Library").click()
    page.locator("#documents [role=row] [role=gridcell]").get_by_text("lighthouse.txt", exact=True).click()
    page.wait_for_selector("#article .qa-article")
    title = page.locator("#article h3")
    assert "<img src=x" in title.inner_text() and title.locator("img").count() == 0  # shown, never run
    assert page.title() != "pwned"
    page.click("#doc-delete")
    page.wait_for_selector("#library-message :text('Deleted')")
    assert "lighthouse.txt" not in page.locator("#documents").inner_text()
    shot(page, "library-deleted.png")


def test_an_evaluation_runs_with_progress_and_its_report_downloads(page, tmp_path):
    lines = (ROOT / "eval" / "seed.jsonl").read_text().splitlines()
    unanswerable = next(line for line in lines if '"answerable": false' in line)
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join([*lines[:2], unanswerable]) + "\n")
    page.get_by_role("tab", name="Evaluation").click()
    page.set_input_files("#eval-upload input[type=file]", str(small))
    page.wait_for_selector('#eval-upload [aria-label="small.jsonl"]')
    page.click("#eval-run")
    page.wait_for_selector("#eval-summary [role=progressbar]")  # the bar, while the questions run
    page.wait_for_selector("#eval-summary strong:has-text('% passed')")
    assert page.locator("#eval-summary").inner_text().startswith("3 questions")
    verdicts = page.locator("#eval-questions [role=row] [role=gridcell]:nth-child(2)").all_inner_texts()
    assert len(verdicts) == 3 and verdicts == sorted(verdicts, key=lambda v: v != "FAIL")  # failures first
    assert page.locator("#eval-plots svg").count() == 3  # metrics, latency, per tag
    with page.expect_download() as download:
        page.click('#eval-report a[download="report.html"]')
    assert "<h1>Evaluation: 3 questions</h1>" in Path(download.value.path()).read_text()
    shot(page, "evaluation.png")


def test_the_status_tab_names_the_model_backend_and_data_dir(page):
    page.get_by_role("tab", name="Status").click()
    status = page.locator("#status")
    page.wait_for_selector("#status :text('all-MiniLM-L6-v2')")
    text = status.inner_text()
    assert "extractive" in text and "data dir" in text and "articles" in text


def test_a_second_writer_is_named_in_the_library(page, served, tmp_path):
    from index.pipeline import WriteLock

    article = tmp_path / "locked.txt"
    article.write_text("Locked out\n\nThis article arrives while another process writes to the data dir.\n")
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#upload input[type=file]", str(article))
    page.wait_for_selector('#upload [aria-label="locked.txt"]')
    with WriteLock(served[1]):  # this test process is the other writer
        page.click("#ingest")
        page.wait_for_selector("#ingest-summary :text('Not ingested')")
    assert "another qa process" in page.locator("#ingest-summary").inner_text()
