"""What a send leaves behind when the SMTP server refuses, stalls or goes away, and when the database does.

A real SMTP server (aiosmtpd) on an ephemeral port of 127.0.0.1 answers each step as a test tells it,
and notes the touch's stored status when it gets to RCPT and to DATA: a touch is in flight (``sending``)
only once the server has taken its recipient. Time comes from the movable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import socket
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email import policy
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from bot.clock import parse_iso
from bot.dispatcher import Outcome
from bot.scheduler import Waker
from storage import open_store
from storage.records import TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

STEPS = ("MAIL", "RCPT", "DATA")


@dataclass
class Server:
    """Answers each step with the next queued refusal (or ``always``'s), else accepts; a step in ``hold``
    waits for that event first (a slow server), one in ``act`` does that first. ``look`` reads the touch's
    stored status."""

    port: int = 0
    queued: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in STEPS})
    always: dict[str, str] = field(default_factory=dict)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    reached: dict[str, asyncio.Event] = field(default_factory=lambda: {s: asyncio.Event() for s in STEPS})
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    seen: list[tuple[str, TouchStatus]] = field(default_factory=list)
    look: Any = None  # () -> TouchStatus
    act: dict[str, Any] = field(default_factory=dict)  # step -> () -> None

    async def _step(self, step: str) -> str | None:
        if self.look is not None:
            self.seen.append((step, self.look()))
        if step in self.act:
            self.act.pop(step)()
        self.reached[step].set()
        if step in self.hold:
            await self.hold[step].wait()
        if self.queued[step]:
            return self.queued[step].pop(0)
        return self.always.get(step)

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:  # noqa: N802 - aiosmtpd's
        refusal = await self._step("MAIL")
        if refusal:
            return refusal
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:  # noqa: N802
        refusal = await self._step("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        refusal = await self._step("DATA")
        if refusal:
            return refusal
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
async def smtp():
    sink = Server()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    for held in sink.hold.values():
        held.set()  # a handler still waiting finishes, into a connection already gone
    server.close()
    await server.wait_closed()


def smtp_settings(settings, port: int):
    return replace(settings, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                   mail_from="Team <team@agency.example>", smtp_per_second=0)  # fmt: skip


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def check_in(core, clock, interview_with, address: str = "jane@acme.example", client: str = "Acme Corp"):
    """A departure's first check-in email to ``address``, and the clock at its due time. The departure's other
    touches are set aside: nothing else it plans goes meanwhile, nor re-plans it."""
    record = interview_with(core.departures, client, contact_email=address)
    touch = core.store.touch_by_key(f"{record['id']}:check_in:+30d")
    for other in core.store.find_touches(departure_id=record["id"], statuses=[TouchStatus.PENDING]):
        if other["id"] != touch["id"]:
            core.store.claim_touch(other["id"], TouchStatus.PENDING, TouchStatus.CANCELLED)
    clock.set(max(clock.now(), parse_iso(touch["due_at"])))
    return touch


async def run_for(core, touch) -> Any:
    """The dispatcher's run, as it settled ``touch`` (the run may settle other touches too)."""
    return next(s for s in await core.dispatcher.run_due() if s.touch["id"] == touch["id"])


@pytest.fixture
def mail_core(settings, clock, smtp, notifier):
    core = build_core(smtp_settings(settings, smtp.port), notifier, clock=clock)
    yield core
    core.close()


@pytest.mark.parametrize("step", ["MAIL", "RCPT"])
async def test_a_temporary_refusal_before_data_leaves_the_touch_pending_never_in_flight(mail_core, clock, smtp, step,
                                                                                         interview_with):
    touch = check_in(mail_core, clock, interview_with)
    smtp.look = lambda: mail_core.store.get_touch(touch["id"])["status"]
    smtp.queued[step] = ["451 4.3.0 Try again later"]
    settled = await run_for(mail_core, touch)
    assert settled.outcome is Outcome.RETRY and smtp.messages == []
    stored = mail_core.store.get_touch(touch["id"])
    assert stored["status"] is TouchStatus.PENDING and stored["attempts"] == 1
    assert stored["last_error"] == "451 4.3.0 Try again later"
    assert parse_iso(stored["due_at"]) == clock.now() + timedelta(minutes=5)
    assert ("DATA", TouchStatus.PENDING) not in smtp.seen and all(s is TouchStatus.PENDING for _, s in smtp.seen)

    clock.advance(timedelta(minutes=5))
    assert (await run_for(mail_core, touch)).outcome is Outcome.SENT
    assert smtp.seen[-2:] == [("RCPT", TouchStatus.PENDING), ("DATA", TouchStatus.SENDING)]  # marked between
    assert len(smtp.messages) == 1
    sent = mail_core.store.get_touch(touch["id"])
    assert sent["status"] is TouchStatus.SENT and "failing_since" not in sent


async def test_a_touch_being_retried_keeps_its_back_off_through_a_re_plan(mail_core, clock, smtp, interview_with):
    touch = check_in(mail_core, clock, interview_with)
    smtp.always["RCPT"] = "421 4.7.0 Try again later"
    first = clock.now()
    assert (await run_for(mail_core, touch)).outcome is Outcome.RETRY
    clock.set(parse_iso(mail_core.store.get_touch(touch["id"])["due_at"]))
    assert (await run_for(mail_core, touch)).outcome is Outcome.RETRY
    retrying = mail_core.store.get_touch(touch["id"])
    # an AM's note (any change re-plans the departure) and the daily top-up, between two retries
    record = mail_core.departures.get(touch["departure_id"])
    mail_core.departures.edit(record, "in_their_words", actor="ann")
    mail_core.departures.answer(mail_core.departures.get(record["id"]), "the prices went up", actor="ann")
    mail_core.playbook.plan_all()
    kept = mail_core.store.get_touch(touch["id"])
    assert kept["status"] is TouchStatus.PENDING and kept["due_at"] == retrying["due_at"]
    assert (kept["attempts"], kept["last_error"], kept["failing_since"]) == (2, "421 4.7.0 Try again later",
                                                                             retrying["failing_since"])  # fmt: skip
    clock.set(parse_iso(kept["due_at"]))
    while (settled := await run_for(mail_core, touch)).outcome is Outcome.RETRY:
        clock.set(parse_iso(settled.touch["due_at"]))
    assert settled.outcome is Outcome.FAILED and clock.now() - first == timedelta(hours=24)  # not a day more


async def test_a_temporary_refusal_at_data_is_retried_as_well(mail_core, clock, smtp, interview_with):
    touch = check_in(mail_core, clock, interview_with)
    smtp.queued["DATA"] = ["452 4.3.1 Insufficient system storage"]
    assert (await run_for(mail_core, touch)).outcome is Outcome.RETRY
    assert mail_core.store.get_touch(touch["id"])["status"] is TouchStatus.PENDING
    clock.advance(timedelta(minutes=5))
    assert (await run_for(mail_core, touch)).outcome is Outcome.SENT and len(smtp.messages) == 1


async def test_a_refused_recipient_fails_at_once_as_bounced_and_the_am_hears(mail_core, clock, smtp, notifier,
                                                                             interview_with):
    touch = check_in(mail_core, clock, interview_with)
    smtp.look = lambda: mail_core.store.get_touch(touch["id"])["status"]
    smtp.queued["RCPT"] = ["550 5.1.1 No such user"]
    settled = await run_for(mail_core, touch)
    assert settled.outcome is Outcome.FAILED and settled.detail == "recipient refused: 550 5.1.1 No such user"
    stored = mail_core.store.get_touch(touch["id"])
    assert stored["status"] is TouchStatus.FAILED and stored["reason"] == settled.detail
    assert smtp.seen == [("MAIL", TouchStatus.PENDING), ("RCPT", TouchStatus.PENDING)]  # never in flight
    assert mail_core.store.get_departure(touch["departure_id"])["bounced"] == ["jane@acme.example"]
    assert any("550 5.1.1 No such user" in n.text for n in notifier.notices)


async def test_a_bounce_keeps_what_the_am_changed_while_the_email_was_being_sent(mail_core, clock, smtp,
                                                                                interview_with):  # fmt: skip
    touch = check_in(mail_core, clock, interview_with)
    departures = mail_core.departures

    def am_corrects_the_contact() -> None:  # as the server thinks about the recipient
        record = departures.get(touch["departure_id"])
        departures.edit(record, "contact_name", actor="ann")
        departures.answer(departures.get(record["id"]), "Jane Q. Doe", actor="ann")

    smtp.act["RCPT"] = am_corrects_the_contact
    smtp.queued["RCPT"] = ["550 5.1.1 No such user"]
    assert (await run_for(mail_core, touch)).outcome is Outcome.FAILED
    stored = departures.get(touch["departure_id"])
    assert stored["bounced"] == ["jane@acme.example"]
    assert departures.answer_value(stored, "contact_name") == "Jane Q. Doe"


async def test_a_run_of_421_is_retried_for_24_hours_then_fails_saying_it_was_temporary(mail_core, clock, smtp,
                                                                                       notifier, interview_with):
    touch = check_in(mail_core, clock, interview_with)
    smtp.always["RCPT"] = "421 4.7.0 Try again later"
    first = clock.now()
    waits = []
    while (settled := await run_for(mail_core, touch)).outcome is Outcome.RETRY:
        assert mail_core.store.get_touch(touch["id"])["status"] is TouchStatus.PENDING
        due = parse_iso(settled.touch["due_at"])
        waits.append(due - clock.now())
        clock.set(due)
    minutes = [w / timedelta(minutes=1) for w in waits]
    assert minutes[:6] == [5, 10, 20, 40, 60, 60] and max(minutes) == 60
    assert clock.now() - first == timedelta(hours=24)
    assert settled.outcome is Outcome.FAILED and smtp.messages == []
    stored = mail_core.store.get_touch(touch["id"])
    assert stored["status"] is TouchStatus.FAILED
    assert stored["reason"] == "temporarily refused (421 4.7.0 Try again later) for 24 hours"
    assert stored["attempts"] == len(waits) + 1
    assert any("temporarily refused (421 4.7.0 Try again later)" in n.text for n in notifier.notices)


async def test_a_server_that_is_not_there_leaves_the_touch_pending(settings, clock, notifier, interview_with):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once it is closed
    core = build_core(smtp_settings(settings, port), notifier, clock=clock)
    try:
        touch = check_in(core, clock, interview_with)
        settled = await run_for(core, touch)
        assert settled.outcome is Outcome.RETRY and settled.detail.startswith("connection: ")
        stored = core.store.get_touch(touch["id"])
        assert stored["status"] is TouchStatus.PENDING and parse_iso(stored["due_at"]) > clock.now()
    finally:
        core.close()


async def test_a_421_greeting_is_retried(settings, clock, notifier, interview_with):
    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"421 4.3.2 Too busy, come back later\r\n")  # what a loaded server says as it hangs up
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(busy, "127.0.0.1", 0)
    core = build_core(smtp_settings(settings, server.sockets[0].getsockname()[1]), notifier, clock=clock)
    try:
        touch = check_in(core, clock, interview_with)
        settled = await run_for(core, touch)
        assert settled.outcome is Outcome.RETRY and "421" in settled.detail
        assert core.store.get_touch(touch["id"])["status"] is TouchStatus.PENDING
    finally:
        core.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("step", "after_restart"), [("RCPT", TouchStatus.PENDING), ("DATA", TouchStatus.UNKNOWN)])
