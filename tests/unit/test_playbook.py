"""Touches: planned once, at 09:00 local on working days, sent at most once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_core
from bot.clock import parse_iso
from bot.dispatcher import Outcome
from bot.lifecycle import Lifecycle
from bot.notify import Action
from bot.pacing import RateCap
from bot.privacy import Privacy
from bot.workdays import local_moment
from storage.records import Channel, Source, TouchKind, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]


def touches(core, **filters):
    return core.store.find_touches(**filters)


@pytest.mark.parametrize(
    ("zone", "before", "after", "hours"),
    [("America/New_York", date(2026, 3, 6), date(2026, 3, 9), (14, 13)),
     ("Europe/Berlin", date(2026, 3, 27), date(2026, 3, 30), (8, 7)),
     ("Europe/Berlin", date(2026, 10, 23), date(2026, 10, 26), (7, 8))],
)  # fmt: skip
def test_nine_local_is_computed_per_day_across_dst(zone, before, after, hours):
    assert (local_moment(before, zone).hour, local_moment(after, zone).hour) == hours


def test_emails_go_at_nine_local_on_working_days(core, interview):
    interview(core.departures)
    for touch in touches(core, statuses=[TouchStatus.PENDING]):
        if touch["channel"] != Channel.EMAIL or touch["kind"] is TouchKind.EXIT_NOTE:
            continue  # the exit note is due for the AM's yes at once, then goes at 09:00 (test_exit_note)
        due = parse_iso(touch["due_at"]).astimezone(ZoneInfo(touch["zone"]))
        assert (due.hour, due.minute) == (9, 0) and due.weekday() < 5, touch["key"]


def test_a_greeting_for_a_holiday_on_a_weekend_goes_the_working_day_before(core, clock, interview):
    interview(core.departures)
    clock.set(datetime(2027, 6, 1, 8, tzinfo=UTC))
    core.playbook.plan_all()  # greetings are planned a year ahead, topped up as time passes
    keys = {t["key"]: t for t in touches(core)}
    # New Year 2028 is a Saturday, Christmas 2027 too; Christmas Eve and New Year's Eve are days off in
    # many offices: both greetings go on the Thursday before.
    new_year = parse_iso(keys["1:greeting:new_year:2028"]["due_at"])
    christmas = parse_iso(keys["1:greeting:christmas:2027"]["due_at"])
    assert new_year == datetime(2027, 12, 30, 8, tzinfo=UTC) and christmas == datetime(2027, 12, 23, 8, tzinfo=UTC)
    assert parse_iso(keys["1:greeting:christmas:2027"]["latest_at"]) == datetime(2027, 12, 23, 23, tzinfo=UTC)
    assert keys["1:greeting:christmas:2027"]["payload"] == {"holiday": "Christmas Day", "holiday_id": "christmas"}


def test_planning_twice_or_editing_never_duplicates(core, interview):
    record = interview(core.departures)
    before = touches(core)
    core.playbook.plan(record)
    assert [t["key"] for t in touches(core)] == [t["key"] for t in before]
    core.departures.edit(record, "support_ends", actor="ann")
    record, _ = core.departures.answer(core.departures.get(record["id"]), "in 8 weeks", actor="ann")
    after = touches(core)
    assert len({t["key"] for t in after}) == len(after)
    check_in = next(t for t in after if t["key"] == "1:check_in:+30d")
    assert check_in["status"] == TouchStatus.PENDING and check_in["due_at"] != next(
        t for t in before if t["key"] == "1:check_in:+30d")["due_at"]  # fmt: skip
    core.departures.edit(record, "greetings", actor="ann")
    core.departures.answer(core.departures.get(record["id"]), "no", actor="ann")
    greetings = [t for t in touches(core) if t["kind"] == TouchKind.GREETING]
    assert greetings and all(t["status"] == TouchStatus.CANCELLED for t in greetings)


async def test_after_a_stop_touches_in_their_window_go_once_and_the_rest_are_skipped(core, clock, interview):
    interview(core.departures)
    clock.set(datetime(2026, 12, 30, 12, tzinfo=UTC))  # down since before Christmas
    settled = {s.touch["key"]: s.outcome for s in await core.dispatcher.run_due()}
    assert settled["1:greeting:christmas:2026"] == Outcome.SKIPPED  # its day is over
    assert settled["1:greeting:new_year:2027"] == Outcome.SENT  # still 31 December in Berlin
    assert await core.dispatcher.run_due() == []  # nothing twice
    skipped = next(t for t in touches(core) if t["key"] == "1:greeting:christmas:2026")
    assert "too late" in skipped["reason"]
    assert len(list((core.settings.outbox_dir).glob("*.eml"))) == 1


async def test_a_touch_left_sending_becomes_unknown_and_is_not_resent(core, clock, interview):
    interview(core.departures)
    first = touches(core, statuses=[TouchStatus.PENDING])[0]
    core.store.claim_touch(first["id"], TouchStatus.PENDING, TouchStatus.SENDING)
    assert [t["id"] for t in core.dispatcher.recover()] == [first["id"]]
    clock.advance(timedelta(days=400))
    await core.dispatcher.run_due()
    assert core.store.get_touch(first["id"])["status"] == TouchStatus.UNKNOWN


async def test_opt_out_between_planning_and_sending_cancels_the_emails(core, clock, interview):
    record = interview(core.departures)
    Privacy(core.departures).opt_out(record, actor="ann")
    emails = [t for t in touches(core) if t["channel"] == Channel.EMAIL]
    assert emails and all(t["status"] == TouchStatus.CANCELLED and t["reason"] == "the client opted out"
                          for t in emails)  # fmt: skip
    clock.advance(timedelta(days=400))
    await core.dispatcher.run_due()
    assert not core.settings.outbox_dir.exists() or not list(core.settings.outbox_dir.glob("*.eml"))


async def test_an_unfinished_interview_is_reminded_then_the_channel_hears_of_it(core, clock, notifier):
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    core.departures.answer(record, "yes", actor="ann")  # Wednesday 11:00 in Berlin, then nothing
    async for _ in core.dispatcher.run_until(clock.now() + timedelta(days=90)):
        pass
    notices = [n for n in notifier.notices if n.touch["kind"] != TouchKind.DIGEST]  # and never again after the note
    sent = [(n.recipient, parse_iso(n.touch.get("sent_at") or n.touch["due_at"])) for n in notices]
    days = [at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %d %H:%M") for _, at in sent]
    # 1 working day after the last answer, then 3 and 7 more working days; then one note to the channel
    assert days == ["Thu 26 11:00", "Tue 01 11:00", "Thu 10 11:00", "Tue 15 11:00"]
    assert [to for to, _ in sent] == ["ann", "ann", "ann", "channel"]
    assert "still unfinished after 3 reminders" in notices[-1].text
    assert notices[0].actions == (Action.CONTINUE,)


async def test_answering_moves_the_reminder_and_finishing_cancels_it(core, clock, consenting_answers):
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    first = parse_iso(touches(core, statuses=[TouchStatus.PENDING])[0]["due_at"])
    clock.advance(timedelta(hours=3))
    core.departures.answer(record, "yes", actor="ann")
    reminder = core.store.touch_by_key("1:interview_reminder:interview:2026-11-26:1")
    assert parse_iso(reminder["due_at"]) == first + timedelta(hours=3)
    for raw in consenting_answers[1:]:
        record, _ = core.departures.answer(record, raw, actor="ann")
    assert core.store.touch_by_key(reminder["key"])["status"] == TouchStatus.CANCELLED


def test_putting_the_interview_off_moves_its_reminder_at_once(core, clock):
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    for raw in ["yes", "1", "today"]:
        record, _ = core.departures.answer(record, raw, actor="ann")
    clock.advance(timedelta(hours=20))
    core.departures.later(core.departures.get(record["id"]), actor="ann")  # "later": the interview waits anew
    reminders = {t["key"]: t for t in touches(core, departure_id=record["id"])
                 if t["kind"] is TouchKind.INTERVIEW_REMINDER}  # fmt: skip
    pending = [t["key"] for t in reminders.values() if t["status"] is TouchStatus.PENDING]
    assert pending == ["1:interview_reminder:interview:2026-11-27:1"], reminders
    assert reminders["1:interview_reminder:interview:2026-11-26:1"]["status"] is TouchStatus.CANCELLED


async def test_a_client_not_yet_confirmed_gets_talk_to_them_first_in_two_working_days(core, clock, notifier):
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    core.departures.answer(record, "2", actor="ann")  # not yet
    async for _ in core.dispatcher.run_until(clock.now() + timedelta(days=3)):
        pass
    [nudge] = notifier.notices
    assert "talk to them first" in nudge.text and clock.now().weekday() == 5  # sent Friday, nothing more yet
    assert parse_iso(nudge.touch["sent_at"]).astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %H:%M") == "Fri 11:00"


async def test_an_overdue_unpaid_final_payment_holds_client_emails_and_tells_the_am(core, clock, notifier, interview):
    interview(core.departures, paid=False)  # 500 due in 3 weeks: 16 December
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
    settled = {s.touch["key"]: s for s in await core.dispatcher.run_due()}
    held = settled["1:greeting:christmas:2026"]
    assert held.outcome == Outcome.HELD and "the final payment is overdue and unpaid" in held.detail
    assert [n for n in notifier.notices if "holding" in n.text] == []  # the payment's nudges say emails wait
    Lifecycle(core.departures).mark_paid(core.departures.get(1), actor="ann")
    clock.set(datetime(2026, 12, 23, 11, tzinfo=UTC))  # paid the same day: the greeting still goes
    settled = {s.touch["key"]: s.outcome for s in await core.dispatcher.run_due()}
    assert settled["1:greeting:christmas:2026"] == Outcome.SENT
    clock.set(datetime(2026, 12, 30, 8, tzinfo=UTC))
    settled = {s.touch["key"]: s.outcome for s in await core.dispatcher.run_due()}
    assert settled["1:greeting:new_year:2027"] == Outcome.SENT


async def test_the_daily_cap_defers_what_does_not_fit(settings, clock, interview):
    capped = build_core(settings, RecordingNotifier(), clock=clock, rate=RateCap(per_day=1))
    try:
        interview(capped.departures)
        interview(capped.departures, client="Bolt Ltd")
        clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
        settled = await capped.dispatcher.run_due()
        outcomes = sorted(s.outcome for s in settled if s.touch["kind"] == TouchKind.GREETING)
        assert outcomes == [Outcome.DEFERRED, Outcome.SENT]
        waiting = next(t for t in touches(capped, statuses=[TouchStatus.PENDING]) if t.get("deferred"))
        # after its end of day: skipped then
        assert parse_iso(waiting["due_at"]) == datetime(2026, 12, 24, 8, tzinfo=UTC)
    finally:
        capped.close()

