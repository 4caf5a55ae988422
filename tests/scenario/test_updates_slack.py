"""An update to former clients written in Slack's modal, approved by a second admin from the request in their DM,
and delivered by a real SMTP server at 09:00 the client's time: in German where a German text was given, in
English otherwise, only to the clients who asked for its topics, each with the one-click unsubscribe."""

from __future__ import annotations

import asyncio
import email
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from bot.mailer import plain_text
from handlers.slack import blocks as kit
from storage.records import TouchKind, TouchStatus
from tests.scenario.conftest import start_world

pytestmark = pytest.mark.asyncio
pytest_plugins = ["tests.touch_data"]

THURSDAY_NINE = datetime(2026, 11, 26, 8, tzinfo=UTC)  # 09:00 in Berlin, the morning after START
GERMAN = "Unser neuer SEO-Bericht ist da."
ENGLISH = "Our new SEO report is out."


class Inbox:
    """What the SMTP server accepted: each message with the recipients of its envelope."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    box = Inbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(box), "127.0.0.1", 0)
    yield box, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def world(slack_settings, clock, inbox):
    """Two admins: U0ANN writes, U0BOSS approves; email through the real SMTP server, with the one-click link."""
    _, port = inbox
    configured = replace(slack_settings, admins=frozenset({"U0ANN", "U0BOSS"}), smtp_host="127.0.0.1",
                         smtp_port=port, smtp_security="none", mail_from="Team <team@agency.example>",
                         public_url="https://sendoff.example.com")  # fmt: skip
    async for built in start_world(configured, clock):
        yield built


def former_clients(world, interview_with) -> None:
    d = world.departures
    interview_with(d, "Kunde GmbH", am="U0ANN", topics="SEO und Inhalte", language="de",
                   contact_email="anna@kunde.example")  # fmt: skip
    interview_with(d, "Acme Corp", am="U0ANN", topics="seo", language="en", contact_email="jane@acme.example")
    interview_with(d, "Pricing Ltd", am="U0ANN", topics="pricing", contact_email="sam@pricing.example")


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


async def open_modal(world) -> dict[str, Any]:
    reply = await world.slack.command("update")
    assert reply.status == 200
    return json.loads(json.dumps(world.fake.to("views.open")[-1]["view"]))


def typed(text: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": text}


async def test_an_update_written_in_the_modal_and_approved_reaches_exactly_who_asked(world, clock, inbox,
                                                                                     interview_with):  # fmt: skip
    box, _ = inbox
    former_clients(world, interview_with)
    view = await open_modal(world)
    assert view["callback_id"] == kit.UPDATE_VIEW
    fields = [b["block_id"] for b in view["blocks"]]
    assert fields[:2] == ["topics", "text"] and "translation_de" in fields and "translation_en" not in fields

    reply = await world.slack.submit("U0ANN", view, {"topics": typed("SEO"), "text": typed(ENGLISH),
                                                     "translation_de": typed(GERMAN)})  # fmt: skip
    assert reply.status == 200 and not reply.text.strip()  # accepted: the modal closes
    told = "\n".join(world.fake.texts_to("DU0ANN"))
    assert "Update 1 is drafted. Former clients who would get it, each at 09:00 their time once approved: 2." in told
    assert "not Pricing Ltd: asked to hear about other topics (pricing)" in told

    [request] = [m for m in world.fake.messages_to("DU0BOSS") if "waits for a second admin" in m["text"]]
    assert "Translations: de" in request["text"] and ENGLISH in request["text"]
    assert kit.UPDATE_APPROVE in {e["action_id"] for b in blocks_of(request) if b["type"] == "actions"
                                  for e in b["elements"]}  # fmt: skip

    # the author cannot approve their own: the button says so to them, and nothing is planned
    await world.slack.press_in("U0ANN", request, kit.UPDATE_APPROVE)
    assert any("a second admin approves it, not its author" in t for t in world.fake.texts_to("DU0ANN"))
    assert not [t for t in world.core.store.find_touches() if t["kind"] is TouchKind.UPDATE]

    await world.slack.press_in("U0BOSS", request, kit.UPDATE_APPROVE)
    planned = [t for t in world.core.store.find_touches() if t["kind"] is TouchKind.UPDATE]
    assert sorted(t["recipient"] for t in planned) == ["anna@kunde.example", "jane@acme.example"]
    assert {t["due_at"] for t in planned} == {"2026-11-26T08:00:00.000Z"}  # 09:00 in Berlin, the next morning

    await world.core.dispatcher.run_due()
    assert box.received == []  # not before 09:00
    clock.set(THURSDAY_NINE)
    await world.core.dispatcher.run_due()
    await world.core.dispatcher.run_due()  # once: a second tick sends nothing more
    got = {rcpt[0]: message for rcpt, message in box.received}
    assert sorted(got) == ["anna@kunde.example", "jane@acme.example"] and len(box.received) == 2
    assert GERMAN in plain_text(got["anna@kunde.example"]) and got["anna@kunde.example"]["Content-Language"] == "de"
    assert ENGLISH in plain_text(got["jane@acme.example"])
    for message in got.values():
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "<https://sendoff.example.com/unsubscribe?d=" in message["List-Unsubscribe"]
    assert {t["status"] for t in world.core.store.find_touches() if t["kind"] is TouchKind.UPDATE} == {
        TouchStatus.SENT}


async def test_the_modal_refuses_beside_the_field_at_fault_and_keeps_nothing(world, interview_with):
    former_clients(world, interview_with)
    view = await open_modal(world)
    reply = await world.slack.submit("U0ANN", view, {"topics": typed("  "), "text": typed(ENGLISH)})
    assert reply.json()["response_action"] == "errors" and set(reply.json()["errors"]) == {"topics"}
    reply = await world.slack.submit("U0ANN", view, {"topics": typed("SEO"), "text": typed("   ")})
    assert set(reply.json()["errors"]) == {"text"}
    assert world.core.store.list_updates() == []
    assert world.fake.messages_to("DU0BOSS") == []


async def test_a_translation_can_follow_in_chat_before_approval(world, interview_with):
    former_clients(world, interview_with)
    await world.slack.command(f"update SEO: {ENGLISH}")
    reply = await world.slack.command(f"translate 1 de: {GERMAN}")
    said = json.dumps(reply.json())
    assert "Update 1 now has its de text (translations: de). Former clients who would get it: 2." in said
    assert world.core.store.get_update(1)["translations"] == {"de": GERMAN}
    refused = await world.slack.command("translate 1 en: Our report")
    assert "written in English" in json.dumps(refused.json())


async def test_the_whole_flow_note_form_and_update_over_smtp_and_http(world, clock, inbox, interview_with):
    """The AM's note goes over SMTP; the client answers the form from its link over HTTP, asking for SEO news
    (the AM had heard "pricing"); the AM hears it in Slack; an SEO update then reaches them by their own wish."""
    box, _ = inbox
    interview_with(world.departures, "Pricing Ltd", am="U0ANN", topics="pricing", contact_email="sam@pricing.example")
    await world.core.dispatcher.run_due()
    [draft] = [m for m in world.fake.messages_to("DU0ANN") if "personal note" in m.get("text", "")]
    await world.slack.press_in("U0ANN", draft, f"{kit.EMAIL_PREFIX}send")
    clock.set(THURSDAY_NINE)
    await world.core.dispatcher.run_due()
    [(to, note)] = box.received
    assert to == ["sam@pricing.example"]
    [link] = re.findall(r"https://sendoff\.example\.com(/form/\S+)", plain_text(note))

    form = {"reason": "price", "words": "Too dear for us now", "stay_in_touch": "yes", "topics": "SEO audits",
            "language": "en"}  # fmt: skip
    async with world.session.post(world.url + link, data=form) as response:
        assert response.status == 200 and "Thank you" in await response.text()
    await world.settle()
    assert any("Pricing Ltd answered the form" in t for t in world.fake.texts_to("DU0ANN"))

    await world.slack.command(f"update SEO: {ENGLISH}")
    [request] = [m for m in world.fake.messages_to("DU0BOSS") if "waits for a second admin" in m["text"]]
    assert "Former clients who would get it, each at 09:00 their time: 1." in request["text"]
    await world.slack.press_in("U0BOSS", request, kit.UPDATE_APPROVE)
    clock.set(THURSDAY_NINE + timedelta(days=1))  # Friday 09:00 in Berlin: the next morning at nine
    await world.core.dispatcher.run_due()
    [(to, update)] = box.received[1:]
    assert to == ["sam@pricing.example"] and ENGLISH in plain_text(update)
