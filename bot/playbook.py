"""The playbook: turns a departure's answers into touches, each planned once.

Every touch has a unique key, so planning again (after an edit, or on every
answer) updates what is still pending and never plans a second one. Touches
that no longer follow from the answers are cancelled with the reason.
Every nudge about an open item ends (prompts/cadence.toml [nudges]): the next
one is planned from when the last one went, numbered after those sent, up to
the most allowed, then one note to the team channel, then nothing.

Nothing is dated before the departure was recorded. Client emails begin after
the departure's end (the support end date, else the day it was recorded):
check-ins count from it, and greetings start ``after_end_days`` later, once a
year per holiday (keyed by the holiday's id and year) until the stay-in-touch
period is over; they are planned at most a year ahead and topped up as time
passes (``plan_all``). A touch desired but past its moment is left to the
dispatcher, which skips it with the reason.

The exit note is the one client email before the end: once the departure is
confirmed and a contact email is known, the AM's personal note ({id}:exit_note)
is due at once for their yes (bot/approvals.py), and after it goes at the
client's next 09:00 on a working day.

Each plan notes on its departure what it was made from (``planned``, a
``PlanNote``): a fingerprint of the record, of the settings, prompts and code
that plan it, and until when it holds; beside it, ``plan_by`` (what planned
it, without the record) and ``plan_until``, which the store finds it by
(``Store.departures_to_plan``, indexed columns on PostgreSQL). ``plan_all``
(start-up, the daily top-up) re-plans only a departure planned by another
release or with other settings, or whose plan no longer holds: a greeting
left out comes within the horizon, or it waits for a person (a draft, an
interrupted send), or the dispatcher noted it as lapsed and stopped before
planning it again (below).

A touch falling due does not end a plan: what becomes of most touches plans
nothing more. Only a nudge of an open item's series feeds the next plan
(``feeds_plan``: the next one is numbered after those that went, and due a
gap after the last one went), and only the dispatcher settles one, so it
re-plans the departure right after, whatever became of the nudge: skipped
past its moment in the same write as the skip; sent, failed or cut off after
a send, which takes its own writes and waits for Slack, so the plan is first
noted as lapsed (``lapse``) and made again once the nudge settled
(``replan``): a process killed in between leaves it for the next
``plan_all``. A nudge deferred, retried or cancelled stays out of its series'
count: nothing to plan. The save attempt's lapse records its outcome
through ``Departures.commit`` before its touch settles.
Everything else that changes a plan's inputs goes through
``Departures.commit``, which re-plans at once; a plan made from a copy older
than the stored departure (another process changed it meanwhile) is noted
to hold until it was made, so that the next top-up makes it again.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict, cast
from zoneinfo import ZoneInfo

from bot.answers import add_months
from bot.clock import Clock, iso, parse_iso
from bot.departures import Change, Departures, newer_key
from bot.settling import Ledger, Outcome
from bot.workdays import (
    after_team_days,
    client_day_before,
    client_day_on_or_after,
    end_of_day,
    holiday_named,
    is_client_day,
    is_team_day,
    local_moment,
    team_day_on_or_after,
    within_team_hours,
    zone_for,
)
from prompts.cadence import Cadence, Holiday
from storage import Store
from storage.records import (
    CHANNEL,
    OPEN,
    AuditEvent,
    Channel,
    Departure,
    Item,
    ItemMark,
    ItemState,
    NewDeparture,
    NewTouch,
    Reminder,
    SaveOutcome,
    Status,
    Touch,
    TouchKind,
    TouchPayload,
    TouchStatus,
)

__all__ = [
    "CHANNEL",
    "CLIENT_KINDS",
    "EXIT_NOTE_GRACE",
    "TEAM_GRACE",
    "ExitNotePayload",
    "PlanNote",
    "Playbook",
    "am_or_channel",
    "exit_note_approved",
    "exit_note_payload",
    "feeds_plan",
    "new_touch",
]

CLIENT_KINDS = frozenset({TouchKind.CHECK_IN, TouchKind.GREETING})
TEAM_GRACE = timedelta(days=7)
# The open items nudged about from a date in the answers (their question's role is the item's value).
DATED_ITEMS = (Item.FINAL_PAYMENT_DUE, Item.DATA_RETURN, Item.SAVE_DEADLINE)
# The end of support is not settled by anyone: one heads-up, this many days before.
SUPPORT_END_NOTICE = timedelta(days=7)
# A check-in by reason (the fiscal year) this close to a regular one is left out: one note, not two in a row.
CHECK_IN_GAP = timedelta(days=21)
# A save attempt given no deadline lapses as if it had this long from when it began.
UNDATED_SAVE = timedelta(days=28)
# Marks that end an item's nudges (a snooze only moves them).
SETTLED_MARKS = frozenset({ItemState.DONE, ItemState.NOT_APPLICABLE})
# Statuses in which the win-back nudge is planned: the client is gone, or going.
LEFT = frozenset({Status.LEAVING, Status.DEPARTED})
# Statuses in which the client stays: no email goes to them as to a former client.
STAYING = frozenset({Status.RETAINED, Status.WON_BACK})
# Statuses in which open items are nudged about: the client is not staying.
NUDGED = frozenset({*OPEN, Status.DEPARTED})
# Statuses in which an unsigned agreement still matters.
UNSIGNED_MATTERS = frozenset({Status.SAVING, Status.LEAVING, Status.DEPARTED})
# Reminders already sent or settled count towards the series; pending and cancelled ones do not.
UNCOUNTED = frozenset({TouchStatus.PENDING, TouchStatus.CANCELLED})
# Emails that have not gone yet: planned, or shown to the AM as a draft.
NOT_YET_SENT = frozenset({TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL})
# How long a client who agreed to stay in touch is greeted after their departure ends (SENDOFF_STAY_IN_TOUCH_YEARS).
STAY_IN_TOUCH_YEARS = 3
# What a touch is planned as; a pending touch whose plan is unchanged is not written again.
PLANNED_FIELDS = ("kind", "channel", "recipient", "due_at", "latest_at", "zone", "payload")
# What a touch being retried after temporary refusals carries from one plan to the next.
RETRY_FIELDS = ("failing_since", "last_error", "reason", "deferred")
# The exit note (the AM's personal note to the client, with the link to the short form) waits this long for
# the AM's yes once the departure is confirmed and a contact email is known; unanswered, it is skipped.
EXIT_NOTE_DRAFT_WAIT = timedelta(days=14)
# Once the AM said yes, it goes at the client's next 09:00 on a working day; missed then (the bot was down),
# it still goes up to this long after.
EXIT_NOTE_GRACE = timedelta(days=5)
# The option of the "confirmed" question that says the client confirmed they are leaving.
CONFIRMED = "yes"
# How many departures plan_all plans in one write.
PLAN_ALL_BATCH = 200
# Where a departure keeps its PlanNote.
PLAN_NOTE = "planned"
# Raise it when the same answers should now be planned otherwise and no planning module's code changed
# (PLANNING_MODULES' source is part of the fingerprint anyway): every departure is then planned once more.
PLAN_VERSION = 1
# The modules whose code decides what is planned from a record (and how names are keyed: see plan_all).
PLANNING_MODULES = ("bot.playbook", "bot.workdays", "bot.countries", "bot.answers", "bot.interview", "bot.departures",
                    "bot.access", "bot.clock", "prompts.cadence", "storage.records")  # fmt: skip
# Fields of a departure that planning never reads and that change without a re-plan (the question waiting is
# noted as it is asked, a stale key is corrected once): left out of the fingerprint, so they re-plan nothing.
NOT_PLANNED = frozenset({PLAN_NOTE, "plan_by", "plan_until", "prompt", "client_key"})
# Touches a person may settle at any moment (a draft's Send, the fate of an interrupted send), or start-up
# does (``sending`` becomes ``unknown``): a plan made while one waits is made again by every plan_all.
UNSETTLED = frozenset({TouchStatus.AWAITING_APPROVAL, TouchStatus.SENDING, TouchStatus.UNKNOWN})
# The words a plan writes into touches (why one is cancelled): a company's own wording re-plans once.
PLANNED_WORDS = ("reason_no_longer_planned", "hold_retained", "hold_opted_out", "hold_forgotten", "hold_won_back")


class PlanNote(TypedDict):
    """What a departure's plan was made from, kept on the departure (``planned``)."""

    inputs: str  # fingerprint of the record (less NOT_PLANNED) and of the settings, prompts and code that plan it
    at: str  # when it was planned, ISO UTC
    reach: str  # how far ahead greetings were planned then (``at`` plus the greeting horizon)
    until: str | None  # when it must be looked at again (see the module); None: only when its inputs change


