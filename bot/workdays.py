"""Working days and "09:00 local", per country and time zone.

Holidays come from the ``holidays`` library (pinned, so dates hold); local
times are computed per occurrence with ``zoneinfo``, so 09:00 stays 09:00
across daylight-saving changes. Nothing here stores an offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.countries import country_time_zones, zone_country

SEND_AT = time(9, 0)
SATURDAY_SUNDAY = frozenset({5, 6})
# Days nobody is nudged, in any country: Christmas and New Year.
QUIET_DAYS = frozenset({(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)})
# Days a client's office is closed beyond its public holidays, by country: Japan's year-end break.
CLOSED_BY_COUNTRY: dict[str, frozenset[tuple[int, int]]] = {
    "JP": frozenset({(12, 29), (12, 30), (12, 31), (1, 2), (1, 3)}),
}
# Whether a day is one to work on.
WorkingDay = Callable[[date], bool]


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


@lru_cache(maxsize=512)
def _weekend(country: str) -> frozenset[int]:
    """The country's weekend days (Monday 0): Friday and Saturday in Israel, Saturday and Sunday mostly."""
    try:
        return frozenset(holidays.country_holidays(country).weekend)
    except (NotImplementedError, KeyError):
        return SATURDAY_SUNDAY


def is_working_day(day: date, country: str | None) -> bool:
    weekend = _weekend(country) if country else SATURDAY_SUNDAY
    return day.weekday() not in weekend and day not in holidays_in(country, day.year)


def working_day_on_or_after(day: date, country: str | None) -> date:
    while not is_working_day(day, country):
        day += timedelta(days=1)
    return day


def is_client_day(day: date, country: str | None) -> bool:
    """A day an email may land in a client's inbox: a working day of their country, not between Christmas
    Eve and Boxing Day or on New Year's Eve and Day, nor on a day their country's offices close."""
    month_day = (day.month, day.day)
    closed = month_day in QUIET_DAYS or month_day in CLOSED_BY_COUNTRY.get(country or "", frozenset())
    return not closed and is_working_day(day, country)


def client_day_on_or_after(day: date, country: str | None) -> date:
    while not is_client_day(day, country):
        day += timedelta(days=1)
    return day


def client_day_before(day: date, country: str | None) -> date:
    """The last client day strictly before ``day``: a greeting comes before its holiday and the days off."""
    day -= timedelta(days=1)
    while not is_client_day(day, country):
        day -= timedelta(days=1)
    return day


def working_day_before(day: date, country: str | None) -> date:
    """The last working day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_working_day(day, country):
        day -= timedelta(days=1)
    return day


def add_working_days(day: date, count: int, country: str | None) -> date:
    return _next(day, count, lambda d: is_working_day(d, country))


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
    return _within(moment, zone, start, end, lambda day: is_working_day(day, country))


def after_working_days(moment: datetime, count: int, zone: str, country: str | None = None) -> datetime:
    """The same local time of day ``count`` working days after ``moment``."""
    return _after(moment, count, zone, lambda day: is_working_day(day, country))


# -- the team's days: nudges and the digest ----------------------------------------------------
def is_team_day(day: date, zone: str) -> bool:
    """A day to nudge a person in ``zone``: a working day of the zone's country, and not a quiet day."""
    return (day.month, day.day) not in QUIET_DAYS and is_working_day(day, zone_country(zone))


def team_day_on_or_after(day: date, zone: str) -> date:
    while not is_team_day(day, zone):
        day += timedelta(days=1)
    return day


def within_team_hours(moment: datetime, zone: str, start: time, end: time) -> datetime:
    """``moment`` if a person in ``zone`` may be nudged then, else the start of their next working hours."""
    return _within(moment, zone, start, end, lambda day: is_team_day(day, zone))


def after_team_days(moment: datetime, count: int, zone: str) -> datetime:
    """The same local time of day ``count`` team days after ``moment``."""
    return _after(moment, count, zone, lambda day: is_team_day(day, zone))


def _within(moment: datetime, zone: str, start: time, end: time, working: WorkingDay) -> datetime:
    local = moment.astimezone(ZoneInfo(zone))
    day = local.date()
    if working(day) and start <= local.time() < end:
        return moment
    if not (working(day) and local.time() < start):
        day = _next(day, 1, working)
    return local_moment(day, zone, start)


def _after(moment: datetime, count: int, zone: str, working: WorkingDay) -> datetime:
    local = moment.astimezone(ZoneInfo(zone))
    return local_moment(_next(local.date(), count, working), zone, local.time().replace(tzinfo=None))


def _next(day: date, count: int, working: WorkingDay) -> date:
    while count > 0:
        day += timedelta(days=1)
        if working(day):
            count -= 1
    return day
