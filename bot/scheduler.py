"""APScheduler wakes the dispatcher; storage stays the truth.

One date job ("wake") is kept at the earliest pending touch and moved
whenever planning changes it; an interval job sweeps every few minutes in
case a wake was missed; a daily job tops up plans (greetings roll forward).
Nothing is scheduled that storage does not already hold, so a restart
rebuilds everything: ``start`` recovers interrupted sends, re-plans, and
sends what was missed while the bot was down.

The bot's clock (the dispatcher's) decides what is due and how long to wait;
APScheduler only counts that wait down on its own time.

When the store is away (StoreError, OSError), dispatch pauses: the outage is
logged once, the wake is set to try again after a short wait that grows up to
the sweep's, and its end is logged once. Nothing is lost meanwhile: what is
due stays due in the store, and what went is owed to it (bot/sending.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import parse_iso
from bot.departures import Change
from bot.dispatcher import Dispatcher
from bot.playbook import Playbook
from storage import StoreError
from storage.records import Departure

log = logging.getLogger("sendoff")

# Often enough that a dispatcher that has not run for 5 minutes (Dispatcher.last_tick_at) is one that is stuck.
SWEEP = timedelta(minutes=1)
# While the store is away: the first try again, doubled up to the sweep's wait.
OUTAGE_RETRY = timedelta(seconds=5)
# What the store raises when it cannot be reached (the PostgreSQL server, a folder that is gone).
STORE_ERRORS = (StoreError, OSError)
# Never a wake in the past: a touch the dispatcher left due is looked at again after a moment, not in a tight loop.
SHORTEST_WAIT = timedelta(seconds=0.05)


class Waker:
    def __init__(self, dispatcher: Dispatcher, playbook: Playbook) -> None:
        self.dispatcher = dispatcher
        self.playbook = playbook
        self.clock = dispatcher.clock
        # A missed wake still runs (no grace limit, folded into one run); storage says what is due anyway.
        self.scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        )
        self._lock = asyncio.Lock()
        self._outage_wait: timedelta | None = None  # set while the store is away: until the next try

    async def start(self) -> None:
        """On the running loop: recover, re-plan, send what was missed, then wait for the next due time."""
        unknown = self.dispatcher.recover()
        await self.dispatcher.ask_about_unknown(unknown)
        planned = self.playbook.plan_all()
        log.info("planned %d touches; %d interrupted sends wait for the AM", planned, len(unknown))
        self.scheduler.start()
        self.scheduler.add_job(self.run, "interval", seconds=SWEEP.total_seconds(), id="sweep")
        self.scheduler.add_job(self._top_up, "cron", hour=3, minute=17, id="top_up")
        self.playbook.departures.watchers.append(self.on_change)
        await self.run()

    async def run(self) -> None:
        """Send what is due now (one run at a time), then set the wake for the next."""
        async with self._lock:
            try:
                done = await self.dispatcher.run_due()
            except STORE_ERRORS as err:
                self._unreachable(err)
                return
            except Exception:
                log.exception("the dispatcher failed; the next sweep tries again")
            else:
                self._reachable()
                for settled in done:
                    log.info("touch %s: %s %s", settled.touch["key"], settled.outcome, settled.detail)
        self.reschedule()

    def _unreachable(self, err: Exception) -> None:
        """The store is away: try again soon, and say so once per outage."""
        if self._outage_wait is None:
            self._outage_wait = OUTAGE_RETRY
            log.warning("database unreachable: dispatch paused, retrying in %d s (%s)",
                        OUTAGE_RETRY.total_seconds(), err)  # fmt: skip
        else:
            self._outage_wait = min(self._outage_wait * 2, SWEEP)
        self._wake_in(self._outage_wait)

    def _reachable(self) -> None:
        if self._outage_wait is not None:
            self._outage_wait = None
            log.info("database reachable again: dispatch resumed")

    def _wake_in(self, wait: timedelta) -> None:
        # The bot's clock may not be the system's (a test's, a rehearsal's): only the wait carries over.
        when = datetime.now(self.scheduler.timezone) + wait
        self.scheduler.add_job(self.run, "date", run_date=when, id="wake", replace_existing=True)

    def reschedule(self) -> None:
        if self._outage_wait is not None:
            return  # the wake is the next try, already set
        try:
            upcoming = self.dispatcher.next_due()
        except STORE_ERRORS as err:
            self._unreachable(err)
            return
        if upcoming is None:
            if self.scheduler.get_job("wake"):
                self.scheduler.remove_job("wake")
            return
        self._wake_in(max(parse_iso(upcoming) - self.clock.now(), SHORTEST_WAIT))

    def on_change(self, record: Departure, change: Change) -> None:
        """A watcher of Departures, after the playbook: the earliest due time may have moved."""
        if self.scheduler.running:
            self.reschedule()

    async def _top_up(self) -> None:
        try:
            self.playbook.plan_all()
        except STORE_ERRORS as err:
            self._unreachable(err)  # touches are planned well ahead: tomorrow's top-up plans what this one could not
            return
        self.reschedule()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        async with self._lock:  # a run in flight finishes: its touch is claimed, let it settle
            pass
