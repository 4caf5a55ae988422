"""Retention in the report: the team's active clients over time (/clients, else the AMs' workload answers),
turnover and retention beside the period before, the revenue kept by save attempts beside the revenue lost, and
the client's own reason (the exit note's form) beside the AM's.

Departures go through the real flows (the interview, the save outcome, the client's form, forget), each step
dated by the injectable clock; /clients goes through bot.chat_commands.Commands as the console sends it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.app import Core
from bot.chat_commands import Commands, Transport
from bot.client_voice import ClientAnswers, record_client_voice
from bot.clock import ManualClock
from bot.command_words import Command, parse_console, parse_departure
from bot.lifecycle import Lifecycle
from bot.periods import quarter
from bot.privacy import Privacy
from bot.replies import CommandRef, Help, Result, Say, Tone
from bot.reports import (
    CSV_COLUMNS,
    BaseSource,
    build_report,
    digest_text,
    render_report_text,
    report_csv,
    report_json,
)
from handlers.console import Lines
from handlers.slack.render import SlackWords
from storage.contract import StoreCorruptError
from storage.memory_store import MemoryStore
from storage.records import Departure, SaveOutcome, Source, Status
from storage.tinydb_store import ReadOnlyTinyDBStore, TinyDBStore

pytest_plugins = ["tests.touch_data"]

BERLIN = ZoneInfo("Europe/Berlin")
Q4 = quarter(date(2026, 10, 1))
Q1 = quarter(date(2027, 1, 1))
Q2 = quarter(date(2027, 4, 1))
# ``interview_with`` of tests/touch_data.py: the consenting interview, with some answers of the test's own.
Interview = Callable[..., Departure]
# The reason options of the default interview, by their number in the question.
PRICE, QUALITY, FINISHED = "1", "2", "8"


def on(clock: ManualClock, day: str, hour: int = 10) -> None:
    """Move the clock to ``day`` at ``hour`` in Berlin, the team's zone of the tests."""
    clock.set(datetime.combine(date.fromisoformat(day), time(hour), BERLIN).astimezone(UTC))


def keys(result: Result) -> list[str]:
    return [p.key for p in result.parts if isinstance(p, Say)]


def clients(core: Core, words: str, actor: str = "ann") -> Result:
    """``/clients <words>`` typed in the console."""
    command = parse_console(f"/clients {words}")
    assert command is not None
    return Commands(core, Transport.CONSOLE).run(actor, command)


def console_text(core: Core, result: Result) -> str:
    lines = Lines(core.prompts.messages)
    return "\n".join(line for part in result.parts for line in lines.part(part))


def row_of(text: str, figure: str) -> list[str]:
    """A figure's row of the comparison table: the figure, now, before and the change."""
    found = re.search(rf"^  ({re.escape(figure)}) +(.+?)  +(.+?)  +(.+)$", text, re.MULTILINE)
    assert found, figure
    return [found.group(1), *(g.strip() for g in found.groups()[1:])]


def saved(core: Core, record: Departure) -> Departure:
    return Lifecycle(core.departures).save_outcome(record, SaveOutcome.SAVED, actor=record["am"])


