"""Emails to former clients: composed with email.message and Jinja2, sent by SMTP or to the outbox.

Each email is written in the client's language (the interview's "language" answer), by their account
manager: from "Ana Ruiz at Northwind <MAIL_FROM>", replies to the AM, signed by the AM. The words live
in prompts/email (a company's own in SENDOFF_PROMPTS/email): ``<kind>.txt.j2`` is the body of each kind
of email in English, ``<language>/<kind>.txt.j2`` in another language (English where that is missing);
``layout.txt.j2`` and ``layout.html.j2`` put the salutation, the body, the signature and the footer
around it, as plain text and as one responsive HTML page (values autoescaped); ``[<language>/]words.toml``
and ``subjects.toml`` hold the short texts (prompts.EmailWords). Dates and amounts are written the way
the client's language (and country) writes them, by Babel. Header values are stripped of CR/LF.
"""

from __future__ import annotations

import asyncio
import os
import re
import string
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime, formataddr, make_msgid, parseaddr, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast
from zoneinfo import ZoneInfo

import aiosmtplib
import jinja2
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message
from babel import localedata
from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency
from markupsafe import Markup, escape

from bot.answers import NameParts, name_parts, neutralise
from bot.client_links import FORM_PATH, form_link
from bot.clock import Clock, parse_iso
from bot.settings import Settings
from bot.unsubscribe import unsubscribe_link
from prompts import DEFAULTS, EMAIL_LANGUAGE, EMAIL_PLACEHOLDERS, EMAIL_VALUES, Messages, Prompts
from storage.records import NewDeparture, TouchKind, TouchPayload, UpdatePayload

# Where an email goes from when neither MAIL_FROM nor the AM's address is known: the reserved .invalid
# domain (RFC 2606), so that nothing is ever sent from an address that looks real and is not.
UNDELIVERABLE_DOMAIN = "sendoff.invalid"
# Text and HTML go quoted-printable, never base64: readable in the raw message, and not what spam filters
# hold against a text part that needs no encoding.
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP
# A line that ends the letter in a draft the AM edited: the footer after it is added again.
FOOTER_LINE = re.compile(r"^-- ?$", re.MULTILINE)
PREHEADER_LENGTH = 110
NO_NAME = NameParts("", "", "", "")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
BLANK_LINES = re.compile(r"\n[ \t]*(\n[ \t]*)+\n")


class Envelope(TypedDict):
    """What composing reads of a touch; a touch is one, and so is a win-back draft that was never planned."""

    key: str
    departure_id: int | None
    kind: TouchKind
    recipient: str
    payload: TouchPayload


# Called once the server has accepted the recipient, right before the message itself goes (DATA): it marks
# the touch in flight, durably. False: the touch is no longer the caller's (sent or cancelled meanwhile), and
# the message must not go.
Commit = Callable[[], Awaitable[bool]]


class Sender(Protocol):
    """One lane of sending: the outbox folder, or one SMTP connection. One send at a time uses it."""

    async def send(self, message: Message, commit: Commit | None = None) -> str:
        """Send ``message``; what happened, for the record.

        Raises SendError; NotCommitted when ``commit`` said no. Until ``commit`` is called, a failure means the
        message did not go: only what fails after it leaves a doubt.
        """
        ...

    def twin(self) -> Sender:
        """Another lane to the same place (a connection of its own), for a send that must not wait for this one."""
        ...

    async def close(self) -> None: ...


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool, bounced: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.bounced = bounced  # the address itself was refused: stop writing to it


class NotCommitted(Exception):
    """The touch was no longer the sender's to send when the server was ready for it: nothing went."""


@lru_cache(maxsize=4096)  # the same names and addresses come back in every email of an AM
def _header(text: str) -> str:
    return neutralise(text).replace("\r", " ").replace("\n", " ")[:200]


@dataclass(frozen=True)
class Author:
    """The account manager who writes to the client: the departure's own, else the console's (settings)."""

    name: str  # "" when not known
    email: str  # "" when not known


