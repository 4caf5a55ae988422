"""The exit note in Slack: a DM with the draft and Send, Edit, Skip, over real HTTP against the fake Slack;
what goes is an .eml in the outbox, at the client's next 09:00, with the link to their form."""

from __future__ import annotations

import email
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy

import pytest

from bot.client_links import read_client_token
from bot.clock import iso
from bot.dispatcher import Outcome
from handlers.slack import blocks as kit
from storage.records import Approval, Source, TouchStatus
from tests.fakes.slack_driver import SIGNING_SECRET
from tests.scenario.conftest import start_world

pytestmark = pytest.mark.asyncio
pytest_plugins = ["tests.touch_data"]

NOTE = "1:exit_note"
PUBLIC = "https://sendoff.example.com"
THURSDAY_NINE = datetime(2026, 11, 26, 8, tzinfo=UTC)  # 09:00 in Berlin, the morning after START


@pytest.fixture
async def world(slack_settings, clock):
    """The bot as ``sendoff run`` serves it at a public address: its links are signed with the signing secret."""
    async for built in start_world(replace(slack_settings, public_url=PUBLIC), clock):
        yield built


@pytest.fixture
def confirmed(interview):
    """Acme Corp's interview, answered in Slack to the end by U0ANN: confirmed, with jane@acme.example."""

    def answered(world, **kwargs):
        return interview(world.departures, am="U0ANN", source=Source.SLACK, **kwargs)

    return answered


def buttons(message) -> list[str]:
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def notes_to(world, user="U0ANN"):
    return [m for m in world.fake.messages_to(f"D{user}") if "personal note" in m.get("text", "")]


def outbox(world):
    folder = world.core.settings.outbox_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def note(world):
    return world.core.store.touch_by_key(NOTE)


async def run(world):
    return {s.touch["key"]: s.outcome for s in await world.core.dispatcher.run_due()}


async def drafted(world):
    """The dispatcher runs (as the scheduler would, right after the answers): the DM with the draft."""
    assert (await run(world))[NOTE] == Outcome.AWAITING_APPROVAL
    [message] = notes_to(world)
    return message


async def test_send_in_slack_sets_the_note_for_nine_and_it_goes_once_with_the_form_link(world, clock, confirmed):
    record = confirmed(world)
    record["email_approval"] = Approval.AUTO  # other emails would go by themselves: the note still asks
    world.core.store.save_departure(record)
    message = await drafted(world)
    assert buttons(message) == [f"{kit.EMAIL_PREFIX}send", f"{kit.EMAIL_PREFIX}edit", f"{kit.EMAIL_PREFIX}skip"]
    shown = json.dumps(message["blocks"])
    assert "Acme Corp has confirmed they are leaving" in shown and "jane@acme.example" in shown
    assert "Thank you, and one question" in shown and f"{PUBLIC}/form/" in shown
    assert outbox(world) == []

    await world.slack.press_in("U0ANN", message, f"{kit.EMAIL_PREFIX}send")
    said = json.dumps(world.fake.to("response_url")[-1])
    assert "Approved: it goes to jane@acme.example on Thu 26 Nov 2026 09:00 Europe/Berlin (their time)." in said
    assert note(world)["status"] is TouchStatus.PENDING and outbox(world) == []
    await world.slack.press_in("U0ANN", message, f"{kit.EMAIL_PREFIX}send")  # pressed again: nothing new
    assert outbox(world) == [] and note(world)["due_at"] == iso(THURSDAY_NINE)

    clock.set(THURSDAY_NINE)
    assert (await run(world))[NOTE] == Outcome.SENT
    assert NOTE not in await run(world)
    [path] = outbox(world)
    sent = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert sent["To"].addresses[0].addr_spec == "jane@acme.example"
    text = sent.get_body(("plain",)).get_content()
    [token] = re.findall(re.escape(f"{PUBLIC}/form/") + r"(\S+)", text)
    link = read_client_token(SIGNING_SECRET, "form", token, clock.now())
    assert link is not None and link.departure_id == 1 and link.sent_at == THURSDAY_NINE
    assert world.departures.get(1)["exit_note_sent_at"] == iso(THURSDAY_NINE)
    assert len(notes_to(world)) == 1  # asked once


async def test_edit_in_slack_sends_the_edited_text(world, clock, confirmed):
    confirmed(world)
    message = await drafted(world)
    await world.slack.press_in("U0ANN", message, f"{kit.EMAIL_PREFIX}edit")
    view = world.fake.to("views.open")[-1]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == kit.EMAIL_VIEW and f"{PUBLIC}/form/" in json.dumps(view)
    await world.slack.submit("U0ANN", view, {
        "subject": {"type": "plain_text_input", "value": "Thank you, Jane"},
        "text": {"type": "plain_text_input", "value": "Dear Jane,\n\nsorry to see you go. What tipped it?\n\nAnn"},
    })  # fmt: skip
    assert "Approved: it goes to jane@acme.example" in json.dumps(world.fake.to("chat.update")[-1])
    assert outbox(world) == []
    clock.set(THURSDAY_NINE)
    assert (await run(world))[NOTE] == Outcome.SENT
    sent = email.message_from_bytes(outbox(world)[0].read_bytes(), policy=policy.default)
    assert sent["Subject"] == "Thank you, Jane"
    text = sent.get_body(("plain",)).get_content()
    assert "sorry to see you go. What tipped it?" in text and "Would you tell me why?" not in text


async def test_skip_in_slack_cancels_the_note_for_good(world, clock, confirmed):
    confirmed(world)
    message = await drafted(world)
    await world.slack.press_in("U0BOB", message, f"{kit.EMAIL_PREFIX}skip")  # not Bob's departure
    assert note(world)["status"] is TouchStatus.AWAITING_APPROVAL
    await world.slack.press_in("U0ANN", message, f"{kit.EMAIL_PREFIX}skip")
    skipped = note(world)
    assert (skipped["status"], skipped["reason"]) == (TouchStatus.CANCELLED, "skipped by U0ANN")
    world.core.playbook.plan(world.departures.get(1))
    clock.set(THURSDAY_NINE)
    await run(world)
    assert outbox(world) == [] and len(notes_to(world)) == 1 and note(world)["status"] is TouchStatus.CANCELLED


async def test_a_german_clients_note_in_slack_is_in_german(world, clock, interview_with):
    interview_with(world.departures, am="U0ANN", language="de")
    message = await drafted(world)
    shown = json.dumps(message["blocks"], ensure_ascii=False)
    assert "Vielen Dank – und eine kurze Frage" in shown and "Darf ich fragen, was den Ausschlag gegeben hat?" in shown
    await world.slack.press_in("U0ANN", message, f"{kit.EMAIL_PREFIX}send")
    clock.set(THURSDAY_NINE)
    await run(world)
    sent = email.message_from_bytes(outbox(world)[0].read_bytes(), policy=policy.default)
    assert sent["Content-Language"] == "de" and "Dieses kurze Formular" in sent.get_body(("plain",)).get_content()
