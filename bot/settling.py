"""How a touch's turn ends: the outcome a run reports, and the write that records it.

Every part of the dispatcher (the run, pacing, holds, approvals, sending)
settles a touch the same way: its final status or its new due time is saved
with the reason, in the words of prompts/, and the run reports a ``Settled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, iso, parse_iso
from prompts import Messages
from storage import Store
from storage.records import Channel, Touch, TouchStatus


class Outcome(StrEnum):
    """What became of a touch in one run (or one press of a draft's button)."""

    SENT = "sent"
    SKIPPED = "skipped"  # past its latest sensible time
    CANCELLED = "cancelled"  # held, skipped by the AM, or claimed by another process
    FAILED = "failed"
    RETRY = "retry"  # a transient failure: due again later
    DEFERRED = "deferred"  # waiting for its person, or for the daily cap
    HELD = "held"  # a hold that may lift (an overdue payment): pending, until it lifts or its moment is over
    AWAITING_APPROVAL = "awaiting_approval"


# The outcome that a touch's stored status stands for, when a button is pressed on a touch settled already.
# A pending touch is waiting for its retry; one being sent belongs to another run.
OUTCOME_OF: dict[TouchStatus, Outcome] = {
    TouchStatus.SENT: Outcome.SENT,
    TouchStatus.FAILED: Outcome.FAILED,
    TouchStatus.SKIPPED: Outcome.SKIPPED,
    TouchStatus.CANCELLED: Outcome.CANCELLED,
    TouchStatus.PENDING: Outcome.RETRY,  # (or held: its reason says so)
    TouchStatus.SENDING: Outcome.CANCELLED,
    TouchStatus.AWAITING_APPROVAL: Outcome.AWAITING_APPROVAL,
    TouchStatus.UNKNOWN: Outcome.CANCELLED,
}
# The final status each ending outcome is stored as.
ENDS: dict[Outcome, TouchStatus] = {
    Outcome.SKIPPED: TouchStatus.SKIPPED,
    Outcome.CANCELLED: TouchStatus.CANCELLED,
    Outcome.FAILED: TouchStatus.FAILED,
}


@dataclass(frozen=True)
class Settled:
    touch: Touch
    outcome: Outcome
    detail: str = ""  # the reason, or what the sender reported


@dataclass(frozen=True)
class Pause:
    """A touch must wait: until when, and why (in words, kept on the touch)."""

    until: datetime
    why: str


class Ledger:
    """Records how each touch settled, in the store, with the reason in the words of prompts/."""

    def __init__(self, store: Store, clock: Clock, words: Messages, *, team_grace: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.words = words
        self.team_grace = team_grace

    def say(self, key: str, **values: object) -> str:
        return self.words.render(key, **values)

    def _settle(self, touch: Touch, status: TouchStatus, **changes: Any) -> Touch | None:
        """Write how ``touch`` settled, only while it is still in the status it was read in: another process
        (or a button) may have claimed and sent it meanwhile, and a pending written over that would send it
        again. The touch as written, or None when it had moved on."""
        return self.store.claim_touch(touch["id"], touch["status"], status, **changes)

    def end(self, touch: Touch, outcome: Outcome, reason: str) -> Settled:
        """``outcome``: skipped, cancelled or failed; the touch is final."""
        ended = self._settle(touch, ENDS[outcome], reason=reason, ended_at=iso(self.clock.now()))
        if ended is None:
            return self.claimed_elsewhere(touch)
        return Settled(ended, outcome, reason)

    def defer(self, touch: Touch, pause: Pause) -> Settled | None:
        """Due again later. A nudge's window moves with it (it waits for its person); an email's does not.

        The wait is the touch's ``deferred`` and its ``reason`` (what a listing shows). None: it was
        waiting just so already (nothing new to report).
        """
        due = iso(pause.until)
        again = touch.get("deferred") == pause.why and touch["due_at"] == due
        changes: dict[str, Any] = {"due_at": due, "deferred": pause.why, "reason": pause.why}
        if touch["channel"] != Channel.EMAIL:
            changes["latest_at"] = iso(max(parse_iso(touch["latest_at"]), pause.until + self.team_grace))
        deferred = self._settle(touch, touch["status"], **changes)
        if deferred is None:
            return self.claimed_elsewhere(touch)
        return None if again else Settled(deferred, Outcome.DEFERRED, pause.why)

    def hold(self, touch: Touch, why: str) -> Settled:
        """Held by a hold that may lift: pending, with ``why``, until its latest sensible time; then skipped.

        Re-planning gives it its planned time back (bot/playbook.py), so it goes as soon as the hold lifts.
        """
        latest = parse_iso(touch["latest_at"])
        if latest <= self.clock.now():
            return self.end(touch, Outcome.SKIPPED, self.say("reason_held_too_late", why=why))
        until = self.local(touch, latest)
        # looked at again when its moment ends, unless the hold lifts before
        held = self._settle(touch, TouchStatus.PENDING, due_at=iso(latest), deferred=why,
                            reason=self.say("reason_held", why=why, until=until))  # fmt: skip
        if held is None:
            return self.claimed_elsewhere(touch)
        return Settled(held, Outcome.HELD, self.say("held_now", why=why, until=until))

    @staticmethod
    def local(touch: Touch, moment: datetime) -> str:
        """``moment`` as the touch's recipient reads it: local time and zone."""
        return f"{moment.astimezone(ZoneInfo(touch['zone'])):%a %d %b %Y %H:%M} {touch['zone']}"

    def missed(self, touch: Touch) -> Settled:
        """Past its latest sensible time: skipped, saying why (what it waited for, if it waited)."""
        waited = touch.get("deferred")
        if waited:
            return self.end(touch, Outcome.SKIPPED, self.say("reason_held_too_late", why=waited))
        return self.end(touch, Outcome.SKIPPED, self.say("reason_missed", due=touch["due_at"],
                                                         latest=touch["latest_at"]))  # fmt: skip

    def already(self, touch: Touch) -> Settled:
        """A draft's button pressed after its touch went its way: nothing changes."""
        return Settled(touch, OUTCOME_OF[touch["status"]], self.say("reason_already_settled"))

    def claimed_elsewhere(self, touch: Touch) -> Settled:
        return Settled(touch, Outcome.CANCELLED, self.say("reason_claimed_elsewhere"))
