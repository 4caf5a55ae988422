"""Sending: a touch goes out (an email through a lane, a nudge through the notifier), at most once.

An email is marked in flight (``sending``) only once the SMTP server has accepted its recipient, right
before the message itself goes (DATA). The mark is a durable claim from the status the touch was found in:
a touch sent or cancelled meanwhile (by another process, an opt-out) does not go, and a crash before the
mark leaves the touch as it was, to go at the next run. A crash after it leaves it in ``sending``, for the AM
to decide about (``unknown``), never re-sent blindly. A nudge is claimed before it is delivered: Slack has
no such step to wait for.

A temporary refusal (a 4xx, a lost or refused connection) is tried again 5 minutes later, then after
doubling waits of at most an hour, for 24 hours from the first; then the touch fails, saying that the
refusals were temporary. A permanent one (a 5xx) fails it at once. Either way the AM hears of a client email.

Each lane (an SMTP connection) carries one send at a time. A run of the dispatcher keeps one worker per lane;
an email the AM approves goes through a lane of its own, the express lane, so that it never waits for a batch.

What already happened outside (an email went) is written to the store even when the store is away at that
moment: the write is owed, and made first at the next run. In a batch, that an email went is written with
the next mark or at the end of the run, and marks due at about the same moment go together (``Marks``): a
durable write costs more than the rest of a send. A crash meanwhile leaves the email in flight, for the AM
to decide about, never sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from bot.clock import Clock, iso, parse_iso
from bot.drafts import Drafts
from bot.mailer import NotCommitted, Sender, SendError
from bot.notices import Notices
from bot.notify import Notice, Notifier
from bot.pacing import RateCap
from bot.playbook import Playbook
from bot.settling import Ledger, Outcome, Settled
from storage import Store
from storage.records import Channel, Departure, Touch, TouchKind, TouchStatus

log = logging.getLogger("sendoff")

FIRST_RETRY = timedelta(minutes=5)  # then doubled, up to LONGEST_WAIT
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)  # of temporary refusals, counted from the first
# The longest a mark waits for the marks of other lanes, to go in one durable write with them.
MARK_WAIT = timedelta(milliseconds=5)


def retry_at(since: datetime, now: datetime) -> datetime | None:
    """When a touch refused for now, first at ``since``, is tried again; None once it has been refused long enough.

    Each wait is as long as the refusals have lasted (plus the first wait): 5, 10, 20, 40 minutes, then hourly.
    """
    end = since + GIVE_UP_AFTER
    if now >= end:
        return None
    return min(now + min(now - since + FIRST_RETRY, LONGEST_WAIT), end)


@dataclass(eq=False)
class Lane:
    """A sender with the lock that keeps it to one send at a time: an SMTP connection carries one message."""

    sender: Sender
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def close(self) -> None:
        async with self.lock:  # a send in flight on it finishes first
            await self.sender.close()


@dataclass(eq=False)
class _Mark:
    touch_id: int
    expected: TouchStatus
    attempts: int
    claimed_at: str
    done: asyncio.Future[Touch | None]


class Marks:
    """The marks in flight, written together (group commit).

    A mark must be durable before DATA, and a durable write (an fsync, a database commit) can cost more than
    the round trip in which another lane's server takes its recipient too. So a mark waits for the marks of
    the other sends that are between MAIL and their own mark (``expect``), for at most as long as the last
    write took (and never over ``MARK_WAIT``), and they go in one write, with the writes owed to the store.
    A send alone, or the only one due to mark, is written at once.
    """

    def __init__(self, store: Store, owed: deque[Callable[[], None]]) -> None:
        self.store = store
        self.owed = owed
        self._expected: set[int] = set()  # tickets of the sends that may ask for a mark soon
        self._queued: list[_Mark] = []
        self._tickets = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0  # seconds
        self._syncing: set[asyncio.Task[None]] = set()  # writes waiting for the disk (a reference keeps each)

    def expect(self) -> int:
        """A send holds its lane and starts its envelope: its mark may come soon."""
        self._tickets += 1
        self._expected.add(self._tickets)
        return self._tickets

    def forget(self, ticket: int) -> None:
        """The send is over (marked or not): nobody waits for its mark any more."""
        if ticket in self._expected:
            self._expected.discard(ticket)
            self._write_when_due()

    async def mark(self, ticket: int, touch_id: int, expected: TouchStatus, *, attempts: int,
                   claimed_at: str) -> Touch | None:  # fmt: skip
        """The touch moved from ``expected`` to ``sending``, durably; None when it was no longer in ``expected``.

        ``claimed_at`` tells a send in flight from one cut off (bot/dispatcher.py, ``Dispatcher.cut_off``)."""
        done: asyncio.Future[Touch | None] = asyncio.get_running_loop().create_future()
        self._expected.discard(ticket)
        self._queued.append(_Mark(touch_id, expected, attempts, claimed_at, done))
        self._write_when_due()
        return await done

    def _write_when_due(self) -> None:
        if not self._queued:
            return
        if not self._expected:
            self._write()  # no other mark is coming: waiting would gain nothing
        elif self._timer is None:
            wait = min(self._last_write, MARK_WAIT.total_seconds())
            self._timer = asyncio.get_running_loop().call_later(wait, self._write)

    def _write(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queued = [m for m in self._queued if not m.done.cancelled()]  # a send cancelled meanwhile is not marked
        self._queued = []
        if not queued:
            return
        owed = [self.owed.popleft() for _ in range(len(self.owed))]
        started = time.monotonic()
        claimed: list[Touch | None] = []
        try:
            # durable before DATA, but the disk's time is not the event loop's: the other lanes go on meanwhile
            with self.store.batch_durable_later():
                for write in owed:
                    write()
                claimed = [self.store.claim_touch(m.touch_id, m.expected, TouchStatus.SENDING, attempts=m.attempts,
                                                 claimed_at=m.claimed_at) for m in queued]  # fmt: skip
        except Exception as err:  # noqa: BLE001 - each waiting send raises it (the store is away)
            # a failed batch left nothing; a failure once it was written (a compaction starting) left the claims
            self._failed(queued, owed, err, claimed)
            self._last_write = time.monotonic() - started
            return
        task = asyncio.get_running_loop().create_task(self._resolve(queued, owed, claimed, started))
        self._syncing.add(task)
        task.add_done_callback(self._syncing.discard)

    async def _resolve(self, queued: list[_Mark], owed: list[Callable[[], None]], claimed: list[Touch | None],
                       started: float) -> None:  # fmt: skip
        try:
            await self.store.durable()
        except Exception as err:  # noqa: BLE001 - as above
            self._failed(queued, owed, err, claimed)
            return
        finally:
            self._last_write = time.monotonic() - started
        for m, touch in zip(queued, claimed, strict=True):
            if not m.done.done():
                m.done.set_result(touch)

    def _failed(self, queued: list[_Mark], owed: list[Callable[[], None]], err: Exception,
                claimed: list[Touch | None]) -> None:  # fmt: skip
        """Each waiting send raises ``err``; what was owed to the store stays owed (writing it again is harmless).

        No DATA went: each touch ``claimed`` goes back to the status it was claimed from, so that the next run
        takes it again (the store may be away for these writes too: then it is cut off at the next start)."""
        self.owed.extendleft(reversed(owed))
        for m in queued:
            if not m.done.done():
                m.done.set_exception(err)
        with contextlib.suppress(Exception):
            for m, touch in zip(queued, claimed, strict=False):
                if touch is not None:
                    self.store.claim_touch(m.touch_id, TouchStatus.SENDING, m.expected, attempts=m.attempts - 1)


@dataclass
class Courier:
    """``senders``: one lane each (SMTP connections, or the outbox); the express lane is a twin of the first."""

    store: Store
    clock: Clock
    notifier: Notifier
    senders: list[Sender]
    rate: RateCap
    drafts: Drafts
    notices: Notices
    playbook: Playbook
    ledger: Ledger
    lanes: list[Lane] = field(init=False)
    express: Lane = field(init=False)
    # Writes of what happened outside (an email went) that the store could not take yet, oldest first.
    owed: deque[Callable[[], None]] = field(init=False, default_factory=deque)
    # When the temporary refusals of each touch being retried began, beside the touch's own ``failing_since``:
    # re-planning a departure writes its pending touches afresh, and must not start their 24 hours over.
    failing: dict[int, datetime] = field(init=False, default_factory=dict)

    marks: Marks = field(init=False)

    def __post_init__(self) -> None:
        self.lanes = [Lane(sender) for sender in self.senders]
        self.express = Lane(self.senders[0].twin())
        self.marks = Marks(self.store, self.owed)

    async def claim_and_send(self, touch: Touch, record: Departure | None, expected: TouchStatus,
                             override: tuple[str, str] | None = None, lane: Lane | None = None) -> Settled:  # fmt: skip
        """Send ``touch``, found in ``expected``; ``lane``: a batch's, else (an approval) the express lane.

        Raises StoreError or OSError when the store is away: what went is owed to it (``settle_owed``).
        """
        if touch["channel"] == Channel.EMAIL and record is not None:
            return await self._send_email(touch, record, expected, override, lane)
        claimed = self.store.claim_touch(touch["id"], expected, TouchStatus.SENDING, attempts=touch["attempts"] + 1,
                                         claimed_at=iso(self.clock.now()))  # fmt: skip
        if claimed is None:
            return self.ledger.claimed_elsewhere(touch)
        try:
            detail = await self._deliver(claimed, record)
        except SendError as err:
            return await self._failed(claimed, TouchStatus.SENDING, record, err)
        return self._sent(claimed, record, detail)

    async def _send_email(self, touch: Touch, record: Departure, expected: TouchStatus,
                          override: tuple[str, str] | None, lane: Lane | None) -> Settled:  # fmt: skip
        await self.rate.pace()
        moment = self.clock.now()  # the email's Date, and when the exit note's form link is issued
        # composed before a lane is taken: the connection is not held while the templates render
        message = self.drafts.compose(touch, record, override, at=moment)
        marked: list[Touch] = []
        chosen = lane or self.express
        try:
            async with chosen.lock:
                ticket = self.marks.expect()

                async def commit() -> bool:
                    claimed = await self.marks.mark(ticket, touch["id"], expected, attempts=touch["attempts"] + 1,
                                                    claimed_at=iso(self.clock.now()))  # fmt: skip
                    if claimed is not None:
                        marked.append(claimed)
                    return claimed is not None

                try:
                    detail = await chosen.sender.send(message, commit)
                finally:
                    self.marks.forget(ticket)
                    if lane is None:
                        await chosen.sender.close()  # an approval's own connection is not held open idle
        except NotCommitted:
            return self.ledger.claimed_elsewhere(touch)
        except SendError as err:
            if marked:
                return await self._failed(marked[0], TouchStatus.SENDING, record, err)
            return await self._failed(touch, expected, record, err, counted=False)
        if not marked:
            raise RuntimeError(f"{type(chosen.sender).__name__} sent without marking the touch in flight")
        if lane is None:
            self.rate.count(self.clock.now())  # a batch's send took its slot before it began (bot/dispatcher.py)
        return self._sent(marked[0], record, detail, moment if touch["kind"] is TouchKind.EXIT_NOTE else None,
                          later=lane is not None)  # fmt: skip

    async def _deliver(self, touch: Touch, record: Departure | None) -> str:
        if touch["channel"] == Channel.EMAIL:
            # holds cancel an email whose departure is gone before it is claimed
            raise SendError(self.ledger.say("hold_forgotten"), permanent=True)
        try:
            await self.notifier.deliver(self.notices.team_notice(touch, record))
        except OSError as err:
            # Slack out of reach, told apart from the store being away (which pauses the whole run)
            raise SendError(str(err) or type(err).__name__, permanent=False) from None
        return self.ledger.say("reason_delivered")

    def _sent(self, claimed: Touch, record: Departure | None, detail: str, exit_note_at: datetime | None = None,
              *, later: bool = False) -> Settled:  # fmt: skip
        """``later``: in a batch, written with the next mark or at the end of the run (``settle_owed``)."""
        claimed["status"] = TouchStatus.SENT
        claimed["sent_at"] = iso(self.clock.now())
        claimed["detail"] = detail
        waited = claimed.pop("deferred", None)  # what it waited for (a hold, the daily cap) is over
        if waited:
            claimed["waited"] = waited  # kept: why it went later than planned
        claimed.pop("reason", None)
        cast(dict[str, Any], claimed).pop("failing_since", None)
        self.failing.pop(claimed["id"], None)
        writes = [lambda: self.store.save_touch(claimed)]
        if exit_note_at is not None and record is not None:
            writes.append(lambda: self._exit_note_went(record, exit_note_at))
        self.owed.extend(writes)
        if not later:
            self.settle_owed()
        self._after_sent(claimed)
        return Settled(claimed, Outcome.SENT, detail)

    def _exit_note_went(self, record: Departure, moment: datetime) -> None:
        """The departure remembers when its exit note went: its form link was issued then (it lives 30 days)."""
        fresh = self.store.get_departure(record["id"]) or record
        fresh["exit_note_sent_at"] = record["exit_note_sent_at"] = iso(moment)
        self.store.save_departure(fresh)

    def _after_sent(self, touch: Touch) -> None:
        """The digest comes monthly: the next is planned once one went. (What follows a nudge is planned by the
        dispatcher, whatever became of it: bot/dispatcher.py.)"""
        if touch["kind"] == TouchKind.DIGEST:
            self.playbook.plan_digest()

    async def _failed(self, touch: Touch, held: TouchStatus, record: Departure | None, err: SendError, *,
                      counted: bool = True) -> Settled:  # fmt: skip
        """``held``: the status ``touch`` is in now (``sending`` once marked); ``counted``: the mark counted
        this attempt already."""
        now = self.clock.now()
        attempts = touch["attempts"] + (0 if counted else 1)
        if err.permanent:
            reason = str(err)
        else:
            since = _failing_since(touch) or self.failing.get(touch["id"]) or now
            again = retry_at(since, now)
            if again is not None:
                self.failing[touch["id"]] = since
                retried = self._record(touch, held, TouchStatus.PENDING, due_at=iso(again), last_error=str(err),
                                       failing_since=iso(since), attempts=attempts)  # fmt: skip
                if retried is None:
                    return self.ledger.claimed_elsewhere(touch)
                return Settled(retried, Outcome.RETRY, str(err))
            reason = self._temporary(str(err), now - since)
        self.failing.pop(touch["id"], None)
        ended = self._record(touch, held, TouchStatus.FAILED, reason=reason, ended_at=iso(now), last_error=str(err),
                             attempts=attempts)  # fmt: skip
        if ended is None:
            return self.ledger.claimed_elsewhere(touch)
        if err.bounced and record is not None:
            # onto the stored departure: the copy read before the send may be older (an AM's edit meanwhile)
            record = self.store.get_departure(record["id"]) or record
            record.setdefault("bounced", []).append(touch["recipient"])
            self.store.save_departure(record)
        if ended["channel"] == Channel.EMAIL and record is not None:
            await self.tell(self.notices.send_failed(ended, record, reason))
        return Settled(ended, Outcome.FAILED, reason)

    def _record(self, touch: Touch, held: TouchStatus, new: TouchStatus, **changes: Any) -> Touch | None:
        """``touch`` moved from ``held`` to ``new``; None if it is no longer in ``held`` (another process has it)."""
        if held is TouchStatus.SENDING:
            # ours since the mark, and something happened outside: the store must hear of it, now or later
            updated = cast(Touch, {**touch, **changes, "status": new})
            self.owed.append(lambda: self.store.save_touch(updated))
            self.settle_owed()
            return updated
        return self.store.claim_touch(touch["id"], held, new, **changes)

    def _temporary(self, error: str, lasted: timedelta) -> str:
        hours = max(round(lasted / timedelta(hours=1)), 1)
        return self.ledger.say("smtp_temporary", error=error, hours=hours)

    def settle_owed(self) -> None:
        """Make the writes owed to the store, in order, as one; StoreError (or OSError) if it cannot take them."""
        owed = list(self.owed)
        if not owed:
            return
        with self.store.batch():
            for write in owed:
                write()
        for _ in owed:
            self.owed.popleft()

    async def tell(self, notice: Notice) -> None:
        """A notice about a touch, which must not stop the run when the transport fails."""
        try:
            await self.notifier.deliver(notice)
        except Exception as err:  # noqa: BLE001 - a failed notice must not stop the other touches
            log.warning("could not deliver a notice to %s: %s", notice.recipient, err)

    async def close_lanes(self) -> None:
        """After a batch of emails: its connections were reused, and must not be held idle."""
        for lane in self.lanes:
            await lane.close()


def _failing_since(touch: Touch) -> datetime | None:
    """When the temporary refusals of ``touch`` began, if it is being retried for them."""
    since = cast(Mapping[str, Any], touch).get("failing_since")
    return parse_iso(since) if isinstance(since, str) else None
