"""How fast due emails go out, and how long the event loop stalls meanwhile.

Sends N emails (default 5,000) to an SMTP sink on 127.0.0.1 that runs in a
process of its own: first with a raw aiosmtplib loop (one connection, the
messages composed beforehand), then with sendoff's dispatcher (each touch
claimed in the store, composed from the templates, sent over one reused
connection, marked sent), measured in the same run. Prints the throughput of
each, sendoff's as a ratio of the raw loop's (goal: at least 0.8x), and the
largest stall of the event loop while sendoff sends (goal: under 100 ms).

    python bench/dispatch.py [--emails 5000]
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
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from bot.clock import ManualClock
from bot.dispatcher import Outcome
from bot.notify import LogNotifier
from bot.playbook import new_touch
from bot.settings import Settings
from storage.records import Channel, Source, TouchKind

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


async def raw_loop(port: int, count: int) -> float:
    messages = []
    for n in range(count):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "team@agency.example", f"c{n}@example.com", "Checking in"
        message.set_content("Hello,\n\nHow are things going?\n" * 10)
        message.add_alternative("<p>Hello,</p><p>How are things going?</p>" * 10, subtype="html")
        messages.append(message)
    started = time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    for message in messages:
        await client.send_message(message)
    await client.quit()
    return time.perf_counter() - started


async def sendoff_run(port: int, count: int, folder: Path) -> tuple[float, float, int]:
    settings = Settings(db_path=folder / "sendoff.json", timezone="Europe/Berlin", smtp_host="127.0.0.1",
                        smtp_port=port, smtp_security="none", mail_from="Team <team@agency.example>",
                        smtp_per_second=0, smtp_per_day=0)  # fmt: skip
    clock = ManualClock(NOW)
    core = build_core(settings, LogNotifier(), clock=clock)
    with core.store.batch():
        for n in range(count):
            address = f"c{n}@example.com"
            prefill = {"contact_name": f"Contact {n}", "contact_email": address, "topics": "SEO"}
            record = core.departures.start(f"Client {n}", am="ann", source=Source.CONSOLE, prefill=prefill).departure
            touch = new_touch(f"{record['id']}:check_in:+30d", record["id"], TouchKind.CHECK_IN, Channel.EMAIL, address,
                              NOW, NOW + timedelta(days=14), "Europe/Berlin", {})  # fmt: skip
            core.store.put_touch(touch)
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
    sent = sum(s.outcome == Outcome.SENT for s in settled)
    core.close()
    return elapsed, worst, sent


async def main(count: int) -> None:
    ports = multiprocessing.Queue()
    sink = multiprocessing.Process(target=run_sink, args=(ports,), daemon=True)
    sink.start()
    port = ports.get(timeout=10)
    try:
        raw = await raw_loop(port, count)
        with tempfile.TemporaryDirectory() as folder:
            ours, stall, sent = await sendoff_run(port, count, Path(folder))
    finally:
        sink.terminate()
    assert sent == count, f"only {sent} of {count} sent"
    print(f"raw aiosmtplib loop: {count / raw:8.0f} emails/s ({raw:.2f} s for {count})")
    print(f"sendoff dispatcher:  {count / ours:8.0f} emails/s ({ours:.2f} s for {count})")
    print(f"throughput ratio (sendoff / raw): {raw / ours:.2f}x (goal: at least 0.8x)")
    print(f"largest event-loop stall while sending: {stall * 1000:.1f} ms (goal: under 100 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    asyncio.run(main(parser.parse_args().emails))
