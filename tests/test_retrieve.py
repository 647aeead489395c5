"""Hybrid retrieval on a small real corpus: fusion, filters, dates, diversity, persistence."""

import datetime as dt
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.keyword import KeywordIndex, _best
from qa.dates import DateRange
from qa.retrieve import Filters, date_boost

ARTICLES = [
    {"id": "flood-new", "title": "River floods the old town", "published": "2022-06-14", "source": "cnn.com",
     "text": "The river burst its banks on Tuesday and flooded the old town. Hundreds of residents were moved to shelters."},
    {"id": "flood-old", "title": "River floods the harbour district", "published": "2021-03-02", "source": "usatoday.com",
     "text": "The river rose overnight and flooded the harbour district. Dozens of families spent the night in the school gym."},
    {"id": "chip", "title": "Chipmaker opens plant", "published": "2022-06-10", "source": "cnn.com",
     "text": "The Zyxorin semiconductor plant opened near the airport, bringing two thousand jobs to the valley."},
    {"id": "budget", "title": "Council passes budget", "published": "2022-06-01", "source": "theweek.com",
     "text": "The city council approved next year's spending plan after a long night of debate about parks and buses."},
    {"id": "undated", "title": "Museum reopens", "text": "The history museum reopened its doors after a two-year renovation."},
]
LONG = {"id": "long", "title": "Marathon report", "published": "2022-06-12", "source": "cnn.com",
        "text": "\n\n".join(f"Runner {i} finished the city marathon in the rain, and runner {i} thanked the crowd along the river." for i in range(80))}
AS_OF = dt.date(2022, 6, 16)


@pytest.fixture(scope="module")
def service(tmp_path_factory, embedder):
    from qa.service import QAService
    from qa.settings import Settings

    folder = tmp_path_factory.mktemp("retrieve")
    (folder / "news.jsonl").write_text("\n".join(json.dumps(a) for a in ARTICLES + [LONG]), encoding="utf-8")
    service = QAService(Settings(data_dir=folder / "data"), embedder=embedder)
    service.ingest([folder / "news.jsonl"])
    return service


def doc_ids(passages):
    return list(dict.fromkeys(p.doc_id for p in passages))


def test_a_rare_keyword_is_found_and_every_result_says_why(service):
    [first, *_] = service.search("Zyxorin", top_k=3, as_of=AS_OF)
    assert first.doc_id == "chip"
    assert first.why["keyword_rank"] == 1 and "fused" in first.why and "date_boost" in first.why
    assert first.text == service.document("chip")["text"][first.start : first.end]


def test_a_paraphrase_is_found_by_meaning(service):
    passages = service.search("Which factory will create employment?", top_k=3, as_of=AS_OF)
    assert passages[0].doc_id == "chip" and "dense_rank" in passages[0].why


def test_filters_restrict_dense_and_keyword_alike(service):
    since = service.search("river flooded town", top_k=10, as_of=AS_OF, filters=Filters(since=dt.date(2022, 1, 1)))
    assert "flood-old" not in doc_ids(since) and "undated" not in doc_ids(since) and "flood-new" in doc_ids(since)
    until = service.search("river flooded town", top_k=10, as_of=AS_OF, filters=Filters(until=dt.date(2021, 12, 31)))
    assert doc_ids(until) == ["flood-old"]
    source = service.search("river", top_k=10, as_of=AS_OF, filters=Filters(sources=("usatoday.com",)))
    assert doc_ids(source) == ["flood-old"]
    chosen = service.search("river", top_k=10, as_of=AS_OF, filters=Filters(doc_ids=("budget", "undated")))
    assert set(doc_ids(chosen)) <= {"budget", "undated"}


def test_an_explicit_month_in_the_question_filters(service):
    retrieval = service.retrieve("Which river flooded in March 2021?", top_k=5, as_of=AS_OF)
    assert retrieval.date_range.mode == "filter" and retrieval.filters.since == dt.date(2021, 3, 1)
    assert doc_ids(retrieval.passages) == ["flood-old"]


