"""``sendoff run``: the Slack app over HTTP or Socket Mode, the CRM webhook, unsubscribe links, a health check.

Everything shares one event loop: Bolt, the webhook and the work they start
after replying. SIGTERM (or Ctrl-C) stops taking requests, lets the work in
flight finish for a moment, closes the connection to Slack and the store.
The signal handlers go in before anything else, so a signal during start-up
(a Socket Mode connection that hangs, say) stops the process just as cleanly.

``/healthz`` answers 503 with the reasons while the process cannot do its
work: the Socket Mode link is down, the store cannot be reached, or the
dispatcher has not run for a while; 200 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient

from bot.app import Core
from bot.clock import Clock
from bot.scheduler import Waker
from bot.settings import Settings
from bot.unsubscribe import PATH as UNSUBSCRIBE_PATH
from handlers.form_page import ROUTE as FORM_ROUTE  # the exit note's form
from handlers.form_page import form_page  # the exit note's form
from handlers.slack.bolt_app import SlackApp, build_slack_app
from handlers.unsubscribe_page import unsubscribe_page
from handlers.webhook import departure_hook
from storage import Store

log = logging.getLogger("sendoff")

SLACK_PATH = "/slack/events"
HOOK_PATH = "/hooks/departure"
HEALTH_PATH = "/healthz"
# How long in-flight work may take to finish once asked to stop.
GRACE_SECONDS = 10
MAX_BODY = 1024 * 1024
# The scheduler runs the dispatcher at least every minute (its sweep): 5 minutes without a run is a stuck one.
DISPATCHER_STALE_AFTER = timedelta(minutes=5)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Below the usual probe timeouts (Kubernetes: 1 s), so the probe gets the reason rather than its own timeout.
STORE_PROBE_SECONDS = 0.8

CORE = web.AppKey("core", Core)
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])


class Health:
    """What ``/healthz`` reports: why this process cannot do its work now, or nothing.

    ``socket``: the Socket Mode client, when Slack's requests come over it.
    ``monotonic``: the time source of ``Dispatcher.last_tick_at`` (tests move it); a dispatcher that has
    never run counts from when this was built (start-up).
    """

    def __init__(self, core: Core, socket: AsyncBaseSocketModeClient | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.core = core
        self.socket = socket
        self.monotonic = monotonic
        self.started = monotonic()
        self._last: list[str] = []

    async def problems(self) -> list[str]:
        found = []
        if self.socket is not None and not await self.socket.is_connected():
            found.append("the Socket Mode connection to Slack is down (connecting or reconnecting)")
        store = await store_problem(self.core.store)
        if store is not None:
            found.append(store)
        # getattr: Dispatcher.last_tick_at is new; a dispatcher without it counts as never having run.
        dispatcher = dispatcher_problem(getattr(self.core.dispatcher, "last_tick_at", None), self.started,
                                        self.monotonic())  # fmt: skip
        if dispatcher is not None:
            found.append(dispatcher)
        if found != self._last:
            # Logged when the answer changes, not on every probe: a probe comes every few seconds.
            if found:
                log.warning("unhealthy: %s", "; ".join(found))
            elif self._last:
                log.info("healthy again")
            self._last = found
        return found


async def store_problem(store: Store) -> str | None:
    """Why ``store`` cannot be used now, or None: a cheap read, then what a read from memory cannot tell."""
    try:
        # In a thread, and bounded: a database server that does not answer must not hold up the event loop
        # (Slack's acks), nor the probe past its own timeout.
        await asyncio.wait_for(asyncio.to_thread(store.count_departures), timeout=STORE_PROBE_SECONDS)
    except TimeoutError:
        return f"the database did not answer within {STORE_PROBE_SECONDS:g} s"
    except Exception as err:  # noqa: BLE001 - any failure is the answer; its text may name the server, so not shown
        log.debug("the store could not be read", exc_info=True)
        return f"the database cannot be reached ({type(err).__name__})"
    # The TinyDB and in-memory stores read from memory, so a read succeeds even once they are closed.
    # The Store contract has no public flag for it (yet); every backend keeps this private one.
    if getattr(store, "closed", False) or getattr(store, "_closed", False):
        return "the database is closed"
    path = getattr(store, "path", None)
    # TinyDB appends to a journal and replaces its snapshot in this folder: without it writes are lost.
    if isinstance(path, Path) and not os.access(path.parent, os.W_OK | os.X_OK):
        return "the database's folder cannot be written to (gone, read-only or not accessible)"
    return None


def dispatcher_problem(last_tick_at: float | None, started: float, now: float) -> str | None:
    """Why the dispatcher looks stuck, or None: no run finished within ``DISPATCHER_STALE_AFTER``.

    All three are seconds of one monotonic clock: when its last run finished (None: never), when this
    process started, now.
    """
    idle = now - (last_tick_at if last_tick_at is not None else started)
    if idle <= DISPATCHER_STALE_AFTER.total_seconds():
        return None
    minutes = int(idle // 60)
    if last_tick_at is None:
        return f"the dispatcher has not run since start-up, {minutes} minutes ago"
    return f"the dispatcher has not run for {minutes} minutes"


def build_web_app(core: Core, slack: SlackApp, *, slack_over_http: bool = True,
                  socket: AsyncBaseSocketModeClient | None = None,
                  monotonic: Callable[[], float] = time.monotonic) -> web.Application:  # fmt: skip
    """The HTTP routes: Slack's requests (unless over Socket Mode), the webhook, the health check.

    ``socket`` and ``monotonic``: see ``Health``.
    """
    app = web.Application(client_max_size=MAX_BODY)
    tasks: set[asyncio.Task[None]] = set()
    app[CORE] = core
    app[TASKS] = tasks
    bolt, talk = slack.bolt, slack.talk

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(_finished(tasks))

    # Only over HTTP: Socket Mode needs no signing secret, and SignatureVerifier refuses an empty one.
    verifier = SignatureVerifier(core.settings.slack_signing_secret or "") if slack_over_http else None

    async def slack_events(request: web.Request) -> web.Response:
        with talk.out.acks.request():
            body = await request.read()
            problem = slack_body_problem(body, request.content_type)
            assert verifier is not None  # the route exists only over HTTP
            if problem is None and not verifier.is_valid_request(body, dict(request.headers)):
                return web.json_response({"error": "invalid signature"}, status=401)
            if problem is not None:
                log.warning("a signed Slack request was refused: %s", problem)
                return web.json_response({"error": problem}, status=400)
            try:
                response = await bolt.async_dispatch(await to_bolt_request(request))
            except Exception:  # noqa: BLE001 - Bolt reading a payload that Slack would never send
                log.warning("a signed Slack request could not be read", exc_info=True)
                return web.json_response({"error": "the request could not be read"}, status=400)
            if response.status >= 500:
                # A listener failed on a payload it could not read (its error is logged): not a server fault.
                return web.json_response({"error": "the request could not be handled"}, status=400)
            return await to_aiohttp_response(response)

    checks = Health(core, socket, monotonic=monotonic)

    async def health(_: web.Request) -> web.Response:
        problems = await checks.problems()
        if problems:
            return web.json_response({"status": "unavailable", "reason": "; ".join(problems), "reasons": problems},
                                     status=503)  # fmt: skip
        return web.json_response({"status": "ok", "departures": core.store.count_departures()})

    async def close_slack_session(_: web.Application) -> None:
        if bolt.client.session is not None:
            await bolt.client.session.close()

    app.on_cleanup.append(close_slack_session)
    if slack_over_http:
        app.router.add_post(SLACK_PATH, slack_events)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_post(HOOK_PATH, departure_hook(core, talk.crm_reported, spawn))
    app.router.add_route("*", UNSUBSCRIBE_PATH, unsubscribe_page(core))
    app.router.add_route("*", FORM_ROUTE, form_page(core, spawn))  # the exit note's form: the client's own words
    return app


def slack_body_problem(body: bytes, content_type: str) -> str | None:
    """Why ``body`` cannot be a request from Slack, or None: Slack sends UTF-8 JSON objects, or a form."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        if content_type == "application/json":
            found: object = json.loads(text)
        else:
            fields = parse_qs(text, keep_blank_values=True, errors="strict")
            if "payload" not in fields:
                return None if fields or not text else "the body is not a form"
            found = json.loads(fields["payload"][0])
    except (ValueError, UnicodeDecodeError):
        return "the body is not what Slack sends"
    return None if isinstance(found, dict) else "the payload is not a JSON object"


