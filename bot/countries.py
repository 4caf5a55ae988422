"""Countries and their time zones, from the IANA tables that tzdata ships."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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


@cache
def country_zone_choices(code: str) -> tuple[str, ...]:
    """Every IANA zone of a country, for a person to choose from.

    The zones with offsets of their own come first (the likely answers, and
    what ``country_time_zones`` returns), then every other zone of the country:
    zones that keep the same offsets (Australia/Sydney beside
    Australia/Hobart) are still different places, and a person looks for their
    own city.
    """
    first = country_time_zones(code)
    return first + tuple(z for z in _zones().get(code, ()) if z not in first)


def zone_label(name: str) -> str:
    """A zone's name with its winter offset, such as America/New_York (UTC-05:00), to tell zones apart."""
    offset = REFERENCE_DAYS[0].astimezone(ZoneInfo(name)).strftime("%z")
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


# Cities people type that no IANA zone is named after.
CITY_ZONES = {
    "mumbai": "Asia/Kolkata", "bombay": "Asia/Kolkata", "delhi": "Asia/Kolkata", "new delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata", "bengaluru": "Asia/Kolkata", "chennai": "Asia/Kolkata", "pune": "Asia/Kolkata",
    "beijing": "Asia/Shanghai", "shenzhen": "Asia/Shanghai", "guangzhou": "Asia/Shanghai",
    "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo", "abu dhabi": "Asia/Dubai", "tel aviv": "Asia/Jerusalem",
    "hanoi": "Asia/Ho_Chi_Minh", "saigon": "Asia/Ho_Chi_Minh",
    "san francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles", "san diego": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles", "boston": "America/New_York", "washington": "America/New_York",
    "washington dc": "America/New_York", "philadelphia": "America/New_York", "atlanta": "America/New_York",
    "miami": "America/New_York", "dallas": "America/Chicago", "houston": "America/Chicago",
    "austin": "America/Chicago", "ottawa": "America/Toronto", "montreal": "America/Toronto",
    "calgary": "America/Edmonton", "rio de janeiro": "America/Sao_Paulo", "rio": "America/Sao_Paulo",
    "brasilia": "America/Sao_Paulo", "munich": "Europe/Berlin", "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin", "cologne": "Europe/Berlin", "geneva": "Europe/Zurich", "basel": "Europe/Zurich",
    "milan": "Europe/Rome", "barcelona": "Europe/Madrid", "rotterdam": "Europe/Amsterdam",
    "manchester": "Europe/London", "edinburgh": "Europe/London", "lyon": "Europe/Paris",
    "marseille": "Europe/Paris", "krakow": "Europe/Warsaw", "saint petersburg": "Europe/Moscow",
    "st petersburg": "Europe/Moscow", "canberra": "Australia/Sydney", "wellington": "Pacific/Auckland",
    "cape town": "Africa/Johannesburg",
}  # fmt: skip


@dataclass(frozen=True)
class ZoneMatch:
    zone: str  # the IANA zone to store
    via: str | None = None  # the older name it was found under (US/Pacific), to tell the matches apart

    @property
    def label(self) -> str:
        return f"{self.zone} ({self.via.replace('/', ' ').replace('_', ' ')})" if self.via else self.zone


def zone_key(text: str) -> str:
    """A zone or city name as compared: no case, accents, apostrophes or underscores.

    "São Paulo", "sao paulo" and "America/Sao_Paulo"'s last part compare equal;
    the sign of Etc/GMT-5 is kept.
    """
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    folded = re.sub(r"['’]", "", folded)
    folded = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", folded)
    folded = re.sub(r"[^a-z0-9+/-]+", " ", folded)
    return re.sub(r"\s*/\s*", "/", re.sub(r"\s+", " ", folded)).strip()


@cache
def _zone_names() -> dict[str, str]:
    """Every name tzdata knows -> the zone to store for it.

    A zone, or a link that a country's list uses (Europe/Busingen), stands for
    itself; an old name kept only for compatibility (Asia/Calcutta,
    US/Pacific) stands for the zone it links to.
    """
    names: dict[str, str] = {}
    listed = {zone for zones in _zones().values() for zone in zones}
    for row in _table("tzdata.zi"):
        parts = row[0].split()
        if parts[0] == "Z":
            names[parts[1]] = parts[1]
        elif parts[0] == "L":
            names[parts[2]] = parts[2] if parts[2] in listed else parts[1]
    return names


@cache
def _zone_index() -> tuple[dict[str, list[ZoneMatch]], dict[str, list[ZoneMatch]], dict[str, list[ZoneMatch]]]:
    """Names by their whole key, by their last part and by their area (the first part)."""
    whole: dict[str, list[ZoneMatch]] = {}
    last: dict[str, list[ZoneMatch]] = {}
    area: dict[str, list[ZoneMatch]] = {}
    for name, zone in sorted(_zone_names().items()):
        match = ZoneMatch(zone, None if name == zone else name)
        whole.setdefault(zone_key(name), []).append(match)
        last.setdefault(zone_key(name.rsplit("/", 1)[-1]), []).append(match)
        if "/" in name:
            area.setdefault(zone_key(name.split("/", 1)[0]), []).append(ZoneMatch(zone))
    for city, zone in CITY_ZONES.items():
        last.setdefault(city, []).append(ZoneMatch(zone))
    return whole, last, area


def find_zones(text: str) -> list[ZoneMatch]:
    """The zones a typed name may mean, one per zone: a single one when it is clear.

    A zone's whole name ("Australia/Sydney") or the last part of it
    ("Sydney", "sao paulo") names one zone; a word that is also an area
    ("Pacific") or that several names end with ("Central": US/Central and
    Canada/Central) names them all, so that the caller can ask which.
    """
    key = zone_key(text)
    if not key:
        return []
    whole, last, area = _zone_index()
    if key in whole:
        return _distinct(whole[key])[:1]
    return _distinct(last.get(key, []) + area.get(key, []))


def _distinct(matches: list[ZoneMatch]) -> list[ZoneMatch]:
    seen: dict[str, ZoneMatch] = {}
    for match in matches:
        seen.setdefault(match.zone, match)
    return list(seen.values())


@cache
def zone_country(zone: str) -> str | None:
    """The country (ISO code) a time zone belongs to, by the tz database; None for UTC and the like."""
    for code, zones in _zones().items():
        if zone in zones:
            return code
    return None


@cache
def country_languages(code: str) -> tuple[str, ...]:
    """The languages most people of a country read (ISO 639-1 codes), the most spoken first, from CLDR
    (through Babel): DE -> de; CH -> de, gsw, fr, it; IN -> hi, en. Empty for an unknown country.

    The interview offers the first of these that the emails are written in as the client's language.
    """
    from babel.languages import get_official_languages  # on first use: nothing else here needs Babel

    try:
        return tuple(get_official_languages(code.upper(), de_facto=True)) if code else ()
    except (KeyError, ValueError):
        return ()
