"""Periods: the words people type for one, and the period of the same length before it."""

from __future__ import annotations

from datetime import date

import pytest

from bot.periods import ALL_TIME, Period, Span, between, parse_period
from bot.replies import Refusal
from bot.reports import ReportFormat, read_report_words

TODAY = date(2026, 12, 2)  # a Wednesday in the last quarter of 2026


@pytest.mark.parametrize(
    ("words", "name", "start", "end"),
    [
        ("last quarter", "2026-Q3", "2026-07-01", "2026-09-30"),
        ("This Quarter", "2026-Q4", "2026-10-01", "2026-12-31"),
        ("this month", "2026-12", "2026-12-01", "2026-12-31"),
        ("last month", "2026-11", "2026-11-01", "2026-11-30"),
        ("last year", "2025", "2025-01-01", "2025-12-31"),
        ("2027", "2027", "2027-01-01", "2027-12-31"),
        ("2027-02", "2027-02", "2027-02-01", "2027-02-28"),
        ("March 2027", "2027-03", "2027-03-01", "2027-03-31"),
        ("march", "2026-03", "2026-03-01", "2026-03-31"),
        ("Q1 2027", "2027-Q1", "2027-01-01", "2027-03-31"),
        ("2027-q2", "2027-Q2", "2027-04-01", "2027-06-30"),
        ("2027-01-01 to 2027-03-31", "2027-Q1", "2027-01-01", "2027-03-31"),  # a whole quarter is one
        ("from 2026-11-15 to 2026-12-01", "2026-11-15..2026-12-01", "2026-11-15", "2026-12-01"),
        ("last 30 days", "2026-11-03..2026-12-02", "2026-11-03", "2026-12-02"),
        ("since 2026-10-10", "2026-10-10..2026-12-02", "2026-10-10", "2026-12-02"),
    ],
)
def test_period_words(words, name, start, end):
    period = parse_period(words, TODAY)
    assert period is not None, words
    assert (period.name, str(period.start), str(period.end)) == (name, start, end)


@pytest.mark.parametrize("words", ["next century", "q5 2027", "2027-13", "2027-02-30 to 2027-03-01",
                                   "2027-03-31 to 2027-01-01", "last 0 days", "soon"])  # fmt: skip
def test_words_that_name_no_period(words):
    assert parse_period(words, TODAY) is None


def test_all_time_and_an_open_range_have_no_period_before():
    assert parse_period("", TODAY) == ALL_TIME and parse_period("all", TODAY) == ALL_TIME
    assert ALL_TIME.previous() is None and between(None, None) == ALL_TIME
    assert between(date(2026, 1, 1), None).previous() is None


@pytest.mark.parametrize(
    ("words", "previous"),
    [
        ("2027-03", "2027-02"),
        ("2027-01", "2026-12"),
        ("Q1 2027", "2026-Q4"),
        ("2027", "2026"),
        ("2026-11-15 to 2026-12-01", "2026-10-29..2026-11-14"),  # as many days, just before
    ],
)
def test_the_period_before_has_the_same_length(words, previous):
    period = parse_period(words, TODAY)
    assert period is not None
    before = period.previous()
    assert before is not None and before.name == previous
    if period.span is Span.DAYS:
        assert before.end - before.start == period.end - period.start


def test_a_month_lists_its_months_and_all_time_those_between_the_first_and_last_departure():
    assert parse_period("Q1 2027", TODAY).months() == ["2027-01", "2027-02", "2027-03"]
    assert ALL_TIME.months(date(2026, 11, 20), date(2027, 1, 3)) == ["2026-11", "2026-12", "2027-01"]
    assert Period(Span.DAYS, date(2026, 1, 30), date(2026, 2, 2)).slug == "2026-01-30_2026-02-02"


def test_report_words_take_a_format_and_refuse_what_names_no_period():
    assert read_report_words("last quarter csv", TODAY).format is ReportFormat.CSV
    assert read_report_words("JSON", TODAY).period == ALL_TIME
    with pytest.raises(Refusal) as refused:
        read_report_words("the good old days", TODAY)
    assert refused.value.key == "report_unknown_period" and refused.value.values["words"] == "the good old days"
