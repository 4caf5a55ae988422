"""Turning what a person typed (or clicked) into a validated answer.

Each kind has one parser. The console passes typed text; Slack passes a
button's option id, a date picker's ISO date or a reply's text, and all of it
goes through the same parsers, so both transports accept exactly the same.
A parser returns the stored value and how to show it, or raises AnswerError
with a one-line reason.
"""

from __future__ import annotations

import calendar
import importlib
import itertools
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from bot.countries import (
    country_languages,
    country_names,
    country_zone_choices,
    find_country,
    find_zones,
    zone_label,
)
from prompts import MAX_OPTION_LABEL, Option, Question

MAX_YEARS_AWAY = 10
MAX_AMOUNT = Decimal("1000000000")
# Past it, a whole number would not come back from the store as it went (nor from JSON readers elsewhere):
# 2**53, the largest a double holds exactly, whatever a company's own interview allows.
LARGEST_WHOLE_NUMBER = 2**53
MAX_NAME_LENGTH = 200
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}
MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_name) if name
}
UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 0, "months": 0, "year": 0, "years": 0}
MAX_ZONES_SHOWN = 6
MULTIPLIERS = {"k": Decimal(1000), "m": Decimal(1_000_000)}
# What people type for an amount of nothing ("final payment still due?" "none").
ZERO_WORDS = {"none", "nothing", "nil", "zero"}
# What people type when the contact has no email address.
NO_EMAIL_WORDS = {"none", "-", "phone", "by phone", "phone only", "no email", "no e-mail", "n/a", "no address"}
NO_EMAIL = "no email"
WEEKDAYS = {name.lower() for name in (*calendar.day_name, *calendar.day_abbr)}
# A phrase goes to dateparser only if it has one of these: alone, it reads "a" or "5pm" as a day.
DATE_WORDS = set(MONTHS) | WEEKDAYS | set(UNITS) | {"fri", "tues", "thur", "thurs", "fortnight", "today", "tomorrow"}
YES = {"yes", "y", "yeah", "yep", "true", "1"}
NO = {"no", "n", "nope", "false", "2"}
# Slack broadcasts, in any spelling a person or a paste can produce.
BROADCASTS = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>|@(channel|here|everyone)\b", re.IGNORECASE)


class AnswerError(ValueError):
    """The answer cannot be accepted; str() is the reason to show the person."""


@dataclass(frozen=True)
class Parsed:
    value: Any  # JSON-able: what is stored
    display: str  # how it is shown back


@dataclass(frozen=True)
class Context:
    """What parsing needs beyond the text: today's date and the defaults."""

    today: date
    currency: str = "EUR"
    # Every answer so far by question id, the one being edited included: the
    # time-zone options follow the country, and an edited amount keeps its currency.
    answers: dict[str, Any] | None = None


def neutralise(text: str, *, keep_newlines: bool = False) -> str:
    """User text made safe to store and show anywhere.

    Control characters go, line breaks become spaces (unless kept), and Slack
    broadcasts lose their power: ``<!channel>`` and ``@here`` become
    ``＠channel`` and ``＠here``, which read the same and ping nobody.
    """
    text = unicodedata.normalize("NFC", text)
    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = re.sub(r"[\r\n\u2028\u2029]+", " ", text)
    text = "".join(ch for ch in text if ch == "\n" and keep_newlines or unicodedata.category(ch) not in ("Cc", "Cf"))
    text = BROADCASTS.sub(lambda m: "＠" + (m.group(1) or m.group(3)), text)
    if keep_newlines:
        return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")).strip()
    return re.sub(r"\s+", " ", text).strip()


