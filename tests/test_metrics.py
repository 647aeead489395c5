"""eval/metrics.py and the per-question metrics of eval/judge.py, against values worked out by hand."""

import math

import pytest

from eval import metrics as m
from eval.judge import judge
from eval.sets import parse_item
from eval.summary import aggregate
from qa.citations import ABSTENTION, Answer, Citation, Passage

RANKED = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "relevant, k, hit", [({"a"}, 1, 1.0), ({"c"}, 1, 0.0), ({"c"}, 3, 1.0), ({"z"}, 10, 0.0), (set(), 10, 0.0)]
)
def test_hit_at_k(relevant, k, hit):
    assert m.hit_at(RANKED, relevant, k) == hit


def test_reciprocal_rank_takes_the_first_relevant():
    assert m.reciprocal_rank(RANKED, {"b", "c"}) == 0.5
    assert m.reciprocal_rank(RANKED, {"d"}) == 0.25
    assert m.reciprocal_rank(RANKED, {"z"}) == 0.0


def test_ndcg_by_hand():
    # relevant at ranks 2 and 3: DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5; ideal = 1 + 0.63093
    assert m.ndcg_at(RANKED, {"b", "c"}, 10) == pytest.approx(1.13093 / 1.63093, abs=1e-5)
    # at k=2 only rank 2 counts, and the ideal still has two relevant ids
    assert m.ndcg_at(RANKED, {"b", "c"}, 2) == pytest.approx(0.63093 / 1.63093, abs=1e-5)
    assert m.ndcg_at(RANKED, {"a"}, 10) == 1.0
    # more relevant ids than k: the ideal is capped at k positions
    assert m.ndcg_at(["a", "x"], {"a", "b", "c"}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_answer_normalisation_follows_squad():
    assert m.normalize_answer("The U.S.-Japan “2+2” meeting!") == "u s japan 2 2 meeting"
    assert m.exact_match("the Kyodo News.", ["kyodo news"]) == 1.0
    assert m.exact_match("Kyodo News agency", ["Kyodo News"]) == 0.0


def test_token_f1_by_hand():
    # 4 predicted tokens, 2 expected, 2 shared: P = 0.5, R = 1, F1 = 2/3
    assert m.token_f1("Kyodo News reported it", ["Kyodo News"]) == pytest.approx(2 / 3)
    # the best acceptable answer counts: "news" alone gives P = 1/4, R = 1, F1 = 0.4
    assert m.token_f1("Kyodo News reported it", ["news", "Kyodo News reported"]) == pytest.approx(2 * 0.75 / 1.75)
    assert m.token_f1("nothing shared", ["Kyodo"]) == 0.0


def test_answer_contains_matches_whole_words():
    assert m.answer_contains("It was Kyodo News [1].", ["kyodo news"]) == 1.0
    assert m.answer_contains("Kyodo Newsroom", ["Kyodo News"]) == 0.0
    assert m.answer_contains("anything", [""]) == 0.0


def test_spans_and_coverage():
    assert m.span_overlap((0, 10), (5, 20)) == 5
    assert m.span_overlap((0, 5), (5, 9)) == 0
    assert m.covers((0, 10), (4, 12))  # 6 of the quote's 8 characters
    assert not m.covers((0, 10), (7, 15))  # 3 of 8


def test_percentile_interpolates_like_numpy():
    assert m.percentile([4, 1, 3, 2], 50) == 2.5
    assert m.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert m.percentile([7], 95) == 7
    assert m.percentile([], 50) is None


def test_mean_skips_what_does_not_apply():
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None


# --- per-question metrics (eval/judge.py) on a two-article corpus written here ---------------

TEXT_A = "Alpha met Beta in Tokyo. They agreed to cooperate. Rain fell all day."
TEXT_B = "Gamma reported the meeting. Nobody else did."


class DictCorpus:
    """Article texts held in a dict (the runner reads them from the ledger)."""

    texts = {"a": TEXT_A, "b": TEXT_B, "b-copy": TEXT_B}

    def text(self, doc_id):
        return self.texts.get(doc_id, "")

    def canonical(self, doc_id):
        return "b" if doc_id == "b-copy" else doc_id


def passage(doc_id, start, end):
    text = DictCorpus.texts[doc_id]
    return Passage(f"{doc_id}:{start}", doc_id, doc_id, "", "", "", text[start:end], start, end, 0.5)


def citation(n, doc_id, start, end, quote=None, supported=True):
    text = DictCorpus.texts[doc_id]
    return Citation(n, doc_id, doc_id, "", "", "", f"{doc_id}:0", text[start:end] if quote is None else quote, start, end, 0.5, supported)


ITEM = parse_item({
    "id": "q", "question": "Where did Alpha meet Beta?", "answers": ["in Tokyo", "Tokyo"],
    "evidence": [{"doc_id": "a", "quote": "Alpha met Beta in Tokyo."}, {"doc_id": "b", "quote": "Gamma reported the meeting."}],
    "choices": ["Osaka", "Tokyo"], "answer_index": 1, "tags": ["factoid"],
}, 1)


def test_retrieval_metrics_at_article_and_quote_level():
    # articles ranked b-copy (a copy of gold b), then a; passages: a's rain sentence, then both quotes
    ranked = [passage("b-copy", 28, 44), passage("a", 51, 69), passage("a", 0, 24), passage("b", 0, 27)]
    scores = judge(ITEM, Answer("q", ABSTENTION, True, "extractive", timings_ms={"total": 5}), ranked, DictCorpus()).metrics
    assert scores["retrieval.hit@1"] == 1.0 and scores["retrieval.mrr"] == 1.0  # the copy counts as b
    assert scores["retrieval.ndcg@10"] == 1.0  # both gold articles head the ranking
    # quote level: passage 3 covers quote a, passage 4 covers quote b (ranks 3 and 4 of 4)
    assert scores["evidence.hit@1"] == 0.0 and scores["evidence.hit@3"] == 1.0
    assert scores["evidence.mrr"] == pytest.approx(1 / 3)
    assert scores["evidence.ndcg@10"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_answer_citation_and_choice_metrics():
    cited = [citation(1, "a", 0, 24), citation(2, "a", 25, 50)]  # the quote about Tokyo, then another sentence
    answer = Answer("q", "Alpha met Beta in Tokyo. [1] They agreed to cooperate. [2]", False, "extractive", cited, timings_ms={"total": 5})
    result = judge(ITEM, answer, [], DictCorpus(), choice=1)
    scores = result.metrics
    assert result.passed and result.citations_exact
    assert scores["answer.exact_match"] == 0.0 and scores["answer.contains"] == 1.0
    # 9 answer tokens ("[1]" removed); "in Tokyo" shares 2 of 2: P = 2/9, R = 1
    assert scores["answer.f1"] == pytest.approx(2 * (2 / 9) / (2 / 9 + 1))
    assert scores["citation.precision"] == 0.5  # the second citation holds no evidence
    assert scores["citation.recall"] == 0.5  # quote b is not cited
    assert scores["citation.verbatim"] == 1.0 and scores["citation.supported"] == 1.0
    assert scores["choice.accuracy"] == 1.0
    assert scores["abstention.false_refusal"] == 0.0 and scores["abstention.right_refusal"] is None
    assert scores["retrieval.hit@10"] == 0.0 and "no gold article in the top 10" in result.reason


def test_a_citation_that_misquotes_fails_the_question():
    cited = [citation(1, "a", 0, 24, quote="Alpha met Beta in Tokyo!")]
    answer = Answer("q", "Alpha met Beta in Tokyo! [1]", False, "extractive", cited, timings_ms={"total": 5})
    result = judge(ITEM, answer, [], DictCorpus(), choice=0)
    assert not result.passed and not result.citations_exact
    assert result.metrics["citation.verbatim"] == 0.0
    assert result.metrics["choice.accuracy"] == 0.0
    assert "picked 'Osaka', expected 'Tokyo'" in result.reason


def test_abstention_rates_and_their_average():
    unanswerable = parse_item({"id": "u", "question": "Who won?", "answerable": False, "tags": ["unanswerable"]}, 2)
    declined = judge(unanswerable, Answer("u", ABSTENTION, True, "extractive", timings_ms={"total": 10}), [], DictCorpus())
    answered = judge(unanswerable, Answer("u", "Gamma.", False, "extractive", timings_ms={"total": 30}), [], DictCorpus())
    refused = judge(ITEM, Answer("q", ABSTENTION, True, "extractive", timings_ms={"total": 20}), [], DictCorpus())
    assert declined.passed and not answered.passed and not refused.passed
    overall = aggregate([declined, answered, refused])
    assert overall["abstention.right_refusal"] == 0.5
    assert overall["abstention.false_refusal"] == 1.0
    assert overall["answer.f1"] == 0.0  # only the answerable question counts
    assert overall["passed"] == pytest.approx(1 / 3, abs=1e-4)
    assert overall["latency.p50_ms"] == 20.0 and overall["latency.p95_ms"] == 29.0