class Composer:
    def __init__(self, settings: Settings, clock: Clock, prompts: Prompts, *, form_base_url: str | None = None) -> None:
        """``form_base_url``: where the exit note's form is served when there is no public URL (SENDOFF_PUBLIC_URL),
        as in the console, which serves it locally; see ``serve_forms_at``."""
        self.settings = settings
        self.prompts = prompts
        self.words = prompts.email
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.company = settings.company or ""
        self.mail_from = parseaddr(_header(settings.mail_from)) if settings.mail_from else ("", "")
        question = prompts.script.by_role("salutation")
        # the styles a salutation answer may name; anything else it holds is the AM's own words
        self.styles = frozenset(o.id for o in question.options) if question is not None else frozenset()
        folders = [DEFAULTS / "email"] + ([settings.prompts_dir / "email"] if settings.prompts_dir else [])
        self.languages = self.words.languages | {d.name for f in folders if f.is_dir() for d in f.iterdir()
                                                 if d.is_dir()}  # fmt: skip
        # the signed link exists only where the bot serves HTTP at a public address
        secret = settings.link_secret
        self.link = (settings.public_url, secret) if settings.public_url and secret else None
        self.form_base_url = form_base_url.rstrip("/") if form_base_url else None
        # Templates as first found: the prompts are read once per process, and looking each one up again
        # (Jinja2 checks the file's time on every lookup) costs more than rendering it.
        self._templates: dict[str, jinja2.Template] = {}
        self._bodies: dict[tuple[TouchKind, str], str] = {}

    # -- the exit note's form link ---------------------------------------------------------
    def serve_forms_at(self, base_url: str | None) -> None:
        """The seam for a transport that serves the client's form itself (the console, on 127.0.0.1): exit
        notes link to ``base_url``/form/<token> when SENDOFF_PUBLIC_URL is not set. The link is signed with
        ``settings.link_secret`` (SLACK_SIGNING_SECRET or WEBHOOK_SECRET), which the form page checks it with:
        without a secret no link is made, and the note goes without its link sentence."""
        self.form_base_url = base_url.rstrip("/") if base_url else None

    def form_base(self) -> str | None:
        """Where the client's form is served, if a link to it can be made: the public URL, else the one the
        transport serves it at; None without a secret to sign the link."""
        if not self.settings.link_secret:
            return None
        return self.settings.public_url or self.form_base_url

    def form_link(self, departure_id: int, sent_at: datetime) -> str:
        """The exit note's link to the client's form, issued at ``sent_at`` (it lives 30 days from then);
        "" when none can be made."""
        base, secret = self.form_base(), self.settings.link_secret
        return form_link(base, secret, departure_id, sent_at) if base and secret else ""

    # -- who writes ------------------------------------------------------------------------
    def author(self, record: NewDeparture) -> Author:
        """The departure's AM (from Slack or the CRM) where it names them, else the console's AM."""
        name = _header(str(record.get("am_name") or self.settings.am_name or ""))
        email = _header(str(record.get("am_email") or self.settings.am_email or ""))
        return Author(name, email)

    def sender(self, author: Author, language: str = EMAIL_LANGUAGE) -> tuple[str, str]:
        """The From line's name and address: "Ana Ruiz at Northwind" at MAIL_FROM, else at the AM's own
        address, else at an address that cannot be delivered (never one that merely looks real)."""
        address = self.mail_from[1] or author.email or _undeliverable(author.name or self.company)
        if author.name and self.company:
            name = self._word(language, "from_name", am=author.name, company=self.company)
        else:
            name = author.name or self.company or self.mail_from[0]
        return _header(name), address

    # -- composing -------------------------------------------------------------------------
    def compose(self, touch: Envelope, record: NewDeparture, values: dict[str, str],
                override: tuple[str, str] | None = None, at: datetime | None = None) -> Message:  # fmt: skip
        """``values``: what the email says of the departure, as plain text (bot.drafts): client,
        contact_name, salutation (a style or the AM's own words), topics, holiday, language, country,
        ended (ISO date), final_payment and final_payment_currency, paid_at (ISO).

        ``override``: the subject and text the AM wrote over the draft; it is sent as written, in the layout.
        ``at``: when it goes, if not now (a preview): its date and what it says of time ("since December").
        Built with email.mime (headers are encoded once, when sent): four times faster than
        Message, whose every header is parsed as it is set, and the dispatcher composes each email.
        """
        departure_id = touch["departure_id"]
        if departure_id is None:
            raise ValueError(f"{touch['key']}: an email to a client belongs to a departure")
        language = values.get("language") or EMAIL_LANGUAGE
        update = update_payload(touch["payload"]) if touch["kind"] is TouchKind.UPDATE else None
        if update is not None:
            language = update.get("language") or EMAIL_LANGUAGE  # the language its approved text is in
        language = language if language in self.languages else EMAIL_LANGUAGE
        author = self.author(record)
        from_name, address = self.sender(author, language)
        moment = at or self.clock.now()
        contact = values.get("contact_name") or ""
        parts = name_parts(contact) if contact else NO_NAME
        context = self._context(touch, values, language, author, moment, parts)
        subject = override[0] if override else self._subject(touch["kind"], context, language, parts)
        link = unsubscribe_link(*self.link, departure_id) if self.link else ""
        exit_note = touch["kind"] is TouchKind.EXIT_NOTE
        # the exit note's form link is issued as it goes: its 30 days count from then
        form_url = self.form_link(departure_id, moment) if exit_note else ""
        context["form_url"] = form_url
        if update is not None:
            context["text"] = update.get("text", "")  # the update as approved: update.txt.j2 holds it
        if override is not None:
            # the AM's own letter, salutation and signature included; the footer is ours, and goes in once
            text = FOOTER_LINE.split(override[1].replace("\r\n", "\n"), maxsplit=1)[0]
            if form_url:
                text = self._fresh_form_links(text, form_url)
            context.update(text=text, salutation_line="", closing="", signature=[])
            body = self._render("email/edited.txt.j2", context)
        else:
            body = self._render(self._template(touch["kind"], language), context)
        paragraphs = [p.strip() for p in PARAGRAPH_BREAK.split(body) if p.strip()]
        stop_url = link or f"mailto:{address}?subject=unsubscribe%20{departure_id}"
        footer_stop = (self._word(language, "footer.stop_with_link", url=link) if link else
                       self._word(language, "footer.stop", address=address))  # fmt: skip
        why = "footer.why_exit_note" if exit_note else "footer.why"  # the note asks no consent of theirs
        footer_why = (self._word(language, why, company=self.company) if self.company else
                      self._word(language, f"{why}_no_company"))  # fmt: skip
        context.update(subject=subject, paragraphs=paragraphs, unsubscribe=address, unsubscribe_url=link,
                       stop_url=stop_url, stop_label=self._word(language, "footer.stop_link"), footer_why=footer_why,
                       footer_stop=footer_stop, preheader=_clip(paragraphs[0] if paragraphs else subject))  # fmt: skip

        message = MIMEMultipart("alternative")
        subject = _header(subject)
        # typeshed allows only str here, but a Header is what encodes a non-ASCII subject (once, when sent);
        # an ASCII one goes as it is, readable in the raw message
        message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
        message["From"] = formataddr((from_name, address), "utf-8")
        message["To"] = formataddr((_header(values.get("contact_name") or ""), _header(touch["recipient"])), "utf-8")
        message["Reply-To"] = formataddr((author.name, author.email) if author.email else (from_name, address),
                                         "utf-8")  # fmt: skip
        # The moment it goes out by the bot's clock: the console's /advance shows when it would have gone.
        message["Date"] = format_datetime(moment)
        domain = address.rpartition("@")[2] or UNDELIVERABLE_DOMAIN
        message["Message-ID"] = make_msgid(domain=domain)
        message["Content-Language"] = language
        # RFC 2919: which list this is, beside how to leave it; filters trust mail that names both
        list_name = (self._word(language, "list_name", company=self.company) if self.company else
                     self._word(language, "list_name_no_company"))  # fmt: skip
        message["List-Id"] = formataddr((_header(list_name), f"clients.{_label(domain)}"), "utf-8")
        mailto = f"<mailto:{address}?subject=unsubscribe%20{departure_id}>"
        message["List-Unsubscribe"] = f"<{link}>, {mailto}" if link else mailto
        if link:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058: mail apps' own button
        message["X-Sendoff-Touch"] = touch["key"]
        # the HTML part links the form; the text part holds the address as it is
        linked = {**context, "paragraphs": [_linked(p, form_url) for p in paragraphs]} if form_url else context
        for extension, subtype in (("txt", "plain"), ("html", "html")):
            rendered = self._render(f"email/layout.{extension}.j2", linked if extension == "html" else context)
            # a template's if-lines leave blank lines behind: never more than one between paragraphs
            message.attach(_text_part(subtype, BLANK_LINES.sub("\n\n", rendered).strip() + "\n"))
        return message

    def _fresh_form_links(self, text: str, form_url: str) -> str:
        """An edited exit note as it goes: the form link the AM saw in the draft (issued when it was shown)
        is issued again as the note goes, so that its 30 days count from when the client gets it."""
        base = self.form_base()
        if not base:
            return text
        return re.sub(re.escape(f"{base}{FORM_PATH}/") + r"\d+\.\d+\.[A-Za-z0-9_-]+", lambda _: form_url, text)

    def _context(self, touch: Envelope, values: Mapping[str, str], language: str, author: Author,
                 moment: datetime, parts: NameParts) -> dict[str, Any]:  # fmt: skip
        """Every value of EMAIL_VALUES (the layout's own are added by ``compose``), "" where there is none."""
        locale = _locale(language, values.get("country") or "")
        today = moment.astimezone(self.zone).date()
        # the touch's name in its key: 12:check_in:+30d, 12:greeting:christmas:2026
        name = touch["key"].split(":", 2)[2] if touch["key"].count(":") >= 2 else ""
        payload = cast(Mapping[str, Any], touch["payload"])  # holiday_id: set by the playbook beside holiday
        greeting = touch["kind"] is TouchKind.GREETING
        holiday_id = str(payload.get("holiday_id") or (name.partition(":")[0] if greeting else ""))
        last = name.rpartition(":")[2]
        year = last if greeting and last.isdigit() else str(today.year)
        contact = values.get("contact_name") or ""
        holiday = (self.words.first(language, f"holidays.{holiday_id}") if holiday_id else None) or \
            values.get("holiday") or str(payload.get("holiday") or "")  # fmt: skip
        context: dict[str, Any] = dict.fromkeys(EMAIL_VALUES, "")
        context.update(
            client=values.get("client", ""), contact_name=contact, first_name=parts.first or parts.full,
            topics=values.get("topics", ""), holiday=holiday, holiday_id=holiday_id, year=year,
            check_in=name if touch["kind"] is TouchKind.CHECK_IN else "", company=self.company,
            am_name=author.name, sender=author.name or self.company, language=language,
            logo_url=self.settings.logo_url or "",
        )  # fmt: skip
        ended = _day(values.get("ended"))
        if ended is not None:
            context["ended_on"] = _long_date(ended, locale)
            context["ended_month"] = _month(ended, locale)
            # only a month before this one: "our work ended in December 2026" reads oddly in that December
            if (ended.year, ended.month) < (today.year, today.month):
                context["since_month"] = context["ended_month"]
        amount = _amount(values.get("final_payment"))
        if values.get("paid_at") and amount:
            paid = parse_iso(values["paid_at"]).astimezone(self.zone).date()
            currency = values.get("final_payment_currency") or self.settings.currency
            context["final_payment"] = _money(str(amount), currency, locale)
            context["paid_on"] = _long_date(paid, locale)
        salutation = self._salutation(values.get("salutation") or "", parts, language)
        context["salutation_line"] = self._word(language, "salutation.line", salutation=salutation)
        context["closing"] = self.words.first(language, f"closing.{touch['kind']}", "closing.default") or ""
        if author.name:
            context["signature"] = [author.name, self.company] if self.company else [author.name]
        elif self.company:
            context["signature"] = [self._word(language, "signature.team", company=self.company)]
        else:
            context["signature"] = [self._word(language, "signature.team_no_company")]
        return context

    def _salutation(self, chosen: str, parts: NameParts, language: str) -> str:
        """The salutation in ``language``: the chosen style filled in with the contact's name, or the AM's own
        words as they typed them; a style that needs a part the name lacks falls back to the formal one."""
        if chosen and chosen not in self.styles:
            return chosen  # their own words ("Liebe Frau Chen")
        if not parts.full:
            return self._word(language, "salutation.nobody")
        names = parts.values()
        for style in dict.fromkeys((chosen or "formal", "formal")):
            pattern = self.words.first(language, f"salutation.{style}")
            used = {n for _, n, _, _ in string.Formatter().parse(pattern or "") if n}
            if pattern and all(names.get(n) for n in used):
                return self._fill(pattern, **names)
        return parts.full

    def _subject(self, kind: TouchKind, context: Mapping[str, Any], language: str, parts: NameParts) -> str:
        """The subject for this kind in ``language``: the one for this check-in or holiday, else the kind's."""
        sub = context["check_in"] or context["holiday_id"]
        pattern = self.words.first(language, f"subject.{kind}.{sub}", f"subject.{kind}.default") or ""
        return self._fill(pattern, **parts.values(), client=context["client"], company=self.company,
                          am=context["am_name"], holiday=context["holiday"], year=context["year"])  # fmt: skip

    def _template(self, kind: TouchKind, language: str) -> str:
        """The body template of ``kind`` in ``language``, else in English."""
        found = self._bodies.get((kind, language))
        if found is None:
            names = [f"email/{language}/{kind}.txt.j2", f"email/{kind}.txt.j2"]
            found = self._bodies[kind, language] = self.prompts.templates.select_template(names).name or names[-1]
        return found

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        """A template of prompts/ (the company's own first), plain text unless it is HTML (then autoescaped)."""
        template = self._templates.get(name)
        if template is None:
            template = self._templates[name] = self.prompts.templates.get_template(name)
            # Jinja copies the template's globals (a ChainMap over the environment's) into each render's
            # context: read from a plain dict, rendering an email's layouts costs half as much. The same
            # globals, and the environment's are set once, when prompts/ is loaded.
            template.globals = dict(template.globals)
        return template.render(**context)

    def _word(self, language: str, key: str, **values: str) -> str:
        """A short text in ``language`` (else English) with its placeholders filled in; "" if there is none."""
        return self._fill(self.words.first(language, key) or "", **values)

    @staticmethod
    def _fill(text: str, **values: str) -> str:
        """``text`` with its placeholders filled in once (never read as a template); "" for those not given."""
        return text.format(**{**dict.fromkeys(EMAIL_PLACEHOLDERS, ""), **values}) if text else ""


