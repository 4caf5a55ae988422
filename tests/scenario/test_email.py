"""Emails through a real SMTP server (aiosmtpd) on an ephemeral port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from bot.clock import parse_iso
from bot.dispatcher import Outcome
from bot.lifecycle import Lifecycle
from storage.records import Channel, TouchKind, TouchStatus

pytest_plugins = ["tests.touch_data"]


class Sink:
    """Accepts mail, or answers the queued replies first (such as "421 ...")."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.replies: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
async def smtp():
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


@pytest.fixture
def mail_core(settings, clock, smtp, notifier):
    configured = replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                         mail_from="Team <team@agency.example>")  # fmt: skip
    core = build_core(configured, notifier, clock=clock)
    yield core
    core.close()


async def test_an_email_is_multipart_escaped_and_can_be_unsubscribed(mail_core, clock, smtp, interview):
    interview(mail_core.departures)
    greeting = next(t for t in mail_core.store.find_touches() if t["kind"] == TouchKind.GREETING)
    clock.set(parse_iso(greeting["due_at"]))  # the day before Christmas Eve, 09:00 in Berlin
    await mail_core.dispatcher.run_due()
    message = smtp.messages[0]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"].addresses[0].addr_spec == "jane@acme.example"
    html = message.get_body(("html",)).get_content()
    assert "Jane &lt;b&gt;Roe&lt;/b&gt;" in html and "<b>Roe" not in html
    assert "Jane <b>Roe</b>" in message.get_body(("plain",)).get_content()
    assert message["Date"] == "Wed, 23 Dec 2026 08:00:00 +0000"
    assert message["Message-ID"].endswith("@agency.example>")
    assert message["List-Unsubscribe"].startswith("<mailto:team@agency.example?subject=unsubscribe")
    assert message["Reply-To"] and "\n" not in message["Subject"]


async def test_a_421_is_retried_and_a_550_fails_and_tells_the_am(mail_core, clock, smtp, notifier, interview):
    interview(mail_core.departures)
    smtp.replies = ["421 Try again later"]
    clock.advance(timedelta(days=28))  # 23 December: the Christmas greeting
    outcomes = [s.outcome for s in await mail_core.dispatcher.run_due()]
    assert Outcome.RETRY in outcomes and smtp.messages == []
    clock.advance(timedelta(minutes=10))
    assert [s.outcome for s in await mail_core.dispatcher.run_due()] == [Outcome.SENT]
    assert len(smtp.messages) == 1

    smtp.replies = ["550 No such user"]
    clock.advance(timedelta(days=7))  # the New Year greeting
    emails = [s for s in await mail_core.dispatcher.run_due() if s.touch["channel"] == Channel.EMAIL]
    assert [s.outcome for s in emails] == [Outcome.FAILED]
    assert any("550 No such user" in n.text for n in notifier.notices)


async def test_a_held_greeting_goes_through_smtp_once_the_payment_is_in(mail_core, clock, smtp, notifier, interview):
    interview(mail_core.departures, paid=False)  # 500 was due 16 December
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))  # Christmas Eve, 09:00 in Berlin
    [held] = [s for s in await mail_core.dispatcher.run_due() if s.touch["kind"] == TouchKind.GREETING]
    assert held.outcome == Outcome.HELD and smtp.messages == []
    touch = mail_core.store.touch_by_key("1:greeting:christmas:2026")
    assert touch["status"] == TouchStatus.PENDING and touch["reason"].startswith("held: the final payment is overdue")
    clock.set(datetime(2026, 12, 23, 14, tzinfo=UTC))
    Lifecycle(mail_core.departures).mark_paid(mail_core.departures.get(1), actor="ann")
    sent = [s for s in await mail_core.dispatcher.run_due() if s.touch["kind"] == TouchKind.GREETING]
    assert [s.outcome for s in sent] == [Outcome.SENT] and len(smtp.messages) == 1
    assert smtp.messages[0]["X-Sendoff-Touch"] == "1:greeting:christmas:2026"
    assert not any("holding" in n.text for n in notifier.notices)


async def test_next_years_greetings_go_out_as_the_clock_moves_on(mail_core, clock, smtp, interview):
    interview(mail_core.departures)
    async for _ in mail_core.dispatcher.run_until(datetime(2028, 1, 10, tzinfo=UTC)):
        pass
    greeted = sorted(m["X-Sendoff-Touch"] for m in smtp.messages if ":greeting:" in m["X-Sendoff-Touch"])
    assert greeted == ["1:greeting:christmas:2026", "1:greeting:christmas:2027", "1:greeting:new_year:2027",
                       "1:greeting:new_year:2028"]  # fmt: skip