# Latin letters that carry no combining mark to drop but are spelled plainly all the same.
PLAIN_LETTERS = str.maketrans({"æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
UMLAUTS_SPELLED_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
MAX_UMLAUT_GUESSES = 4  # ae/oe/ue in a name tried both ways: at most 2**4 keys


def client_key(name: str) -> str:
    """How client names are stored for comparing: case, accents, spacing and punctuation do not count.

    "Müller", "MULLER" and "Muller" share a key. Marks are dropped from Latin
    letters only: in other scripts a mark makes another letter (Russian и and
    й, Japanese カ and ガ), and two clients must not share a key by accident.
    """
    return _fold(neutralise(name).casefold())


def client_key_variants(name: str) -> tuple[str, ...]:
    """Other keys a typed name may stand for, to try in turn when ``client_key`` finds no client.

    German umlauts are also written out: "Mueller" finds "Müller", and
    "Müller" finds a client stored as "Mueller". This is not folded into the
    stored key itself, because "ue" is not always an umlaut ("Blue" and "Blu"
    are two clients); here each ae, oe and ue is tried both ways, so "Mueller
    Blue" finds "Müller Blue" and nothing else.
    """
    spelled_out = _fold(neutralise(name).casefold().translate(UMLAUTS_SPELLED_OUT))
    places = [m.start() for m in re.finditer(r"(?<=[aou])e", spelled_out)][:MAX_UMLAUT_GUESSES]
    keys = [spelled_out]
    for count in range(1, len(places) + 1):
        for dropped in itertools.combinations(places, count):
            keys.append("".join(ch for i, ch in enumerate(spelled_out) if i not in dropped))
    primary = client_key(name)
    return tuple(k for k in dict.fromkeys(keys) if k and k != primary)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(PLAIN_LETTERS))
    kept: list[str] = []
    latin = False
    for ch in text:
        if unicodedata.combining(ch):
            if latin:
                continue
        else:
            latin = ch.isascii() or "LATIN" in unicodedata.name(ch, "")
        kept.append(ch)
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFC", "".join(kept)))


def parse_client_name(raw: str) -> str:
    name = neutralise(raw)
    if not name or not client_key(name):
        raise AnswerError("The client's name is empty: type it after the command, as in /departure Acme Corp.")
    if len(name) > MAX_NAME_LENGTH:
        raise AnswerError(f"The client's name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}.")
    return name


# -- contact names ---------------------------------------------------------------

# Titles before a name, as typed in lower case -> as written. Only these are recognised as titles.
TITLES = {
    "dr": "Dr.", "dr.": "Dr.", "prof": "Prof.", "prof.": "Prof.", "mr": "Mr.", "mr.": "Mr.", "mrs": "Mrs.",
    "mrs.": "Mrs.", "ms": "Ms.", "ms.": "Ms.", "mx": "Mx.", "mx.": "Mx.", "herr": "Herr", "frau": "Frau",
    "mme": "Mme", "mme.": "Mme", "mlle": "Mlle", "sr.": "Sr.", "sra.": "Sra.", "srta.": "Srta.",
    "dott.": "Dott.", "dott.ssa": "Dott.ssa", "ing.": "Ing.", "mag.": "Mag.", "dhr.": "Dhr.", "mevr.": "Mevr.",
    "sig.": "Sig.", "sig.ra": "Sig.ra",
}  # fmt: skip
# Words inside a surname that stay in lower case after a first name: Jan van der Berg, Ana de la Cruz.
PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "das", "do", "dos", "du",
                       "la", "le", "ten", "ter", "zu", "y", "e", "bin", "ibn"})  # fmt: skip
# After a name: not part of the surname a salutation uses.
SUFFIXES = {"jr": "Jr.", "jr.": "Jr.", "ii": "II", "iii": "III", "iv": "IV", "phd": "PhD", "md": "MD"}
MAX_SALUTATION_LENGTH = 100


@dataclass(frozen=True)
class NameParts:
    """A contact's name as salutations use it (prompts: NAME_PARTS)."""

    title: str  # Dr., Frau, ... or ""
    first: str  # the first given name, or "" when only a title and a surname are known
    last: str  # the surname with its particles (van der Berg), or "" for a single name
    full: str  # the name without its title

    @property
    def formal(self) -> str:
        """Title and surname (Dr. Chen) where there is a title, else the whole name: no guess at a gender."""
        return f"{self.title} {self.last}" if self.title and self.last else self.full

    def values(self) -> dict[str, str]:
        return {"title": self.title, "first": self.first, "last": self.last, "full": self.full,
                "formal": self.formal}  # fmt: skip


