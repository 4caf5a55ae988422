"""Lessons from the departures: reasons, save rate, revenue, workload, over a period and against the one before.

One computation, ``build_report``, serves every way the figures are seen:
``sendoff report`` (text, CSV, JSON, a chart), ``/report`` in the console,
``/departure report`` in Slack, App Home and the monthly digest. So the digest
of a month and ``/report 2027-03`` always agree.

Definitions (each is stated once in the report, by prompts/report.txt.j2):

- A departure belongs to a period by the day it was recorded (``created_at``) in the team's zone.
- A save attempt is a departure whose "fixable" answer is yes or maybe. Its outcome is
  ``record["save_outcome"]`` (saved, leaving, lapsed) when recorded; before that, what the status
  says once it is decided; while undecided it is under way. The save rate is saved ÷ save attempts
  that ended. A client retained without a save attempt is counted apart, never as a saved one.
- Revenue lost: the monthly revenue of departures now leaving or departed (a lapsed save attempt
  leaves the client leaving). At stake: that of open, undecided departures (reported, interviewing,
  saving).
- A forgotten departure counts only in anonymous totals (departures, reasons, save attempts,
  revenue lost): never at stake, never per account manager, never in days to decision (forget
  closes it, which is no decision), and nothing personal of it is exported.
- Days to decision: from the day the client told us (the ``notified_on`` answer, else the day
  recorded) to the first status change out of the undecided statuses, from the history.
- Won back: status changes to won back on a day of the period, whenever the client left.
- Active clients at the start of a period (the base of turnover): what the team said with ``/clients 42``
  (``store.team_sizes()``, each statement with the day from which it holds), as it held at the start, else the
  first said during the period; when the team said nothing by the period's end, the sum of the account
  managers' answers to the "workload" question, each one's latest by the start, else their first during it.
- Turnover: clients lost (departures of the period now leaving or departed, as for the revenue lost; a
  forgotten one too) ÷ active clients at the start. Retention: 1 − turnover.
- Revenue kept: the monthly revenue of departures saved by a save attempt (and not lost since).
- The client's reason: ``client_voice["reason"]`` (the exit note's form), beside the AM's reason answer; never
  of a forgotten departure (forget erases it).

The store gives the report an outline of each departure (``Reader.outline``): only the parts these
definitions read (PostgreSQL cuts them out in SQL, so the whole documents are neither shipped nor parsed).
The figures are computed here alone, and the same from outlines as from whole records.

The words and layout are Jinja2 templates of prompts/ (report.txt.j2, digest.txt.j2 and the
counted words of report_words.j2), which a company may replace in SENDOFF_PROMPTS.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.answers import AnswerError, format_money, parse_date
from bot.charts import ChartData, render_png
from bot.clock import iso, parse_iso
from bot.countries import country_names
from bot.departures import SAVE_ATTEMPT, Departures
from bot.interview import InterviewState
from bot.periods import ALL_TIME, Period, month, months_to, parse_period
from bot.replies import CommandRef, Refusal
from prompts import Messages, Prompts, Question, Script
from storage.contract import NewTeamSize, Outline, TeamSize
from storage.memory_store import collector_paused
from storage.records import OPEN, STATUS_ORDER, AuditEvent, SaveOutcome, Status

# Revenue is lost once the client is leaving (by decision, or a save attempt that lapsed) or gone; it is at
# stake while the departure is open and undecided.
LOST = frozenset({Status.DEPARTED, Status.LEAVING})
AT_STAKE = OPEN - LOST
# The question whose answer dates the departure itself (the default interview's id; it has no role).
NOTIFIED_QUESTION = "notified_on"
# The answers the report reads, by the role of their question.
ROLES = ("reason", "fixable", "revenue", "country", "workload")
# What the report reads of a departure beside those answers and its status changes (``Reader.outline``);
# ``build_report`` is also given whole records, which hold these and more.
FIELDS = ("client", "am", "created_at", "updated_at", "forgotten", "save_outcome", "client_voice")
# Where the text report shows months one by one, at most this many (the latest); exports have all.
MONTHS_SHOWN = 24
# Reasons drawn apart in the chart; the rest are drawn together as one.
CHART_REASONS = 8
# The digest's chart: the trend of this many months, up to the digest's month.
TREND_MONTHS = 12
# The most active clients /clients takes: a larger number is a slip of the keyboard.
MOST_CLIENTS = 1_000_000


class ReportFormat(StrEnum):
    TEXT = "text"
    CSV = "csv"
    JSON = "json"


Money = dict[str, Decimal]  # currency -> amount


@dataclass(frozen=True)
class Row:
    """One departure, as the report reads it. Personal fields are empty for a forgotten one."""

    id: int
    recorded_on: date  # in the team's zone
    status: Status
    forgotten: bool
    client: str
    am: str
    source: str
    reason: str | None  # option id
    reason_label: str | None
    fixable: str | None
    attempted: bool  # a save attempt: fixable yes or maybe
    outcome: SaveOutcome | None  # of the save attempt; None while it is under way, or without one
    revenue: tuple[Decimal, str] | None  # amount, currency
    country: str | None  # ISO code
    country_label: str | None
    notified_on: date | None
    decided_on: date | None
    won_back_on: tuple[date, ...]  # the days it was won back
    client_answered: bool = False  # the client answered the exit note's form (never told of a forgotten one)
    client_reason: str | None = None  # the reason the client gave there (an option id), if they gave one
    client_reason_label: str | None = None

    @property
    def lost(self) -> bool:
        return self.status in LOST

    @property
    def kept(self) -> bool:
        """Saved by a save attempt, and not lost since."""
        return self.attempted and self.outcome is SaveOutcome.SAVED and not self.lost

    @property
    def at_stake(self) -> bool:
        return self.status in AT_STAKE and not self.forgotten

    @property
    def days_to_decision(self) -> int | None:
        if self.decided_on is None or self.forgotten:
            return None
        return max(0, (self.decided_on - (self.notified_on or self.recorded_on)).days)


@dataclass(frozen=True)
class Figures:
    """The headline figures of a set of departures."""

    departures: int
    open: int
    save_attempts: int
    saved: int
    save_left: int  # the save attempt ended with the client still leaving
    save_lapsed: int  # ended with no answer (bot.lifecycle.lapse_save)
    save_under_way: int
    retained_without_attempt: int
    lost: Money
    at_stake: Money
    won_back: int
    median_days: float | None  # to decision
    decided: int  # departures with a decision, behind the median
    kept: Money = field(default_factory=dict)  # by save attempts
    clients_lost: int = 0  # departures now leaving or departed: the turnover's count
    active: ActiveClients | None = None  # at the start of the period: the turnover's base
    named: int = 0  # departures not forgotten: those whose client could answer the form
    answered_form: int = 0  # clients who answered it
    client_reasons: int = 0  # who gave their reason there
    reasons_differ: int = 0  # whose reason differs from the AM's

    @property
    def save_ended(self) -> int:
        return self.saved + self.save_left + self.save_lapsed

    @property
    def turnover(self) -> float | None:
        """Clients lost ÷ active clients at the start; None without a base (or a base of 0)."""
        if self.active is None or self.active.count == 0:
            return None
        return self.clients_lost / self.active.count

    @property
    def retention(self) -> float | None:
        return None if self.turnover is None else 1 - self.turnover

    @property
    def save_rate(self) -> float | None:
        """Saved among the save attempts that ended; None while none has."""
        return None if self.save_ended == 0 else self.saved / self.save_ended


class BaseSource(StrEnum):
    """Where the count of active clients came from."""

    TEAM = "clients"  # the team said it (/clients 42)
    WORKLOAD = "workload"  # the sum of the account managers' workload answers


@dataclass(frozen=True)
class ActiveClients:
    """How many active clients the team had at the start of a period, and where that count came from."""

    count: int
    source: BaseSource
    on: date  # the day the count holds from (workload: the latest of the answers summed)
    at_start: bool  # it held at the start of the period; else it is the first known during it
    answers: int = 0  # workload: how many account managers' answers were summed


@dataclass(frozen=True)
class Heard:
    """The departures of one reason as the AM gave it, beside the reasons their clients gave in the form."""

    key: str | None  # the AM's reason (option id); None when the AM gave none
    label: str | None
    answered: int  # clients who gave their reason in the form
    differ: int  # of those, whose reason is another
    said: tuple[tuple[str, int], ...]  # their other reasons (labels) and how many gave each, most first


@dataclass(frozen=True)
class Group:
    """Departures sharing a reason, a country or a month."""

    key: str | None
    label: str | None
    departures: int
    share: float
    save_ended: int
    saved: int
    lost: Money

    @property
    def save_rate(self) -> float | None:
        return None if self.save_ended == 0 else self.saved / self.save_ended


@dataclass(frozen=True)
class MonthRow(Group):
    by_reason: dict[str, int] = field(default_factory=dict)  # reason label -> departures


@dataclass(frozen=True)
class Workload:
    am: str
    departures: int
    open: int
    active_clients: int | None  # what the AM last said they handle
    save_ended: int = 0
    saved: int = 0
    lost: Money = field(default_factory=dict)
    at_stake: Money = field(default_factory=dict)

    @property
    def save_rate(self) -> float | None:
        return None if self.save_ended == 0 else self.saved / self.save_ended


@dataclass(frozen=True)
class Report:
    period: Period
    previous_period: Period | None
    figures: Figures
    previous: Figures | None
    rows: tuple[Row, ...]  # the departures recorded in the period, oldest first
    monthly: tuple[MonthRow, ...]
    by_reason: tuple[Group, ...]
    by_country: tuple[Group, ...]
    workload: tuple[Workload, ...]
    by_status: dict[Status, int]
    zone: str
    heard: tuple[Heard, ...] = ()  # by the AM's reason, where clients gave theirs in the form

    # -- the names of the first reports, still read by App Home and tests ------------------------------
    @property
    def total(self) -> int:
        return self.figures.departures

    @property
    def open(self) -> int:
        return self.figures.open

    @property
    def reasons(self) -> list[tuple[str, int]]:
        """Label and count of each answered reason, most frequent first."""
        return [(g.label, g.departures) for g in self.by_reason if g.label is not None]

    @property
    def save_attempts(self) -> int:
        return self.figures.save_attempts

    @property
    def retained(self) -> int:
        """Saved by a save attempt (a client retained without one is ``retained_without_attempt``)."""
        return self.figures.saved

    @property
    def rectifiable_lost(self) -> int:
        return self.figures.save_left + self.figures.save_lapsed

    @property
    def save_lapsed(self) -> int:
        return self.figures.save_lapsed

    @property
    def save_rate(self) -> float | None:
        return self.figures.save_rate

    @property
    def revenue_at_stake(self) -> Money:
        return self.figures.at_stake

    @property
    def revenue_lost(self) -> Money:
        return self.figures.lost

    @property
    def won_back(self) -> int:
        return self.figures.won_back


# -- reading the departures ------------------------------------------------------------------------------


# A departure as the report reads it: a whole stored record, or its outline (``Reader.outline``).
Read = Mapping[str, Any]


class Reader:
    """Turns stored departures into rows: each record's interview is read once."""

    def __init__(self, departures: Departures) -> None:
        self.departures = departures
        self.interview = departures.interview
        self.zone = departures.zone
        self.script = departures.prompts.script
        self.questions: dict[str, Question | None] = {role: self.script.by_role(role) for role in ROLES}
        reason = self.questions["reason"]
        self.reason_labels = {o.id: o.label for o in reason.options} if reason else {}
        self.countries = country_names()
        self.workload_question = self.questions["workload"]
        # Many moments recur (a status change recorded with its departure, a day's batch of CRM reports).
        self._days: dict[str, date] = {}
        # Whether a question with conditions applies rests on the values of the questions they name (and of
        # theirs): what Interview.applies says is kept per such values, which departures share a handful of.
        self._rests_on = {q.id: _rests_on(self.script, q) for q in self.questions.values() if q is not None and q.when}
        self._applies: dict[tuple[str, tuple[tuple[type, Any], ...]], bool] = {}

    @property
    def outline(self) -> Outline:
        """What the report reads of each departure, a small part of a whole one (the answers that settle its
        roles, without their display text; no history but the status changes): the store ships only that."""
        needed: dict[str, None] = {NOTIFIED_QUESTION: None}
        # Whether a question applies rests on the answers its conditions name, and on whether theirs apply.
        waiting = [q for q in self.questions.values() if q is not None]
        while waiting:
            question = waiting.pop()
            if question.id in needed:
                continue
            needed[question.id] = None
            for condition in question.when:
                above = self.script.question(condition.question)
                if above is None:
                    needed.setdefault(condition.question, None)
                else:
                    waiting.append(above)
        return Outline(fields=FIELDS, answers=tuple(needed), answer_fields=("value", "at"),
                       history_events=(AuditEvent.STATUS,))  # fmt: skip

    def local_day(self, moment: str) -> date:
        day = self._days.get(moment)
        if day is None:
            day = self._days[moment] = parse_iso(moment).astimezone(self.zone).date()
        return day

    @staticmethod
    def state(record: Read) -> InterviewState:
        """The answers alone: an outline holds nothing else of the interview, and the report reads nothing else."""
        return InterviewState(answers=record["interview"]["answers"])

    def value_of(self, answers: dict[str, Any], role: str) -> Any:
        """``Interview.value_of`` for one of ROLES, read from ``answers`` without an interview state per departure
        (10,000 departures × 5 roles made that a fifth of the report's build)."""
        question = self.questions[role]
        if question is None:
            return None
        # One without conditions always applies (Interview.applies), as most of the roles' questions do.
        if question.when and not self._question_applies(question, answers):
            return None
        answer = answers.get(question.id)
        return None if answer is None else answer.get("value")

    def _question_applies(self, question: Question, answers: dict[str, Any]) -> bool:
        # The values as Interview.holds reads them (a skipped answer's is None, like a missing one), with their
        # types: True and 1 are equal keys, yet a condition could tell them apart.
        values = []
        for name in self._rests_on[question.id]:
            answer = answers.get(name)
            value = None if answer is None else answer.get("value")
            values.append((type(value), value))
        key = (question.id, tuple(values))
        try:
            return self._applies[key]
        except KeyError:
            found = self._applies[key] = self.interview.applies(question, InterviewState(answers=answers))
            return found
        except TypeError:  # a value that cannot be a key (a list, an amount): asked each time
            return self.interview.applies(question, InterviewState(answers=answers))

    def row(self, record: Read) -> Row:
        answers = record["interview"]["answers"]
        value = self.value_of
        forgotten = bool(record.get("forgotten"))
        status = record["status"]
        reason = value(answers, "reason")
        fixable = value(answers, "fixable")
        attempted = fixable in SAVE_ATTEMPT
        revenue = value(answers, "revenue")
        country = None if forgotten else value(answers, "country")
        notified_answer = None if forgotten else answers.get(NOTIFIED_QUESTION)
        notified = None if notified_answer is None else notified_answer.get("value")
        decided_on, won_back_on = self._status_days(record["history"])
        voice = None if forgotten else record.get("client_voice")
        said = voice.get("reason") if voice else None
        return Row(
            id=record["id"],
            recorded_on=self.local_day(record["created_at"]),
            status=status,
            forgotten=forgotten,
            client="" if forgotten else record["client"],
            am="" if forgotten else record["am"],
            source=str(record["source"]),
            reason=str(reason) if reason is not None else None,
            reason_label=self.reason_labels.get(reason, str(reason)) if reason is not None else None,
            fixable=str(fixable) if fixable is not None else None,
            attempted=attempted,
            outcome=_outcome(record, status) if attempted else None,
            revenue=(Decimal(revenue["amount"]), str(revenue["currency"])) if revenue else None,
            country=str(country) if country else None,
            country_label=self.countries.get(str(country), str(country)) if country else None,
            notified_on=_day(notified),
            decided_on=decided_on,
            won_back_on=won_back_on,
            client_answered=bool(voice),
            client_reason=said or None,
            client_reason_label=self.reason_labels.get(said, said) if said else None,
        )

    def workload_answers(self, records: Iterable[Read]) -> list[tuple[str, date, int]]:
        """Each account manager's answers to the workload question (am, day answered, count), oldest first.

        Never of a forgotten departure (it counts for no account manager), nor of an unclaimed one.
        """
        question = self.workload_question
        if question is None:
            return []
        found = []
        for record in records:
            answers = record["interview"]["answers"]
            if record.get("forgotten") or not record["am"] or question.id not in answers:
                continue
            value = self.value_of(answers, "workload")
            answer = answers.get(question.id)
            if answer is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
                continue
            at = answer.get("at") or record["created_at"]
            found.append((at, record["am"], value))
        found.sort()
        return [(am, self.local_day(at), value) for at, am, value in found]

    def team_sizes(self, sizes: Iterable[TeamSize]) -> list[tuple[date, int]]:
        """What the team said (day from which it holds, count), oldest first; the later of one day wins."""
        return [(self.local_day(s["at"]), s["count"]) for s in sizes]

    def _status_days(self, history: Iterable[Mapping[str, Any]]) -> tuple[date | None, tuple[date, ...]]:
        """From the status changes: the day of the first out of the undecided statuses, and the days it was won
        back."""
        decided: date | None = None
        won_back: list[date] = []
        for change in history:
            if change["event"] != AuditEvent.STATUS:
                continue
            before, after = change.get("from"), change.get("to")
            undecided_before = before is None or before in AT_STAKE
            if decided is None and undecided_before and after is not None and after not in AT_STAKE:
                decided = self.local_day(change["at"])
            if after == Status.WON_BACK:
                won_back.append(self.local_day(change["at"]))
        return decided, tuple(won_back)


