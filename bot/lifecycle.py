"""How a departure moves: from one status to the next, and the open items it settles
(the final payment, the signed agreement)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.departures import Change, Departures
from bot.replies import Refusal
from storage.records import AuditEvent, Departure, Item, ItemMark, ItemState, SaveOutcome, Status

# Who may follow whom. Answers move a departure only among the automatic states
# (bot.departures.AUTOMATIC); the rest are set by a person.
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.REPORTED: (Status.INTERVIEWING, Status.SAVING, Status.LEAVING, Status.DEPARTED, Status.RETAINED),
    Status.INTERVIEWING: (Status.SAVING, Status.LEAVING, Status.DEPARTED, Status.RETAINED),
    Status.SAVING: (Status.LEAVING, Status.DEPARTED, Status.RETAINED),
    Status.LEAVING: (Status.SAVING, Status.DEPARTED, Status.RETAINED),
    Status.DEPARTED: (Status.WON_BACK,),
    Status.RETAINED: (Status.LEAVING,),
    Status.WON_BACK: (),
}


class Lifecycle:
    def __init__(self, departures: Departures) -> None:
        self.departures = departures

    def set_status(self, record: Departure, status: Status, *, actor: str, note: str | None = None) -> Departure:
        """Move ``record`` to ``status`` by hand; a Refusal says why it cannot."""
        access = self.departures.access
        if actor != access.save_owner(record) or record["status"] != Status.SAVING:
            access.require(record, actor)  # the save owner answers "retained or still leaving?" too
        if status == record["status"]:
            return record
        allowed = TRANSITIONS[record["status"]]
        if status not in allowed:
            raise Refusal("bad_status", client=record["client"], status=status.label,
                          now=record["status"].label, allowed=", ".join(s.label for s in allowed) or "-")  # fmt: skip
        now = self.departures.now()
        if record["status"] is Status.SAVING and record.get("save_outcome") is None:
            # the save attempt ends with this move: its outcome is what the move says
            record["save_outcome"] = SaveOutcome.SAVED if status is Status.RETAINED else SaveOutcome.LEAVING
        elif status is Status.SAVING:
            record.pop("save_outcome", None)  # a new save attempt, with an outcome of its own to come
        self.departures.move(record, status, actor, now, note)
        record["status_by_hand"] = True  # later answers no longer move it
        record["updated_at"] = now
        self.departures.commit(record, Change.STATUS)
        return record

    def mark_paid(self, record: Departure, *, actor: str) -> Departure:
        """The final payment came in: its nudges stop, and client emails are no longer held for it."""
        self.departures.access.require(record, actor)
        if not record.get("paid_at"):
            now = self.departures.now()
            record["paid_at"] = now
            self.departures.note(record, {"at": now, "by": actor, "event": AuditEvent.PAID})
            self.departures.commit(record, Change.PAID)
        return record

    def mark_signed(self, record: Departure, *, actor: str) -> Departure:
        """The agreement is signed by both parties: the answer says so, and its nudges stop."""
        departures = self.departures
        departures.access.require(record, actor)
        question = departures.prompts.script.by_role("agreement_signed")
        if question is None or departures.answer_value(record, "agreement_signed") is True:
            return record
        state = departures.state(record)
        editing = state.editing
        outcome = departures.interview.answer(state, question, "yes", departures.context(), actor=actor,
                                              at=departures.now())  # fmt: skip
        state.editing = editing if editing != question.id else None  # whatever the AM was changing stays open
        return departures.save_answers(record, state, [outcome], actor)

    # -- open items, from their nudges ------------------------------------------------------
    def mark_item(self, record: Departure, item: Item, state: ItemState, *, actor: str,
                  until: date | None = None) -> Departure:  # fmt: skip
        """Done, snoozed until a date, or no longer applying: its nudges stop (or wait) accordingly.

        Done on the final payment or the agreement is the same as ``/paid`` or ``/signed``;
        snoozing the save attempt gives it more time, until the new date.
        """
        self._require_owner_or_access(record, actor, item)
        if item is Item.SAVE_DEADLINE and state is not ItemState.NOT_APPLICABLE:
            if state is ItemState.SNOOZED and until is not None:
                return self.save_outcome(record, None, actor=actor, until=until)
            raise Refusal("save_needs_outcome", client=record["client"])
        if state is ItemState.DONE and item is Item.FINAL_PAYMENT_DUE:
            return self.mark_paid(record, actor=actor)
        if state is ItemState.DONE and item is Item.AGREEMENT_SIGNED:
            return self.mark_signed(record, actor=actor)
        if state is ItemState.SNOOZED and (until is None or until <= self.departures.today()):
            raise Refusal("snooze_needs_future", example=_example(self.departures.today()))
        now = self.departures.now()
        mark: ItemMark = {"state": state, "at": now, "by": actor}
        if until is not None and state is ItemState.SNOOZED:
            mark["until"] = until.isoformat()
        record.setdefault("items", {})[item.value] = mark
        self.departures.note(record, {"at": now, "by": actor, "event": AuditEvent.ITEM, "question": item.value,
                                      "to": state.value if until is None else f"{state.value} until {until}"})
        self.departures.commit(record, Change.ITEM)
        return record

    def save_outcome(self, record: Departure, outcome: SaveOutcome | None, *, actor: str,
                     until: date | None = None) -> Departure:  # fmt: skip
        """The answer to "retained, or still leaving?": saved, still leaving, or more time (``until``)."""
        self._require_owner_or_access(record, actor, Item.SAVE_DEADLINE)
        if record["status"] is not Status.SAVING:
            raise Refusal("not_saving", client=record["client"], status=record["status"].label)
        if outcome is SaveOutcome.SAVED:
            return self._ended_save(record, Status.RETAINED, outcome, actor)
        if outcome is SaveOutcome.LEAVING:
            return self._ended_save(record, Status.LEAVING, outcome, actor)
        departures = self.departures
        question = departures.prompts.script.by_role("save_deadline")
        if until is None or question is None or until <= departures.today():
            raise Refusal("snooze_needs_future", example=_example(departures.today()))
        state = departures.state(record)
        editing = state.editing
        result = departures.interview.answer(state, question, until.isoformat(), departures.context(), actor=actor,
                                             at=departures.now())  # fmt: skip
        state.editing = editing if editing != question.id else None
        return departures.save_answers(record, state, [result], actor)

    def save_from_client(self, record: Departure, *, actor: str) -> Departure:
        """A save attempt begun from what the client said could change their mind (the exit note's form).

        "Could it be fixed?" is answered yes and "What would it take?" with the client's words (unless the AM
        answered it already), and the departure moves to saving; the save owner and deadline are then asked like
        any question still open. A Refusal says why it cannot begin.
        """
        departures = self.departures
        departures.access.require(record, actor)
        words = record.get("client_voice", {}).get("change_mind")
        if not words:
            raise Refusal("save_no_client_words", client=record["client"])
        if record["status"] is Status.SAVING:
            raise Refusal("save_under_way", client=record["client"])
        if Status.SAVING not in TRANSITIONS[record["status"]]:
            raise Refusal("save_not_now", client=record["client"], status=record["status"].label)
        state = departures.state(record)
        at, context = departures.now(), departures.context()
        interview, script = departures.interview, departures.prompts.script
        outcomes = []
        fixable = script.by_role("fixable")
        if fixable is not None and interview.applies(fixable, state):
            outcomes.append(interview.answer(state, fixable, "yes", context, actor=actor, at=at))
        plan = script.by_role("save_plan")
        if plan is not None and interview.applies(plan, state) and plan.id not in state.answers:
            said = departures.prompts.messages.render("save_plan_from_client", words=words)
            cut = said if len(said) <= plan.max_length else said[: plan.max_length - 1] + "…"
            outcomes.append(interview.answer(state, plan, cut, context, actor=actor, at=at))
        record.pop("save_outcome", None)  # a new save attempt, with an outcome of its own to come
        departures.move(record, Status.SAVING, actor, at, note="from what the client said")
        record["status_by_hand"] = True  # later answers no longer move it
        return departures.save_answers(record, state, outcomes, actor)

    def lapse_save(self, record: Departure, *, actor: str = "sendoff") -> Departure:
        """No answer 5 working days after the save deadline: the client is recorded as leaving."""
        if record["status"] is not Status.SAVING or record.get("save_outcome") is not None:
            return record
        return self._ended_save(record, Status.LEAVING, SaveOutcome.LAPSED, actor)

    def _ended_save(self, record: Departure, status: Status, outcome: SaveOutcome, actor: str) -> Departure:
        now = self.departures.now()
        record["save_outcome"] = outcome
        self.departures.note(record, {"at": now, "by": actor, "event": AuditEvent.SAVE_OUTCOME, "to": outcome.value})
        self.departures.move(record, status, actor, now, note=f"save {outcome.value}")
        record["status_by_hand"] = True
        self.departures.commit(record, Change.STATUS)
        return record

    def _require_owner_or_access(self, record: Departure, actor: str, item: Item) -> None:
        access = self.departures.access
        if not (item is Item.SAVE_DEADLINE and actor == access.save_owner(record)):
            access.require(record, actor)


def _example(today: date) -> str:
    return f"{today + timedelta(days=14):%d %b %Y}"
