"""A year the client can trust: nothing before they have left, greetings by what a holiday is, every year.

All on the movable clock; the departure is recorded on Wednesday 25 November 2026, 11:00 in Berlin.
"""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_core
from bot.clock import ManualClock, parse_iso
from bot.lifecycle import Lifecycle
from bot.privacy import Privacy
from bot.settings import SettingsError, load_settings
from prompts import PromptError, load_prompts
from storage.records import Channel, Status, TouchKind, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

SAMPLE = ["DE", "FR", "ES", "IT", "NL", "PT", "BR", "US", "CA", "GB", "IE", "AU", "NZ", "IN", "JP", "SG", "ZA", "MX",
          "AR", "CH", "AT", "BE", "SE", "PL", "AE"]  # fmt: skip
# Countries of the sample whose calendar has no Christmas.
NO_CHRISTMAS = {"JP", "AE"}


def touches(core, **filters):
    return core.store.find_touches(**filters)


def greetings(core):
    return {t["key"]: t for t in touches(core) if t["kind"] == TouchKind.GREETING}


def local_day(touch) -> date:
    return parse_iso(touch["due_at"]).astimezone(ZoneInfo(touch["zone"])).date()


def sent_keys(core) -> list[str]:
    """The touch key of every .eml in the outbox, one per email written."""
    folder: Path = core.settings.outbox_dir
    paths = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)["X-Sendoff-Touch"] for p in paths]


async def advance(core, until: datetime) -> None:
    async for _ in core.dispatcher.run_until(until):
        pass


# -- 2. nothing before they have left, nor too soon after -----------------------------------------
def test_client_emails_begin_after_the_support_end(core, interview_with):
    interview_with(core.departures, support_ends="in 6 weeks")  # Wednesday 6 January 2027
    # the exit note alone goes once the departure is confirmed, with the AM's yes (test_exit_note)
    emails = [t for t in touches(core) if t["channel"] == Channel.EMAIL and t["kind"] is not TouchKind.EXIT_NOTE]
    assert emails and all(local_day(t) > date(2027, 1, 6) for t in emails)
    assert local_day(core.store.touch_by_key("1:check_in:+30d")) == date(2027, 2, 5)
    # Christmas 2026 and New Year 2027 fall within 21 days of the end; Christmas 2027 is over a year ahead
    assert greetings(core) == {}


def test_without_a_support_end_the_day_recorded_is_the_end(core, interview_with):
    interview_with(core.departures, support_ends="skip")
    assert set(greetings(core)) == {"1:greeting:christmas:2026", "1:greeting:new_year:2027"}
    # 25 November + 30 days is Christmas Day, then the 26th (off) and a Sunday: Monday 28 December
    assert local_day(core.store.touch_by_key("1:check_in:+30d")) == date(2026, 12, 28)


def test_no_greeting_within_21_days_of_the_end(core, interview_with):
    interview_with(core.departures, support_ends="2026-12-09")  # 21 days later: 30 December
    assert set(greetings(core)) == {"1:greeting:new_year:2027"}  # greeted on the 30th; Christmas is too soon
    assert local_day(core.store.touch_by_key("1:greeting:new_year:2027")) == date(2026, 12, 30)
    interview_with(core.departures, "Bolt Ltd", support_ends="2026-12-10")  # 31 December is a day off: none
    assert [k for k in greetings(core) if k.startswith("2:")] == []


def test_no_greeting_for_a_holiday_before_the_departure_was_recorded(settings, notifier, interview_with):
    clock = ManualClock(datetime(2026, 12, 28, 10, tzinfo=UTC))  # recorded after Christmas
    core = build_core(settings, notifier, clock=clock)
    try:
        interview_with(core.departures, support_ends="2026-11-01")  # support ended before it was recorded
        # not Christmas 2026: it fell before; a year ahead reaches Christmas 2027
        assert set(greetings(core)) == {"1:greeting:new_year:2027", "1:greeting:christmas:2027"}
        created = parse_iso(core.departures.get(1)["created_at"])
        assert all(parse_iso(t["due_at"]) >= created for t in touches(core))
        assert core.store.touch_by_key("1:check_in:+30d") is None  # 1 December: before it was recorded
        assert core.store.touch_by_key("1:check_in:+90d")["status"] == TouchStatus.PENDING
    finally:
        core.close()