def tidy_name(raw: str) -> str:
    """A name typed in one case made to read as a name: "dr. amy chen" -> "Dr. Amy Chen".

    A name that already mixes capitals and small letters is left exactly as typed: the person who typed
    "McDonald", "van der Berg" or "Jean DUPONT" meant it. Scripts without case are left alone too.
    """
    name = neutralise(raw)
    letters = [c for c in name if c.isalpha()]
    if any(c.isupper() for c in letters) and any(c.islower() for c in letters):
        return name
    words = name.lower().split(" ")
    tidy: list[str] = []
    for word in words:
        named = len([w for w in tidy if w not in TITLES.values()])  # words of the name itself so far
        if not named and word in TITLES:
            tidy.append(TITLES[word])
        elif named and word in SUFFIXES:
            tidy.append(SUFFIXES[word])
        elif named and word in PARTICLES:
            tidy.append(word)
        else:
            tidy.append(_capitalised(word))
    return " ".join(tidy)


def _capitalised(word: str) -> str:
    """One word of a name: each part after a hyphen or an apostrophe starts with a capital (Mary-Jane,
    O'Neil, D'Angelo), and so does the rest of a Scottish or Irish "Mc" (McDonald)."""
    parts = re.split(r"([-'’])", word)
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    if re.match(r"mc\w{2,}", word):
        out = "Mc" + out[2:3].upper() + out[3:]
    return out


def name_parts(name: str) -> NameParts:
    """The parts of a (tidied) name: its title, first name and surname."""
    words = neutralise(name).split(" ") if neutralise(name) else []
    title: list[str] = []
    while words[:1] and words[0].lower() in TITLES and len(words) > 1:
        title.append(words.pop(0))
    full = " ".join(words)
    named = [w for w in words if w.lower() not in SUFFIXES] or words
    if not named:
        return NameParts(" ".join(title), "", "", full)
    if named[0].lower() in PARTICLES:
        return NameParts(" ".join(title), "", full, full)  # "van der Berg": a surname alone
    if len(named) == 1:
        # "Dr. Chen" is a surname; "Pat" alone is what the person is called
        return NameParts(" ".join(title), "" if title else named[0], named[0] if title else "", full)
    start = next((i for i in range(1, len(named)) if named[i].lower() in PARTICLES), len(named) - 1)
    return NameParts(" ".join(title), named[0], " ".join(named[start:]), full)


def salutation_options(question: Question, name: str) -> tuple[Option, ...]:
    """The question's salutation patterns filled in with ``name``; a pattern needing a part the name lacks
    (a first name, for "Dr. Chen") is left out."""
    if not name:
        return ()
    values = name_parts(name).values()
    options = []
    for option in question.options:
        used = {n for _, n, _, _ in string.Formatter().parse(option.label) if n}
        if all(values.get(n) for n in used):
            options.append(Option(option.id, option.label.format(**values)[:MAX_OPTION_LABEL]))
    return tuple(options)


def options_for(question: Question, answers: dict[str, Any] | None) -> tuple[Option, ...]:
    """The options a choice question offers, given the answers so far."""
    answers = answers or {}
    if question.options_from == "time_zones":
        country = answers.get("country")
        return tuple(Option(z, zone_label(z)) for z in country_zone_choices(country or ""))
    if question.options_from == "languages":
        # the country's own language first, so that Enter (or 1, or the first button) keeps it
        spoken = country_languages(answers.get("country") or "")
        usual = next((o for code in spoken if (o := question.option(code)) is not None), None)
        return (usual, *(o for o in question.options if o != usual)) if usual else question.options
    if question.options_from == "salutations":
        name = answers.get("contact_name")
        return salutation_options(question, name if isinstance(name, str) else "")
    return question.options


def parse_answer(question: Question, raw: str, ctx: Context) -> Parsed:
    parser = PARSERS[question.kind]
    return parser(question, raw.strip(), ctx)


# -- one parser per kind ---------------------------------------------------------


def _choice(question: Question, raw: str, ctx: Context) -> Parsed:
    options = options_for(question, ctx.answers)
    if question.options_from == "time_zones":
        return _time_zone(options, raw)
    if question.options_from == "languages":
        return _language(options, raw)
    if question.options_from == "salutations":
        name = (ctx.answers or {}).get("contact_name")
        return _salutation(options, raw, name if isinstance(name, str) else "")
    option = _pick(options, raw)
    return Parsed(option.id, option.label)


