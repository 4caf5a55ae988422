"""Updates to former clients (bot/updates.py): who gets one and why, a second admin's approval, and each email
going once at 09:00 the client's time, in their language where a translation was given, English otherwise,
with the one-click unsubscribe. On the movable clock, with the real core; emails are read from data/outbox."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.lifecycle import Lifecycle
from bot.mailer import plain_text
from bot.privacy import Privacy
from bot.settings import Settings
from bot.updates import (
    UpdateError,
    approve_update,
    audience,
    draft_update,
    get_update,
    list_updates,
)
from storage.records import Status, TouchKind, TouchStatus, UpdateStatus

pytest_plugins = ["tests.touch_data"]

BERLIN = ZoneInfo("Europe/Berlin")
# START (tests/conftest.py) is Wednesday 25 November 2026, 11:00 in Berlin: the next 09:00 is Thursday's.
THURSDAY_NINE = datetime(2026, 11, 26, 8, tzinfo=UTC)
GERMAN = "Wir haben einen neuen SEO-Bericht."
ENGLISH = "We have a new SEO report."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Two admins (ann writes, bob approves), and a public address so that emails carry the one-click link."""
    return Settings(db_path=tmp_path / "data" / "sendoff.json", timezone="Europe/Berlin", console_user="ann",
                    admins=frozenset({"ann", "bob"}), public_url="https://sendoff.example.com",
                    webhook_secret="test-link-secret", company="Northwind", am_name="Ann Smith")  # fmt: skip


def outbox(core):
    folder = core.settings.outbox_dir
    return sorted(folder.glob("*update*.eml")) if folder.exists() else []


