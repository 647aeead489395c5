from index.chunking import Chunker
from index.documents import Article
from index.loading import Loader
from tests.conftest import SEEDS


def long_article() -> Article:
    sentences = [f"Sentence number {i} talks about the port of Rotterdam and its {i} cranes." for i in range(120)]
    paragraphs = ["  ".join(sentences[i : i + 6]) for i in range(0, 120, 6)]
    return Article("long", "A long one", "\n\n".join(paragraphs))


def test_chunks_are_exact_spans_within_the_token_budget(embedder):
    chunker = Chunker(embedder.count_tokens, chunk_size=120, chunk_overlap=20)
    [seed] = list(Loader().load([SEEDS]))
    for article in (seed, long_article()):
        chunks = chunker.split(article)
        assert len(chunks) > 1
        for chunk in chunks:
            assert article.text[chunk.start : chunk.end] == chunk.text
            assert len(embedder.count_tokens(chunk.text)) <= 120
        # everything but whitespace is covered, and most neighbours overlap
        assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
        assert all(article.text[a.end : b.start].strip() == "" for a, b in zip(chunks, chunks[1:]))
        assert sum(b.start < a.end for a, b in zip(chunks, chunks[1:])) >= (len(chunks) - 1) / 2


def test_default_chunks_fit_the_model_window_with_the_title(embedder):
    from qa.settings import Settings

    settings = Settings()
    chunker = Chunker(embedder.count_tokens, settings.chunk_size, settings.chunk_overlap)
    for chunk in chunker.split(long_article()):
        assert len(embedder.count_tokens(chunk.embedding_text())) + 2 <= embedder.max_tokens


def test_chunk_ids_are_stable(embedder):
    chunker = Chunker(embedder.count_tokens, 120, 20)
    first = [c.id for c in chunker.split(long_article())]
    assert first == [c.id for c in chunker.split(long_article())]
    assert first[0] == f"long::{long_article().content_hash()[:12]}::0"


def test_chunking_does_not_depend_on_answering_first(embedder):
    """qa/sentences.py tunes its own Punkt copy; the chunker's must stay as it was."""
    from qa.sentences import sentence_spans

    chunker = Chunker(embedder.count_tokens, 120, 20)
    [seed] = list(Loader().load([SEEDS]))
    before = [(c.start, c.end) for c in chunker.split(seed)]
    sentence_spans("The U.S. and Japan met.")
    assert [(c.start, c.end) for c in chunker.split(seed)] == before


ODD = ("Running, the town's mayor said: \"no.\" Zürich 北京 ok — naïve café… 3.14%  U.S.A.\u00a0e-mail\n\n"
       "Dr. Smith’s re-election (2022) cost $1,200,000; half-way\tthere?! #hashtag @user http://x.co/a_b "
       # cut inside, these words' ends tokenize into more or fewer pieces than they are inside the word
       "unbelievably counterintuitive antidisestablishmentarianism photosynthesis ")


def test_counting_pieces_from_the_whole_article_equals_tokenizing_them(embedder):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from index.chunking import _Pieces

    text = ODD * 3 + long_article().text[:3000]
    pieces = _Pieces(text, embedder.wordpieces(text))

    @settings(max_examples=400, deadline=None)
    @given(st.integers(0, len(text)), st.integers(1, 400))
    def check(start, length):
        piece = text[start : start + length]
        counted = pieces.count(piece)
        if counted is not None:  # None: an edge inside a word, so the piece is tokenized on its own
            assert counted == len(embedder.count_tokens(piece)), piece

    check()
    for word, cut in (("counterintuitive", "intuitive"), ("unbelievably", "bly")):  # the cases that differ
        at = text.index(word) + word.index(cut)
        assert pieces.count(text[at : at + len(cut)]) is None
    words = [w for w in text.split() if w]
    assert sum(pieces.count(w) is not None for w in words) > 0.8 * len(words)  # the fast path is the usual one