def _language(options: tuple[Option, ...], raw: str) -> Parsed:
    """A language by its number, code or name, in English or in itself ("German", "Deutsch", "de")."""
    if not raw and options:
        return Parsed(options[0].id, options[0].label)  # Enter keeps the first: the country's language
    wanted = raw.casefold()
    for option in options:
        names = [option.id] + [n.strip().casefold() for n in re.split(r"[()]", option.label) if n.strip()]
        if wanted in names or any(n.startswith(wanted) for n in names[2:]):
            return Parsed(option.id, option.label)
    option = _pick(options, raw)
    return Parsed(option.id, option.label)


def _salutation(options: tuple[Option, ...], raw: str, name: str) -> Parsed:
    """One of the salutations offered, or the AM's own words ("Liebe Frau Chen"), stored as typed.

    Shown back without the contact's name ("Dear Dr. …"): answers are shown in the summary that the
    team channel sees, and the name is a personal detail kept out of it.
    """
    if not options and (not raw or raw.isdigit()):
        raise AnswerError("Type how the emails should greet them, such as Dear Amy.")  # no name to offer any from
    if raw.isdigit() or not raw or any(raw.casefold() in (o.id, o.label.casefold()) for o in options):
        option = _pick(options, raw or "1")  # Enter keeps the first
        return Parsed(option.id, _without_name(option.label, name))
    # the email adds its own punctuation after the salutation (a comma in English, none in Japanese)
    words = neutralise(raw).rstrip(",;:!.")
    if not words:
        raise AnswerError(f"Pick a number from 1 to {len(options)}, or type how the emails should greet them.")
    if len(words) > MAX_SALUTATION_LENGTH:
        raise AnswerError(f"That is {len(words)} characters; a greeting here is at most {MAX_SALUTATION_LENGTH}.")
    return Parsed(words, _without_name(words, name))


def _without_name(text: str, name: str) -> str:
    """``text`` with each word of ``name`` (but its title) replaced by an ellipsis."""
    parts = name_parts(name) if name else None
    for word in sorted(set(parts.full.split(" ")) if parts else set(), key=len, reverse=True):
        if len(word) > 1:
            text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "…", text, flags=re.IGNORECASE)
    return re.sub(r"…(\s*…)+", "…", text)


def _time_zone(options: tuple[Option, ...], raw: str) -> Parsed:
    """A zone from the country's list, or any zone by its name or its city's.

    The list shows a country's zones (Slack shows 100 options at most), but a
    person may live anywhere: "Sydney", "sao paulo", "Mumbai" or
    "Europe/London" name a zone whatever the country. A word that names several
    ("pacific", "central") is refused with the choices, never guessed.
    """
    numbers = f", or pick a number from 1 to {len(options)}" if options else ""
    if not raw:
        raise AnswerError(f"Type the city they are in, such as Berlin or New York{numbers}.")
    if raw.isdigit() and options:
        option = _pick(options, raw)
        return Parsed(option.id, option.label)
    for option in options:
        if raw.casefold() in (option.id.casefold(), option.label.casefold()):
            return Parsed(option.id, option.label)
    matches = find_zones(raw)
    if len(matches) == 1:
        return Parsed(matches[0].zone, zone_label(matches[0].zone))
    if not matches:
        raise AnswerError(
            f"I do not know the time zone '{_short(raw)}': type a city such as Berlin or New York{numbers}."
        )
    listed = [o.id for o in options]
    # The chosen country's zones first: for a client in the US, "pacific" is
    # most likely Los Angeles or Honolulu.
    matches.sort(key=lambda m: listed.index(m.zone) if m.zone in listed else len(listed))
    shown = ", ".join(m.label for m in matches[:MAX_ZONES_SHOWN])
    more = f" and {len(matches) - MAX_ZONES_SHOWN} more" if len(matches) > MAX_ZONES_SHOWN else ""
    raise AnswerError(f"'{_short(raw)}' could be {shown}{more}: type one of them, or the city.")


