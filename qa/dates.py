"""Time in the question: "last week", "in March 2021", "this year"… resolved against an as-of date.

An explicit month or "in YEAR" becomes a date filter; relative and vague expressions
("last week", "recently", a bare year) become a preference for articles in the range.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import asdict, dataclass

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
WORDS_AGO = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "several": 3, "few": 3}


@dataclass(frozen=True)
class DateRange:
    start: dt.date
    end: dt.date
    label: str  # the words in the question that set it
    mode: str  # "filter": only articles in the range; "prefer": articles in it rank higher

    def to_dict(self) -> dict:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def resolve(question: str, as_of: dt.date) -> DateRange | None:
    """The first time expression found, most specific patterns first."""
    q = question.lower()
    for finder in (_day, _month_year, _in_year, _month_alone, _relative, _ago, _bare_year):
        found = finder(q, as_of)
        if found and found.start <= as_of:  # no article can be from after the as-of date
            return found
        if found:
            return None
    return None


def _day(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(rf"\b{MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)\b", q)
    if not m:
        return None
    try:
        day = dt.date(int(m.group(3)), MONTHS[m.group(1)], int(m.group(2)))
    except ValueError:
        return None
    return DateRange(day, day + dt.timedelta(days=7), m.group(0), "prefer")  # reported in the days after


def _month_year(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(rf"\b{MONTH}\s+(?:of\s+)?((?:19|20)\d\d)\b", q)
    if not m:
        return None
    start, end = _month_range(int(m.group(2)), MONTHS[m.group(1)])
    return DateRange(start, end, m.group(0), "filter")


def _in_year(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(r"\b(?:in|during|throughout)\s+((?:19|20)\d\d)\b", q)
    if not m:
        return None
    year = int(m.group(1))
    return DateRange(dt.date(year, 1, 1), dt.date(year, 12, 31), m.group(0), "filter")


def _month_alone(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(rf"\b(?:in|during|since|last|this)\s+{MONTH}\b(?!\s*\d)", q)
    if not m or m.group(1) == "may" and not q[m.start():].startswith(("in may", "during may", "last may", "this may")):
        return None
    month = MONTHS[m.group(1)]
    year = as_of.year if month <= as_of.month else as_of.year - 1  # the latest such month so far
    start, end = _month_range(year, month)
    return DateRange(start, min(end, as_of), m.group(0), "filter")


def _relative(q: str, as_of: dt.date) -> DateRange | None:
    day = dt.timedelta(days=1)
    table = [
        (r"\btoday\b|\bthis morning\b|\btonight\b", as_of - day, as_of),
        (r"\byesterday\b", as_of - 2 * day, as_of - day),
        (r"\b(this|past|last)\s+week(end)?\b|\bthis past week\b", as_of - 7 * day, as_of),
        (r"\b(past|last)\s+(two|2)\s+weeks\b", as_of - 14 * day, as_of),
        (r"\bthis month\b|\bpast month\b", as_of - 31 * day, as_of),
        (r"\blast month\b", *_month_range((as_of.replace(day=1) - day).year, (as_of.replace(day=1) - day).month)),
        (r"\bthis year\b|\bso far this year\b", dt.date(as_of.year, 1, 1), as_of),
        (r"\blast year\b", dt.date(as_of.year - 1, 1, 1), dt.date(as_of.year - 1, 12, 31)),
        (r"\b(recently|recent|latest|newest|just|currently|now|this season)\b", as_of - 14 * day, as_of),
    ]
    for pattern, start, end in table:
        m = re.search(pattern, q)
        if m:
            return DateRange(start, end, m.group(0), "prefer")
    return None


def _ago(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(r"\b(\d+|a|one|two|three|four|five|six|several|few)\s+(day|week|month|year)s?\s+ago\b", q)
    if not m:
        return None
    count = int(m.group(1)) if m.group(1).isdigit() else WORDS_AGO[m.group(1)]
    days = {"day": 1, "week": 7, "month": 30, "year": 365}[m.group(2)] * count
    centre = as_of - dt.timedelta(days=days)
    slack = dt.timedelta(days=max(2, days // 4))
    return DateRange(centre - slack, min(as_of, centre + slack), m.group(0), "prefer")


def _bare_year(q: str, as_of: dt.date) -> DateRange | None:
    m = re.search(r"\b((?:19|20)\d\d)\b", q)
    if not m or int(m.group(1)) > as_of.year:
        return None
    year = int(m.group(1))
    return DateRange(dt.date(year, 1, 1), min(dt.date(year, 12, 31), as_of), m.group(0), "prefer")
