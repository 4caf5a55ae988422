"""Pacing: the rate caps of an SMTP account, and nudges that wait for their person.

Nudges reach a person in working hours in their own time zone, on working
days of that zone's country (never a public holiday, 24-26 December or
31 December-1 January), and not while their status says they are away; a
note to the team channel waits for the team's working hours the same way.
Client emails wait only for the daily cap; their own send time was chosen
when they were planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as wall
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import parse_iso
from bot.countries import zone_country
from bot.notify import Notifier
from bot.settling import Pause
from bot.workdays import (
    SEND_AT,
    client_day_on_or_after,
    is_client_day,
    local_moment,
    team_day_on_or_after,
    within_team_hours,
    within_working_hours,
)
from prompts import Messages
from prompts.cadence import Cadence
from storage.records import Touch

# An email that goes at its planned moment goes within this much of it (a dispatch tick's delay).
ON_TIME = timedelta(minutes=1)


@dataclass
class RateCap:
    """At most ``per_second`` emails a second (paced on the wall clock) and ``per_day`` in 24 hours (bot clock)."""

    per_second: float = 0.0  # 0: no limit
    per_day: int = 0
    _next_slot: float = 0.0
    _sent: deque[datetime] = field(default_factory=deque)

    async def pace(self) -> None:
        if self.per_second <= 0:
            return
        now = wall.monotonic()
        wait = self._next_slot - now
        self._next_slot = max(now, self._next_slot) + 1 / self.per_second
        if wait > 0:
            await asyncio.sleep(wait)

    def day_full_until(self, now: datetime) -> datetime | None:
        """When a slot frees up, if today's cap is reached."""
        while self._sent and self._sent[0] <= now - timedelta(days=1):
            self._sent.popleft()
        if self.per_day and len(self._sent) >= self.per_day:
            return self._sent[0] + timedelta(days=1)
        return None

    def count(self, at: datetime) -> None:
        self._sent.append(at)

    def give_back(self, at: datetime) -> None:
        """Uncount the email counted at ``at`` (a slot taken before the send, which did not go)."""
        with contextlib.suppress(ValueError):  # a day later it has left the window anyway
            self._sent.remove(at)


class Pacing:
    def __init__(self, rate: RateCap, notifier: Notifier, cadence: Cadence, words: Messages) -> None:
        self.rate = rate
        self.notifier = notifier
        self.cadence = cadence
        self.words = words

    def email_pause(self, now: datetime) -> Pause | None:
        """Until when client emails wait, when today's cap is reached."""
        full_until = self.rate.day_full_until(now)
        return None if full_until is None else Pause(full_until, self.words.render("wait_daily_cap"))

    def send_time_pause(self, touch: Touch, now: datetime) -> Pause | None:
        """Until when an email that waited (a hold that lifted, the daily cap) waits for the client's next
        09:00 on a working day, so that it never lands at an odd hour; None when it may go now. Past its
        latest sensible time the dispatcher then skips it, saying why."""
        if not touch.get("deferred"):
            return None
        zone = touch["zone"]
        country = zone_country(zone)
        local = now.astimezone(ZoneInfo(zone))
        send_at = local_moment(local.date(), zone, SEND_AT)
        if is_client_day(local.date(), country) and send_at <= now < send_at + ON_TIME:
            return None
        day = local.date() if now < send_at else local.date() + timedelta(days=1)
        moment = local_moment(client_day_on_or_after(day, country), zone, SEND_AT)
        if parse_iso(touch["due_at"]) == moment:
            return None  # its wait ends now: the dispatch tick came a little late
        in_hours = within_working_hours(now, zone, self.cadence.work_start, self.cadence.work_end, country) == now
        if moment > parse_iso(touch["latest_at"]) and in_hours:
            return None  # its last chance (a greeting on its day): now, in the client's working hours, not never
        return Pause(moment, self.words.render("wait_send_time", zone=zone))

    async def person_pause(self, touch: Touch, now: datetime) -> Pause | None:
        """Until when a nudge to a person waits: their next working morning if away, else their working hours."""
        seen = await self.notifier.presence(touch["recipient"])
        zone = seen.zone or touch["zone"]
        if seen.away:
            tomorrow = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
            back = local_moment(team_day_on_or_after(tomorrow, zone), zone, self.cadence.work_start)
            return Pause(back, self.words.render("wait_away"))
        return self.hours_pause(zone, now)

    def hours_pause(self, zone: str, now: datetime) -> Pause | None:
        """Until when a nudge to someone in ``zone`` (a person, or the team channel) waits for working hours."""
        fitting = within_team_hours(now, zone, self.cadence.work_start, self.cadence.work_end)
        if fitting > now:
            return Pause(fitting, self.words.render("wait_off_hours", zone=zone))
        return None
