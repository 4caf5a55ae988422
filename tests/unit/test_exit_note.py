"""The exit note: once the client confirmed and an address is known, the AM's personal note waits for their
yes (always, wherever they are), then goes at the client's next 09:00 on a working day, once, with the link
to the client's short form. On the movable clock, with the real core and a notifier that keeps what it hears
(like the console, it shows no drafts of other emails)."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_core
from bot.client_links import read_client_token
from bot.clock import iso, parse_iso
from bot.dispatcher import Outcome
from bot.lifecycle import Lifecycle
from bot.mailer import plain_text
from bot.notify import Action
from bot.privacy import Privacy
from storage.records import Approval, SaveOutcome, Source, Status, TouchKind, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

NOTE = "1:exit_note"
PUBLIC = "https://sendoff.example.com"
SECRET = "test-link-secret"
BERLIN = ZoneInfo("Europe/Berlin")
# START (tests/conftest.py) is Wednesday 25 November 2026, 11:00 in Berlin: the next 09:00 is Thursday's.
THURSDAY_NINE = datetime(2026, 11, 26, 8, tzinfo=UTC)


@pytest.fixture
def linked(settings, notifier, clock):
    """The core of a bot with a public address and a secret to sign links with (as ``sendoff run`` has)."""
    built = build_core(replace(settings, public_url=PUBLIC, webhook_secret=SECRET, company="Northwind",
                               am_name="Ann Smith"), notifier, clock=clock)  # fmt: skip
    yield built
    built.close()


def note(core):
    return core.store.touch_by_key(NOTE)


def drafts(notifier):
    return [n for n in notifier.notices if n.touch is not None and n.touch["kind"] is TouchKind.EXIT_NOTE]


def outbox(core):
    folder = core.settings.outbox_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def read(path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


async def run(core):
    return {s.touch["key"]: s for s in await core.dispatcher.run_due()}


async def shown(core, notifier):
    """Run the dispatcher: the note is shown to the AM as a draft; the notice that shows it."""
    settled = await run(core)
    assert settled[NOTE].outcome is Outcome.AWAITING_APPROVAL
    [notice] = drafts(notifier)
    return notice


# -- when it is drafted ---------------------------------------------------------------------------------
def test_the_note_is_planned_once_the_departure_is_confirmed_and_an_address_is_known(core, interview,
                                                                                      consenting_answers):
    departures = core.departures
    record = interview(departures, answers=consenting_answers[:1], paid=False)  # confirmed: yes
    assert departures.answer_value(record, "confirmed") == "yes" and note(core) is None  # nobody to write to yet
    before_address = consenting_answers[:consenting_answers.index("jane@acme.example")]
    record = interview(departures, "Beta Ltd", answers=before_address, paid=False)
    assert core.store.touch_by_key(f"{record['id']}:exit_note") is None
    departures.answer(record, "jane@acme.example", actor="ann")
    planned = core.store.touch_by_key(f"{record['id']}:exit_note")
    assert planned["status"] is TouchStatus.PENDING and planned["recipient"] == "jane@acme.example"
    assert parse_iso(planned["due_at"]) == core.clock.now()  # due for the AM's yes at once


def test_an_address_from_the_crm_is_enough_once_the_am_confirms(core):
    departures = core.departures
    record = departures.start("Acme Corp", am="ann", source=Source.CRM,
                              prefill={"contact_email": "jane@acme.example"}).departure  # fmt: skip
    assert note(core) is None  # not confirmed yet
    departures.answer(record, "yes", actor="ann")
    assert note(core)["recipient"] == "jane@acme.example"


def test_not_yet_confirmed_no_note(core):
    departures = core.departures
    record = departures.start("Acme Corp", am="ann", source=Source.CRM,
                              prefill={"contact_email": "jane@acme.example"}).departure  # fmt: skip
    departures.answer(record, "not_yet", actor="ann")
    assert note(core) is None


async def test_the_note_always_asks_even_where_other_drafts_are_not_shown_and_emails_go_by_themselves(
        core, clock, notifier, interview):  # fmt: skip
    record = interview(core.departures)
    record["email_approval"] = Approval.AUTO  # "the rest go by themselves": not for the exit note
    core.store.save_departure(record)
    assert not notifier.shows_drafts
    notice = await shown(core, notifier)
    assert notice.actions == (Action.SEND, Action.EDIT, Action.SKIP) and notice.recipient == "ann"
    assert "Acme Corp has confirmed they are leaving" in notice.text and "jane@acme.example" in notice.text
    text = plain_text(notice.draft)
    assert "Acme Corp has decided to end our work together" in text and "Would you tell me why?" in text
    assert note(core)["status"] is TouchStatus.AWAITING_APPROVAL
    # nothing goes without the yes: not later that day, not the next morning; asked once; skipped in time
    for hours in (1, 22, 24 * 7):
        clock.set(clock.now() + timedelta(hours=hours))
        await run(core)
        assert outbox(core) == [] and len(drafts(notifier)) == 1
    clock.set(clock.now() + timedelta(days=8))
    settled = await run(core)
    assert settled[NOTE].outcome is Outcome.SKIPPED and note(core)["reason"] == "the draft was not approved in time"
    core.playbook.plan(core.departures.get(1))
    assert note(core)["status"] is TouchStatus.SKIPPED and outbox(core) == []


# -- Send: the client's next 09:00 on a working day, once --------------------------------------------------
async def test_send_sets_it_for_the_next_nine_and_it_goes_once_with_the_form_link(linked, clock, notifier,
                                                                                    interview):
    core = linked
    interview(core.departures)
    notice = await shown(core, notifier)
    assert f"{PUBLIC}/form/" in plain_text(notice.draft)  # the AM sees the link the client will get
    settled = await core.dispatcher.approve(note(core)["id"], "ann")
    assert (settled.outcome, settled.detail) == (Outcome.DEFERRED, "Thu 26 Nov 2026 09:00 Europe/Berlin")
    waiting = note(core)
    assert waiting["status"] is TouchStatus.PENDING and parse_iso(waiting["due_at"]) == THURSDAY_NINE
    assert waiting["reason"] == "approved by ann; it goes on Thu 26 Nov 2026 09:00 Europe/Berlin"
    assert core.departures.get(1).get("email_approval") is None  # the check-ins' own first draft still asks
    again = await core.dispatcher.approve(waiting["id"], "ann")  # pressed twice: still set for Thursday
    assert again.outcome is Outcome.DEFERRED and parse_iso(note(core)["due_at"]) == THURSDAY_NINE

    clock.set(THURSDAY_NINE - timedelta(minutes=1))
    assert NOTE not in await run(core) and outbox(core) == []
    core.playbook.plan(core.departures.get(1))  # re-planning (any answer) keeps the yes and the time
    assert parse_iso(note(core)["due_at"]) == THURSDAY_NINE and note(core)["payload"]["approved_by"] == "ann"
    clock.set(THURSDAY_NINE)
    assert (await run(core))[NOTE].outcome is Outcome.SENT
    [path] = outbox(core)
    message = read(path)
    assert message["To"].addresses[0].addr_spec == "jane@acme.example"
    assert message["Subject"] == "Thank you, and one question"
    assert message["From"].addresses[0].display_name == "Ann Smith at Northwind"
    text = message.get_body(("plain",)).get_content()
    [token] = re.findall(re.escape(f"{PUBLIC}/form/") + r"(\S+)", text)
    link = read_client_token(SECRET, "form", token, clock.now())
    assert link is not None and link.departure_id == 1 and link.sent_at == THURSDAY_NINE and not link.expired
    assert f'<a href="{PUBLIC}/form/{token}"' in message.get_body(("html",)).get_content()
    assert "because you worked with Northwind" in text and "agreed to stay in touch" not in text
    assert core.departures.get(1)["exit_note_sent_at"] == iso(THURSDAY_NINE)  # the link's issue time

    clock.set(THURSDAY_NINE + timedelta(days=3))
    core.playbook.plan(core.departures.get(1))
    assert NOTE not in await run(core) and len(outbox(core)) == 1 and note(core)["status"] is TouchStatus.SENT
    assert [t["key"] for t in core.store.find_touches(departure_id=1) if t["kind"] is TouchKind.EXIT_NOTE] == [NOTE]


@pytest.mark.parametrize(
    ("approved", "goes"),
    [(datetime(2026, 11, 27, 17, tzinfo=UTC), datetime(2026, 11, 30, 8, tzinfo=UTC)),  # Friday evening: Monday
     (datetime(2026, 11, 26, 7, 30, tzinfo=UTC), datetime(2026, 11, 26, 8, tzinfo=UTC)),  # 08:30: today at 09:00
     (datetime(2026, 12, 23, 9, tzinfo=UTC), datetime(2026, 12, 28, 8, tzinfo=UTC))],  # before Christmas: after
)  # fmt: skip
async def test_it_goes_at_nine_local_on_the_clients_next_working_day(core, clock, notifier, interview, approved,
                                                                     goes):
    clock.set(approved - timedelta(hours=1))  # confirmed an hour before the AM's yes
    interview(core.departures)
    await shown(core, notifier)
    clock.set(approved)
    settled = await core.dispatcher.approve(note(core)["id"], "ann")
    assert parse_iso(settled.touch["due_at"]) == goes
    local = goes.astimezone(BERLIN)
    assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5


async def test_a_client_in_new_york_gets_it_at_nine_in_new_york(core, clock, notifier, interview_with):
    interview_with(core.departures, country="USA", timezone="America/New_York", language="en")
    await shown(core, notifier)
    settled = await core.dispatcher.approve(note(core)["id"], "ann")  # 05:00 in New York: today at 09:00
    due = parse_iso(settled.touch["due_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (due.date(), due.hour, settled.touch["zone"]) == (clock.now().date(), 9, "America/New_York")


# -- Edit, Skip ---------------------------------------------------------------------------------------------
async def test_an_edited_note_goes_as_written_with_its_form_link_issued_as_it_goes(linked, clock, notifier,
                                                                                     interview):
    core = linked
    interview(core.departures)
    notice = await shown(core, notifier)
    [drafted] = re.findall(re.escape(f"{PUBLIC}/form/") + r"\S+", plain_text(notice.draft))
    edited = f"Dear Jane,\n\nwe will miss you. Tell me why, if you like:\n{drafted}\n\nAnn"
    settled = await core.dispatcher.approve(note(core)["id"], "ann", override=("A personal word", edited))
    assert settled.outcome is Outcome.DEFERRED and outbox(core) == []
    clock.set(THURSDAY_NINE)
    assert (await run(core))[NOTE].outcome is Outcome.SENT
    message = read(outbox(core)[0])
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"] == "A personal word" and "we will miss you. Tell me why, if you like:" in text
    assert "Would you tell me why?" not in text and "Best regards" not in text
    [sent] = re.findall(re.escape(f"{PUBLIC}/form/") + r"(\S+)", text)
    assert f"{PUBLIC}/form/{sent}" != drafted  # issued again as it went: its 30 days count from then
    assert read_client_token(SECRET, "form", sent, clock.now()).sent_at == THURSDAY_NINE


async def test_skip_cancels_it_and_it_is_never_asked_again(core, clock, notifier, interview):
    interview(core.departures)
    await shown(core, notifier)
    settled = core.dispatcher.decline(note(core)["id"], "ann")
    assert (settled.outcome, note(core)["reason"]) == (Outcome.CANCELLED, "skipped by ann")
    record = core.departures.get(1)
    core.departures.edit(record, "contact_email", actor="ann")
    core.departures.answer(core.departures.get(1), "jane.roe@acme.example", actor="ann")  # a new answer re-plans
    assert note(core)["status"] is TouchStatus.CANCELLED
    clock.set(clock.now() + timedelta(days=2))
    await run(core)
    assert len(drafts(notifier)) == 1 and outbox(core) == []


# -- what stops it --------------------------------------------------------------------------------------------
async def test_opt_out_cancels_an_approved_note_before_it_goes(core, clock, notifier, interview):
    interview(core.departures)
    await shown(core, notifier)
    await core.dispatcher.approve(note(core)["id"], "ann")
    Privacy(core.departures).opt_out(core.departures.get(1), actor="ann")
    assert note(core)["status"] is TouchStatus.CANCELLED
    clock.set(THURSDAY_NINE)
    await run(core)
    assert outbox(core) == []


async def test_forget_cancels_a_draft_and_its_buttons_send_nothing(core, clock, notifier, interview):
    interview(core.departures)
    await shown(core, notifier)
    Privacy(core.departures).forget(core.departures.get(1), actor="ann")
    assert note(core)["status"] is TouchStatus.CANCELLED
    settled = await core.dispatcher.approve(note(core)["id"], "ann")
    assert settled.outcome is Outcome.CANCELLED
    clock.set(THURSDAY_NINE)
    await run(core)
    assert outbox(core) == []


async def test_a_save_attempt_holds_the_note_until_the_client_is_leaving_after_all(core, clock, notifier,
                                                                                     interview_with):
    interview_with(core.departures, fixable="1")  # yes, it could be fixed: a save attempt
    assert core.departures.get(1)["status"] is Status.SAVING
    settled = await run(core)
    assert settled[NOTE].outcome is Outcome.HELD and drafts(notifier) == []
    clock.set(clock.now() + timedelta(days=10))
    Lifecycle(core.departures).save_outcome(core.departures.get(1), SaveOutcome.LEAVING, actor="ann")
    assert core.departures.get(1)["status"] is Status.LEAVING
    notice = await shown(core, notifier)  # asked now, with two weeks to answer from here
    assert parse_iso(notice.touch["latest_at"]) == clock.now() + timedelta(days=14)


async def test_retained_clients_get_no_note(core, notifier, interview):
    record = interview(core.departures)
    Lifecycle(core.departures).set_status(record, Status.RETAINED, actor="ann")
    assert note(core)["status"] is TouchStatus.CANCELLED
    assert NOTE not in await run(core) and drafts(notifier) == []


# -- in the client's language, with a link only where one can be made -----------------------------------------
async def test_a_german_clients_note_is_in_german(core, notifier, interview_with):
    interview_with(core.departures, language="de")
    draft = (await shown(core, notifier)).draft
    assert str(draft["Subject"]) != "" and draft["Content-Language"] == "de"
    subject = str(email.header.make_header(email.header.decode_header(str(draft["Subject"]))))
    text = plain_text(draft)
    assert subject == "Vielen Dank – und eine kurze Frage"
    assert "vielen Dank für Ihre Nachricht, dass Acme Corp die Zusammenarbeit mit uns beenden möchte" in text
    assert "Darf ich fragen, was den Ausschlag gegeben hat?" in text and "Viele Grüße" in text
    assert "weil Sie mit uns zusammengearbeitet haben" in text


@pytest.mark.parametrize("language", ["en", "de", "fr", "es", "pt", "it", "nl", "ja"])
def test_without_a_link_the_note_asks_for_a_reply_instead(core, interview_with, language):
    interview_with(core.departures, language=language)
    drafts_ = core.dispatcher.drafts
    text = plain_text(drafts_.compose(note(core), core.departures.get(1)))
    assert "/form/" not in text and "http" not in text.split("\n-- ")[0]
    assert "Acme Corp" in text


def test_the_console_serves_the_form_at_its_own_address(settings, notifier, clock, interview):
    core = build_core(replace(settings, webhook_secret=SECRET), notifier, clock=clock)
    try:
        interview(core.departures)
        composer = core.dispatcher.drafts.composer
        assert "/form/" not in plain_text(core.dispatcher.drafts.compose(note(core), core.departures.get(1)))
        composer.serve_forms_at("http://127.0.0.1:8765/")
        text = plain_text(core.dispatcher.drafts.compose(note(core), core.departures.get(1)))
        [token] = re.findall(r"http://127\.0\.0\.1:8765/form/(\S+)", text)
        assert read_client_token(SECRET, "form", token, clock.now()).departure_id == 1
    finally:
        core.close()


def test_no_secret_no_link_even_with_a_public_address(settings, notifier, clock, interview):
    core = build_core(replace(settings, public_url=PUBLIC), notifier, clock=clock)  # no secret to sign with
    try:
        interview(core.departures)
        core.dispatcher.drafts.composer.serve_forms_at("http://127.0.0.1:8765")
        text = plain_text(core.dispatcher.drafts.compose(note(core), core.departures.get(1)))
        assert "/form/" not in text and "a few lines in reply to this email" in text
    finally:
        core.close()


async def test_a_transport_that_shows_drafts_sees_the_note_with_send_edit_skip_only(settings, clock, interview):
    notifier = RecordingNotifier(drafts=True)
    core = build_core(settings, notifier, clock=clock)
    try:
        interview(core.departures)
        notice = await shown(core, notifier)
        assert Action.ALWAYS_ASK not in notice.actions  # it always asks anyway
    finally:
        core.close()