async def test_no_reminder_is_dated_before_the_departure_was_recorded(core, clock, interview_with):
    interview_with(core.departures, final_payment_due="in 2 days", paid=False)  # Friday 27 November
    created = parse_iso(core.departures.get(1)["created_at"])
    assert all(parse_iso(t["due_at"]) >= created for t in touches(core))
    assert local_day(core.store.touch_by_key("1:deadline:final_payment_due:2026-11-27:1")) == date(2026, 11, 27)
    await advance(core, clock.now() + timedelta(days=3))
    sent = [t for t in touches(core, statuses=[TouchStatus.SENT]) if t["kind"] == TouchKind.DEADLINE]
    assert [t["key"] for t in sent] == ["1:deadline:final_payment_due:2026-11-27:1"]  # nothing "sent" on catch-up


def test_a_payment_due_today_is_nudged_from_when_it_was_recorded_not_this_morning(core, interview_with):
    interview_with(core.departures, final_payment_due="today", paid=False)  # 09:00 was before it was recorded
    [nudge] = [t for t in touches(core) if t["key"].startswith("1:deadline:final_payment_due")]
    assert parse_iso(nudge["due_at"]) == parse_iso(core.departures.get(1)["created_at"])


async def test_a_deadline_moved_earlier_begins_a_new_series_on_its_new_day(core, clock, interview):
    record = interview(core.departures, paid=False)  # due 16 December
    clock.set(datetime(2026, 12, 5, 10, tzinfo=UTC))
    core.departures.edit(record, "final_payment_due", actor="ann")
    core.departures.answer(core.departures.get(1), "in 2 days", actor="ann")  # Monday 7 December
    old = core.store.touch_by_key("1:deadline:final_payment_due:2026-12-16:1")
    assert (old["status"], old["reason"]) == (TouchStatus.CANCELLED, "no longer follows from the answers")
    on_the_day = core.store.touch_by_key("1:deadline:final_payment_due:2026-12-07:1")
    assert on_the_day["status"] == TouchStatus.PENDING and local_day(on_the_day) == date(2026, 12, 7)


@pytest.mark.parametrize("country", SAMPLE)
def test_every_country_that_keeps_christmas_gets_its_christmas_greeting(settings, notifier, clock, interview_with,
                                                                        country):  # fmt: skip
    core = build_core(settings, notifier, clock=clock)
    try:
        interview_with(core.departures, country=country)
        found = greetings(core)
        christmas = found.get("1:greeting:christmas:2026")
        if country in NO_CHRISTMAS:
            assert christmas is None
        else:
            assert christmas is not None, sorted(found)
            assert christmas["payload"]["holiday_id"] == "christmas"
            assert christmas["payload"]["holiday"] == ("Christmas" if country == "IN" else "Christmas Day")
            due = parse_iso(christmas["due_at"]).astimezone(ZoneInfo(christmas["zone"]))
            assert date(2026, 12, 21) <= due.date() <= date(2026, 12, 24) and (due.hour, due.minute) == (9, 0)
        assert "1:greeting:new_year:2027" in found  # New Year everywhere
        assert ("1:greeting:thanksgiving:2026" in found) is False  # 26 November: within 21 days of the end
    finally:
        core.close()


def test_thanksgiving_is_greeted_in_the_us_by_its_id(settings, notifier, interview_with):
    clock = ManualClock(datetime(2027, 9, 1, 12, tzinfo=UTC))
    core = build_core(settings, notifier, clock=clock)
    try:
        interview_with(core.departures, country="US", support_ends="skip")
        thanksgiving = greetings(core)["1:greeting:thanksgiving:2027"]
        assert thanksgiving["payload"] == {"holiday": "Thanksgiving Day", "holiday_id": "thanksgiving"}
        assert local_day(thanksgiving) == date(2027, 11, 24)  # the Wednesday before
    finally:
        core.close()


# -- 3. greetings roll on --------------------------------------------------------------------------
async def test_greetings_roll_on_every_year_until_the_stay_in_touch_period_ends(core, clock, interview):
    interview(core.departures)  # the departure ends 2 December 2026: greeted until 2 December 2029
    assert set(greetings(core)) == {"1:greeting:christmas:2026", "1:greeting:new_year:2027"}  # a year ahead
    await advance(core, datetime(2030, 6, 1, tzinfo=UTC))  # the console's /advance: topped up on the way
    expected = ["1:greeting:christmas:2026", "1:greeting:christmas:2027", "1:greeting:christmas:2028",
                "1:greeting:new_year:2027", "1:greeting:new_year:2028", "1:greeting:new_year:2029"]  # fmt: skip
    found = greetings(core)
    assert sorted(found) == expected
    assert all(t["status"] == TouchStatus.SENT for t in found.values())
    assert sorted(k for k in sent_keys(core) if ":greeting:" in k) == expected  # each exactly once


