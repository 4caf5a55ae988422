"""One injectable source of "now", always timezone-aware UTC."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told: for tests, and for the console's /advance."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


class LoopClock:
    """From ``start``, at the pace of the event loop's own timer.

    What runs on the loop (APScheduler, ``asyncio.wait_for``) keeps real time,
    while the date is the caller's: tests pick a date that never depends on
    when they run, and still see things fall due as the loop waits.
    """

    def __init__(self, start: datetime, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._start = start.astimezone(UTC)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        if loop is None:
            # Built before the loop runs (a sync fixture): it starts at its first reading on the loop.
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        if loop is not None:
            self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        self._loop, self._t0 = loop, loop.time()
        return loop

    def now(self) -> datetime:
        loop = self._loop or self._bind(asyncio.get_running_loop())
        return self._start + timedelta(seconds=loop.time() - self._t0)


def iso(moment: datetime) -> str:
    """The stored form of a moment: ISO-8601 UTC to the millisecond with a Z, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
