"""Drafts: a departure's email composed from its answers, to send, to show the AM, or to send by hand."""

from __future__ import annotations

from email.message import Message

from bot.departures import Departures
from bot.mailer import Composer, Envelope
from storage.records import Departure, TouchKind

# Where a win-back draft is addressed when the client gave no contact email: the AM fills it in.
NO_ADDRESS = "client@invalid"


class Drafts:
    def __init__(self, departures: Departures, composer: Composer) -> None:
        self.departures = departures
        self.composer = composer

    def compose(self, touch: Envelope, record: Departure, override: tuple[str, str] | None = None) -> Message:
        """``override``: the subject and text the AM wrote over the draft."""
        values = {
            "client": record["client"],
            "contact_name": self.departures.answer_value(record, "contact_name") or "",
            "topics": self.departures.answer_value(record, "topics") or "",
            "holiday": touch["payload"].get("holiday", ""),
        }
        return self.composer.compose(touch, record, values, override)

    def win_back(self, record: Departure) -> Message:
        """A win-back email for the AM to send from their own mailbox (replies reach them directly)."""
        email = self.departures.answer_value(record, "contact_email") or NO_ADDRESS
        envelope: Envelope = {"key": f"{record['id']}:win_back_draft", "departure_id": record["id"],
                              "kind": TouchKind.WIN_BACK, "recipient": email, "payload": {}}  # fmt: skip
        return self.compose(envelope, record)