def _rests_on(script: Script, question: Question) -> tuple[str, ...]:
    """The questions whose values decide whether ``question`` applies (Interview.applies): those its conditions
    name, and, for each of those that has conditions itself, the questions they rest on."""
    found: dict[str, None] = {}
    waiting, seen = [question], {question.id}
    while waiting:
        for condition in waiting.pop().when:
            found.setdefault(condition.question, None)
            above = script.question(condition.question)
            if above is not None and above.id not in seen:
                seen.add(above.id)
                waiting.append(above)
    return tuple(found)


def _outcome(record: Read, status: Status) -> SaveOutcome | None:
    recorded = record.get("save_outcome")
    if recorded is not None:
        return SaveOutcome(recorded)
    # Records from before outcomes were kept, or a status set by hand straight from the interview.
    if status is Status.RETAINED:
        return SaveOutcome.SAVED
    if status in LOST or status is Status.WON_BACK:
        return SaveOutcome.LEAVING
    return None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


# -- the figures ------------------------------------------------------------------------------------------


def _add(total: defaultdict[str, Decimal], row: Row) -> None:
    if row.revenue is not None:
        amount, currency = row.revenue
        total[currency] += amount


def figures(rows: Iterable[Row], won_back: int, active: ActiveClients | None = None) -> Figures:
    # One pass over the rows, each one's properties read once: a sum() per figure went over 10,000 rows a dozen times.
    lost: defaultdict[str, Decimal] = defaultdict(Decimal)
    at_stake: defaultdict[str, Decimal] = defaultdict(Decimal)
    kept: defaultdict[str, Decimal] = defaultdict(Decimal)
    outcomes: Counter[SaveOutcome | None] = Counter()
    days: list[int] = []
    count = still_open = attempts = retained_without_attempt = clients_lost = named = 0
    answered_form = client_reasons = reasons_differ = 0
    for row in rows:
        count += 1
        if row.lost:
            clients_lost += 1
            _add(lost, row)
        elif row.at_stake:
            _add(at_stake, row)
        elif row.kept:
            _add(kept, row)
        if row.attempted:
            attempts += 1
            outcomes[row.outcome] += 1
        elif row.status is Status.RETAINED:
            retained_without_attempt += 1
        if row.status in OPEN:
            still_open += 1
        if (days_taken := row.days_to_decision) is not None:
            days.append(days_taken)
        if not row.forgotten:
            named += 1
        if row.client_answered:
            answered_form += 1
        if row.client_reason is not None:
            client_reasons += 1
            if row.client_reason != row.reason:
                reasons_differ += 1
    return Figures(
        departures=count,
        open=still_open,
        save_attempts=attempts,
        saved=outcomes[SaveOutcome.SAVED],
        save_left=outcomes[SaveOutcome.LEAVING],
        save_lapsed=outcomes[SaveOutcome.LAPSED],
        save_under_way=outcomes[None],
        retained_without_attempt=retained_without_attempt,
        lost=dict(sorted(lost.items())),
        at_stake=dict(sorted(at_stake.items())),
        won_back=won_back,
        median_days=float(statistics.median(days)) if days else None,
        decided=len(days),
        kept=dict(sorted(kept.items())),
        clients_lost=clients_lost,
        active=active,
        named=named,
        answered_form=answered_form,
        client_reasons=client_reasons,
        reasons_differ=reasons_differ,
    )


