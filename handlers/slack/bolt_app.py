"""Slack: the Bolt app and its listeners, one small module per kind.

``build_slack_app`` is the only entry; ``register(app)`` in each module adds
its listeners. The core and the conversation reach listeners through Bolt's
context (``context["talk"]``), put there by a middleware, never through globals.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Core
from handlers.slack import actions, commands, events, nudges, shortcuts, views
from handlers.slack.conversation import AcksFirst, Conversation
from handlers.slack.nudges import SlackNotices

log = logging.getLogger("sendoff.slack")

DEFAULT_API_URL = "https://slack.com/api/"
RATE_LIMIT_RETRIES = 3


def web_client(core: Core) -> AsyncWebClient:
    """The Web API client; inside a running loop it keeps one HTTP session, so connections are reused."""
    base_url = core.settings.slack_api_url or DEFAULT_API_URL
    try:
        asyncio.get_running_loop()
        session: aiohttp.ClientSession | None = aiohttp.ClientSession()
    except RuntimeError:
        session = None  # the client then opens a session per call
    return AsyncWebClient(
        token=core.settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        session=session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


@dataclass(frozen=True)
class SlackApp:
    bolt: AsyncApp
    talk: Conversation


def build_slack_app(core: Core, *, socket_mode: bool = False, process_before_response: bool = False) -> SlackApp:
    """The Bolt app for ``core``. Tests pass ``process_before_response`` to see effects before the reply."""
    client = web_client(core)
    app = AsyncApp(
        client=client,
        signing_secret=core.settings.slack_signing_secret,
        request_verification_enabled=not socket_mode,
        process_before_response=process_before_response,
        logger=log,
    )
    # Work after an ack gives way to acks still due, unless the reply waits for that work anyway.
    talk = Conversation(core, client, AcksFirst(enabled=not process_before_response))

    @app.middleware
    async def provide_and_drop_repeats(body, context, next):
        """Give listeners the conversation; ack an event Slack delivers again (it retries after 3 s), once."""
        context["talk"] = talk
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not core.departures.first_delivery(f"slack:{event_id}"):
            log.info("event %s delivered again; already handled", event_id)
            return BoltResponse(status=200, body="")
        await next()

    @app.error
    async def on_error(error, body):
        # A failed event may be retried by Slack: let the retry through.
        if isinstance(body, dict) and body.get("type") == "event_callback" and body.get("event_id"):
            core.departures.forget_delivery(f"slack:{body['event_id']}")
        log.exception("listener failed: %s", type(error).__name__, exc_info=error)

    for module in (commands, events, actions, views, shortcuts, nudges):
        module.register(app)
    # The dispatcher now reaches people in Slack: nudges in working hours, drafts for approval.
    notices = SlackNotices(talk)
    core.dispatcher.notify = notices.deliver
    core.dispatcher.presence = notices.presence
    core.dispatcher.approvals = True
    return SlackApp(app, talk)
