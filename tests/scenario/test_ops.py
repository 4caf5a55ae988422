"""Running it for real: the health check, stopping at any moment, and backups of the TinyDB store."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import Core
from bot.clock import ManualClock
from bot.settings import Settings
from handlers.server import DISPATCHER_STALE_AFTER, build_web_app, serve
from handlers.slack.bolt_app import build_slack_app
from storage import StoreError
from storage.backup import backup_tinydb, default_backup_path
from storage.records import Channel, NewDeparture, NewTouch, Source, Status, TouchKind, TouchStatus
from storage.tinydb_store import TinyDBStore, writer_running
from tests.conftest import START
from tests.fakes.slack import TOKEN, FakeSlack
from tests.scenario.test_run import clean_env, free_port

APP_TOKEN = "xapp-1-A0TEST-0000-test-app-token"


async def healthz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{url}/healthz") as response:
        return response.status, await response.json()


async def until_status(session: aiohttp.ClientSession, url: str, status: int) -> dict[str, Any]:
    """The health check's answer once it is ``status``; the change it waits for comes a moment later at most."""
    for _ in range(250):
        found, body = await healthz(session, url)
        if found == status:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"/healthz stayed at {found}: {body}")


# -- Socket Mode ---------------------------------------------------------------------------------------------
class FakeSocketMode:
    """Slack's side of Socket Mode on 127.0.0.1: apps.connections.open hands out a WebSocket URL on this same
    server. The test can hold apps.connections.open (connecting for ever) and drop the links (Slack going away)."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()  # apps.connections.open answers only while this is set
        self.asked = asyncio.Event()  # set on every apps.connections.open
        self.links: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_get("/link", self._link)
        app.on_shutdown.append(lambda _: self.drop_links())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return f"{self.url}/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop_links(self) -> None:
        for link in self.links:
            await link.close()

    async def _open(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {APP_TOKEN}"  # the app-level token, not the bot's
        self.asked.set()
        await self.answer.wait()
        return web.json_response({"ok": True, "url": f"{self.url.replace('http', 'ws', 1)}/link"})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        link = web.WebSocketResponse()
        await link.prepare(request)
        self.links.append(link)
        async for _ in link:
            pass  # the client only pings; aiohttp answers those
        return link


async def test_healthz_is_503_while_socket_mode_connects_or_reconnects_and_200_once_linked(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    slack = FakeSocketMode()
    api_url = await slack.start()
    port = free_port()
    settings = Settings(db_path=tmp_path / "data" / "sendoff.json", slack_bot_token=TOKEN, slack_app_token=APP_TOKEN,
                        slack_api_url=api_url, port=port, timezone="Europe/Berlin")  # fmt: skip
    stop = asyncio.Event()
    server = asyncio.create_task(serve(settings, host="127.0.0.1", clock=ManualClock(START), stop=stop))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(slack.asked.wait(), timeout=10)  # connecting: Slack has not answered yet
            status, body = await healthz(session, url)
            assert status == 503 and "Socket Mode" in body["reason"], body

            slack.answer.set()
            body = await until_status(session, url, 200)
            assert body["status"] == "ok" and len(slack.links) == 1

            # Slack drops the link; the client asks for a new one, which Slack holds back for now.
            slack.answer.clear()
            slack.asked.clear()
            await slack.drop_links()
            await asyncio.wait_for(slack.asked.wait(), timeout=10)
            status, body = await healthz(session, url)
            assert status == 503 and "Socket Mode" in body["reason"], body

            slack.answer.set()
            await until_status(session, url, 200)
            assert len(slack.links) == 2
        stop.set()
        await asyncio.wait_for(server, timeout=15)
    finally:
        stop.set()
        if not server.done():
            server.cancel()
        await slack.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "sendoff"]
    assert "connected to Slack over Socket Mode" in messages and messages[-1] == "stopped"
    assert any(m.startswith("unhealthy: the Socket Mode connection") for m in messages)


# -- the store and the dispatcher --------------------------------------------------------------------------
async def test_healthz_is_503_while_the_data_folder_is_gone(world):
    assert (await healthz(world.session, world.url))[0] == 200
    data = world.core.settings.db_path.parent
    data.rename(data.with_name("data-unmounted"))
    try:
        status, body = await healthz(world.session, world.url)
        assert status == 503 and "database" in body["reason"], body
    finally:
        data.with_name("data-unmounted").rename(data)
    assert (await healthz(world.session, world.url))[0] == 200


async def test_healthz_is_503_once_the_store_is_closed(world):
    world.core.store.close()
    status, body = await healthz(world.session, world.url)
    assert status == 503 and body["reasons"] == ["the database is closed"]


class Ticks:
    """The health check's monotonic clock, moved by the test: the real one plus how far it was moved."""

    def __init__(self) -> None:
        self.moved = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.moved

    def advance(self, delta: timedelta) -> None:
        self.moved += delta.total_seconds()


