"""The dispatcher: sends the touches that are due, each at most once.

Storage is the truth. A touch is claimed (pending -> sending) durably before
it is sent; one found in ``sending`` at start-up was cut off by a crash and
becomes ``unknown`` (the AM decides, it is never re-sent blindly). A touch
past its latest sensible time is ``skipped``; one that fails the checks just
before sending is ``cancelled``; both keep the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, ManualClock, iso, parse_iso
from bot.departures import Departures
from bot.mailer import Composer, SendError
from bot.playbook import EMAIL, PENDING
from storage import Record, Store

MAX_ATTEMPTS = 4
FIRST_RETRY = timedelta(minutes=5)

# (touch, departure, text) -> delivered to the AM: Slack DM, or printed in the console
Notify = Callable[[Record, Record, str], Awaitable[None]]


@dataclass(frozen=True)
class Settled:
    touch: Record
    outcome: str  # sent, skipped, cancelled, failed, retry
    detail: str = ""


class Dispatcher:
    def __init__(self, departures: Departures, store: Store, clock: Clock, composer: Composer, sender,
                 notify: Notify) -> None:  # fmt: skip
        self.departures = departures
        self.store = store
        self.clock = clock
        self.composer = composer
        self.sender = sender
        self.notify = notify

    def recover(self) -> list[Record]:
        """At start-up: touches left in ``sending`` by a crash become ``unknown``."""
        found = []
        for touch in self.store.find_touches(statuses=["sending"]):
            touch.update(status="unknown", reason="the bot stopped while sending it: ask the AM whether to send")
            self.store.save_touch(touch)
            found.append(touch)
        return found

    def next_due(self) -> str | None:
        pending = self.store.find_touches(statuses=[PENDING])
        return pending[0]["due_at"] if pending else None

    async def run_due(self) -> list[Settled]:
        now = self.clock.now()
        settled = []
        for touch in self.store.find_touches(statuses=[PENDING], due_before=iso(now)):
            settled.append(await self._dispatch(touch))
        return settled

    async def run_until(self, target: datetime) -> AsyncIterator[list[Settled]]:
        """Move a ManualClock from one due time to the next up to ``target``: each batch goes at its own time."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("only a manual clock can be moved")
        yield await self.run_due()
        while (upcoming := self.next_due()) is not None and parse_iso(upcoming) <= target:
            self.clock.set(max(self.clock.now(), parse_iso(upcoming)))
            yield await self.run_due()
        self.clock.set(target)
        yield await self.run_due()

    def hold_reason(self, touch: Record, record: Record | None) -> str | None:
        """Why a due touch must not go, checked just before sending."""
        if record is None or record.get("forgotten"):
            return "the client was forgotten"
        if touch["channel"] == EMAIL:
            if record.get("opted_out"):
                return "the client opted out"
            if record["status"] in ("won_back", "retained"):
                return f"the client is {record['status'].replace('_', ' ')}"
            if touch["recipient"] in record.get("bounced", []):
                return "the address bounced before"
        elif touch["kind"] == "win_back" and record["status"] == "won_back":
            return "the client is already won back"
        return None

    async def _dispatch(self, touch: Record) -> Settled:
        now = self.clock.now()
        if parse_iso(touch["latest_at"]) < now:
            return self._end(touch, "skipped", f"missed: due {touch['due_at']}, too late after {touch['latest_at']}")
        record = self.store.get_departure(touch["departure_id"])
        why = self.hold_reason(touch, record)
        if why is not None:
            return self._end(touch, "cancelled", why)
        claimed = self.store.claim_touch(touch["id"], PENDING, "sending", attempts=touch.get("attempts", 0) + 1)
        if claimed is None:
            return Settled(touch, "cancelled", "claimed elsewhere")
        try:
            detail = await self._send(claimed, record)
        except SendError as err:
            return await self._failed(claimed, record, err)
        claimed.update(status="sent", sent_at=iso(self.clock.now()), detail=detail)
        self.store.save_touch(claimed)
        return Settled(claimed, "sent", detail)

    async def _send(self, touch: Record, record: Record) -> str:
        if touch["channel"] == EMAIL:
            values = {
                "client": record["client"],
                "contact_name": self.departures.answer_value(record, "contact_name") or "",
                "topics": self.departures.answer_value(record, "topics") or "",
                "holiday": touch["payload"].get("holiday", ""),
            }
            return await self.sender.send(self.composer.compose(touch, record, values))
        await self.notify(touch, record, team_text(touch, record))
        return "delivered to the AM"

    async def _failed(self, touch: Record, record: Record, err: SendError) -> Settled:
        if not err.permanent and touch["attempts"] < MAX_ATTEMPTS:
            retry_at = self.clock.now() + FIRST_RETRY * 2 ** (touch["attempts"] - 1)
            touch.update(status=PENDING, due_at=iso(retry_at), last_error=str(err))
            self.store.save_touch(touch)
            return Settled(touch, "retry", str(err))
        if err.bounced:
            record.setdefault("bounced", []).append(touch["recipient"])
            self.store.save_departure(record)
        settled = self._end(touch, "failed", str(err))
        await self.notify(touch, record, f"Could not send the {touch['kind'].replace('_', '-')} email to "
                                         f"{record['client']}: {err}")  # fmt: skip
        return settled

    def _end(self, touch: Record, status: str, reason: str) -> Settled:
        touch.update(status=status, reason=reason, ended_at=iso(self.clock.now()))
        self.store.save_touch(touch)
        return Settled(touch, status, reason)


def team_text(touch: Record, record: Record) -> str:
    client = record["client"]
    if touch["kind"] == "win_back":
        return f"It is a year since {client} left. A good moment to reach out: what has changed since?"
    what = touch["payload"].get("what", "")
    on = touch["payload"].get("on", "")
    texts = {
        "final_payment_due": f"The final payment from {client} is due on {on}. Has it been paid?",
        "data_return": f"Data of {client} is to be returned or deleted by {on}.",
        "support_end": f"Support for {client} ends on {on}.",
        "save_deadline": f"The save deadline for {client} is {on}: retained, or still leaving?",
    }
    return texts.get(what, f"A reminder about {client}.")