async def test_a_send_cut_off_before_the_recipient_was_taken_goes_once_after_a_restart(settings, clock, smtp, notifier,
                                                                                        interview_with, step,
                                                                                        after_restart):  # fmt: skip
    """A kill, as far as the store can tell: the run is cancelled while the server thinks, then the bot starts again."""
    configured = smtp_settings(settings, smtp.port)
    core = build_core(configured, notifier, clock=clock)
    touch = check_in(core, clock, interview_with)
    smtp.hold[step] = asyncio.Event()
    run = asyncio.create_task(core.dispatcher.run_due())
    await asyncio.wait_for(smtp.reached[step].wait(), timeout=10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    core.close()

    again = build_core(configured, notifier, clock=clock)
    try:
        recovered = again.dispatcher.recover()
        assert again.store.get_touch(touch["id"])["status"] is after_restart
        smtp.hold.pop(step).set()
        await again.dispatcher.run_due()
        if after_restart is TouchStatus.PENDING:  # cut off before the mark: it simply goes now, once
            assert recovered == [] and again.store.get_touch(touch["id"])["status"] is TouchStatus.SENT
            assert len(smtp.messages) == 1
        else:  # cut off after it: the AM decides, it is never re-sent on its own
            assert [t["id"] for t in recovered] == [touch["id"]]
            assert again.store.get_touch(touch["id"])["status"] is TouchStatus.UNKNOWN
    finally:
        again.close()


async def test_losing_the_database_pauses_dispatch_and_loses_nothing(settings, clock, smtp, notifier, pg_server,
                                                                    pg_url, caplog, interview_with):  # fmt: skip
    """The database goes away just as the server takes an email (after the mark, before the write of its
    sending), stays away for a few wakes, and comes back."""
    database = urlsplit(pg_url).path.lstrip("/")

    def database_away(away: bool) -> None:
        pg_server.sql(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {"false" if away else "true"}')
        if away:
            pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")  # fmt: skip

    core = build_core(smtp_settings(settings, smtp.port), notifier, clock=clock, store=open_store(pg_url))
    waker = Waker(core.dispatcher, core.playbook)
    caplog.set_level(logging.INFO, logger="sendoff")
    try:
        await waker.start()
        touch = check_in(core, clock, interview_with)
        smtp.act["DATA"] = lambda: database_away(True)  # as the server takes the email
        await waker.run()  # the email goes; that it went cannot be written
        assert len(smtp.messages) == 1
        for _ in range(3):
            await waker.run()  # the sweep and the wakes go on, saying nothing new
        assert waker.scheduler.running and waker.scheduler.get_job("wake") and waker.scheduler.get_job("sweep")
        paused = [r.getMessage() for r in caplog.records if "database unreachable" in r.getMessage()]
        assert len(paused) == 1 and paused[0].startswith("database unreachable: dispatch paused, retrying in 5 s")
        assert pg_url.split("@")[0].split(":")[-1] not in caplog.text  # never the password

        database_away(False)
        assert core.store.get_touch(touch["id"])["status"] is TouchStatus.SENDING  # the mark, and no more yet
        last = core.dispatcher.last_tick_at
        await waker.run()
        assert core.dispatcher.last_tick_at is not None and (last is None or core.dispatcher.last_tick_at > last)
        assert [r.getMessage() for r in caplog.records].count("database reachable again: dispatch resumed") == 1
        stored = core.store.get_touch(touch["id"])
        assert stored["status"] is TouchStatus.SENT and len(smtp.messages) == 1  # recorded, and sent once
        await waker.run()
        assert len(smtp.messages) == 1
    finally:
        database_away(False)
        await waker.stop()
        core.close()


async def test_a_second_process_leaves_a_send_in_flight_alone_and_takes_up_one_cut_off(
        settings, clock, smtp, interview_with, pg_url):  # fmt: skip
    """Two processes on one database: the one starting (or ticking) meanwhile must not call the other's send
    cut off while it is going; one really cut off is found once in flight for longer than a send can last."""
    configured = smtp_settings(settings, smtp.port)
    heard = RecordingNotifier()
    first = build_core(configured, RecordingNotifier(), clock=clock, store=open_store(pg_url))
    second = build_core(configured, heard, clock=clock, store=open_store(pg_url))
    try:
        touch = check_in(first, clock, interview_with)
        smtp.hold["DATA"] = asyncio.Event()
        run = asyncio.create_task(first.dispatcher.run_due())
        await asyncio.wait_for(smtp.reached["DATA"].wait(), timeout=10)
        assert second.dispatcher.recover() == []  # the other process starts while the email is in flight
        await second.dispatcher.run_due()
        assert second.store.get_touch(touch["id"])["status"] is TouchStatus.SENDING
        smtp.hold.pop("DATA").set()
        await run
        assert first.store.get_touch(touch["id"])["status"] is TouchStatus.SENT and len(smtp.messages) == 1

        other = check_in(first, clock, interview_with, address="max@globex.example", client="Globex")
        smtp.hold["DATA"] = asyncio.Event()
        smtp.reached["DATA"].clear()
        run = asyncio.create_task(first.dispatcher.run_due())
        await asyncio.wait_for(smtp.reached["DATA"].wait(), timeout=10)
        run.cancel()  # the first process is killed while the server takes the email
        with contextlib.suppress(asyncio.CancelledError):
            await run
        clock.advance(timedelta(minutes=14))
        await second.dispatcher.run_due()
        assert second.store.get_touch(other["id"])["status"] is TouchStatus.SENDING and heard.notices == []
        clock.advance(timedelta(minutes=2))
        await second.dispatcher.run_due()
        assert second.store.get_touch(other["id"])["status"] is TouchStatus.UNKNOWN
        assert [n.touch["id"] for n in heard.notices] == [other["id"]]  # its AM decides; nothing re-sent
        await second.dispatcher.run_due()
        assert len(heard.notices) == 1 and len(smtp.messages) == 1
    finally:
        smtp.hold.pop("DATA", asyncio.Event()).set()
        first.close()
        second.close()


async def test_a_process_holding_an_older_read_never_puts_back_a_touch_another_one_sent(
        settings, clock, smtp, interview_with, pg_url):  # fmt: skip
    """Process B read a due email, then waits to defer it (its daily cap); meanwhile process A sent it."""
    from bot.settling import Pause

    configured = smtp_settings(settings, smtp.port)
    first = build_core(configured, RecordingNotifier(), clock=clock, store=open_store(pg_url))
    second = build_core(configured, RecordingNotifier(), clock=clock, store=open_store(pg_url))
    try:
        touch = check_in(first, clock, interview_with)
        read_by_second = second.store.get_touch(touch["id"])
        assert (await run_for(first, touch)).outcome is Outcome.SENT
        later = Pause(clock.now() + timedelta(hours=2), "the daily cap")
        settled = second.dispatcher.ledger.defer(read_by_second, later)
        assert settled is not None and settled.outcome is Outcome.CANCELLED  # claimed elsewhere: left alone
        assert second.store.get_touch(touch["id"])["status"] is TouchStatus.SENT
        clock.advance(timedelta(hours=3))
        await second.dispatcher.run_due()
        assert len(smtp.messages) == 1
    finally:
        first.close()
        second.close()


async def test_a_plan_made_from_an_older_read_is_made_again_at_the_next_start(settings, clock, interview_with,
                                                                             pg_url):  # fmt: skip
    """Process A planned from a departure it read before process B's AM changed the contact's address."""
    first = build_core(settings, RecordingNotifier(), clock=clock, store=open_store(pg_url))
    second = build_core(settings, RecordingNotifier(drafts=True), clock=clock, store=open_store(pg_url))
    try:
        record = interview_with(second.departures, "Acme Corp", contact_email="jane@acme.example")
        [draft] = await second.dispatcher.run_due()
        second.dispatcher.decline(draft.touch["id"], "ann")  # nothing waits for a person: the plan holds for days
        clock.advance(timedelta(hours=1))
        read_by_first = first.store.get_departure(record["id"])
        second.departures.edit(second.departures.get(record["id"]), "contact_email", actor="ann")
        second.departures.answer(second.departures.get(record["id"]), "new@acme.example", actor="ann")
        first.playbook.plan(read_by_first)  # its plan: the older address
        clock.advance(timedelta(minutes=5))
        restarted = build_core(settings, RecordingNotifier(), clock=clock, store=open_store(pg_url))
        try:
            restarted.playbook.plan_all()
            check_ins = [t for t in restarted.store.find_touches(departure_id=record["id"],
                                                                 statuses=[TouchStatus.PENDING])
                         if t["kind"].value == "check_in"]  # fmt: skip
            assert check_ins and {t["recipient"] for t in check_ins} == {"new@acme.example"}
        finally:
            restarted.close()
    finally:
        first.close()
        second.close()
