"""The dispatcher: sends the touches that are due, each at most once.

Storage is the truth. A touch is claimed (pending -> sending) durably before
it is sent; one found in ``sending`` at start-up was cut off by a crash and
becomes ``unknown`` (the AM decides, it is never re-sent blindly). A touch
past its latest sensible time is ``skipped``; one that fails the checks just
before sending is ``cancelled``; both keep the reason.

Nudges wait for their person: working hours in their own time zone, on
working days, and not while their status says they are away. Client emails
wait for the AM's approval where the transport offers one (Slack): the first
email of each departure, and every one when the AM chose "always ask".
"""

from __future__ import annotations

import asyncio
import logging
import time as wall
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

from bot.workdays import add_working_days, local_moment, within_working_hours
from bot.clock import Clock, ManualClock, iso, parse_iso
from bot.departures import Departures
from bot.mailer import Composer, SendError
from bot.playbook import AWAITING, CHANNEL, EMAIL, PENDING, TEAM_GRACE, Playbook, am_or_channel
from bot.reports import digest_text
from storage import Record, Store

log = logging.getLogger("sendoff")

# The answers a win-back nudge recalls (question ids of the default interview; others are left out).
HISTORY_QUESTIONS = ("notified_on", "reason", "in_their_words", "competitor", "mrr", "fixable")
MAX_ATTEMPTS = 4
FIRST_RETRY = timedelta(minutes=5)

# What a person can do about a notice; the transport renders each as a button (Slack) or a command (console).
RETAINED, LEAVING, PAID, SIGNED, DRAFT, CONTINUE = "retained", "leaving", "paid", "signed", "draft", "continue"
SEND, EDIT, SKIP, ALWAYS_ASK = "send", "edit", "skip", "always_ask"


@dataclass(frozen=True)
class Notice:
    """Something a person must hear: a nudge, a draft to approve, a failure."""

    recipient: str  # a Slack user id, or CHANNEL
    text: str
    touch: Record | None = None
    record: Record | None = None
    actions: tuple[str, ...] = ()
    draft: Message | None = None


@dataclass(frozen=True)
class Availability:
    zone: str | None  # their own time zone, when known
    away: bool = False  # on vacation or out of office


Notify = Callable[[Notice], Awaitable[None]]
Presence = Callable[[str], Awaitable[Availability]]


async def nobody_away(user: str) -> Availability:
    return Availability(None)


@dataclass(frozen=True)
class Settled:
    touch: Record
    outcome: str  # sent, skipped, cancelled, failed, retry, deferred, awaiting_approval
    detail: str = ""


@dataclass
class RateCap:
    """At most ``per_second`` emails a second (paced on the wall clock) and ``per_day`` in 24 hours (bot clock)."""

    per_second: float = 0.0  # 0: no limit
    per_day: int = 0
    _next_slot: float = 0.0
    _sent: deque[datetime] = field(default_factory=deque)

    async def pace(self) -> None:
        if self.per_second <= 0:
            return
        now = wall.monotonic()
        wait = self._next_slot - now
        self._next_slot = max(now, self._next_slot) + 1 / self.per_second
        if wait > 0:
            await asyncio.sleep(wait)

    def day_full_until(self, now: datetime) -> datetime | None:
        """When a slot frees up, if today's cap is reached."""
        while self._sent and self._sent[0] <= now - timedelta(days=1):
            self._sent.popleft()
        if self.per_day and len(self._sent) >= self.per_day:
            return self._sent[0] + timedelta(days=1)
        return None

    def count(self, at: datetime) -> None:
        self._sent.append(at)


