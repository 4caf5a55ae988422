"""Any body on any HTTP route gets a clear answer, never a 500, and nothing half-written."""

from __future__ import annotations

import json

import pytest

from tests.scenario.conftest import WEBHOOK_SECRET, SlackWorld

GARBAGE = [
    b"",
    b"\xff\xfe\x00garbage",
    b"payload=%7Bnot-json",
    b"payload=%5B1%2C2%5D",
    b'{"type": "event_callback"}',
    b'{"type": "event_callback", "event": "x", "event_id": 5}',
    b"command=%2Fdeparture&text=%ff%fe",
    "text=\udc80".encode("utf-8", "surrogateescape"),
    json.dumps({"type": "block_actions", "user": None, "actions": [{}]}).encode(),
    b"payload=" + json.dumps({"type": "view_submission", "view": {"callback_id": "stage_form"}}).encode(),
]


@pytest.mark.parametrize("body", GARBAGE)
async def test_a_signed_slack_request_with_any_body_is_not_a_server_error(world: SlackWorld, body: bytes):
    for content_type in ("application/x-www-form-urlencoded", "application/json"):
        reply = await world.slack.post(body, content_type)
        assert reply.status < 500, (body, content_type, reply.text)
    assert world.core.store.count_departures() == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"client": "Acme \\ud800", "account_manager_email": "ann@example.com"}',
        b'{"client": "Acme", "account_manager_email": "ann\\udfff@example.com"}',
        b'{"client": ["Acme"], "account_manager_email": "ann@example.com"}',
        b'{"client": "Acme", "account_manager_email": "ann@example.com", "mrr": 1e999}',
        b'{"client": "Acme", "account_manager_email": "ann@example.com", "event_id": {"a": 1}}',
        b"\xff\xfe",
        b"[]",
        b"null",
    ],
)
async def test_a_signed_webhook_with_any_body_gets_a_clear_refusal(world: SlackWorld, body: bytes):
    from handlers.webhook import sign

    timestamp = str(int(world.core.clock.now().timestamp()))
    headers = {"Content-Type": "application/json", "X-Sendoff-Timestamp": timestamp,
               "X-Sendoff-Signature": sign(WEBHOOK_SECRET, timestamp, body)}  # fmt: skip
    async with world.session.post(f"{world.url}/hooks/departure", data=body, headers=headers) as response:
        assert response.status == 400, await response.text()
        assert "error" in await response.json()
    assert world.core.store.count_departures() == 0


@pytest.mark.parametrize("query", ["d=%ff&s=1", "d=1&s=%ud800", "d=99999999999999999999&s=x", ""])
async def test_the_unsubscribe_page_answers_any_query_without_a_server_error(world: SlackWorld, query: str):
    for method in ("GET", "POST"):
        async with world.session.request(method, f"{world.url}/unsubscribe?{query}", data=b"\xff") as response:
            assert response.status == 400
