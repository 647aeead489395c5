"""Time expressions resolved against fixed as-of dates, in many phrasings."""

import datetime as dt

import pytest

from qa.dates import resolve

AS_OF = dt.date(2022, 6, 16)  # a Thursday


@pytest.mark.parametrize("question, start, end, mode", [
    ("What was announced in March 2021?", "2021-03-01", "2021-03-31", "filter"),
    ("What happened in Sept. 2020 in Paris?", "2020-09-01", "2020-09-30", "filter"),
    ("Which bill passed during 2019?", "2019-01-01", "2019-12-31", "filter"),
    ("What happened in May?", "2022-05-01", "2022-05-31", "filter"),
    ("What did the council decide in November?", "2021-11-01", "2021-11-30", "filter"),  # the latest November
    ("What happened last week?", "2022-06-09", "2022-06-16", "prefer"),
    ("Who resigned this week?", "2022-06-09", "2022-06-16", "prefer"),
    ("What happened yesterday in Congress?", "2022-06-14", "2022-06-15", "prefer"),
    ("What did the mayor say today?", "2022-06-15", "2022-06-16", "prefer"),
    ("What happened last month?", "2022-05-01", "2022-05-31", "prefer"),
    ("How many storms so far this year?", "2022-01-01", "2022-06-16", "prefer"),
    ("Who won the election last year?", "2021-01-01", "2021-12-31", "prefer"),
    ("Which show was recently renewed?", "2022-06-02", "2022-06-16", "prefer"),
    ("What happened two weeks ago?", "2022-05-30", "2022-06-05", "prefer"),
    ("What happened on March 16, 2021?", "2021-03-16", "2021-03-23", "prefer"),
    ("Who won the 2020 election?", "2020-01-01", "2020-12-31", "prefer"),
])
def test_resolves(question, start, end, mode):
    found = resolve(question, AS_OF)
    assert found is not None, question
    assert (found.start.isoformat(), found.end.isoformat(), found.mode) == (start, end, mode)
    assert found.label.lower() in question.lower()


@pytest.mark.parametrize("question", [
    "What did the 2+2 statement say about Taiwan?",
    "Who may become the next prime minister?",
    "What will happen in 2030?",  # a year after the as-of date is not a past range
    "How many people live in Tokyo?",
])
def test_no_time_expression(question):
    assert resolve(question, AS_OF) is None


def test_relative_dates_move_with_the_as_of_date():
    assert resolve("what happened yesterday?", dt.date(2021, 1, 1)).end == dt.date(2020, 12, 31)
