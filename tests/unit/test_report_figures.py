"""The report's figures on a hand-made set of departures whose answers are known.

Each departure is recorded and moved through the real flows (answers, save outcome,
lapse, status by hand, forget, win-back), each step dated by the injectable clock.
``hand_made_set`` is also used by the CLI and Slack report tests.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.app import Core
from bot.chat_commands import Commands, Transport
from bot.clock import ManualClock
from bot.command_words import Command
from bot.departures import Departures
from bot.lifecycle import Lifecycle
from bot.periods import ALL_TIME, between, parse_period, quarter
from bot.privacy import Privacy
from bot.replies import Preformatted, Say, Tone
from bot.reports import build_report, digest_text, render_report_text, report_csv, report_json
from prompts import Question
from storage.postgres_store import PostgresStore
from storage.records import Departure, SaveOutcome, Source, Status
from storage.tinydb_store import ReadOnlyTinyDBStore

BERLIN = ZoneInfo("Europe/Berlin")
Q3 = quarter(date(2026, 7, 1))
Q2 = quarter(date(2026, 4, 1))


def at(day: str, hour: int = 10) -> datetime:
    """``day`` at ``hour`` in Berlin, the team's zone of the tests."""
    return datetime.combine(date.fromisoformat(day), time(hour), BERLIN).astimezone(UTC)


def _filler(question: Question) -> str:
    """An answer for a question a test does not care about."""
    if question.skippable:
        return "skip"
    return {"yes_no": "yes", "date": "today", "money": "0", "number": "1", "email": "none",
            "country": "Germany", "text": "n/a"}.get(question.kind, "1")  # fmt: skip


def record_departure(departures: Departures, clock: ManualClock, client: str, am: str, day: str,
                     **answers: str) -> Departure:  # fmt: skip
    """Record ``client`` on ``day`` and answer the interview up to the last of ``answers`` (by question id)."""
    clock.set(at(day))
    record = departures.start(client, am=am, source=Source.CONSOLE).departure
    left = dict(answers)
    while left and (question := departures.current_question(record)) is not None:
        raw = left.pop(question.id, None) or _filler(question)
        if raw == "skip":
            record, _ = departures.skip(record, actor=am)
        else:
            record, _ = departures.answer(record, raw, actor=am)
    assert not left, f"never asked: {left}"
    return record


def hand_made_set(core: Core, clock: ManualClock, ann: str = "ann", bob: str = "bob") -> dict[str, int]:
    """Six departures recorded in 2026-Q3 and two in 2026-Q2; their ids by client.

    2026-Q3: Saved Co (save attempt, saved), Kept Co (no attempt, retained by hand), Lapsed Co (attempt
    lapsed), Left Co (attempt ended leaving, then departed, USD), Forgot Co (attempt, forgotten),
    Open Co (attempt under way). 2026-Q2: Old Co (departed, won back in August), Prev Co (leaving).
    """
    d = core.departures
    life, privacy = Lifecycle(d), Privacy(d)

    def moved(day: str) -> None:
        clock.set(at(day, 11))

    old = record_departure(d, clock, "Old Co", ann, "2026-05-11", reason="price", mrr="900 EUR", fixable="no")
    prev = record_departure(d, clock, "Prev Co", bob, "2026-06-08", reason="price", mrr="100 EUR", fixable="no")
    moved("2026-06-01")
    life.set_status(d.get(old["id"]), Status.DEPARTED, actor=ann)

    saved = record_departure(d, clock, "Saved Co", ann, "2026-07-06", notified_on="2026-07-03", reason="price",
                             mrr="1000 EUR", fixable="yes", save_plan="discount", save_owner="Ann",
                             save_by="2026-07-20")  # fmt: skip
    moved("2026-07-13")
    life.save_outcome(d.get(saved["id"]), SaveOutcome.SAVED, actor=ann)

    kept = record_departure(d, clock, "Kept Co", ann, "2026-07-20", reason="quality", mrr="500 EUR", fixable="no")
    moved("2026-08-03")
    life.set_status(d.get(kept["id"]), Status.RETAINED, actor=ann)

    lapsed = record_departure(d, clock, "Lapsed Co", bob, "2026-08-04", reason="price", mrr="2000 EUR",
                              fixable="maybe", save_plan="a call", save_owner="Bob", save_by="2026-08-20")  # fmt: skip
    left = record_departure(d, clock, "Left Co", bob, "2026-08-11", reason="competitor", competitor="BigCo",
                            mrr="300 USD", fixable="yes", save_plan="price", save_owner="Bob",
                            save_by="2026-08-28")  # fmt: skip
    moved("2026-08-17")
    life.set_status(d.get(old["id"]), Status.WON_BACK, actor=ann)
    moved("2026-08-21")
    life.save_outcome(d.get(left["id"]), SaveOutcome.LEAVING, actor=bob)
    moved("2026-08-31")
    life.lapse_save(d.get(lapsed["id"]))
    moved("2026-09-01")
    life.set_status(d.get(left["id"]), Status.DEPARTED, actor=bob)

    forgot = record_departure(d, clock, "Forgot Co", bob, "2026-09-01", reason="price", mrr="700 EUR", fixable="yes",
                              save_plan="x", save_owner="Bob", save_by="2026-09-30")  # fmt: skip
    moved("2026-09-02")
    privacy.forget(d.get(forgot["id"]), actor=bob)

    opened = record_departure(d, clock, "Open Co", ann, "2026-09-21", reason="fit", mrr="400 EUR", fixable="maybe",
                              save_plan="y", save_owner="Ann", save_by="2026-10-30")  # fmt: skip
    moved("2026-10-05")
    names = ("Old Co", "Prev Co", "Saved Co", "Kept Co", "Lapsed Co", "Left Co", "Forgot Co", "Open Co")
    records = (old, prev, saved, kept, lapsed, left, forgot, opened)
    return {name: r["id"] for name, r in zip(names, records, strict=True)}


