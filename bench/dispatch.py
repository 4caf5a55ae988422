"""How fast due emails go out, beside a raw aiosmtplib loop doing the same sends, and how long the loop stalls.

An SMTP sink (aiosmtpd, discarding) runs on 127.0.0.1 in a process of its own. N check-in emails are due.
In the same run, against that sink:

- raw: the N emails sent by plain aiosmtplib clients over K connections at once, each connection one
  message at a time, each message composed by sendoff's own composer just before it goes (the very
  message sendoff would send, composed the same way: a loop of its own would compose each one too);
- raw, precomposed: the same, the N messages composed before the clock starts (what the wire alone costs);
- sendoff: the dispatcher sends the N touches over its K lanes (K connections): each touch read from the
  store, checked (holds, pacing), composed from the templates, marked in flight once the server took its
  recipient (durably: the journal's fsync), sent, marked sent, the store being the TinyDB file with its
  journal.

Prints the rates, sendoff's as a ratio of the raw loop's (goal: at least 0.8x) and of the precomposed
one's, and the largest stall of the event loop while sendoff sends (goal: under 100 ms).

    python bench/dispatch.py [--emails 5000] [--connections K] [--rounds 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder heads sys.path; the repository root must instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from email.message import Message

import aiosmtplib
from aiosmtpd.smtp import SMTP

from bot.app import Core, build_core
from bot.clock import ManualClock
from bot.dispatcher import Dispatcher, Outcome
from bot.mailer import Composer, make_sender
from bot.notify import LogNotifier
from bot.playbook import new_touch
from bot.settings import Settings
from storage.records import Channel, Departure, Source, Touch, TouchKind

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)


class Discard:
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        return "250 OK"


def run_sink(port_out) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Discard()), "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def prepare(port: int, count: int, folder: Path, connections: int | None) -> Core:
    """A core whose store holds ``count`` departures, each with a check-in email due now."""
    settings = Settings(db_path=folder / "sendoff.json", timezone="Europe/Berlin", smtp_host="127.0.0.1",
                        smtp_port=port, smtp_security="none", mail_from="Team <team@agency.example>",
                        smtp_per_second=0, smtp_per_day=0)  # fmt: skip
    core = build_core(settings, LogNotifier(), clock=ManualClock(NOW))
    if connections is not None and connections != len(core.dispatcher.courier.lanes):
        lanes = [make_sender(settings, core.prompts.messages) for _ in range(connections)]
        composer = Composer(settings, core.clock, core.prompts)
        core.dispatcher = Dispatcher(core.departures, core.store, core.clock, composer, lanes, LogNotifier(),
                                     playbook=core.playbook, rate=core.dispatcher.rate)  # fmt: skip
    with core.store.batch():
        for n in range(count):
            address = f"c{n}@example.com"
            prefill = {"contact_name": f"Contact {n}", "contact_email": address, "topics": "SEO"}
            record = core.departures.start(f"Client {n}", am="ann", source=Source.CONSOLE, prefill=prefill).departure
            touch = new_touch(f"{record['id']}:check_in:+30d", record["id"], TouchKind.CHECK_IN, Channel.EMAIL, address,
                              NOW, NOW + timedelta(days=14), "Europe/Berlin", {})  # fmt: skip
            core.store.put_touch(touch)
    settle = getattr(core.store, "wait_for_compaction", None)
    if settle is not None:
        settle()  # the snapshot that setting up triggered is written before anything is timed
    return core


def due_emails(core: Core) -> list[tuple[Touch, Departure]]:
    """The due email touches, each with its departure, as the dispatcher would find them."""
    due = []
    for touch in core.store.find_touches(due_before="9999"):
        if touch["channel"] == Channel.EMAIL and touch["departure_id"] is not None:
            record = core.store.get_departure(touch["departure_id"])
            assert record is not None
            due.append((touch, record))
    return due


async def raw_loop(port: int, core: Core, due: list[tuple[Touch, Departure]], connections: int, *,
                   precomposed: bool) -> float:  # fmt: skip
    """``due``'s messages over ``connections`` plain aiosmtplib clients at once, each one message at a time,
    composed by sendoff's composer as each goes, or all of them before the clock starts (``precomposed``)."""
    compose = core.dispatcher.drafts.compose
    ready: deque[Message] | None = deque(compose(t, r, at=NOW) for t, r in due) if precomposed else None
    waiting = deque(due)
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) for _ in range(connections)]
    started = time.perf_counter()

    async def lane(client: aiosmtplib.SMTP) -> None:
        await client.connect()
        while waiting:
            touch, record = waiting.popleft()
            await client.send_message(ready.popleft() if ready is not None else compose(touch, record, at=NOW))
        await client.quit()

    await asyncio.gather(*(lane(client) for client in clients))
    return time.perf_counter() - started


