"""The interview engine: what to ask next, given the answers so far.

Pure: it reads and changes an ``InterviewState`` (kept inside the departure
record) and knows nothing of terminals, Slack or storage, so every transport
asks the same questions in the same order, and a restart resumes exactly
where the interview was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.answers import AnswerError, Context, Parsed, amount_is_positive, display_value, parse_answer
from bot.countries import country_time_zones
from prompts import Condition, Question, Script, Stage
from storage.records import Answer, InterviewData, NewDeparture


@dataclass
class InterviewState:
    """The stored form: plain data, so it round-trips through the store."""

    answers: dict[str, Answer] = field(default_factory=dict)
    trail: list[str] = field(default_factory=list)  # question ids in the order first answered
    parked: list[str] = field(default_factory=list)  # stage ids put off with "later"
    editing: str | None = None  # a question being asked again (back or edit)

    @classmethod
    def from_record(cls, record: NewDeparture) -> InterviewState:
        data = record["interview"]
        return cls(
            answers=dict(data["answers"]),
            trail=list(data["trail"]),
            parked=list(data["parked"]),
            editing=data["editing"],
        )

    def to_record(self) -> InterviewData:
        return {"answers": self.answers, "trail": self.trail, "parked": self.parked, "editing": self.editing}

    def values(self) -> dict[str, Any]:
        """Question id -> value, skipped questions as None."""
        return {qid: a.get("value") for qid, a in self.answers.items()}


@dataclass(frozen=True)
class Outcome:
    """What one answer did."""

    question: Question
    parsed: Parsed | None  # None when skipped
    previous: str | None  # the display of the answer it replaced
    completed_stages: tuple[Stage, ...]  # stages this answer finished
    paused: bool  # an option that puts the interview on hold (client not confirmed yet)
    finished: bool  # nothing left to ask, nothing parked


class Interview:
    def __init__(self, script: Script) -> None:
        self.script = script

    # -- what applies ------------------------------------------------------------
    def holds(self, condition: Condition, values: dict[str, Any]) -> bool:
        value = values.get(condition.question)
        if condition.test == "answered":
            return (value is not None) == bool(condition.value)
        if value is None:
            return False
        if condition.test == "in":
            chosen = value if isinstance(value, list) else [value]
            return any(v in condition.value for v in chosen)
        if condition.test == "equals":
            return bool(value == condition.value)
        if condition.test == "many_time_zones":
            return (len(country_time_zones(value)) > 1) == bool(condition.value)
        if condition.test == "positive":
            # A final payment of 0 ("none") has no due date to ask for, nor to nudge about.
            return amount_is_positive(value) == bool(condition.value)
        return False

    def applies(self, question: Question, state: InterviewState) -> bool:
        if not question.when:
            return True  # most questions: asked whatever came before (and asked about very often)
        values = state.values()
        return all(self.holds(c, values) for c in question.when) and self._questions_above_apply(question, state)

    def _questions_above_apply(self, question: Question, state: InterviewState) -> bool:
        # A question whose condition rests on a question that no longer applies
        # does not apply either (reason changed away from competitor, say).
        for condition in question.when:
            above = self.script.question(condition.question)
            if above is not None and above.when and not self.applies(above, state):
                return False
        return True

    def is_settled(self, question: Question, state: InterviewState) -> bool:
        """Answered or skipped, and not on an option that asks to be asked again."""
        answer = state.answers.get(question.id)
        if answer is None:
            return False
        if answer.get("skipped"):
            return True
        option = question.option(answer.get("value")) if isinstance(answer.get("value"), str) else None
        return not (option and option.pause)

    def value_of(self, state: InterviewState, role: str) -> Any:
        """The answer to the question playing ``role``, if that question applies; else None."""
        question = self.script.by_role(role)
        if question is None or not self.applies(question, state):
            return None
        answer = state.answers.get(question.id)
        return None if answer is None else answer.get("value")

    def applicable(self, state: InterviewState) -> list[Question]:
        return [q for q in self.script.questions() if self.applies(q, state)]

    # -- what next ---------------------------------------------------------------
    def next_question(self, state: InterviewState) -> Question | None:
        if state.editing:
            question = self.script.question(state.editing)
            if question is not None and self.applies(question, state):
                return question
        for question in self.script.questions():
            if question.stage in state.parked:
                continue
            if self.applies(question, state) and not self.is_settled(question, state):
                return question
        return None

    def progress(self, state: InterviewState) -> tuple[int, int]:
        questions = self.applicable(state)
        return sum(self.is_settled(q, state) for q in questions), len(questions)

    def is_finished(self, state: InterviewState) -> bool:
        return not state.parked and self.next_question(state) is None

    def stage_complete(self, stage: Stage, state: InterviewState) -> bool:
        return all(self.is_settled(q, state) for q in stage.questions if self.applies(q, state))

    def unanswered_stages(self, state: InterviewState) -> list[Stage]:
        return [s for s in self.script.stages if not self.stage_complete(s, state)]

    # -- changes -----------------------------------------------------------------
    def answer(
        self, state: InterviewState, question: Question, raw: str, ctx: Context, *, actor: str, at: str
    ) -> Outcome:
        """Validate ``raw`` for ``question`` and record it; AnswerError leaves ``state`` as it was."""
        self._check_askable(question, state)
        parsed = parse_answer(question, raw, Context(ctx.today, ctx.currency, state.values()))
        return self._record(state, question, parsed, actor=actor, at=at)

    def skip(self, state: InterviewState, question: Question, *, actor: str, at: str) -> Outcome:
        self._check_askable(question, state)
        if not question.skippable:
            raise AnswerError("This question cannot be skipped.")
        return self._record(state, question, None, actor=actor, at=at)

    def prefill(self, state: InterviewState, question: Question, value: Any, *, actor: str, at: str) -> None:
        """Record a value that came from elsewhere (a CRM), already validated."""
        display = display_value(question, value, state.values())
        self._record(state, question, Parsed(value, display), actor=actor, at=at)

    def _check_askable(self, question: Question, state: InterviewState) -> None:
        if not self.applies(question, state):
            raise AnswerError(f'"{question.label}" does not apply, given the other answers.')

    def _record(
        self, state: InterviewState, question: Question, parsed: Parsed | None, *, actor: str, at: str
    ) -> Outcome:
        stages_before = {s.id for s in self.script.stages if self.stage_complete(s, state)}
        previous = state.answers.get(question.id)
        state.answers[question.id] = {
            "value": None if parsed is None else parsed.value,
            "display": "skipped" if parsed is None else parsed.display,
            "skipped": parsed is None,
            "at": at,
            "by": actor,
        }
        if question.id not in state.trail:
            state.trail.append(question.id)
        state.editing = None
        option = question.option(parsed.value) if parsed and isinstance(parsed.value, str) else None
        paused = bool(option and option.pause)
        if paused:
            # Nothing more is asked until the AM resumes; this question comes first then.
            state.parked = [s.id for s in self.script.stages]
        completed = tuple(s for s in self.script.stages if s.id not in stages_before and self.stage_complete(s, state))
        return Outcome(
            question=question,
            parsed=parsed,
            previous=previous.get("display") if previous else None,
            completed_stages=completed,
            paused=paused,
            finished=self.is_finished(state),
        )

    def back(self, state: InterviewState) -> Question | None:
        """Ask the question before the current one again; None at the first."""
        current = self.next_question(state)
        trail = [qid for qid in state.trail if self._askable_id(qid, state)]
        if current is not None and current.id in trail:
            position = trail.index(current.id)
            previous = trail[position - 1] if position > 0 else None
        else:
            previous = trail[-1] if trail else None
        if previous is None:
            return None
        question = self.script.question(previous)
        state.editing = previous
        if question is not None and question.stage in state.parked:
            state.parked.remove(question.stage)
        return question

    def _askable_id(self, question_id: str, state: InterviewState) -> bool:
        question = self.script.question(question_id)
        return question is not None and self.applies(question, state)

    def edit(self, state: InterviewState, question_id: str) -> Question:
        """Put an earlier question up to be asked again; raises AnswerError if it cannot be."""
        question = self.script.question(question_id)
        if question is None:
            raise AnswerError(f"There is no question '{question_id}'.")
        self._check_askable(question, state)
        state.editing = question.id
        return question

    def keep(self, state: InterviewState) -> None:
        """Leave the question being asked again as it was."""
        state.editing = None

    def park_current_stage(self, state: InterviewState) -> Stage | None:
        """Put off the rest of the current question's stage ("later")."""
        question = self.next_question(state)
        if question is None:
            return None
        state.editing = None
        if question.stage not in state.parked:
            state.parked.append(question.stage)
        return self.script.stage(question.stage)

    def resume(self, state: InterviewState) -> None:
        state.parked = []