def _finished(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    return done


async def drain(app: web.Application, timeout: float = GRACE_SECONDS) -> None:
    """Wait for the work started after replies (webhook follow-ups, Bolt listeners) to finish."""
    pending = [t for t in asyncio.all_tasks() if not t.done() and (t in app[TASKS] or _is_bolt_listener(t))]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def _is_bolt_listener(task: asyncio.Task[Any]) -> bool:
    """Bolt runs each listener after its ack in a task of its own, with no handle given out."""
    return getattr(task.get_coro(), "__qualname__", "").endswith("run_ack_function_asynchronously")


async def serve(settings: Settings, *, host: str = "0.0.0.0", clock: Clock | None = None,
                stop: asyncio.Event | None = None) -> None:  # fmt: skip
    """Serve until SIGTERM or SIGINT (or ``stop``, for a caller that embeds it), then stop cleanly.

    ``clock``: the bot's clock, for tests.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    # First of all: a signal while the store opens or Slack is being reached must stop cleanly too.
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        socket_mode = bool(settings.slack_app_token)
        slack = build_slack_app(settings, socket_mode=socket_mode, clock=clock)
        try:
            await _serve(slack, socket_mode, host, stop)
        finally:
            slack.core.close()
            # Closed by the web app's clean-up too, unless the start failed before there was one.
            if slack.bolt.client.session is not None:
                await slack.bolt.client.session.close()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    log.info("stopped")


async def _serve(slack: SlackApp, socket_mode: bool, host: str, stop: asyncio.Event) -> None:
    core, bolt = slack.core, slack.bolt
    settings = core.settings
    socket = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(bolt, settings.slack_app_token)
    runner: web.AppRunner | None = None
    waker: Waker | None = None
    try:
        web_app = build_web_app(core, slack, slack_over_http=not socket_mode,
                                socket=socket.client if socket is not None else None)  # fmt: skip
        runner = web.AppRunner(web_app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, settings.port).start()
        if socket is not None:
            log.info("connecting to Slack over Socket Mode; webhook and health check on port %s", settings.port)
            # The client retries for ever (a wrong token, Slack unreachable): only a stop ends the wait.
            connect: Awaitable[None] = socket.connect_async()  # type: ignore[no-untyped-call]  # unannotated
            if not await _unless_stopped(connect, stop):
                log.info("stopping before Slack was reached")
                return
            log.info("connected to Slack over Socket Mode")
        else:
            log.info("serving Slack at %s, the webhook at %s and %s on port %s", SLACK_PATH, HOOK_PATH,
                     HEALTH_PATH, settings.port)  # fmt: skip
        if stop.is_set():
            return
        # Not cancelled by a stop: its first run may be sending, and a send cut off is never retried.
        waker = Waker(core.dispatcher, core.playbook)
        await waker.start()
        await stop.wait()
        log.info("stopping: finishing the work in flight")
    finally:
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close_async()  # type: ignore[no-untyped-call]
        if runner is not None:
            await runner.shutdown()
        if waker is not None:
            await waker.stop()
        if runner is not None:
            await drain(runner.app)
            await runner.cleanup()


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it finishes (True) or ``stop`` is set first (False: ``work`` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            # Waits for the cancellation to land without taking in its CancelledError (ours would be lost).
            await asyncio.wait({task})
    if task.cancelled():
        return False
    task.result()  # its failure, if it failed
    return True
