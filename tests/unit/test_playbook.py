"""Touches: planned once, at 09:00 local on working days, sent at most once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.calendar import local_moment
from bot.clock import parse_iso

CONSENTING = ["yes", "1", "today", "1", "Too dear", "1200", "3",  # why, save (no)
              "500", "in 3 weeks", "logos", "in 4 weeks", "in 6 weeks", "yes", "none", "none",  # hand-over
              "yes", "Jane <b>Roe</b>", "jane@acme.example", "Germany", "yes", "SEO",  # stay in touch
              "Talk sooner", "12"]  # fmt: skip


def interview(core, client="Acme Corp", answers=CONSENTING, *, paid=True):
    """A finished interview; ``paid``: the final payment came in (else emails are held once it is overdue)."""
    record = core.departures.start(client, am="ann", source="test").departure
    for raw in answers:
        record, _ = core.departures.answer(record, raw, actor="ann")
    return core.departures.mark_paid(record, actor="ann") if paid else record


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


def test_emails_go_at_nine_local_on_working_days(core):
    interview(core)
    for touch in touches(core, statuses=["pending"]):
        if touch["channel"] != "email":
            continue
        due = parse_iso(touch["due_at"]).astimezone(__import__("zoneinfo").ZoneInfo(touch["zone"]))
        assert (due.hour, due.minute) == (9, 0) and due.weekday() < 5, touch["key"]


def test_a_greeting_for_a_holiday_on_a_weekend_goes_the_working_day_before(core):
    interview(core)
    keys = {t["key"]: t for t in touches(core)}
    # New Year 2028 is a Saturday, Christmas 2027 too; both greetings go on the Friday before.
    new_year = parse_iso(keys["1:greeting:New Year's Day:2028"]["due_at"])
    christmas = parse_iso(keys["1:greeting:Christmas Day:2027"]["due_at"])
    assert new_year == datetime(2027, 12, 31, 8, tzinfo=UTC) and christmas == datetime(2027, 12, 24, 8, tzinfo=UTC)
    assert parse_iso(keys["1:greeting:Christmas Day:2027"]["latest_at"]) == datetime(2027, 12, 24, 23, tzinfo=UTC)


def test_planning_twice_or_editing_never_duplicates(core):
    record = interview(core)
    before = touches(core)
    core.playbook.plan(record)
    assert [t["key"] for t in touches(core)] == [t["key"] for t in before]
    core.departures.edit(record, "support_ends", actor="ann")
    record, _ = core.departures.answer(core.departures.get(record["id"]), "in 8 weeks", actor="ann")
    after = touches(core)
    assert len({t["key"] for t in after}) == len(after)
    check_in = next(t for t in after if t["key"] == "1:check_in:+30d")
    assert check_in["status"] == "pending" and check_in["due_at"] != next(
        t for t in before if t["key"] == "1:check_in:+30d")["due_at"]  # fmt: skip
    core.departures.edit(record, "greetings", actor="ann")
    core.departures.answer(core.departures.get(record["id"]), "no", actor="ann")
    greetings = [t for t in touches(core) if t["kind"] == "greeting"]
    assert greetings and all(t["status"] == "cancelled" for t in greetings)


async def test_after_a_stop_touches_in_their_window_go_once_and_the_rest_are_skipped(core, clock):
    interview(core)
    clock.set(datetime(2026, 12, 31, 12, tzinfo=UTC))  # down since before Christmas
    settled = {s.touch["key"]: s.outcome for s in await core.dispatcher.run_due()}
    assert settled["1:greeting:Christmas Day:2026"] == "skipped"  # its day is over
    assert settled["1:greeting:New Year's Day:2027"] == "sent"  # still 31 December in Berlin
    assert await core.dispatcher.run_due() == []  # nothing twice
    skipped = next(t for t in touches(core) if t["key"] == "1:greeting:Christmas Day:2026")
    assert "too late" in skipped["reason"]
    assert len(list((core.settings.outbox_dir).glob("*.eml"))) == 1


async def test_a_touch_left_sending_becomes_unknown_and_is_not_resent(core, clock):
    interview(core)
    first = touches(core, statuses=["pending"])[0]
    core.store.claim_touch(first["id"], "pending", "sending")
    assert [t["id"] for t in core.dispatcher.recover()] == [first["id"]]
    clock.advance(timedelta(days=400))
    await core.dispatcher.run_due()
    assert core.store.get_touch(first["id"])["status"] == "unknown"


async def test_opt_out_between_planning_and_sending_cancels_the_emails(core, clock):
    record = interview(core)
    core.departures.opt_out(record, actor="ann")
    emails = [t for t in touches(core) if t["channel"] == "email"]
    assert emails and all(t["status"] == "cancelled" and t["reason"] == "the client opted out" for t in emails)
    clock.advance(timedelta(days=400))
    await core.dispatcher.run_due()
    assert not core.settings.outbox_dir.exists() or not list(core.settings.outbox_dir.glob("*.eml"))
