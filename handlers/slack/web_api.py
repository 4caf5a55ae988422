"""The Web API side of the Slack transport: one client, DMs, and acks that go first.

Built before the core, because the notifier (Slack messages for nudges and
drafts) needs it and the core is built with its notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

log = logging.getLogger("sendoff.slack")

DEFAULT_API_URL = "https://slack.com/api/"
RATE_LIMIT_RETRIES = 3


def web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client; inside a running loop it keeps one HTTP session, so connections are reused."""
    base_url = settings.slack_api_url or DEFAULT_API_URL
    try:
        asyncio.get_running_loop()
        session: aiohttp.ClientSession | None = aiohttp.ClientSession()
    except RuntimeError:
        session = None  # the client then opens a session per call
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        session=session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


class AcksFirst:
    """Lets Web API calls made after an ack wait while Slack requests keep arriving.

    Slack gives each request 3 s to be acked, and the listeners' later work
    shares the event loop with those acks; under a burst, the acks go first.
    "Quiet" is no request in flight and none for QUIET_SECONDS; the wait is
    bounded by MAX_WAIT_SECONDS, so that work is never held up for long.
    """

    QUIET_SECONDS = 0.05
    MAX_WAIT_SECONDS = 1.0

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.in_flight = 0
        self._last_seen = 0.0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._check: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around one Slack request, from its arrival to its reply."""
        self.in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._last_seen = asyncio.get_running_loop().time()
            if self.in_flight == 0 and self._check is None:
                self._check = asyncio.get_running_loop().call_later(self.QUIET_SECONDS, self._check_quiet)

    def _check_quiet(self) -> None:
        self._check = None
        if self.in_flight:
            return  # the request in flight checks again when it ends
        loop = asyncio.get_running_loop()
        left = self._last_seen + self.QUIET_SECONDS - loop.time()
        if left > 0:
            self._check = loop.call_later(left, self._check_quiet)
        else:
            self._quiet.set()

    async def wait(self) -> None:
        if self.enabled and not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.MAX_WAIT_SECONDS)


class SlackOut:
    """Web API calls made after an ack: errors are logged, never raised (``post`` raises, for the notifier)."""

    def __init__(self, client: AsyncWebClient, acks: AcksFirst) -> None:
        self.client = client
        self.acks = acks
        self._dm_channels: dict[str, str] = {}

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """One Web API call; a Slack error is logged and gives None."""
        await self.acks.wait()
        try:
            response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as err:
            log.warning("Slack %s failed: %s", method, err.response.get("error", err.response.status_code))
            return None
        return response.data if isinstance(response.data, dict) else None

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        """chat.postMessage that raises SlackApiError, for callers that must know it failed."""
        await self.acks.wait()
        response = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return response.data if isinstance(response.data, dict) else {}

    async def dm_channel(self, user: str) -> str | None:
        channel = self._dm_channels.get(user)
        if channel is None:
            opened = await self.call("conversations.open", users=user)
            if opened is None:
                return None
            channel = str(opened["channel"]["id"])
            self._dm_channels[user] = channel
        return channel

    async def tell(self, user: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A DM to ``user``; ``text`` is escaped mrkdwn."""
        channel = await self.dm_channel(user)
        if channel is None:
            return None
        return await self.call("chat.postMessage", channel=channel, text=text, blocks=blocks)
