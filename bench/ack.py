"""How fast Slack gets its ack, under load, with 10k departures stored.

Sends signed ``/departure <client>`` commands and answer-button clicks, 50 at a
time, to sendoff's real app served over HTTP on 127.0.0.1, and the same
requests to a bare AsyncApp whose listeners only ack, measured in the same
run. Prints p50 and p99 of each, and sendoff's p99 as a ratio of the bare
app's (goal: at most 1.5x). The fake Slack Web API runs in a process of its own,
as Slack would be elsewhere; both apps run with Bolt's production setting
(listeners after the ack).

    python bench/ack.py [--requests 500] [--concurrency 50]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder heads sys.path; the repository root must instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import tempfile
import time
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from handlers.server import build_web_app, drain
from handlers.slack.bolt_app import build_slack_app
from storage.records import Source, Status
from tests.fakes.slack import TOKEN, FakeSlack
from tests.fakes.slack_driver import SIGNING_SECRET, slack_signature

STORED = 10_000


def _run_fake_slack(urls: multiprocessing.Queue) -> None:
    loop = asyncio.new_event_loop()
    urls.put(loop.run_until_complete(FakeSlack().start()))
    loop.run_forever()


def start_fake_slack() -> str:
    """The fake Web API in a process of its own, as Slack is elsewhere; returns its base URL."""
    urls: multiprocessing.Queue = multiprocessing.Queue()
    multiprocessing.Process(target=_run_fake_slack, args=(urls,), daemon=True).start()
    return urls.get(timeout=30)


def bare_app(api_url: str) -> web.Application:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SIGNING_SECRET)

    async def noop(ack) -> None:
        await ack()

    app.command("/departure")(noop)
    app.action(re.compile(".*"))(noop)
    return app.web_app()


def sendoff_app(api_url: str, folder: Path) -> tuple[web.Application, object]:
    settings = Settings(db_path=folder / "sendoff.json", slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=api_url, timezone="Europe/Berlin")  # fmt: skip
    slack = build_slack_app(settings)
    core = slack.core
    with core.store.batch():
        for n in range(STORED):
            core.store.insert_departure(
                {"client": f"Stored {n}", "client_key": f"stored {n}", "am": f"U{n % 40:04d}",
                 "status": Status.LEAVING, "source": Source.SLACK, "context": None, "opted_out": False,
                 "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
                 "interview": {"answers": {}, "trail": [], "parked": [], "editing": None}, "history": []}
            )  # fmt: skip
    return build_web_app(core, slack), core


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


def command_body(n: int) -> bytes:
    return urlencode({"command": "/departure", "text": f"Bench client {n}", "user_id": f"UB{n:05d}",
                      "channel_id": "C0GEN", "team_id": "T0TEST", "response_url": "http://127.0.0.1:9/r",
                      "trigger_id": f"t{n}"}).encode()  # fmt: skip


def click_body(n: int, departure_id: int) -> bytes:
    payload = {"type": "block_actions", "user": {"id": f"UB{n:05d}"}, "team": {"id": "T0TEST"}, "trigger_id": f"t{n}",
               "container": {"type": "message"}, "channel": {"id": f"DUB{n:05d}"}, "message": {"ts": "1.1"},
               "actions": [{"type": "button", "action_id": "choose:0", "block_id": f"answer:{departure_id}:confirmed",
                            "value": f"{departure_id}:confirmed:yes", "action_ts": "1.2"}]}  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


async def load(session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def send(body: bytes) -> None:
        async with gate:
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp,
                       "X-Slack-Signature": slack_signature(SIGNING_SECRET, timestamp, body)}  # fmt: skip
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    raise SystemExit(f"{url} answered {response.status}")

    await asyncio.gather(*(send(b) for b in bodies))
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def main(requests: int, concurrency: int) -> None:
    api_url = start_fake_slack()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        ours, core = sendoff_app(api_url, Path(folder))
        for name, app in (("bare AsyncApp", bare_app(api_url)), ("sendoff", ours)):
            runner, url = await serve(app)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
                await load(session, url, [command_body(10**5 - 1 - n) for n in range(5)], 5)  # warm up
                commands = await load(session, url, [command_body(n) for n in range(requests)], concurrency)
                if name == "sendoff":
                    await drain(app, timeout=60)
                ids = {d["client"]: d["id"] for d in core.departures.list_open()} if name == "sendoff" else {}
                clicks = [click_body(n, ids.get(f"Bench client {n}", 1)) for n in range(requests)]
                actions = await load(session, url, clicks, concurrency)
                if name == "sendoff":
                    await drain(app, timeout=60)
            await runner.cleanup()
            results[name] = {"/departure": percentiles(commands), "button": percentiles(actions)}
        answered = sum(1 for d in core.departures.list_open() if "confirmed" in d["interview"].get("answers", {}))
        core.close()
    print(f"{requests} requests of each kind, {concurrency} at a time, {STORED:,} departures stored")
    print(f"{'':12} {'bare p50':>9} {'bare p99':>9} {'sendoff p50':>12} {'sendoff p99':>12} {'p99 ratio':>10}")
    for kind in ("/departure", "button"):
        b50, b99 = results["bare AsyncApp"][kind]
        s50, s99 = results["sendoff"][kind]
        print(f"{kind:12} {b50:8.1f}ms {b99:8.1f}ms {s50:11.1f}ms {s99:11.1f}ms {s99 / b99:9.2f}x")
    print(f"(sendoff answered {answered} of {requests} clicked questions after the acks; goal: p99 ratio <= 1.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
