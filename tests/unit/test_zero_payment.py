"""A final payment of nothing has no due date: it is not asked, not counted and not nudged about."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.console import ConsoleChat
from prompts import PromptError, load_prompts
from storage.records import Source, TouchStatus

pytest_plugins = ["tests.touch_data"]


def up_to_final_payment(core, answers):
    """A departure whose next question is the final payment, the ones before answered from ``answers``."""
    record = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE).departure
    for raw in answers:
        if core.departures.current_question(record).id == "final_payment":
            break
        record, _ = core.departures.answer(record, raw, actor="ann")
    return record


@pytest.mark.parametrize("typed", ["0", "none", "None.", "0.00 EUR", "nothing"])
def test_nothing_still_to_pay_skips_the_due_date(core, consenting_answers, typed):
    record, _ = core.departures.answer(up_to_final_payment(core, consenting_answers), typed, actor="ann")
    assert core.departures.current_question(record).id == "data_ownership"
    applicable = core.departures.interview.applicable(core.departures.state(record))
    assert "final_payment_due" not in [q.id for q in applicable]


@pytest.mark.parametrize("typed", ["1.5k", "500", "€20"])
def test_an_amount_still_to_pay_asks_when_it_is_due(core, consenting_answers, typed):
    record, _ = core.departures.answer(up_to_final_payment(core, consenting_answers), typed, actor="ann")
    assert core.departures.current_question(record).id == "final_payment_due"


def test_skipping_the_amount_asks_no_due_date_either(core, consenting_answers):
    record, _ = core.departures.skip(up_to_final_payment(core, consenting_answers), actor="ann")
    assert core.departures.current_question(record).id == "data_ownership"


def test_a_payment_edited_down_to_nothing_drops_its_due_date_and_its_nudges(core, interview_with):
    record = interview_with(core.departures, final_payment="500", final_payment_due="in 3 weeks", paid=False)
    due = core.departures.answer_value(record, "final_payment_due")
    assert due is not None
    nudges = [t for t in core.store.find_touches(departure_id=1) if "final_payment_due" in t["key"]]
    assert any(t["status"] is TouchStatus.PENDING for t in nudges)

    shown: list[str] = []
    chat = ConsoleChat(core, shown.append)
    chat.handle("/edit acme final payment")
    chat.handle("0")
    record = core.departures.get(1)
    assert core.departures.answer_value(record, "final_payment_due") is None  # the answer no longer counts
    assert core.departures.current_question(record) is None  # and nothing new is asked
    nudges = [t for t in core.store.find_touches(departure_id=1) if "final_payment_due" in t["key"]]
    assert not any(t["status"] is TouchStatus.PENDING for t in nudges)

    # As with every condition, the earlier answer is kept: owing something again brings it back.
    chat.handle("/edit acme final payment")
    chat.handle("500")
    assert core.departures.answer_value(core.departures.get(1), "final_payment_due") == due


def company_interview(folder: Path, when: str) -> Path:
    (folder / "interview.toml").write_text(
        '[[stage]]\nid = "handover"\n\n'
        '[[stage.question]]\nid = "final_payment"\ntext = "How much is still due?"\nkind = "money"\n\n'
        '[[stage.question]]\nid = "note"\ntext = "Anything else?"\nkind = "text"\n\n'
        '[[stage.question]]\nid = "due"\ntext = "When is it due?"\nkind = "date"\n'
        f"when = {when}\n"
    )
    return folder


def test_a_company_interview_may_ask_a_due_date_only_for_something_owed(tmp_path):
    folder = company_interview(tmp_path, '{ question = "final_payment", positive = true }')
    [condition] = load_prompts(folder).script.question("due").when
    assert (condition.question, condition.test, condition.value) == ("final_payment", "positive", True)


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ('{ question = "note", positive = true }', "positive only applies to a money or number question"),
        ('{ question = "final_payment", positive = "yes" }', "positive takes true or false, not 'yes'"),
        ('{ question = "final_payment", positive = 1 }', "positive takes true or false, not 1"),
        ('{ question = "final_payment", positive = true, answered = true }', "exactly one of"),
    ],
)
def test_a_bad_positive_condition_names_the_file_line_and_question(tmp_path, when, why):
    folder = company_interview(tmp_path, when)
    path = folder / "interview.toml"
    line = path.read_text().splitlines().index(f"when = {when}") + 1
    with pytest.raises(PromptError) as err:
        load_prompts(folder)
    assert f"{path}:{line}: question 'due': " in str(err.value)
    assert why in str(err.value)
