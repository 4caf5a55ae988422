"""The playbook: turns a departure's answers into touches, each planned once.

Every touch has a unique key, so planning again (after an edit, or on every
answer) updates what is still pending and never plans a second one. Touches
that no longer follow from the answers are cancelled with the reason.
Reminders repeat by key: the next one is numbered after those already sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.answers import add_months
from bot.workdays import (
    after_working_days,
    end_of_day,
    holidays_in,
    is_working_day,
    local_moment,
    within_working_hours,
    working_day_before,
    working_day_on_or_after,
    zone_for,
)
from bot.clock import Clock, iso, parse_iso
from bot.departures import OPEN, Departures
from prompts.cadence import Cadence, Repeat
from storage import Record, Store

PENDING = "pending"
AWAITING = "awaiting_approval"  # a client email shown to the AM as a draft: Send, Edit or Skip
FINAL = ("sent", "failed", "skipped", "cancelled", "unknown")
EMAIL, TEAM = "email", "team"
CHANNEL = "channel"  # the recipient of a team touch meant for SENDOFF_CHANNEL
CLIENT_KINDS = ("check_in", "greeting")
TEAM_GRACE = timedelta(days=7)


class Playbook:
    def __init__(self, departures: Departures, store: Store, clock: Clock, *, team_zone: str,
                 cadence: Cadence | None = None) -> None:  # fmt: skip
        self.departures = departures
        self.store = store
        self.clock = clock
        self.team_zone = team_zone
        self.cadence = cadence or departures.prompts.cadence

    # -- what follows from the answers ---------------------------------------------------
    def desired(self, record: Record, existing: list[Record] | None = None) -> list[Record]:
        """Every touch the departure calls for now; ``existing`` (its touches so far) numbers the reminders."""
        value = lambda role: self.departures.answer_value(record, role)  # noqa: E731
        existing = existing or []
        touches: list[Record] = []
        if record.get("forgotten"):
            return touches
        base = _date(value("support_end")) or parse_iso(record["created_at"]).date()
        country = value("country")
        client_zone = zone_for(country, value("timezone"), self.team_zone)
        email = value("contact_email")
        cadence = self.cadence
        if value("consent") is True and email:
            for days in cadence.check_in_days:
                touches.append(self._client(record, "check_in", f"+{days}d", base + timedelta(days=days), country,
                                            client_zone, email))  # fmt: skip
            for extra in cadence.check_ins_by_reason.get(value("reason") or "", ()):
                touches.append(self._client(record, "check_in", extra, self._extra_day(extra, base, country),
                                            country, client_zone, email))  # fmt: skip
            if value("greetings") is True:
                touches += self._greetings(record, country, client_zone, email)
        if record["status"] in ("leaving", "departed"):
            touches.append(self._team(record, "win_back", "", base + timedelta(days=cadence.win_back_days)))
        paid = bool(record.get("paid_at"))
        for role, offsets in (("final_payment_due", () if paid else (-3, 0)), ("data_return", (0,)),
                              ("support_end", (-7,)), ("save_deadline", (0,))):  # fmt: skip
            day = _date(value(role))
            if day is None or (role == "save_deadline" and record["status"] != "saving"):
                continue
            for offset in offsets:
                payload = {"what": role, "on": day.isoformat()}
                touches.append(self._team(record, "deadline", f"{role}:{offset}", day + timedelta(days=offset),
                                          payload, self._owner(record, role)))  # fmt: skip
        touches += self._reminders(record, existing)
        return touches

    def _extra_day(self, extra: str, base: date, country: str | None) -> date:
        if extra != "fiscal_year":
            return add_months(base, int(extra[1:-1]))
        month, day = self.cadence.fiscal_year_of(country)
        start = date(base.year, month, min(day, 28 if month == 2 else day))
        return start if start > base else start.replace(year=base.year + 1)

    def _owner(self, record: Record, role: str) -> str:
        """Who a nudge is for: the save owner when the answer names a Slack user, else the AM."""
        owner = self.departures.save_owner_user(record) if role == "save_deadline" else None
        return owner or am_or_channel(record)

    def _reminders(self, record: Record, existing: list[Record]) -> list[Record]:
        """Unfinished interviews, unconfirmed departures and unsigned agreements: reminded until settled."""
        if record["status"] not in OPEN and record["status"] != "departed":
            return []
        touches = []
        state = self.departures.state(record)
        interview = self.departures.interview
        since = parse_iso(record["updated_at"])
        if record["status"] in OPEN and not interview.is_finished(state):
            if self.departures.answer_value(record, "confirmed") == "not_yet":
                touches += self._repeat(record, existing, "unconfirmed", self.cadence.unconfirmed, since)
            else:
                touches += self._repeat(record, existing, "unfinished", self.cadence.unfinished, since)
        question = self.departures.prompts.script.by_role("agreement_signed")
        answer = state.answers.get(question.id, {}) if question else {}
        if answer.get("value") is False and record["status"] in ("saving", "leaving", "departed"):
            touches += self._repeat(record, existing, "unsigned", self.cadence.unsigned, parse_iso(answer["at"]),
                                    kind="deadline", payload={"what": "agreement_signed"})  # fmt: skip
        return touches

    def _repeat(self, record: Record, existing: list[Record], name: str, repeat: Repeat, since: datetime, *,
                kind: str = "interview_reminder", payload: dict | None = None) -> list[Record]:  # fmt: skip
        prefix = f"{record['id']}:{kind}:{name}:"
        done = sorted((t for t in existing if t["key"].startswith(prefix) and t["status"] not in (PENDING, "cancelled")
                       and t["key"][len(prefix):].isdigit()), key=lambda t: t["due_at"])  # fmt: skip
        last = max([since, *(parse_iso(t.get("ended_at") or t["due_at"]) for t in done)])
        gap = repeat.every if done else repeat.first
        due = within_working_hours(after_working_days(last, gap, self.team_zone), self.team_zone,
                                   self.cadence.work_start, self.cadence.work_end)  # fmt: skip
        payload = {**(payload or {}), "why": name, "number": len(done) + 1}
        if repeat.allows(len(done)):
            name_n = f"{name}:{len(done) + 1}"
            return [self._touch(record, kind, name_n, TEAM, am_or_channel(record), due, due + TEAM_GRACE,
                                self.team_zone, payload)]  # fmt: skip
        if name == "unfinished" and record["am"]:
            # the reminders went unanswered: the team lead hears of it, once
            return [self._touch(record, kind, f"{name}:channel", TEAM, CHANNEL, due, due + TEAM_GRACE, self.team_zone,
                                {**payload, "escalated": True})]  # fmt: skip
        return []

    def _client(self, record: Record, kind: str, name: str, target: date, country: str | None, zone: str,
                email: str) -> Record:  # fmt: skip
        day = working_day_on_or_after(target, country)
        due = local_moment(day, zone)
        latest = due + timedelta(days=self.cadence.check_in_grace_days)
        return self._touch(record, kind, name, EMAIL, email, due, latest, zone, {})

    def _greetings(self, record: Record, country: str | None, zone: str, email: str) -> list[Record]:
        today = self.departures.today()
        horizon = today + timedelta(days=self.cadence.greeting_horizon_days)
        wanted = ("New Year's Day", *self.cadence.greetings, *self.cadence.greetings_by_country.get(country or "", ()))
        touches = []
        for year in range(today.year, horizon.year + 1):
            found = {d: n for d, n in holidays_in(country, year).items() if n in wanted}
            found.setdefault(date(year, 1, 1), "New Year's Day")
            for holiday, name in sorted(found.items()):
                # on the working day before the holiday: the day itself is off, and so may be the weekend
                day = holiday if is_working_day(holiday, country) else working_day_before(holiday, country)
                if today <= day <= horizon:
                    due = local_moment(day, zone)
                    touches.append(self._touch(record, "greeting", f"{name}:{year}", EMAIL, email, due,
                                               end_of_day(day, zone), zone, {"holiday": name}))  # fmt: skip
        return touches

    def _team(self, record: Record, kind: str, name: str, target: date, payload: dict | None = None,
              recipient: str | None = None) -> Record:  # fmt: skip
        day = target if is_working_day(target, None) else working_day_before(target, None)
        due = local_moment(day, self.team_zone, self.cadence.work_start)
        return self._touch(record, kind, name, TEAM, recipient or am_or_channel(record), due, due + TEAM_GRACE,
                           self.team_zone, payload or {})  # fmt: skip

    @staticmethod
    def _touch(record: Record, kind: str, name: str, channel: str, recipient: str, due: datetime, latest: datetime,
               zone: str, payload: dict[str, Any]) -> Record:  # fmt: skip
        return new_touch(f"{record['id']}:{kind}:{name}".rstrip(":"), record["id"], kind, channel, recipient, due,
                         latest, zone, payload)  # fmt: skip

    # -- planning ------------------------------------------------------------------------
    def plan(self, record: Record) -> list[Record]:
        """Bring the departure's pending touches in line with its answers, in one write."""
        now = self.clock.now()
        existing = self.store.find_touches(departure_id=record["id"])
        wanted = {t["key"]: t for t in self.desired(record, existing) if parse_iso(t["latest_at"]) > now}
        if record.get("opted_out") or record.get("forgotten"):
            wanted = {k: t for k, t in wanted.items() if t["channel"] != EMAIL}
        planned = []
        with self.store.batch():
            for touch in existing:
                if touch["status"] == PENDING and touch["key"] not in wanted:
                    touch.update(status="cancelled", reason="no longer follows from the answers", ended_at=iso(now))
                    self.store.save_touch(touch)
                elif touch["key"] in wanted and touch["status"] != PENDING:
                    wanted.pop(touch["key"])  # sent, settled or awaiting approval: never planned again
                elif touch["key"] in wanted and touch.get("deferred"):
                    wanted.pop(touch["key"])  # waiting for its recipient (working hours, vacation): keep the wait
            for touch in wanted.values():
                touch["planned_at"] = iso(now)
                planned.append(self.store.put_touch(touch))
        return planned

    def plan_all(self) -> int:
        """At start-up: top up every open departure's touches (greetings roll forward), and the digest."""
        count = 0
        for record in self.departures.all():
            if not record.get("forgotten"):
                count += len(self.plan(record))
        self.plan_digest()
        return count

    def plan_digest(self) -> Record:
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
        touch = new_touch(key, None, "digest", TEAM, CHANNEL, due, due + TEAM_GRACE, self.team_zone,
                          {"month": f"{add_months(first, -1):%Y-%m}"})  # fmt: skip
        touch["planned_at"] = iso(self.clock.now())
        return self.store.put_touch(touch)

    def on_change(self, record: Record, what: str) -> None:
        """The watcher of Departures: opt-out and forget cancel emails at once; any change re-plans."""
        if what in ("opt_out", "forget"):
            self.cancel_emails(record, "the client opted out" if what == "opt_out" else "the client was forgotten")
        self.plan(record)

    def cancel_emails(self, record: Record, reason: str) -> int:
        """Opt-out and forget: every pending email to the client is cancelled at once, drafts too."""
        now = iso(self.clock.now())
        cancelled = 0
        with self.store.batch():
            for touch in self.store.find_touches(departure_id=record["id"], statuses=[PENDING, AWAITING]):
                if touch["channel"] == EMAIL:
                    touch.update(status="cancelled", reason=reason, ended_at=now)
                    self.store.save_touch(touch)
                    cancelled += 1
        return cancelled


def am_or_channel(record: Record) -> str:
    """Who hears about a departure: its AM, or the team channel while nobody has claimed it."""
    return record["am"] or CHANNEL


def new_touch(key: str, departure_id: int | None, kind: str, channel: str, recipient: str, due: datetime,
              latest: datetime, zone: str, payload: dict[str, Any]) -> Record:  # fmt: skip
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
        "status": PENDING,
        "attempts": 0,
    }


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None
