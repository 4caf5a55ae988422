"""A year of emails as clients get them, in their own languages: written to the outbox as .eml files by the
dispatcher, and sent through a real SMTP server (aiosmtpd) on an ephemeral port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

YEAR_END = datetime(2028, 1, 10, tzinfo=UTC)


def outbox(folder: Path) -> dict[str, tuple[bytes, EmailMessage]]:
    """Every .eml written, by its touch: the raw bytes and the message as a mail app reads it."""
    found = {}
    for path in sorted(folder.glob("*.eml")):
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        found[str(message["X-Sendoff-Touch"])] = (raw, message)
    return found


def plain(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content()).replace("\r\n", "\n").replace("\u00a0", " ")


async def test_a_german_clients_year_of_emails_is_in_german(settings, clock, interview_with):
    # the console with nothing configured: no MAIL_FROM, no company, no AM's name
    core = build_core(settings, RecordingNotifier(), clock=clock)
    try:
        interview_with(core.departures, contact_name="DR. AMY CHEN", language="")  # Enter: Germany's German
        async for _ in core.dispatcher.run_until(YEAR_END):
            pass
        sent = outbox(core.settings.outbox_dir)
    finally:
        core.close()
    assert sorted(sent) == ["1:check_in:+180d", "1:check_in:+30d", "1:check_in:+90d",
                            "1:greeting:christmas:2026", "1:greeting:christmas:2027",
                            "1:greeting:new_year:2027", "1:greeting:new_year:2028"]  # fmt: skip
    christmas = sent["1:greeting:christmas:2026"][1]
    assert christmas["Subject"] == "Frohe Weihnachten und schöne Feiertage"
    assert plain(christmas).startswith("Guten Tag, Dr. Chen,\n\nWeihnachten steht vor der Tür")
    assert "im Dezember 2026" in plain(sent["1:greeting:christmas:2027"][1])
    first = plain(sent["1:check_in:+30d"][1])
    assert "am 2. Dezember 2026" in first and "500,00 €" in first
    subjects = {key: str(message["Subject"]) for key, (_, message) in sent.items()}
    # each its own subject, but for Christmas, which is the same each year (New Year names its year)
    assert len(set(subjects.values())) == len(subjects) - 1, subjects
    for key, (raw, message) in sent.items():
        assert b"sendoff@localhost" not in raw and b"@sendoff.invalid" in raw, key  # never a real-looking address
        assert message["Content-Language"] == "de"
        assert message["List-Id"] == "Kundeninformationen <clients.sendoff.invalid>"
        assert len(raw) < 100_000, key
        texts = [p for p in message.walk() if p.get_content_maintype() == "text"]
        assert [p["Content-Transfer-Encoding"] for p in texts] == ["quoted-printable", "quoted-printable"], key
        assert "Ihr Kundenteam" in plain(message)  # nobody named to sign: the team, never "sendoff"


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, EmailMessage]] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((envelope.content, message))
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[Sink]:
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


async def test_a_japanese_year_end_greeting_goes_through_smtp_from_the_am(settings, clock, smtp, interview_with):
    configured = replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                         mail_from="clients@northwind.example", company="Northwind", am_name="Ana Ruiz",
                         am_email="ana@northwind.example")  # fmt: skip
    core = build_core(configured, RecordingNotifier(), clock=clock)
    try:
        interview_with(core.departures, contact_name="yamada taro", country="Japan", language="1")
        async for _ in core.dispatcher.run_until(datetime(2027, 1, 10, tzinfo=UTC)):
            pass
    finally:
        core.close()
    by_touch = {str(m["X-Sendoff-Touch"]): (raw, m) for raw, m in smtp.received}
    raw, year_end = by_touch["1:greeting:new_year:2027"]
    assert year_end["Subject"] == "年末のご挨拶"
    assert year_end["From"] == "Northwind Ana Ruiz <clients@northwind.example>"
    assert year_end["Reply-To"] == "Ana Ruiz <ana@northwind.example>"
    assert plain(year_end).startswith("Yamada Taro様\n\nご無沙汰しております。NorthwindのAna Ruizです。")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw and b"Content-Transfer-Encoding: base64" not in raw
    assert "配信停止" in str(year_end.get_body(("html",)).get_content())
