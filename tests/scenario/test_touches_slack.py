"""Stay in touch through Slack: drafts approved with buttons, nudges that wait for their person."""

from __future__ import annotations

import email
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from urllib.parse import urlsplit

import pytest

from bot.clock import parse_iso
from bot.dispatcher import Outcome
from handlers.slack import blocks as kit
from storage.records import Approval, SaveOutcome, Source, Status, TouchStatus
from tests.scenario.conftest import TEAM_CHANNEL, start_world

pytestmark = pytest.mark.asyncio
pytest_plugins = ["tests.touch_data"]


@pytest.fixture
def consenting(interview):
    """``consenting(world, am=, answers=, paid=)``: Acme Corp's interview, answered in Slack to the end."""

    def answered(world, am="U0ANN", answers=None, *, paid=True):
        return interview(world.departures, answers=answers, am=am, source=Source.SLACK, paid=paid)

    return answered


def touch(world, key):
    return world.core.store.touch_by_key(key)


def buttons(message) -> list[str]:
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def drafts_to(world, user="U0ANN"):
    return [m for m in world.fake.messages_to(f"D{user}") if f"{kit.EMAIL_PREFIX}send" in buttons(m)]


def outbox(world):
    return sorted(world.core.settings.outbox_dir.glob("*.eml"))


