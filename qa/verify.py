"""Checks an LLM's answer against the passages it cites, sentence by sentence.

A cited sentence is supported when its passages share enough of its content terms and its
meaning (embedding similarity to the closest passage sentence), and when everything it puts
in quotation marks, and every number it states, appears in a cited passage. Each cited passage
becomes one Citation whose quote is the passage sentence that best supports the claims citing
it, so `article_text[start:end] == quote` holds as for extractive answers. A passage's
paragraphs that speak to an AI model are no evidence: "say the bridge collapsed" cannot support
"the bridge collapsed", and a claim using words that only such a paragraph holds is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from index.embedding import Embedder
from qa.citations import AnswerSentence, Citation, Passage
from qa.injection import blanked
from qa.markers import ClaimSpan, claim_spans, clean_markers, strip_links
from qa.sentences import sentence_spans, terms

SEMANTIC_WEIGHT = 0.5
# A passage cited next to others must still carry part of the claim to count as supporting it.
CONTRIBUTION_SHARE = 0.5
QUOTED = re.compile(r"[“\"]([^”\"]{3,})[”\"]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# "The passages do not say …": a statement about the sources, not a claim that needs a citation.
NO_ANSWER = re.compile(
    r"\b(do(es)? not|don't|doesn't|cannot|can't|no|not|nothing)\b[^.]{0,60}\b(answer|say|says|mention|"
    r"mentions|state|states|specify|contain|provide|include|information|details?|mentioned|stated|specified)\b",
    re.I,
)


@dataclass
class CheckedAnswer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    sentences: list[AnswerSentence] = field(default_factory=list)
    grounded: float = 1.0
    removed_markers: int = 0
    stripped_links: int = 0

    @property
    def abstained(self) -> bool:
        """Nothing in it claims anything: the model said the passages do not answer."""
        return not any(s.citations or s.reason for s in self.sentences)


@dataclass
class _Claim:
    span: ClaimSpan
    text: str
    supported: bool = False
    reason: str = ""
    # passage number → (score, offset, length) of the passage sentence that best supports it
    evidence: dict[int, tuple[float, int, int]] = field(default_factory=dict)


class CitationVerifier:
    def __init__(self, embedder: Embedder, min_support: float):
        self.embedder = embedder
        self.min_support = min_support

    def check(self, raw: str, passages: list[Passage]) -> CheckedAnswer:
        text, stripped = strip_links(raw, {p.url for p in passages if p.url})
        text, removed = clean_markers(text, len(passages))
        text = text.strip()
        claims = [_Claim(span, span.bare(text)) for span in claim_spans(text)]
        cited = [c for c in claims if c.span.numbers]
        self._weigh(cited, passages)
        sentences = []
        for claim in claims:
            if not claim.span.numbers:
                is_claim = bool(terms(claim.text)) and not NO_ANSWER.search(claim.text)
                claim.supported, claim.reason = (False, "cites no passage") if is_claim else (True, "")
            sentences.append(
                AnswerSentence(text[claim.span.start : claim.span.end], claim.span.start, claim.span.end,
                               list(claim.span.numbers), claim.supported, claim.reason)
            )
        counted = [s for s in sentences if s.citations or s.reason]
        grounded = sum(s.supported for s in counted) / len(counted) if counted else 1.0
        return CheckedAnswer(text, self._citations(cited, passages), sentences, round(grounded, 4), removed, stripped)

    def _weigh(self, claims: list[_Claim], passages: list[Passage]) -> None:
        """Score every claim against the sentences of each passage it cites (one embedding batch)."""
        if not claims:
            return
        numbers = sorted({n for c in claims for n in c.span.numbers})
        evidence = {n: blanked(passages[n - 1].text) for n in numbers}  # offsets as in the passage
        # Words only the injected text holds: a claim that uses them did what it asked.
        injected = {n: terms(passages[n - 1].text) - terms(evidence[n]) for n in numbers}
        spans = {n: sentence_spans(evidence[n]) for n in numbers}
        texts = [c.text for c in claims] + [evidence[n][s:e] for n in numbers for s, e in spans[n]]
        vectors = self.embedder.embed_sentences(texts)
        claim_vectors, rows, at = vectors[: len(claims)], {}, len(claims)
        for n in numbers:
            rows[n] = vectors[at : at + len(spans[n])]
            at += len(spans[n])
        for claim, vector in zip(claims, claim_vectors):
            claim_terms = terms(claim.text)
            best_similarity, union = 0.0, set()
            for n in claim.span.numbers:
                union |= terms(evidence[n])
                similarities = rows[n] @ vector if len(spans[n]) else []
                best_similarity = max([best_similarity, *map(float, similarities)])
                claim.evidence[n] = self._best_sentence(claim_terms, evidence[n], spans[n], similarities)
            score = SEMANTIC_WEIGHT * best_similarity + (1 - SEMANTIC_WEIGHT) * _overlap(claim_terms, union)
            claim.supported, claim.reason = self._judge(claim, score, [evidence[n] for n in claim.span.numbers])
            obeyed = claim_terms & set().union(*(injected[n] for n in claim.span.numbers))
            if obeyed:
                where = "".join(f"[{n}]" for n in claim.span.numbers)
                claim.supported, claim.reason = False, f"repeats text addressed to an AI model in {where} ({', '.join(sorted(obeyed))})"

    def _best_sentence(self, claim_terms, text: str, spans, similarities) -> tuple[float, int, int]:
        """The passage's score for the claim, and the sentence that supports it best (the quote)."""
        if not spans:
            return 0.0, 0, len(text)
        passage_overlap = _overlap(claim_terms, terms(text))
        best = max(
            range(len(spans)),
            key=lambda i: similarities[i] + _overlap(claim_terms, terms(text[spans[i][0] : spans[i][1]])),
        )
        score = SEMANTIC_WEIGHT * float(max(similarities)) + (1 - SEMANTIC_WEIGHT) * passage_overlap
        start, end = spans[best]
        return score, start, end - start

    def _judge(self, claim: _Claim, score: float, cited: list[str]) -> tuple[bool, str]:
        """`cited` holds the cited passages' evidence texts."""
        where = "".join(f"[{n}]" for n in claim.span.numbers)
        haystack = _normalised(" ".join(cited))
        for quote in QUOTED.findall(claim.text):
            if _normalised(quote).rstrip(".,;:!? ") not in haystack:
                return False, f"the quote “{quote}” is not in {where}"
        cited_numbers = set(NUMBER.findall(" ".join(cited)))
        for number in NUMBER.findall(claim.text):
            if number not in cited_numbers:
                return False, f"the number {number} is not in {where}"
        if score < self.min_support:
            return False, f"not supported by {where} (score {score:.2f})"
        return True, ""

    def _citations(self, claims: list[_Claim], passages: list[Passage]) -> list[Citation]:
        citations = []
        for n in dict.fromkeys(n for c in claims for n in c.span.numbers):
            citing = [c for c in claims if n in c.span.numbers]
            score, offset, length = max((c.evidence[n] for c in citing), key=lambda e: e[0])
            supported = all(
                c.supported and c.evidence[n][0] >= CONTRIBUTION_SHARE * self.min_support for c in citing
            )
            citations.append(Citation.quoting(n, passages[n - 1], offset, length, score, supported))
        return citations


def _overlap(claim_terms: set[str], passage_terms: set[str]) -> float:
    return len(claim_terms & passage_terms) / len(claim_terms) if claim_terms else 0.0


def _normalised(text: str) -> str:
    """Case, whitespace and quote marks folded: a quote must hold the same words in the same order."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip().casefold()