def _pick(options: tuple[Option, ...], raw: str) -> Option:
    if not raw:
        raise AnswerError(f"Pick one of the options: a number from 1 to {len(options)}.")
    if raw.isdigit():
        n = int(raw)
        if 1 <= n <= len(options):
            return options[n - 1]
        raise AnswerError(f"There is no option {n}: pick a number from 1 to {len(options)}.")
    wanted = raw.casefold()
    for option in options:
        if wanted in (option.id.casefold(), option.label.casefold()):
            return option
    starts = [o for o in options if o.label.casefold().startswith(wanted)]
    if len(starts) == 1:
        return starts[0]
    raise AnswerError(f"'{_short(raw)}' is not one of the options: pick a number from 1 to {len(options)}.")


def _multi_choice(question: Question, raw: str, ctx: Context) -> Parsed:
    options = options_for(question, ctx.answers)
    parts = (
        [p for p in re.split(r"[,;\s]+", raw) if p]
        if raw.replace(",", "").replace(" ", "").isdigit()
        else [p.strip() for p in re.split(r"[,;]", raw) if p.strip()]
    )
    if not parts:
        raise AnswerError(f"Pick one or more options, such as 1,3 (1 to {len(options)}).")
    picked: list[Option] = []
    for part in parts:
        option = _pick(options, part)
        if option not in picked:
            picked.append(option)
    return Parsed([o.id for o in picked], ", ".join(o.label for o in picked))


def _text(question: Question, raw: str, ctx: Context) -> Parsed:
    # a contact's name is what each email greets: "dr. amy chen" is stored (and shown back) as Dr. Amy Chen
    text = tidy_name(raw) if question.role == "contact_name" else neutralise(raw, keep_newlines=True)
    if not text:
        raise AnswerError("Type an answer" + (", or skip." if question.skippable else "."))
    if len(text) > question.max_length:
        raise AnswerError(
            f"That is {len(text):,} characters; the limit here is {question.max_length:,}. Please shorten it."
        )
    return Parsed(text, text)


def _yes_no(question: Question, raw: str, ctx: Context) -> Parsed:
    word = raw.casefold().rstrip(".!")
    if word in YES:
        return Parsed(True, "Yes")
    if word in NO:
        return Parsed(False, "No")
    raise AnswerError("Answer yes or no.")


def _date(question: Question, raw: str, ctx: Context) -> Parsed:
    day = parse_date(raw, ctx.today, question.dates)
    if abs(day.year - ctx.today.year) > MAX_YEARS_AWAY or abs((day - ctx.today).days) > 366 * MAX_YEARS_AWAY:
        raise AnswerError(f"{day:%d %b %Y} is more than {MAX_YEARS_AWAY} years away: check the year.")
    if question.dates == "past" and day > ctx.today:
        raise AnswerError(
            f"{day:%d %b %Y} is in the future; this date can be today at the latest: "
            f"try a past date, such as {_example(ctx.today, -1)}."
        )
    if question.dates == "future" and day < ctx.today:
        raise AnswerError(
            f"{day:%d %b %Y} is in the past; this date can be today at the earliest: "
            f"try a future date, such as {_example(ctx.today, 1)}."
        )
    return Parsed(day.isoformat(), f"{day:%a %d %b %Y}")


def _example(today: date, direction: int) -> str:
    """A date on the wanted side of today, as a person would type it."""
    day = add_months(today, direction * 2)
    return f"{day.day} {day:%b %Y}"


def parse_date(raw: str, today: date, dates: str = "any") -> date:
    """The day ``raw`` means, seen from ``today``.

    ``dates`` ("past", "future" or "any") settles what a phrase leaves open:
    "Dec 15" is the next one for a future date, the last one for a past date,
    and the nearer one otherwise; "3 weeks" is ahead or ago likewise.
    """
    text = re.sub(r"\s+", " ", raw.strip().casefold()).rstrip(".")
    if not text:
        raise AnswerError("Type a date, such as 2027-01-31, 31 Jan 2027, today or in 2 weeks.")
    day = _known_form(text, raw, today, dates)
    month = _month_alone(text) if day is None else None
    if month is not None:
        raise AnswerError(f"'{_short(raw)}' is a whole month: say which day, such as 15 {calendar.month_abbr[month]}.")
    if day is None and DATE_WORDS.intersection(re.findall(r"[a-z]+", text)):
        day = _phrase(text, today, dates)
    if day is None:
        raise AnswerError(f"'{_short(raw)}' is not a date I can read: try {_date_examples(today, dates)}.")
    return day