class ExitNotePayload(TouchPayload, total=False):
    """What an exit note carries once the AM said yes (bot/approvals.py): who, when it goes, and their edit."""

    approved_by: str  # the AM (or admin) who said yes
    send_at: str  # its planned moment (the client's next 09:00 then), ISO; a hold that lifts gives it back
    subject: str  # the AM's edit, when they edited the draft: subject and text
    text: str


def exit_note_payload(payload: TouchPayload) -> ExitNotePayload:
    return cast(ExitNotePayload, payload)  # the same dict: an exit note's payload holds these keys too


def feeds_plan(touch: NewTouch) -> bool:
    """Whether what becomes of ``touch`` changes its departure's next plan: a nudge of an open item's series
    (``Playbook._series``), once it counts as gone (sent, skipped, failed, cut off) or no longer does. Any
    other touch's outcome plans nothing more (the escalation ends its series whatever becomes of it)."""
    payload = touch["payload"]
    return touch["departure_id"] is not None and "number" in payload and not payload.get("escalated")


def exit_note_approved(touch: NewTouch) -> bool:
    """An exit note the AM said yes to: it goes at its time, never asked about again."""
    return touch["kind"] is TouchKind.EXIT_NOTE and bool(exit_note_payload(touch["payload"]).get("approved_by"))


