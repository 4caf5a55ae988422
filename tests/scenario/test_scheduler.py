"""APScheduler wakes the dispatcher at the next due time, on the running loop; storage stays the truth."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.app import build_core
from bot.clock import SystemClock
from bot.playbook import CHANNEL, new_touch
from bot.scheduler import Waker


async def test_the_waker_sends_a_touch_when_it_falls_due_and_recovers_an_interrupted_send(settings):
    core = build_core(settings, clock=SystemClock())
    delivered: list[str] = []
    arrived = asyncio.Event()

    async def notice(n):
        delivered.append(n.touch["key"])
        arrived.set()

    core.dispatcher.notify = notice
    now = datetime.now(UTC)
    soon = core.store.put_touch(new_touch("digest:soon", None, "digest", "team", CHANNEL, now + timedelta(seconds=0.3),
                                          now + timedelta(days=1), "UTC", {"month": "2026-11"}))  # fmt: skip
    cut_off = core.store.put_touch(new_touch("digest:cut", None, "digest", "team", CHANNEL, now - timedelta(hours=1),
                                             now + timedelta(days=1), "UTC", {"month": "2026-10"}))  # fmt: skip
    core.store.claim_touch(cut_off["id"], "pending", "sending")  # as if the bot died mid-send
    waker = Waker(core.dispatcher, core.playbook)
    try:
        await waker.start()
        assert delivered == []  # not due yet: nothing went at start
        await asyncio.wait_for(arrived.wait(), timeout=5)
        await asyncio.sleep(0.05)
        assert delivered == ["digest:soon"]
        assert core.store.get_touch(soon["id"])["status"] == "sent"
        assert core.store.get_touch(cut_off["id"])["status"] == "unknown"
        # planning moves the wake: the next digest (planned at start) is the next job
        wake = waker.scheduler.get_job("wake")
        assert wake is not None and wake.next_run_time > datetime.now(UTC)
    finally:
        await waker.stop()
        core.close()