def _date_examples(today: date, dates: str) -> str:
    if dates == "past":
        return f"{_example(today, -1)}, yesterday or 2 weeks ago"
    return f"{_example(today, 1)}, next friday, end of month or in 2 weeks"


def _known_form(text: str, raw: str, today: date, dates: str) -> date | None:
    """The forms read without the phrase parser: fast, and exact about what they refuse.

    Whole-number dates never reach the phrase parser, which reads "12" as the
    12th of this month and "12.12." as today.
    """
    simple = {"today": 0, "now": 0, "tomorrow": 1, "yesterday": -1}
    if text in simple:
        return today + timedelta(days=simple[text])
    relative = re.fullmatch(
        r"(in )?(\d{1,4}|an?|one) (day|days|week|weeks|month|months|year|years)( ago| from (?:now|today))?", text
    )
    if relative:
        ahead, n, unit, ago = relative.groups()
        # dateparser reads "a week from today" as a week ago.
        if ago and ago.startswith(" from"):
            ahead, ago = "in ", None
        n = n if n.isdigit() else "1"
        if ahead and ago:
            return None
        if not ahead and not ago:
            if dates == "any":
                raise AnswerError(f"'{_short(raw)}': from today, is that in {n} {unit} or {n} {unit} ago?")
            ago = " ago" if dates == "past" else None
        count = int(n) * (-1 if ago else 1)
        if UNITS[unit]:
            return today + timedelta(days=count * UNITS[unit])
        return add_months(today, count * (12 if unit.startswith("year") else 1))
    end = re.fullmatch(r"(?:the )?end of (?:the |this )?(next )?(month|year)", text)
    if end:
        nxt, unit = end.groups()
        if unit == "year":
            return date(today.year + (1 if nxt else 0), 12, 31)
        first = add_months(today.replace(day=1), 1 if nxt else 0)
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    for pattern, order in (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"),
        (r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", "dmy"),
        (r"(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([a-z]+)\.?,?(?: (\d{4}))?", "dMy"),
        (r"([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{4}))?", "Mdy"),
    ):
        match = re.fullmatch(pattern, text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        if "M" in parts:
            month = MONTHS.get(parts["M"])
            if month is None:
                if parts["M"] in WEEKDAYS or parts["y"] is None:
                    continue  # "friday 13", "next 5": for the phrase parser
                raise AnswerError(f"'{_short(raw)}': I do not know the month '{parts['M']}'.")
        else:
            month = int(parts["m"])
        if parts["y"] is None:
            return _without_year(month, int(parts["d"]), today, dates, raw)
        return _real_date(int(parts["y"]), month, int(parts["d"]), raw)
    return None


def _without_year(month: int, day: int, today: date, dates: str, raw: str) -> date:
    """The day and month in the year that fits: ``dates`` says which side of today."""
    if not 1 <= day <= calendar.monthrange(2028, month)[1]:  # a leap year: the most days a month has
        raise AnswerError(f"{_short(raw)} is not a real date: {calendar.month_name[month]} has no day {day}.")
    candidates = []
    for year in range(today.year - 8, today.year + 9):  # 29 Feb comes round in at most 8 years
        if day <= calendar.monthrange(year, month)[1]:
            candidates.append(date(year, month, day))
    if dates == "future":
        return min(d for d in candidates if d >= today)
    if dates == "past":
        return max(d for d in candidates if d <= today)
    return min(candidates, key=lambda d: (abs((d - today).days), d < today))


def _month_alone(text: str) -> int | None:
    """The month of "Dec" or "next December": a month, not a day, that the phrase parser would pick one of."""
    words = text.replace(".", "").split()
    if words and words[0] in ("in", "next", "this", "last"):
        words = words[1:]
    if words and re.fullmatch(r"\d{4}", words[-1]):
        words = words[:-1]
    return MONTHS.get(words[0]) if len(words) == 1 else None


def _phrase(text: str, today: date, dates: str) -> date | None:
    """A phrase such as "next friday" or "in three months", read by dateparser."""
    found = _date_parser(dates, today).get_date_data(text).date_obj
    return found.date() if isinstance(found, datetime) else None


@lru_cache(maxsize=8)
def _date_parser(dates: str, today: date) -> Any:
    # Imported on first use: importing dateparser and loading its English data
    # takes about a third of a second, and only phrases need it. It ships no
    # type information, hence Any.
    module = importlib.import_module("dateparser.date")
    settings = {
        "PREFER_DATES_FROM": {"past": "past", "future": "future"}.get(dates, "current_period"),
        "RELATIVE_BASE": datetime.combine(today, time()),
        "DATE_ORDER": "DMY",
        "TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    return module.DateDataParser(languages=["en"], settings=settings)


def _real_date(year: int, month: int, day: int, raw: str) -> date:
    if not 1 <= month <= 12:
        raise AnswerError(f"{_short(raw)} is not a real date: there is no month {month} (day/month/year).")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise AnswerError(f"{_short(raw)} is not a real date: {calendar.month_name[month]} {year} has {last} days.")
    return date(year, month, day)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _money(question: Question, raw: str, ctx: Context) -> Parsed:
    # A changed amount keeps the currency it had, unless the new text names one.
    previous = (ctx.answers or {}).get(question.id)
    currency = previous.get("currency") if isinstance(previous, dict) else None
    amount, currency = parse_money(raw, currency if isinstance(currency, str) and currency else ctx.currency)
    return Parsed({"amount": str(amount), "currency": currency}, format_money(amount, currency))


def parse_money(raw: str, default_currency: str) -> tuple[Decimal, str]:
    """An amount and its currency: "1,200", "1200 EUR", "$1,200.50", "1.5k", "€2k", "none"."""
    text = raw.strip().replace("\u00a0", " ")
    if not text:
        raise AnswerError("Type an amount, such as 1,200 or 1200 EUR, or none.")
    if text.casefold().rstrip(".") in ZERO_WORDS:
        return Decimal(0), default_currency
    if text.startswith("-") or text.startswith("(") or re.search(r"[\s$€£¥₹]-\d", text):
        raise AnswerError("An amount cannot be negative.")
    currency = None
    for symbol, code in CURRENCY_SYMBOLS.items():
        if text.startswith(symbol) or text.endswith(symbol):
            currency, text = code, text.removeprefix(symbol).removesuffix(symbol).strip()
            break
    coded = re.fullmatch(r"([A-Za-z]{3})\s*(.+)|(.+?)\s*([A-Za-z]{3})", text)
    if currency is None and coded:
        currency = (coded.group(1) or coded.group(4)).upper()
        text = (coded.group(2) or coded.group(3)).strip()
    if text.startswith("-"):
        raise AnswerError("An amount cannot be negative.")
    scaled = re.fullmatch(r"(\d+)(?:[.,](\d{1,3}))?\s*([kKmM])", text)
    if scaled:
        # In "1.250k" the mark can only be a decimal one: thousands of thousands are written 1.25m.
        whole, fraction, unit = scaled.groups()
        number: Decimal | None = Decimal(f"{whole}.{fraction or 0}") * MULTIPLIERS[unit.lower()]
    else:
        number = _normalise_number(text)
    if number is None:
        raise AnswerError(f"'{_short(raw)}' is not an amount: try 1,200 or 1200 EUR or $1,200.50 or 1.5k.")
    if number > MAX_AMOUNT:
        raise AnswerError(f"{number:,} is larger than sendoff accepts ({MAX_AMOUNT:,}).")
    if number == number.to_integral_value() and (scaled or number == 0):
        number = number.quantize(Decimal(1))  # 1.5k is 1500, and 0.00 is 0, as they are stored
    return number, currency or default_currency


def amount_is_positive(value: Any) -> bool:
    """Whether a stored money or number answer is more than nothing (a final payment still to come)."""
    amount = value.get("amount") if isinstance(value, dict) else value
    if isinstance(amount, bool) or amount is None:
        return False
    try:
        return Decimal(str(amount)) > 0
    except InvalidOperation:
        return False


def _normalise_number(text: str) -> Decimal | None:
    text = text.replace(" ", "").replace("'", "")
    if not re.fullmatch(r"\d[\d,.]*", text):
        return None
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
    elif "," in text:
        # 1,200 and 12,000,000 group thousands; 12,5 is a decimal comma.
        decimal_mark = "." if re.fullmatch(r"\d{1,3}(,\d{3})+", text) else ","
    else:
        decimal_mark = "." if re.fullmatch(r"\d+(\.\d{1,2})?", text) else ","
    thousands = "." if decimal_mark == "," else ","
    whole, _, fraction = text.partition(decimal_mark)
    if thousands in fraction or decimal_mark in fraction:
        return None
    if thousands in whole and not re.fullmatch(rf"\d{{1,3}}(\{thousands}\d{{3}})+", whole):
        return None
    if len(fraction) > 2:
        return None
    try:
        return Decimal(whole.replace(thousands, "") + ("." + fraction if fraction else ""))
    except InvalidOperation:
        return None


def format_money(amount: Decimal | str, currency: str) -> str:
    value = Decimal(amount)
    shown = f"{value:,.2f}" if value != value.to_integral_value() else f"{value:,.0f}"
    return f"{shown} {currency}"


EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


def _email(question: Question, raw: str, ctx: Context) -> Parsed:
    # "phone" or "none" to the contact's address: they have none, which is an
    # answer (stored as "", so no email is planned), not a skipped question.
    none = re.sub(r"\s+", " ", raw.casefold()).strip(" .!") in NO_EMAIL_WORDS
    if none and (question.skippable or question.role == "contact_email"):
        return Parsed("", NO_EMAIL)
    address = parse_email(raw)
    return Parsed(address, address)


def parse_email(raw: str) -> str:
    text = raw.strip().strip("<>").strip()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :].split("|")[0]  # Slack links typed addresses
    if len(text) > 254 or not EMAIL.fullmatch(text) or ".." in text:
        raise AnswerError(f"'{_short(raw)}' is not an email address, such as jane@example.com.")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def _country(question: Question, raw: str, ctx: Context) -> Parsed:
    code = find_country(raw)
    if code is None:
        raise AnswerError(f"I do not know the country '{_short(raw)}': type a name like Germany or a code like DE.")
    return Parsed(code, country_names()[code])


def _number(question: Question, raw: str, ctx: Context) -> Parsed:
    text = raw.replace(",", "").replace(" ", "")
    if not re.fullmatch(r"-?\d+", text):
        raise AnswerError(f"'{_short(raw)}' is not a whole number.")
    n = int(text)
    if abs(n) > LARGEST_WHOLE_NUMBER:
        raise AnswerError(f"{_short(raw)} is too large a number to keep.")
    if question.min is not None and n < question.min:
        raise AnswerError(f"{n} is too small: the least is {question.min:g}.")
    if question.max is not None and n > question.max:
        raise AnswerError(f"{n} is too large: the most is {question.max:g}.")
    return Parsed(n, str(n))


def _short(raw: str, limit: int = 40) -> str:
    text = neutralise(raw)
    return text if len(text) <= limit else text[: limit - 1] + "…"


PARSERS = {
    "choice": _choice,
    "multi_choice": _multi_choice,
    "text": _text,
    "yes_no": _yes_no,
    "date": _date,
    "money": _money,
    "email": _email,
    "country": _country,
    "number": _number,
}


def display_value(question: Question, value: Any, answers: dict[str, Any] | None = None) -> str:
    """How a stored value reads, for values set without typing (webhook prefill)."""
    if value is None:
        return "skipped"
    if question.options_from == "time_zones" and isinstance(value, str) and find_zones(value):
        return zone_label(value)
    if question.kind in ("choice", "multi_choice"):
        labels = {o.id: o.label for o in options_for(question, answers)}
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, str(v)) for v in values)
    if question.kind == "money":
        return format_money(value["amount"], value["currency"])
    if question.kind == "yes_no":
        return "Yes" if value else "No"
    if question.kind == "date":
        return f"{datetime.fromisoformat(value):%a %d %b %Y}"
    if question.kind == "country":
        return country_names().get(value, str(value))
    if question.kind == "email" and not value:
        return NO_EMAIL
    return str(value)
