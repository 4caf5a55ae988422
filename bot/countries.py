"""Countries and their time zones, from the IANA tables that tzdata ships."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from holidays.registry import COUNTRIES as HOLIDAY_COUNTRIES

# Names people type that neither table spells that way.
ALIASES = {
    "uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "great britain": "GB", "usa": "US", "america": "US", "united states of america": "US",
    "holland": "NL", "the netherlands": "NL", "czech republic": "CZ", "russia": "RU",
    "south korea": "KR", "korea": "KR", "north korea": "KP", "uae": "AE", "vietnam": "VN",
    "ivory coast": "CI", "turkey": "TR", "türkiye": "TR", "deutschland": "DE",
    "österreich": "AT", "schweiz": "CH", "españa": "ES", "italia": "IT",
}  # fmt: skip


def _table(name: str) -> list[list[str]]:
    text = (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower().replace("&", "and"))


# Where the IANA table's short name is not what people call the country.
DISPLAY_NAMES = {"GB": "United Kingdom", "KR": "South Korea", "KP": "North Korea"}
# Zones are told apart by their offsets on these two days (winter, summer).
REFERENCE_DAYS = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))


@cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code -> display name."""
    return {code: DISPLAY_NAMES.get(code, name) for code, name in _table("iso3166.tab")}


@cache
def _lookup() -> dict[str, str]:
    names = country_names()
    found: dict[str, str] = {}
    for code, name in _table("iso3166.tab"):
        found[_key(name)] = code
        # "Korea (South)" is also typed "Korea South"; "Britain (UK)" also "Britain".
        found[_key(re.sub(r"[()]", "", name))] = code
        found[_key(re.sub(r"\s*\(.*?\)", "", name))] = code
    for code, name in names.items():
        found[_key(name)] = code
    for entry in HOLIDAY_COUNTRIES.values():
        class_name, code = entry[0], entry[1]
        if code in names:
            found.setdefault(_key(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name)), code)
        if len(entry) > 2 and code in names:
            found.setdefault(_key(entry[2]), code)  # alpha-3, such as DEU
    found.update(ALIASES)
    return found


def find_country(text: str) -> str | None:
    """The ISO code for a typed name or code ("Germany", "de", "DEU"), or None."""
    typed = text.strip()
    if len(typed) == 2 and typed.upper() in country_names():
        return typed.upper()
    return _lookup().get(_key(typed))


@cache
def _zones() -> dict[str, tuple[str, ...]]:
    zones: dict[str, list[str]] = {}
    for row in _table("zone.tab"):
        zones.setdefault(row[0], []).append(row[2])
    return {code: tuple(z) for code, z in zones.items()}


@cache
def country_time_zones(code: str) -> tuple[str, ...]:
    """The distinct IANA zones of a country, most populous region first.

    Zones that keep the same offsets all year as an earlier one (Europe/Busingen
    beside Europe/Berlin) are left out: asking about them would only confuse.
    """
    distinct: dict[tuple[timedelta | None, ...], str] = {}
    # Research stations share offsets with cities; name the city.
    for name in sorted(_zones().get(code, ()), key=lambda z: z.startswith("Antarctica/")):
        zone = ZoneInfo(name)
        distinct.setdefault(tuple(day.astimezone(zone).utcoffset() for day in REFERENCE_DAYS), name)
    return tuple(distinct.values())


def zone_label(name: str) -> str:
    """A zone's name with its winter offset, such as America/New_York (UTC-05:00), to tell zones apart."""
    offset = REFERENCE_DAYS[0].astimezone(ZoneInfo(name)).strftime("%z")
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"