def eur(amount: str) -> Decimal:
    return Decimal(amount)


def test_the_figures_of_a_quarter_beside_the_quarter_before(core, clock):
    hand_made_set(core, clock)
    report = build_report(core.departures, Q3)
    now, before = report.figures, report.previous
    assert report.previous_period == Q2 and before is not None
    assert (now.departures, now.open) == (6, 2)
    # saved 1 (Saved Co); still leaving 2 (Left Co, and Forgot Co, closed as departed); lapsed 1; under way 1
    assert (now.save_attempts, now.saved, now.save_left, now.save_lapsed, now.save_under_way) == (5, 1, 2, 1, 1)
    assert now.save_rate == 0.25
    assert now.retained_without_attempt == 1  # Kept Co: retained, but never a save attempt, so not a saved one
    assert now.lost == {"EUR": eur("2700"), "USD": eur("300")}  # Lapsed Co, Forgot Co; Left Co
    assert now.at_stake == {"EUR": eur("400")}  # Open Co only: never a forgotten or a decided departure
    assert now.won_back == 1  # Old Co, recorded in Q2, won back in August
    assert (now.median_days, now.decided) == (10.0, 4)  # 10 (Saved Co), 0 (Kept Co), 27 (Lapsed Co), 10 (Left Co)
    assert (before.departures, before.save_attempts, before.save_rate) == (2, 0, None)
    assert before.lost == {"EUR": eur("100")}  # Prev Co; Old Co was won back
    assert (before.won_back, before.median_days) == (0, 0.0)


def test_forgotten_departures_count_only_in_the_anonymous_totals(core, clock):
    ids = hand_made_set(core, clock)
    report = build_report(core.departures, Q3)
    assert [(w.am, w.departures, w.open) for w in report.workload] == [("ann", 3, 1), ("bob", 2, 1)]
    forgot = next(r for r in report.rows if r.id == ids["Forgot Co"])
    assert forgot.forgotten and forgot.client == "" and forgot.am == "" and forgot.days_to_decision is None
    price = next(g for g in report.by_reason if g.key == "price")
    assert (price.departures, price.save_ended, price.saved, price.lost) == (3, 3, 1, {"EUR": eur("2700")})
    assert {g.key: g.departures for g in report.by_reason} == {"price": 3, "quality": 1, "competitor": 1, "fit": 1}
    assert [(m.key, m.departures) for m in report.monthly] == [("2026-07", 2), ("2026-08", 2), ("2026-09", 2)]


def test_the_text_states_each_definition_once_and_counts_read_as_written(core, clock, prompts):
    hand_made_set(core, clock)
    text = render_report_text(build_report(core.departures, Q3), prompts)
    assert text.startswith("Departures recorded in 2026-Q3 (2026-07-01 to 2026-09-30, Europe/Berlin)")
    assert "6 departures (2 open)" in text
    assert "saved 1, still leaving 2, lapsed with no outcome 1, under way 1; save rate 25%" in text
    assert "Retained without a save attempt: 1" in text
    assert "Monthly revenue lost: 2,700 EUR, 300 USD; at stake: 400 EUR" in text
    assert "Median days to decision: 10 (of 4 decided departures)" in text
    # each figure beside the quarter before, with its change
    assert re.search(r"^ +2026-Q3 +2026-Q2 +change$", text, re.MULTILINE)
    for figure, now, before, change in [("Departures", "6", "2", "+4"), ("Save rate", "25%", "n/a", "-"),
                                        ("Monthly revenue lost", "2,700 EUR, 300 USD", "100 EUR",
                                         "+2,600 EUR, +300 USD"), ("Won back", "1", "0", "+1"),
                                        ("Median days to decision", "10", "0", "+10")]:  # fmt: skip
        assert re.search(rf"^  {figure} +{re.escape(now)} +{re.escape(before)} +{re.escape(change)}$", text,
                         re.MULTILINE), figure  # fmt: skip
    for definition in ("Departures: recorded in the period", "Save rate: saved ÷ save", "Monthly revenue lost: that",
                       "At stake: that of open departures", "Won back: clients won back", "Days to decision:"):
        assert text.count(definition) == 1, definition
    one = render_report_text(build_report(core.departures, parse_period("2026-06", date(2026, 12, 1))), prompts)
    assert "1 departure (1 open)" in one and "1 departures" not in one


