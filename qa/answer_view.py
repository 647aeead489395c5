"""How `qa ask` and `qa chat` print an answer: the text (streamed as it is written on a
terminal), then the numbered sources, then what the citation check found."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from qa.citations import Answer


class AnswerView:
    def __init__(self, out: Console, err: Console):
        self.out = out
        self.err = err

    def stream(self, items: Iterable[str | Answer]) -> Answer:
        """Write the deltas as they come; the final Answer's checks follow."""
        written, answer = [], None
        for item in items:
            if isinstance(item, Answer):
                answer = item
                continue
            written.append(item)
            self.out.file.write(item)
            self.out.file.flush()
        self.out.file.write("\n")
        if answer.answer != "".join(written).strip():
            # Markers that pointed nowhere or foreign links were removed after the fact.
            self._print("\nChecked answer:", style="bold")
            self._print(answer.answer)
        self.details(answer)
        return answer

    def show(self, answer: Answer) -> None:
        self._print(answer.answer)
        self.details(answer)

    def details(self, answer: Answer) -> None:
        if answer.standalone_question:
            self.err.print(f"(asked as: {answer.standalone_question})", highlight=False, markup=False, style="dim")
        if answer.citations:
            self._print("\nSources:", style="bold")
        for c in answer.citations:
            flag = "" if c.supported else "  ✗ does not support what cites it"
            self._print(f"[{c.n}] {c.title} — {c.source or 'unknown source'}, {c.published or 'undated'}  ({c.doc_id}){flag}")
            self._print(f"    “{c.quote}”", style="dim")
        unsupported = [s for s in answer.sentences if not s.supported]
        if unsupported:
            self._print(f"\nUnsupported ({answer.grounded:.0%} of the claims are supported by their sources):", style="bold red")
            for sentence in unsupported:
                self._print(f"  ✗ {sentence.text}  — {sentence.reason}")
        for warning in answer.warnings:
            self.err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)  # a server's words

    def _print(self, text: str, style: str | None = None) -> None:
        self.out.print(text, highlight=False, markup=False, style=style)
