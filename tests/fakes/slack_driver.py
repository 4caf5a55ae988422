"""Slack's side of the conversation: signed requests to the app, as Slack sends them.

Every payload that carries a trigger id gets a fresh one from the fake, which
then holds the app to Slack's rules for it (one view, within 3 seconds).

Also "a person": ``answer_like_a_person`` reads the latest question in the
DM (from what reached the fake Web API) and clicks, picks or types.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack import FakeSlack

SIGNING_SECRET = "test-signing-secret"
TEAM = "T0TEST"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class SlackDriver:
    def __init__(self, app_url: str, fake: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.app_url = app_url
        self.fake = fake
        self.session = session
        self._ids = itertools.count(1)

    # -- transport ----------------------------------------------------------------------
    async def post(self, body: bytes, content_type: str, *, signed: bool = True, age: int = 0,
                   secret: str = SIGNING_SECRET, headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        timestamp = str(int(time.time()) - age)
        sent = {"Content-Type": content_type, **(headers or {})}
        if signed:
            sent["X-Slack-Request-Timestamp"] = timestamp
            sent["X-Slack-Signature"] = slack_signature(secret, timestamp, body)
        async with self.session.post(f"{self.app_url}/slack/events", data=body, headers=sent) as response:
            return Reply(response.status, await response.text())

    async def form(self, fields: dict[str, str], **kwargs: Any) -> Reply:
        return await self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded", **kwargs)

    async def interactive(self, payload: dict[str, Any], **kwargs: Any) -> Reply:
        return await self.form({"payload": json.dumps(payload)}, **kwargs)

    # -- what Slack sends ---------------------------------------------------------------
    async def command(self, text: str, user: str = "U0ANN", channel: str = "C0GEN", **kwargs: Any) -> Reply:
        return await self.form(
            {
                "token": "legacy", "team_id": TEAM, "channel_id": channel, "channel_name": "general",
                "user_id": user, "user_name": user.lower(), "command": "/departure", "text": text,
                "response_url": self.fake.response_url(f"cmd{next(self._ids)}"),
                "trigger_id": self.fake.issue_trigger(), "api_app_id": "A0TEST",
            },
            **kwargs,
        )  # fmt: skip

    async def event(self, event: dict[str, Any], event_id: str | None = None, **kwargs: Any) -> Reply:
        body = {
            "token": "legacy", "team_id": TEAM, "api_app_id": "A0TEST", "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):08d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": "U0BOT", "is_bot": True}], "event": event,
        }  # fmt: skip
        return await self.post(json.dumps(body).encode(), "application/json", **kwargs)

    async def dm(self, text: str, user: str = "U0ANN", event_id: str | None = None) -> Reply:
        ts = f"1800000000.{next(self._ids):06d}"
        event = {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text,
                 "ts": ts, "event_ts": ts}  # fmt: skip
        return await self.event(event, event_id)

    async def block_action(self, user: str, action: dict[str, Any], *, channel: str | None = None,
                           message: dict[str, Any] | None = None, state: dict | None = None,
                           container: dict | None = None) -> Reply:  # fmt: skip
        payload = {
            "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0TEST", "trigger_id": self.fake.issue_trigger(),
            "response_url": self.fake.response_url(f"act{next(self._ids)}"),
            "container": container or {"type": "message", "channel_id": channel or f"D{user}"},
            "channel": {"id": channel or f"D{user}"}, "message": message or {"ts": "1.1", "blocks": []},
            "actions": [{**action, "action_ts": "1.2"}],
        }  # fmt: skip
        if state is not None:
            payload["state"] = state
        return await self.interactive(payload)

    async def click(self, user: str, block_id: str, element: dict[str, Any], **extra: Any) -> Reply:
        """Press ``element`` (a button, or a select/datepicker with ``extra`` as its choice)."""
        action = {"type": element["type"], "action_id": element["action_id"], "block_id": block_id, **extra}
        if "value" in element:
            action["value"] = element["value"]
        return await self.block_action(user, action)

    async def home_click(self, user: str, action_id: str, value: str) -> Reply:
        return await self.block_action(
            user,
            {"type": "button", "action_id": action_id, "block_id": "home", "value": value},
            container={"type": "view", "view_id": "VHOME"},
        )

    async def submit(self, user: str, view: dict[str, Any], values: dict[str, dict[str, Any]]) -> Reply:
        """Submit ``view`` (as the app opened it) with ``values``: block id -> the element's state."""
        state = {block_id: {"value": element} for block_id, element in values.items()}
        payload = {
            "type": "view_submission", "team": {"id": TEAM}, "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0TEST", "trigger_id": self.fake.issue_trigger(),
            "view": {**view, "id": "V1", "state": {"values": state}},
        }  # fmt: skip
        return await self.interactive(payload)

    async def shortcut(self, user: str, callback_id: str, message_text: str) -> Reply:
        payload = {
            "type": "message_action", "callback_id": callback_id, "team": {"id": TEAM},
            "user": {"id": user, "team_id": TEAM}, "channel": {"id": "C0GEN"}, "api_app_id": "A0TEST",
            "trigger_id": self.fake.issue_trigger(), "response_url": self.fake.response_url("sc"),
            "message_ts": "1.3", "message": {"type": "message", "text": message_text, "ts": "1.3", "user": "U0X"},
        }  # fmt: skip
        return await self.interactive(payload)

    # -- reading the DM -----------------------------------------------------------------
    def questions(self, user: str = "U0ANN") -> list[dict[str, Any]]:
        """Question messages posted in ``user``'s DM, oldest first."""
        return [m for m in self.fake.messages_to(f"D{user}") if _block(m, "controls:") is not None]

    def last_question(self, user: str = "U0ANN") -> dict[str, Any]:
        found = self.questions(user)
        assert found, "no question was posted in the DM"
        return found[-1]

    def waiting_question_id(self, user: str = "U0ANN") -> str:
        """The id of the question in the latest question message."""
        return _block(self.last_question(user), "ask:")["block_id"].rsplit(":", 1)[1]

    async def answer_like_a_person(self, user: str = "U0ANN", answers: dict[str, str] | None = None) -> str:
        """Answer the latest question as a person would: click an option, pick a date, or type a reply.

        ``answers`` maps question ids to an option id, a date or a typed reply; without one
        the first option, 2026-11-20, or "Fine" is given. Returns what was done.
        """
        message = self.last_question(user)
        wanted = (answers or {}).get(self.waiting_question_id(user))
        answer = _block(message, "answer:")
        if answer is None:
            typed = wanted or "Fine"
            await self.dm(typed, user)
            return f"typed {typed}"
        element = answer["elements"][0]
        if element["type"] == "button":
            buttons = answer["elements"]
            chosen = next((b for b in buttons if b["value"].endswith(f":{wanted}")), buttons[0])
            await self.click(user, answer["block_id"], chosen)
            return f"clicked {chosen['text']['text']}"
        if element["type"] == "static_select":
            options = element["options"]
            option = next((o for o in options if o["value"] == wanted), options[0])
            await self.click(user, answer["block_id"], element, selected_option=option)
            return f"selected {option['text']['text']}"
        if element["type"] == "datepicker":
            day = wanted or "2026-11-20"
            await self.click(user, answer["block_id"], element, selected_date=day)
            return f"picked {day}"
        raise AssertionError(f"cannot answer {element['type']}")

    async def press(self, user: str, action_id: str) -> Reply:
        """Press a control (skip, back, later, form) on the latest question."""
        message = self.last_question(user)
        controls = _block(message, "controls:")
        element = next(e for e in controls["elements"] if e["action_id"] == action_id)
        return await self.click(user, controls["block_id"], element)

    async def press_in(self, user: str, message: dict[str, Any], action_id: str) -> Reply:
        """Press the button ``action_id`` on a posted ``message`` (a nudge, a draft), as Slack sends it."""
        blocks = message.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        for block in blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    action = {"type": "button", "action_id": action_id, "block_id": block.get("block_id", "b"),
                              "value": element.get("value", "")}  # fmt: skip
                    shown = {"ts": "1.1", "text": message.get("text", ""), "blocks": blocks}
                    return await self.block_action(user, action, channel=message.get("channel"), message=shown)
        raise AssertionError(f"no button {action_id} in the message")


def _block(message: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return next((b for b in blocks if str(b.get("block_id", "")).startswith(prefix)), None)
