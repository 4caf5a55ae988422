"""Every nudge ends: at most 3 to the owner, one note to the channel, then never; only in working hours on
working days; a save attempt always ends, by an answer or by lapsing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from bot.app import build_core
from bot.chat_commands import Commands, Transport
from bot.command_words import Command
from bot.notify import Notice
from bot.reports import build_report, render_report_text
from storage.records import CHANNEL, AuditEvent, SaveOutcome, Source, Status, TouchKind, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]
pytestmark = pytest.mark.asyncio

BERLIN = ZoneInfo("Europe/Berlin")
QUIET = {(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)}
SAVING = {"fixable": "1", "save_plan": "A discount", "save_owner": "Jane", "save_by": "in 2 weeks"}


@dataclass
class TimedNotifier(RecordingNotifier):
    """Also keeps when each notice arrived, by the bot's clock."""

    clock: object = None
    times: list[datetime] = field(default_factory=list)

    async def deliver(self, notice: Notice) -> None:
        self.times.append(self.clock.now())  # type: ignore[attr-defined]
        await super().deliver(notice)


@pytest.fixture
def timed(settings, clock):
    notifier = TimedNotifier(clock=clock)
    core = build_core(settings, notifier, clock=clock)
    yield core, notifier
    core.close()


async def run_for(core, clock, days: int) -> None:
    async for _ in core.dispatcher.run_until(clock.now() + timedelta(days=days)):
        pass


def series(notifier: TimedNotifier) -> dict[str, list[tuple[str, datetime]]]:
    """Each open item's nudges (recipient, when), by item."""
    found: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for notice, at in zip(notifier.notices, notifier.times, strict=True):
        touch = notice.touch
        if touch is not None and touch["kind"] in (TouchKind.DEADLINE, TouchKind.INTERVIEW_REMINDER):
            found[str(touch["payload"].get("what"))].append((notice.recipient, at))
    return found


async def test_each_open_item_gets_three_nudges_then_one_note_to_the_channel_then_never(timed, clock, interview_with):
    core, notifier = timed
    # payment due 16 December, data 23 December, support ends 16 December
    interview_with(core.departures, agreement_signed="no", paid=False, support_ends="in 3 weeks")
    await run_for(core, clock, 200)
    nudged = series(notifier)
    for item in ("final_payment_due", "data_return", "agreement_signed"):
        assert [to for to, _ in nudged[item]] == ["ann", "ann", "ann", CHANNEL], item
        assert [t["status"] for t in core.store.find_touches(departure_id=1) if t["payload"].get("what") == item
                and t["status"] == TouchStatus.PENDING] == []  # fmt: skip
    # on its day, then after 3 and 7 more working days (Christmas to New Year is quiet), then 3 more
    days = [at.astimezone(BERLIN).strftime("%a %d %b %H:%M") for _, at in nudged["data_return"]]
    assert days == ["Wed 23 Dec 09:00", "Wed 30 Dec 09:00", "Tue 12 Jan 09:00", "Fri 15 Jan 09:00"]
    assert "This is the last nudge" in notifier.notices[[n.touch["key"] for n in notifier.notices].index(
        "1:deadline:data_return:2026-12-23:team")].text  # fmt: skip
    assert [to for to, _ in nudged["support_end"]] == ["ann"]  # a heads-up, once


async def test_nudges_and_the_digest_go_only_in_working_hours_on_working_days(timed, clock, interview_with):
    core, notifier = timed
    interview_with(core.departures, agreement_signed="no", paid=False, data_by="24 December")
    await run_for(core, clock, 400)
    german = holidays.country_holidays("DE", years=range(2026, 2029))
    team = [at.astimezone(BERLIN) for notice, at in zip(notifier.notices, notifier.times, strict=True)
            if notice.touch is not None and notice.touch["channel"] == "team"]  # fmt: skip
    assert len(team) > 15
    for local in team:
        day = local.date()
        assert local.weekday() < 5 and day not in german and (day.month, day.day) not in QUIET, local
        assert 9 <= local.hour < 17, local
    digests = [at.astimezone(BERLIN).date() for n, at in zip(notifier.notices, notifier.times, strict=True)
               if n.touch is not None and n.touch["kind"] == TouchKind.DIGEST]  # fmt: skip
    assert date(2027, 1, 4) in digests and date(2027, 4, 1) in digests and date(2027, 5, 3) in digests
    assert [d for d in digests if d.month == 6] == [date(2027, 6, 1)]


async def test_a_person_away_or_off_hours_is_nudged_when_back_and_the_channel_waits_for_working_hours(core, clock):
    saturday = datetime(2027, 1, 9, 12, tzinfo=UTC)
    pause = core.dispatcher.pacing.hours_pause("Europe/Berlin", saturday)
    assert pause is not None and pause.until == datetime(2027, 1, 11, 8, tzinfo=UTC)  # Monday 09:00 in Berlin
    christmas_eve = datetime(2026, 12, 24, 9, tzinfo=UTC)
    pause = core.dispatcher.pacing.hours_pause("America/New_York", christmas_eve)
    assert pause is not None and pause.until == datetime(2026, 12, 28, 14, tzinfo=UTC)  # 24-26 Dec are quiet
    assert core.dispatcher.pacing.hours_pause("Asia/Kolkata", datetime(2027, 1, 26, 6, tzinfo=UTC)) is not None
    assert core.dispatcher.pacing.hours_pause("Asia/Kolkata", datetime(2027, 1, 27, 6, tzinfo=UTC)) is None


