"""Each SMTP connection carries one send at a time: an email the AM approves mid-batch goes at once, on a
connection of its own, and the batch goes on. A real SMTP server (aiosmtpd) on an ephemeral port of 127.0.0.1,
slow for the batch: its DATA waits until the test lets it go."""

from __future__ import annotations

import asyncio
import email
from dataclasses import dataclass, field, replace
from email import policy

import pytest
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from bot.clock import parse_iso
from bot.dispatcher import Outcome
from storage.records import Approval, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]


@dataclass
class SlowForTheBatch:
    """Takes every email; one to ``slow`` waits in DATA for ``gate``. ``busy`` is set once ``lanes`` wait at once."""

    slow: set[str]
    lanes: int
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    busy: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0
    delivered: list[str] = field(default_factory=list)  # the recipients, in the order their DATA ended

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        recipient = envelope.rcpt_tos[0]
        if recipient in self.slow:
            self.waiting += 1
            if self.waiting >= self.lanes:
                self.busy.set()
            await self.gate.wait()
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert message["To"].addresses[0].addr_spec == recipient
        self.delivered.append(recipient)
        return "250 OK"


@pytest.fixture
async def world(settings, clock, interview_with):
    notifier = RecordingNotifier(drafts=True)  # as in Slack: the AM approves drafts
    batch = [f"client{n}@example.com" for n in range(4)]
    handler = SlowForTheBatch(set(batch), lanes=0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    configured = replace(settings, smtp_host="127.0.0.1", smtp_port=server.sockets[0].getsockname()[1],
                         smtp_security="none", mail_from="Team <team@agency.example>", smtp_per_second=0)  # fmt: skip
    core = build_core(configured, notifier, clock=clock)
    handler.lanes = len(core.dispatcher.courier.lanes)
    touches = {}
    for n, address in enumerate([*batch, "approved@example.com"]):
        record = interview_with(core.departures, f"Client {n}", contact_email=address)
        touch = core.store.touch_by_key(f"{record['id']}:check_in:+30d")
        for other in core.store.find_touches(departure_id=record["id"], statuses=[TouchStatus.PENDING]):
            if other["id"] != touch["id"]:  # only the check-ins are in play
                core.store.claim_touch(other["id"], TouchStatus.PENDING, TouchStatus.CANCELLED)
        if address in batch:
            record = core.store.get_departure(record["id"])
            record["email_approval"] = Approval.AUTO  # approved before: these go by themselves
            core.store.save_departure(record)
        else:  # shown to the AM as a draft, waiting for their Send
            core.store.claim_touch(touch["id"], TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL)
        touches[address] = touch
    clock.set(max(parse_iso(t["due_at"]) for t in touches.values()))
    yield core, handler, touches
    handler.gate.set()
    core.close()
    server.close()
    await server.wait_closed()


async def test_an_email_approved_mid_batch_goes_at_once_on_a_connection_of_its_own(world):
    core, server, touches = world
    assert len(core.dispatcher.courier.lanes) > 1  # several connections in the batch, each one send at a time
    batch = asyncio.create_task(core.dispatcher.run_due())
    await asyncio.wait_for(server.busy.wait(), timeout=10)  # every lane of the batch is in the middle of a send

    approved = await asyncio.wait_for(core.dispatcher.approve(touches["approved@example.com"]["id"], "ann"),
                                      timeout=10)  # fmt: skip
    assert approved.outcome is Outcome.SENT
    assert server.delivered == ["approved@example.com"] and not batch.done()  # it did not wait for the batch

    server.gate.set()
    settled = await asyncio.wait_for(batch, timeout=10)
    assert sorted(s.touch["recipient"] for s in settled) == sorted(a for a in touches if a != "approved@example.com")
    assert {s.outcome for s in settled} == {Outcome.SENT}
    assert sorted(server.delivered) == sorted(touches)
    for touch in touches.values():
        stored = core.store.get_touch(touch["id"])
        assert stored["status"] is TouchStatus.SENT and "last_error" not in stored, stored


async def test_two_approvals_during_a_batch_both_go_and_the_batch_sends_neither_again(world):
    core, server, touches = world
    batch = asyncio.create_task(core.dispatcher.run_due())
    await asyncio.wait_for(server.busy.wait(), timeout=10)
    # one the batch has not come to yet is shown to the AM meanwhile (as if "always ask" had just been chosen)
    late = touches["client3@example.com"]
    core.store.claim_touch(late["id"], TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL)
    server.slow.discard(late["recipient"])
    first, second = await asyncio.wait_for(asyncio.gather(
        core.dispatcher.approve(touches["approved@example.com"]["id"], "ann"),
        core.dispatcher.approve(late["id"], "ann"),
    ), timeout=10)  # fmt: skip
    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.SENT)
    server.gate.set()
    settled = {s.touch["recipient"]: s for s in await asyncio.wait_for(batch, timeout=10)}
    # the batch took it from its list before it was approved: the server took its recipient, then the mark
    # found it sent, and no DATA followed
    assert settled[late["recipient"]].outcome is Outcome.CANCELLED
    assert sorted(server.delivered) == sorted(touches)  # each once
