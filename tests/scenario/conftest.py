"""The real app, served over real HTTP on 127.0.0.1, against the fake Slack Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import Core, build_core
from bot.clock import ManualClock
from bot.settings import Settings
from handlers.server import build_web_app, drain
from handlers.slack import build_slack_app
from tests.fakes.slack import TOKEN, FakeSlack
from tests.fakes.slack_driver import SIGNING_SECRET, SlackDriver

WEBHOOK_SECRET = "test-webhook-secret"
TEAM_CHANNEL = "C0TEAM"


@dataclass
class SlackWorld:
    core: Core
    fake: FakeSlack
    slack: SlackDriver
    url: str
    session: aiohttp.ClientSession
    web_app: web.Application

    @property
    def departures(self):
        return self.core.departures

    async def settle(self) -> None:
        """Wait for work started after a reply (a webhook's follow-up) to finish."""
        await drain(self.web_app, timeout=5)


async def start_world(settings: Settings, clock: ManualClock, *, background: bool = False) -> AsyncIterator[SlackWorld]:
    fake = FakeSlack()
    api_url = await fake.start()
    fake.add_user("U0ANN", "ann@example.com")
    fake.add_user("U0BOB", "bob@example.com")
    fake.add_user("U0BOSS", "boss@example.com")
    settings = replace(settings, slack_api_url=api_url)
    core = build_core(settings, clock=clock)
    web_app = build_web_app(core, build_slack_app(core, process_before_response=not background))
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    session = aiohttp.ClientSession()
    try:
        yield SlackWorld(core, fake, SlackDriver(url, fake, session), url, session, web_app)
        await drain(web_app, timeout=5)
    finally:
        await session.close()
        await runner.cleanup()
        await fake.stop()
        core.close()
    assert fake.problems == [], "a payload broke Block Kit limits"


@pytest.fixture
def slack_settings(tmp_path: Path) -> Settings:
    return Settings(
        db_path=tmp_path / "data" / "sendoff.json",
        timezone="Europe/Berlin",
        channel=TEAM_CHANNEL,
        admins=frozenset({"U0BOSS"}),
        slack_bot_token=TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
async def world(slack_settings: Settings, clock: ManualClock) -> AsyncIterator[SlackWorld]:
    async for built in start_world(slack_settings, clock):
        yield built