async def sendoff_run(core: Core) -> tuple[float, float, int]:
    worst = 0.0
    done = asyncio.Event()

    async def watch_loop() -> None:
        nonlocal worst
        tick = 0.01
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(tick)
            worst = max(worst, time.perf_counter() - before - tick)

    watcher = asyncio.create_task(watch_loop())
    started = time.perf_counter()
    settled = await core.dispatcher.run_due()
    elapsed = time.perf_counter() - started
    done.set()
    await watcher
    return elapsed, worst, sum(s.outcome == Outcome.SENT for s in settled)


async def main(count: int, connections: int | None, rounds: int) -> None:
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=run_sink, args=(ports,), daemon=True)
    sink.start()
    port = ports.get(timeout=10)
    ratios, precomposed_ratios, stalls = [], [], []
    try:
        for round_ in range(rounds):
            with tempfile.TemporaryDirectory() as folder:
                core = prepare(port, count, Path(folder), connections)
                try:
                    lanes = len(core.dispatcher.courier.lanes)
                    due = due_emails(core)
                    # each goes first in turn: whatever else the machine does weighs on all alike
                    if round_ % 2 == 0:
                        raw = await raw_loop(port, core, due, lanes, precomposed=False)
                        bare = await raw_loop(port, core, due, lanes, precomposed=True)
                        ours, stall, sent = await sendoff_run(core)
                    else:
                        ours, stall, sent = await sendoff_run(core)
                        bare = await raw_loop(port, core, due, lanes, precomposed=True)
                        raw = await raw_loop(port, core, due, lanes, precomposed=False)
                finally:
                    core.close()
            assert sent == count, f"only {sent} of {count} sent"
            ratios.append(raw / ours)
            precomposed_ratios.append(bare / ours)
            stalls.append(stall)
            print(f"round {round_ + 1}: {count} emails over {lanes} connections each, to one local aiosmtpd sink")
            print(f"  raw aiosmtplib, composing each: {count / raw:8.0f} emails/s ({raw:.2f} s)")
            print(f"  raw aiosmtplib, precomposed:    {count / bare:8.0f} emails/s ({bare:.2f} s)")
            print(f"  sendoff dispatcher:             {count / ours:8.0f} emails/s ({ours:.2f} s)")
            print(f"  throughput ratio (sendoff / raw): {raw / ours:.2f}x (goal: at least 0.8x); "
                  f"against the precomposed loop: {bare / ours:.2f}x")  # fmt: skip
            print(f"  largest event-loop stall while sending: {stall * 1000:.1f} ms (goal: under 100 ms)")
    finally:
        sink.terminate()
    if rounds > 1:
        print(f"median ratio over {rounds} rounds: {statistics.median(ratios):.2f}x "
              f"(against the precomposed loop: {statistics.median(precomposed_ratios):.2f}x); "
              f"largest stall {max(stalls) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=None, help="K; default: sendoff's own number of lanes")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.emails, arguments.connections, arguments.rounds))
