"""The real app, served over real HTTP on 127.0.0.1, against the fake Slack Web API."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import Core
from bot.clock import ManualClock
from bot.settings import Settings
from handlers.server import build_web_app, drain
from handlers.slack.bolt_app import build_slack_app
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
    slack = build_slack_app(settings, clock=clock, process_before_response=not background)
    core = slack.core
    web_app = build_web_app(core, slack)
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


@pytest.fixture
def person_answers() -> dict[str, str]:
    """A person's answers to the default interview, by question id; anything not here gets the
    first option, 2026-11-20 for a date, or "Fine"."""
    return {
        "confirmed": "yes",
        "told_how": "meeting",
        "notified_on": "2026-11-20",
        "reason": "competitor",
        "in_their_words": "BigCo is 20% cheaper <and> faster",
        "competitor": "BigCo",
        "mrr": "1,200",
        "fixable": "no",
        "final_payment": "500",
        "final_payment_due": "2026-12-15",
        "data_ownership": "Their logo files are theirs; our templates stay ours",
        "data_by": "2026-12-20",
        "support_ends": "2027-01-31",
        "agreement_signed": "no",
        "client_requests": "Export of all reports",
        "alternative": "None",
        "consent": "yes",
        "contact_name": "Jane Roe",
        "salutation": "formal",
        "contact_email": "jane@acme.example",
        "country": "Germany",
        "language": "en",
        "greetings": "yes",
        "topics": "SEO",
        "differently": "Talk about price earlier",
        "workload": "12",
    }


# Headless Chromium from Debian's packages (.ci/run installs it), driven by Playwright: the pages people look at.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A browser to open pages in; without Chromium the test skips, except under CI, where it must run."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