def a_quarter_with_the_count_said_before_it_and_changed_during_it(
        core: Core, clock: ManualClock, interview_with: Interview) -> dict[str, int]:  # fmt: skip
    """2026-Q4: Old Co, leaving. /clients 50 on 1 Dec 2026, /clients 60 on 10 Feb 2027. 2027-Q1: Jan Co (leaving),
    Saved Co (a save attempt, saved: 1,000 EUR kept), Feb Co (leaving, then departed), Open Co (still being
    interviewed), Mar Co (leaving). Each interview answers 1,200 EUR a month unless said otherwise."""
    made = {}
    on(clock, "2026-11-25")
    made["Old Co"] = interview_with(core.departures, "Old Co")["id"]
    on(clock, "2026-12-01")
    assert keys(clients(core, "50")) == ["clients_noted", "clients_in_report"]
    on(clock, "2027-01-12")
    made["Jan Co"] = interview_with(core.departures, "Jan Co")["id"]
    on(clock, "2027-01-20")
    attempt = interview_with(core.departures, "Saved Co", mrr="1000", fixable="1", save_plan="A discount",
                             save_owner="Ann", save_by="in 2 weeks")  # fmt: skip
    assert attempt["status"] is Status.SAVING
    on(clock, "2027-01-27")
    made["Saved Co"] = saved(core, core.departures.get(attempt["id"]))["id"]
    on(clock, "2027-02-03")
    feb = interview_with(core.departures, "Feb Co", reason=QUALITY)
    made["Feb Co"] = Lifecycle(core.departures).set_status(feb, Status.DEPARTED, actor="ann")["id"]
    on(clock, "2027-02-10")
    assert keys(clients(core, "60", actor="bob")) == ["clients_noted", "clients_before", "clients_in_report"]
    on(clock, "2027-02-15")
    made["Open Co"] = core.departures.start("Open Co", am="ann", source=Source.CONSOLE).departure["id"]
    on(clock, "2027-03-02")
    made["Mar Co"] = interview_with(core.departures, "Mar Co", am="bob")["id"]
    on(clock, "2027-04-06")
    return made


def test_turnover_of_a_quarter_counts_against_the_clients_said_before_it_not_the_change_during_it(
        core, clock, interview_with):  # fmt: skip
    a_quarter_with_the_count_said_before_it_and_changed_during_it(core, clock, interview_with)
    report = build_report(core.departures, Q1)
    now, before = report.figures, report.previous
    assert before is not None and now.active is not None and before.active is not None
    # Jan Co, Feb Co, Mar Co lost; Saved Co kept, Open Co not decided: 3 of the 50 that held on 1 January
    assert (now.clients_lost, now.active.count, now.active.source, now.active.on) == (
        3, 50, BaseSource.TEAM, date(2026, 12, 1))  # fmt: skip
    assert now.active.at_start and now.turnover == pytest.approx(0.06) and now.retention == pytest.approx(0.94)
    # 2026-Q4: nothing was said by 1 October; the first count said during the quarter stands in
    assert (before.clients_lost, before.active.count, before.active.at_start) == (1, 50, False)
    assert before.turnover == pytest.approx(0.02)
    # the next quarter starts with the count changed in February
    later = build_report(core.departures, Q2).figures.active
    assert later is not None and (later.count, later.on, later.at_start) == (60, date(2027, 2, 10), True)

    text = render_report_text(report, core.prompts)
    assert ("Retention: 94%, turnover 6%: 3 clients lost of 50 active at the start "
            "(the team's count, 50 from 2026-12-01)") in text  # fmt: skip
    assert row_of(text, "Active clients at the start") == ["Active clients at the start", "50", "50", "±0"]
    assert row_of(text, "Clients lost") == ["Clients lost", "3", "1", "+2"]
    assert row_of(text, "Turnover") == ["Turnover", "6%", "2%", "+4 pts"]
    assert row_of(text, "Retention") == ["Retention", "94%", "98%", "-4 pts"]
    # defined once, plainly, with the base it used and where that came from
    defined = "Turnover: clients lost ÷ active clients at the start of the period; retention = 1 − turnover"
    assert text.count(defined) == 1
    assert "Here: the team's count, 50 from 2026-12-01." in text
    q4 = render_report_text(build_report(core.departures, Q4), core.prompts)
    assert ("1 client lost of 50 active at the start (the team's count, 50 from 2026-12-01; none held at the "
            "start, so the first said during the period)") in q4  # fmt: skip

    data = json.loads(report_json(report))
    assert data["figures"]["active_clients"] == {"count": 50, "source": "clients", "on": "2026-12-01",
                                                 "held_at_start": True, "workload_answers": 0}  # fmt: skip
    assert (data["figures"]["clients_lost"], data["figures"]["turnover_rate"]) == (3, pytest.approx(0.06))
    assert data["figures"]["retention_rate"] == pytest.approx(0.94)
    assert data["previous"]["active_clients"]["held_at_start"] is False

    # the monthly digest says it too, beside the month before
    digest = digest_text(core.departures, "2027-02")
    assert ("Retention: 98%, turnover 2% (1 of 50 active clients at the start, the team's count from 2026-12-01); "
            "98% in 2027-01.") in digest  # fmt: skip


