"""The notifier port: how bot/ reaches a person who did not just act.

A nudge, a draft email to approve, a failure, the digest: bot/ builds a
``Notice`` and hands it to the ``Notifier`` that the composition root was
given. Each transport implements it: Slack posts a message with buttons, the
console prints a line with the commands that do what the buttons would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from typing import Protocol

from storage.records import CHANNEL, Departure, Item, Touch, TouchKind

log = logging.getLogger("sendoff")


class Action(StrEnum):
    """What a person can do about a notice: a button in Slack, a command in the console."""

    RETAINED = "retained"
    LEAVING = "leaving"
    PAID = "paid"
    SIGNED = "signed"
    DRAFT = "draft"
    CONTINUE = "continue"
    SEND = "send"
    EDIT = "edit"
    SKIP = "skip"
    ALWAYS_ASK = "always_ask"
    DONE = "done"
    SNOOZE = "snooze"  # a week, or until a date
    NOT_APPLICABLE = "not_applicable"
    SAVE = "save"  # begin a save attempt with what the client said could change their mind
    APPROVE = "approve"  # approve an update to former clients (its target is the update)


# What settles an open item from its nudge, beside the item's own actions (Mark paid, Retained...).
ITEM_SETTLING: dict[Item, tuple[Action, ...]] = {
    Item.SAVE_DEADLINE: (Action.SNOOZE,),  # more time, until a date
    Item.FINAL_PAYMENT_DUE: (Action.SNOOZE, Action.NOT_APPLICABLE),
    Item.AGREEMENT_SIGNED: (Action.SNOOZE, Action.NOT_APPLICABLE),
    Item.DATA_RETURN: (Action.DONE, Action.SNOOZE, Action.NOT_APPLICABLE),
    Item.SUPPORT_END: (Action.DONE, Action.NOT_APPLICABLE),
    Item.INTERVIEW: (Action.SNOOZE, Action.NOT_APPLICABLE),
}
# Actions on a draft email (their target is the touch); the others act on the departure.
EMAIL_ACTIONS = frozenset({Action.SEND, Action.EDIT, Action.SKIP, Action.ALWAYS_ASK})


@dataclass(frozen=True)
class Notice:
    """Something a person must hear. ``text`` is plain text: each transport escapes it for its medium."""

    recipient: str  # a Slack user id, the console's user, or storage.records.CHANNEL
    text: str
    touch: Touch | None = None
    record: Departure | None = None
    actions: tuple[Action, ...] = ()
    draft: Message | None = None
    update: int | None = None  # the update to former clients it asks about (bot/updates.py)

    @property
    def item(self) -> Item | None:
        """The open item a nudge is about, for the buttons that settle it."""
        if self.touch is None or self.touch["payload"].get("lapse"):
            return None  # the lapse is told, not asked: the save attempt is over
        if self.touch["kind"] is TouchKind.INTERVIEW_REMINDER:
            return Item.INTERVIEW
        return self.touch["payload"].get("what")

    @property
    def offered(self) -> tuple[Action, ...]:
        """Its actions, and what settles its open item: snooze it, say it no longer applies, or it is done."""
        item = self.item
        if item is None or self.recipient == CHANNEL:
            return self.actions
        extra = ITEM_SETTLING.get(item, ())
        return self.actions + tuple(a for a in extra if a not in self.actions)


@dataclass(frozen=True)
class Availability:
    zone: str | None  # their own time zone, when known
    away: bool = False  # on vacation or out of office


class Notifier(Protocol):
    """Implemented by each transport and handed to ``bot.app.build_core``."""

    @property
    def shows_drafts(self) -> bool:
        """Whether a person can approve, edit or skip a draft email here (Slack can)."""
        ...

    async def deliver(self, notice: Notice) -> None:
        """Deliver ``notice``; raise bot.mailer.SendError when it could not be delivered."""
        ...

    async def presence(self, user: str) -> Availability:
        """The person's time zone and whether they are away."""
        ...


class LogNotifier:
    """For commands that run without a person to tell (``sendoff report``): notices are logged."""

    shows_drafts = False

    async def deliver(self, notice: Notice) -> None:
        log.info("notice for %s: %s", notice.recipient, notice.text)

    async def presence(self, user: str) -> Availability:
        return Availability(None)