def test_the_fast_count_gives_the_same_chunks(embedder):
    from index.documents import Article

    [seed] = list(Loader().load([SEEDS]))
    odd = Article("odd", "Odd", "\n\n".join(ODD * (i + 1) for i in range(12)))
    for size, overlap in ((120, 20), (200, 40), (60, 10)):
        slow = Chunker(embedder.count_tokens, size, overlap)
        fast = Chunker(embedder.count_tokens, size, overlap, embedder.wordpieces)
        for article in (seed, long_article(), odd):
            assert [(c.start, c.end) for c in fast.split(article)] == [(c.start, c.end) for c in slow.split(article)]


TRICKY = ("J. Smith met 3. the crowd... and then? yes! Mr. Brown said so. U.S. officials agreed. "
          "It ended.\" He left.) (Sent one.) Sent two. Vote no. 5. Five were cast in 2021. The year "
          "closed. E.g. this one. Zürich's café. Naïve. Again?! Really... Yes. A. B. Clarke wrote.\n\n"
          "Dr. Jones, Sen. Ames and Gov. Lee spoke at 10 a.m. Friday. The U.N. met. Jan. 6 was cold.")


def _corpus_slice(n: int) -> list[str]:
    import gzip
    import json

    import pytest

    from bench.corpus import ARTICLES

    if not ARTICLES.exists():
        pytest.skip(f"{ARTICLES} is absent (the RealTime QA corpus is read from ../shared, never copied)")
    with gzip.open(ARTICLES, "rt") as lines:
        return [json.loads(line).get("text") or "" for line, _ in zip(lines, range(n))]


def _counting_punkt_calls(monkeypatch) -> list[str]:
    """Patches Punkt's own text_contains_sentbreak to record the contexts that reach it."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    asked, own = [], PunktSentenceTokenizer.text_contains_sentbreak
    monkeypatch.setattr(PunktSentenceTokenizer, "text_contains_sentbreak", lambda self, text: asked.append(text) or own(self, text))
    return asked


def test_the_punkt_shortcut_splits_as_llama_index_default_does(monkeypatch):
    """index/chunking.py's Punkt answers plain "word. Next" breaks itself; every split must stay
    what llama-index's own default sentence tokenizer makes, and only the plain ones skip Punkt."""
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    from index.chunking import _chunker_punkt, _sentences

    [seed] = list(Loader().load([SEEDS]))
    texts = [TRICKY, ODD * 2, seed.text, long_article().text, ""]
    reference = split_by_sentence_tokenizer()
    assert [_sentences(t) for t in texts] == [reference(t) for t in texts]
    asked = _counting_punkt_calls(monkeypatch)
    contexts = [context for _, context in _chunker_punkt()._match_potential_end_contexts(TRICKY)]
    sentences = _sentences(TRICKY)
    assert 0 < len(asked) < len(contexts) / 2  # the shortcut answers most ...
    assert {"J. Smith", "3. the", "crowd... and", "U.S. officials"} <= set(asked)  # ... Punkt the rest
    assert "so. U.S." in contexts and "so. U.S." not in asked
    assert "J. Smith met 3. the crowd... and then? " in sentences and "Mr. " in sentences  # untrained: no abbreviations


def test_the_answerers_punkt_with_abbreviations_splits_as_plain_punkt_does():
    """qa/sentences.py adds news abbreviations to its own Punkt: the shortcut must leave "Mr."
    and "no." to Punkt, which keeps "Mr. Brown" together, and the chunker's Punkt learns none."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    from index.chunking import _chunker_punkt
    from qa.sentences import ABBREVIATIONS, _punkt, sentence_spans

    plain = PunktSentenceTokenizer()
    plain._params.abbrev_types.update(ABBREVIATIONS)
    for text in (TRICKY, ODD * 2):
        assert list(_punkt().span_tokenize(text)) == list(plain.span_tokenize(text))
    sentences = [TRICKY[a:b] for a, b in sentence_spans(TRICKY)]
    assert "Mr. Brown said so." in sentences and "Vote no. 5." in sentences
    assert not _chunker_punkt()._params.abbrev_types


def test_the_punkt_shortcut_on_a_slice_of_the_realtimeqa_corpus():
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    from index.chunking import _sentences

    reference = split_by_sentence_tokenizer()
    for text in _corpus_slice(300):
        assert _sentences(text) == reference(text)
