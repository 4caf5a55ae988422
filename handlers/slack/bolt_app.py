"""Slack: the Bolt app and its listeners, one small module per kind.

``build_slack_app`` is the only entry: it builds the Web API client, the
notifier on it, the core with that notifier, and the Bolt app;
``register(app)`` in each module adds its listeners. The conversation
reaches listeners through Bolt's context (``context["talk"]``), put there by
a middleware, never through globals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.app import Core, build_core
from bot.clock import Clock, SystemClock
from bot.settings import Settings
from handlers.slack import actions, commands, events, nudges, shortcuts, views
from handlers.slack.conversation import Conversation
from handlers.slack.nudges import SlackNotices
from handlers.slack.web_api import AcksFirst, SlackOut, web_client
from storage import Store

log = logging.getLogger("sendoff.slack")


@dataclass(frozen=True)
class SlackApp:
    core: Core
    bolt: AsyncApp
    talk: Conversation


def build_slack_app(settings: Settings, *, clock: Clock | None = None, store: Store | None = None,
                    socket_mode: bool = False, process_before_response: bool = False) -> SlackApp:  # fmt: skip
    """The core and the Bolt app. Tests pass ``process_before_response`` to see effects before the reply."""
    clock = clock or SystemClock()
    client = web_client(settings)
    # Work after an ack gives way to acks still due, unless the reply waits for that work anyway.
    out = SlackOut(client, AcksFirst(enabled=not process_before_response))
    core = build_core(settings, SlackNotices(out, settings, clock), clock=clock, store=store)
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret,
        request_verification_enabled=not socket_mode,
        process_before_response=process_before_response,
        logger=log,
    )
    talk = Conversation(core, out)

    @app.middleware
    async def provide_and_drop_repeats(body: dict[str, Any], context: AsyncBoltContext,
                                       next: Callable[[], Awaitable[None]]) -> BoltResponse | None:  # fmt: skip
        """Give listeners the conversation; ack an event Slack delivers again (it retries after 3 s), once."""
        context["talk"] = talk
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not core.departures.first_delivery(f"slack:{event_id}"):
            log.info("event %s delivered again; already handled", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # A failed event may be retried by Slack: let the retry through.
        if isinstance(body, dict) and body.get("type") == "event_callback" and body.get("event_id"):
            core.departures.forget_delivery(f"slack:{body['event_id']}")
        log.exception("listener failed: %s", type(error).__name__, exc_info=error)

    for module in (commands, events, actions, views, shortcuts, nudges):
        module.register(app)
    return SlackApp(core, app, talk)
