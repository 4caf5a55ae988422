"""The fake Slack holds the app to Slack's rules for trigger ids, so the scenario tests can rely on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import TOKEN, TRIGGER_LIFETIME, FakeSlack

MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Departure"}, "blocks": []}


class Ticker:
    """The fake's trigger clock, moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def fake(ticker: Ticker) -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(now=ticker)
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=f"{fake.url}/api/")


async def open_error(client: AsyncWebClient, trigger: str) -> str | None:
    try:
        await client.views_open(trigger_id=trigger, view=MODAL)
    except SlackApiError as err:
        return str(err.response["error"])
    return None


async def test_a_fresh_trigger_opens_one_view_only(fake, client):
    trigger = fake.issue_trigger()
    assert await open_error(client, trigger) is None
    assert await open_error(client, trigger) == "invalid_trigger_id"
    assert [c.ok for c in fake.calls if c.method == "views.open"] == [True, False]


async def test_a_trigger_expires_three_seconds_after_it_was_issued(fake, client, ticker):
    on_time, late = fake.issue_trigger(), fake.issue_trigger()
    ticker.seconds += TRIGGER_LIFETIME - 0.1
    assert await open_error(client, on_time) is None
    ticker.seconds += 0.2
    assert await open_error(client, late) == "expired_trigger_id"


async def test_a_trigger_the_fake_never_issued_is_invalid(fake, client):
    assert await open_error(client, "trigger-7") == "invalid_trigger_id"
    assert await open_error(client, "") == "invalid_trigger_id"
