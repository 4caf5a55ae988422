"""The playbook: turns a departure's answers into touches, each planned once.

Every touch has a unique key, so planning again (after an edit, or on every
answer) updates what is still pending and never plans a second one. Touches
that no longer follow from the answers are cancelled with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.answers import add_months
from bot.calendar import (
    end_of_day,
    holidays_in,
    is_working_day,
    local_moment,
    working_day_before,
    working_day_on_or_after,
    zone_for,
)
from bot.clock import Clock, iso, parse_iso
from bot.departures import Departures
from storage import Record, Store

PENDING = "pending"
FINAL = ("sent", "failed", "skipped", "cancelled", "unknown")
EMAIL, TEAM = "email", "team"
CLIENT_KINDS = ("check_in", "greeting")


@dataclass(frozen=True)
class PlaybookConfig:
    check_in_days: tuple[int, ...] = (30, 90, 180)
    # reason option id -> extra check-ins: "fiscal_year" (next 1 January) or "+<n>m" (months)
    check_ins_by_reason: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"price": ("fiscal_year",), "project_finished": ("+6m",)}
    )
    # holiday names (as the holidays library spells them in English) greeted besides New Year
    greetings: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"*": ("Christmas Day",), "US": ("Thanksgiving Day",)}
    )
    check_in_grace_days: int = 14
    win_back_days: int = 365
    greeting_horizon_days: int = 730


class Playbook:
    def __init__(self, departures: Departures, store: Store, clock: Clock, *, team_zone: str,
                 config: PlaybookConfig | None = None) -> None:  # fmt: skip
        self.departures = departures
        self.store = store
        self.clock = clock
        self.team_zone = team_zone
        self.config = config or PlaybookConfig()

    # -- what follows from the answers ---------------------------------------------------
    def desired(self, record: Record) -> list[Record]:
        value = lambda role: self.departures.answer_value(record, role)  # noqa: E731
        touches: list[Record] = []
        base = _date(value("support_end")) or parse_iso(record["created_at"]).date()
        country = value("country")
        client_zone = zone_for(country, value("timezone"), self.team_zone)
        email = value("contact_email")
        if value("consent") is True and email:
            for days in self.config.check_in_days:
                touches.append(self._client(record, "check_in", f"+{days}d", base + timedelta(days=days), country,
                                            client_zone, email, {}))  # fmt: skip
            for extra in self.config.check_ins_by_reason.get(value("reason") or "", ()):
                target = date(base.year + 1, 1, 1) if extra == "fiscal_year" else add_months(base, int(extra[1:-1]))
                touches.append(self._client(record, "check_in", extra, target, country, client_zone, email, {}))
            if value("greetings") is True:
                touches += self._greetings(record, country, client_zone, email)
        if record["status"] in ("leaving", "departed"):
            touches.append(self._team(record, "win_back", "", base + timedelta(days=self.config.win_back_days)))
        for role, offsets in (("final_payment_due", (-3, 0)), ("data_return", (0,)), ("support_end", (-7,)),
                              ("save_deadline", (0,))):  # fmt: skip
            day = _date(value(role))
            for offset in offsets if day else ():
                touches.append(self._team(record, "deadline", f"{role}:{offset}", day + timedelta(days=offset),
                                          {"what": role, "on": day.isoformat()}))  # fmt: skip
        return touches

    def _client(self, record: Record, kind: str, name: str, target: date, country: str | None, zone: str,
                email: str, payload: dict[str, Any]) -> Record:  # fmt: skip
        day = working_day_on_or_after(target, country)
        due = local_moment(day, zone)
        latest = end_of_day(day, zone) if kind == "greeting" else due + timedelta(days=self.config.check_in_grace_days)
        return self._touch(record, kind, name, EMAIL, email, due, latest, zone, payload)

    def _greetings(self, record: Record, country: str | None, zone: str, email: str) -> list[Record]:
        today = self.departures.today()
        horizon = today + timedelta(days=self.config.greeting_horizon_days)
        wanted = ("New Year's Day", *self.config.greetings.get("*", ()), *self.config.greetings.get(country or "", ()))
        touches = []
        for year in range(today.year, horizon.year + 1):
            found = {d: n for d, n in holidays_in(country, year).items() if n in wanted}
            found.setdefault(date(year, 1, 1), "New Year's Day")
            for holiday, name in sorted(found.items()):
                # on the working day before the holiday: the day itself is off, and so may be the weekend
                day = holiday if is_working_day(holiday, country) else working_day_before(holiday, country)
                if today < day <= horizon:
                    due = local_moment(day, zone)
                    touches.append(self._touch(record, "greeting", f"{name}:{year}", EMAIL, email, due,
                                               end_of_day(day, zone), zone, {"holiday": name}))  # fmt: skip
        return touches

    def _team(self, record: Record, kind: str, name: str, target: date, payload: dict | None = None) -> Record:
        day = target if is_working_day(target, None) else working_day_before(target, None)
        due = local_moment(day, self.team_zone)
        return self._touch(record, kind, name, TEAM, record["am"], due, due + timedelta(days=7), self.team_zone,
                           payload or {})  # fmt: skip

    def _touch(self, record: Record, kind: str, name: str, channel: str, recipient: str, due, latest, zone: str,
               payload: dict[str, Any]) -> Record:  # fmt: skip
        return {
            "key": f"{record['id']}:{kind}:{name}".rstrip(":"),
            "departure_id": record["id"],
            "kind": kind,
            "channel": channel,
            "recipient": recipient,
            "due_at": iso(due),
            "latest_at": iso(latest),
            "zone": zone,
            "payload": payload,
            "status": PENDING,
            "attempts": 0,
        }

    # -- planning ------------------------------------------------------------------------
    def plan(self, record: Record) -> list[Record]:
        """Bring the departure's pending touches in line with its answers, in one write."""
        now = self.clock.now()
        wanted = {t["key"]: t for t in self.desired(record) if parse_iso(t["latest_at"]) > now}
        if record.get("opted_out") or record.get("forgotten"):
            wanted = {k: t for k, t in wanted.items() if t["channel"] != EMAIL}
        planned = []
        with self.store.batch():
            for touch in self.store.find_touches(departure_id=record["id"]):
                if touch["status"] == PENDING and touch["key"] not in wanted:
                    touch.update(status="cancelled", reason="no longer follows from the answers", ended_at=iso(now))
                    self.store.save_touch(touch)
                elif touch["key"] in wanted and touch["status"] != PENDING:
                    wanted.pop(touch["key"])  # sent or settled: never planned again
            for touch in wanted.values():
                touch["planned_at"] = iso(now)
                planned.append(self.store.put_touch(touch))
        return planned

    def on_change(self, record: Record, what: str) -> None:
        """The watcher of Departures: opt-out and forget cancel emails at once; any change re-plans."""
        if what in ("opt_out", "forget"):
            self.cancel_emails(record, "the client opted out" if what == "opt_out" else "the client was forgotten")
        self.plan(record)

    def cancel_emails(self, record: Record, reason: str) -> int:
        """Opt-out and forget: every pending email to the client is cancelled at once."""
        now = iso(self.clock.now())
        cancelled = 0
        with self.store.batch():
            for touch in self.store.find_touches(departure_id=record["id"], statuses=[PENDING]):
                if touch["channel"] == EMAIL:
                    touch.update(status="cancelled", reason=reason, ended_at=now)
                    self.store.save_touch(touch)
                    cancelled += 1
        return cancelled


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None