def active_clients(period: Period, said: list[tuple[date, int]],
                   workload: list[tuple[str, date, int]]) -> ActiveClients | None:  # fmt: skip
    """The team's active clients at the start of ``period``: what the team said (``said``: day, count, oldest
    first), as it held at the start, else the first said during the period; when the team said nothing by the
    period's end, the sum of each account manager's workload answer (``workload``: am, day, count, oldest
    first), their latest by the start, else their first during the period. None when neither is known."""
    start = period.start
    held = [(day, n) for day, n in said if start is not None and day <= start]
    if held:
        return ActiveClients(held[-1][1], BaseSource.TEAM, held[-1][0], at_start=True)
    during = [(day, n) for day, n in said if period.contains(day)]
    if during:
        return ActiveClients(during[0][1], BaseSource.TEAM, during[0][0], at_start=False)
    per_am: dict[str, tuple[date, int, bool]] = {}
    for am, day, n in workload:
        if start is not None and day <= start:
            per_am[am] = (day, n, True)  # the latest by the start wins
        elif period.contains(day) and am not in per_am:
            per_am[am] = (day, n, False)  # else the first during the period
    if not per_am:
        return None
    return ActiveClients(sum(n for _, n, _ in per_am.values()), BaseSource.WORKLOAD,
                         max(day for day, _, _ in per_am.values()),
                         at_start=all(held for _, _, held in per_am.values()), answers=len(per_am))  # fmt: skip


