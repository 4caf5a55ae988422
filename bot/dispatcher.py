"""The dispatcher: sends the touches that are due, each at most once.

Storage is the truth. Each run takes the due touches in order and settles
each one: past its latest sensible time it is ``skipped``; held by a hold that
may lift (bot/holds.py: an overdue payment) it stays pending with the reason
until the hold lifts or its moment is over; stopped for good (opt-out, forget,
retained, won back) it is ``cancelled``; waiting for its person or for the
daily cap (bot/pacing.py) it is deferred; a client email may first be shown to
the AM (bot/approvals.py); everything else is claimed and sent (bot/sending.py).
A touch found in ``sending`` at start-up was cut off by a crash and becomes
``unknown``: the AM decides, it is never re-sent blindly.

A nudge of an open item's series is followed by the next one, planned from
what became of it (bot/playbook.py, ``feeds_plan``): once it is skipped (in
the same write), sent, failed or cut off, its departure is planned again at
once. A send's plan is noted as lapsed before the send, so that one cut off
by a kill is planned by the next start-up.

A run that finds the store away stops taking touches, lets the sends in flight
finish and raises the store's error: bot/scheduler.py pauses and tries again.
What went meanwhile is owed to the store, and written first by the next run.
``last_tick_at`` says when a run last finished (``time.monotonic()``), for a
health check to see a dispatcher that no longer runs.

This class is what the transports and the scheduler call; the approval
buttons reach bot/approvals.py through it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from email.message import Message

from bot.approvals import Approvals
from bot.clock import Clock, ManualClock, iso, parse_iso
from bot.departures import Departures
from bot.drafts import Drafts
from bot.holds import LIFTS, Holds
from bot.lifecycle import Lifecycle
from bot.mailer import Composer, Sender
from bot.notices import Notices
from bot.notify import Notifier
from bot.pacing import Pacing, RateCap
from bot.playbook import Playbook, feeds_plan
from bot.sending import Courier, Lane
from bot.settling import Outcome, Settled
from storage import Store
from storage.records import CHANNEL, Channel, Departure, Touch, TouchKind, TouchStatus

__all__ = ["Dispatcher", "Outcome", "RateCap", "Settled"]

# While the clock is moved (the console's /advance), plans are topped up at least this often, as
# ``sendoff run`` does daily: greetings roll forward through a long advance.
TOP_UP_EVERY = timedelta(days=7)
# Workers sharing each lane (one SMTP connection): while one waits for the server, the next reads its touch
# and composes its email, so the connection waits for neither. A lane's lock keeps it to one send at a time.
WORKERS_PER_LANE = 2
# How long a touch may stay in flight before it counts as cut off (``Dispatcher.cut_off``): far beyond SMTP's
# timeouts, so that it is never another process's send still going.
SEND_LEASE = timedelta(minutes=15)


class Dispatcher:
    def __init__(self, departures: Departures, store: Store, clock: Clock, composer: Composer, lanes: list[Sender],
                 notifier: Notifier, *, playbook: Playbook, rate: RateCap | None = None) -> None:  # fmt: skip
        """``lanes``: one sender each; with several (SMTP connections), one composes while another waits.

        Client emails wait for the AM's approval where ``notifier`` can show drafts.
        """
        self.store = store
        self.clock = clock
        self.playbook = playbook
        self._topped_at: datetime | None = None  # when run_until last topped up the plans
        words = departures.prompts.messages
        self.rate = rate or RateCap()
        self.ledger = playbook.ledger
        self.holds = Holds(departures)
        self.lifecycle = Lifecycle(departures)
        self.pacing = Pacing(self.rate, notifier, playbook.cadence, words)
        self.notices = Notices(departures)
        self.drafts = Drafts(departures, composer)
        self.courier = Courier(store, clock, notifier, lanes, rate=self.rate, drafts=self.drafts,
                               notices=self.notices, playbook=playbook, ledger=self.ledger)  # fmt: skip
        # time.monotonic() when a run last finished; None before the first
        self.last_tick_at: float | None = None
        self.approvals = Approvals(departures, store, clock, courier=self.courier, holds=self.holds,
                                   drafts=self.drafts, notices=self.notices, ledger=self.ledger,
                                   enabled=notifier.shows_drafts)  # fmt: skip

    # -- start-up --------------------------------------------------------------------------
    def recover(self) -> list[Touch]:
        """At start-up: touches left in ``sending`` by a crash become ``unknown`` (with the data shared by
        several processes, only those in flight longer than ``SEND_LEASE``); the count of today's sent."""
        found = self.cut_off(everything=not self.store.shared)
        day_ago = iso(self.clock.now() - timedelta(days=1))
        for touch in self.store.find_touches(statuses=[TouchStatus.SENT], sent_after=day_ago):
            if touch["channel"] == Channel.EMAIL:
                self.rate.count(parse_iso(touch["sent_at"]))
        return found

    def cut_off(self, *, everything: bool = False) -> list[Touch]:
        """Touches whose send was cut off become ``unknown``: the AM decides, they are never re-sent blindly.

        A touch is in flight (``sending``) from the moment the server took its recipient until its answer to
        DATA is recorded: seconds, or SMTP's timeouts at worst. One still in flight ``SEND_LEASE`` later was
        cut off by a process that stopped. ``everything``: at start-up, with the data to this process alone,
        every touch in flight was cut off; with several processes, another one's may still be going.
        """
        stale_before = iso(self.clock.now() - SEND_LEASE)
        found = []
        for touch in self.store.find_touches(statuses=[TouchStatus.SENDING]):
            if not everything and touch.get("claimed_at", "") > stale_before:
                continue
            # only while still in flight: its own process may have recorded the answer meanwhile
            unknown = self.store.claim_touch(touch["id"], TouchStatus.SENDING, TouchStatus.UNKNOWN,
                                             reason=self.ledger.say("reason_cut_off"))  # fmt: skip
            if unknown is not None:
                found.append(unknown)
        for departure_id in {t["departure_id"] for t in found if feeds_plan(t) and t["departure_id"] is not None}:
            self.playbook.replan(departure_id)  # the next nudge follows from one cut off, as from one that went
        return found

    async def ask_about_unknown(self, touches: list[Touch]) -> None:
        for touch in touches:
            if touch["channel"] != Channel.EMAIL or touch["departure_id"] is None:
                continue  # a nudge cut off is not worth asking about
            record = self.store.get_departure(touch["departure_id"])
            if record is not None:
                await self.courier.tell(self.notices.cut_off(touch, record, self.drafts.compose(touch, record)))

    def next_due(self) -> str | None:
        pending = self.store.find_touches(statuses=[TouchStatus.PENDING], limit=1)
        return pending[0]["due_at"] if pending else None

    # -- the run ---------------------------------------------------------------------------
    async def run_due(self) -> list[Settled]:
        """Settle every touch due now. Raises the store's error (StoreError, OSError) when it is away."""
        self.courier.settle_owed()  # what went while the store was away is recorded before anything else
        now = self.clock.now()
        settled: list[Settled] = []
        if self.store.shared:
            # another process stopped mid-send (or this one, before its restart): its AM is asked, as at start-up
            await self.ask_about_unknown(self.cut_off())
        for touch in self.store.find_touches(statuses=[TouchStatus.AWAITING_APPROVAL]):
            if parse_iso(touch["latest_at"]) < now:
                settled.append(self.ledger.end(touch, Outcome.SKIPPED, self.ledger.say("reason_draft_expired")))
        # what changes the figures (a save attempt's lapse) before what reports them (the digest): both
        # may fall due at the first working morning of a month
        due = deque(sorted(self.store.find_touches(statuses=[TouchStatus.PENDING], due_before=iso(now)),
                           key=_reporting_order))  # fmt: skip

        stopped: list[Exception] = []

        async def work(lane: Lane) -> None:
            while due and not stopped:
                try:
                    done = await self._dispatch(due.popleft(), lane)
                except Exception as err:  # noqa: BLE001 - raised below, once every lane has settled its own
                    stopped.append(err)
                    return
                if done is not None:
                    settled.append(done)

        try:
            await asyncio.gather(*(work(lane) for lane in self.courier.lanes for _ in range(WORKERS_PER_LANE)))
        finally:
            await self.courier.close_lanes()
        if stopped:
            raise stopped[0]
        self.courier.settle_owed()  # the last sends of the batch: no mark came after them
        self.last_tick_at = time.monotonic()
        return settled

    async def run_until(self, target: datetime) -> AsyncIterator[list[Settled]]:
        """Move a ManualClock from one due time to the next up to ``target``: each batch goes at its own time.

        Every ``TOP_UP_EVERY`` on the way, the plans are topped up (greetings roll forward), as the
        daily top-up of ``sendoff run`` would.
        """
        if not isinstance(self.clock, ManualClock):
            raise TypeError("only a manual clock can be moved")
        yield await self.run_due()
        if self._topped_at is None:
            self._topped_at = self.clock.now()  # start-up planned everything (the console, sendoff run)
        while True:
            topped = self._topped_at
            upcoming = self.next_due()
            due = parse_iso(upcoming) if upcoming is not None else None
            top_up = topped + TOP_UP_EVERY
            if (due is None or due > target) and top_up > target:
                break
            self.clock.set(max(self.clock.now(), due if due is not None and due <= top_up else top_up))
            if self.clock.now() >= top_up:
                self.playbook.plan_all()
                self._topped_at = self.clock.now()
            yield await self.run_due()
        self.clock.set(max(self.clock.now(), target))
        yield await self.run_due()

    async def _dispatch(self, touch: Touch, lane: Lane) -> Settled | None:
        """How ``touch`` settled in this run; None when nothing changed that is worth reporting (held still)."""
        now = self.clock.now()
        record = self.store.get_departure(touch["departure_id"]) if touch["departure_id"] is not None else None
        if touch["payload"].get("lapse") and record is not None:
            # the save attempt ends now, even if telling the AM is late or waits for their working hours
            record = self.lifecycle.lapse_save(record)
        if parse_iso(touch["latest_at"]) < now:
            return self._settle(touch, lambda: self.ledger.missed(touch))
        hold = self.holds.reason(touch, record)
        if hold in LIFTS:
            why = self.holds.say(hold)
            again = touch.get("deferred") == why  # held for this already: the AM knows
            held = self.ledger.hold(touch, why)
            # the AM is not told of each held email: the payment's own nudges say that emails wait for it
            return None if held.outcome is Outcome.HELD and again else held
        if hold is not None:
            return self.ledger.end(touch, Outcome.CANCELLED, self.holds.say(hold))
        if touch["channel"] == Channel.EMAIL:
            if record is not None and self.approvals.asks_first(touch):
                return await self.approvals.ask(touch, record)  # the exit note: the AM's yes first, at once
            pause = self.pacing.email_pause(now) or self.pacing.send_time_pause(touch, now)
            if pause is not None:
                return self.ledger.defer(touch, pause)
            if record is not None and self.approvals.needed(record, touch):
                return await self.approvals.ask(touch, record)
            # today's cap was checked above with no wait since: the slot is taken now, before the send waits
            # for its lane, the server and the disk, so that the emails in flight on the other lanes count
            self.rate.count(now)
            went = False
            try:
                settled = await self.courier.claim_and_send(touch, record, TouchStatus.PENDING, lane=lane)
                went = settled.outcome is Outcome.SENT
            finally:
                if not went:  # held, refused, or the store away before DATA (a batch's send raises only then)
                    self.rate.give_back(now)
            return settled
        else:
            if touch["recipient"] == CHANNEL:
                waiting = self.pacing.hours_pause(touch["zone"], now)
            else:
                waiting = await self.pacing.person_pause(touch, now)
            if waiting is not None:
                return self.ledger.defer(touch, waiting)
        if not feeds_plan(touch) or touch["departure_id"] is None:
            return await self.courier.claim_and_send(touch, record, TouchStatus.PENDING, lane=lane)
        # A send takes writes of its own and waits for Slack: the plan is noted as lapsed first, so that the
        # next plan_all makes it if this process stops before it is made again here. Made again whatever
        # became of the send (a plan made meanwhile, by an answer, may have counted it as gone).
        self.playbook.lapse(touch["departure_id"])
        sent = await self.courier.claim_and_send(touch, record, TouchStatus.PENDING, lane=lane)
        self.playbook.replan(touch["departure_id"])
        return sent

    def _settle(self, touch: Touch, settle: Callable[[], Settled]) -> Settled:
        """``settle`` ``touch`` at once (skip, cancel); a nudge's departure is planned again in the same write,
        as its next nudge follows from what became of it."""
        if not feeds_plan(touch) or touch["departure_id"] is None:
            return settle()
        with self.store.batch():
            settled = settle()
            self.playbook.replan(touch["departure_id"])
        return settled

    # -- a draft's buttons -------------------------------------------------------------------
    async def approve(self, touch_id: int, actor: str, override: tuple[str, str] | None = None) -> Settled:
        """The AM pressed Send (or sent an edit): the draft, or a touch left ``unknown``, goes now."""
        return await self.approvals.approve(touch_id, actor, override)

    def decline(self, touch_id: int, actor: str) -> Settled:
        return self._settle(self.approvals.approval_touch(touch_id, actor),
                            lambda: self.approvals.decline(touch_id, actor))  # fmt: skip

    def always_ask(self, touch_id: int, actor: str) -> Departure:
        return self.approvals.always_ask(touch_id, actor)

    def approval_touch(self, touch_id: int, actor: str) -> Touch:
        """The touch behind a draft's buttons, if ``actor`` may act on it; LookupError or DepartureError."""
        return self.approvals.approval_touch(touch_id, actor)

    def draft(self, touch_id: int) -> Message:
        return self.approvals.draft(touch_id)

    def win_back_draft(self, record: Departure) -> Message:
        """A win-back email for the AM to send from their own mailbox (replies reach them directly)."""
        return self.approvals.win_back_draft(record)


def _reporting_order(touch: Touch) -> int:
    if touch["payload"].get("lapse"):
        return 0
    return 2 if touch["kind"] is TouchKind.DIGEST else 1