def update_payload(payload: TouchPayload) -> UpdatePayload:
    return cast(UpdatePayload, payload)  # the same dict: an update's touch holds these keys too


def _undeliverable(name: str) -> str:
    """An address built from a name in the .invalid domain: ana.ruiz@sendoff.invalid."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    local = re.sub(r"[^a-z0-9]+", ".", plain).strip(".")[:40].strip(".")
    return f"{local or 'account.manager'}@{UNDELIVERABLE_DOMAIN}"


def _label(domain: str) -> str:
    """A domain as the List-Id's label may hold it: letters, digits, dots and hyphens."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", domain).strip(".-").lower() or UNDELIVERABLE_DOMAIN


@lru_cache(maxsize=1024)  # Babel looks for the locale's file on disk each time
def _locale(language: str, country: str) -> str:
    """Babel's locale for writing to a client: the language as their country writes it (en_GB: 24 December
    2026; en_US: December 24, 2026), else the language alone, else English."""
    for tag in (f"{language}_{country.upper()}", language):
        if localedata.exists(tag):
            return tag
    return EMAIL_LANGUAGE


# Babel parses the locale and the pattern on every call, and many emails share their dates and amounts.
@lru_cache(maxsize=4096)
def _long_date(day: date, locale: str) -> str:
    return format_date(day, "long", locale=locale)