def heard(rows: Iterable[Row]) -> tuple[Heard, ...]:
    """By the AM's reason, what the clients who gave theirs in the form said: most answers first."""
    grouped: dict[tuple[str | None, str | None], list[Row]] = defaultdict(list)
    for row in rows:
        if row.client_reason is not None and not row.forgotten:
            grouped[(row.reason, row.reason_label)].append(row)
    found = []
    for (key, label), members in grouped.items():
        other = Counter(r.client_reason_label or "" for r in members if r.client_reason != key)
        said = tuple(sorted(other.items(), key=lambda item: (-item[1], item[0])))
        found.append(Heard(key, label, len(members), sum(other.values()), said))
    found.sort(key=lambda h: (h.key is None, -h.answered, -h.differ, h.label or ""))
    return tuple(found)


def _group(key: str | None, label: str | None, rows: list[Row], total: int) -> Group:
    lost: defaultdict[str, Decimal] = defaultdict(Decimal)
    ended = saved = 0
    for row in rows:
        # _add's work, inline: each departure passes here four times (reason, country, month, account manager).
        if row.revenue is not None and row.lost:
            amount, currency = row.revenue
            lost[currency] += amount
        if row.attempted and row.outcome is not None:
            ended += 1
            saved += row.outcome is SaveOutcome.SAVED
    return Group(key, label, len(rows), len(rows) / total if total else 0.0, ended, saved,
                 dict(sorted(lost.items())))  # fmt: skip


