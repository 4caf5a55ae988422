"""``sendoff run``: the Slack app over HTTP or Socket Mode, the CRM webhook, unsubscribe links, a health check.

Everything shares one event loop: Bolt, the webhook and the work they start
after replying. SIGTERM (or Ctrl-C) stops taking requests, lets the work in
flight finish for a moment, closes the connection to Slack and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_sdk.signature import SignatureVerifier

from bot.app import Core
from bot.scheduler import Waker
from bot.settings import Settings
from bot.unsubscribe import PATH as UNSUBSCRIBE_PATH
from handlers.form_page import ROUTE as FORM_ROUTE  # the exit note's form
from handlers.form_page import form_page  # the exit note's form
from handlers.slack.bolt_app import SlackApp, build_slack_app
from handlers.unsubscribe_page import unsubscribe_page
from handlers.webhook import departure_hook

log = logging.getLogger("sendoff")

SLACK_PATH = "/slack/events"
HOOK_PATH = "/hooks/departure"
HEALTH_PATH = "/healthz"
# How long in-flight work may take to finish once asked to stop.
GRACE_SECONDS = 10
MAX_BODY = 1024 * 1024

CORE = web.AppKey("core", Core)
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])


def build_web_app(core: Core, slack: SlackApp, *, slack_over_http: bool = True) -> web.Application:
    """The HTTP routes: Slack's requests (unless over Socket Mode), the webhook, the health check."""
    app = web.Application(client_max_size=MAX_BODY)
    tasks: set[asyncio.Task[None]] = set()
    app[CORE] = core
    app[TASKS] = tasks
    bolt, talk = slack.bolt, slack.talk

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(_finished(tasks))

    verifier = SignatureVerifier(core.settings.slack_signing_secret or "")

    async def slack_events(request: web.Request) -> web.Response:
        with talk.out.acks.request():
            body = await request.read()
            problem = slack_body_problem(body, request.content_type)
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

    async def health(_: web.Request) -> web.Response:
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


async def serve(settings: Settings, *, host: str = "0.0.0.0") -> None:
    socket_mode = bool(settings.slack_app_token)
    slack = build_slack_app(settings, socket_mode=socket_mode)
    try:
        await _serve(slack, socket_mode, host)
    finally:
        slack.core.close()


async def _serve(slack: SlackApp, socket_mode: bool, host: str) -> None:
    core, bolt = slack.core, slack.bolt
    settings = core.settings
    web_app = build_web_app(core, slack, slack_over_http=not socket_mode)
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, settings.port).start()
    socket = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(bolt, settings.slack_app_token)
        await socket.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        log.info("connected to Slack over Socket Mode; webhook and health check on port %s", settings.port)
    else:
        log.info("serving Slack at %s, the webhook at %s and %s on port %s", SLACK_PATH, HOOK_PATH, HEALTH_PATH,
                 settings.port)  # fmt: skip
    waker = Waker(core.dispatcher, core.playbook)
    await waker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping: finishing the work in flight")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close_async()  # type: ignore[no-untyped-call]
        await runner.shutdown()
        await waker.stop()
        await drain(web_app)
        await runner.cleanup()
    log.info("stopped")
