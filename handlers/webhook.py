"""``POST /hooks/departure``: a CRM reports a departure, signed with WEBHOOK_SECRET.

The signature is ``v1=`` and the hex HMAC-SHA256 of ``"{timestamp}.{raw body}"``.
A request over five minutes old or badly signed gets 401, a malformed one 400,
always as JSON, and the body is never logged. The departure is stored before
the reply; finding the AM in Slack happens after it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from bot.answers import Context
from bot.app import Core
from bot.crm import CrmError, read_crm_departure
from storage.records import Departure

log = logging.getLogger("sendoff.webhook")

TIMESTAMP_HEADER = "X-Sendoff-Timestamp"
SIGNATURE_HEADER = "X-Sendoff-Signature"
MAX_AGE_SECONDS = 300


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    if not timestamp or not signature:
        raise Rejected(401, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not timestamp.isdigit():
        raise Rejected(401, f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise Rejected(401, "the timestamp is more than 5 minutes away from now")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise Rejected(401, "the signature does not match")


def departure_hook(
    core: Core,
    follow_up: Callable[[Departure], Coroutine[Any, Any, None]],
    spawn: Callable[[Coroutine[Any, Any, None]], None],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The route handler; ``follow_up`` (find the AM, start the interview) is ``spawn``ed after the reply."""

    async def receive(request: web.Request) -> web.Response:
        secret = core.settings.webhook_secret
        if not secret:
            return _error(503, "the webhook is off: set WEBHOOK_SECRET to turn it on")
        body = await request.read()
        try:
            verify(secret, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body,
                   core.clock.now().timestamp())  # fmt: skip
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise Rejected(400, "the body is not valid JSON") from None
            try:
                ctx = Context(core.departures.today(), core.settings.currency)
                report = read_crm_departure(data, core.prompts, ctx)
            except CrmError as err:
                raise Rejected(400, str(err)) from None
        except Rejected as err:
            log.warning("webhook request refused (%s): %s", err.status, err.reason)
            return _error(err.status, err.reason)
        started = core.departures.start_from_crm(report)
        if started is None:
            log.info("webhook event %s delivered again; nothing changed", report.event_id)
            return web.json_response({"status": "duplicate"})
        record = started.departure
        if not started.created:
            return web.json_response({"status": "already_open", "departure": record["id"]})
        log.info("CRM reported departure %s", record["id"])
        spawn(follow_up(record))
        return web.json_response({"status": "created", "departure": record["id"]})

    return receive


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
