"""The cadence (cadence.toml): when the bot reaches out, and how often it reminds the team."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from prompts.errors import PromptError


@dataclass(frozen=True)
class Nudging:
    """How every open item is nudged, so that each nudge ends.

    To the item's owner on its day, then after each of ``then`` more working days; then once to the team
    channel ``escalate_after`` working days after the last; then never again. Items without a day of their
    own start ``first[why]`` working days after what started them (an unfinished interview's last answer,
    "not yet" confirmed, "not signed"). A save attempt with no outcome ``save_lapse_after`` working days
    after its deadline is recorded as leaving: "save lapsed".
    """

    then: tuple[int, ...] = (3, 7)
    escalate_after: int = 3
    first: dict[str, int] = field(default_factory=lambda: {"unfinished": 1, "unconfirmed": 2, "unsigned": 2})
    save_lapse_after: int = 5

    @property
    def most(self) -> int:
        """How many nudges an item's owner gets at most."""
        return 1 + len(self.then)


@dataclass(frozen=True)
class Holiday:
    """A greeting's holiday, by what it is: a stable ``id`` and the names it has in the calendars.

    ``names``: exactly as the holidays library spells them in English (language "en_US"), in any
    country's calendar; the first is the one shown where only ``fixed`` places it. ``fixed``: the month
    and day it is greeted on where the country's calendar does not name it (New Year), else None.
    """

    id: str
    names: tuple[str, ...]
    fixed: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        return self.names[0]


# The default cadence, whose holidays a company's own file may greet by id without defining them.
DEFAULT_FILE = Path(__file__).with_name("cadence.toml")
# The most greetings are planned ahead: a year, topped up as time passes.
GREETING_HORIZON_MAX = 366


@dataclass(frozen=True)
class Cadence:
    check_in_days: tuple[int, ...] = (30, 90, 180)
    check_in_grace_days: int = 14
    # reason option id -> extra check-ins: "fiscal_year" or "+<n>m" (months)
    check_ins_by_reason: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fiscal_year_start: str = "01-01"
    fiscal_year_by_country: dict[str, str] = field(default_factory=dict)
    # greetings by holiday id (see ``holidays``): every client's, and those of clients in a country (ISO code)
    greetings: tuple[str, ...] = ("new_year", "christmas")
    greetings_by_country: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"US": ("thanksgiving",)})
    holidays: dict[str, Holiday] = field(default_factory=lambda: default_holidays())
    # no greeting sooner than this many days after the departure's end
    greeting_after_end_days: int = 21
    # greetings are planned at most this many days ahead (at most GREETING_HORIZON_MAX)
    greeting_horizon_days: int = 365
    win_back_days: int = 365
    nudging: Nudging = Nudging()
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)

    def greetings_of(self, country: str | None) -> tuple[Holiday, ...]:
        """The holidays a client in ``country`` is greeted for, each once."""
        ids = dict.fromkeys((*self.greetings, *self.greetings_by_country.get(country or "", ())))
        return tuple(self.holidays[i] for i in ids)

    def fiscal_year_of(self, country: str | None) -> tuple[int, int]:
        month, day = self.fiscal_year_by_country.get(country or "", self.fiscal_year_start).split("-")
        return int(month), int(day)


@lru_cache(maxsize=1)
def _defaults() -> Cadence:
    with DEFAULT_FILE.open("rb") as file:
        return load_cadence(DEFAULT_FILE, tomllib.load(file))


def default_holidays() -> dict[str, Holiday]:
    """The holidays the default cadence.toml defines, by id."""
    return dict(_defaults().holidays)


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
    holidays = {} if path.resolve() == DEFAULT_FILE.resolve() else default_holidays()
    defined = greetings.get("holidays", {})
    if not isinstance(defined, dict):
        raise fail("greetings.holidays", "must be a table of holidays by id")
    for holiday_id, table in defined.items():
        where = f"greetings.holidays.{holiday_id}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", holiday_id):
            raise fail(where, "an id is lower-case letters, digits and _, such as new_year")
        if not isinstance(table, dict) or not table.get("names"):
            raise fail(where, 'needs names = ["...", ...]: the names of the holiday in the calendars')
        fixed = table.get("date")
        if fixed is not None and not _real_day(month_day(fixed, where)):
            raise fail(where, f"date {fixed!r} is not a day of the year")
        holidays[holiday_id] = Holiday(holiday_id, names(table["names"], where),
                                       None if fixed is None else _month_day(month_day(fixed, where)))  # fmt: skip
    by_name = {name: h.id for h in holidays.values() for name in h.names}

    def greeted(value: Any, where: str) -> tuple[str, ...]:
        """Holiday ids; a holiday's name (as older files gave them) stands for its id."""
        ids = []
        for entry in names(value, where):
            holiday_id = entry if entry in holidays else by_name.get(entry)
            if holiday_id is None:
                known = ", ".join(sorted(holidays))
                raise fail(where, f"{entry!r} is no holiday id; define it under [greetings.holidays.{entry}] "
                                  f"or use one of: {known}")  # fmt: skip
            ids.append(holiday_id)
        return tuple(ids)

    # without the key, New Year only (as before holiday ids)
    everywhere = greeted(greetings.get("everywhere", ["new_year"]), "greetings.everywhere")
    if greetings.get("everywhere") and all(e not in holidays for e in greetings["everywhere"]):
        # a file from before holiday ids (names only) greeted New Year everywhere without saying so
        everywhere = tuple(dict.fromkeys(("new_year", *everywhere)))
    if "reminders" in data:
        raise fail("reminders", "is replaced by [nudges], where every nudge ends: copy that table from the "
                                "default cadence.toml")  # fmt: skip
    nudges = data.get("nudges", {})
    then = nudges.get("then", [3, 7])
    if (not isinstance(then, list) or len(then) > 5
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in then)):  # fmt: skip
        raise fail("nudges", f"then must be a list of at most 5 positive whole numbers, not {then!r}")
    nudging = Nudging(
        then=tuple(then),
        escalate_after=number(nudges, "escalate_after", "nudges", 3, 1),
        first={why: number(nudges, why, "nudges", default, 1) for why, default in Nudging().first.items()},
        save_lapse_after=number(nudges, "save_lapse_after", "nudges", 5, 1),
    )

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
        greetings=everywhere,
        greetings_by_country={
            c.upper(): greeted(v, f"greetings.by_country.{c}") for c, v in greetings.get("by_country", {}).items()
        },  # fmt: skip
        holidays=holidays,
        greeting_after_end_days=number(greetings, "after_end_days", "greetings", 21),
        # older files planned two years ahead: now a year at most, topped up as time passes
        greeting_horizon_days=min(number(greetings, "horizon_days", "greetings", 365, 1), GREETING_HORIZON_MAX),
        win_back_days=number(data.get("win_back", {}), "days", "win_back", 365, 1),
        nudging=nudging,
        work_start=start,
        work_end=end,
    )


def _month_day(value: str) -> tuple[int, int]:
    month, day = value.split("-")
    return int(month), int(day)


def _real_day(value: str) -> bool:
    try:
        date(2024, *_month_day(value))  # a leap year: 02-29 is a day
    except ValueError:
        return False
    return True