async def test_restarts_and_re_planning_never_drop_or_double_a_greeting(settings, clock, interview):
    first = build_core(settings, RecordingNotifier(), clock=clock)
    interview(first.departures)
    await advance(first, datetime(2027, 3, 1, tzinfo=UTC))
    first.close()
    for _ in range(2):  # two restarts, each planning everything again
        again = build_core(settings, RecordingNotifier(), clock=clock)
        again.playbook.plan_all()
        again.playbook.plan_all()
        await advance(again, clock.now() + timedelta(days=200))
        again.close()
    last = build_core(settings, RecordingNotifier(), clock=clock)  # now 5 April 2028
    try:
        found = greetings(last)
        assert sorted(found) == [f"1:greeting:{h}:{y}" for h, y in (("christmas", 2026), ("christmas", 2027),
                                 ("christmas", 2028), ("new_year", 2027), ("new_year", 2028), ("new_year", 2029))]
        assert all(t["status"] in (TouchStatus.SENT, TouchStatus.PENDING) for t in found.values())
        sent = sorted(k for k in sent_keys(last) if ":greeting:" in k)
        assert sent == ["1:greeting:christmas:2026", "1:greeting:christmas:2027", "1:greeting:new_year:2027",
                        "1:greeting:new_year:2028"]  # fmt: skip
    finally:
        last.close()


def test_greetings_planned_further_ahead_before_are_kept_and_those_cancelled_for_it_come_back(core, clock,
                                                                                            interview):  # fmt: skip
    interview(core.departures)
    # as an older version left them: Christmas 2027 planned two years ahead, New Year 2028 cancelled as
    # "no longer follows" once it was beyond its horizon
    clock.set(datetime(2027, 6, 1, 8, tzinfo=UTC))
    core.playbook.plan_all()
    clock.set(datetime(2026, 11, 26, 8, tzinfo=UTC))
    later = core.store.touch_by_key("1:greeting:new_year:2028")
    later.update(status=TouchStatus.CANCELLED, reason="no longer follows from the answers")
    core.store.save_touch(later)
    record = core.departures.get(1)
    record["plan_by"] = "an older sendoff"  # what the store finds a release that planned otherwise by
    core.store.save_departure(record)
    core.playbook.plan_all()
    assert core.store.touch_by_key("1:greeting:christmas:2027")["status"] == TouchStatus.PENDING  # not cancelled
    clock.set(datetime(2027, 6, 1, 8, tzinfo=UTC))
    core.playbook.plan_all()
    assert core.store.touch_by_key("1:greeting:new_year:2028")["status"] == TouchStatus.PENDING  # planned again


def test_greetings_turned_off_and_on_again_are_planned_again(core, interview):
    record = interview(core.departures)
    core.departures.edit(record, "greetings", actor="ann")
    core.departures.answer(core.departures.get(1), "no", actor="ann")
    assert {t["status"] for t in greetings(core).values()} == {TouchStatus.CANCELLED}
    core.departures.edit(core.departures.get(1), "greetings", actor="ann")
    core.departures.answer(core.departures.get(1), "yes", actor="ann")
    assert {k: t["status"] for k, t in greetings(core).items()} == {
        "1:greeting:christmas:2026": TouchStatus.PENDING, "1:greeting:new_year:2027": TouchStatus.PENDING}


async def test_the_stay_in_touch_years_setting_ends_the_greetings(settings, clock, interview):
    core = build_core(replace(settings, stay_in_touch_years=1), RecordingNotifier(), clock=clock)
    try:
        interview(core.departures)
        await advance(core, datetime(2029, 1, 15, tzinfo=UTC))
        assert sorted(greetings(core)) == ["1:greeting:christmas:2026", "1:greeting:new_year:2027"]
    finally:
        core.close()


