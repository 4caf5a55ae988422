"""APScheduler wakes the dispatcher when the bot's clock says a touch is due; storage stays the truth.

The bot's clock here starts at a fixed date (far from the system's) and runs at the
loop's pace, so the touch falls due a moment after start whatever day the test runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.app import build_core
from bot.clock import LoopClock, parse_iso
from bot.playbook import new_touch
from bot.scheduler import Waker
from storage.records import CHANNEL, Channel, TouchKind, TouchStatus
from tests.fakes.notifier import RecordingNotifier

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday, inside working hours in Europe/Berlin
DUE_IN = timedelta(seconds=0.3)


def digest(key: str, due: datetime, month: str):
    return new_touch(key, None, TouchKind.DIGEST, Channel.TEAM, CHANNEL, due, due + timedelta(days=1), "UTC",
                     {"month": month})  # fmt: skip


async def test_the_waker_sends_a_touch_when_it_falls_due_and_recovers_an_interrupted_send(settings):
    clock = LoopClock(START)
    notifier = RecordingNotifier()
    core = build_core(settings, notifier, clock=clock)
    soon = core.store.put_touch(digest("digest:soon", clock.now() + DUE_IN, "2026-11"))
    cut_off = core.store.put_touch(digest("digest:cut", clock.now() - timedelta(hours=1), "2026-10"))
    core.store.claim_touch(cut_off["id"], TouchStatus.PENDING, TouchStatus.SENDING)  # as if the bot died mid-send
    waker = Waker(core.dispatcher, core.playbook)
    try:
        await waker.start()
        assert notifier.touch_keys() == []  # not due yet: nothing went at start
        assert core.store.get_touch(cut_off["id"])["status"] == TouchStatus.UNKNOWN
        first_wake = waker.scheduler.get_job("wake").next_run_time

        while "digest:soon" not in notifier.touch_keys():
            notifier.arrived.clear()
            await asyncio.wait_for(notifier.arrived.wait(), timeout=5)
        await waker.run()  # one run at a time: this waits for the one that sent, and finds nothing more due
        assert notifier.touch_keys() == ["digest:soon"]
        sent = core.store.get_touch(soon["id"])
        assert sent["status"] == TouchStatus.SENT
        assert parse_iso(sent["sent_at"]) >= parse_iso(soon["due_at"])  # due by the bot's clock, not before
        assert core.store.get_touch(cut_off["id"])["status"] == TouchStatus.UNKNOWN  # never re-sent on its own

        # The wake moved on to the next touch (the digest planned at start). APScheduler keeps the
        # system's dates, so compare gaps: the wakes lie as far apart as the touches on the bot's clock.
        upcoming = core.dispatcher.next_due()
        assert upcoming is not None and parse_iso(upcoming) > clock.now()
        second_wake = waker.scheduler.get_job("wake").next_run_time
        gap = (second_wake - first_wake) - (parse_iso(upcoming) - parse_iso(soon["due_at"]))
        assert abs(gap) < timedelta(seconds=1)
    finally:
        await waker.stop()
        core.close()
