"""How a departure moves: from one status to the next, and the open items it settles
(the final payment, the signed agreement)."""

from __future__ import annotations

from bot.departures import Change, Departures
from bot.replies import Refusal
from storage.records import AuditEvent, Departure, Status

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
