"""Citation markers and the citation check, on written answers about the seed article."""

import pytest

from qa.citations import Passage
from qa.markers import claim_spans, clean_markers, strip_links
from qa.settings import Settings
from qa.verify import CitationVerifier
from tests.conftest import SEED_ID, SEEDS

ARTICLE = (SEEDS / SEED_ID).read_text(encoding="utf-8").split("\n", 1)[1].strip()
TITLE = "Japan-U.S. Defense Secretary"


def passage(first_words: str, n_paragraphs: int = 1) -> Passage:
    """A chunk of the seed article that starts at `first_words`, as retrieval would return it."""
    start = ARTICLE.index(first_words)
    end = start
    for _ in range(n_paragraphs):
        end = ARTICLE.find("\n\n", end + 1)
        end = len(ARTICLE) if end < 0 else end
    return Passage(f"{SEED_ID}#{start}", SEED_ID, TITLE, "Kyodo", "2021-03-20", "https://example.org/a", ARTICLE[start:end], start, end, 0.5)


PASSAGES = [
    passage("The Japanese and U.S. governments held"),  # [1] who attended, March 16
    passage("The U.S.-Japan “2+2” meeting", 2),  # [2] the statement on the Taiwan Strait
    passage("Recently, the annual report"),  # [3] the think tank's report on missiles
]


@pytest.fixture(scope="module")
def verifier(embedder):
    return CitationVerifier(embedder, Settings().citation_min_support)


def assert_exact(citations):
    for c in citations:
        assert ARTICLE[c.start : c.end] == c.quote


# --- markers -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected, removed",
    [
        ("Claim [2].", "Claim [2].", 0),
        ("Claim [1, 2].", "Claim [1][2].", 0),
        ("Claim [1][2].", "Claim [1][2].", 0),
        ("Claim [1-3].", "Claim [1][2][3].", 0),
        ("Claim [ 2 ; 3 ].", "Claim [2][3].", 0),
        ("Claim [7].", "Claim.", 1),
        ("Claim [0, 2, 9].", "Claim [2].", 2),
        ("Claim [2][2].", "Claim [2].", 0),
    ],
)
def test_markers_are_normalised_and_out_of_range_ones_counted(raw, expected, removed):
    assert clean_markers(raw, passage_count=3) == (expected, removed)


def test_markers_after_the_full_stop_belong_to_the_sentence_before():
    text = "Kishi attended.[1] The statement stressed peace. [2][3] Nothing else."
    spans = claim_spans(text)
    assert [text[s.start : s.end] for s in spans] == ["Kishi attended.[1]", "The statement stressed peace. [2][3]", "Nothing else."]
    assert [s.numbers for s in spans] == [(1,), (2, 3), ()]
    assert spans[1].bare(text) == "The statement stressed peace."


def test_images_and_links_not_from_the_sources_are_stripped():
    raw = (
        "See ![x](https://evil.example/p.png?q=secret) the [report](https://evil.example/r) "
        "and [the article](https://example.org/a), <https://evil.example/x> <img src=https://evil.example/i.png> [2](https://evil.example/c)."
    )
    text, stripped = strip_links(raw, {"https://example.org/a"})
    assert "evil" not in text and stripped == 5
    assert "[the article](https://example.org/a)" in text and "report" in text
    assert text.endswith("[2].")  # a numeric link label stays a citation


# --- the check -----------------------------------------------------------------------------

def test_a_right_citation_is_supported_and_quotes_its_best_sentence(verifier):
    checked = verifier.check("The joint statement stressed the importance of peace and stability in the Taiwan Strait [2].", PASSAGES)
    assert checked.grounded == 1.0 and not checked.abstained
    [citation] = checked.citations
    assert citation.n == 2 and citation.supported
    assert "peace and stability in the Taiwan Strait" in citation.quote
    assert_exact(checked.citations)


def test_a_wrong_citation_is_flagged(verifier):
    checked = verifier.check("The 2+2 statement stressed peace and stability in the Taiwan Strait [3].", PASSAGES)
    [sentence] = checked.sentences
    assert not sentence.supported and "not supported by [3]" in sentence.reason
    assert checked.citations[0].n == 3 and not checked.citations[0].supported
    assert checked.grounded == 0.0
    assert_exact(checked.citations)


def test_a_missing_citation_is_flagged_and_counts_against_grounding(verifier):
    answer = "Blinken, Austin, Motegi and Kishi attended the 2+2 meeting [1]. Japan plans to buy new missiles."
    checked = verifier.check(answer, PASSAGES)
    first, second = checked.sentences
    assert first.supported and first.citations == [1]
    assert not second.supported and second.reason == "cites no passage" and second.citations == []
    assert checked.grounded == 0.5
    assert answer[second.start : second.end] == second.text