async def test_win_back_and_opt_out_end_the_greetings(core, clock, interview, interview_with):
    record = interview(core.departures)
    await advance(core, datetime(2026, 12, 28, tzinfo=UTC))
    Lifecycle(core.departures).set_status(core.departures.get(record["id"]), Status.DEPARTED, actor="ann")
    Lifecycle(core.departures).set_status(core.departures.get(record["id"]), Status.WON_BACK, actor="ann")
    new_year = core.store.touch_by_key("1:greeting:new_year:2027")
    assert (new_year["status"], new_year["reason"]) == (TouchStatus.CANCELLED, "the client is won back")
    other = interview_with(core.departures, "Bolt Ltd")
    Privacy(core.departures).opt_out(other, actor="ann")
    await advance(core, datetime(2028, 1, 15, tzinfo=UTC))
    assert [k for k in sent_keys(core) if ":greeting:" in k] == ["1:greeting:christmas:2026"]
    rest = [t for k, t in greetings(core).items() if k != "1:greeting:christmas:2026"]
    assert rest and all(t["status"] == TouchStatus.CANCELLED for t in rest)


async def test_check_ins_count_from_the_end(core, clock, interview):
    interview(core.departures)  # ends Wednesday 2 December 2026
    days = {k: local_day(core.store.touch_by_key(f"1:check_in:{k}")) for k in ("+30d", "+90d", "+180d")}
    # 1 January is a holiday, 2 and 3 January a weekend; 2 March and 31 May are working days
    assert days == {"+30d": date(2027, 1, 4), "+90d": date(2027, 3, 2), "+180d": date(2027, 5, 31)}


# -- the cadence and the setting ---------------------------------------------------------------------
def test_greetings_are_defined_by_id_and_older_names_still_work(tmp_path):
    (tmp_path / "cadence.toml").write_text('[greetings]\neverywhere = ["Christmas Day"]\n'
                                           'by_country = { US = ["Thanksgiving Day"] }\n')  # fmt: skip
    cadence = load_prompts(tmp_path).cadence
    assert cadence.greetings == ("new_year", "christmas") and cadence.greetings_by_country == {"US": ("thanksgiving",)}
    assert [h.id for h in cadence.greetings_of("US")] == ["new_year", "christmas", "thanksgiving"]
    (tmp_path / "cadence.toml").write_text(
        '[greetings]\neverywhere = ["new_year", "harvest"]\n'
        '[greetings.holidays.harvest]\nnames = ["Harvest Festival"]\n')  # fmt: skip
    assert load_prompts(tmp_path).cadence.greetings == ("new_year", "harvest")
    (tmp_path / "cadence.toml").write_text('[greetings]\neverywhere = ["xmas"]\n')
    with pytest.raises(PromptError, match=r"cadence.toml: \[greetings.everywhere\] 'xmas' is no holiday id"):
        load_prompts(tmp_path)


def test_the_stay_in_touch_years_setting_is_checked():
    assert load_settings({}, None).stay_in_touch_years == 3
    assert load_settings({"SENDOFF_STAY_IN_TOUCH_YEARS": "5"}, None).stay_in_touch_years == 5
    for bad in ("0", "three", "-1", "2.5"):
        with pytest.raises(SettingsError, match="SENDOFF_STAY_IN_TOUCH_YEARS"):
            load_settings({"SENDOFF_STAY_IN_TOUCH_YEARS": bad}, None)


def test_a_fiscal_year_check_in_close_to_a_regular_one_is_left_out(core, interview_with):
    interview_with(core.departures, reason="price")  # ends 2 December: +30 days and the fiscal year meet in January
    keys = {t["key"] for t in touches(core)}
    assert "1:check_in:+30d" in keys and "1:check_in:fiscal_year" not in keys
    interview_with(core.departures, "Bolt Ltd", reason="price", support_ends="in 10 weeks")  # ends 3 February
    fiscal = core.store.touch_by_key("2:check_in:fiscal_year")
    assert fiscal is not None and local_day(fiscal) == date(2028, 1, 3)  # 1 January is a holiday


def test_greetings_never_land_on_christmas_eve_new_years_eve_or_japans_year_end_break(core, interview_with):
    interview_with(core.departures, support_ends="2026-11-30")
    assert local_day(core.store.touch_by_key("1:greeting:christmas:2026")) == date(2026, 12, 23)
    assert local_day(core.store.touch_by_key("1:greeting:new_year:2027")) == date(2026, 12, 30)
    interview_with(core.departures, "Sakura KK", country="Japan", support_ends="2026-11-30")
    assert local_day(core.store.touch_by_key("2:greeting:new_year:2027")) == date(2026, 12, 28)  # offices close