def test_recent_articles_win_for_present_tense_questions(service):
    recent = service.retrieve("Which river flooded recently?", top_k=5, as_of=AS_OF)
    assert recent.date_range.mode == "prefer"
    assert doc_ids(recent.passages)[0] == "flood-new"
    # as of 2021, the 2022 flood is in the future: it must not win
    past = service.search("Which river flooded recently?", top_k=5, as_of=dt.date(2021, 3, 10))
    assert doc_ids(past)[0] == "flood-old"


def test_date_boost_rules():
    in_range = DateRange(dt.date(2022, 6, 9), AS_OF, "last week", "prefer")
    # in the named range: a full boost; outside it only the small tie-break for newer articles
    assert date_boost("2022-06-12", AS_OF, in_range) > 0.02 > date_boost("2022-05-01", AS_OF, in_range) > 0
    # no range named: the week before the as-of date is favoured, and newer wins near-ties
    assert date_boost("2022-06-15", AS_OF, None) > date_boost("2022-06-10", AS_OF, None) > 0.02
    assert 0.02 > date_boost("2022-06-01", AS_OF, None) > date_boost("2022-01-01", AS_OF, None) > 0
    assert date_boost("2022-06-20", AS_OF, None) < 0 and date_boost("", AS_OF, None) == 0


def test_one_long_article_cannot_fill_the_list(service):
    passages = service.search("runner finished the marathon by the river", top_k=6, as_of=AS_OF)
    assert sum(p.doc_id == "long" for p in passages) == 2  # max_passages_per_article
    assert len(passages) == 6


