"""One injectable source of "now", always timezone-aware UTC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
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


class ClockFileError(Exception):
    """The saved clock cannot be read; the file is left as it was found."""


def read_saved_clock(path: Path) -> datetime | None:
    """Where a console's saved clock stands, without moving or writing it (``sendoff report``, ``preview``)."""
    try:
        return parse_iso(json.loads(path.read_text(encoding="utf-8"))["now"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class SavedClock(ManualClock):
    """The console's clock: moved by /advance, kept in a file beside the data, never moving backwards.

    It starts where it was left, or at the wall clock if that is later, so
    what was planned from a moved clock still holds after a restart or a kill.
    Every move is written atomically (temp file, fsync, rename) before it counts.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        saved = self._read()
        wall = parse_iso(iso(datetime.now(UTC)))  # to the millisecond, as it is kept
        super().__init__(max(saved, wall) if saved is not None else wall)
        self._write(self.now())

    def _read(self) -> datetime | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ClockFileError(f"{self.path}: {err}") from err
        try:
            moment = parse_iso(json.loads(text)["now"])
        except (ValueError, KeyError, TypeError) as err:
            raise ClockFileError(f"{self.path} is damaged ({err}); it was left as it is: "
                                 "fix it or move it away to start the clock at today's date") from None  # fmt: skip
        return moment

    def _write(self, moment: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(json.dumps({"now": iso(moment)}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        moment = parse_iso(iso(moment))  # to the millisecond, as it is kept
        if moment < self.now():
            raise ValueError("the clock never moves backwards")
        self._write(moment)
        super().set(moment)

    def advance(self, delta: timedelta) -> datetime:
        self.set(self.now() + delta)
        return self.now()


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


def clock_path(db_path: Path) -> Path:
    """Where the console keeps its clock: beside the data."""
    return db_path.with_name(db_path.name + ".clock")


def data_clock(db_path: Path) -> Clock:
    """The clock of the data at ``db_path`` for a command that only reads it: the console's saved clock where
    it is ahead of the wall clock (a rehearsed year), else the system's. It is never moved or written."""
    saved = read_saved_clock(clock_path(db_path))
    return ManualClock(saved) if saved is not None and saved > SystemClock().now() else SystemClock()
