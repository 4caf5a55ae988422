"""Drafts: a departure's email composed from its answers, to send, to show the AM, or to send by hand.

``Drafts.compose`` is the one way to an email: the dispatcher sends what it returns, the AM approves
it as a draft, and previews (bot/previews.py) write it to files; nothing is sent by composing.
"""

from __future__ import annotations

from datetime import datetime
from email.message import Message
from typing import Any, cast

from bot.clock import parse_iso
from bot.departures import Departures
from bot.mailer import Composer, Envelope
from bot.playbook import exit_note_payload
from storage.records import Departure, TouchKind, TouchPayload

# Where a win-back draft is addressed when the client gave no contact email: the AM fills it in.
NO_ADDRESS = "client@invalid"


class Drafts:
    def __init__(self, departures: Departures, composer: Composer) -> None:
        self.departures = departures
        self.composer = composer

    def compose(self, touch: Envelope, record: Departure, override: tuple[str, str] | None = None,
                at: datetime | None = None) -> Message:  # fmt: skip
        """The email ``touch`` is, for ``record``'s client, as it would go now; sent nowhere.

        ``override``: the subject and text the AM wrote over the draft; an exit note the AM edited keeps
        theirs until it goes (bot/approvals.py).
        """
        return self.composer.compose(touch, record, self.values(record, touch), override or edited(touch), at)

    def values(self, record: Departure, touch: Envelope | None = None) -> dict[str, str]:
        """What an email says of the departure, as plain text (see ``Composer.compose``)."""

        # the interview read once (as ``Departures.answer_value`` would for each role): the dispatcher composes
        # each email it sends, and copying the answers for every value costs more than the rest of this
        interview, state = self.departures.interview, self.departures.state(record)

        def answer(role: str) -> Any:
            return interview.value_of(state, role)

        # the departure's end, as the playbook counts check-ins from it: support's end, else the day it was recorded
        ended = answer("support_end") or parse_iso(record["created_at"]).astimezone(self.departures.zone).date()
        payment = answer("final_payment")
        amount, currency = (payment.get("amount"), payment.get("currency")) if isinstance(payment, dict) else ("", "")
        return {
            "client": record["client"],
            "contact_name": answer("contact_name") or "",
            "salutation": answer("salutation") or "",
            "topics": answer("topics") or "",
            "holiday": touch["payload"].get("holiday", "") if touch is not None else "",
            "language": answer("language") or "",
            "country": answer("country") or "",
            "ended": str(ended),
            "final_payment": str(amount or ""),
            "final_payment_currency": str(currency or ""),
            "paid_at": record.get("paid_at") or "",
        }

    def win_back(self, record: Departure) -> Message:
        """A win-back email for the AM to send from their own mailbox (replies reach them directly)."""
        return self.compose(self.envelope(record, TouchKind.WIN_BACK), record)

    def envelope(self, record: Departure, kind: TouchKind, name: str = "", recipient: str | None = None) -> Envelope:
        """A touch of ``kind`` for ``record`` that no plan holds (a win-back draft, a sample to look at), to
        compose like a planned one; ``name`` as a planned touch's key has it: "+30d", "christmas:2027"."""
        to = recipient or self.departures.answer_value(record, "contact_email") or NO_ADDRESS
        # a win-back draft is never planned: its key is its own, {id}:win_back_draft
        key = f"{record['id']}:win_back_draft" if kind is TouchKind.WIN_BACK else f"{record['id']}:{kind}:{name}"
        holiday = {"holiday_id": name.partition(":")[0]} if kind is TouchKind.GREETING else {}
        payload = cast(TouchPayload, holiday)  # holiday_id beside holiday, as the playbook plans it
        return {"key": key, "departure_id": record["id"], "kind": kind, "recipient": to, "payload": payload}


def edited(touch: Envelope) -> tuple[str, str] | None:
    """The subject and text the AM wrote over an exit note's draft when they approved it; None if unedited."""
    if touch["kind"] is not TouchKind.EXIT_NOTE:
        return None
    saved = exit_note_payload(touch["payload"])
    text = saved.get("text")
    return (saved.get("subject", ""), text) if text else None
