"""Sending: a claimed touch goes out (an email through its lane, a nudge through the notifier), at most once.

A touch is claimed (pending -> sending) durably before it is sent, so that a
crash leaves it in ``sending`` for the AM to decide about, never re-sent
blindly. A transient failure is retried with back-off; a permanent one (or
the last attempt) fails the touch and tells the AM about a client email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, iso
from bot.drafts import Drafts
from bot.mailer import Sender, SendError
from bot.notices import Notices
from bot.notify import Notice, Notifier
from bot.pacing import RateCap
from bot.playbook import Playbook
from bot.settling import Ledger, Outcome, Settled
from storage import Store
from storage.records import Channel, Departure, Touch, TouchKind, TouchStatus

log = logging.getLogger("sendoff")

MAX_ATTEMPTS = 4
FIRST_RETRY = timedelta(minutes=5)  # then doubled for each attempt


@dataclass
class Courier:
    """``lanes``: one sender each; with several (SMTP connections), one composes while another waits."""

    store: Store
    clock: Clock
    notifier: Notifier
    lanes: list[Sender]
    rate: RateCap
    drafts: Drafts
    notices: Notices
    playbook: Playbook
    ledger: Ledger

    async def claim_and_send(self, touch: Touch, record: Departure | None, expected: TouchStatus,
                             override: tuple[str, str] | None = None,
                             lane: Sender | None = None) -> Settled:  # fmt: skip
        claimed = self.store.claim_touch(touch["id"], expected, TouchStatus.SENDING, attempts=touch["attempts"] + 1)
        if claimed is None:
            return self.ledger.claimed_elsewhere(touch)
        try:
            detail = await self._send(claimed, record, override, lane or self.lanes[0])
        except SendError as err:
            return await self._failed(claimed, record, err)
        claimed["status"] = TouchStatus.SENT
        claimed["sent_at"] = iso(self.clock.now())
        claimed["detail"] = detail
        waited = claimed.pop("deferred", None)  # what it waited for (a hold, the daily cap) is over
        if waited:
            claimed["waited"] = waited  # kept: why it went later than planned
        claimed.pop("reason", None)
        self.store.save_touch(claimed)
        self._after_sent(claimed, record)
        return Settled(claimed, Outcome.SENT, detail)

    async def _send(self, touch: Touch, record: Departure | None, override: tuple[str, str] | None,
                    lane: Sender) -> str:  # fmt: skip
        if touch["channel"] == Channel.EMAIL:
            if record is None:
                # holds cancel an email whose departure is gone before it is claimed
                raise SendError(self.ledger.say("hold_forgotten"), permanent=True)
            await self.rate.pace()
            moment = self.clock.now()  # the email's Date, and when the exit note's form link is issued
            detail = await lane.send(self.drafts.compose(touch, record, override, at=moment))
            self.rate.count(self.clock.now())
            if touch["kind"] is TouchKind.EXIT_NOTE:
                self._exit_note_went(record, moment)
            return detail
        await self.notifier.deliver(self.notices.team_notice(touch, record))
        return self.ledger.say("reason_delivered")

    def _exit_note_went(self, record: Departure, moment: datetime) -> None:
        """The departure remembers when its exit note went: its form link was issued then (it lives 30 days)."""
        fresh = self.store.get_departure(record["id"]) or record
        fresh["exit_note_sent_at"] = record["exit_note_sent_at"] = iso(moment)
        self.store.save_departure(fresh)

    def _after_sent(self, touch: Touch, record: Departure | None) -> None:
        """Reminders repeat, and the digest comes monthly: plan what follows what was sent."""
        if touch["kind"] == TouchKind.DIGEST:
            self.playbook.plan_digest()
        elif record is not None and touch["channel"] != Channel.EMAIL:
            self.playbook.plan(self.store.get_departure(record["id"]) or record)

    async def _failed(self, touch: Touch, record: Departure | None, err: SendError) -> Settled:
        if not err.permanent and touch["attempts"] < MAX_ATTEMPTS:
            touch["status"] = TouchStatus.PENDING
            touch["due_at"] = iso(self.clock.now() + FIRST_RETRY * 2 ** (touch["attempts"] - 1))
            touch["last_error"] = str(err)
            self.store.save_touch(touch)
            return Settled(touch, Outcome.RETRY, str(err))
        if err.bounced and record is not None:
            record.setdefault("bounced", []).append(touch["recipient"])
            self.store.save_departure(record)
        settled = self.ledger.end(touch, Outcome.FAILED, str(err))
        if touch["channel"] == Channel.EMAIL and record is not None:
            await self.tell(self.notices.send_failed(touch, record, str(err)))
        return settled

    async def tell(self, notice: Notice) -> None:
        """A notice about a touch, which must not stop the run when the transport fails."""
        try:
            await self.notifier.deliver(notice)
        except Exception as err:  # noqa: BLE001 - a failed notice must not stop the other touches
            log.warning("could not deliver a notice to %s: %s", notice.recipient, err)

    async def close_lanes(self) -> None:
        """After a batch of emails: its connections were reused, and must not be held idle."""
        for lane in self.lanes:
            await lane.close()