class Playbook:
    def __init__(self, departures: Departures, store: Store, clock: Clock, *, team_zone: str,
                 cadence: Cadence | None = None, stay_years: int = STAY_IN_TOUCH_YEARS) -> None:  # fmt: skip
        """``stay_years``: client emails (greetings) go on this many years after the departure ends."""
        self.departures = departures
        self.store = store
        self.clock = clock
        self.team_zone = team_zone
        self.cadence = cadence or departures.prompts.cadence
        self.stay_years = stay_years
        self.words = departures.prompts.messages
        # how touches settle, each only while still as it was read (bot/settling.py); the dispatcher's too
        self.ledger = Ledger(store, clock, self.words, team_grace=TEAM_GRACE)
        # Everything besides the record that decides the plan: a change to any of it re-plans every departure.
        self._made_by = _digest([PLAN_VERSION, _code_digest(), unicodedata.unidata_version,
                                 _package_version("holidays"), team_zone,
                                 departures.zone.key, stay_years, repr(self.cadence), repr(departures.prompts.script),
                                 [self.words.render(key) for key in PLANNED_WORDS]])  # fmt: skip

    # -- what follows from the answers ---------------------------------------------------
    def desired(self, record: Departure, existing: list[Touch] | None = None) -> list[NewTouch]:
        """Every touch the departure calls for now; ``existing`` (its touches so far) numbers the reminders."""

        def value(role: str) -> Any:
            return self.departures.answer_value(record, role)

        existing = existing or []
        touches: list[NewTouch] = []
        if record.get("forgotten"):
            return touches
        created = parse_iso(record["created_at"])
        # the departure's end: client emails begin after it
        base = _date(value("support_end")) or created.astimezone(self.departures.zone).date()
        country = value("country")
        client_zone = self.client_zone(record)
        email = value("contact_email")
        cadence = self.cadence
        # a retained client is no former client: nothing is planned for them, and all of it comes back if
        # they turn out to be leaving after all
        # the client's own yes (the exit note's form) counts as much as the AM's answer, and the address the
        # note went to (from the CRM, say) is theirs to be written to, whatever the AM answered
        client_yes = record.get("client_voice", {}).get("stay_in_touch") is True
        consented = value("consent") is True or client_yes
        if client_yes and not email:
            email = self._given_email(record)
        if consented and email and self.email_stop(record) is None and record["status"] not in STAYING:
            regular = [base + timedelta(days=days) for days in cadence.check_in_days]
            for days, day in zip(cadence.check_in_days, regular, strict=True):
                touches.append(self._client(record, TouchKind.CHECK_IN, f"+{days}d", day, country, client_zone, email))
            for extra in cadence.check_ins_by_reason.get(value("reason") or "", ()):
                day = self._extra_day(extra, base, country)
                if all(abs(day - other) >= CHECK_IN_GAP for other in regular):  # else the client hears twice in a row
                    touches.append(self._client(record, TouchKind.CHECK_IN, extra, day, country, client_zone, email))
            if value("greetings") is True:
                touches += self._greetings(record, base, country, client_zone, email)
        note = self._exit_note(record, existing, client_zone)
        if note is not None:
            touches.append(note)
        if record["status"] in LEFT:
            touches.append(self._team(record, TouchKind.WIN_BACK, "", base + timedelta(days=cadence.win_back_days)))
        if record["status"] in NUDGED:
            touches += self._nudges(record, existing)
        # nothing is dated before the departure was recorded
        return [t for t in touches if parse_iso(t["due_at"]) >= created]

    def _given_email(self, record: NewDeparture) -> str | None:
        """The contact's address as given, even where the interview did not go on to use it."""
        question = self.departures.prompts.script.by_role("contact_email")
        given = self.departures.state(record).answers.get(question.id) if question else None
        value = given.get("value") if given else None
        return value if isinstance(value, str) and value else None

    def email_stop(self, record: NewDeparture) -> str | None:
        """Why no email goes to the client any more, in words; None while they may.

        Opt-out, forget and win-back end them for good. (A retained client's emails are cancelled when
        due: a save can still turn into leaving.)
        """
        if record.get("forgotten"):
            return self.words.render("hold_forgotten")
        if record.get("opted_out"):
            return self.words.render("hold_opted_out")
        if record["status"] == Status.WON_BACK:
            return self.words.render("hold_won_back")
        return None

    # -- the exit note: the AM's personal note, once the departure is confirmed --------------
    def exit_note_address(self, record: NewDeparture) -> str | None:
        """Where the exit note goes: the contact's email, once the AM confirmed the departure and while
        emails may go to the client; None otherwise.

        The address counts however it came (the interview, or a CRM's report before anyone was asked).
        """
        if record.get("forgotten") or self.email_stop(record) is not None or record["status"] in STAYING:
            return None
        if self.departures.answer_value(record, "confirmed") != CONFIRMED:
            return None
        return self._given_email(record)

    def client_zone(self, record: NewDeparture) -> str:
        value = self.departures.answer_value
        return zone_for(value(record, "country"), value(record, "timezone"), self.team_zone)

    def exit_note_send_at(self, record: NewDeparture, now: datetime) -> tuple[datetime, str]:
        """When an exit note approved at ``now`` goes, and in which zone: the client's next 09:00 on a
        working day (a client day: never 24-26 Dec, 31 Dec-1 Jan or their holidays)."""
        zone = self.client_zone(record)
        country = self.departures.answer_value(record, "country")
        today = now.astimezone(ZoneInfo(zone)).date()
        due = local_moment(client_day_on_or_after(today, country), zone)
        if due <= now:
            due = local_moment(client_day_on_or_after(today + timedelta(days=1), country), zone)
        return due, zone

    def _exit_note(self, record: Departure, existing: list[Touch], zone: str) -> NewTouch | None:
        """The exit note, one per departure ({id}:exit_note): due at once for the AM's yes (bot/approvals.py
        always asks), until ``EXIT_NOTE_DRAFT_WAIT`` later; once approved, at the moment chosen then."""
        email = self.exit_note_address(record)
        if email is None:
            return None
        key = f"{record['id']}:{TouchKind.EXIT_NOTE}"
        known = next((t for t in existing if t["key"] == key), None)
        if known is not None and exit_note_approved(known):
            send_at = exit_note_payload(known["payload"]).get("send_at") or known["due_at"]
            return self._touch(record, TouchKind.EXIT_NOTE, "", Channel.EMAIL, email, parse_iso(send_at),
                               parse_iso(known["latest_at"]), known["zone"], known["payload"])  # fmt: skip
        since = self._exit_note_since(record)
        return self._touch(record, TouchKind.EXIT_NOTE, "", Channel.EMAIL, email, since, since + EXIT_NOTE_DRAFT_WAIT,
                           zone, {})  # fmt: skip

    def _exit_note_since(self, record: Departure) -> datetime:
        """Since when the exit note is due: the departure confirmed with an address to write to, or its save
        attempt over (while one is under way, it is held: the client is not a former client yet)."""
        answers = self.departures.state(record).answers
        moments = [record["created_at"]]
        for role in ("confirmed", "contact_email"):
            question = self.departures.prompts.script.by_role(role)
            answer = answers.get(question.id) if question is not None else None
            if answer is not None and answer.get("at"):
                moments.append(answer["at"])
        moments += [h["at"] for h in record["history"]
                    if h["event"] == AuditEvent.STATUS and h.get("from") == Status.SAVING]  # fmt: skip
        return max(parse_iso(moment) for moment in moments)

    def _extra_day(self, extra: str, base: date, country: str | None) -> date:
        if extra != "fiscal_year":
            return add_months(base, int(extra[1:-1]))
        month, day = self.cadence.fiscal_year_of(country)
        start = date(base.year, month, min(day, 28 if month == 2 else day))
        return start if start > base else start.replace(year=base.year + 1)

    def _owner(self, record: Departure, item: Item) -> str:
        """Who a nudge is for: the save owner when the answer names a Slack user, else the AM."""
        owner = self.departures.save_owner_user(record) if item == Item.SAVE_DEADLINE else None
        return owner or am_or_channel(record)

    # -- nudges about open items: each ends -------------------------------------------------
    def _nudges(self, record: Departure, existing: list[Touch]) -> list[NewTouch]:
        """The next nudge about each open item, if any is left, and the save attempt's lapse."""
        departures = self.departures
        state = departures.state(record)
        touches: list[NewTouch] = []
        recorded = within_team_hours(parse_iso(record["created_at"]), self.team_zone, self.cadence.work_start,
                                     self.cadence.work_end)  # fmt: skip
        status = record["status"]
        for item in DATED_ITEMS:
            day = _date(departures.answer_value(record, item))
            if day is None or not self._nudged(record, item):
                continue
            start = max(local_moment(day, self.team_zone, self.cadence.work_start), recorded)
            touches += self._series(record, existing, item, start, TouchKind.DEADLINE, {"on": day.isoformat()},
                                    escalate=item is not Item.SAVE_DEADLINE)  # fmt: skip
        if status is Status.SAVING or record.get("save_outcome") is SaveOutcome.LAPSED:
            touches += self._lapse(record)
        support_end = _date(departures.answer_value(record, Item.SUPPORT_END))
        if support_end is not None and self._mark(record, Item.SUPPORT_END) is None:
            touches.append(self._team(record, TouchKind.DEADLINE, f"{Item.SUPPORT_END}:{support_end}:1",
                                      support_end - SUPPORT_END_NOTICE, {"what": Item.SUPPORT_END,
                                      "on": support_end.isoformat()}))  # fmt: skip
        first = self.cadence.nudging.first
        if status in OPEN and not departures.interview.is_finished(state) and self._nudged(record, Item.INTERVIEW):
            unconfirmed = departures.answer_value(record, "confirmed") == "not_yet"
            why = Reminder.UNCONFIRMED if unconfirmed else Reminder.UNFINISHED
            start = self._after(parse_iso(record["updated_at"]), first[why])
            touches += self._series(record, existing, Item.INTERVIEW, start, TouchKind.INTERVIEW_REMINDER,
                                    {"why": why}, escalate=why is Reminder.UNFINISHED)  # fmt: skip
        question = departures.prompts.script.by_role("agreement_signed")
        answer = state.answers.get(question.id) if question else None
        if (answer is not None and answer.get("value") is False and status in UNSIGNED_MATTERS
                and self._nudged(record, Item.AGREEMENT_SIGNED)):  # fmt: skip
            start = self._after(parse_iso(answer["at"]), first[Reminder.UNSIGNED])
            touches += self._series(record, existing, Item.AGREEMENT_SIGNED, start, TouchKind.DEADLINE,
                                    {"why": Reminder.UNSIGNED})  # fmt: skip
        return touches

    def _nudged(self, record: Departure, item: Item) -> bool:
        """Whether ``item`` still calls for nudges: open, and nobody said it is done or no longer applies."""
        if item is Item.FINAL_PAYMENT_DUE and (record.get("paid_at") or not self._owed(record)):
            return False
        if item is Item.SAVE_DEADLINE and (record["status"] is not Status.SAVING or record.get("save_outcome")):
            return False
        mark = self._mark(record, item)
        return mark is None or mark["state"] not in SETTLED_MARKS

    def _owed(self, record: Departure) -> bool:
        amount = self.departures.answer_value(record, "final_payment")
        return not isinstance(amount, dict) or float(amount.get("amount", 0)) > 0

    def _mark(self, record: Departure, item: Item) -> ItemMark | None:
        """What a person last said about ``item``, unless its date was answered again since (a new date
        is a new commitment)."""
        mark = record.get("items", {}).get(item.value)
        if mark is None:
            return None
        question = self.departures.prompts.script.by_role(item.value)
        answer = self.departures.state(record).answers.get(question.id) if question else None
        return None if answer is not None and answer["at"] > mark["at"] else mark

    def _series(self, record: Departure, existing: list[Touch], item: Item, start: datetime, kind: TouchKind,
                payload: TouchPayload, *, escalate: bool = True) -> list[NewTouch]:  # fmt: skip
        """The next nudge of ``item``'s series that begins at ``start``: to its owner up to the most
        allowed, each after the gap since the last one went; then once to the team channel; then none.

        A snooze starts the series again on its date. The series is keyed by the day it began, so a new
        date (more time for a save attempt, a payment due later) begins a new one.
        """
        nudging = self.cadence.nudging
        mark = self._mark(record, item)
        if mark is not None and mark["state"] is ItemState.SNOOZED and "until" in mark:
            start = max(start, local_moment(date.fromisoformat(mark["until"]), self.team_zone,
                                            self.cadence.work_start))  # fmt: skip
        start = within_team_hours(start, self.team_zone, self.cadence.work_start, self.cadence.work_end)
        name = f"{item}:{start.astimezone(ZoneInfo(self.team_zone)).date()}"
        prefix = f"{record['id']}:{kind}:{name}:"
        went = sorted((t for t in existing if t["key"].startswith(prefix) and t["status"] not in UNCOUNTED
                       and t["key"][len(prefix):].isdigit()), key=lambda t: int(t["key"][len(prefix):]))  # fmt: skip
        owner = self._owner(record, item)
        numbered: TouchPayload = {**payload, "what": item, "number": len(went) + 1, "of": self._most(item)}
        if not went:
            due = start
        else:
            last = parse_iso(went[-1].get("ended_at") or went[-1]["due_at"])
            gap = nudging.then[len(went) - 1] if len(went) < nudging.most else nudging.escalate_after
            due = self._after(last, gap)
        if len(went) < nudging.most:
            return [self._touch(record, kind, f"{name}:{len(went) + 1}", Channel.TEAM, owner, due, due + TEAM_GRACE,
                                self.team_zone, numbered)]  # fmt: skip
        if escalate and owner != CHANNEL:
            # the owner did not settle it: the team hears of it, once, and then nobody is nudged again
            return [self._touch(record, kind, f"{name}:team", Channel.TEAM, CHANNEL, due, due + TEAM_GRACE,
                                self.team_zone, {**numbered, "escalated": True})]  # fmt: skip
        return []

    def _most(self, item: Item) -> int:
        """How many nudges the owner gets about ``item``: a save attempt's lapse cuts its series short."""
        nudging = self.cadence.nudging
        if item is not Item.SAVE_DEADLINE:
            return nudging.most
        offsets = [sum(nudging.then[:n]) for n in range(nudging.most)]  # working days after the first
        return sum(offset < nudging.save_lapse_after for offset in offsets)

    def _lapse(self, record: Departure) -> list[NewTouch]:
        """A save attempt with no outcome some working days after its deadline lapses: the dispatcher
        records it as leaving when this touch is due, and tells the AM."""
        day = _date(self.departures.answer_value(record, Item.SAVE_DEADLINE)) or self._save_began(record)
        if day is None:
            return []
        due = self._after(local_moment(day, self.team_zone, self.cadence.work_start),
                          self.cadence.nudging.save_lapse_after)  # fmt: skip
        payload: TouchPayload = {"what": Item.SAVE_DEADLINE, "on": day.isoformat(), "lapse": True}
        return [self._touch(record, TouchKind.DEADLINE, f"{Item.SAVE_DEADLINE}:{day}:lapse", Channel.TEAM,
                            am_or_channel(record), due, due + TEAM_GRACE, self.team_zone, payload)]  # fmt: skip

    def _save_began(self, record: Departure) -> date | None:
        """With no deadline given (an interview left unfinished), a save attempt ends as if it had been
        given ``UNDATED_SAVE`` from when it began."""
        began = [h["at"] for h in record["history"] if h["event"] == AuditEvent.STATUS and h.get("to") == Status.SAVING]
        if not began:
            return None
        return (parse_iso(began[-1]) + UNDATED_SAVE).astimezone(ZoneInfo(self.team_zone)).date()

    def _after(self, moment: datetime, days: int) -> datetime:
        """``days`` team working days after ``moment``, within working hours."""
        return within_team_hours(after_team_days(moment, days, self.team_zone), self.team_zone,
                                 self.cadence.work_start, self.cadence.work_end)  # fmt: skip

    def _client(self, record: Departure, kind: TouchKind, name: str, target: date, country: str | None, zone: str,
                email: str) -> NewTouch:  # fmt: skip
        day = client_day_on_or_after(target, country)
        due = local_moment(day, zone)
        latest = due + timedelta(days=self.cadence.check_in_grace_days)
        return self._touch(record, kind, name, Channel.EMAIL, email, due, latest, zone, {})

    def _greetings(self, record: Departure, end: date, country: str | None, zone: str,
                   email: str) -> list[NewTouch]:  # fmt: skip
        """Each holiday greeted, once a year: from ``after_end_days`` after the departure's ``end`` until the
        stay-in-touch period is over, never for a holiday before the departure was recorded. All of them
        follow from the answers; ``plan`` writes those up to ``horizon_days`` ahead, and ``plan_all`` tops
        them up as time passes."""
        cadence = self.cadence
        recorded = parse_iso(record["created_at"]).astimezone(self.departures.zone).date()
        first = end + timedelta(days=cadence.greeting_after_end_days)
        over = add_months(end, 12 * self.stay_years)  # the first day no longer in the period
        touches: list[NewTouch] = []
        for year in range(first.year, over.year + 1):
            for holiday in cadence.greetings_of(country):
                found = _holiday_day(holiday, country, year)
                if found is None:
                    continue
                day_off, name = found
                # on the client day before the holiday: the day itself is off, and so may be the weekend and,
                # around Christmas and New Year, the days offices close
                day = day_off if is_client_day(day_off, country) else client_day_before(day_off, country)
                if day_off < recorded or day < first or day_off >= over:
                    continue
                payload = cast(TouchPayload, {"holiday": name, "holiday_id": holiday.id})  # see storage.records
                touches.append(self._touch(record, TouchKind.GREETING, f"{holiday.id}:{year}", Channel.EMAIL, email,
                                           local_moment(day, zone), end_of_day(day, zone), zone, payload))  # fmt: skip
        return touches

    def _team(self, record: Departure, kind: TouchKind, name: str, target: date, payload: TouchPayload | None = None,
              recipient: str | None = None) -> NewTouch:  # fmt: skip
        day = target
        while not is_team_day(day, self.team_zone):
            day -= timedelta(days=1)  # a heads-up comes early rather than late
        due = local_moment(day, self.team_zone, self.cadence.work_start)
        return self._touch(record, kind, name, Channel.TEAM, recipient or am_or_channel(record), due, due + TEAM_GRACE,
                           self.team_zone, payload or {})  # fmt: skip

    @staticmethod
    def _touch(record: Departure, kind: TouchKind, name: str, channel: Channel, recipient: str, due: datetime,
               latest: datetime, zone: str, payload: TouchPayload) -> NewTouch:  # fmt: skip
        return new_touch(f"{record['id']}:{kind}:{name}".rstrip(":"), record["id"], kind, channel, recipient, due,
                         latest, zone, payload)  # fmt: skip

    # -- planning ------------------------------------------------------------------------
    def plan(self, record: Departure, *, save: bool = True) -> list[Touch]:
        """Bring the departure's pending touches in line with its answers, in one write.

        A touch desired but past its moment is not planned now; one already pending stays for the
        dispatcher to skip with the reason. A greeting is first written at most ``horizon_days`` ahead.
        A pending email keeps its wait and its reason (held, or the daily cap) but takes
        its planned time again, so it goes once that lifts. One cancelled because it no longer followed
        from the answers is planned again when it does.

        The plan's note (``PlanNote``) is set on ``record`` and saved on the stored departure in the same
        write; with ``save=False`` the caller saves ``record`` itself in that write (``Departures.commit``).
        """
        now = self.clock.now()
        existing = self.store.find_touches(departure_id=record["id"])
        known = {t["key"]: t for t in existing}
        desired = self.desired(record, existing)
        follows = {t["key"] for t in desired}
        horizon = now + timedelta(days=self.cadence.greeting_horizon_days)
        no_longer = self.words.render("reason_no_longer_planned")
        retained = self.words.render("hold_retained")
        # why what no longer follows is cancelled; either reason lets it be planned again when it follows again
        dropped = retained if record["status"] is Status.RETAINED else no_longer
        wanted: dict[str, NewTouch] = {}
        beyond: list[datetime] = []  # the due times of greetings left for later
        for fresh in desired:
            if parse_iso(fresh["latest_at"]) <= now:
                continue
            old = known.get(fresh["key"])
            pending = old is not None and old["status"] == TouchStatus.PENDING
            if fresh["kind"] == TouchKind.GREETING and parse_iso(fresh["due_at"]) > horizon and not pending:
                beyond.append(parse_iso(fresh["due_at"]))
                continue  # planned when it comes within the horizon
            wanted[fresh["key"]] = fresh
        stop = self.email_stop(record)
        if stop is not None:
            wanted = {k: t for k, t in wanted.items() if t["channel"] != Channel.EMAIL}
        planned: list[Touch] = []
        with self.store.batch():
            for touch in existing:
                key = touch["key"]
                fresh_touch = wanted.get(key)
                if touch["status"] == TouchStatus.CANCELLED and touch.get("reason") in (no_longer, retained):
                    pass  # it follows from the answers again (or it is in reach again): planned afresh, if wanted
                elif touch["status"] != TouchStatus.PENDING:
                    wanted.pop(key, None)  # sent, settled or awaiting approval: never planned again
                elif fresh_touch is None:
                    if stop is not None and touch["channel"] == Channel.EMAIL:
                        self._cancel(touch, stop)
                    elif key not in follows and touch["kind"] is not TouchKind.UPDATE:
                        # an update is planned by its approval (bot/updates.py), not from the answers
                        self._cancel(touch, dropped)
                    # else: still desired, its moment over: the dispatcher skips it, saying why
                elif touch.get("failing_since") and fresh_touch["due_at"] <= touch["due_at"]:
                    # being retried after temporary refusals (bot/sending.py): it keeps its back-off, its count
                    # and its first refusal, so the 24 hours of retries run on rather than start again. (Moved
                    # later by the answers, it is a send at a new moment: its refusals start afresh then.)
                    for field in RETRY_FIELDS:
                        if field in touch:
                            fresh_touch[field] = touch[field]  # type: ignore[literal-required]
                    fresh_touch["due_at"] = touch["due_at"]
                    if all(touch[f] == fresh_touch[f] for f in PLANNED_FIELDS):  # type: ignore[literal-required]
                        wanted.pop(key)
                elif touch.get("deferred") and touch["channel"] != Channel.EMAIL:
                    wanted.pop(key)  # a nudge waiting for its person (working hours, vacation): keep the wait
                elif touch.get("deferred"):
                    # held, or waiting for the daily cap: due as planned, so it goes as soon as that lifts
                    fresh_touch["deferred"] = touch["deferred"]
                    if "reason" in touch:
                        fresh_touch["reason"] = touch["reason"]
                elif all(touch[f] == fresh_touch[f] for f in PLANNED_FIELDS):  # type: ignore[literal-required]
                    wanted.pop(key)  # planned just so already: nothing to write
            for touch_wanted in wanted.values():
                touch_wanted["planned_at"] = iso(now)
                if touch_wanted["key"] in known:  # its attempts so far stay counted
                    touch_wanted["attempts"] = known[touch_wanted["key"]]["attempts"]
                written = self.store.replace_touch(touch_wanted, known.get(touch_wanted["key"]))
                if written is not None:  # else changed since it was read (sent, claimed, retried): left as it is
                    planned.append(written)
            after = {t["key"]: t for t in existing}  # cancelled ones were changed in place
            after.update((t["key"], t) for t in planned)
            note = self._note(record, now, horizon, beyond, after.values())
            if save:
                self._save_note(record, note)
        return planned

    def _note(self, record: Departure, now: datetime, horizon: datetime, beyond: list[datetime],
              touches: Iterable[Touch]) -> PlanNote:  # fmt: skip
        """What this plan was made from, noted on ``record``: until when it holds (see the module)."""
        ahead = timedelta(days=self.cadence.greeting_horizon_days)
        moments = [due - ahead for due in beyond]  # the first greeting left out comes within the horizon
        # (a pending touch falling due changes nothing here: the dispatcher re-plans after a nudge settles)
        if any(touch["status"] in UNSETTLED for touch in touches):
            moments.append(now)
        until = min(moments, default=None)
        note: PlanNote = {"inputs": self.plan_inputs(record), "at": iso(now), "reach": iso(horizon),
                          "until": None if until is None else iso(until)}  # fmt: skip
        _set_note(record, note, self._made_by)
        return note

    def _save_note(self, record: Departure, note: PlanNote) -> None:
        """Keep ``note`` on the stored departure. Only the note is written: a caller's copy of the record that
        is older than the stored one changes nothing (its fingerprint then differs, and it is planned again)."""
        stored = self.store.get_departure(record["id"])
        if stored is None:
            return
        if self.plan_inputs(stored) != note["inputs"]:
            # planned from a copy older than the stored departure (another process changed it meanwhile): the
            # store finds it again at the next top-up, rather than taking this plan for the newer record's
            note = {**note, "until": note["at"]}
        if cast(dict[str, Any], stored).get(PLAN_NOTE) == note:
            return
        if not self.store.note_on_departure(stored["id"], _note_fields(stored, note, self._made_by), read=stored):
            # changed between the read and the write (another process): noted to be made again
            lapsed: PlanNote = {**note, "until": note["at"]}
            self.store.note_on_departure(stored["id"], _note_fields(stored, lapsed, self._made_by))

    def plan_inputs(self, record: NewDeparture) -> str:
        """The fingerprint of what ``record``'s plan is made from: the record, and what planned it."""
        made_of = {k: v for k, v in record.items() if k not in NOT_PLANNED}
        # Of the history, planning reads the status changes only (_save_began, _exit_note_since); every other
        # entry comes with a change to a field kept here (answers, items, paid_at, opted_out...). Leaving
        # them out makes the fingerprint a third cheaper to take at start-up.
        made_of["history"] = [h for h in record["history"] if h["event"] == AuditEvent.STATUS]
        return _digest([self._made_by, made_of])

    def still_planned(self, record: Departure, now: datetime | None = None) -> bool:
        """Whether ``record``'s plan holds as it is: made from the same inputs, and not over (see the module)."""
        note = cast(dict[str, Any], record).get(PLAN_NOTE)
        if not isinstance(note, dict):
            return False  # never planned so, or by an older sendoff
        now = now or self.clock.now()
        at, until = note.get("at"), note.get("until")
        if not isinstance(at, str) or parse_iso(at) > now:
            return False  # planned at a later moment than now: the clock went back
        if until is not None and (not isinstance(until, str) or now >= parse_iso(until)):
            return False
        return bool(note.get("inputs") == self.plan_inputs(record))

    def lapse(self, departure_id: int) -> None:
        """Note the departure's plan as holding only until now, before one of its nudges is sent (``feeds_plan``):
        if the process stops before ``replan`` follows the send, the next ``plan_all`` makes the plan."""
        stored = self.store.get_departure(departure_id)
        note = cast(dict[str, Any], stored).get(PLAN_NOTE) if stored is not None else None
        if stored is None or stored.get("forgotten") or not isinstance(note, dict):
            return  # never planned so: the store finds it anyway (forgotten: nothing to plan)
        now = iso(self.clock.now())
        until = note.get("until")
        if isinstance(until, str) and parse_iso(until) <= parse_iso(now):
            return  # lapsed already
        self.store.note_on_departure(departure_id, {PLAN_NOTE: {**note, "until": now}, "plan_until": now})

    def replan(self, departure_id: int) -> None:
        """Plan the departure again, as it is stored now: one of its nudges settled (``feeds_plan``)."""
        stored = self.store.get_departure(departure_id)
        if stored is not None and not stored.get("forgotten"):
            self.plan(stored)

    def plan_all(self) -> int:
        """At start-up, and as time passes: top up the touches of every departure whose plan no longer holds
        (``still_planned``: greetings roll forward; a plan the dispatcher noted as lapsed is made), and the
        digest.

        With the data in a file, the names' keys are checked then too (``Departures.rekey``), rather than on the
        first lookup, which a person waits for: those of the departures planned by another release only.
        ``client_key`` is planning code (PLANNING_MODULES), so a departure planned by this release was keyed
        by it; at a release's first start, every departure is planned by another.
        """
        now = self.clock.now()
        # only those the store finds planned by something else, or until now: every other change went through
        # Departures.commit, which re-planned it then
        records = self.store.departures_to_plan(self._made_by, iso(now))
        if not self.departures.rekeyed:
            self.departures.rekey([r for r in records if r.get("plan_by") != self._made_by])
        forgotten = [r for r in records if r.get("forgotten")]
        if forgotten:  # nothing is planned for them again: noted so, they are not found again
            with self.store.batch():
                for record in forgotten:
                    self.store.note_on_departure(record["id"], {"plan_by": self._made_by, "plan_until": None})
        # (a plan noted by a release that kept no plan_by is made again, once: then the store finds it)
        stale = [r for r in records if not r.get("forgotten")
                 and (r.get("plan_by") != self._made_by or not self.still_planned(r, now))]  # fmt: skip
        count = 0
        for first in range(0, len(stale), PLAN_ALL_BATCH):
            # a few hundred plans to a write: when all of them must be made again (a new release), one durable
            # write (an fsync) each would cost more than the planning
            with self.store.batch():
                for read in stale[first : first + PLAN_ALL_BATCH]:
                    # read again: another process may have changed it since the list was read
                    fresh = self.store.get_departure(read["id"])
                    if fresh is not None and not fresh.get("forgotten"):
                        count += len(self.plan(fresh))
        self.plan_digest()
        return count

    def plan_digest(self) -> Touch:
        """The lessons digest: the first working day of next month (or this one, if still ahead), 09:00 team time."""
        today = self.departures.today()
        for first in (today.replace(day=1), add_months(today.replace(day=1), 1)):
            day = team_day_on_or_after(first, self.team_zone)
            due = local_moment(day, self.team_zone, self.cadence.work_start)
            if due > self.clock.now():
                break
        key = f"digest:{first:%Y-%m}"
        known = self.store.touch_by_key(key)
        if known is not None:
            return known  # planned (or sent) already
        touch = new_touch(key, None, TouchKind.DIGEST, Channel.TEAM, CHANNEL, due, due + TEAM_GRACE, self.team_zone,
                          {"month": f"{add_months(first, -1):%Y-%m}"})  # fmt: skip
        touch["planned_at"] = iso(self.clock.now())
        # only if still not there: another process may have planned it, and even claimed it, meanwhile
        written = self.store.replace_touch(touch, None) or self.store.touch_by_key(key)
        if written is None:  # planned by another process and gone again at once: nothing a digest plans is deleted
            raise LookupError(f"the digest {key} could not be planned")
        return written

    def on_change(self, record: Departure, change: Change) -> None:
        """The watcher of Departures: opt-out and forget cancel emails at once; any change re-plans."""
        if change == Change.OPT_OUT:
            self.cancel_emails(record, self.words.render("hold_opted_out"))
        elif change == Change.FORGET:
            self.cancel_emails(record, self.words.render("hold_forgotten"))
        self.plan(record, save=False)  # the change is saved after its watchers, with the plan's note

    def cancel_emails(self, record: Departure, reason: str) -> int:
        """Opt-out and forget: every pending email to the client is cancelled at once, drafts too."""
        cancelled = 0
        with self.store.batch():
            for touch in self.store.find_touches(departure_id=record["id"], statuses=NOT_YET_SENT):
                if touch["channel"] == Channel.EMAIL and self._cancel(touch, reason):
                    cancelled += 1
        return cancelled

    def _cancel(self, touch: Touch, reason: str) -> bool:
        """Cancel ``touch`` unless it left its status meanwhile (another process claimed it); whether it was.
        ``touch`` is brought up to date in place: the plan's note reads it."""
        touch.update(self.ledger.end(touch, Outcome.CANCELLED, reason).touch)
        return touch["status"] is TouchStatus.CANCELLED


