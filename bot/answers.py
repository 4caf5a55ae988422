"""Turning what a person typed (or clicked) into a validated answer.

Each kind has one parser. The console passes typed text; Slack passes a
button's option id, a date picker's ISO date or a reply's text, and all of it
goes through the same parsers, so both transports accept exactly the same.
A parser returns the stored value and how to show it, or raises AnswerError
with a one-line reason.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.countries import country_names, country_time_zones, find_country, zone_label
from prompts import Option, Question

MAX_YEARS_AWAY = 10
MAX_AMOUNT = Decimal("1000000000")
MAX_NAME_LENGTH = 200
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}
MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_name) if name
}
UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 0, "months": 0, "year": 0, "years": 0}
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
    answers: dict[str, Any] | None = None  # earlier values, for options_from


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


def client_key(name: str) -> str:
    """How client names are compared: case, spacing and punctuation do not count."""
    return re.sub(r"[\W_]+", "", neutralise(name).casefold())


def parse_client_name(raw: str) -> str:
    name = neutralise(raw)
    if not name or not client_key(name):
        raise AnswerError("The client's name is empty: type it after the command, as in /departure Acme Corp.")
    if len(name) > MAX_NAME_LENGTH:
        raise AnswerError(f"The client's name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}.")
    return name


def options_for(question: Question, answers: dict[str, Any] | None) -> tuple[Option, ...]:
    """The options a choice question offers, given the answers so far."""
    if question.options_from == "time_zones":
        country = (answers or {}).get("country")
        return tuple(Option(z, zone_label(z)) for z in country_time_zones(country or ""))
    return question.options


def parse_answer(question: Question, raw: str, ctx: Context) -> Parsed:
    parser = PARSERS[question.kind]
    return parser(question, raw.strip(), ctx)


# -- one parser per kind ---------------------------------------------------------


def _choice(question: Question, raw: str, ctx: Context) -> Parsed:
    option = _pick(options_for(question, ctx.answers), raw)
    return Parsed(option.id, option.label)


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
    text = neutralise(raw, keep_newlines=True)
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
    day = parse_date(raw, ctx.today)
    if abs(day.year - ctx.today.year) > MAX_YEARS_AWAY or abs((day - ctx.today).days) > 366 * MAX_YEARS_AWAY:
        raise AnswerError(f"{day:%d %b %Y} is more than {MAX_YEARS_AWAY} years away: check the year.")
    if question.dates == "past" and day > ctx.today:
        raise AnswerError(f"{day:%d %b %Y} is in the future; this date can be today at the latest.")
    if question.dates == "future" and day < ctx.today:
        raise AnswerError(f"{day:%d %b %Y} is in the past; this date can be today at the earliest.")
    return Parsed(day.isoformat(), f"{day:%a %d %b %Y}")


def parse_date(raw: str, today: date) -> date:
    text = raw.strip().casefold().rstrip(".")
    if not text:
        raise AnswerError("Type a date, such as 2027-01-31, 31 Jan 2027, today or in 2 weeks.")
    simple = {"today": 0, "tomorrow": 1, "yesterday": -1}
    if text in simple:
        return today + timedelta(days=simple[text])
    relative = re.fullmatch(r"(?:in\s+)?(\d{1,4})\s+(day|days|week|weeks|month|months|year|years)(\s+ago)?", text)
    if relative and (text.startswith("in") or relative.group(3)):
        n = int(relative.group(1)) * (-1 if relative.group(3) else 1)
        unit = relative.group(2)
        if UNITS[unit]:
            return today + timedelta(days=n * UNITS[unit])
        months = n * (12 if unit.startswith("year") else 1)
        return add_months(today, months)
    for pattern, order in (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"),
        (r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", "dmy"),
        (r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})", "dMy"),
        (r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", "Mdy"),
    ):
        match = re.fullmatch(pattern, text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        if "M" in parts:
            month = MONTHS.get(parts["M"])
            if month is None:
                raise AnswerError(f"'{_short(raw)}': I do not know the month '{parts['M']}'.")
        else:
            month = int(parts["m"])
        return _real_date(int(parts["y"]), month, int(parts["d"]), raw)
    raise AnswerError(f"'{_short(raw)}' is not a date I can read: try 2027-01-31, 31 Jan 2027, today or in 2 weeks.")


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
    amount, currency = parse_money(raw, ctx.currency)
    return Parsed({"amount": str(amount), "currency": currency}, format_money(amount, currency))


def parse_money(raw: str, default_currency: str) -> tuple[Decimal, str]:
    text = raw.strip().replace("\u00a0", " ")
    if not text:
        raise AnswerError("Type an amount, such as 1,200 or 1200 EUR.")
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
    number = _normalise_number(text)
    if number is None:
        raise AnswerError(f"'{_short(raw)}' is not an amount: try 1,200 or 1200 EUR or $1,200.50.")
    if number > MAX_AMOUNT:
        raise AnswerError(f"{number:,} is larger than sendoff accepts ({MAX_AMOUNT:,}).")
    return number, currency or default_currency


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
    return str(value)
