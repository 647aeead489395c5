"""What a question may be: not empty, at most QA_MAX_QUESTION_CHARS, no control or bidi-override characters.

Control characters (other than tab and line breaks) and the bidi embedding, override and isolate
characters (U+202A–U+202E, U+2066–U+2069) are refused, not stripped: they make the text shown
differ from the text searched ("Trojan Source"), and a silent edit would hide that. So are lone
surrogates (a JSON "\\ud800" escape), which are not text at all.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from qa.errors import QAError

ALLOWED_CONTROLS = "\t\n\r"
FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
KINDS = {"Cc": "a control character", "Cf": "a bidirectional formatting character", "Cs": "an unpaired surrogate (not text)"}


def checked_question(question: str | None, max_chars: int) -> str:
    """The question without surrounding whitespace; QAError with a one-line message when it cannot be asked."""
    question = (question or "").strip()
    if not question:
        raise QAError("the question is empty; type a question")
    if len(question) > max_chars:
        raise QAError(f"the question is {len(question)} characters long; keep it under {max_chars} (QA_MAX_QUESTION_CHARS)")
    found = FORBIDDEN.search(question)
    if found:
        char = found.group()
        kind = KINDS[unicodedata.category(char)]
        name = unicodedata.name(char, "")
        raise QAError(f"the question contains {kind} (U+{ord(char):04X}{' ' + name if name else ''}) "
                      f"at position {found.start() + 1}; remove it and ask again")
    return question


# Days a question may be asked on: "last week" is date arithmetic, which overflows near year 1 and 9999.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def checked_day(day: dt.date | None, name: str = "as_of") -> dt.date | None:
    """The day, or QAError naming the field when it lies outside FIRST_DAY..LAST_DAY."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise QAError(f"{name} is {day.isoformat()}; give a day between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}")
    return day