@lru_cache(maxsize=4096)
def _month(day: date, locale: str) -> str:
    return format_skeleton("yMMMM", day, locale=locale)


@lru_cache(maxsize=4096)
def _money(amount: str, currency: str, locale: str) -> str:
    """``amount`` as text: Decimal("500") and Decimal("500.0") are equal keys, but need not be written alike."""
    return format_currency(Decimal(amount), currency, locale=locale)


def _text_part(subtype: str, text: str) -> Message:
    """A text/``subtype`` part of ``text`` in UTF-8, quoted-printable: the very part that
    ``MIMENonMultipart("text", subtype).set_payload(text, UTF8_QP)`` makes, headers in the same order, built
    without parsing its Content-Type back to add the charset, and with each line encoded once per process."""
    part = Message()
    part["MIME-Version"] = "1.0"
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_quoted_printable(text))
    return part


def _quoted_printable(text: str) -> str:
    """``text`` as UTF8_QP encodes a body. Quoted-printable encodes each line on its own (only CR and LF end
    one), and the layouts' lines (the HTML's head and style, the footer) come back in every email."""
    raw = text.encode("utf-8")
    if not raw:
        return ""
    if b"\r" in raw:
        return str(UTF8_QP.body_encode(raw))
    return "\n".join([_quoted_line(line) for line in raw.split(b"\n")])


