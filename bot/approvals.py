"""Approvals: client emails shown to the AM as drafts first, where the transport can show one (Slack).

The first email of each departure waits for the AM, and every one once they
chose "always ask". Send (or an edit), Skip and Always ask act on the draft;
Send also lets an email go whose send was cut off by a crash (``unknown``).
Send on an email held by a hold that may lift (an overdue payment) does not
send it: it is pending again, held with the reason, and comes back as a draft
(or goes, once approved before) when the hold lifts, while still in time.

The exit note (the AM's personal note once the client confirmed) always asks,
in every transport and whatever "always ask" says, as soon as it is planned;
Send (or an edit) does not send it at once but sets it for the client's next
09:00 on a working day, approved: it is never asked about again.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from bot.clock import Clock, iso, parse_iso
from bot.departures import Departures
from bot.drafts import Drafts
from bot.holds import LIFTS, Holds
from bot.notices import Notices
from bot.playbook import EXIT_NOTE_GRACE, exit_note_approved, exit_note_payload
from bot.sending import Courier
from bot.settling import Ledger, Outcome, Settled
from storage import Store
from storage.records import Approval, Departure, Touch, TouchKind, TouchStatus

# A draft's buttons act on a touch in these statuses; on any other, it has gone its way already.
DECIDABLE = frozenset({TouchStatus.AWAITING_APPROVAL, TouchStatus.UNKNOWN})


@dataclass
class Approvals:
    """``enabled``: the transport shows drafts; without, client emails go as planned."""

    departures: Departures
    store: Store
    clock: Clock
    courier: Courier
    holds: Holds
    drafts: Drafts
    notices: Notices
    ledger: Ledger
    enabled: bool

    def needed(self, record: Departure, touch: Touch | None = None) -> bool:
        """Whether ``touch`` waits for the AM as it falls due. An exit note asked before (``asks_first``)."""
        if touch is not None and touch["kind"] in (TouchKind.EXIT_NOTE, TouchKind.UPDATE):
            return False  # approved when it comes due (an update: by a second admin, bot/updates.py)
        return self.enabled and record.get("email_approval") != Approval.AUTO

    @staticmethod
    def asks_first(touch: Touch) -> bool:
        """The exit note, not yet approved: shown to the AM at once (its send time comes with their yes)."""
        return touch["kind"] is TouchKind.EXIT_NOTE and not exit_note_approved(touch)

    async def ask(self, touch: Touch, record: Departure) -> Settled:
        """Show the AM the email as a draft; it waits (until its latest sensible time) for Send, Edit or Skip."""
        claimed = self.store.claim_touch(touch["id"], TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL,
                                         asked_at=iso(self.clock.now()))  # fmt: skip
        if claimed is None:
            return self.ledger.claimed_elsewhere(touch)
        if "deferred" in claimed or "reason" in claimed:
            claimed.pop("deferred", None)  # what it waited for (a hold, the daily cap) is over
            claimed.pop("reason", None)
            self.store.save_touch(claimed)
        draft = self.drafts.compose(claimed, record)
        if claimed["kind"] is TouchKind.EXIT_NOTE:
            await self.courier.tell(self.notices.exit_note_ready(claimed, record, draft))
        else:
            first = record.get("email_approval") is None
            await self.courier.tell(self.notices.draft_ready(claimed, record, draft, first=first))
        return Settled(claimed, Outcome.AWAITING_APPROVAL, self.ledger.say("reason_draft_shown"))

    async def approve(self, touch_id: int, actor: str, override: tuple[str, str] | None = None) -> Settled:
        """The AM pressed Send (or sent an edit): the draft, or a touch left ``unknown``, goes now; an exit
        note's draft goes at the client's next 09:00 on a working day (Outcome.DEFERRED, saying when)."""
        touch = self.approval_touch(touch_id, actor)
        if touch["status"] is TouchStatus.PENDING and exit_note_approved(touch):
            return self._set(touch)  # said yes to already: it goes at its time
        if touch["status"] not in DECIDABLE:
            return self.ledger.already(touch)
        record = self.store.get_departure(self._departure_id(touch))
        note = touch["kind"] is TouchKind.EXIT_NOTE and touch["status"] is TouchStatus.AWAITING_APPROVAL
        hold = self.holds.reason(touch, record)
        if hold in LIFTS:
            # an exit note keeps the AM's yes: it goes once the hold lifts, while still in time
            yes = self._yes(touch, record, actor, override) if note and record is not None else {}
            claimed = self.store.claim_touch(touch["id"], touch["status"], TouchStatus.PENDING, **yes)
            if claimed is None:
                return self.ledger.claimed_elsewhere(touch)
            why = self.holds.say(hold)
            held = self.ledger.hold(claimed, why)
            if held.outcome is not Outcome.HELD:
                return held  # its moment is over
            until = self.ledger.local(held.touch, parse_iso(held.touch["latest_at"]))
            return Settled(held.touch, Outcome.HELD, self.ledger.say("held_draft", why=why, until=until))
        if hold is not None:
            return self.ledger.end(touch, Outcome.CANCELLED, self.holds.say(hold))
        if record is None:  # unreachable: a missing departure is held as forgotten
            raise LookupError(self.notices.email_gone())
        if parse_iso(touch["latest_at"]) < self.clock.now():
            return self.ledger.end(touch, Outcome.SKIPPED, self.ledger.say("reason_approved_too_late"))
        if note:
            return self._approve_exit_note(touch, record, actor, override)
        if record.get("email_approval") is None and touch["kind"] is not TouchKind.EXIT_NOTE:
            record["email_approval"] = Approval.AUTO  # the first was approved: the rest go by themselves
            self.store.save_departure(record)
        return await self.courier.claim_and_send(touch, record, touch["status"], override)

    def _approve_exit_note(self, touch: Touch, record: Departure, actor: str,
                           override: tuple[str, str] | None) -> Settled:  # fmt: skip
        """The AM's yes to the exit note: it goes at the client's next 09:00 on a working day, as they saw
        it (or as they edited it), to the address the answers give now. It no longer follows from them (the
        departure is no longer confirmed, the address is gone): cancelled, and asked again if it follows again."""
        if self.courier.playbook.exit_note_address(record) is None:
            return self.ledger.end(touch, Outcome.CANCELLED, self.ledger.say("reason_no_longer_planned"))
        claimed = self.store.claim_touch(touch["id"], TouchStatus.AWAITING_APPROVAL, TouchStatus.PENDING,
                                         **self._yes(touch, record, actor, override))  # fmt: skip
        if claimed is None:
            return self.ledger.claimed_elsewhere(touch)
        claimed.pop("deferred", None)
        claimed["reason"] = self.ledger.say("reason_exit_note_approved", person=actor,
                                            when=self.ledger.local(claimed, parse_iso(claimed["due_at"])))  # fmt: skip
        self.store.save_touch(claimed)
        return self._set(claimed)

    def _yes(self, touch: Touch, record: Departure, actor: str, override: tuple[str, str] | None) -> dict[str, object]:
        """What the AM's yes changes on an exit note: approved by them, set for the client's next 09:00 on a
        working day, with their edit, to the address the answers give now."""
        playbook = self.courier.playbook
        due, zone = playbook.exit_note_send_at(record, self.clock.now())
        payload = exit_note_payload(touch["payload"].copy())
        payload["approved_by"], payload["send_at"] = actor, iso(due)
        if override is not None:
            payload["subject"], payload["text"] = override
        latest = max(parse_iso(touch["latest_at"]), due + EXIT_NOTE_GRACE)
        return {"due_at": iso(due), "latest_at": iso(latest), "zone": zone, "payload": payload,
                "recipient": playbook.exit_note_address(record) or touch["recipient"]}  # fmt: skip

    def _set(self, touch: Touch) -> Settled:
        """An approved exit note, waiting for its time; the outcome says when it goes (local to the client)."""
        return Settled(touch, Outcome.DEFERRED, self.ledger.local(touch, parse_iso(touch["due_at"])))

    def decline(self, touch_id: int, actor: str) -> Settled:
        touch = self.approval_touch(touch_id, actor)
        if touch["status"] not in DECIDABLE:
            return self.ledger.already(touch)
        return self.ledger.end(touch, Outcome.CANCELLED, self.ledger.say("reason_skipped_by", person=actor))

    def always_ask(self, touch_id: int, actor: str) -> Departure:
        touch = self.approval_touch(touch_id, actor)
        record = self.departures.get(self._departure_id(touch))
        record["email_approval"] = Approval.ALWAYS
        self.store.save_departure(record)
        return record

    def approval_touch(self, touch_id: int, actor: str) -> Touch:
        """The touch behind a draft's buttons, if ``actor`` may act on it; LookupError or DepartureError."""
        touch = self._touch(touch_id)
        self.departures.require_access(self.departures.get(self._departure_id(touch)), actor)
        return touch

    def draft(self, touch_id: int) -> Message:
        touch = self._touch(touch_id)
        return self.drafts.compose(touch, self.departures.get(self._departure_id(touch)))

    def win_back_draft(self, record: Departure) -> Message:
        return self.drafts.win_back(record)

    def _touch(self, touch_id: int) -> Touch:
        touch = self.store.get_touch(touch_id)
        if touch is None or touch["departure_id"] is None:
            raise LookupError(self.notices.email_gone())
        return touch

    def _departure_id(self, touch: Touch) -> int:
        if touch["departure_id"] is None:
            raise LookupError(self.notices.email_gone())
        return touch["departure_id"]