async def test_done_stops_an_items_nudges_and_a_snooze_starts_them_again_on_its_date(timed, clock, interview_with):
    core, notifier = timed
    interview_with(core.departures, agreement_signed="no")
    commands = Commands(core, Transport.CONSOLE)
    await run_for(core, clock, 3)  # the first nudge about the agreement went on 27 November
    [agreement] = [t for t in core.store.find_touches(departure_id=1, statuses=[TouchStatus.PENDING])
                   if t["payload"].get("what") == "agreement_signed"]  # fmt: skip
    assert agreement["payload"]["number"] == 2
    commands.run("ann", Command("snooze", "Acme agreement until 1 March 2027"))
    assert core.store.get_touch(agreement["id"])["status"] == TouchStatus.CANCELLED
    await run_for(core, clock, 26)  # the data nudge went on 23 December
    assert [to for to, _ in series(notifier)["data_return"]] == ["ann"]
    commands.run("ann", Command("done", "Acme data"))
    await run_for(core, clock, 200)
    nudged = series(notifier)
    assert [to for to, _ in nudged["data_return"]] == ["ann"]  # done: never again
    again = [at.astimezone(BERLIN).date() for to, at in nudged["agreement_signed"]]
    assert again[0] == date(2026, 11, 27) and again[1] == date(2027, 3, 1)  # a fresh series from the snooze
    assert [to for to, _ in nudged["agreement_signed"]] == ["ann", "ann", "ann", "ann", CHANNEL]


async def test_a_save_attempt_without_an_outcome_lapses_and_the_am_is_told(timed, clock, interview_with):
    core, notifier = timed
    interview_with(core.departures, **{**SAVING, "save_by": "in 6 weeks"})  # deadline Wednesday 6 January 2027
    assert core.departures.get(1)["status"] is Status.SAVING
    await run_for(core, clock, 40)  # to 4 January: Christmas went by
    christmas = core.store.touch_by_key("1:greeting:christmas:2026")
    assert christmas["status"] == TouchStatus.SKIPPED and "save attempt is under way" in christmas["reason"]
    assert not list(core.settings.outbox_dir.glob("*.eml")) if core.settings.outbox_dir.exists() else True
    assert build_report(core.departures).revenue_at_stake
    await run_for(core, clock, 9)  # the deadline (6 Jan), 3 working days on (11 Jan), the lapse (13 Jan)
    record = core.departures.get(1)
    assert record["status"] is Status.LEAVING and record["save_outcome"] is SaveOutcome.LAPSED
    assert any(h["event"] == AuditEvent.SAVE_OUTCOME and h.get("to") == "lapsed" for h in record["history"])
    assert any(h.get("note") == "save lapsed" for h in record["history"])
    told = [(n, at) for n, at in zip(notifier.notices, notifier.times, strict=True)
            if n.touch is not None and n.touch["payload"].get("lapse")]  # fmt: skip
    [(notice, at)] = told
    assert notice.recipient == "ann" and "save lapsed" in notice.text and "1,200" in notice.text
    assert notice.offered == ()  # told, not asked: nothing to press
    assert at.astimezone(BERLIN).date() == date(2027, 1, 13)
    report = build_report(core.departures)
    assert report.revenue_at_stake == {} and {k: str(v) for k, v in report.revenue_lost.items()} == {"EUR": "1200"}
    assert report.save_lapsed == 1 and "lapsed with no outcome 1" in render_report_text(report, core.prompts)
    await run_for(core, clock, 60)  # the client is now a former client: the check-ins go
    sent = [t["key"] for t in core.store.find_touches(departure_id=1, statuses=[TouchStatus.SENT])]
    assert "1:check_in:+90d" in sent
    saves = [n for n in notifier.notices if n.touch is not None and n.touch["payload"].get("what") == "save_deadline"]
    assert len(saves) == 3  # two nudges (the deadline, 3 working days on), then the lapse; nothing after


async def test_an_answered_save_attempt_does_not_lapse_and_more_time_begins_again(timed, clock, interview_with):
    core, notifier = timed
    interview_with(core.departures, **SAVING)  # deadline 9 December
    commands = Commands(core, Transport.CONSOLE)
    await run_for(core, clock, 15)
    commands.run("ann", Command("snooze", "Acme save until 15 January 2027"))
    await run_for(core, clock, 60)
    record = core.departures.get(1)
    assert record["status"] is Status.LEAVING and record["save_outcome"] is SaveOutcome.LAPSED
    lapsed = [t for t in core.store.find_touches(departure_id=1) if t["payload"].get("lapse")]
    statuses = {t["key"]: t["status"] for t in lapsed}
    assert statuses["1:deadline:save_deadline:2026-12-09:lapse"] == TouchStatus.CANCELLED  # more time was asked
    assert [k for k, v in statuses.items() if v == TouchStatus.SENT] == ["1:deadline:save_deadline:2027-01-15:lapse"]
    commands.run("ann", Command("retained", "Acme"))  # they stayed after all: the lead can still say so
    assert core.departures.get(1)["status"] is Status.RETAINED


async def test_a_save_attempt_left_without_a_deadline_still_ends(timed, clock):
    core, notifier = timed
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    for typed in ("yes", "call", "today", "price", "Too dear", "1200", "yes"):  # a save is possible; then nothing
        record, _ = core.departures.answer(record, typed, actor="ann")
    assert record["status"] is Status.SAVING and core.departures.answer_value(record, "save_deadline") is None
    await run_for(core, clock, 45)
    record = core.departures.get(1)
    assert record["status"] is Status.LEAVING and record["save_outcome"] is SaveOutcome.LAPSED
    [lapse] = [n for n in notifier.notices if n.touch is not None and n.touch["payload"].get("lapse")]
    assert lapse.touch["payload"]["on"] == "2026-12-23"  # four weeks after it began, then 5 working days
