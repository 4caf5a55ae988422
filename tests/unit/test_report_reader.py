"""How the report reads each departure: the answers of each role as the interview gives them, and figures that
count what their definitions say.

The Reader reads an answer whose question has no condition straight from the answers, and keeps what
``Interview.applies`` said of a conditional one per values of the answers it rests on (10,000 departures share a
handful): neither may ever give another value than ``Interview.value_of`` would, whichever departure came first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from bot.app import Core
from bot.clock import ManualClock
from bot.departures import Departures
from bot.interview import InterviewState
from bot.reports import ROLES, Reader, build_report, figures, read_departures
from prompts import Condition, Option, Prompts, Question, Script, Stage
from storage.memory_store import MemoryStore
from storage.records import OPEN, Departure, SaveOutcome, Status
from tests.unit.test_report_figures import hand_made_set

pytest_plugins = ["tests.touch_data"]

Interview = Callable[..., Departure]


def _answer(value: Any) -> dict[str, Any]:
    return {"value": value, "display": str(value), "skipped": value is None, "at": "2026-11-25T10:00:00.000Z",
            "by": "ann"}  # fmt: skip


def test_a_role_whose_question_no_longer_applies_is_read_as_none_whichever_departure_came_first(
        core: Core, interview_with: Interview) -> None:  # fmt: skip
    d = core.departures
    consenting = interview_with(d, "Yes Co")
    refusing = interview_with(d, "No Co", consent="no")
    # Consent withdrawn after the country was given: the answer stays, its question no longer applies.
    changed = interview_with(d, "Changed Co")
    d.edit(changed, "consent", actor="ann")
    changed, _ = d.answer(d.get(changed["id"]), "no", actor="ann")
    assert "country" in changed["interview"]["answers"]
    whole = d.all()
    for records in (whole, whole[::-1], read_departures(d), read_departures(d)[::-1]):
        reader = Reader(d)  # what it learnt of the conditions starts empty, each order in turn
        for record in records:
            state = InterviewState(answers=record["interview"]["answers"])
            for role in ROLES:
                expected = d.interview.value_of(state, role)
                assert reader.value_of(record["interview"]["answers"], role) == expected, (record["client"], role)
    countries = {r.client: r.country for r in build_report(d).rows}
    assert countries == {"Yes Co": "DE", "No Co": None, "Changed Co": None}
    assert {consenting["id"], refusing["id"], changed["id"]} == {r["id"] for r in whole}


def test_a_condition_resting_on_another_questions_condition_is_followed_to_the_end(
        prompts: Prompts, clock: ManualClock) -> None:  # fmt: skip
    # told -> why (only when told) -> country (only when why was answered, and so only when told too)
    stage = Stage("s", "S", (
        Question("told", "Told", "Told?", "yes_no", "s"),
        Question("why", "Why", "Why?", "choice", "s", options=(Option("price", "Price"), Option("fit", "Fit")),
                 when=(Condition("told", "equals", True),)),
        Question("where", "Where", "Where?", "country", "s", role="country",
                 when=(Condition("why", "in", ["price", "fit"]),)),
        Question("mrr", "MRR", "MRR?", "money", "s", role="revenue"),
    ))  # fmt: skip
    custom = dataclasses.replace(prompts, script=Script((stage,)))
    d = Departures(MemoryStore(), custom, clock, timezone="Europe/Berlin")
    told = {"told": _answer(True), "why": _answer("price"), "where": _answer("DE"),
            "mrr": _answer({"amount": "10", "currency": "EUR"})}  # fmt: skip
    untold = {**told, "told": _answer(False)}  # why stays answered, but no longer applies: nor does where
    unanswered = {k: v for k, v in told.items() if k != "told"}
    listed = {**told, "why": _answer(["price"])}  # a value that cannot be a key is asked each time
    skipped = {**told, "why": _answer(None)}
    cases = [told, untold, unanswered, listed, skipped, told, untold]
    reader = Reader(d)
    for answers in cases + cases[::-1]:
        for role in ("country", "revenue", "reason"):
            assert reader.value_of(answers, role) == d.interview.value_of(InterviewState(answers=answers), role)
    assert [reader.value_of(a, "country") for a in cases] == ["DE", None, None, "DE", None, "DE", None]


def test_the_figures_count_what_their_definitions_say(core: Core, clock: ManualClock) -> None:
    hand_made_set(core, clock)
    rows = build_report(core.departures).rows
    found = figures(rows, won_back=0)
    attempts = [r for r in rows if r.attempted]
    assert (found.departures, found.open, found.save_attempts) == (
        len(rows), sum(r.status in OPEN for r in rows), len(attempts))
    assert (found.saved, found.save_left, found.save_lapsed, found.save_under_way) == tuple(
        sum(r.outcome is o for r in attempts) for o in (SaveOutcome.SAVED, SaveOutcome.LEAVING, SaveOutcome.LAPSED,
                                                         None))  # fmt: skip
    assert found.retained_without_attempt == sum(r.status is Status.RETAINED and not r.attempted for r in rows)
    assert found.clients_lost == sum(r.lost for r in rows) and found.named == sum(not r.forgotten for r in rows)
    assert found.decided == sum(r.days_to_decision is not None for r in rows)
    for name, wanted in (("lost", lambda r: r.lost), ("at_stake", lambda r: r.at_stake and not r.lost),
                         ("kept", lambda r: r.kept and not r.lost and not r.at_stake)):  # fmt: skip
        expected: dict[str, Any] = {}
        for row in rows:
            if row.revenue is not None and wanted(row):
                expected[row.revenue[1]] = expected.get(row.revenue[1], 0) + row.revenue[0]
        assert getattr(found, name) == expected, name
    assert found.lost and found.at_stake and found.kept is not None  # the set has money lost and at stake