def test_keyword_index_survives_restart_and_follows_deletes(tmp_path, embedder, monkeypatch):
    from chromadb.api.client import SharedSystemClient

    from qa.service import QAService
    from qa.settings import Settings

    (tmp_path / "a.txt").write_text("Alpha\nThe Quorvex treaty was signed in Geneva.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Beta\nThe Quorvex treaty was rejected by parliament.", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    service = QAService(settings, embedder=embedder)
    service.ingest([tmp_path / "a.txt", tmp_path / "b.txt"])
    keywords = KeywordIndex(settings.data_dir)
    assert keywords.persisted_generation() == service.ledger.generation()
    service.delete("a.txt")
    assert keywords.persisted_generation() == service.ledger.generation()

    SharedSystemClient.clear_system_cache()
    restarted = QAService(settings, embedder=embedder)
    hits = restarted.retriever.keywords.search("Quorvex", 5, restarted.ledger)
    assert [chunk_id.split("::")[0] for chunk_id, _ in hits] == ["b.txt"]

    # a writer killed before rebuilding leaves the index one generation behind: readers rebuild in memory
    (tmp_path / "c.txt").write_text("Gamma\nThe Quorvex treaty returns to parliament.", encoding="utf-8")
    from index.pipeline import Indexer

    monkeypatch.setattr(Indexer, "_sync_keywords", lambda self, counted=(): None)
    restarted.ingest([tmp_path / "c.txt"])
    assert keywords.persisted_generation() != restarted.ledger.generation()
    fresh = QAService(settings, embedder=embedder)
    found = {chunk_id.split("::")[0] for chunk_id, _ in fresh.retriever.keywords.search("Quorvex", 5, fresh.ledger)}
    assert found == {"b.txt", "c.txt"}


def test_an_article_titled_with_what_is_asked_beats_a_digest_that_mentions_it(make_service, tmp_path):
    """The digest's paragraph matches as well as the report's; the report's title names the subject."""
    from qa.retrieve import Retriever

    digest = {"id": "digest", "title": "Five things to know for Monday", "published": "2022-06-13",
              "text": "Markets fell again on Friday. The Wexbury dam burst after heavy rain and flooded the valley "
                      "villages. Voters in the north go to the polls on Sunday. A heatwave is expected."}
    report = {"id": "report", "title": "Wexbury dam burst floods valley", "published": "2022-06-13",
              "text": "Officials said the structure gave way overnight. Homes downstream were under water and "
                      "residents were moved to higher ground."}
    (tmp_path / "news.jsonl").write_text("\n".join(json.dumps(a) for a in (digest, report)), encoding="utf-8")
    service = make_service()
    service.ingest([tmp_path / "news.jsonl"])
    question = "Which dam burst and flooded the valley villages?"
    titled = service.retriever.search(question, as_of=AS_OF)
    assert titled[0].doc_id == "report" and titled[0].why["title_boost"] > 0
    untitled = Retriever(service.embedder, service.store, service.ledger, 5, title=False).search(question, as_of=AS_OF)
    assert untitled[0].doc_id == "digest"  # without the title's word, the digest's exact paragraph wins


def test_the_week_before_the_as_of_date_gets_keyword_candidates_of_its_own(make_service, tmp_path, monkeypatch):
    """Old articles that match the words better fill the keyword list; the story of the week
    still gets in, from the window's own candidates, and only when dates are in use."""
    import qa.retrieve as retrieve
    from qa.retrieve import Retriever

    old = [{"id": f"old{i}", "title": f"Ferry strike day {i}", "published": f"2020-0{1 + i % 9}-1{i % 9}",
            "text": f"The ferry strike closed the harbour again, day {i}: ferry crews strike over ferry pay."}
           for i in range(6)]
    week = {"id": "week", "title": "Harbour news", "published": "2022-06-14",
            "text": "Crews walked out at the port on Monday; the strike halted the ferry to the island."}
    (tmp_path / "news.jsonl").write_text("\n".join(json.dumps(a) for a in old + [week]), encoding="utf-8")
    service = make_service()
    service.ingest([tmp_path / "news.jsonl"])
    monkeypatch.setattr(retrieve, "CANDIDATES", 3)  # a corpus of thousands in miniature
    question = "ferry strike"
    found = service.retriever.retrieve(question, top_k=5, as_of=AS_OF)
    week_passage = next(p for p in found.passages if p.doc_id == "week")
    assert week_passage.why["keyword_rank"] > 3  # ranked by its score among the candidates, below the 3
    monkeypatch.setattr(retrieve, "WINDOW_CANDIDATES", 0)
    without = Retriever(service.embedder, service.store, service.ledger, 5, dense=False).search(question, as_of=AS_OF)
    assert "week" not in doc_ids(without)
    monkeypatch.setattr(retrieve, "WINDOW_CANDIDATES", 20)
    windowed = Retriever(service.embedder, service.store, service.ledger, 5, dense=False).search(question, as_of=AS_OF)
    assert "week" in doc_ids(windowed)
    # an explicit date filter already restricts every candidate: no window of its own
    assert service.retriever._window(AS_OF, None, Filters(since=dt.date(2022, 1, 1))) is None


@given(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.5, 3.0]), max_size=60), st.integers(1, 10))
def test_keyword_best_picks_the_top_positive_scores(values, k):
    scores = np.array(values, dtype=np.float32)
    picked = _best(scores, k)
    positive = sorted(scores[scores > 0], reverse=True)
    assert sorted(scores[picked], reverse=True) == positive[:k]


FILTERED = [Filters(since=dt.date(2022, 1, 1)), Filters(until=dt.date(2021, 12, 31)), Filters(sources=("cnn.com",)),
            Filters(doc_ids=("budget", "undated")), Filters(sources=("cnn.com",), since=dt.date(2022, 6, 11)),
            Filters(sources=("nowhere.com",))]