def read(path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def included(recipients):
    return {r.client for r in recipients if r.included}


def reasons(recipients):
    return {r.client: r.reason for r in recipients}


def clients(core, interview_with):
    """One former client of each kind that matters."""
    d = core.departures
    interview_with(d, "German SEO", topics="SEO and content", language="de")
    interview_with(d, "English SEO", topics="seo", language="en")
    interview_with(d, "Pricing only", topics="pricing")
    interview_with(d, "No consent", consent="no")
    Privacy(d).opt_out(interview_with(d, "Opted out", topics="SEO"), actor="ann")
    Privacy(d).forget(interview_with(d, "Forgotten", topics="SEO"), actor="ann")
    won = interview_with(d, "Won back", topics="SEO")
    won = Lifecycle(d).set_status(won, Status.DEPARTED, actor="ann")
    Lifecycle(d).set_status(won, Status.WON_BACK, actor="ann")
    # no topics answered, but the client's own form says yes, and what they want to hear about
    voice = interview_with(d, "Own words", topics="skip")
    voice["client_voice"] = {"at": "2026-11-25T10:00:00.000Z", "submissions": 1, "stay_in_touch": True,
                             "topics": "Local SEO tips"}  # fmt: skip
    core.store.save_departure(voice)
    # the AM said yes, the client's own form said no: their no counts
    said_no = interview_with(d, "Said no", topics="SEO")
    said_no["client_voice"] = {"at": "2026-11-25T10:00:00.000Z", "submissions": 1, "stay_in_touch": False}
    core.store.save_departure(said_no)


async def test_an_update_reaches_exactly_the_clients_who_asked_for_its_topics(core, interview_with):
    clients(core, interview_with)
    draft = draft_update(core, "ann", ENGLISH, "SEO, analytics", {"de": GERMAN})
    assert included(draft.recipients) == {"German SEO", "English SEO", "Own words"}
    assert draft.count == 3
    why = reasons(draft.recipients)
    assert why["Pricing only"] == "asked to hear about other topics (pricing)"
    assert why["No consent"] == "did not agree to stay in touch"
    assert why["Said no"] == "did not agree to stay in touch"
    assert why["Opted out"] == "opted out"
    assert why["Won back"] == "won back: a client again"
    assert "forgotten" in why.values()
    assert why["German SEO"] == "gets it: asked to hear about seo"
    languages = {r.client: r.language for r in draft.recipients if r.included}
    assert languages == {"German SEO": "de", "English SEO": "en", "Own words": "en"}


async def test_a_draft_is_kept_and_checked(core):
    draft = draft_update(core, "ann", f"  {ENGLISH}  ", ["SEO", "seo", "Pricing"], {"DE": GERMAN, "en": "same"})
    kept = get_update(core, draft.update["id"])
    assert kept == draft.update and list_updates(core) == [kept]
    assert (kept["text"], kept["topics"], kept["translations"]) == (ENGLISH, ["seo", "pricing"], {"de": GERMAN})
    assert kept["status"] is UpdateStatus.DRAFT
    assert core.store.get_update(1) == kept  # in the store: every process sharing it sees the draft
    with pytest.raises(UpdateError, match="needs its text"):
        draft_update(core, "ann", "  ", "SEO")
    with pytest.raises(UpdateError, match="at most 5000"):
        draft_update(core, "ann", "x" * 5001, "SEO")
    with pytest.raises(UpdateError, match="1 to 10 words"):
        draft_update(core, "ann", ENGLISH, " , ")
    with pytest.raises(UpdateError, match="1 to 10 words"):
        draft_update(core, "ann", ENGLISH, " ".join(f"t{i}" for i in range(11)))
    with pytest.raises(UpdateError, match="no language code"):
        draft_update(core, "ann", ENGLISH, "SEO", {"German": GERMAN})
    with pytest.raises(UpdateError, match="de translation is empty"):
        draft_update(core, "ann", ENGLISH, "SEO", {"de": " "})
    assert draft_update(core, "ann", ENGLISH, "SEO").update["id"] == 2  # the refused ones kept nothing
    with pytest.raises(UpdateError, match="There is no update 9"):
        approve_update(core, 9, "bob")


async def test_a_second_admin_approves_never_the_author_nor_a_non_admin(core, interview_with):
    interview_with(core.departures, "German SEO", topics="SEO", language="de")
    update = draft_update(core, "ann", ENGLISH, "SEO").update
    with pytest.raises(UpdateError, match="ann wrote this update: a second admin approves it"):
        approve_update(core, update, "ann")
    with pytest.raises(UpdateError, match=r"Only an admin \(SENDOFF_ADMINS\) can approve an update; carl"):
        approve_update(core, update, "carl")
    assert core.store.touch_by_key("1:update:1") is None
    approved = approve_update(core, update["id"], "bob")
    assert [t["key"] for t in approved.touches] == ["1:update:1"]
    assert get_update(core, 1)["approved_by"] == "bob"
    with pytest.raises(UpdateError, match="approved already"):
        approve_update(core, update, "bob")


async def test_each_goes_once_at_nine_local_in_german_when_translated_english_otherwise(core, clock, notifier,
                                                                                        interview_with):  # fmt: skip
    notifier.drafts = True  # as in Slack: the approved update is not held as a "first email" draft
    d = core.departures
    interview_with(d, "German SEO", topics="SEO", language="de")
    interview_with(d, "French SEO", topics="SEO", language="fr")  # no French translation: English
    update = draft_update(core, "ann", ENGLISH, "SEO", {"de": GERMAN}).update
    approved = approve_update(core, update, "bob")
    assert {t["due_at"] for t in approved.touches} == {"2026-11-26T08:00:00.000Z"}
    core.playbook.plan_all()  # re-planning from the answers leaves an approved update planned
    assert {core.store.get_touch(t["id"])["status"] for t in approved.touches} == {TouchStatus.PENDING}
    async for _ in core.dispatcher.run_until(THURSDAY_NINE - timedelta(minutes=1)):
        pass
    assert outbox(core) == []
    async for _ in core.dispatcher.run_until(clock.now() + timedelta(days=10)):  # re-planned on the way
        pass
    sent = [read(p) for p in outbox(core)]
    assert len(sent) == 2
    by_key = {m["X-Sendoff-Touch"]: m for m in sent}
    german, french = by_key["1:update:1"], by_key["2:update:1"]
    assert german["Subject"] == "Neuigkeiten, die Sie interessieren" and german["Content-Language"] == "de"
    assert GERMAN in plain_text(german) and ENGLISH not in plain_text(german)
    assert french["Subject"] == "News you asked to hear about" and french["Content-Language"] == "en"
    assert ENGLISH in plain_text(french)
    for message in sent:
        local = email.utils.parsedate_to_datetime(message["Date"]).astimezone(BERLIN)
        assert (local.date().isoformat(), local.hour, local.minute) == ("2026-11-26", 9, 0)
        assert message["List-Unsubscribe"].strip().startswith("<https://sendoff.example.com/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {core.store.touch_by_key(k)["status"] for k in by_key} == {TouchStatus.SENT}


async def test_no_second_update_within_thirty_days_and_opt_out_cancels_one_planned(core, clock, interview_with):
    d = core.departures
    interview_with(d, "Early", topics="SEO")
    later = interview_with(d, "Later", topics="analytics")
    approve_update(core, draft_update(core, "ann", ENGLISH, "SEO").update, "bob")
    async for _ in core.dispatcher.run_until(THURSDAY_NINE + timedelta(hours=1)):
        pass
    second = draft_update(core, "bob", "Analytics news.", "SEO analytics")
    assert included(second.recipients) == {"Later"}
    assert reasons(second.recipients)["Early"] == "had an update in the last 30 days"
    approved = approve_update(core, second.update, "ann")
    Privacy(d).opt_out(d.get(later["id"]), actor="ann")
    assert core.store.get_touch(approved.touches[0]["id"])["status"] is TouchStatus.CANCELLED
    clock.set(THURSDAY_NINE + timedelta(days=31))
    third = draft_update(core, "ann", "More SEO news.", "seo")
    assert included(audience(core, third.update)) == {"Early"}
    assert included(audience(core, third.update, gap_days=60)) == set()
    kinds = {t["kind"] for t in core.store.find_touches(statuses=[TouchStatus.SENT])}
    assert kinds == {TouchKind.UPDATE}


def test_update_and_approve_are_commands_of_the_console_and_slack(core, interview_with):
    from bot.chat_commands import Commands, Transport
    from bot.command_words import Command, parse_departure
    from bot.replies import Say

    clients(core, interview_with)
    commands = Commands(core, Transport.CONSOLE)
    drafted = commands.run("ann", Command("update", "SEO: Our new content audit is out."))
    said = [p for p in drafted.parts if isinstance(p, Say)]
    getting = {p.values["client"] for p in said if p.key == "update_gets_it"}
    assert said[0].key == "update_drafted" and said[0].values["count"] == len(getting)
    assert {"German SEO", "English SEO"} <= getting and not {"Pricing only", "No consent", "Opted out"} & getting
    assert said[-1].key == "update_approve_hint"
    assert commands.run("ann", Command("approve", "1")).warned  # the author does not approve their own
    assert commands.run("ann", Command("update", "no colon here")).parts[0].key == "update_usage"
    slack = Commands(core, Transport.SLACK)
    approved = slack.run("bob", parse_departure("approve 1"))
    assert [p.key for p in approved.parts] == ["update_approved"]
    assert approved.parts[0].values["count"] == len(getting)


def test_the_gap_between_updates_is_a_setting_that_is_checked():
    from bot.settings import SettingsError, load_settings

    assert load_settings({}, None).update_gap_days == 30
    assert load_settings({"SENDOFF_UPDATE_GAP_DAYS": "14"}, None).update_gap_days == 14
    with pytest.raises(SettingsError) as refused:
        load_settings({"SENDOFF_UPDATE_GAP_DAYS": "a month"}, None)
    assert "SENDOFF_UPDATE_GAP_DAYS" in "\n".join(refused.value.problems)


def test_a_shorter_gap_lets_the_next_update_through_sooner(settings, clock, interview_with):
    from dataclasses import replace

    from bot.app import build_core
    from bot.chat_commands import Commands, Transport
    from bot.command_words import Command
    from tests.fakes.notifier import RecordingNotifier

    core = build_core(replace(settings, update_gap_days=7), RecordingNotifier(), clock=clock)
    try:
        interview_with(core.departures, "English SEO", topics="seo")
        commands = Commands(core, Transport.CONSOLE)
        commands.run("ann", Command("update", "SEO: first news"))
        commands.run("bob", Command("approve", "1"))
        clock.advance(timedelta(days=8))
        second = commands.run("ann", Command("update", "SEO: second news"))
        assert second.parts[0].values["count"] == 1  # 8 days after the first: allowed with a 7-day gap
    finally:
        core.close()