def _groups(rows: list[Row], key: Callable[[Row], tuple[str | None, str | None]]) -> tuple[Group, ...]:
    """Most departures first; the unknown (no answer) last."""
    grouped: dict[tuple[str | None, str | None], list[Row]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    order = sorted(grouped.items(), key=lambda item: (item[0][0] is None, -len(item[1]), item[0][1] or ""))
    return tuple(_group(k, label, members, len(rows)) for (k, label), members in order)


def _won_back_in(rows: Iterable[Row], period: Period) -> int:
    return sum(period.contains(day) for row in rows for day in row.won_back_on)


def read_departures(departures: Departures) -> Sequence[Read]:
    """Every departure, as much of each as the report reads (``Reader.outline``): for several reports of the
    same moment (the digest's month and its trend), read once."""
    with collector_paused():
        return departures.store.outline_departures(Reader(departures).outline)


def build_report(departures: Departures, period: Period = ALL_TIME, *, records: Sequence[Read] | None = None,
                 team_sizes: list[TeamSize] | None = None) -> Report:  # fmt: skip
    """The figures of the departures recorded in ``period``, beside those of the period before it.

    ``records``: the departures (whole, or as ``read_departures`` reads them); by default every one in the store.
    """
    with collector_paused():
        return _build_report(departures, period, read_departures(departures) if records is None else records,
                             team_sizes)  # fmt: skip


def _build_report(departures: Departures, period: Period, records: Sequence[Read],
                  team_sizes: list[TeamSize] | None) -> Report:  # fmt: skip
    reader = Reader(departures)
    said = reader.team_sizes(departures.store.team_sizes() if team_sizes is None else team_sizes)
    workload = reader.workload_answers(records)
    everyone = [reader.row(r) for r in records]
    everyone.sort(key=lambda r: (r.recorded_on, r.id))
    rows = [r for r in everyone if period.contains(r.recorded_on)]
    before_period = period.previous()
    previous = None
    if before_period is not None:
        earlier = [r for r in everyone if before_period.contains(r.recorded_on)]
        previous = figures(earlier, _won_back_in(everyone, before_period),
                           active_clients(before_period, said, workload))  # fmt: skip
    per_month: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        per_month[f"{row.recorded_on:%Y-%m}"].append(row)
    monthly = []
    for name in period.months(rows[0].recorded_on if rows else None, rows[-1].recorded_on if rows else None):
        members = per_month.get(name, [])
        reasons = Counter(r.reason_label or "" for r in members)
        monthly.append(MonthRow(**vars(_group(name, name, members, len(rows))), by_reason=dict(reasons)))
    # By identity, as a status is a Status: a plain string equal to one is no status.
    statuses = Counter(r.status for r in rows if type(r.status) is Status)
    return Report(
        period=period,
        previous_period=before_period,
        figures=figures(rows, _won_back_in(everyone, period), active_clients(period, said, workload)),
        previous=previous,
        rows=tuple(rows),
        monthly=tuple(monthly),
        by_reason=_groups(rows, lambda r: (r.reason, r.reason_label)),
        by_country=_groups(rows, lambda r: (r.country, r.country_label)),
        workload=_workload(reader, rows, records),
        by_status={s: n for s in STATUS_ORDER if (n := statuses[s])},
        zone=departures.zone.key,
        heard=heard(rows),
    )


def _workload(reader: Reader, rows: list[Row], records: Sequence[Read]) -> tuple[Workload, ...]:
    """Per account manager, forgotten departures left out; active clients as the AM last said."""
    per_am: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if not row.forgotten:
            per_am[row.am].append(row)
    if not per_am:
        return ()
    latest: dict[str, Read] = {}
    for record in records:
        am = record["am"]
        if am in per_am and not record.get("forgotten") and (
                am not in latest or record["updated_at"] > latest[am]["updated_at"]):  # fmt: skip
            latest[am] = record
    found = []
    for am, own in sorted(per_am.items()):
        active = reader.interview.value_of(reader.state(latest[am]), "workload") if am in latest else None
        group = _group(am, am, own, len(rows))
        at_stake: defaultdict[str, Decimal] = defaultdict(Decimal)
        for row in own:
            if row.at_stake:
                _add(at_stake, row)
        found.append(Workload(am, len(own), sum(r.status in OPEN for r in own), active, save_ended=group.save_ended,
                              saved=group.saved, lost=group.lost, at_stake=dict(sorted(at_stake.items()))))  # fmt: skip
    return tuple(found)


# -- what the templates are given -------------------------------------------------------------------------


def money(amounts: Money) -> list[str]:
    """Each currency's amount, formatted, by currency."""
    return [format_money(v, c) for c, v in sorted(amounts.items())]


def money_change(now: Money, before: Money) -> list[str]:
    """Each currency's change, signed: ``+400 EUR``."""
    changes = []
    for currency in sorted(set(now) | set(before)):
        delta = now.get(currency, Decimal(0)) - before.get(currency, Decimal(0))
        if delta:
            changes.append(("+" if delta > 0 else "") + format_money(delta, currency))
    return changes


def _period_context(period: Period | None) -> dict[str, Any] | None:
    if period is None:
        return None
    return {"name": period.name, "span": period.span.value, "start": str(period.start or ""),
            "end": str(period.end or "")}  # fmt: skip


def _figures_context(f: Figures) -> dict[str, Any]:
    return {
        "departures": f.departures, "open": f.open, "save_attempts": f.save_attempts, "save_ended": f.save_ended,
        "saved": f.saved, "save_left": f.save_left, "save_lapsed": f.save_lapsed,
        "save_under_way": f.save_under_way, "retained_without_attempt": f.retained_without_attempt,
        "save_rate": f.save_rate, "lost": money(f.lost), "at_stake": money(f.at_stake), "won_back": f.won_back,
        "median_days": f.median_days, "decided": f.decided, "kept": money(f.kept), "clients_lost": f.clients_lost,
        "active": _active_context(f.active), "turnover": f.turnover, "retention": f.retention, "named": f.named,
        "answered_form": f.answered_form, "client_reasons": f.client_reasons, "reasons_differ": f.reasons_differ,
    }  # fmt: skip


def _active_context(active: ActiveClients | None) -> dict[str, Any] | None:
    if active is None:
        return None
    return {"count": active.count, "source": active.source.value, "on": active.on.isoformat(),
            "at_start": active.at_start, "answers": active.answers}  # fmt: skip


def _change_context(now: Figures, before: Figures) -> dict[str, Any]:
    def rate(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a - b) * 100

    return {
        "departures": now.departures - before.departures,
        "save_attempts": now.save_attempts - before.save_attempts,
        "saved": now.saved - before.saved,
        "retained_without_attempt": now.retained_without_attempt - before.retained_without_attempt,
        "won_back": now.won_back - before.won_back,
        "save_rate": rate(now.save_rate, before.save_rate),
        "lost": money_change(now.lost, before.lost),
        "at_stake": money_change(now.at_stake, before.at_stake),
        "median_days": None if now.median_days is None or before.median_days is None
        else now.median_days - before.median_days,
        "turnover": rate(now.turnover, before.turnover),
        "retention": rate(now.retention, before.retention),
        "active": None if now.active is None or before.active is None else now.active.count - before.active.count,
        "kept": money_change(now.kept, before.kept),
        "clients_lost": now.clients_lost - before.clients_lost,
        "answered_form": now.answered_form - before.answered_form,
        "reasons_differ": now.reasons_differ - before.reasons_differ,
    }  # fmt: skip


def _group_context(g: Group) -> dict[str, Any]:
    return {"key": g.key, "label": g.label, "count": g.departures, "share": g.share, "save_ended": g.save_ended,
            "saved": g.saved, "save_rate": g.save_rate, "lost": money(g.lost)}  # fmt: skip


def report_context(report: Report) -> dict[str, Any]:
    """What the report and digest templates are given: the figures, with money already formatted."""
    now = report.figures
    return {
        "period": _period_context(report.period),
        "previous": _period_context(report.previous_period) if report.previous is not None else None,
        "zone": report.zone,
        "now": _figures_context(now),
        "before": _figures_context(report.previous) if report.previous is not None else None,
        "change": _change_context(now, report.previous) if report.previous is not None else None,
        "monthly": [_group_context(m) for m in report.monthly],
        "months_shown": MONTHS_SHOWN,
        "reasons": [_group_context(g) for g in report.by_reason],
        "countries": [_group_context(g) for g in report.by_country],
        "statuses": [{"label": status.label, "count": n} for status, n in report.by_status.items()],
        "workload": [{"am": w.am, "departures": w.departures, "open": w.open, "active_clients": w.active_clients,
                      "save_ended": w.save_ended, "saved": w.saved, "save_rate": w.save_rate, "lost": money(w.lost),
                      "at_stake": money(w.at_stake)} for w in report.workload],  # fmt: skip
        "heard": [{"key": h.key, "label": h.label, "answered": h.answered, "differ": h.differ,
                   "said": [{"label": label, "count": n} for label, n in h.said]} for h in report.heard],  # fmt: skip
    }


def render_report_text(report: Report, prompts: Prompts) -> str:
    return prompts.render_template("report.txt.j2", **report_context(report))


# -- the monthly digest -------------------------------------------------------------------------------------


class Digest(str):
    """The digest's words, carrying its chart.

    A ``Notice`` holds plain text, and bot/notices.py hands this one to the notifier
    unchanged: a transport that can show a picture (Slack) asks it for ``chart()``,
    any other prints the words. The chart shows the trend, the months up to the
    digest's month (``trend``); it is drawn only when asked for.
    """

    report: Report  # the month's
    trend: Report  # the TREND_MONTHS months that end with it
    words: Messages

    def __new__(cls, text: str, report: Report, trend: Report, words: Messages) -> Digest:
        made = super().__new__(cls, text)
        made.report, made.trend, made.words = report, trend, words
        return made

    @property
    def chart_heading(self) -> str:
        return self.words.render("chart_digest_title", months=TREND_MONTHS, month=self.report.period.name)

    def chart(self) -> bytes:
        return render_png(chart_data(self.trend, self.words, self.chart_heading))

    @property
    def file_name(self) -> str:
        return f"lessons-{self.report.period.slug}.png"


def digest_text(departures: Departures, month_name: str) -> Digest:
    """The monthly lessons digest: what the departures recorded in ``month_name`` (YYYY-MM) teach.

    The same figures as ``/report <month>``: forgotten departures count in the anonymous totals of both.
    The store is read here, on the caller's thread, for the chart too: it may be drawn in another.
    """
    first = date.fromisoformat(f"{month_name}-01")
    records, sizes = read_departures(departures), departures.store.team_sizes()
    report = build_report(departures, month(first), records=records, team_sizes=sizes)
    trend = build_report(departures, months_to(first, TREND_MONTHS), records=records, team_sizes=sizes)
    text = departures.prompts.render_template("digest.txt.j2", month=month_name, **report_context(report))
    return Digest(text, report, trend, departures.prompts.messages)


# -- what a person asked for --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """``/report last quarter csv``: the period, and the file wanted beside the text."""

    period: Period
    format: ReportFormat = ReportFormat.TEXT


def read_report_words(words: str, today: date) -> Asked:
    """The period and format words of ``/report``; a Refusal names what was not understood, with an example."""
    kept, wanted = [], ReportFormat.TEXT
    for word in words.split():
        if word.casefold() in (ReportFormat.CSV, ReportFormat.JSON):
            wanted = ReportFormat(word.casefold())
        else:
            kept.append(word)
    period = parse_period(" ".join(kept), today)
    if period is None:
        raise Refusal("report_unknown_period", words=" ".join(kept), example=CommandRef("report", "last quarter"),
                      dates=CommandRef("report", "2027-01-01 to 2027-03-31"))
    return Asked(period, wanted)


# -- the team's size: /clients 42 ---------------------------------------------------------------------------

_COUNT = re.compile(r"^(?P<count>[+-]?[\d.,'_\s\u00a0\u202f]*\d)\s*(?:active\s+)?(?:clients?)?"
                    r"(?:\s+(?:since|from|as\s+of|on)\s+(?P<since>.+))?$", re.IGNORECASE)  # fmt: skip
_WHOLE = re.compile(r"^\d{1,3}(?:([,'_\s\u00a0\u202f])\d{3})?(?:\1\d{3})*$|^\d+$")


@dataclass(frozen=True)
class TeamSizeSaid:
    """``/clients 42`` or ``/clients 40 since 2026-10-01``: the count, and the day from which it holds."""

    count: int
    since: date | None = None  # None: from now


def read_team_size(words: str, today: date) -> TeamSizeSaid:
    """A count of active clients (``42``, ``1,200``, ``42 clients``), optionally with the day from which it holds
    (``since 2026-10-01``, a day in the past or today); a Refusal says what is wrong, with an example."""
    text = " ".join(words.split())
    example, since = CommandRef("clients", "42"), CommandRef("clients", "40 since 2026-10-01")
    if not text:
        raise Refusal("clients_usage", example=example, since=since)
    found = _COUNT.match(text)
    number = found.group("count").strip() if found else ""
    if not found or not _WHOLE.match(number.lstrip("+-")):
        raise Refusal("clients_not_a_number", words=text, example=example, since=since)
    count = int(re.sub(r"\D", "", number))
    if number.startswith("-") and count:
        raise Refusal("clients_negative", words=number, example=example)
    if count > MOST_CLIENTS:
        raise Refusal("clients_too_many", words=number, most=f"{MOST_CLIENTS:,}", example=example)
    day = None
    if found.group("since"):
        try:
            day = parse_date(found.group("since"), today, "past")
        except AnswerError as err:
            raise Refusal("clients_bad_day", reason=str(err), since=since) from None
        if day > today:
            raise Refusal("clients_future_day", day=day.isoformat(), example=example)
    return TeamSizeSaid(count, day)


def say_team_size(departures: Departures, said: TeamSizeSaid, *, by: str) -> TeamSize:
    """Keep what ``by`` said: from now, or from the start of the day named (in the team's zone)."""
    now = departures.clock.now()
    start = now if said.since is None else datetime.combine(said.since, time(0), departures.zone)
    record: NewTeamSize = {"count": said.count, "at": iso(start), "by": by, "said_at": iso(now)}
    return departures.store.add_team_size(record)


def team_sizes_around(departures: Departures, kept: TeamSize) -> tuple[TeamSize | None, TeamSize | None]:
    """The statements just before and just after ``kept``, by the time from which each holds."""
    sizes = departures.store.team_sizes()
    at = next(n for n, s in enumerate(sizes) if s["id"] == kept["id"])
    return (sizes[at - 1] if at > 0 else None), (sizes[at + 1] if at + 1 < len(sizes) else None)


def team_size_now(departures: Departures) -> TeamSize | None:
    """The count the team said that holds now, if it said one."""
    now = departures.now()
    held = [s for s in departures.store.team_sizes() if s["at"] <= now]
    return held[-1] if held else None


def team_size_day(departures: Departures, size: TeamSize) -> date:
    """The day (in the team's zone) from which ``size`` holds."""
    return parse_iso(size["at"]).astimezone(departures.zone).date()


# -- files: the chart, CSV and JSON -------------------------------------------------------------------------

CSV_COLUMNS = (
    "id", "recorded_on", "month", "status", "forgotten", "client", "account_manager", "source", "reason",
    "reason_label", "client_reason", "could_be_fixed", "save_attempt", "save_outcome", "mrr", "currency", "revenue",
    "country", "notified_on", "decided_on", "days_to_decision", "won_back_on",
)  # fmt: skip


def _revenue_state(row: Row) -> str:
    if row.revenue is None:
        return ""
    return "lost" if row.lost else "at_stake" if row.at_stake else "kept"


def row_fields(row: Row, *, named: bool = True) -> dict[str, Any]:
    """One departure for an export; ``named`` False leaves its client unnamed (a departure the reader may not see)."""
    attempt_state = (row.outcome.value if row.outcome else "under_way") if row.attempted else ""
    return {
        "id": row.id,
        "recorded_on": row.recorded_on.isoformat(),
        "month": f"{row.recorded_on:%Y-%m}",
        "status": row.status.value,
        "forgotten": "yes" if row.forgotten else "no",
        "client": row.client if named else "",
        "account_manager": row.am,
        "source": row.source,
        "reason": row.reason or "",
        "reason_label": row.reason_label or "",
        "client_reason": row.client_reason or "",
        "could_be_fixed": row.fixable or "",
        "save_attempt": "yes" if row.attempted else "no",
        "save_outcome": attempt_state,
        "mrr": str(row.revenue[0]) if row.revenue else "",
        "currency": row.revenue[1] if row.revenue else "",
        "revenue": _revenue_state(row),
        "country": row.country or "",
        "notified_on": row.notified_on.isoformat() if row.notified_on else "",
        "decided_on": row.decided_on.isoformat() if row.decided_on and not row.forgotten else "",
        "days_to_decision": "" if row.days_to_decision is None else row.days_to_decision,
        "won_back_on": row.won_back_on[-1].isoformat() if row.won_back_on else "",
    }


Named = Callable[[Row], bool]


def report_csv(report: Report, named: Named | None = None) -> bytes:
    """One row per departure of the period, the columns of CSV_COLUMNS (documented in the README)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(row_fields(row, named=named is None or named(row)))
    return out.getvalue().encode("utf-8")


def _money_json(amounts: Money) -> dict[str, str]:
    return {c: str(v) for c, v in sorted(amounts.items())}


def _figures_json(f: Figures) -> dict[str, Any]:
    return {
        "departures": f.departures, "open": f.open, "save_attempts": f.save_attempts, "saved": f.saved,
        "save_left": f.save_left, "save_lapsed": f.save_lapsed, "save_under_way": f.save_under_way,
        "save_rate": f.save_rate, "retained_without_attempt": f.retained_without_attempt,
        "revenue_lost": _money_json(f.lost), "revenue_at_stake": _money_json(f.at_stake), "won_back": f.won_back,
        "median_days_to_decision": f.median_days, "revenue_kept": _money_json(f.kept),
        "clients_lost": f.clients_lost, "active_clients": _active_json(f.active), "turnover_rate": f.turnover,
        "retention_rate": f.retention, "answered_form": f.answered_form, "client_reasons": f.client_reasons,
        "client_reasons_differ": f.reasons_differ,
    }  # fmt: skip


def _active_json(active: ActiveClients | None) -> dict[str, Any] | None:
    """The turnover's base: its count, where it came from (``clients``: the team's /clients; ``workload``: the
    account managers' answers) and the day it holds from."""
    if active is None:
        return None
    return {"count": active.count, "source": active.source.value, "on": active.on.isoformat(),
            "held_at_start": active.at_start, "workload_answers": active.answers}  # fmt: skip


def _group_json(g: Group) -> dict[str, Any]:
    return {"key": g.key, "label": g.label, "departures": g.departures, "share": round(g.share, 4),
            "save_attempts_ended": g.save_ended, "saved": g.saved, "save_rate": g.save_rate,
            "revenue_lost": _money_json(g.lost)}  # fmt: skip


def report_json(report: Report, named: Named | None = None) -> bytes:
    def period(p: Period | None) -> dict[str, Any] | None:
        return None if p is None else {"name": p.name, "span": p.span.value,
                                       "start": p.start.isoformat() if p.start else None,
                                       "end": p.end.isoformat() if p.end else None}  # fmt: skip

    data = {
        "period": period(report.period),
        "previous_period": period(report.previous_period),
        "zone": report.zone,
        "figures": _figures_json(report.figures),
        "previous": _figures_json(report.previous) if report.previous is not None else None,
        "monthly": [_group_json(m) for m in report.monthly],
        "by_reason": [_group_json(g) for g in report.by_reason],
        "by_country": [_group_json(g) for g in report.by_country],
        "by_account_manager": [
            {"account_manager": w.am, "departures": w.departures, "open": w.open, "active_clients": w.active_clients,
             "save_attempts_ended": w.save_ended, "saved": w.saved, "save_rate": w.save_rate,
             "revenue_lost": _money_json(w.lost), "revenue_at_stake": _money_json(w.at_stake)}
            for w in report.workload
        ],  # fmt: skip
        "reasons_heard_and_said": [
            {"reason": h.key, "reason_label": h.label, "answered": h.answered, "differ": h.differ,
             "client_reasons": [{"label": label, "departures": n} for label, n in h.said]}
            for h in report.heard
        ],  # fmt: skip
        "departures": [row_fields(r, named=named is None or named(r)) for r in report.rows],
    }
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def chart_data(report: Report, words: Messages, title: str | None = None) -> ChartData:
    """Departures by reason per month, the save rate and the revenue lost, per month of the period."""
    totals: Counter[str] = Counter()
    for m in report.monthly:
        totals.update(m.by_reason)
    named = [label for label, _ in totals.most_common() if label][:CHART_REASONS]
    series = [(label, [m.by_reason.get(label, 0) for m in report.monthly]) for label in named]
    rest = [sum(n for label, n in m.by_reason.items() if label not in named) for m in report.monthly]
    if any(rest):
        series.append((words.render("chart_other_reasons"), rest))
    currencies = sorted({c for m in report.monthly for c in m.lost})
    return ChartData(
        title=title or chart_title(report, words),
        months=[m.key or "" for m in report.monthly],
        reasons=series,
        save_rates=[None if m.save_rate is None else m.save_rate * 100 for m in report.monthly],
        lost=[(c, [float(m.lost.get(c, 0)) for m in report.monthly]) for c in currencies],
        reasons_title=words.render("chart_reasons"),
        save_rate_title=words.render("chart_save_rate"),
        lost_title=words.render("chart_lost"),
        empty=words.render("chart_empty"),
    )


def chart_title(report: Report, words: Messages) -> str:
    period = report.period
    return words.render("chart_title", period=period.name if period.start or period.end
                        else words.render("chart_all_time"))  # fmt: skip


def chart_png(report: Report, words: Messages) -> bytes:
    return render_png(chart_data(report, words))


@dataclass(frozen=True)
class Lessons:
    """A report as a person asked for it (``/report last quarter csv``), with the files that come with it."""

    asked: Asked
    report: Report
    named: Named | None = None  # which departures an export may name; None: every one

    @property
    def chart_name(self) -> str:
        """``report-2027-Q1.png``: one name per period, so a newer report replaces an older one."""
        return f"report-{self.report.period.slug}.png"

    @property
    def export_name(self) -> str | None:
        if self.asked.format is ReportFormat.TEXT:
            return None
        return f"report-{self.report.period.slug}.{self.asked.format.value}"

    def export(self) -> bytes | None:
        """The CSV or JSON asked for, or None."""
        if self.asked.format is ReportFormat.CSV:
            return report_csv(self.report, self.named)
        if self.asked.format is ReportFormat.JSON:
            return report_json(self.report, self.named)
        return None

    def chart(self, words: Messages) -> bytes:
        return chart_png(self.report, words)


def write_report_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/name`` whole or not at all (temp file, then rename), readable by its owner."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
