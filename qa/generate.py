"""The LLM answerer: asks a backend to answer from the passages, then checks every citation.

The stream gives the model's text as it is written, then the final Answer, built from the
whole text by the same code whether the caller streamed or not. The final text is the one
to keep: out-of-range markers and foreign links are gone from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from qa.answer import ExtractiveAnswerer
from qa.citations import ABSTENTION, Answer, Passage
from qa.errors import BackendUnavailableError
from qa.llm.base import LLMBackend
from qa.prompt import answer_messages
from qa.verify import CitationVerifier


class LLMAnswerer:
    def __init__(
        self,
        backend: LLMBackend,
        verifier: CitationVerifier,
        extractive: ExtractiveAnswerer,
        min_evidence: float,
        fallback: bool = False,
    ):
        self.backend = backend
        self.verifier = verifier
        self.extractive = extractive  # judges the evidence first; answers instead only if `fallback`
        self.min_evidence = min_evidence
        self.fallback = fallback

    @property
    def name(self) -> str:
        return self.backend.name

    def answer(self, question: str, passages: list[Passage], as_of: dt.date | None = None) -> Answer:
        *_, answer = self.answer_stream(question, passages, as_of)
        return answer

    def answer_stream(
        self, question: str, passages: list[Passage], as_of: dt.date | None = None
    ) -> Iterator[str | Answer]:
        """Text deltas, then the checked Answer."""
        if not passages or self.extractive.best_score(question, passages) < self.min_evidence:
            # Abstain from the evidence: no passage sentence comes near the question.
            yield ABSTENTION
            yield Answer(question, ABSTENTION, True, self.name, passages=passages)
            return
        messages = answer_messages(question, passages, as_of or dt.date.today())
        parts: list[str] = []
        try:
            for delta in self.backend.stream(messages):
                parts.append(delta)
                yield delta
        except BackendUnavailableError as exc:
            if parts or not self.fallback:  # text already shown cannot be taken back
                raise
            yield from self._fall_back(question, passages, exc)
            return
        yield self._checked(question, "".join(parts), passages)

    def _checked(self, question: str, raw: str, passages: list[Passage]) -> Answer:
        checked = self.verifier.check(raw, passages)
        warnings = []
        if not checked.text:
            warnings.append("the model wrote nothing; treated as an abstention")
        if checked.stripped_links:
            warnings.append(f"{checked.stripped_links} link(s) or image(s) not from the sources were removed")
        if checked.removed_markers:
            warnings.append(f"{checked.removed_markers} citation marker(s) pointing at no passage were removed")
        abstained = checked.abstained
        return Answer(
            question, checked.text or ABSTENTION, abstained, self.name,
            citations=checked.citations, passages=passages, grounded=checked.grounded,
            sentences=checked.sentences, removed_markers=checked.removed_markers, warnings=warnings,
        )

    def _fall_back(self, question: str, passages: list[Passage], exc: Exception) -> Iterator[str | Answer]:
        warning = f"{exc}; answered by the extractive answerer instead (QA_LLM_FALLBACK=extractive)"
        answer = self.extractive.answer(question, passages)
        answer.warnings.append(warning)
        yield answer.answer
        yield answer
