"""``/form/<token>``: the form behind the exit note's link, where the client says why they leave, in their words.

A GET (or HEAD) only shows the form, in the client's language, with what they
sent before when they did: they may change it until the link expires. Only a
POST records anything (bot/client_voice.py), then thanks them and tells their
AM. A forged or damaged link gets 400, an expired one 410; a departure that is
gone (forgotten, or never there) answers as an expired link would, telling
nothing. Bodies over ``MAX_BODY`` get 413 unread, and a link may not send too
often (429). The words are ``prompts/form/<language>.toml`` (English where a
language lacks one), the page ``prompts/form.html.j2``.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from babel import Locale, UnknownLocaleError, localedata
from babel.dates import format_date

from bot.app import Core
from bot.client_links import FORM_LIFETIME, FORM_PATH, read_client_token
from bot.client_voice import (
    EMPTY,
    LIMITS,
    NEEDS_YES,
    TOO_LONG,
    TOO_MANY,
    TOO_SOON,
    UNKNOWN_CHOICE,
    ClientAnswers,
    ClientAnswersError,
    SubmissionRefused,
    answers_of,
    language_options,
    read_form,
    reason_options,
    record_client_voice,
)
from bot.clock import parse_iso
from bot.replies import Refusal
from prompts import DEFAULTS, PromptError, line_of, placeholders
from storage.records import Departure

log = logging.getLogger("sendoff")

TEMPLATE = "form.html.j2"
ROUTE = FORM_PATH + "/{token:.*}"  # anything under /form/: a damaged link gets our page, not a bare 404
WORDS_FOLDER = "form"
FALLBACK = "en"
MAX_BODY = 16 * 1024
MAX_FIELDS = 40
READING = frozenset({"GET", "HEAD"})
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",  # the link is the key: never hand it to another site
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",  # fmt: skip
}
# The words of each error that bot.client_voice names.
ERROR_WORDS = {UNKNOWN_CHOICE: "error_unknown_choice", TOO_LONG: "error_too_long", EMPTY: "error_empty",
               NEEDS_YES: "error_needs_yes"}  # fmt: skip
# The page each refusal gets, with its status.
REFUSED = {TOO_MANY: (429, "too_many"), TOO_SOON: (429, "too_soon")}

class _Keep(dict[str, object]):
    """Values for ``str.format_map`` that leave a placeholder not given as it stands (a field's {max})."""

    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


Words = dict[str, dict[str, str]]  # language -> key ("reasons.price" for a reason) -> text
Spawn = Callable[[Coroutine[Any, Any, None]], None]


def load_form_words(folder: str | Path | None = None) -> Words:
    """The form's words by language: ``prompts/form/*.toml``, with a company's ``<folder>/form/*.toml`` over them.

    Each text must be a string, its key one that English has (any reason id is allowed), and its placeholders
    those that the English text uses; a mistake names the file and the line.
    """
    own = Path(folder) / WORDS_FOLDER if folder else None
    roots = [DEFAULTS / WORDS_FOLDER] + ([own] if own is not None and own.is_dir() else [])
    words: Words = {}
    for root in roots:
        for path in sorted(root.glob("*.toml"), key=lambda p: (p.stem != FALLBACK, p.stem)):  # English first
            language = path.stem
            texts = _flat(path, _read(path))
            english = words.get(FALLBACK, texts if language == FALLBACK else {})
            for key, text in texts.items():
                where = f"{path}:{line_of(path, key.rpartition('.')[2])}: '{key}'"
                if key not in english and not key.startswith("reasons."):
                    raise PromptError(f"{where}: unknown text (see the keys of {DEFAULTS / WORDS_FOLDER / 'en.toml'})")
                try:
                    used = placeholders(text)
                except ValueError as err:
                    raise PromptError(f"{where}: {err}") from err
                allowed = placeholders(english[key]) if key in english else set()
                if unknown := sorted(used - allowed):
                    known = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
                    raise PromptError(f"{where}: unknown placeholder {{{unknown[0]}}} (allowed: {known})")
            words.setdefault(language, {}).update(texts)
    if FALLBACK not in words:
        raise PromptError(f"{DEFAULTS / WORDS_FOLDER / 'en.toml'}: missing: the form needs its English words")
    return words


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PromptError(f"{path}: {err}") from err


def _flat(path: Path, table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict) and not prefix:
            found.update(_flat(path, value, f"{key}."))
        elif isinstance(value, str):
            found[prefix + key] = value
        else:
            raise PromptError(f"{path}:{line_of(path, key)}: '{prefix}{key}' must be a string")
    return found


def endonym(language: str) -> str:
    """A language's own name for itself ("Deutsch", "日本語"), which its speakers find in any page's list."""
    try:
        name = Locale.parse(language).display_name or language
    except (ValueError, UnknownLocaleError):
        return language
    return name[:1].upper() + name[1:]


def wanted_languages(header: str) -> list[str]:
    """The primary languages of an Accept-Language header, most wanted first."""
    ranked = []
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and primary != "*" and weight > 0:
            ranked.append((-weight, n, primary))
    return [language for _, _, language in sorted(ranked)]


async def bounded_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it proves longer than ``limit`` bytes (the rest is never read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def form_page(core: Core, spawn: Spawn | None = None) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of ``ROUTE``. ``spawn`` runs the AM's notice after the reply (the server's task set);
    without it the notice is told before the reply."""
    words = load_form_words(core.settings.prompts_dir)
    script = core.prompts.script
    departures = core.departures

    def texts(language: str, **values: object) -> dict[str, str]:
        own = {**words[FALLBACK], **words.get(language, {})}
        return {key: text.format_map(_Keep(values)) if "{" in text else text for key, text in own.items()}

    def language_of(record: Departure) -> str:
        """The page's language: the one the client chose, else the one the AM recorded, else English."""
        voice = record.get("client_voice")
        for language in (voice.get("language") if voice else None, departures.answer_value(record, "language")):
            if isinstance(language, str) and language in words:
                return language
        return FALLBACK

    def asked_language(request: web.Request) -> str:
        """For a page that names no departure: the browser's language, if the form has words for it."""
        wanted = wanted_languages(request.headers.get("Accept-Language", ""))
        return next((language for language in wanted if language in words), FALLBACK)

    def zone_of(record: Departure) -> ZoneInfo:
        zone = departures.answer_value(record, "timezone")
        try:
            return ZoneInfo(zone) if isinstance(zone, str) and zone else departures.zone
        except (ZoneInfoNotFoundError, ValueError):
            return departures.zone

    def day(moment: datetime, record: Departure, language: str) -> str:
        """A date as the client's language writes it in their country (en_GB: 25 December 2026)."""
        country = departures.answer_value(record, "country")
        own = [f"{language}_{country.upper()}"] if isinstance(country, str) and country.isalpha() else []
        locale = next((tag for tag in [*own, language] if localedata.exists(tag)), FALLBACK)
        return format_date(moment.astimezone(zone_of(record)).date(), format="long", locale=locale)

    def respond(status: int, language: str, **context: object) -> web.Response:
        text = core.prompts.render_template(TEMPLATE, lang=language, company=core.settings.company or "", **context)
        headers = {**HEADERS, "Content-Language": language}
        if status == 429:
            headers["Retry-After"] = str(10)
        return web.Response(status=status, content_type="text/html", charset="utf-8", text=text, headers=headers)

    def notice_page(status: int, state: str, language: str, **values: object) -> web.Response:
        return respond(status, language, state=state, t=texts(language, days=FORM_LIFETIME.days, **values))

    def form(status: int, request: web.Request, record: Departure, sent_at: datetime, language: str,
             answers: ClientAnswers, errors: dict[str, str] | None = None) -> web.Response:  # fmt: skip
        voice = record.get("client_voice")
        until = sent_at + FORM_LIFETIME - timedelta(seconds=1)
        t = texts(language, until=day(until, record, language),
                  answered_on=day(parse_iso(voice["at"]), record, language) if voice else "")  # fmt: skip
        reasons = [(option, t.get(f"reasons.{option}") or _label(option)) for option in reason_options(script)]
        problems = {}
        for name, why in (errors or {}).items():
            problems[name] = t[ERROR_WORDS.get(why, "error_unreadable")].replace("{max}", str(LIMITS.get(name, "")))
        chosen = answers.language or _recorded_language(record) or language
        return respond(status, language, state="form", t=t, action=request.path, values=answers, errors=problems,
                       reasons=reasons, languages=[(code, endonym(code)) for code in language_options(script)],
                       chosen_language=chosen, answered=bool(voice), limits=LIMITS)  # fmt: skip

    def _label(option_id: str) -> str:
        question = script.by_role("reason")
        option = question.option(option_id) if question is not None else None
        return option.label if option is not None else option_id

    def _recorded_language(record: Departure) -> str:
        language = departures.answer_value(record, "language")
        return language if isinstance(language, str) else ""

    def departure(departure_id: int) -> Departure | None:
        try:
            record = departures.get(departure_id)
        except Refusal:
            return None
        return None if record is None or record.get("forgotten") else record

    async def tell(heard_notice: Coroutine[Any, Any, None]) -> None:
        if spawn is not None:
            spawn(heard_notice)
        else:
            await heard_notice

    async def page(request: web.Request) -> web.Response:
        if request.method not in READING and request.method != "POST":
            return web.Response(status=405, headers={"Allow": "GET, HEAD, POST"}, text="Open the link from the email.")
        secret = core.settings.link_secret
        token = request.match_info.get("token", "")
        link = read_client_token(secret, "form", token, core.clock.now()) if secret else None
        if link is None:
            log.info("form: a link with a bad signature")
            return notice_page(400, "broken", asked_language(request))
        record = departure(link.departure_id)
        if link.expired or record is None:
            # A departure forgotten or never stored answers as an expired link: a link tells nothing of others.
            return notice_page(410, "expired", asked_language(request))
        language = language_of(record)
        if request.method in READING:
            voice = record.get("client_voice")
            shown = answers_of(voice) if voice else ClientAnswers(language=_recorded_language(record))
            return form(200, request, record, link.sent_at, language, shown)
        body = await bounded_body(request, MAX_BODY)
        if body is None:
            log.info("departure %s: the client's form was too large", link.departure_id)
            return notice_page(413, "too_large", language)
        try:
            fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                              errors="strict", max_num_fields=MAX_FIELDS)  # fmt: skip
        except ValueError:  # not ASCII, bad UTF-8 behind the percent signs, too many fields
            shown = answers_of(record.get("client_voice"))
            return form(400, request, record, link.sent_at, language, shown, {"form": "unreadable"})
        answers = read_form(fields)
        record = departure(link.departure_id)  # as it is now: the body took a while to arrive
        if record is None:
            return notice_page(410, "expired", asked_language(request))
        try:
            heard = record_client_voice(departures, record, answers, core.clock.now())
        except SubmissionRefused as refused:
            status, state = REFUSED.get(refused.why, (410, "expired"))
            log.info("departure %s: the client's form was refused: %s", link.departure_id, refused.why)
            return notice_page(status, state, language)
        except ClientAnswersError as invalid:
            return form(422, request, record, link.sent_at, language, answers, invalid.errors)
        log.info("departure %s: the client answered the form", link.departure_id)
        await tell(core.dispatcher.courier.tell(heard.notice))
        language = language_of(heard.record)
        until = day(link.sent_at + FORM_LIFETIME - timedelta(seconds=1), heard.record, language)
        stay = heard.voice.get("stay_in_touch")
        return respond(200, language, state="thanks", t=texts(language, until=until, days=FORM_LIFETIME.days),
                       stay=stay, change=request.path)  # fmt: skip

    return page