def test_the_digest_and_the_report_of_a_month_agree_even_about_a_forgotten_departure(core, clock):
    ids = hand_made_set(core, clock)
    september = build_report(core.departures, parse_period("2026-09", date(2026, 12, 1)))
    digest = digest_text(core.departures, "2026-09")
    assert digest.report.figures == september.figures
    assert {r.id for r in september.rows} == {ids["Forgot Co"], ids["Open Co"]}
    assert "Lessons from 2026-09: 2 departures recorded (1 still open)" in digest
    assert "Monthly revenue lost: 700 EUR; still at stake: 400 EUR." in digest
    assert "Top reasons: Price or budget (1), Product or feature fit (1)." in digest
    # its chart shows the trend: the 12 months to September
    assert [m.key for m in digest.trend.monthly] == [f"2025-{n}" for n in ("10", "11", "12")] + [
        f"2026-{n:02d}" for n in range(1, 10)]  # fmt: skip
    assert [m.departures for m in digest.trend.monthly][-5:] == [1, 1, 2, 2, 2]  # May to September


def test_report_words_name_periods_and_unknown_words_are_refused_with_an_example(core, clock):
    hand_made_set(core, clock)
    clock.set(at("2026-10-05"))
    console, slack = Commands(core, Transport.CONSOLE), Commands(core, Transport.SLACK)
    shown = slack.run("ann", Command("report", "last quarter"))
    [text] = [p.text for p in shown.parts if isinstance(p, Preformatted)]
    assert text.startswith("Departures recorded in 2026-Q3") and "2026-Q2" in text
    assert "Departures recorded in 2026-10" in "".join(
        p.text for p in slack.run("ann", Command("report", "this month")).parts if isinstance(p, Preformatted))
    refused = console.run("ann", Command("report", "next century"))
    [warning] = [p for p in refused.parts if isinstance(p, Say)]
    assert warning.tone is Tone.WARNING and warning.key == "report_unknown_period"
    assert warning.values["words"] == "next century" and warning.values["example"].argument == "last quarter"


def test_the_report_read_from_outlines_is_the_report_of_the_whole_records_on_every_backend(
        core, clock, settings, request):  # fmt: skip
    ids = hand_made_set(core, clock)
    store = core.store
    voiced = store.get_departure(ids["Saved Co"])
    voiced["client_voice"] = {"at": voiced["updated_at"], "submissions": 1, "reason": "fit", "words": None}
    store.save_departure(voiced)
    d = core.departures
    stores = {"tinydb": store}
    readers = [ReadOnlyTinyDBStore(settings.db_path)]  # what ``sendoff report`` opens: the file's texts
    stores["read-only tinydb"] = readers[0]
    try:
        pg_url = request.getfixturevalue("pg_url")
    except pytest.skip.Exception:
        pg_url = None  # no PostgreSQL here: the CI runs it
    if pg_url is not None:
        readers.append(pg := PostgresStore(pg_url))
        pg.copy_from(store)
        stores["postgres"] = pg
    whole = d.all()
    periods = [ALL_TIME, Q3, Q2, parse_period("2026-09", date(2026, 12, 1)), between(date(2026, 8, 5), None)]
    try:
        for name, backend in stores.items():
            on = Departures(backend, d.prompts, clock, timezone="Europe/Berlin")
            for period in periods:
                fast, slow = build_report(on, period), build_report(on, period, records=whole)
                assert fast == slow, (name, period)
                assert report_json(fast) == report_json(slow) and report_csv(fast) == report_csv(slow)
                assert render_report_text(fast, d.prompts) == render_report_text(slow, d.prompts)
            assert digest_text(on, "2026-08") == digest_text(d, "2026-08"), name
        assert build_report(d).heard[0].said == (("Product or feature fit", 1),)  # the client's reason was read
    finally:
        for reader in readers:
            reader.close()
