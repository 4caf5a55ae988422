"""Each turn of the interview, once for every transport: an answer, skip, back, later, keep.

A turn takes who acted and what they said, changes the departure through
bot.departures, and returns a ``Result``: the note on a changed answer, the
next question, or the end of the interview with its summaries. The console
and Slack only parse the input and render the result.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from bot.answers import AnswerError, options_for
from bot.app import Core
from bot.departures import FormOutcome
from bot.interview import Outcome
from bot.replies import Asked, Closed, Closing, CommandRef, Refusal, Result, Say, Summary, Tone
from prompts import Question
from storage.records import Departure


class Control(StrEnum):
    """The words that steer the interview instead of answering it."""

    SKIP = "skip"
    BACK = "back"
    LATER = "later"
    KEEP = "keep"  # leave the answer being reconsidered as it was


# What a person may type instead of an answer.
TYPED_CONTROLS = {c.value: c for c in (Control.SKIP, Control.BACK, Control.LATER)}


def refused_answer(err: AnswerError) -> Say:
    # The parsers word their own reasons (bot/answers.py): one message carries them.
    return Say("answer_refused", {"reason": str(err)}, Tone.WARNING)


class Turns:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.departures = core.departures
        self.script = core.prompts.script

    # -- asking --------------------------------------------------------------------------
    def asked(self, record: Departure, question: Question) -> Asked:
        state = self.departures.state(record)
        number, total = self.departures.position(record, question)
        current = state.answers.get(question.id) if state.editing == question.id else None
        return Asked(
            departure_id=record["id"],
            question_id=question.id,
            client=record["client"],
            stage=self.script.stage(question.stage).title,
            number=number,
            total=total,
            text=question.text.format(client=record["client"], am=record["am"]),
            kind=question.kind,
            options=tuple((o.id, o.label) for o in options_for(question, state.values())),
            skippable=question.skippable,
            current=current["display"] if current is not None else None,
        )

    def ask(self, record: Departure, result: Result | None = None, *, repeated: bool = False) -> Result:
        """Add the question now waiting (if any) to ``result``; its person answers next."""
        result = result or Result()
        question = self.departures.current_question(record)
        if question is not None:
            asked = self.asked(record, question)
            result.parts.append(replace(asked, repeated=True) if repeated else asked)
            result.interview = record["id"]
        return result

    def summary(self, record: Departure, actor: str | None, *, personal: bool = True) -> Summary:
        """The departure as a person sees it: its details only for those who may see them."""
        shown = actor is None or self.departures.may_see(record, actor)
        sections = self.departures.summary(record, include_personal=personal) if shown else []
        return Summary(record["id"], record["client"], record["status"], record["am"], record["created_at"][:10],
                       self.departures.progress(record), record["opted_out"], tuple(sections),
                       record.get("save_outcome"))  # fmt: skip

    def greet(self, actor: str) -> Result:
        """Where a person left off: the interview they were in the middle of, if any."""
        record = self.departures.resumable(actor)
        if record is None:
            return Result().say("welcome", start=CommandRef("departure", "<client>"), help=CommandRef("help"))
        result = Result().say("resuming", client=record["client"], progress=self.departures.progress(record))
        return self.ask(record, result)

    # -- answering -----------------------------------------------------------------------
    def reply(self, actor: str, text: str) -> Result:
        """Typed text: answers the question waiting for ``actor``, or names a control word."""
        record = self.departures.resumable(actor)
        if record is None:
            if not text.strip():
                return Result()
            return Result().say("no_interview", start=CommandRef("departure", "<client>"), help=CommandRef("help"))
        question = self.departures.current_question(record)
        assert question is not None  # resumable() returns only departures with a question waiting
        word = text.strip().lower()
        if word in TYPED_CONTROLS:
            return self.control(actor, record["id"], question.id, TYPED_CONTROLS[word])
        if word == "" and self.departures.state(record).editing:
            return self.control(actor, record["id"], question.id, Control.KEEP)
        return self._settle(actor, record, question, text.strip())

    def answer(self, actor: str, departure_id: int, question_id: str, raw: str) -> Result:
        """An answer given on a question's own message (a button, a select, a picker)."""
        found = self._waiting(actor, departure_id, question_id)
        if found is None:
            return Result()  # an old message, or not theirs: nothing changes
        record, question = found
        return self._settle(actor, record, question, raw)

    def control(self, actor: str, departure_id: int, question_id: str, control: Control) -> Result:
        """Skip, Back, Later or Keep, pressed or typed."""
        found = self._waiting(actor, departure_id, question_id)
        if found is None:
            return Result()
        record, question = found
        if control is Control.SKIP:
            if not question.skippable:
                return self.ask(record, Result([Say("not_skippable", {"later": Control.LATER.value})]), repeated=True)
            return self._settle(actor, record, question, None)
        result = Result()
        if control is Control.BACK:
            if self.departures.back(record) is None:
                return self.ask(record, result.say("first_question"), repeated=True)
            result.parts.append(Closed(departure_id, question.id, Closing.WENT_BACK))
        elif control is Control.LATER:
            stage = self.departures.later(record, actor=actor)
            result.parts.append(Closed(departure_id, question.id, Closing.LATER))
            if stage is not None:
                result.say("parked", client=record["client"], stage=stage.title,
                           resume=CommandRef("resume", record["client"]))  # fmt: skip
        else:
            self.departures.keep(record)
            result.parts.append(Closed(departure_id, question.id, Closing.KEPT))
        record = self.departures.get(departure_id)
        if self.departures.current_question(record) is None:
            if self.departures.interview.is_finished(self.departures.state(record)):
                self._finish(actor, record, result)
            return result
        return self.ask(record, result)

    def answer_form(self, actor: str, departure_id: int, raws: dict[str, str | None]) -> Result:
        """The rest of a stage at once; FormError (per field) or a Refusal leaves everything as it was."""
        record = self.departures.get(departure_id)
        self.departures.access.require(record, actor)
        try:
            record, outcome = self.departures.answer_form(record, raws, actor=actor)
        except AnswerError as err:
            raise Refusal("answer_refused", reason=str(err)) from None
        return self._after_form(actor, record, outcome)

    def _after_form(self, actor: str, record: Departure, outcome: FormOutcome) -> Result:
        result = Result()
        for done in outcome.answered:
            result.parts.append(self._closed(record, done))
        return self._after(actor, record, list(outcome.answered), outcome.paused, outcome.finished, result)

    def form_questions(self, actor: str, departure_id: int) -> tuple[Departure, list[Question]]:
        """What a form for the current stage holds; a Refusal when there is nothing to fill in."""
        record = self.departures.get(departure_id)
        self.departures.access.require(record, actor)
        on_form = self.departures.form_questions(record)
        if not on_form:
            raise Refusal("nothing_to_ask", client=record["client"])
        return record, on_form

    def answered_questions(self, actor: str, departure_id: int) -> tuple[Departure, list[tuple[str, str]]]:
        """The answered questions a person may pick to change: (id, label)."""
        record = self.departures.get(departure_id)
        self.departures.access.require(record, actor)
        state = self.departures.state(record)
        answered = [(q.id, q.label) for q in self.departures.interview.applicable(state) if q.id in state.answers]
        if not answered:
            raise Refusal("nothing_answered", client=record["client"])
        return record, answered

    # -- inside --------------------------------------------------------------------------
    def _waiting(self, actor: str, departure_id: int, question_id: str) -> tuple[Departure, Question] | None:
        """The departure and its question, if ``question_id`` is what it waits on and ``actor`` may answer."""
        record = self.departures.store.get_departure(departure_id)
        if record is None or not self.departures.may_see(record, actor):
            return None
        question = self.departures.current_question(record)
        if question is None or question.id != question_id:
            return None
        return record, question

    def _settle(self, actor: str, record: Departure, question: Question, raw: str | None) -> Result:
        try:
            if raw is None:
                record, outcome = self.departures.skip(record, actor=actor)
            else:
                record, outcome = self.departures.answer(record, raw, actor=actor)
        except AnswerError as err:
            return self.ask(record, Result([refused_answer(err)]), repeated=True)
        result = Result([self._closed(record, outcome)])
        return self._after(actor, record, [outcome], outcome.paused, outcome.finished, result)

    @staticmethod
    def _closed(record: Departure, outcome: Outcome) -> Closed:
        if outcome.parsed is None:
            return Closed(record["id"], outcome.question.id, Closing.SKIPPED)
        return Closed(record["id"], outcome.question.id, Closing.ANSWERED, outcome.parsed.display)

    def _after(self, actor: str, record: Departure, outcomes: list[Outcome], paused: bool, finished: bool,
               result: Result) -> Result:  # fmt: skip
        """What follows answers: a note on a changed answer, then the next question or the end."""
        for outcome in outcomes:
            if outcome.previous is not None and outcome.parsed and outcome.previous != outcome.parsed.display:
                result.say("edited", question=outcome.question.label, client=record["client"],
                           old=outcome.previous, new=outcome.parsed.display)  # fmt: skip
        if paused:
            return result.say("paused_unconfirmed", client=record["client"],
                              resume=CommandRef("resume", record["client"]))  # fmt: skip
        if finished and outcomes and all(o.previous is not None for o in outcomes):
            # a change to a finished interview: the AM sees the summary again; the team heard it already
            result.parts.append(self.summary(record, actor))
            return result
        if finished:
            self._finish(actor, record, result)
            return result
        return self.ask(record, result)

    def _finish(self, actor: str, record: Departure, result: Result) -> None:
        """The interview is complete: the full summary to the AM, the team's version to the channel."""
        result.say("completed", client=record["client"])
        result.parts.append(self.summary(record, actor))
        result.team.append(self.summary(record, None, personal=False))
