"""The period a report covers: read from what a person types, and the period just before it.

A departure belongs to a period by the day it was recorded, in the team's
zone. A calendar period (a month, a quarter, a year) is compared with the
one before it; any other range with the same number of days just before it.
The words are read here, in English like the command words; what the bot
says about a period is in prompts/.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

MONTH_NAMES = {name.lower(): n for n, name in enumerate(calendar.month_name) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_abbr) if name
}
ALL_WORDS = frozenset({"", "all", "all time", "everything", "ever"})
THIS = frozenset({"this", "current"})
LAST = frozenset({"last", "previous"})
ISO_DAY = r"\d{4}-\d{2}-\d{2}"
RANGE = re.compile(rf"^(?:from\s+)?({ISO_DAY})\s*(?:to|until|\.\.|–|—)\s*({ISO_DAY})$")
SINCE = re.compile(rf"^(?:from|since)\s+({ISO_DAY})$")
QUARTER = re.compile(r"^(?:q([1-4])[\s/-]*(\d{4})|(\d{4})[\s/-]*q([1-4]))$")
MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
NAMED_MONTH = re.compile(r"^([a-z]+)\.?(?:\s+(\d{4}))?$")
LAST_DAYS = re.compile(r"^(?:last|past)\s+(\d{1,4})\s+days?$")
MAX_DAYS = 3660


class Span(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    DAYS = "days"  # any range of days
    ALL = "all"  # every departure ever recorded


@dataclass(frozen=True)
class Period:
    """Days ``start`` to ``end``, both included; None at either end: open on that side."""

    span: Span
    start: date | None = None
    end: date | None = None

    @property
    def name(self) -> str:
        """Short and stable: in file names, in JSON, and in the report's columns."""
        if self.span is Span.ALL:
            return "all"
        if self.span is Span.YEAR and self.start is not None:
            return f"{self.start:%Y}"
        if self.span is Span.QUARTER and self.start is not None:
            return f"{self.start:%Y}-Q{(self.start.month - 1) // 3 + 1}"
        if self.span is Span.MONTH and self.start is not None:
            return f"{self.start:%Y-%m}"
        return f"{self.start or ''}..{self.end or ''}"

    @property
    def slug(self) -> str:
        """The name, as a file name takes it."""
        return self.name.replace("..", "_") or "all"

    def contains(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)

    def previous(self) -> Period | None:
        """The period of the same length just before this one; None for all time or an open start."""
        if self.start is None or self.end is None:
            return None
        if self.span is Span.MONTH:
            return month(_months_before(self.start, 1))
        if self.span is Span.QUARTER:
            return quarter(_months_before(self.start, 3))
        if self.span is Span.YEAR:
            return year(self.start.year - 1)
        days = (self.end - self.start).days + 1
        return Period(Span.DAYS, self.start - timedelta(days=days), self.start - timedelta(days=1))

    def months(self, first: date | None = None, last: date | None = None) -> list[str]:
        """Each month the period touches, as YYYY-MM; an open side ends at ``first`` or ``last``."""
        start, end = self.start or first, self.end or last
        if start is None or end is None or end < start:
            return []
        found = []
        cursor = start.replace(day=1)
        while cursor <= end:
            found.append(f"{cursor:%Y-%m}")
            cursor = _months_before(cursor, -1)
        return found


ALL_TIME = Period(Span.ALL)


def month(day: date) -> Period:
    first = day.replace(day=1)
    return Period(Span.MONTH, first, first.replace(day=calendar.monthrange(first.year, first.month)[1]))


def quarter(day: date) -> Period:
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    last = _months_before(first, -2)
    return Period(Span.QUARTER, first, last.replace(day=calendar.monthrange(last.year, last.month)[1]))


def year(number: int) -> Period:
    return Period(Span.YEAR, date(number, 1, 1), date(number, 12, 31))


def months_to(last: date, count: int) -> Period:
    """The ``count`` whole months that end with ``last``'s month: a trend, as the digest's chart shows it."""
    end = month(last).end
    return Period(Span.DAYS, _months_before(last, count - 1), end)


def _months_before(day: date, months: int) -> date:
    """The first of the month ``months`` before ``day``'s month (after it, when negative)."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def between(start: date | None, end: date | None) -> Period:
    """The days from ``start`` to ``end``; a whole month, quarter or year is named as one, to be compared as one."""
    if start is None and end is None:
        return ALL_TIME
    if start is not None and end is not None:
        for calendar_period in (month(start), quarter(start), year(start.year)):
            if (calendar_period.start, calendar_period.end) == (start, end):
                return calendar_period
    return Period(Span.DAYS, start, end)


def parse_period(words: str, today: date) -> Period | None:
    """``last quarter``, ``this month``, ``2027``, ``2027-03``, ``march 2027``, ``Q1 2027``, ``last 30 days``,
    ``2027-01-01 to 2027-03-31``, ``since 2027-01-01`` or ``all``; None when the words name no period."""
    text = " ".join(words.casefold().split())
    if text in ALL_WORDS:
        return ALL_TIME
    relative = _relative(text, today)
    if relative is not None:
        return relative
    try:
        return _absolute(text, today)
    except ValueError:  # a date that does not exist (2027-02-30), a month 13
        return None


def _relative(text: str, today: date) -> Period | None:
    which, _, unit = text.partition(" ")
    if which in THIS | LAST and unit in ("month", "quarter", "year"):
        back = which in LAST
        if unit == "month":
            return month(_months_before(today, 1 if back else 0))
        if unit == "quarter":
            return quarter(_months_before(today, 3 if back else 0))
        return year(today.year - back)
    if text in ("today", "yesterday"):
        day = today - timedelta(days=text == "yesterday")
        return Period(Span.DAYS, day, day)
    days = LAST_DAYS.match(text)
    if days and 0 < int(days.group(1)) <= MAX_DAYS:
        return Period(Span.DAYS, today - timedelta(days=int(days.group(1)) - 1), today)
    return None


def _absolute(text: str, today: date) -> Period | None:
    if re.fullmatch(r"\d{4}", text):
        return year(int(text))
    if found := RANGE.match(text):
        start, end = date.fromisoformat(found.group(1)), date.fromisoformat(found.group(2))
        return between(start, end) if start <= end else None
    if found := SINCE.match(text):
        return Period(Span.DAYS, date.fromisoformat(found.group(1)), today)
    if re.fullmatch(ISO_DAY, text):
        day = date.fromisoformat(text)
        return Period(Span.DAYS, day, day)
    if found := QUARTER.match(text):
        number, year_text = (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
        return quarter(date(int(year_text), (int(number) - 1) * 3 + 1, 1))
    if found := MONTH.match(text):
        return month(date(int(found.group(1)), int(found.group(2)), 1))
    if (found := NAMED_MONTH.match(text)) and found.group(1) in MONTH_NAMES:
        number = MONTH_NAMES[found.group(1)]
        if found.group(2):
            return month(date(int(found.group(2)), number, 1))
        # "march" alone: the latest March that has begun
        return month(date(today.year if number <= today.month else today.year - 1, number, 1))
    return None