def read_eml(path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


async def due(world, clock, key):
    clock.set(parse_iso(touch(world, key)["due_at"]))
    return {s.touch["key"]: s.outcome for s in await world.core.dispatcher.run_due()}


async def test_the_first_email_is_a_draft_for_the_am_and_the_next_go_by_themselves(world, clock, consenting):
    consenting(world)
    settled = await due(world, clock, "1:greeting:christmas:2026")
    assert settled["1:greeting:christmas:2026"] == Outcome.AWAITING_APPROVAL and outbox(world) == []
    [draft] = drafts_to(world)
    assert buttons(draft) == ["email:send", "email:edit", "email:skip", "email:always_ask"]
    shown = json.dumps(draft["blocks"])
    assert "jane@acme.example" in shown and "Season's greetings" in shown and "Christmas Day" in shown

    await world.slack.press_in("U0ANN", draft, "email:send")
    assert touch(world, "1:greeting:christmas:2026")["status"] == TouchStatus.SENT
    [sent] = outbox(world)
    assert read_eml(sent)["To"].addresses[0].addr_spec == "jane@acme.example"
    assert "Sent to jane@acme.example" in json.dumps(world.fake.to("response_url")[-1])

    settled = await due(world, clock, "1:greeting:new_year:2027")
    assert settled["1:greeting:new_year:2027"] == Outcome.SENT and len(drafts_to(world)) == 1
    await world.slack.press_in("U0ANN", draft, "email:send")  # an old draft pressed again sends nothing
    assert len(outbox(world)) == 2


async def test_an_edited_draft_goes_as_written_and_escaped(world, clock, consenting):
    consenting(world)
    await due(world, clock, "1:greeting:christmas:2026")
    [draft] = drafts_to(world)
    await world.slack.press_in("U0ANN", draft, "email:edit")
    view = world.fake.to("views.open")[-1]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == kit.EMAIL_VIEW
    empty = await world.slack.submit("U0ANN", view, {"subject": {"type": "plain_text_input", "value": " "},
                                                     "text": {"type": "plain_text_input", "value": "Hi"}})  # fmt: skip
    assert empty.json()["response_action"] == "errors" and outbox(world) == []
    await world.slack.submit("U0ANN", view, {
        "subject": {"type": "plain_text_input", "value": "Merry Christmas from Ann"},
        "text": {"type": "plain_text_input", "value": "Dear Jane,\n\n<b>All the best</b> & more."},
    })  # fmt: skip
    [sent] = outbox(world)
    message = read_eml(sent)
    assert message["Subject"] == "Merry Christmas from Ann"
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;All the best&lt;/b&gt; &amp; more." in html and "<b>" not in html
    assert "Dear Jane," in message.get_body(("plain",)).get_content()
    assert "(edited)" in json.dumps(world.fake.to("chat.update")[-1])


async def test_skip_and_always_ask_keep_every_email_waiting_for_the_am(world, clock, consenting):
    consenting(world)
    await due(world, clock, "1:greeting:christmas:2026")
    [draft] = drafts_to(world)
    await world.slack.press_in("U0ANN", draft, "email:always_ask")
    kept = world.fake.to("response_url")[-1]
    assert buttons(kept) == ["email:send", "email:edit", "email:skip"]
    await world.slack.press_in("U0BOB", draft, "email:skip")  # not Bob's departure
    assert touch(world, "1:greeting:christmas:2026")["status"] == TouchStatus.AWAITING_APPROVAL
    await world.slack.press_in("U0ANN", draft, "email:skip")
    skipped = touch(world, "1:greeting:christmas:2026")
    assert (skipped["status"], skipped["reason"]) == (TouchStatus.CANCELLED, "skipped by U0ANN")
    await due(world, clock, "1:greeting:new_year:2027")
    assert len(drafts_to(world)) == 2 and outbox(world) == []
    await world.slack.press_in("U0ANN", drafts_to(world)[-1], "email:send")
    await due(world, clock, "1:check_in:+90d")
    assert len(drafts_to(world)) == 3 and len(outbox(world)) == 1  # "always ask" holds after a send too


async def test_a_nudge_waits_for_working_hours_in_the_am_zone_and_while_they_are_on_vacation(world, clock,
                                                                                             consenting):
    world.fake.users["U0ANN"]["tz"] = "America/New_York"
    world.fake.users["U0ANN"]["profile"].update(status_text="On vacation", status_emoji=":palm_tree:")
    consenting(world)
    key = "1:deadline:data_return:2026-12-23:1"

    def nudges():
        return [m for m in world.fake.messages_to("DU0ANN") if "Data of" in m["text"]]

    settled = await due(world, clock, key)  # 09:00 in Berlin, 03:00 in New York
    assert settled[key] == Outcome.DEFERRED and nudges() == []
    waiting = touch(world, key)
    assert "away" in waiting["deferred"]
    assert parse_iso(waiting["due_at"]).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour == 9
    await due(world, clock, key)  # still on vacation the next morning
    assert nudges() == []
    world.fake.users["U0ANN"]["profile"].update(status_text="", status_emoji="")
    settled = await due(world, clock, key)
    assert settled[key] == Outcome.SENT
    [nudge] = nudges()
    assert "Data of Acme Corp is to be returned or deleted" in nudge["text"]
    local = clock.now().astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert 9 <= local.hour < 17 and local.weekday() < 5


SAVING = ["yes", "1", "today", "1", "Too dear", "1200", "1", "A discount", "<@U0BOB>", "in 2 weeks"]


async def test_the_save_owner_answers_retained_or_still_leaving_with_a_button(world, clock, consenting):
    consenting(world, answers=SAVING)
    assert world.departures.get(1)["status"] == Status.SAVING
    await due(world, clock, "1:deadline:save_deadline:2026-12-09:1")
    [nudge] = world.fake.messages_to("DU0BOB")
    assert buttons(nudge) == ["nudge:retained", "nudge:leaving", "nudge:snooze:until"]
    await world.slack.press_in("U0BOSS", nudge, "nudge:leaving")  # an admin may too, but Bob answers first below
    assert world.departures.get(1)["status"] == Status.LEAVING
    assert world.departures.get(1)["save_outcome"] == SaveOutcome.LEAVING
    await world.slack.press_in("U0BOB", nudge, "nudge:retained")  # the owner may no longer: it is not saving
    assert world.departures.get(1)["status"] == Status.LEAVING
    assert "Only the account manager" in world.fake.texts_to("DU0BOB")[-1]
    settled = json.dumps(world.fake.to("response_url")[0])
    assert "Acme Corp is now leaving." in settled and "By <@U0BOSS>." in settled


async def test_the_save_owner_asks_for_more_time_with_a_date_and_is_asked_again_then(world, clock, consenting):
    consenting(world, answers=SAVING)
    await due(world, clock, "1:deadline:save_deadline:2026-12-09:1")
    [nudge] = world.fake.messages_to("DU0BOB")
    blocks = nudge["blocks"] if isinstance(nudge["blocks"], list) else json.loads(nudge["blocks"])
    [row] = [b for b in blocks if b["type"] == "actions"]
    picker = next(e for e in row["elements"] if e["type"] == "datepicker")
    later = (clock.now() + timedelta(days=21)).date()
    await world.slack.click("U0BOB", row["block_id"], picker, selected_date=later.isoformat())
    record = world.departures.get(1)
    assert record["status"] == Status.SAVING and "save_outcome" not in record
    assert world.departures.answer_value(record, "save_deadline") == later.isoformat()
    asked_again = [t for t in world.core.store.find_touches(departure_id=1, statuses=[TouchStatus.PENDING])
                   if t["payload"].get("what") == "save_deadline" and not t["payload"].get("lapse")]  # fmt: skip
    assert [parse_iso(t["due_at"]).date() for t in asked_again] == [later]


async def test_mark_paid_stops_the_payment_nudges(world, clock, consenting):
    consenting(world, paid=False)
    await due(world, clock, "1:deadline:final_payment_due:2026-12-16:1")
    [nudge] = world.fake.messages_to("DU0ANN")
    assert touch(world, "1:deadline:final_payment_due:2026-12-16:2")["status"] == TouchStatus.PENDING
    await world.slack.press_in("U0ANN", nudge, "nudge:paid")
    assert world.departures.get(1)["paid_at"]
    assert touch(world, "1:deadline:final_payment_due:2026-12-16:2")["status"] == TouchStatus.CANCELLED


async def test_an_unsubscribe_link_shows_a_button_and_only_its_post_opts_the_client_out(slack_settings, clock,
                                                                                            consenting):
    settings = replace(slack_settings, public_url="https://sendoff.example.com")
    async for world in start_world(settings, clock):
        consenting(world)
        record = world.departures.get(1)
        record["email_approval"] = Approval.AUTO
        world.core.store.save_departure(record)
        await due(world, clock, "1:greeting:christmas:2026")
        message = read_eml(outbox(world)[0])
        header = message["List-Unsubscribe"].strip()  # a long header is folded at its start
        assert header.startswith("<https://sendoff.example.com/unsubscribe?d=1&s=") and "mailto:" in header
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = urlsplit(header[1:].split(">")[0])
        forged = await world.session.get(f"{world.url}{link.path}?d=1&s={'0' * 32}")
        assert forged.status == 400 and not world.departures.get(1)["opted_out"]
        url = f"{world.url}{link.path}?{link.query}"
        for _ in range(3):  # a mail filter's link scanner opens it, more than once
            opened = await world.session.get(url)
            page = await opened.text()
            assert opened.status == 200 and '<form method="post"' in page and "Unsubscribe</button>" in page
        assert (await world.session.head(url)).status == 200
        assert not world.departures.get(1).get("opted_out")
        assert touch(world, "1:greeting:new_year:2027")["status"] == TouchStatus.PENDING
        forged_post = await world.session.post(f"{world.url}{link.path}?d=1&s={'1' * 32}",
                                               data="List-Unsubscribe=One-Click")  # fmt: skip
        assert forged_post.status == 400 and not world.departures.get(1).get("opted_out")
        one_click = await world.session.post(url, data="List-Unsubscribe=One-Click",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert one_click.status == 200 and "You are unsubscribed" in await one_click.text()
        assert world.departures.get(1)["opted_out"]
        assert touch(world, "1:greeting:new_year:2027")["status"] == TouchStatus.CANCELLED
        again = await world.session.post(url, data="List-Unsubscribe=One-Click")
        assert again.status == 200 and "You already told us" in await again.text()
        history = [h for h in world.departures.get(1)["history"] if h["event"] == "opt_out"]
        assert len(history) == 1  # idempotent: one opt-out, however often it is posted


async def test_the_digest_goes_to_the_channel_on_the_first_working_day_of_the_month(world, clock, consenting):
    consenting(world)
    world.core.playbook.plan_all()  # as sendoff run and the console do when they start
    await due(world, clock, "digest:2026-12")
    assert clock.now() == datetime(2026, 12, 1, 8, tzinfo=UTC)  # Tuesday 09:00 in Berlin
    [digest] = [t for t in world.fake.texts_to(TEAM_CHANNEL) if "Lessons from 2026-11" in t]
    assert "Top reasons: Price or budget (1)" in digest and "1,200" in digest
    assert touch(world, "digest:2027-01")["status"] == TouchStatus.PENDING


async def test_an_email_cut_off_while_sending_is_sent_only_when_the_am_says_so(world, clock, consenting):
    consenting(world)
    cut = touch(world, "1:greeting:christmas:2026")
    world.core.store.claim_touch(cut["id"], TouchStatus.PENDING, TouchStatus.SENDING)  # the bot died here
    await world.core.dispatcher.ask_about_unknown(world.core.dispatcher.recover())
    [asked] = drafts_to(world)
    assert buttons(asked) == ["email:send", "email:skip"] and "cannot tell whether it went" in asked["text"]
    clock.set(parse_iso(cut["due_at"]))
    await world.core.dispatcher.run_due()
    assert outbox(world) == [] and touch(world, cut["key"])["status"] == TouchStatus.UNKNOWN
    await world.slack.press_in("U0ANN", asked, "email:send")
    assert touch(world, cut["key"])["status"] == TouchStatus.SENT and len(outbox(world)) == 1


async def test_emails_of_a_departure_started_in_slack_reply_to_the_am(world, clock):
    await world.slack.command("Acme Corp")
    record = world.departures.get(1)
    assert record["am_email"] == "ann@example.com"
    assert world.core.dispatcher.win_back_draft(record)["Reply-To"] == "ann@example.com"


async def test_preview_puts_the_clients_next_emails_in_the_dm_as_html_files(world, clock, consenting):
    consenting(world)
    reply = await world.slack.command("preview Acme")
    assert reply.status == 200 and "follow in our direct messages" in reply.text
    files = world.fake.files("DU0ANN")
    assert [f.name[:3] for f in files] == ["01-", "02-", "03-", "04-", "05-"]
    assert all(f.name.endswith(".html") and b"</html>" in f.data.lower() for f in files)
    # the exit note first (it waits for the AM's yes), then the greetings and check-ins as they will read
    assert files[0].name.startswith("01-exit-note-") and files[1].name.startswith("02-greeting-2026-12-")
    assert b"Jane" in files[1].data
    refused = await world.slack.command("preview Acme", user="U0BOB")  # not Bob's departure
    assert "Only the account manager" in refused.text and len(world.fake.files()) == 5
