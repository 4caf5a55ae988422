"""Two ``sendoff run`` processes share one PostgreSQL database: every due email goes exactly once.

Each process serves HTTP on its own port and sends through the same SMTP
server (aiosmtpd, an ephemeral port of 127.0.0.1). The touches fall due a few
seconds after both have started, so both dispatchers wake for the same set at
the same moment and race to claim each one (``SELECT ... FOR UPDATE SKIP
LOCKED``). The SMTP server counts what arrived for each touch.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import sys
import time
from collections import Counter
from datetime import timedelta
from email import policy
from pathlib import Path

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP

from bot.app import build_core
from bot.clock import SystemClock
from bot.notify import LogNotifier
from bot.playbook import new_touch
from bot.settings import Settings
from storage.postgres_store import PostgresStore
from storage.records import Approval, Channel, Source, TouchKind, TouchStatus
from tests.fakes.slack import TOKEN, FakeSlack
from tests.fakes.slack_driver import SIGNING_SECRET

CLIENTS = 40
# From the seeding to the touches' due time: long enough for both processes to start (about 2 s, more on a
# busy machine). Started after the due time, one could mark the other's sends in flight as interrupted.
START_UP = timedelta(seconds=8)
# How long both may take to send everything once it is due.
SENDING = 8.0


class Sink:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.recipients.append(str(message["To"]).rpartition("<")[2].rstrip(">"))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, folder: Path) -> set[int]:
    """CLIENTS departures, each with one approved update email due a few seconds from now; the touches' ids."""
    store = PostgresStore(url)
    core = build_core(Settings(db_path=folder / "sendoff.json", timezone="Europe/Berlin"), LogNotifier(),
                      store=store)  # fmt: skip
    due = SystemClock().now() + START_UP
    ids = set()
    try:
        with store.batch():
            for n in range(CLIENTS):
                address = f"c{n}@example.com"
                prefill = {"contact_name": f"Contact {n}", "contact_email": address, "topics": "SEO"}
                record = core.departures.start(f"Client {n}", am="U0ANN", source=Source.CONSOLE,
                                               prefill=prefill).departure  # fmt: skip
                record["email_approval"] = Approval.AUTO  # sent without a draft for the AM first
                store.save_departure(record)
                payload = {"update_id": 1, "language": "en", "text": "We moved to a new office."}
                touch = new_touch(f"{record['id']}:{TouchKind.UPDATE}:1", record["id"], TouchKind.UPDATE,
                                  Channel.EMAIL, address, due, due + timedelta(days=3), "Europe/Berlin",
                                  payload)  # type: ignore[arg-type]  # fmt: skip
                ids.add(store.put_touch(touch)["id"])
    finally:
        core.close()
    return ids


def env_for(tmp_path: Path, name: str, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SENDOFF_", "SMTP_", "WEBHOOK_"))}
    env.update(SENDOFF_DATA_DIR=str(tmp_path / name), **values)
    return env


async def wait_healthy(session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"sendoff run stopped at start-up ({process.returncode})")
        try:
            async with session.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not become healthy")


@pytest.mark.slow
async def test_two_processes_send_each_due_touch_exactly_once(tmp_path, pg_url):
    sink = Sink()
    smtp = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    fake = FakeSlack()
    api_url = await fake.start()
    fake.add_user("U0ANN", "ann@example.com")
    ids = seed(pg_url, tmp_path / "seed")
    started = time.monotonic()
    common = dict(SENDOFF_DB=pg_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                  SLACK_API_URL=api_url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.sockets[0].getsockname()[1]),
                  SMTP_SECURITY="none", MAIL_FROM="Team <team@agency.example>", SMTP_RATE_PER_SECOND="0",
                  SMTP_RATE_PER_DAY="0", SENDOFF_TIMEZONE="Europe/Berlin")  # fmt: skip
    ports = {name: free_port() for name in ("a", "b")}
    processes = {
        name: await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handlers.cli", "run", cwd=tmp_path,
            env=env_for(tmp_path, name, PORT=str(port), **common),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        for name, port in ports.items()
    }
    store = PostgresStore(pg_url)
    try:
        async with aiohttp.ClientSession() as session:
            for name, process in processes.items():
                await wait_healthy(session, f"http://127.0.0.1:{ports[name]}", process)
        both_up = time.monotonic() - started
        deadline = time.monotonic() + START_UP.total_seconds() + SENDING
        while time.monotonic() < deadline:
            touches = [store.get_touch(i) for i in ids]
            if all(t["status"] not in (TouchStatus.PENDING, TouchStatus.SENDING) for t in touches):
                break
            await asyncio.sleep(0.05)
        outputs = {}
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
            outputs[name] = stderr.decode()
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        smtp.close()
        await fake.stop()
    try:
        touches = [store.get_touch(i) for i in ids]
    finally:
        store.close()
    for name, process in processes.items():
        assert process.returncode == 0, outputs[name]
        password = pg_url.rpartition("@")[0].rpartition(":")[2]
        assert password not in outputs[name]
    assert sink.recipients, (
        "no email arrived: does `sendoff run` open SENDOFF_DB's PostgreSQL database "
        "(bot/app.py: open_store(settings.db_url or settings.db_path))?\n" + outputs["a"][-3000:]
    )
    statuses = Counter(t["status"] for t in touches)
    assert statuses == {TouchStatus.SENT: CLIENTS}, (statuses, [t.get("last_error") for t in touches][:3])
    per_recipient = Counter(sink.recipients)
    assert sorted(per_recipient) == sorted(t["recipient"] for t in touches)
    assert set(per_recipient.values()) == {1}, per_recipient.most_common(3)
    assert both_up < START_UP.total_seconds(), f"start-up took {both_up:.1f} s: the touches fell due before"