class Dispatcher:
    def __init__(self, departures: Departures, store: Store, clock: Clock, composer: Composer, senders: list,
                 notify: Notify, *, playbook: Playbook, presence: Presence = nobody_away,
                 rate: RateCap | None = None) -> None:  # fmt: skip
        """``senders``: one per lane; with several (SMTP connections), one composes while another waits."""
        self.departures = departures
        self.store = store
        self.clock = clock
        self.composer = composer
        self.senders = senders
        self.notify = notify
        self.playbook = playbook
        self.presence = presence
        self.rate = rate or RateCap()
        self.cadence = playbook.cadence
        self.approvals = False  # a transport that can show drafts (Slack) turns this on

    # -- start-up --------------------------------------------------------------------------
    def recover(self) -> list[Record]:
        """At start-up: touches left in ``sending`` by a crash become ``unknown``; the count of today's sent."""
        found = []
        for touch in self.store.find_touches(statuses=["sending"]):
            touch.update(status="unknown", reason="the bot stopped while sending it: ask the AM whether to send")
            self.store.save_touch(touch)
            found.append(touch)
        day_ago = iso(self.clock.now() - timedelta(days=1))
        for touch in self.store.find_touches(statuses=["sent"]):
            if touch["channel"] == EMAIL and touch.get("sent_at", "") > day_ago:
                self.rate.count(parse_iso(touch["sent_at"]))
        return found

    async def ask_about_unknown(self, touches: list[Record]) -> None:
        for touch in touches:
            if touch["channel"] != EMAIL:
                continue  # a nudge cut off is not worth asking about
            record = self.store.get_departure(touch["departure_id"])
            if record is not None:
                await self._tell(Notice(am_or_channel(record), f"I stopped while sending the {_kind(touch)} email "
                                        f"to {record['client']}, so I cannot tell whether it went. Send it now?",
                                        touch, record, (SEND, SKIP), self._draft(touch, record)))  # fmt: skip

    def next_due(self) -> str | None:
        pending = self.store.find_touches(statuses=[PENDING])
        return pending[0]["due_at"] if pending else None

    # -- the run ---------------------------------------------------------------------------
    async def run_due(self) -> list[Settled]:
        now = self.clock.now()
        settled = []
        for touch in self.store.find_touches(statuses=[AWAITING]):
            if parse_iso(touch["latest_at"]) < now:
                settled.append(self._end(touch, "skipped", "the draft was not approved in time"))
        due = deque(self.store.find_touches(statuses=[PENDING], due_before=iso(now)))

        async def lane(sender) -> None:
            while due:
                settled.append(await self._dispatch(due.popleft(), sender))

        try:
            await asyncio.gather(*(lane(sender) for sender in self.senders))
        finally:
            if any(s.touch["channel"] == EMAIL for s in settled):
                for sender in self.senders:
                    await sender.close()  # the batch reused its connections; do not hold them idle
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
        if touch["kind"] == "digest":
            return None
        if record is None or record.get("forgotten"):
            return "the client was forgotten"
        if touch["channel"] == EMAIL:
            if record.get("opted_out"):
                return "the client opted out"
            if record["status"] in ("won_back", "retained"):
                return f"the client is {record['status'].replace('_', ' ')}"
            if touch["recipient"] in record.get("bounced", []):
                return "the address bounced before"
            if self.payment_overdue(record):
                return "the final payment is overdue and unpaid"
        elif touch["kind"] == "win_back" and record["status"] == "won_back":
            return "the client is already won back"
        return None

    def payment_overdue(self, record: Record) -> bool:
        due = self.departures.answer_value(record, "final_payment_due")
        amount = self.departures.answer_value(record, "final_payment")
        owed = isinstance(amount, dict) and float(amount.get("amount", 0)) > 0
        overdue = isinstance(due, str) and date.fromisoformat(due) < self.departures.today()
        return owed and overdue and not record.get("paid_at")

    async def _dispatch(self, touch: Record, sender) -> Settled:
        now = self.clock.now()
        if parse_iso(touch["latest_at"]) < now:
            return self._end(touch, "skipped", f"missed: due {touch['due_at']}, too late after {touch['latest_at']}")
        record = self.store.get_departure(touch["departure_id"]) if touch["departure_id"] is not None else None
        why = self.hold_reason(touch, record)
        if why is not None:
            settled = self._end(touch, "cancelled", why)
            if why.startswith("the final payment"):
                text = f"I held the {_kind(touch)} email to {record['client']}: their final payment is overdue, unpaid."
                await self._tell(Notice(am_or_channel(record), text, touch, record, (PAID,)))
            return settled
        if touch["channel"] == EMAIL:
            full_until = self.rate.day_full_until(now)
            if full_until is not None:
                return self._defer(touch, full_until, "the daily sending cap is reached")
            if self.approvals and self._needs_approval(record):
                return await self._ask_approval(touch, record)
        elif touch["recipient"] != CHANNEL:
            waiting = await self._wait_for_person(touch)
            if waiting is not None:
                return waiting
        return await self._claim_and_send(touch, record, PENDING, sender=sender)

    async def _claim_and_send(self, touch: Record, record: Record | None, expected: str,
                              override: tuple[str, str] | None = None, sender=None) -> Settled:  # fmt: skip
        claimed = self.store.claim_touch(touch["id"], expected, "sending", attempts=touch.get("attempts", 0) + 1)
        if claimed is None:
            return Settled(touch, "cancelled", "claimed elsewhere")
        try:
            detail = await self._send(claimed, record, override, sender or self.senders[0])
        except SendError as err:
            return await self._failed(claimed, record, err)
        claimed.update(status="sent", sent_at=iso(self.clock.now()), detail=detail)
        claimed.pop("deferred", None)
        self.store.save_touch(claimed)
        self._after_sent(claimed, record)
        return Settled(claimed, "sent", detail)

    def _after_sent(self, touch: Record, record: Record | None) -> None:
        """Reminders repeat, and the digest comes monthly: plan what follows what was sent."""
        if touch["kind"] == "digest":
            self.playbook.plan_digest()
        elif record is not None and touch["channel"] != EMAIL:
            self.playbook.plan(self.store.get_departure(record["id"]) or record)

    # -- nudges wait for their person --------------------------------------------------------
    async def _wait_for_person(self, touch: Record) -> Settled | None:
        now = self.clock.now()
        seen = await self.presence(touch["recipient"])
        zone = seen.zone or touch["zone"]
        start, end = self.cadence.work_start, self.cadence.work_end
        if seen.away:
            back = local_moment(add_working_days(now.astimezone(ZoneInfo(zone)).date(), 1, None), zone, start)
            return self._defer(touch, back, "their Slack status says they are away")
        fitting = within_working_hours(now, zone, start, end)
        if fitting > now:
            return self._defer(touch, fitting, f"outside their working hours ({zone})")
        return None

    def _defer(self, touch: Record, until: datetime, why: str) -> Settled:
        """Due again at ``until``. A nudge's window moves with it (it waits for its person); an email's does not."""
        touch.update(due_at=iso(until), deferred=why)
        if touch["channel"] != EMAIL:
            touch["latest_at"] = iso(max(parse_iso(touch["latest_at"]), until + TEAM_GRACE))
        self.store.save_touch(touch)
        return Settled(touch, "deferred", why)

    # -- approval of client emails ------------------------------------------------------------
    def _needs_approval(self, record: Record) -> bool:
        return record.get("email_approval") != "auto"

    async def _ask_approval(self, touch: Record, record: Record) -> Settled:
        claimed = self.store.claim_touch(touch["id"], PENDING, AWAITING, asked_at=iso(self.clock.now()))
        if claimed is None:
            return Settled(touch, "cancelled", "claimed elsewhere")
        first = record.get("email_approval") is None
        why = "the first email to them" if first else "you asked to approve each email to them"
        await self._tell(Notice(am_or_channel(record), f"A {_kind(touch)} email to {record['client']} is ready "
                                f"({why}). Send it as it is, edit it, or skip it.", claimed, record,
                                (SEND, EDIT, SKIP) + (() if not first else (ALWAYS_ASK,)),
                                self._draft(claimed, record)))  # fmt: skip
        return Settled(claimed, AWAITING, "shown to the AM as a draft")

    async def approve(self, touch_id: int, actor: str, override: tuple[str, str] | None = None) -> Settled:
        """The AM pressed Send (or sent an edit): the draft, or a touch left ``unknown``, goes now."""
        touch = self.approval_touch(touch_id, actor)
        if touch["status"] not in (AWAITING, "unknown"):
            return Settled(touch, touch["status"], "already settled")
        record = self.store.get_departure(touch["departure_id"])
        why = self.hold_reason(touch, record)
        if why is not None:
            return self._end(touch, "cancelled", why)
        if parse_iso(touch["latest_at"]) < self.clock.now():
            return self._end(touch, "skipped", "approved too late")
        if record.get("email_approval") is None:
            record["email_approval"] = "auto"
            self.store.save_departure(record)
        return await self._claim_and_send(touch, record, touch["status"], override)

    def decline(self, touch_id: int, actor: str) -> Settled:
        touch = self.approval_touch(touch_id, actor)
        if touch["status"] not in (AWAITING, "unknown"):
            return Settled(touch, touch["status"], "already settled")
        return self._end(touch, "cancelled", f"skipped by {actor}")

    def always_ask(self, touch_id: int, actor: str) -> Record:
        touch = self.approval_touch(touch_id, actor)
        record = self.departures.get(touch["departure_id"])
        record["email_approval"] = "always"
        self.store.save_departure(record)
        return record

    def win_back_draft(self, record: Record) -> Message:
        """A win-back email for the AM to send from their own mailbox (replies reach them directly)."""
        email = self.departures.answer_value(record, "contact_email") or "client@invalid"
        touch = {"key": f"{record['id']}:win_back_draft", "departure_id": record["id"], "kind": "win_back",
                 "recipient": email, "payload": {}}  # fmt: skip
        return self._draft(touch, record)

    def approval_touch(self, touch_id: int, actor: str) -> Record:
        """The touch behind a draft's buttons, if ``actor`` may act on it; LookupError or DepartureError."""
        touch = self.store.get_touch(touch_id)
        if touch is None or touch["departure_id"] is None:
            raise LookupError("That email is no longer planned.")
        self.departures.require_access(self.departures.get(touch["departure_id"]), actor)
        return touch

    def draft(self, touch_id: int) -> Message:
        touch = self.store.get_touch(touch_id)
        return self._draft(touch, self.departures.get(touch["departure_id"]))

    def _draft(self, touch: Record, record: Record, override: tuple[str, str] | None = None) -> Message:
        values = {
            "client": record["client"],
            "contact_name": self.departures.answer_value(record, "contact_name") or "",
            "topics": self.departures.answer_value(record, "topics") or "",
            "holiday": touch["payload"].get("holiday", ""),
        }
        return self.composer.compose(touch, record, values, override)

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, touch: Record, record: Record | None, override: tuple[str, str] | None, sender) -> str:
        if touch["channel"] == EMAIL:
            await self.rate.pace()
            detail = await sender.send(self._draft(touch, record, override))
            self.rate.count(self.clock.now())
            return detail
        await self.notify(self.notice_for(touch, record))
        return "delivered"

    def notice_for(self, touch: Record, record: Record | None) -> Notice:
        if touch["kind"] == "digest":
            return Notice(CHANNEL, digest_text(self.departures, touch["payload"]["month"]), touch)
        text = team_text(touch, record)
        if touch["kind"] == "win_back":
            text += self._history(record)
        return Notice(touch["recipient"], text, touch, record, team_actions(touch))

    def _history(self, record: Record) -> str:
        """What a win-back nudge recalls: when and why they left, in their words, and what was at stake."""
        answers = self.departures.state(record).answers
        script = self.departures.prompts.script
        facts = [f"{q.label}: {answers[q.id]['display']}" for q in map(script.question, HISTORY_QUESTIONS)
                 if q is not None and q.id in answers and not answers[q.id].get("skipped")]  # fmt: skip
        return f"\nTheir history: {'; '.join(facts)}." if facts else ""

    async def _tell(self, notice: Notice) -> None:
        """A notice about a touch that must not stop the run when the transport fails."""
        try:
            await self.notify(notice)
        except Exception as err:  # noqa: BLE001 - a failed notice must not stop the other touches
            log.warning("could not deliver a notice to %s: %s", notice.recipient, err)

    async def _failed(self, touch: Record, record: Record | None, err: SendError) -> Settled:
        if not err.permanent and touch["attempts"] < MAX_ATTEMPTS:
            retry_at = self.clock.now() + FIRST_RETRY * 2 ** (touch["attempts"] - 1)
            touch.update(status=PENDING, due_at=iso(retry_at), last_error=str(err))
            self.store.save_touch(touch)
            return Settled(touch, "retry", str(err))
        if err.bounced and record is not None:
            record.setdefault("bounced", []).append(touch["recipient"])
            self.store.save_departure(record)
        settled = self._end(touch, "failed", str(err))
        if touch["channel"] == EMAIL and record is not None:
            await self._tell(Notice(am_or_channel(record), f"Could not send the {_kind(touch)} email to "
                                    f"{record['client']}: {err}", touch, record))  # fmt: skip
        return settled

    def _end(self, touch: Record, status: str, reason: str) -> Settled:
        touch.update(status=status, reason=reason, ended_at=iso(self.clock.now()))
        self.store.save_touch(touch)
        return Settled(touch, status, reason)