def test_without_a_count_from_the_team_the_account_managers_workload_answers_are_summed(
        core, clock, interview_with):  # fmt: skip
    on(clock, "2026-11-25")
    interview_with(core.departures, "Ann Old", am="ann", workload="12")
    gone = interview_with(core.departures, "Cy Gone", am="cy", workload="100")
    Privacy(core.departures).forget(gone, actor="cy")  # a forgotten departure speaks for no account manager
    on(clock, "2027-01-12")
    interview_with(core.departures, "Bob Jan", am="bob", workload="20")  # bob's first answer, during the quarter
    on(clock, "2027-02-03")
    interview_with(core.departures, "Ann Feb", am="ann", workload="14")  # ann's 12 held at the start
    report = build_report(core.departures, Q1)
    active = report.figures.active
    assert active is not None
    assert (active.count, active.source, active.answers, active.at_start) == (32, BaseSource.WORKLOAD, 2, False)
    assert report.figures.clients_lost == 2 and report.figures.turnover == pytest.approx(2 / 32)
    text = render_report_text(report, core.prompts)
    assert ("Retention: 94%, turnover 6%: 2 clients lost of 32 active at the start (the workload answers of "
            "2 account managers, the latest of 2027-01-12; some given during the period)") in text
    # the quarter before: ann's 12 alone (cy's 100 went with the forgotten departure)
    before = report.previous
    assert before is not None and before.active is not None and before.active.count == 12
    # a count the team says later leaves this quarter as it was, and is the base of the next one
    on(clock, "2027-04-02")
    clients(core, "45")
    assert build_report(core.departures, Q1).figures.active == active
    nxt = build_report(core.departures, Q2).figures.active
    assert nxt is not None and (nxt.count, nxt.source, nxt.at_start) == (45, BaseSource.TEAM, False)
    # with neither, the report says what would give the figures
    on(clock, "2027-04-03")
    empty = render_report_text(build_report(core.departures, quarter(date(2026, 4, 1))), core.prompts)
    assert "No departures recorded in this period." in empty and "Retention" not in empty


def test_without_any_count_the_rates_are_not_known_and_the_report_says_how_to_give_one(core, clock):
    on(clock, "2027-01-12")
    # gone before any answer to the workload question, and nobody said /clients
    record = core.departures.start("Early Co", am="ann", source=Source.CONSOLE).departure
    Lifecycle(core.departures).set_status(record, Status.DEPARTED, actor="ann")
    report = build_report(core.departures, Q1)
    assert (report.figures.active, report.figures.turnover, report.figures.retention) == (None, None, None)
    text = render_report_text(report, core.prompts)
    assert "Retention and turnover: not known until the team says how many active clients it has" in text
    assert "(/clients 42 in the console, /departure clients 42 in Slack)" in text
    assert row_of(text, "Turnover") == ["Turnover", "n/a", "n/a", "-"]
    figures = json.loads(report_json(report))["figures"]
    assert (figures["active_clients"], figures["turnover_rate"], figures["clients_lost"]) == (None, None, 1)


