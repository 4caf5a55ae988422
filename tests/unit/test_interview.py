from datetime import date

import pytest

from bot.answers import AnswerError, Context
from bot.interview import Interview, InterviewState

CTX = Context(date(2026, 11, 25), "EUR")


@pytest.fixture
def engine(prompts):
    return Interview(prompts.script)


def run(engine, state, *answers):
    """Answer the current questions in turn; 'skip' skips."""
    outcome = None
    for raw in answers:
        question = engine.next_question(state)
        if raw == "skip":
            outcome = engine.skip(state, question, actor="ann", at="t")
        else:
            outcome = engine.answer(state, question, raw, CTX, actor="ann", at="t")
    return outcome


WHY = ["yes", "call", "today", "price", "too dear", "skip"]


def test_questions_come_in_order_and_conditions_decide(engine):
    state = InterviewState()
    run(engine, state, *WHY)
    assert "competitor" not in state.answers  # reason was price
    assert engine.next_question(state).id == "fixable"
    run(engine, state, "no")
    assert engine.next_question(state).id == "final_payment"  # no save questions after "no"


def test_a_competitor_reason_adds_its_question(engine):
    state = InterviewState()
    run(engine, state, "yes", "call", "today", "competitor", "skip")
    assert engine.next_question(state).id == "competitor"


def test_skip_only_where_allowed(engine):
    state = InterviewState()
    with pytest.raises(AnswerError, match="cannot be skipped"):
        engine.skip(state, engine.next_question(state), actor="ann", at="t")
    assert state.answers == {}


def test_a_bad_answer_leaves_the_state_untouched(engine):
    state = InterviewState()
    run(engine, state, "yes", "call")
    before = state.to_record()
    with pytest.raises(AnswerError):
        engine.answer(state, engine.next_question(state), "31/02/2027", CTX, actor="ann", at="t")
    assert state.to_record() == before


def test_back_asks_the_previous_question_and_keeps_later_answers(engine):
    state = InterviewState()
    run(engine, state, "yes", "call", "today")
    assert engine.back(state).id == "notified_on"
    assert engine.back(state).id == "told_how"
    assert engine.next_question(state).id == "told_how"
    run(engine, state, "email")
    assert state.answers["told_how"]["value"] == "email"
    assert state.answers["notified_on"]["value"] == "2026-11-25"
    assert engine.next_question(state).id == "reason"


def test_back_at_the_first_question_goes_nowhere(engine):
    assert engine.back(InterviewState()) is None


def test_later_parks_the_rest_of_a_stage_and_resume_brings_it_back(engine):
    state = InterviewState()
    run(engine, state, "yes")
    assert engine.park_current_stage(state).id == "why"
    assert engine.next_question(state).id == "fixable"
    assert not engine.is_finished(state)
    engine.resume(state)
    assert engine.next_question(state).id == "told_how"


def test_not_yet_confirmed_pauses_and_asks_again_on_resume(engine):
    state = InterviewState()
    outcome = run(engine, state, "not yet")
    assert outcome.paused
    assert engine.next_question(state) is None
    engine.resume(state)
    assert engine.next_question(state).id == "confirmed"


def test_edit_changes_an_answer_and_new_conditions_apply(engine):
    state = InterviewState()
    run(engine, state, *WHY, "no")
    engine.edit(state, "reason")
    outcome = run(engine, state, "competitor")
    assert outcome.previous == "Price or budget"
    assert engine.next_question(state).id == "competitor"


def test_edit_of_a_question_that_does_not_apply_is_refused(engine):
    state = InterviewState()
    run(engine, state, *WHY)
    with pytest.raises(AnswerError, match="does not apply"):
        engine.edit(state, "competitor")


def test_a_whole_interview_finishes_and_reports_completed_stages(engine):
    state = InterviewState()
    run(engine, state, *WHY)
    outcome = run(engine, state, "yes")
    assert outcome.completed_stages == ()
    outcome = run(engine, state, "new pricing", "Ben", "in 3 weeks")
    assert [s.id for s in outcome.completed_stages] == ["save"]
    run(engine, state, "skip", "skip", "skip", "skip", "yes", "skip", "skip", "no")
    outcome = run(engine, state, "skip", "4")
    assert outcome.finished
    assert engine.progress(state) == (len(engine.applicable(state)), len(engine.applicable(state)))


def test_state_round_trips_through_its_stored_form(engine):
    state = InterviewState()
    run(engine, state, "yes", "call")
    engine.park_current_stage(state)
    again = InterviewState.from_record({"interview": state.to_record()})
    assert engine.next_question(again).id == engine.next_question(state).id == "fixable"