@pytest.fixture
async def health_world(slack_settings: Settings, clock: ManualClock) -> AsyncIterator[tuple[Core, Ticks, str]]:
    """The web app as ``sendoff run`` serves it, its health check on a clock the test moves."""
    fake = FakeSlack()
    settings = replace(slack_settings, slack_api_url=await fake.start())
    slack = build_slack_app(settings, clock=clock, process_before_response=True)
    ticks = Ticks()
    runner = web.AppRunner(build_web_app(slack.core, slack, monotonic=ticks))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield slack.core, ticks, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await fake.stop()
        slack.core.close()


async def test_healthz_is_503_when_the_dispatcher_has_not_run_since_start_up_for_five_minutes(health_world):
    _, ticks, url = health_world
    async with aiohttp.ClientSession() as session:
        ticks.advance(DISPATCHER_STALE_AFTER - timedelta(seconds=1))
        assert (await healthz(session, url))[0] == 200
        ticks.advance(timedelta(minutes=1))
        status, body = await healthz(session, url)
    assert status == 503 and body["reasons"] == ["the dispatcher has not run since start-up, 5 minutes ago"]


async def test_healthz_is_200_once_the_dispatcher_runs_and_503_when_it_has_not_for_five_minutes(health_world):
    core, ticks, url = health_world
    async with aiohttp.ClientSession() as session:
        ticks.advance(DISPATCHER_STALE_AFTER * 2)
        assert (await healthz(session, url))[0] == 503
        await core.dispatcher.run_due()
        # The dispatcher notes the real monotonic time: the test's clock comes back to it, as if the run was now.
        ticks.moved = 0.0
        assert (await healthz(session, url))[0] == 200
        ticks.advance(DISPATCHER_STALE_AFTER + timedelta(minutes=1))
        status, body = await healthz(session, url)
    assert status == 503 and body["reasons"] == ["the dispatcher has not run for 6 minutes"]