def _kind(touch: Record) -> str:
    return touch["kind"].replace("_", "-")


def team_actions(touch: Record) -> tuple[str, ...]:
    what = touch["payload"].get("what")
    if touch["kind"] == "win_back":
        return (DRAFT,)
    if touch["kind"] == "interview_reminder" and touch["recipient"] != CHANNEL:
        return (CONTINUE,)
    return {"save_deadline": (RETAINED, LEAVING), "final_payment_due": (PAID,),
            "agreement_signed": (SIGNED,)}.get(what, ())  # fmt: skip


def team_text(touch: Record, record: Record) -> str:
    client = record["client"]
    payload = touch["payload"]
    if touch["kind"] == "win_back":
        return f"It is a year since {client} left. A good moment to reach out: what has changed since?"
    if touch["kind"] == "interview_reminder":
        if payload.get("escalated"):
            return (f"The departure interview for {client} is still unfinished after "
                    f"{payload['number'] - 1} reminders to its account manager.")  # fmt: skip
        if not record["am"]:
            return f"{client} is leaving, and nobody has taken the departure yet."
        if payload.get("why") == "unconfirmed":
            return f"Has {client} confirmed they are leaving? If not yet, talk to them first."
        return f"The departure interview for {client} is unfinished. A few minutes now saves a chase later."
    on = payload.get("on", "")
    texts = {
        "final_payment_due": f"The final payment from {client} is due on {on}. Has it been paid?",
        "data_return": f"Data of {client} is to be returned or deleted by {on}.",
        "support_end": f"Support for {client} ends on {on}.",
        "save_deadline": f"The save deadline for {client} is today: retained, or still leaving?",
        "agreement_signed": f"The termination agreement with {client} is not signed by both parties yet.",
    }
    return texts.get(payload.get("what", ""), f"A reminder about {client}.")
