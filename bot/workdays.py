"""Working days and "09:00 local", per country and time zone.

Holidays come from the ``holidays`` library (pinned, so dates hold); local
times are computed per occurrence with ``zoneinfo``, so 09:00 stays 09:00
across daylight-saving changes. Nothing here stores an offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.countries import country_time_zones

SEND_AT = time(9, 0)


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> dict[date, str]:
    try:
        return dict(holidays.country_holidays(country, years=year, language="en_US"))
    except (NotImplementedError, KeyError):
        return {}


def holidays_in(country: str | None, year: int) -> dict[date, str]:
    """The public holidays of ``country`` (ISO code) in ``year``; none for an unknown country."""
    return _holidays(country, year) if country else {}


@lru_cache(maxsize=512)
def _named(country: str, year: int) -> tuple[tuple[date, str], ...]:
    """Each holiday of the year by its own name, in date order (the library joins a day's names with "; ")."""
    return tuple((day, plain_name(name)) for day, names in sorted(_holidays(country, year).items())
                 for name in names.split("; "))  # fmt: skip


def plain_name(name: str) -> str:
    """A holiday's name without the library's "(estimated)": an estimated Eid is still Eid. "(observed)" stays."""
    return name.replace(" (estimated)", "").replace(", estimated)", ")")


def holiday_named(country: str | None, year: int, names: Iterable[str]) -> tuple[date, str] | None:
    """The first day of ``year`` that ``country``'s calendar gives one of ``names``, and the name it gives."""
    wanted = frozenset(names)
    for day, name in _named(country, year) if country else ():
        if name in wanted:
            return day, name
    return None


def is_working_day(day: date, country: str | None) -> bool:
    return day.weekday() < 5 and day not in holidays_in(country, day.year)


def working_day_on_or_after(day: date, country: str | None) -> date:
    while not is_working_day(day, country):
        day += timedelta(days=1)
    return day


def working_day_before(day: date, country: str | None) -> date:
    """The last working day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_working_day(day, country):
        day -= timedelta(days=1)
    return day


def add_working_days(day: date, count: int, country: str | None) -> date:
    while count > 0:
        day += timedelta(days=1)
        if is_working_day(day, country):
            count -= 1
    return day


def local_moment(day: date, zone: str, at: time = SEND_AT) -> datetime:
    """``at`` on ``day`` in ``zone``, as UTC."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def end_of_day(day: date, zone: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def zone_for(country: str | None, chosen: str | None, fallback: str) -> str:
    """The time zone to use: the one chosen, else the country's only one, else ``fallback``."""
    if chosen:
        return chosen
    zones = country_time_zones(country or "")
    return zones[0] if len(zones) == 1 else fallback


def within_working_hours(moment: datetime, zone: str, start: time, end: time, country: str | None = None) -> datetime:
    """``moment`` if it falls in working hours on a working day in ``zone``, else the next start of them."""
    local = moment.astimezone(ZoneInfo(zone))
    day = local.date()
    if is_working_day(day, country) and start <= local.time() < end:
        return moment
    if not (is_working_day(day, country) and local.time() < start):
        day = add_working_days(day, 1, country)
    return local_moment(day, zone, start)


def after_working_days(moment: datetime, count: int, zone: str, country: str | None = None) -> datetime:
    """The same local time of day ``count`` working days after ``moment``."""
    local = moment.astimezone(ZoneInfo(zone))
    day = add_working_days(local.date(), count, country)
    return local_moment(day, zone, local.time().replace(tzinfo=None))