# -- stopping at any moment ----------------------------------------------------------------------------------
class HangingServer:
    """Accepts connections and never answers: Slack unreachable behind a firewall that drops packets."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        self.reached.set()
        await reader.read()  # until the client goes away

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def run_until_reached(tmp_path: Path, api_url: str, reached: Any) -> asyncio.subprocess.Process:
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=api_url,
                    PORT=str(free_port()))  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handlers.cli", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.wait_for(reached(), timeout=30)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process


async def stop_with(process: asyncio.subprocess.Process, sig: signal.Signals) -> str:
    process.send_signal(sig)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_while_socket_mode_connects_to_an_unreachable_slack_stops_cleanly(tmp_path, sig):
    slack = HangingServer()
    api_url = await slack.start()
    try:
        process = await run_until_reached(tmp_path, api_url, slack.reached.wait)
        stderr = await stop_with(process, sig)
    finally:
        await slack.stop()
    assert process.returncode == 0, stderr
    assert "stopped" in stderr and APP_TOKEN not in stderr and TOKEN not in stderr
    assert not writer_running(tmp_path / "data" / "sendoff.json")  # the store was closed, its lock let go


@pytest.mark.slow
async def test_sigterm_while_socket_mode_retries_a_refused_app_token_stops_cleanly(tmp_path):
    fake = FakeSlack()  # refuses any token but the bot's: apps.connections.open answers invalid_auth
    api_url = await fake.start()

    async def refused() -> None:
        while not fake.to("apps.connections.open", ok=False):
            await asyncio.sleep(0.02)

    try:
        process = await run_until_reached(tmp_path, api_url, refused)
        stderr = await stop_with(process, signal.SIGTERM)
    finally:
        await fake.stop()
    assert process.returncode == 0, stderr
    assert "stopped" in stderr and APP_TOKEN not in stderr


# -- backups ---------------------------------------------------------------------------------------------------
def departure(name: str) -> NewDeparture:
    at = "2026-11-25T10:00:00.000Z"
    return {"client": name, "client_key": name.lower(), "am": "ann", "source": Source.CONSOLE,
            "status": Status.INTERVIEWING, "context": None, "created_at": at, "updated_at": at,
            "interview": {"answers": {}, "trail": [], "parked": [], "editing": None},
            "history": [], "opted_out": False}  # fmt: skip


def touch(key: str, departure_id: int) -> NewTouch:
    return {"key": key, "departure_id": departure_id, "kind": TouchKind.CHECK_IN, "channel": Channel.EMAIL,
            "recipient": "pat@acme.example", "due_at": "2026-12-01T08:00:00Z", "latest_at": "2027-12-31T23:00:00Z",
            "zone": "Europe/Berlin", "status": TouchStatus.PENDING, "attempts": 0, "payload": {}}  # fmt: skip


def fill(store: TinyDBStore, count: int, prefix: str = "client") -> None:
    for n in range(count):
        record = store.insert_departure(departure(f"{prefix} {n}"))
        store.put_touch(touch(f"{prefix}:{n}:check_in", record["id"]))
        store.remember_event(f"{prefix}:{n}", "2026-11-25T10:00:00Z", "2026-11-01T00:00:00Z")


def contents(path: Path) -> tuple[dict[str, int], list[Any], list[Any]]:
    store = TinyDBStore(path)
    try:
        counts = {"departures": store.count_departures(), "touches": store.count_touches()}
        return counts, store.find_departures(), store.find_touches()
    finally:
        store.close()


def test_a_backup_opens_as_a_normal_store_holding_the_same_records(tmp_path):
    source = tmp_path / "data" / "sendoff.json"
    store = TinyDBStore(source)
    fill(store, 30)
    store.close()
    destination = default_backup_path(source, START)
    assert destination.parent == source.parent / "backups"
    counts = backup_tinydb(source, destination)
    assert counts == {"departures": 30, "touches": 30, "events": 30, "team_sizes": 0, "updates": 0}
    assert [p.name for p in destination.parent.iterdir()] == [destination.name]  # one file, no temp left
    assert destination.stat().st_mode & 0o777 == 0o600  # it names people, as the store does
    assert contents(destination) == contents(source)


def test_a_backup_never_overwrites(tmp_path):
    source = tmp_path / "data" / "sendoff.json"
    store = TinyDBStore(source)
    fill(store, 2)
    store.close()
    taken = tmp_path / "taken.json"
    taken.write_text("someone's file")
    with pytest.raises(StoreError, match="exists already"):
        backup_tinydb(source, taken)
    assert taken.read_text() == "someone's file"
    (tmp_path / "other.json.journal-000001").write_text("")  # a store there would replay it over the copy
    with pytest.raises(StoreError, match="journals"):
        backup_tinydb(source, tmp_path / "other.json")
    with pytest.raises(StoreError, match="the store itself"):
        backup_tinydb(source, source.parent / "." / source.name)
    with pytest.raises(StoreError, match="no data"):
        backup_tinydb(tmp_path / "nowhere" / "sendoff.json", tmp_path / "empty.json")
    assert not (tmp_path / "empty.json").exists()


def test_a_backup_taken_while_the_writer_has_the_store_open_holds_every_acknowledged_write(tmp_path):
    source = tmp_path / "data" / "sendoff.json"
    store = TinyDBStore(source, compact_at_bytes=4096)
    try:
        fill(store, 40)  # some in the snapshot, the rest in the journals
        store.wait_for_compaction()
        fill(store, 3, prefix="late")  # in the journal only
        counts = backup_tinydb(source, tmp_path / "backup.json")
        assert counts["departures"] == store.count_departures() == 43
        assert counts["touches"] == store.count_touches() == 43
    finally:
        store.close()
    assert contents(tmp_path / "backup.json") == contents(source)


def test_backups_taken_while_the_writer_keeps_writing_are_each_one_consistent_state(tmp_path):
    """The writer adds a departure with its touch in one batch, and compacts often: a copy holds both or neither."""
    source = tmp_path / "data" / "sendoff.json"
    store = TinyDBStore(source, compact_at_bytes=2048)
    started, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            n = 0
            while not done.is_set() or n < 5:
                with store.batch():
                    record = store.insert_departure(departure(f"pair {n}"))
                    store.put_touch(touch(f"pair:{n}", record["id"]))
                n += 1
                started.set()
        except BaseException as err:  # noqa: BLE001 - raised again by the test
            failures.append(err)
            started.set()

    writer = threading.Thread(target=write)
    writer.start()
    copies = []
    try:
        started.wait(timeout=10)
        for n in range(8):
            path = tmp_path / "backups" / f"copy-{n}.json"
            copies.append((path, backup_tinydb(source, path)))
    finally:
        done.set()
        writer.join()
        store.close()
    assert not failures, failures
    for path, counts in copies:
        assert counts["departures"] == counts["touches"] > 0
        found, departures, touches = contents(path)
        assert found == {"departures": counts["departures"], "touches": counts["touches"]}
        # Consistent: the first n pairs, whole; none missing in the middle.
        assert [d["client"] for d in departures] == [f"pair {n}" for n in range(len(departures))]
        assert [t["departure_id"] for t in touches] == [d["id"] for d in departures]
