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
