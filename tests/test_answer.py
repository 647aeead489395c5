"""The extractive answerer and its citations, on the seed article."""

from qa.answer import ExtractiveAnswerer, terms
from qa.citations import ABSTENTION
from qa.sentences import sentence_spans

SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"


def article_text(service, doc_id):
    return service.document(doc_id)["text"]


def test_seed_question_is_answered_with_a_cited_exact_quote(seeded):
    answer = seeded.ask(SEED_QUESTION)
    assert not answer.abstained
    assert "peace and stability in the Taiwan Strait" in answer.answer
    first = answer.answer.index("peace and stability in the Taiwan Strait")
    assert "[1]" in answer.answer[first:]
    assert answer.citations and answer.citations[0].n == 1
    for citation in answer.citations:
        assert article_text(seeded, citation.doc_id)[citation.start : citation.end] == citation.quote
        assert f"{citation.quote} [{citation.n}]" in answer.answer
    assert set(answer.timings_ms) == {"retrieve", "answer", "total"}


def test_passages_are_exact_spans_best_first(seeded):
    passages = seeded.search(SEED_QUESTION, top_k=3)
    assert len(passages) == 3
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    text = article_text(seeded, passages[0].doc_id)
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_off_topic_question_abstains(seeded):
    answer = seeded.ask("What is the recipe for sourdough bread?")
    assert answer.abstained and answer.answer == ABSTENTION and answer.citations == []


def test_empty_index_abstains(make_service):
    answer = make_service("empty").ask(SEED_QUESTION)
    assert answer.abstained and answer.passages == []


def test_no_duplicate_citations_from_overlapping_chunks(seeded):
    answer = seeded.ask("Who attended the 2+2 meeting?", top_k=10)
    spans = [(c.doc_id, c.start, c.end) for c in answer.citations]
    assert len(spans) == len(set(spans))


def test_more_sentences_are_never_cited_than_allowed(seeded, embedder):
    answerer = ExtractiveAnswerer(embedder, min_score=0.0, max_sentences=1)
    answer = answerer.answer("Taiwan Strait", seeded.search("Taiwan Strait"))
    assert len(answer.citations) == 1


def test_sentence_spans_keep_news_abbreviations_together():
    text = "The U.S. and Japan met. Mr. Kishi spoke.\n\nA new paragraph"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["The U.S. and Japan met.", "Mr. Kishi spoke.", "A new paragraph"]


def test_terms_drop_stopwords_and_fold_plurals():
    assert terms("What did the ministers say about the missiles?") == {"minister", "missil"}