def am_or_channel(record: NewDeparture) -> str:
    """Who hears about a departure: its AM, or the team channel while nobody has claimed it."""
    return record["am"] or CHANNEL


def new_touch(key: str, departure_id: int | None, kind: TouchKind, channel: Channel, recipient: str, due: datetime,
              latest: datetime, zone: str, payload: TouchPayload) -> NewTouch:  # fmt: skip
    return {
        "key": key,
        "departure_id": departure_id,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "due_at": iso(due.astimezone(UTC)),
        "latest_at": iso(latest.astimezone(UTC)),
        "zone": zone,
        "payload": payload,
        "status": TouchStatus.PENDING,
        "attempts": 0,
    }


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _holiday_day(holiday: Holiday, country: str | None, year: int) -> tuple[date, str] | None:
    """The day ``holiday`` falls on in ``year`` in ``country``'s calendar, and the name the calendar gives it."""
    found = holiday_named(country, year, holiday.names)
    if found is None and holiday.fixed is not None:
        return date(year, *holiday.fixed), holiday.label
    return found


def _note_fields(record: Departure, note: PlanNote, made_by: str) -> dict[str, Any]:
    """``note``, with what planned it and until when beside it, where the store can find the departures whose
    plan no longer holds without reading every one (``Store.departures_to_plan``); and the name's key as this
    release makes it, if it differs: ``plan_all`` re-keys only the departures planned by another release."""
    fields = {PLAN_NOTE: note, "plan_by": made_by, "plan_until": note["until"]}
    key = newer_key(record)
    if key is not None:
        fields["client_key"] = key
    return fields


def _set_note(record: Departure, note: PlanNote, made_by: str) -> None:
    """Keep ``note`` on ``record`` (the caller's copy; ``Store.note_on_departure`` writes it)."""
    cast(dict[str, Any], record).update(_note_fields(record, note, made_by))


def _digest(parts: list[Any]) -> str:
    """A stable fingerprint of JSON-like ``parts``: keys sorted, so that a store that reorders them (a
    PostgreSQL jsonb column) gives the same one."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@cache
def _code_digest() -> str:
    """The source of the planning modules: a new release that plans otherwise re-plans every departure once."""
    hashed = hashlib.blake2b(digest_size=16)
    for name in PLANNING_MODULES:
        module = sys.modules.get(name) or importlib.import_module(name)
        source = getattr(module, "__file__", None)
        hashed.update(Path(source).read_bytes() if source else name.encode())
    return hashed.hexdigest()


@cache
def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""
