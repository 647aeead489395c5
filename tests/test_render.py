from qa.citations import Answer, Citation, Passage
from ui.render import answer_html, sources_html


def hostile_answer() -> Answer:
    text = "Intro <script>alert(1)</script> the claim. More."
    passage = Passage("c1", "d1", "<img src=x onerror=alert(1)>", "evil.example", "2022-01-01", "javascript:alert(1)", text, 100, 100 + len(text), 0.9)
    start = text.index("the claim.")
    citation = Citation.quoting(1, passage, start, len("the claim."), 0.8)
    return Answer("q", "the claim. [1]", False, "extractive", [citation], [passage])


def test_article_html_is_escaped_and_quote_highlighted():
    answer = hostile_answer()
    sources = sources_html(answer)
    assert "<script>" not in sources and "<img" not in sources
    assert "&lt;script&gt;" in sources and "<mark>the claim.</mark>" in sources
    assert "javascript:" not in sources  # only http(s) links are rendered
    assert '<a class="cite-chip" href="#cite-1">[1]</a>' in answer_html(answer)


def test_citation_span_points_into_the_article():
    citation = hostile_answer().citations[0]
    assert (citation.start, citation.end) == (100 + 32, 100 + 42)


def test_unsupported_sentences_and_warnings_are_flagged_escaped():
    from qa.citations import AnswerSentence

    answer = hostile_answer()
    answer.answer = "the claim. [1] <b>Made up.</b>"
    made_up = answer.answer.index("<b>")
    answer.sentences = [AnswerSentence("the claim. [1]", 0, 14, [1], True),
                        AnswerSentence("<b>Made up.</b>", made_up, len(answer.answer), [], False, "no citation")]
    answer.warnings = ["fell back to <the extractive answerer>"]
    shown = answer_html(answer, turn=2)
    assert '<a class="cite-chip" href="#cite-2-1">[1]</a>' in shown
    assert '<span class="unsupported" title="no citation">&lt;b&gt;Made up.&lt;/b&gt;' in shown and "<b>" not in shown
    assert "&lt;the extractive answerer&gt;" in shown


def test_the_conversation_and_sources_panel_keep_every_turn():
    from ui.render import Exchange, conversation_html, sources_panel_html

    answer = hostile_answer()
    exchanges = [Exchange("first <q>", answer, "2022-06-20"), Exchange("second", answer, "2022-06-21")]
    chat = conversation_html(exchanges, pending=("third", "partial <i>"))
    assert 'id="turn-1"' in chat and 'id="turn-2"' in chat and "first &lt;q&gt;" in chat and "as of 2022-06-21" in chat
    assert '<div class="turn streaming">' in chat and "partial &lt;i&gt;" in chat
    panel = sources_panel_html(exchanges)
    assert panel.index('id="cite-2-1"') < panel.index('id="cite-1-1"') and panel.count("<details open>") == 1


def test_an_article_is_shown_escaped():
    from ui.render import document_html

    shown = document_html({"id": "d1", "title": "<script>x</script>", "text": "a <b>\nsecond", "url": "javascript:alert(1)", "chunks": 1})
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "javascript:" not in shown
    assert "<p>a &lt;b&gt;</p><p>second</p>" in shown


def test_the_library_shows_the_newest_articles_and_a_search_reaches_the_others(make_service, tmp_path, monkeypatch):
    import json

    import ui.library
    from ui.library import library_view

    service = make_service()
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps({"id": f"a{day}", "title": f"{'Harbor' if day % 2 else 'Market'} story {day}",
                                          "source": "example.org", "published": f"2022-06-{day:02d}",
                                          "text": f"Story number {day} happened on day {day} of June."})
                              for day in range(1, 6)))
    assert service.ingest([feed]).count("added") == 5
    monkeypatch.setattr(ui.library, "SHOWN", 2)
    rows, picker, note = library_view(service)
    assert [row[3] for row in rows] == ["2022-06-05", "2022-06-04"]  # the newest two, newest first
    assert [value for _, value in picker["choices"]] == [row[0] for row in rows]  # the picker offers what the table shows
    assert note == "The newest 2 of 5 articles: search titles, sources or ids for the others."
    rows, picker, note = library_view(service, "  HARBOR ")
    assert [row[1] for row in rows] == ["Harbor story 5", "Harbor story 3"]
    assert note == "The newest 2 of 3 matching articles: search titles, sources or ids for the others."
    rows, picker, note = library_view(service, "story 1")
    assert [row[1] for row in rows] == ["Harbor story 1"] and note == ""  # all shown: no line
    assert picker["choices"] == [("Harbor story 1 (" + rows[0][0] + ")", rows[0][0])]
