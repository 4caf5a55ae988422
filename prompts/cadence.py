"""The cadence (cadence.toml): when the bot reaches out, and how often it reminds the team."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from prompts.errors import PromptError


@dataclass(frozen=True)
class Repeat:
    """Reminders: ``first`` working days after the trigger, then every ``every``, at most ``times`` (0: no limit)."""

    first: int
    every: int
    times: int

    def allows(self, sent: int) -> bool:
        return self.times == 0 or sent < self.times


@dataclass(frozen=True)
class Cadence:
    check_in_days: tuple[int, ...] = (30, 90, 180)
    check_in_grace_days: int = 14
    # reason option id -> extra check-ins: "fiscal_year" or "+<n>m" (months)
    check_ins_by_reason: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fiscal_year_start: str = "01-01"
    fiscal_year_by_country: dict[str, str] = field(default_factory=dict)
    greetings: tuple[str, ...] = ("Christmas Day",)
    greetings_by_country: dict[str, tuple[str, ...]] = field(default_factory=dict)
    greeting_horizon_days: int = 730
    win_back_days: int = 365
    unfinished: Repeat = Repeat(1, 2, 3)
    unconfirmed: Repeat = Repeat(2, 2, 3)
    unsigned: Repeat = Repeat(2, 2, 0)
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)

    def fiscal_year_of(self, country: str | None) -> tuple[int, int]:
        month, day = self.fiscal_year_by_country.get(country or "", self.fiscal_year_start).split("-")
        return int(month), int(day)


def load_cadence(path: Path, data: dict[str, Any]) -> Cadence:
    """Read and check ``data`` (the parsed ``path``); every mistake names the file and the key."""
    def fail(key: str, why: str) -> PromptError:
        return PromptError(f"{path}: [{key}] {why}")

    def number(table: dict[str, Any], key: str, where: str, default: int, low: int = 0) -> int:
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise fail(where, f"{key} must be a whole number of at least {low}, not {value!r}")
        return value

    def names(value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail(where, f"must be a list of names, not {value!r}")
        return tuple(value)

    def month_day(value: Any, where: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", value):
            raise fail(where, f'must be a month and day like "04-06", not {value!r}')
        return value

    def clock_time(value: Any, where: str) -> time:
        try:
            return time.fromisoformat(value)
        except (TypeError, ValueError):
            raise fail(where, f'must be a time like "09:00", not {value!r}') from None

    check_ins = data.get("check_ins", {})
    days = check_ins.get("days", [30, 90, 180])
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in days):
        raise fail("check_ins", f"days must be a list of positive whole numbers, not {days!r}")
    by_reason = {}
    for reason, extras in check_ins.get("by_reason", {}).items():
        for extra in names(extras, f"check_ins.by_reason.{reason}"):
            if extra != "fiscal_year" and not re.fullmatch(r"\+[1-9]\d?m", extra):
                raise fail(f"check_ins.by_reason.{reason}", f'{extra!r}: use "fiscal_year" or months like "+6m"')
        by_reason[reason] = tuple(extras)
    fiscal = data.get("fiscal_year", {})
    greetings = data.get("greetings", {})
    reminders = data.get("reminders", {})

    def repeat(name: str, default: Repeat) -> Repeat:
        table = reminders.get(name, {})
        where = f"reminders.{name}"
        return Repeat(number(table, "first", where, default.first, 1), number(table, "every", where, default.every, 1),
                      number(table, "times", where, default.times))  # fmt: skip

    hours = data.get("working_hours", {})
    start = clock_time(hours.get("start", "09:00"), "working_hours")
    end = clock_time(hours.get("end", "17:00"), "working_hours")
    if end <= start:
        raise fail("working_hours", "end must come after start")
    return Cadence(
        check_in_days=tuple(days),
        check_in_grace_days=number(check_ins, "grace_days", "check_ins", 14),
        check_ins_by_reason=by_reason,
        fiscal_year_start=month_day(fiscal.get("default", "01-01"), "fiscal_year"),
        fiscal_year_by_country={
            c: month_day(v, f"fiscal_year.by_country.{c}") for c, v in fiscal.get("by_country", {}).items()
        },  # fmt: skip
        greetings=names(greetings.get("everywhere", []), "greetings.everywhere"),
        greetings_by_country={
            c: names(v, f"greetings.by_country.{c}") for c, v in greetings.get("by_country", {}).items()
        },  # fmt: skip
        greeting_horizon_days=number(greetings, "horizon_days", "greetings", 730, 1),
        win_back_days=number(data.get("win_back", {}), "days", "win_back", 365, 1),
        unfinished=repeat("unfinished", Repeat(1, 2, 3)),
        unconfirmed=repeat("unconfirmed", Repeat(2, 2, 3)),
        unsigned=repeat("unsigned", Repeat(2, 2, 0)),
        work_start=start,
        work_end=end,
    )