def test_the_revenue_kept_by_save_attempts_stands_beside_the_revenue_lost(core, clock, interview_with):
    a_quarter_with_the_count_said_before_it_and_changed_during_it(core, clock, interview_with)
    report = build_report(core.departures, Q1)
    now, before = report.figures, report.previous
    assert before is not None
    assert now.kept == {"EUR": Decimal("1000")}  # Saved Co
    assert now.lost == {"EUR": Decimal("3600")}  # Jan Co, Feb Co, Mar Co
    assert (before.kept, before.lost) == ({}, {"EUR": Decimal("1200")})
    text = render_report_text(report, core.prompts)
    assert "Monthly revenue lost: 3,600 EUR; at stake: none; kept by save attempts: 1,000 EUR" in text
    assert row_of(text, "Monthly revenue kept") == ["Monthly revenue kept", "1,000 EUR", "none", "+1,000 EUR"]
    assert "Revenue kept: that of departures saved by a save attempt" in text
    data = json.loads(report_json(report))
    assert data["figures"]["revenue_kept"] == {"EUR": "1000"} and data["previous"]["revenue_kept"] == {}
    assert "Kept by save attempts: 1,000 EUR." in digest_text(core.departures, "2027-01")


def test_the_clients_own_reason_is_shown_beside_the_account_managers(core, clock, interview_with):
    on(clock, "2027-01-12")
    d = core.departures
    voiced = {}
    for client, theirs in [("Price One", "quality"), ("Price Two", "quality"), ("Price Three", "price"),
                           ("Price Four", "results")]:  # fmt: skip
        voiced[client] = (interview_with(d, client, reason=PRICE), theirs)
    voiced["Done Co"] = (interview_with(d, "Done Co", reason=FINISHED), "project_finished")
    words_only = interview_with(d, "Quiet Co", reason=PRICE)  # answers the form, but not its reason
    interview_with(d, "Silent Co", reason=QUALITY)  # never answers the form
    on(clock, "2027-01-20")
    for record, theirs in voiced.values():
        record_client_voice(d, record, ClientAnswers(reason=theirs, words="Because."), clock.now())
    record_client_voice(d, words_only, ClientAnswers(words="No comment"), clock.now())

    report = build_report(d, Q1)
    now = report.figures
    assert (now.named, now.answered_form, now.client_reasons, now.reasons_differ) == (7, 6, 5, 3)
    price = report.heard[0]
    assert (price.key, price.answered, price.differ) == ("price", 4, 3)
    assert price.said == (("Service quality or mistakes", 2), ("Results below expectations", 1))
    text = render_report_text(report, core.prompts)
    assert ("The client's reason beside ours: 6 of 7 clients answered the form of the exit note, "
            "5 with their reason") in text  # fmt: skip
    assert ("  We heard Price or budget; they said Service quality or mistakes (2), Results below expectations (1) "
            "(3 of 4 who answered)") in text  # fmt: skip
    assert "  We heard Project finished; the one client who answered said the same" in text
    # one other reason: as a person says it
    fewer = build_report(d, Q1, records=[r for r in d.all() if r["client"] != "Price Four"])
    assert "We heard Price or budget; they said Service quality or mistakes (2 of 3 who answered)" in (
        render_report_text(fewer, core.prompts))  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(report_csv(report).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS and "client_reason" in CSV_COLUMNS
    assert {r["client"]: (r["reason"], r["client_reason"]) for r in rows} == {
        "Price One": ("price", "quality"), "Price Two": ("price", "quality"), "Price Three": ("price", "price"),
        "Price Four": ("price", "results"), "Done Co": ("project_finished", "project_finished"),
        "Quiet Co": ("price", ""), "Silent Co": ("quality", "")}  # fmt: skip
    data = json.loads(report_json(report))
    assert data["figures"]["answered_form"] == 6 and data["figures"]["client_reasons_differ"] == 3
    assert data["reasons_heard_and_said"][0] == {
        "reason": "price", "reason_label": "Price or budget", "answered": 4, "differ": 3,
        "client_reasons": [{"label": "Service quality or mistakes", "departures": 2},
                           {"label": "Results below expectations", "departures": 1}]}  # fmt: skip
    digest = digest_text(d, "2027-01")
    assert "In their own words: 6 of 7 clients answered the form; 3 of the 5 who gave their reason gave another" in (
        digest)  # fmt: skip


def test_a_forgotten_departure_counts_only_in_the_anonymous_totals(core, clock, interview_with):
    on(clock, "2027-01-04")
    clients(core, "40")
    d = core.departures
    kept = interview_with(d, "Kept Voice Co", reason=PRICE)
    gone = interview_with(d, "Forgot Voice Co", reason=PRICE, workload="300")
    on(clock, "2027-01-11")
    record_client_voice(d, kept, ClientAnswers(reason="quality", words="Slow replies"), clock.now())
    record_client_voice(d, gone, ClientAnswers(reason="fit", words="Secret words of Forgot Voice Co"), clock.now())
    on(clock, "2027-01-12")
    Privacy(d).forget(d.get(gone["id"]), actor="ann")

    report = build_report(d, Q1)
    now = report.figures
    # both left: the forgotten one still counts in the turnover, anonymously
    assert (now.departures, now.clients_lost, now.active.count if now.active else None) == (2, 2, 40)
    # but nothing it said: neither its reason nor that it answered
    assert (now.named, now.answered_form, now.client_reasons, now.reasons_differ) == (1, 1, 1, 1)
    assert [(h.key, h.answered, h.said) for h in report.heard] == [("price", 1, (("Service quality or mistakes", 1),))]
    forgotten = next(r for r in report.rows if r.forgotten)
    assert (forgotten.client_answered, forgotten.client_reason, forgotten.client_reason_label) == (False, None, None)
    text = render_report_text(report, core.prompts)
    exports = report_csv(report).decode() + report_json(report).decode() + text
    for personal in ("Forgot Voice Co", "Secret words", "Product or feature fit", '"fit"', "300"):
        assert personal not in exports, personal
    row = next(r for r in csv.DictReader(io.StringIO(report_csv(report).decode())) if r["forgotten"] == "yes")
    assert (row["client"], row["client_reason"]) == ("", "")


def test_clients_in_the_console_keeps_each_count_with_its_day_and_refuses_what_is_no_count(core, clock):
    on(clock, "2027-01-04")
    for words, key in [("", "clients_usage"), ("-3", "clients_negative"), ("lots", "clients_not_a_number"),
                       ("4.5", "clients_not_a_number"), ("42 apples", "clients_not_a_number"),
                       ("2000000", "clients_too_many"), ("42 since someday", "clients_bad_day"),
                       ("42 since 2099-01-01", "clients_future_day")]:  # fmt: skip
        refused = clients(core, words)
        assert refused.warned and keys(refused) == [key], words
    assert core.store.team_sizes() == []  # nothing kept of a refusal
    usage = console_text(core, clients(core, ""))
    assert usage == ("Say how many active clients the team has now, as a whole number: /clients 42. For the count a "
                     "past period should use, add the day it held from: /clients 40 since 2026-10-01.")  # fmt: skip
    assert "/clients 42" in console_text(core, clients(core, "-3"))

    noted = clients(core, "42")
    assert console_text(core, noted) == ("Noted: 42 active clients, from 2027-01-04 on.\nThe report counts turnover "
                                         "against the number that held at the start of each period: "
                                         "/report last quarter.")  # fmt: skip
    [kept] = core.store.team_sizes()
    assert (kept["count"], kept["by"], kept["at"], kept["said_at"]) == (42, "ann", core.departures.now(),
                                                                         core.departures.now())  # fmt: skip
    # counts as a person writes them
    on(clock, "2027-01-05")
    assert console_text(core, clients(core, "1")).startswith("Noted: 1 active client, from 2027-01-05 on.\n"
                                                             "Before that: 42, from 2027-01-04.")  # fmt: skip
    assert [s["count"] for s in core.store.team_sizes()] == [42, 1]
    on(clock, "2027-01-06")
    assert clients(core, "1,200 clients").parts[0].values["count"] == 1200
    # a count for the past: it holds from the start of that day, until the next one said
    back = clients(core, "40 since 2026-10-01", actor="U123")
    assert keys(back) == ["clients_noted", "clients_until", "clients_in_report"]
    assert "It holds until 2027-01-04, when the count said for that day (42) takes over." in console_text(core, back)
    first = core.store.team_sizes()[0]
    assert (first["count"], first["at"], first["by"]) == (40, "2026-09-30T22:00:00.000Z", "U123")
    q4 = build_report(core.departures, Q4).figures.active
    assert q4 is not None and (q4.count, q4.at_start) == (40, True)
    # a refusal tells the count that holds now
    assert "The team's count of active clients now: 1200 (from 2027-01-06)." in console_text(core, clients(core, "x"))


def test_clients_is_one_command_in_the_console_and_in_slack(core, clock):
    assert parse_departure("clients 42") == Command("clients", "42", as_client="clients 42")
    slack = Commands(core, Transport.SLACK)
    result = slack.run("U0ANYONE", parse_departure("clients 42"))  # anyone who may use the bot
    assert keys(result) == ["clients_noted", "clients_in_report"]
    words = SlackWords(core.prompts.messages)
    assert "`/departure report last quarter`" in words.say(result.parts[-1])
    refused = slack.run("U0ANYONE", parse_departure("clients"))
    assert refused.warned and refused.parts[0].values["example"] == CommandRef("clients", "42")
    assert "`/departure clients 42`" in words.say(refused.parts[0])
    assert refused.parts[0].tone is Tone.WARNING
    # a client whose name starts with the word is told how to start it
    named = slack.run("U0ANYONE", parse_departure("Clients United"))
    assert keys(named)[-1] == "meant_client"
    [listed] = [p for p in Commands(core, Transport.CONSOLE).run("ann", Command("help")).parts if isinstance(p, Help)]
    assert any(e.command == "clients" for e in listed.entries)


# -- the store: the team's size over time, on every backend ----------------------------------------------


@pytest.fixture(params=["memory", "tinydb"])
def store(request, tmp_path):
    made = MemoryStore() if request.param == "memory" else TinyDBStore(tmp_path / "sendoff.json")
    yield made
    made.close()


def test_team_sizes_are_kept_in_the_order_they_hold(store):
    late = store.add_team_size({"count": 42, "at": "2027-01-04T09:00:00.000Z", "by": "ann",
                                "said_at": "2027-01-04T09:00:00.000Z"})  # fmt: skip
    early = store.add_team_size({"count": 40, "at": "2026-09-30T22:00:00.000Z", "by": "bob",
                                 "said_at": "2027-01-05T09:00:00.000Z"})  # fmt: skip
    assert (late["id"], early["id"]) == (1, 2)
    assert [(s["count"], s["by"]) for s in store.team_sizes()] == [(40, "bob"), (42, "ann")]
    for bad in (-1, "42", True, 4.5):
        with pytest.raises((ValueError, TypeError)):
            store.add_team_size({"count": bad, "at": "2027-01-04T09:00:00.000Z", "by": "ann",
                                 "said_at": "2027-01-04T09:00:00.000Z"})  # fmt: skip
    assert len(store.team_sizes()) == 2


def test_team_sizes_survive_a_reopen_beside_the_rest(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path)
    store.add_team_size({"count": 42, "at": "2027-01-04T09:00:00.000Z", "by": "ann",
                         "said_at": "2027-01-04T09:00:00.000Z"})  # fmt: skip
    # sendoff report reads it beside the running bot, from the journal
    assert [s["count"] for s in ReadOnlyTinyDBStore(path).team_sizes()] == [42]
    store.close()
    reopened = TinyDBStore(path)
    assert [s["count"] for s in reopened.team_sizes()] == [42]
    reopened.close()
    raw = json.loads(path.read_text())
    raw["team_sizes"]["1"]["count"] = -5
    path.write_text(json.dumps(raw))
    broken = TinyDBStore(path)
    try:
        with pytest.raises(StoreCorruptError, match="team_sizes record 1"):
            broken.team_sizes()
    finally:
        broken.close()