@pytest.mark.parametrize("exact_among, overfetch_most, slack, path", [
    (400, 1000, 1.5, "exact"),  # a few passing chunks: their vectors, compared here
    (0, 1000, 1.5, "unfiltered"),  # a larger share: the nearest of all chunks, those that pass
    (0, 0, 1.5, "ids"),  # too small a share for that: Chroma searches among the passing ids
    (0, 8, 0.01, "unfiltered, then ids"),  # the nearest held too few that pass
])
def test_a_filtered_dense_search_finds_what_chromas_filter_finds(service, monkeypatch, exact_among, overfetch_most, slack, path):
    import index.store

    monkeypatch.setattr(index.store, "EXACT_AMONG", exact_among)
    monkeypatch.setattr(index.store, "OVERFETCH_MOST", overfetch_most)
    monkeypatch.setattr(index.store, "SLACK", slack)
    store, keywords = service.store, service.retriever.keywords
    collection = store._collection()
    calls = []
    for name in ("query", "get"):
        def spy(*args, _real=getattr(collection, name), _name=name, **kwargs):
            calls.append((_name, kwargs.get("where"), kwargs.get("n_results"), kwargs.get("ids") and sorted(kwargs["ids"])))
            return _real(*args, **kwargs)
        monkeypatch.setattr(collection, name, spy)
    vector = service.embedder.embed_query("Which river flooded the town?")
    fell_back = 0
    for filters in FILTERED:
        where = filters.chroma_where()
        theirs = store.nearest(vector, 8, where=where)
        among = keywords.passing(service.ledger, **filters.limits())
        nearest = store.nearest(vector, 8)
        calls.clear()
        ours = store.nearest(vector, 8, where=where, among=among)
        assert [chunk_id for chunk_id, _ in ours] == [chunk_id for chunk_id, _ in theirs], filters
        assert [score for _, score in ours] == pytest.approx([score for _, score in theirs], abs=1e-4)
        assert all(chunk_id in among for chunk_id, _ in ours) and len(ours) == min(8, among.count)
        passing = sorted(among.ids())
        among_ids = ("query", None, 8, passing)
        if not among.count:
            assert ours == [] and calls == []  # nothing passes: Chroma is not asked
        elif path == "exact":
            assert calls == [("get", None, None, passing)], filters
        elif path == "unfiltered":
            assert calls and all(name == "query" and not where and not ids for name, where, _, ids in calls), filters
            assert calls[0][2] >= 8 / among.share  # asked for enough neighbours that 8 could pass
        elif path == "ids":
            assert calls == [among_ids], filters
        else:  # at most 8 unfiltered neighbours: Chroma searches the ids when one of the 8 nearest fails
            unfiltered = [call for call in calls if call[0] == "query" and not call[1] and not call[3]]
            falls_back = any(chunk_id not in among for chunk_id, _ in nearest)
            assert unfiltered and calls == unfiltered + ([among_ids] if falls_back else []), filters
            fell_back += falls_back
    assert fell_back or path != "unfiltered, then ids"


def test_a_passing_id_chroma_does_not_hold_falls_back_to_chromas_filter(service, monkeypatch):
    # another process deleted an article and this client has not followed yet: the keyword index
    # still passes its chunks, and Chroma refuses to search among an id it does not hold
    import index.store

    monkeypatch.setattr(index.store, "EXACT_AMONG", 0)
    monkeypatch.setattr(index.store, "OVERFETCH_MOST", 0)
    store, filters = service.store, Filters(sources=("cnn.com",))
    collection = store._collection()
    asked = []
    monkeypatch.setattr(collection, "query", lambda *a, _real=collection.query, **kw: asked.append(kw) or _real(*a, **kw))
    vector, where = service.embedder.embed_query("Which river flooded the town?"), filters.chroma_where()
    among = service.retriever.keywords.passing(service.ledger, **filters.limits())
    monkeypatch.setattr(among, "ids", lambda _real=among.ids: _real() + ["deleted-elsewhere#0"])
    ours = store.nearest(vector, 8, where=where, among=among)
    assert [(kw.get("ids") is not None, kw.get("where")) for kw in asked] == [(True, None), (False, where)]
    assert ours == store.nearest(vector, 8, where=where) and ours
