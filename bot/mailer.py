"""Emails to former clients: composed with email.message and Jinja2, sent by SMTP or to the outbox.

Templates live in prompts/email (a company's own in SENDOFF_PROMPTS/email):
``<kind>.txt.j2`` and ``<kind>.html.j2``, values autoescaped in HTML, and
the subjects in ``subjects.toml``. They are rendered through the prompts'
own template environment, so a company's template is found the same way as
its report. Header values are stripped of CR/LF.
"""

from __future__ import annotations

import os
import re
import tomllib
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Protocol, TypedDict

import aiosmtplib

from bot.answers import neutralise
from bot.clock import Clock
from bot.settings import Settings
from bot.unsubscribe import unsubscribe_link
from prompts import DEFAULTS, Messages, Prompts
from storage.records import NewDeparture, TouchKind, TouchPayload

DEFAULT_FROM = "sendoff <sendoff@localhost>"


class Envelope(TypedDict):
    """What composing reads of a touch; a touch is one, and so is a win-back draft that was never planned."""

    key: str
    departure_id: int | None
    kind: TouchKind
    recipient: str
    payload: TouchPayload


class Sender(Protocol):
    """One lane of sending: the outbox folder, or one SMTP connection."""

    async def send(self, message: Message) -> str:
        """Send ``message``; what happened, for the record. Raises SendError."""
        ...

    async def close(self) -> None: ...


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool, bounced: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.bounced = bounced  # the address itself was refused: stop writing to it


def _header(text: str) -> str:
    return neutralise(text).replace("\r", " ").replace("\n", " ")[:200]


class Composer:
    def __init__(self, settings: Settings, clock: Clock, prompts: Prompts) -> None:
        self.prompts = prompts
        subjects = DEFAULTS / "email" / "subjects.toml"
        own = settings.prompts_dir / "email" / "subjects.toml" if settings.prompts_dir else None
        self.subjects: dict[str, str] = tomllib.loads(subjects.read_text())
        if own is not None and own.is_file():
            self.subjects.update(tomllib.loads(own.read_text()))
        self.sender = settings.mail_from or DEFAULT_FROM
        self.clock = clock
        # the signed link exists only where the bot serves HTTP at a public address
        secret = settings.link_secret
        self.link = (settings.public_url, secret) if settings.public_url and secret else None

    def compose(self, touch: Envelope, record: NewDeparture, values: dict[str, str],
                override: tuple[str, str] | None = None) -> Message:  # fmt: skip
        """``values``: client, contact_name, topics, holiday: plain text, escaped by the HTML template.

        ``override``: the subject and text the AM wrote over the draft; the HTML part is made from that text.
        Built with email.mime (headers are encoded once, when sent): four times faster than
        Message, whose every header is parsed as it is set, and the dispatcher composes each email.
        """
        departure_id = touch["departure_id"]
        if departure_id is None:
            raise ValueError(f"{touch['key']}: an email to a client belongs to a departure")
        sender_name, sender_address = _split(self.sender)
        unsubscribe = sender_address
        link = unsubscribe_link(*self.link, departure_id) if self.link else ""
        context: dict[str, str] = {**values, "sender": sender_name or sender_address, "unsubscribe": unsubscribe,
                                   "unsubscribe_url": link}  # fmt: skip
        message = MIMEMultipart("alternative")
        subject = self.subjects[touch["kind"]].format(client=values.get("client", ""),
                                                      holiday=values.get("holiday", ""))  # fmt: skip
        # typeshed allows only str here, but a Header is what encodes a non-ASCII subject (once, when sent)
        message["Subject"] = Header(_header(override[0] if override else subject), "utf-8")  # type: ignore[assignment]
        message["From"] = _address(self.sender)
        message["To"] = formataddr((_header(values.get("contact_name") or ""), _header(touch["recipient"])), "utf-8")
        message["Reply-To"] = _address(record.get("am_email") or self.sender)
        # The moment it goes out by the bot's clock: the console's /advance shows when it would have gone.
        message["Date"] = format_datetime(self.clock.now())
        message["Message-ID"] = make_msgid(domain=sender_address.rpartition("@")[2] or "localhost")
        mailto = f"<mailto:{unsubscribe}?subject=unsubscribe%20{departure_id}>"
        message["List-Unsubscribe"] = f"<{link}>, {mailto}" if link else mailto
        if link:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058: mail apps' own button
        message["X-Sendoff-Touch"] = touch["key"]
        template: str = touch["kind"] if override is None else "edited"
        if override is not None:
            context["text"] = override[1]
        for extension, subtype in (("txt", "plain"), ("html", "html")):
            body = self.prompts.render_template(f"email/{template}.{extension}.j2", **context)
            message.attach(MIMEText(body, subtype, "utf-8"))
        return message


def _address(text: str) -> str:
    return formataddr(parseaddr(_header(text)), "utf-8")


def plain_text(message: Message) -> str:
    """The text/plain part of a composed email, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def _split(address: str) -> tuple[str, str]:
    name, _, rest = address.partition("<")
    return (name.strip(), rest.rstrip(">").strip()) if rest else ("", address.strip())


class Outbox:
    """Without SMTP: each email is written as an .eml file under data/outbox/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: Message) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        moment = parsedate_to_datetime(message["Date"]).strftime("%Y%m%dT%H%M%SZ")
        name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{moment}-{message['X-Sendoff-Touch']}") + ".eml"
        path = self.folder / name
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            out.write(bytes(message))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        return str(path)

    async def close(self) -> None:
        pass


class SmtpSender:
    """aiosmtplib, with the security chosen explicitly; one connection reused while it lasts."""

    def __init__(self, settings: Settings, messages: Messages) -> None:
        self.settings = settings
        self.messages = messages
        self._client: aiosmtplib.SMTP | None = None

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
        await client.connect()
        if s.smtp_username:
            await client.login(s.smtp_username, s.smtp_password or "")
        self._client = client
        return client

    async def send(self, message: Message) -> str:
        try:
            client = await self._connected()
            errors, response = await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            refused = self.messages.render("smtp_refused", error=err.recipients[0].message)
            raise SendError(refused, permanent=min(codes) >= 500, bounced=min(codes) >= 500) from None
        except aiosmtplib.SMTPResponseException as err:
            await self.close()
            raise SendError(f"{err.code} {err.message}", permanent=err.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as err:
            await self.close()
            raise SendError(self.messages.render("smtp_connection", error=err), permanent=False) from None
        return response

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def make_sender(settings: Settings, messages: Messages) -> Sender:
    return SmtpSender(settings, messages) if settings.smtp_host else Outbox(settings.outbox_dir)