@lru_cache(maxsize=8192)
def _quoted_line(line: bytes) -> str:
    return str(UTF8_QP.body_encode(line)) if line else ""


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _amount(value: str | None) -> Decimal | None:
    """A positive amount, or None: a final payment of 0 is not worth a word."""
    try:
        amount = Decimal(value) if value else None
    except InvalidOperation:
        return None
    return amount if amount is not None and amount > 0 else None


def _linked(paragraph: str, url: str) -> str:
    """A paragraph of the HTML part with ``url`` as a link (escaped as the layout would escape it)."""
    if url not in paragraph:
        return paragraph
    anchor = Markup('<a href="{0}" style="color:#0b5cad;">{0}</a>').format(url)
    return escape(paragraph).replace(escape(url), anchor)


def _clip(text: str) -> str:
    return text if len(text) <= PREHEADER_LENGTH else text[: PREHEADER_LENGTH - 1].rstrip() + "…"


def plain_text(message: Message) -> str:
    """The text/plain part of a composed email, decoded."""
    return message_part(message, "plain")


def message_part(message: Message, subtype: str) -> str:
    """The text/``subtype`` part (plain, html) of a composed email, decoded; "" if it has none."""
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return ""


class Outbox:
    """Without SMTP: each email is written as an .eml file under data/outbox/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: Message, commit: Commit | None = None) -> str:
        if commit is not None and not await commit():
            raise NotCommitted()
        moment = parsedate_to_datetime(message["Date"]).strftime("%Y%m%dT%H%M%SZ")
        name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{moment}-{message['X-Sendoff-Touch']}") + ".eml"
        path = self.folder / name
        temporary = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as out:
                out.write(bytes(message))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except OSError as err:
            # a full disk is the outbox's own trouble, not the store's: retried like a server that is away
            raise SendError(f"outbox: {err}", permanent=False) from None
        return str(path)

    def twin(self) -> Outbox:
        return self  # each email is a file of its own: sends never share anything

    async def close(self) -> None:
        pass


class SmtpSender:
    """aiosmtplib, with the security chosen explicitly; one connection, reused while it lasts, one send at a time.

    Each send is MAIL, RCPT, then the caller's commit, then DATA, so that the touch is marked in flight only once
    the server has taken the recipient: a failure or a kill before that leaves nothing in doubt.
    """

    def __init__(self, settings: Settings, messages: Messages) -> None:
        self.settings = settings
        self.messages = messages
        self._client: aiosmtplib.SMTP | None = None
        self._reused = False  # the connection has carried a message: the server may have dropped it while idle

    def twin(self) -> SmtpSender:
        return SmtpSender(self.settings, self.messages)

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self.settings
        security = s.smtp_security
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port or {"tls": 465, "starttls": 587}.get(security, 25),
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=30,
        )
        self._client, self._reused = None, False
        await client.connect()
        if s.smtp_username:
            await client.login(s.smtp_username, s.smtp_password or "")
        self._client = client
        return client

    async def send(self, message: Message, commit: Commit | None = None) -> str:
        committed = False

        async def mark() -> bool:
            nonlocal committed
            committed = True  # from here on a failure leaves a doubt: the caller's touch is in flight
            try:
                return await commit() if commit is not None else True
            except Exception as err:
                raise _CommitFailed(err) from err

        try:
            sender, recipients = _envelope(message)
        except ValueError as err:
            raise SendError(self.messages.render("smtp_refused", error=err), permanent=True) from None
        try:
            client = await self._connected()
            try:
                response = await self._transaction(client, message, sender, recipients, mark)
            except aiosmtplib.SMTPServerDisconnected:
                if committed or not self._reused:
                    raise
                # a server closes an idle connection on its own: only this send finds out, and nothing went yet
                await self.close()
                response = await self._transaction(await self._connected(), message, sender, recipients, mark)
        except NotCommitted:
            raise
        except _CommitFailed as failed:
            raise failed.error from None  # the store's trouble (it is away), never taken for the server's
        except aiosmtplib.SMTPRecipientRefused as err:
            permanent = err.code >= 500
            error = f"{err.code} {err.message}"
            text = self.messages.render("smtp_refused", error=error) if permanent else error
            raise SendError(text, permanent=permanent, bounced=permanent) from None
        except aiosmtplib.SMTPResponseException as err:
            await self.close()
            raise SendError(f"{err.code} {err.message}", permanent=err.code >= 500) from None
        except aiosmtplib.SMTPNotSupported as err:
            # an address this server cannot take (non-ASCII without SMTPUTF8)
            raise SendError(self.messages.render("smtp_refused", error=err), permanent=True) from None
        except (aiosmtplib.SMTPException, OSError) as err:
            await self.close()
            raise SendError(self.messages.render("smtp_connection", error=err), permanent=False) from None
        self._reused = True
        return response

    async def _transaction(self, client: aiosmtplib.SMTP, message: Message, sender: str, recipients: list[str],
                           mark: Commit) -> str:  # fmt: skip
        """One message over ``client``: the envelope first, ``mark`` once the server has taken it, then DATA."""
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        utf8 = not (sender + "".join(recipients)).isascii()
        options = ["SMTPUTF8"] if utf8 else []
        if utf8 and not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("the server takes no address with non-ASCII characters")
        eight_bit = client.supports_extension("8bitmime")
        if eight_bit:
            options.append("BODY=8BITMIME")
        flat = flatten_message(message, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")
        if client.supports_extension("size"):
            # as it goes, every line ending a CRLF; counted, not converted: the DATA step converts it anyway
            size = len(flat) + flat.count(b"\n") - flat.count(b"\r\n") + 2
            options.insert(0, f"SIZE={size}")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await client.mail(sender, options=options, encoding=encoding)
            for recipient in recipients:
                await client.rcpt(recipient, encoding=encoding)
            if not await mark():
                raise NotCommitted()
        except (aiosmtplib.SMTPResponseException, NotCommitted):
            await _reset(client)  # the connection stays good for the next message
            raise
        except BaseException:
            # cancelled mid-command, or the commit failed: no DATA, and a connection whose next answer may
            # belong to a command nobody waits for is not trusted with another message
            client.close()
            raise
        try:
            return (await client.data(flat)).message
        except asyncio.CancelledError:
            client.close()  # mid-message: a QUIT would wait behind the server's answer to it
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


class _CommitFailed(Exception):
    """Carries the commit's own error (the store's) past the handling of the server's errors."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _envelope(message: Message) -> tuple[str, list[str]]:
    """Who the message is from and to, as SMTP's MAIL and RCPT take them."""
    sender = extract_sender(message)
    recipients = extract_recipients(message)
    if not sender or not recipients:
        raise ValueError("an email needs a From and a To")
    return sender, recipients


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET after a refused envelope; a connection that cannot even do that is closed."""
    if not client.is_connected:
        return
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def make_sender(settings: Settings, messages: Messages) -> Sender:
    return SmtpSender(settings, messages) if settings.smtp_host else Outbox(settings.outbox_dir)
