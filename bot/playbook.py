"""The playbook: turns a departure's answers into touches, each planned once.

Every touch has a unique key, so planning again (after an edit, or on every
answer) updates what is still pending and never plans a second one. Touches
that no longer follow from the answers are cancelled with the reason.
Reminders repeat by key: the next one is numbered after those already sent.

Nothing is dated before the departure was recorded. Client emails begin after
the departure's end (the support end date, else the day it was recorded):
check-ins count from it, and greetings start ``after_end_days`` later, once a
year per holiday (keyed by the holiday's id and year) until the stay-in-touch
period is over; they are planned at most a year ahead and topped up as time
passes (``plan_all``). A touch desired but past its moment is left to the
dispatcher, which skips it with the reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from bot.answers import add_months
from bot.clock import Clock, iso, parse_iso
from bot.departures import Change, Departures
from bot.workdays import (
    after_working_days,
    end_of_day,
    holiday_named,
    is_working_day,
    local_moment,
    within_working_hours,
    working_day_before,
    working_day_on_or_after,
    zone_for,
)
from prompts.cadence import Cadence, Holiday, Repeat
from storage import Store
from storage.records import (
    CHANNEL,
    OPEN,
    Channel,
    Departure,
    Item,
    NewDeparture,
    NewTouch,
    Reminder,
    Status,
    Touch,
    TouchKind,
    TouchPayload,
    TouchStatus,
)

__all__ = ["CHANNEL", "CLIENT_KINDS", "TEAM_GRACE", "Playbook", "am_or_channel", "new_touch"]

CLIENT_KINDS = frozenset({TouchKind.CHECK_IN, TouchKind.GREETING})
TEAM_GRACE = timedelta(days=7)
# The dates the team is nudged about, and the days before (negative) or after each that a nudge goes.
DEADLINES: tuple[tuple[Item, tuple[int, ...]], ...] = (
    (Item.FINAL_PAYMENT_DUE, (-3, 0)),
    (Item.DATA_RETURN, (0,)),
    (Item.SUPPORT_END, (-7,)),
    (Item.SAVE_DEADLINE, (0,)),
)
# Statuses in which the win-back nudge is planned: the client is gone, or going.
LEFT = frozenset({Status.LEAVING, Status.DEPARTED})
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
        client_zone = zone_for(country, value("timezone"), self.team_zone)
        email = value("contact_email")
        cadence = self.cadence
        if value("consent") is True and email and self.email_stop(record) is None:
            for days in cadence.check_in_days:
                touches.append(self._client(record, TouchKind.CHECK_IN, f"+{days}d", base + timedelta(days=days),
                                            country, client_zone, email))  # fmt: skip
            for extra in cadence.check_ins_by_reason.get(value("reason") or "", ()):
                touches.append(self._client(record, TouchKind.CHECK_IN, extra, self._extra_day(extra, base, country),
                                            country, client_zone, email))  # fmt: skip
            if value("greetings") is True:
                touches += self._greetings(record, base, country, client_zone, email)
        if record["status"] in LEFT:
            touches.append(self._team(record, TouchKind.WIN_BACK, "", base + timedelta(days=cadence.win_back_days)))
        paid = bool(record.get("paid_at"))
        for item, offsets in DEADLINES:
            day = _date(value(item))
            if day is None or (item == Item.SAVE_DEADLINE and record["status"] != Status.SAVING):
                continue
            if item == Item.FINAL_PAYMENT_DUE and paid:
                continue  # nothing left to chase
            for offset in offsets:
                payload: TouchPayload = {"what": item, "on": day.isoformat()}
                touches.append(self._team(record, TouchKind.DEADLINE, f"{item}:{offset}", day + timedelta(days=offset),
                                          payload, self._owner(record, item)))  # fmt: skip
        touches += self._reminders(record, existing)
        # nothing is dated before the departure was recorded
        return [t for t in touches if parse_iso(t["due_at"]) >= created]

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

    def _reminders(self, record: Departure, existing: list[Touch]) -> list[NewTouch]:
        """Unfinished interviews, unconfirmed departures and unsigned agreements: reminded until settled."""
        status = record["status"]
        if status not in OPEN and status != Status.DEPARTED:
            return []
        touches: list[NewTouch] = []
        state = self.departures.state(record)
        interview = self.departures.interview
        since = parse_iso(record["updated_at"])
        if status in OPEN and not interview.is_finished(state):
            if self.departures.answer_value(record, "confirmed") == "not_yet":
                touches += self._repeat(record, existing, Reminder.UNCONFIRMED, self.cadence.unconfirmed, since)
            else:
                touches += self._repeat(record, existing, Reminder.UNFINISHED, self.cadence.unfinished, since)
        question = self.departures.prompts.script.by_role("agreement_signed")
        answer = state.answers.get(question.id) if question else None
        if answer is not None and answer.get("value") is False and status in UNSIGNED_MATTERS:
            touches += self._repeat(record, existing, Reminder.UNSIGNED, self.cadence.unsigned, parse_iso(answer["at"]),
                                    kind=TouchKind.DEADLINE, payload={"what": Item.AGREEMENT_SIGNED})  # fmt: skip
        return touches

    def _repeat(self, record: Departure, existing: list[Touch], why: Reminder, repeat: Repeat, since: datetime, *,
                kind: TouchKind = TouchKind.INTERVIEW_REMINDER, payload: TouchPayload | None = None,
                ) -> list[NewTouch]:  # fmt: skip
        prefix = f"{record['id']}:{kind}:{why}:"
        done = sorted((t for t in existing if t["key"].startswith(prefix) and t["status"] not in UNCOUNTED
                       and t["key"][len(prefix):].isdigit()), key=lambda t: t["due_at"])  # fmt: skip
        last = max([since, *(parse_iso(t.get("ended_at") or t["due_at"]) for t in done)])
        gap = repeat.every if done else repeat.first
        due = within_working_hours(after_working_days(last, gap, self.team_zone), self.team_zone,
                                   self.cadence.work_start, self.cadence.work_end)  # fmt: skip
        numbered: TouchPayload = {**(payload or {}), "why": why, "number": len(done) + 1}
        if repeat.allows(len(done)):
            return [self._touch(record, kind, f"{why}:{len(done) + 1}", Channel.TEAM, am_or_channel(record), due,
                                due + TEAM_GRACE, self.team_zone, numbered)]  # fmt: skip
        if why == Reminder.UNFINISHED and record["am"]:
            # the reminders went unanswered: the team lead hears of it, once
            return [self._touch(record, kind, f"{why}:channel", Channel.TEAM, CHANNEL, due, due + TEAM_GRACE,
                                self.team_zone, {**numbered, "escalated": True})]  # fmt: skip
        return []

    def _client(self, record: Departure, kind: TouchKind, name: str, target: date, country: str | None, zone: str,
                email: str) -> NewTouch:  # fmt: skip
        day = working_day_on_or_after(target, country)
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
                # on the working day before the holiday: the day itself is off, and so may be the weekend
                day = day_off if is_working_day(day_off, country) else working_day_before(day_off, country)
                if day_off < recorded or day < first or day_off >= over:
                    continue
                payload = cast(TouchPayload, {"holiday": name, "holiday_id": holiday.id})  # see storage.records
                touches.append(self._touch(record, TouchKind.GREETING, f"{holiday.id}:{year}", Channel.EMAIL, email,
                                           local_moment(day, zone), end_of_day(day, zone), zone, payload))  # fmt: skip
        return touches

    def _team(self, record: Departure, kind: TouchKind, name: str, target: date, payload: TouchPayload | None = None,
              recipient: str | None = None) -> NewTouch:  # fmt: skip
        day = target if is_working_day(target, None) else working_day_before(target, None)
        due = local_moment(day, self.team_zone, self.cadence.work_start)
        return self._touch(record, kind, name, Channel.TEAM, recipient or am_or_channel(record), due, due + TEAM_GRACE,
                           self.team_zone, payload or {})  # fmt: skip

    @staticmethod
    def _touch(record: Departure, kind: TouchKind, name: str, channel: Channel, recipient: str, due: datetime,
               latest: datetime, zone: str, payload: TouchPayload) -> NewTouch:  # fmt: skip
        return new_touch(f"{record['id']}:{kind}:{name}".rstrip(":"), record["id"], kind, channel, recipient, due,
                         latest, zone, payload)  # fmt: skip

    # -- planning ------------------------------------------------------------------------
    def plan(self, record: Departure) -> list[Touch]:
        """Bring the departure's pending touches in line with its answers, in one write.

        A touch desired but past its moment is not planned now; one already pending stays for the
        dispatcher to skip with the reason. A greeting is first written at most ``horizon_days`` ahead.
        A deadline nudge whose moment had passed when it was planned (an answer given late, a date moved
        back) is dropped. A pending email keeps its wait and its reason (held, or the daily cap) but takes
        its planned time again, so it goes once that lifts. One cancelled because it no longer followed
        from the answers is planned again when it does.
        """
        now = self.clock.now()
        existing = self.store.find_touches(departure_id=record["id"])
        known = {t["key"]: t for t in existing}
        desired = self.desired(record, existing)
        follows = {t["key"] for t in desired}
        horizon = now + timedelta(days=self.cadence.greeting_horizon_days)
        no_longer = self.words.render("reason_no_longer_planned")
        wanted: dict[str, NewTouch] = {}
        passed: set[str] = set()
        for fresh in desired:
            if parse_iso(fresh["latest_at"]) <= now:
                continue
            old = known.get(fresh["key"])
            pending = old is not None and old["status"] == TouchStatus.PENDING
            if fresh["kind"] == TouchKind.GREETING and parse_iso(fresh["due_at"]) > horizon and not pending:
                continue  # planned when it comes within the horizon
            if (fresh["kind"] == TouchKind.DEADLINE and parse_iso(fresh["due_at"]) < now
                    and not (old is not None and old["due_at"] == fresh["due_at"])):  # fmt: skip
                passed.add(fresh["key"])  # its day was over before it was planned
                continue
            wanted[fresh["key"]] = fresh
        stop = self.email_stop(record)
        if stop is not None:
            wanted = {k: t for k, t in wanted.items() if t["channel"] != Channel.EMAIL}
        planned: list[Touch] = []
        with self.store.batch():
            for touch in existing:
                key = touch["key"]
                fresh_touch = wanted.get(key)
                if touch["status"] == TouchStatus.CANCELLED and touch.get("reason") == no_longer:
                    pass  # it follows from the answers again (or it is in reach again): planned afresh, if wanted
                elif touch["status"] != TouchStatus.PENDING:
                    wanted.pop(key, None)  # sent, settled or awaiting approval: never planned again
                elif fresh_touch is None:
                    if stop is not None and touch["channel"] == Channel.EMAIL:
                        self._cancel(touch, stop, now)
                    elif key in passed:
                        self._cancel(touch, self.words.render("reason_day_passed"), now)
                    elif key not in follows:
                        self._cancel(touch, self.words.render("reason_no_longer_planned"), now)
                    # else: still desired, its moment over: the dispatcher skips it, saying why
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
                planned.append(self.store.put_touch(touch_wanted))
        return planned

    def plan_all(self) -> int:
        """At start-up: top up every open departure's touches (greetings roll forward), and the digest."""
        count = 0
        for record in self.departures.all():
            if not record.get("forgotten"):
                count += len(self.plan(record))
        self.plan_digest()
        return count

    def plan_digest(self) -> Touch:
        """The lessons digest: the first working day of next month (or this one, if still ahead), 09:00 team time."""
        today = self.departures.today()
        for first in (today.replace(day=1), add_months(today.replace(day=1), 1)):
            day = working_day_on_or_after(first, None)
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
        return self.store.put_touch(touch)

    def on_change(self, record: Departure, change: Change) -> None:
        """The watcher of Departures: opt-out and forget cancel emails at once; any change re-plans."""
        if change == Change.OPT_OUT:
            self.cancel_emails(record, self.words.render("hold_opted_out"))
        elif change == Change.FORGET:
            self.cancel_emails(record, self.words.render("hold_forgotten"))
        self.plan(record)

    def cancel_emails(self, record: Departure, reason: str) -> int:
        """Opt-out and forget: every pending email to the client is cancelled at once, drafts too."""
        now = self.clock.now()
        cancelled = 0
        with self.store.batch():
            for touch in self.store.find_touches(departure_id=record["id"], statuses=NOT_YET_SENT):
                if touch["channel"] == Channel.EMAIL:
                    self._cancel(touch, reason, now)
                    cancelled += 1
        return cancelled

    def _cancel(self, touch: Touch, reason: str, now: datetime) -> None:
        touch["status"] = TouchStatus.CANCELLED
        touch["reason"] = reason
        touch["ended_at"] = iso(now)
        self.store.save_touch(touch)


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
