"""Finds the passages that answer a question: dense (Chroma) + keyword (BM25), fused by
reciprocal rank, with dates and filters respected and one article never filling the list.

Every passage says why it was found (`Passage.why`): its dense and keyword ranks, the fused
score, and the date boost.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field

from index.documents import days_since_epoch
from index.embedding import Embedder
from index.keyword import KeywordIndex
from index.ledger import Ledger
from index.store import ChromaStore
from qa.citations import Passage
from qa.dates import DateRange, resolve
from qa.question import checked_day
from qa.sentences import terms

CANDIDATES = 60  # taken from each of the dense and keyword lists before fusing
# …and this many more keyword candidates from the window the question is about (the week
# before the as-of date, or the range it names): among thousands of articles the story of
# the week may rank 100th on words alone (RealTime QA dev hit@10 96 → 98 %). Keyword only:
# the same from the dense side reached the same 98 % and would add a filtered dense search to
# every question (a week is ~1 % of 47k chunks: ~16 ms, index/store.py `nearest`).
WINDOW_CANDIDATES = 20
RRF_K = 100  # the constant of reciprocal rank fusion (Cormack et al. use 60; tuned on RealTime QA dev)
KEYWORD_WEIGHT = 1.5  # BM25 alone beats MiniLM alone on news (named people, places, events)
TITLE_BOOST = 0.01  # × the share of the question's terms in the article's title (RealTime QA dev: hit@1 66 → 72 %)
# Date boosts, on the scale of fused scores (a first rank in one list is worth 1/101 ≈ 0.01):
IN_RANGE_BOOST = 0.03  # the article falls in the range the question names ("last week")
RECENT_WINDOW_DAYS = 7  # otherwise, the week before the as-of date is what "news" means…
RECENT_BOOST = 0.03
RECENCY_BOOST = 0.002  # …and within it, and beyond, newer articles win near-ties,
RECENCY_DAYS = 7.0  # decaying over about a week
FUTURE_PENALTY = 0.004
# Passages of two articles sharing this share of the shorter one's terms are copies of one story.
NEAR_COPY = 0.8
NEAR_COPY_MIN_TERMS = 12
RELEVANCE_POWER = 1.0  # how strongly the date boost is scaled by relevance (0: not at all)  # articles published after the as-of date are never preferred


@dataclass(frozen=True)
class Filters:
    since: dt.date | None = None
    until: dt.date | None = None
    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    def narrowed(self, date_range: DateRange | None) -> Filters:
        """Add a date range the question asked for explicitly ("in March 2021")."""
        if date_range is None or date_range.mode != "filter":
            return self
        since = max(filter(None, (self.since, date_range.start)))
        until = min(filter(None, (self.until, date_range.end)))
        return Filters(since, until, self.sources, self.doc_ids)

    def limits(self) -> dict:
        """The filters as the keyword index takes them (KeywordIndex.passing)."""
        return dict(since_days=days_since_epoch(self.since), until_days=days_since_epoch(self.until),
                    sources=set(self.sources) or None, doc_ids=set(self.doc_ids) or None)

    def chroma_where(self) -> dict | None:
        clauses = []
        if self.since:
            clauses.append({"published_days": {"$gte": days_since_epoch(self.since)}})
        if self.until:
            clauses.append({"published_days": {"$lte": days_since_epoch(self.until)}})
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.doc_ids:
            clauses.append({"doc_id": {"$in": list(self.doc_ids)}})
        return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(since=self.since and self.since.isoformat(), until=self.until and self.until.isoformat())
        return data


@dataclass
class Retrieval:
    question: str
    as_of: dt.date
    date_range: DateRange | None
    filters: Filters
    passages: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "as_of": self.as_of.isoformat(),
            "date_range": self.date_range.to_dict() if self.date_range else None,
            "filters": self.filters.to_dict(),
            "passages": [asdict(p) for p in self.passages],
        }


class Retriever:
    def __init__(self, embedder: Embedder, store: ChromaStore, ledger: Ledger, top_k: int,
                 max_per_article: int = 2, reranker=None, dense: bool = True, keyword: bool = True, dates: bool = True,
                 title: bool = True):
        # dense / keyword / dates / title switch parts off, for benchmarks that measure each one's worth
        self.use = {"dense": dense, "keyword": keyword, "dates": dates, "title": title}
        self.embedder = embedder
        self.store = store
        self.ledger = ledger
        self.keywords = KeywordIndex(ledger.path.parent)
        self.top_k = top_k
        self.max_per_article = max_per_article
        self.reranker = reranker

    def search(self, question: str, top_k: int | None = None, as_of: dt.date | None = None,
               filters: Filters | None = None) -> list[Passage]:
        return self.retrieve(question, top_k, as_of, filters).passages

    def retrieve(self, question: str, top_k: int | None = None, as_of: dt.date | None = None,
                 filters: Filters | None = None) -> Retrieval:
        as_of = checked_day(as_of) or dt.date.today()
        top_k = top_k or self.top_k
        date_range = resolve(question, as_of) if self.use["dates"] else None
        filters = (filters or Filters()).narrowed(date_range)
        result = Retrieval(question, as_of, date_range, filters)
        generation = self.ledger.generation()  # read once an ask: each read opens the ledger (~1 ms)
        self.store.follow(generation)  # another process may have ingested meanwhile
        ranks = self._candidates(question, filters, self._window(as_of, date_range, filters), generation)
        records = self.ledger.chunk_records(ranks)
        best = {name: max((w[name] for w in ranks.values() if name in w), default=0.0) or 1.0
                for name in ("dense_score", "keyword_score")}
        scored = []
        asked = terms(question)
        titled: dict[str, float] = {}  # article → share of the question's terms its title holds
        for chunk_id, why in ranks.items():
            record = records.get(chunk_id)
            if record is None:
                continue  # a deleted article, or a version of it that is not (or no longer) current
            fused = sum(1.0 / (RRF_K + why[name]) * weight for name, weight in (("dense_rank", 1.0), ("keyword_rank", KEYWORD_WEIGHT)) if name in why)
            # An article whose title names what is asked is about it; a digest ("5 things to know")
            # that mentions it in one paragraph is not, though that paragraph may match as well.
            if record["doc_id"] not in titled:
                titled[record["doc_id"]] = len(asked & terms(record["title"] or "")) / len(asked) if asked else 0.0
            if titled[record["doc_id"]] and self.use["title"]:
                why["title_boost"] = round(TITLE_BOOST * titled[record["doc_id"]], 5)
                fused += why["title_boost"]
            # Dates decide between relevant passages: the boost shrinks with relevance relative to
            # the best candidate, so a recent but unrelated article cannot climb on its date alone.
            relevance = max(max(why.get(name, 0.0), 0.0) / best[name] for name in best) ** RELEVANCE_POWER
            boost = date_boost(record["published"], as_of, date_range) * relevance if self.use["dates"] else 0.0
            why.update(fused=round(fused, 5), date_boost=round(boost, 5))
            scored.append((fused + boost, chunk_id, record, why))
        # ties: newer first (undated counts as oldest), then a stable order by id
        scored.sort(key=lambda item: (-item[0], -(days_since_epoch(item[2]["published"]) or 0), item[1]))
        passages = self._diverse(scored, top_k)
        if self.reranker is not None:
            passages = self.reranker.rerank(question, passages)
        result.passages = passages
        return result

    def _window(self, as_of: dt.date, date_range: DateRange | None, filters: Filters) -> tuple[dt.date, dt.date] | None:
        """The dates whose articles get candidates of their own: none when the caller or the
        question already restricts the dates (then every candidate is in range)."""
        if not self.use["dates"] or filters.since or filters.until:
            return None
        if date_range is not None and date_range.mode == "prefer":
            return date_range.start, min(date_range.end, as_of)
        return as_of - dt.timedelta(days=RECENT_WINDOW_DAYS), as_of

    def _candidates(self, question: str, filters: Filters, window: tuple[dt.date, dt.date] | None,
                    generation: int) -> dict[str, dict]:
        ranks: dict[str, dict] = {}
        where = filters.chroma_where()
        # the chunks the filters pass, read once for both lists from the keyword index
        among = self.keywords.passing(self.ledger, **filters.limits(), generation=generation) if where else None
        dense = self.store.nearest(self.embedder.embed_query(question), CANDIDATES, where=where, among=among) \
            if self.use["dense"] else []
        for rank, (chunk_id, score) in enumerate(sorted(dense, key=lambda hit: -hit[1]), start=1):
            ranks.setdefault(chunk_id, {})["dense_rank"] = rank
            ranks[chunk_id]["dense_score"] = round(score, 4)
        keyword = self.keywords.search(
            question, CANDIDATES, self.ledger, among,
            # one BM25 model scores both lists: merged by score, a window hit ranks where it would
            # have in a longer list of the candidates
            window=window and (days_since_epoch(window[0]), days_since_epoch(window[1])), window_k=WINDOW_CANDIDATES,
            generation=generation,
        ) if self.use["keyword"] else []
        for rank, (chunk_id, score) in enumerate(keyword, start=1):
            ranks.setdefault(chunk_id, {})["keyword_rank"] = rank
            ranks[chunk_id]["keyword_score"] = round(score, 3)
        return ranks

    def _diverse(self, scored: list, top_k: int) -> list[Passage]:
        """Best first, one copy of a syndicated story, and at most `max_per_article` passages an
        article while other articles can fill the list; only then more of the same articles.

        A passage that is mostly another article's passage (a copy with a paragraph added, as a
        poisoner makes them, escapes the ingest's MinHash) is a copy too."""
        per_article: dict[str, int] = {}
        member_of_group: dict[str, str] = {}
        kept_terms: list[tuple[str, set[str]]] = []
        chosen, held_back = [], []
        for item in scored:
            doc_id = item[2]["doc_id"]
            if member_of_group.setdefault(item[2]["duplicate_of"] or doc_id, doc_id) != doc_id:
                continue
            words = terms(item[2]["text"])
            if any(other != doc_id and _copied(words, seen) for other, seen in kept_terms):
                continue
            kept_terms.append((doc_id, words))
            per_article[doc_id] = per_article.get(doc_id, 0) + 1
            (chosen if per_article[doc_id] <= self.max_per_article else held_back).append(item)
            if len(chosen) == top_k:
                break  # the rest could only be held back: no need to read their terms
        return [_passage(*item) for item in (chosen + held_back)[:top_k]]


def _copied(words: set[str], other: set[str]) -> bool:
    """Most of the shorter passage's terms are in the other: one is a copy of the other."""
    shorter = min(len(words), len(other))
    return shorter >= NEAR_COPY_MIN_TERMS and len(words & other) >= NEAR_COPY * shorter


def _passage(score: float, chunk_id: str, record: dict, why: dict) -> Passage:
    return Passage(
        chunk_id=chunk_id, doc_id=record["doc_id"], title=record["title"], source=record["source"],
        published=record["published"], url=record["url"], text=record["text"],
        start=record["start"], end=record["end"], score=round(score, 5), why=why,
    )


def date_boost(published: str, as_of: dt.date, date_range: DateRange | None) -> float:
    if not published:
        return 0.0
    day = dt.date.fromisoformat(published)
    if day > as_of:
        return -FUTURE_PENALTY
    age = (as_of - day).days
    tie_break = RECENCY_BOOST * math.exp(-age / RECENCY_DAYS)
    if date_range is not None and date_range.mode == "prefer":
        return (IN_RANGE_BOOST if date_range.start <= day <= date_range.end else 0.0) + tie_break
    return (RECENT_BOOST if age <= RECENT_WINDOW_DAYS else 0.0) + tie_break
