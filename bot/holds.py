"""Holds: why a due touch must not go, checked just before it is sent (and again when the AM approves it).

Each hold is a ``Hold``; decisions are made on it, and the words a person
reads come from prompts/ (``hold_*`` in notices.toml).

Two kinds: a hold that may lift (``LIFTS``: the final payment overdue and
unpaid, an address that bounced until it is changed, a save attempt under way
until its outcome is recorded or it lapses) keeps the touch pending,
its reason on it, until it lifts or its moment is over; the others (forgotten,
opted out, retained, won back) end the touch: it is cancelled.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from bot.departures import Departures
from storage.records import Channel, Departure, NewDeparture, Status, Touch, TouchKind


class Hold(StrEnum):
    FORGOTTEN = "forgotten"
    OPTED_OUT = "opted_out"
    RETAINED = "retained"
    WON_BACK = "won_back"
    BOUNCED = "bounced"
    PAYMENT_OVERDUE = "payment_overdue"  # the AM hears of it, and may mark the payment received
    SAVING = "saving"  # a save attempt is under way: the client is not (yet) a former client
    ALREADY_WON_BACK = "already_won_back"


WORDS: dict[Hold, str] = {
    Hold.FORGOTTEN: "hold_forgotten",
    Hold.OPTED_OUT: "hold_opted_out",
    Hold.RETAINED: "hold_retained",
    Hold.WON_BACK: "hold_won_back",
    Hold.BOUNCED: "hold_bounced",
    Hold.PAYMENT_OVERDUE: "hold_payment_overdue",
    Hold.SAVING: "hold_saving",
    Hold.ALREADY_WON_BACK: "hold_already_won_back",
}
# Holds that may lift: the touch waits (pending, with the reason) instead of being cancelled.
LIFTS = frozenset({Hold.PAYMENT_OVERDUE, Hold.BOUNCED, Hold.SAVING})
# A client who stayed, or came back, gets no more emails as a former client.
STAYED: dict[Status, Hold] = {Status.RETAINED: Hold.RETAINED, Status.WON_BACK: Hold.WON_BACK}


class Holds:
    def __init__(self, departures: Departures) -> None:
        self.departures = departures
        self.words = departures.prompts.messages

    def reason(self, touch: Touch, record: Departure | None) -> Hold | None:
        """Why ``touch`` must not go now; None when it may. ``record``: its departure, None if gone."""
        if touch["kind"] == TouchKind.DIGEST:
            return None
        if record is None or record.get("forgotten"):
            return Hold.FORGOTTEN
        if touch["channel"] == Channel.EMAIL:
            if record.get("opted_out"):
                return Hold.OPTED_OUT
            if record["status"] in STAYED:
                return STAYED[record["status"]]
            if record["status"] is Status.SAVING:
                return Hold.SAVING
            if touch["recipient"] in record.get("bounced", []):
                return Hold.BOUNCED
            if self.payment_overdue(record):
                return Hold.PAYMENT_OVERDUE
        elif touch["kind"] == TouchKind.WIN_BACK and record["status"] == Status.WON_BACK:
            return Hold.ALREADY_WON_BACK
        return None

    def payment_overdue(self, record: NewDeparture) -> bool:
        due = self.departures.answer_value(record, "final_payment_due")
        amount = self.departures.answer_value(record, "final_payment")
        owed = isinstance(amount, dict) and float(amount.get("amount", 0)) > 0
        overdue = isinstance(due, str) and date.fromisoformat(due) < self.departures.today()
        return owed and overdue and not record.get("paid_at")

    def say(self, hold: Hold) -> str:
        return self.words.render(WORDS[hold])