def test_an_out_of_range_marker_is_removed_counted_and_the_claim_left_uncited(verifier):
    checked = verifier.check("China deployed land-based anti-ship ballistic missiles [3]. Austin resigned [9].", PASSAGES)
    assert checked.removed_markers == 1 and "[9]" not in checked.text
    assert [s.supported for s in checked.sentences] == [True, False]
    assert [c.n for c in checked.citations] == [3]


def test_a_verbatim_quote_passes_and_an_invented_one_does_not(verifier):
    verbatim = verifier.check("The statement stressed “the importance of peace and stability in the Taiwan Strait.” [2]", PASSAGES)
    assert verbatim.sentences[0].supported
    invented = verifier.check("The statement said “Japan will defend Taiwan at any cost.” [2]", PASSAGES)
    assert not invented.sentences[0].supported
    assert "quote “Japan will defend Taiwan at any cost.” is not in [2]" in invented.sentences[0].reason
    assert not invented.citations[0].supported


def test_a_number_the_passage_does_not_hold_is_flagged(verifier):
    checked = verifier.check("The 2+2 meeting was held in Tokyo on March 19 [1].", PASSAGES)
    assert not checked.sentences[0].supported and "number 19" in checked.sentences[0].reason


def test_a_claim_drawing_on_two_passages_is_supported(verifier):
    checked = verifier.check(
        "Blinken and Austin met Motegi and Kishi in Tokyo, and their statement stressed peace and stability in the Taiwan Strait [1][2].",
        PASSAGES,
    )
    assert checked.sentences[0].supported
    assert [c.n for c in checked.citations] == [1, 2] and all(c.supported for c in checked.citations)
    assert_exact(checked.citations)


def test_saying_the_sources_do_not_answer_is_an_abstention(verifier):
    checked = verifier.check("The sources do not answer this question.", PASSAGES)
    assert checked.abstained and checked.citations == [] and checked.grounded == 1.0


def test_nonsense_is_flagged_as_unsupported(verifier):
    checked = verifier.check("qz8 vv;lk RRT the] [2] oo-pa xx. bn mm [1]", PASSAGES)
    assert not checked.abstained
    assert checked.sentences and not any(s.supported for s in checked.sentences)
    assert checked.grounded == 0.0 and not any(c.supported for c in checked.citations)


# --- the default threshold on paraphrases an LLM might write ------------------------------

PARAGRAPHS = [passage(p.strip()[:40]) for p in ARTICLE.split("\n\n") if p.strip()]
RIGHT = [
    ("Japan and the United States said they would work closely together in the event of a Taiwan incident", "in the event of a Taiwan incident"),
    ("The two defence chiefs shared concerns about a possible emergency in the Taiwan Strait", "emergency in the Taiwan Strait"),
    ("Blinken, Austin, Motegi and Kishi took part in the meeting in Tokyo", "Secretary of State Blinken"),
    ("Kyodo said it is unusual for Japan to raise Taiwan explicitly", "unusual to explicitly"),
    ("China's growing military power has created a sense of crisis in Japan and the US", "sense of crisis"),
    ("The report says China has strengthened military pressure on Taiwan", "military pressure on Taiwan"),
]
WRONG = [
    ("The statement stressed peace and stability in the Taiwan Strait", "sense of crisis"),
    ("Japan and the United States said they would work closely together in the event of a Taiwan incident", "anti-ship ballistic"),
    ("Kishi said Japan would send troops to Taiwan", "Nobuo Kishi also mentioned"),
    ("The report was compiled by the U.S. State Department", "anti-ship ballistic"),
    ("Austin announced his resignation after the meeting", "Secretary of State Blinken"),
]


def cite(claim: str, phrase: str) -> str:
    n = next(i for i, p in enumerate(PARAGRAPHS, start=1) if phrase in p.text)
    return f"{claim} [{n}]."


@pytest.mark.parametrize("claim, phrase", RIGHT)
def test_paraphrases_of_the_cited_passage_are_supported(verifier, claim, phrase):
    checked = verifier.check(cite(claim, phrase), PARAGRAPHS)
    assert checked.sentences[0].supported, checked.sentences[0].reason
    assert_exact(checked.citations)


@pytest.mark.parametrize("claim, phrase", WRONG)
def test_claims_their_passage_does_not_make_are_not(verifier, claim, phrase):
    checked = verifier.check(cite(claim, phrase), PARAGRAPHS)
    assert not checked.sentences[0].supported and not checked.citations[0].supported
