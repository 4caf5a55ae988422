"""A local fake of Slack's Web API, served by aiohttp on 127.0.0.1 in the test's own loop.

It records every call with its parsed body, checks the bearer token, answers
the methods sendoff uses, refuses payloads that break Block Kit's limits (the
limits are written out here, independently of the builders), and can be told
to answer 429 with ``Retry-After`` or an error. ``response_url`` posts land
here too, under ``/respond/<name>``. Files come as ``files_upload_v2`` sends them:
files.getUploadURLExternal hands out an upload URL on the fake, the bytes are
posted there (recorded as an ``upload`` call), and files.completeUploadExternal
shares them in a channel; ``files()`` lists what was shared, with its bytes.

Trigger ids come from the fake (``issue_trigger``), so it can hold the app to
Slack's rules for them: a trigger opens one view, within 3 seconds of the click.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

TOKEN = "xoxb-test-token"
BOT_USER = "U0BOT"
# Slack: "trigger_id ... expires in 3 seconds" and "can only be used once".
TRIGGER_LIFETIME = 3.0


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    ok: bool = True
    error: str | None = None


@dataclass
class SharedFile:
    """A file shared by files.completeUploadExternal."""

    id: str
    name: str
    title: str
    channel: str
    data: bytes


@dataclass
class Failure:
    error: str | None
    status: int
    retry_after: int | None
    times: int
    channel: str | None = None  # only calls to this channel fail


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> users.info "user"
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # Block Kit violations seen
    _failures: dict[str, list[Failure]] = field(default_factory=dict)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""
    # Seconds, for trigger ids only; a test swaps it to expire a trigger without waiting.
    now: Callable[[], float] = field(default=time.monotonic)
    _triggers: dict[str, float] = field(default_factory=dict)  # trigger id -> when it was issued
    _used_triggers: set[str] = field(default_factory=set)
    _pending_files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> name, length, bytes
    shared: list[SharedFile] = field(default_factory=list)

    # -- control --------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return f"{self.url}/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_user(self, user_id: str, email: str, tz: str = "Europe/Berlin", status_text: str = "") -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": user_id.lower(),
            "tz": tz,
            "profile": {"email": email, "status_text": status_text, "status_emoji": ""},
        }

    def fail(self, method: str, *, error: str | None = None, status: int = 200, retry_after: int | None = None,
             times: int = 1, channel: str | None = None) -> None:  # fmt: skip
        """The next ``times`` calls of ``method`` (to ``channel``) answer ``error`` (ok false) or HTTP ``status``."""
        self._failures.setdefault(method, []).append(Failure(error, status, retry_after, times, channel))

    def issue_trigger(self) -> str:
        """A trigger id, as Slack puts in a payload the moment a person clicks or types a command."""
        trigger = f"{next(self._ts)}.{int(self.now() * 1000)}.{len(self._triggers):08x}"
        self._triggers[trigger] = self.now()
        return trigger

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/respond/{name}"

    # -- reading what happened -----------------------------------------------------------
    def to(self, method: str, *, ok: bool | None = True) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def files(self, channel: str | None = None) -> list[SharedFile]:
        """The files shared (in ``channel``), in order."""
        return [f for f in self.shared if channel is None or f.channel == channel]

    def messages_to(self, channel: str) -> list[dict[str, Any]]:
        return [b for b in self.to("chat.postMessage") if b.get("channel") == channel]

    def texts_to(self, channel: str) -> list[str]:
        """Every text shown in ``channel``: the fallback text and all text in the blocks."""
        return [_all_text(b) for b in self.messages_to(channel)]

    # -- the Web API --------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await _parse(request)
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {TOKEN}":
            return self._answer(method, body, error="not_authed" if not auth else "invalid_auth")
        failures = self._failures.get(method, [])
        failure = next((f for f in failures if f.channel in (None, body.get("channel"))), None)
        if failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                failures.remove(failure)
            if failure.status != 200:
                self.calls.append(Call(method, body, ok=False, error=f"http {failure.status}"))
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                return web.json_response({"ok": False, "error": "ratelimited"}, status=failure.status, headers=headers)
            return self._answer(method, body, error=failure.error)
        problems = check_payload(method, body)
        if problems:
            self.problems += [f"{method}: {p}" for p in problems]
            return self._answer(method, body, error="invalid_blocks", extra={"errors": problems})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return self._answer(method, body, error="unknown_method")
        result = handler(body)
        if "error" in result:
            return self._answer(method, body, error=result["error"])
        return self._answer(method, body, extra=result)

    def _answer(self, method: str, body: dict, *, error: str | None = None, extra: dict | None = None) -> web.Response:
        self.calls.append(Call(method, body, ok=error is None, error=error))
        payload = {"ok": error is None, **(extra or {})}
        if error is not None:
            payload["error"] = error
        return web.json_response(payload)

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _auth_test(self, body: dict) -> dict:
        return {"url": "https://test.slack.com/", "team": "Test", "user": "sendoff", "team_id": "T0TEST",
                "user_id": BOT_USER, "bot_id": "B0BOT"}  # fmt: skip

    def _conversations_open(self, body: dict) -> dict:
        users = str(body.get("users", ""))
        if not users:
            return {"error": "users_list_not_supplied"}
        return {"channel": {"id": "D" + users.split(",")[0]}}

    def _chat_postMessage(self, body: dict) -> dict:
        channel = str(body.get("channel", ""))
        if not channel:
            return {"error": "channel_not_found"}
        ts = self._next_ts()
        return {"channel": channel, "ts": ts, "message": {"ts": ts, "text": body.get("text", "")}}

    def _chat_update(self, body: dict) -> dict:
        if not body.get("channel") or not body.get("ts"):
            return {"error": "message_not_found"}
        return {"channel": body["channel"], "ts": body["ts"]}

    def _chat_postEphemeral(self, body: dict) -> dict:
        return {"message_ts": self._next_ts()}

    def _use_trigger(self, trigger: str) -> str | None:
        """The error Slack gives for ``trigger``, or None after spending it."""
        issued = self._triggers.get(trigger)
        if issued is None or trigger in self._used_triggers:
            return "invalid_trigger_id"
        if self.now() - issued > TRIGGER_LIFETIME:
            return "expired_trigger_id"
        self._used_triggers.add(trigger)
        return None

    def _views_open(self, body: dict) -> dict:
        error = self._use_trigger(str(body.get("trigger_id", "")))
        if error is not None:
            return {"error": error}
        return {"view": {"id": f"V{next(self._ts)}", **_json(body.get("view"))}}

    _views_push = _views_open

    def _views_update(self, body: dict) -> dict:
        # Updating names the view; it needs no trigger.
        if not body.get("view_id") and not body.get("external_id"):
            return {"error": "invalid_arguments"}
        return {"view": {"id": body.get("view_id") or f"V{next(self._ts)}", **_json(body.get("view"))}}

    def _views_publish(self, body: dict) -> dict:
        if not body.get("user_id"):
            return {"error": "invalid_arguments"}
        return {"view": {"id": f"V{next(self._ts)}"}}

    def _users_info(self, body: dict) -> dict:
        user = self.users.get(str(body.get("user", "")))
        return {"user": user} if user else {"error": "user_not_found"}

    def _users_lookupByEmail(self, body: dict) -> dict:
        email = str(body.get("email", "")).lower()
        for user in self.users.values():
            if user["profile"]["email"].lower() == email:
                return {"user": user}
        return {"error": "users_not_found"}

    # -- files: what files_upload_v2 calls -------------------------------------------------
    def _files_getUploadURLExternal(self, body: dict) -> dict:
        name, length = str(body.get("filename") or ""), str(body.get("length") or "")
        if not name or not length.isdigit():
            return {"error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self._pending_files[file_id] = {"name": name, "length": int(length), "data": None}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: takes the bytes as the body of a POST, as Slack's does."""
        file_id = request.match_info["file_id"]
        data = await request.read()
        pending = self._pending_files.get(file_id)
        ok = pending is not None and pending["data"] is None and len(data) == pending["length"]
        self.calls.append(Call("upload", {"file_id": file_id, "bytes": data}, ok=ok,
                               error=None if ok else "upload refused"))  # fmt: skip
        if not ok:
            return web.Response(text="upload refused", status=400, content_type="text/plain")
        pending["data"] = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    def _files_completeUploadExternal(self, body: dict) -> dict:
        files = _json(body.get("files"))
        channel = str(body.get("channel_id") or "")
        if not isinstance(files, list) or not files:
            return {"error": "invalid_arguments"}
        if not channel or channel.startswith("#"):
            return {"error": "invalid_channel"}  # an id, never a name
        shared = []
        for item in files:
            pending = self._pending_files.get(str(item.get("id")))
            if pending is None or pending["data"] is None:
                return {"error": "file_not_found"}
            shared.append(SharedFile(item["id"], pending["name"], item.get("title") or pending["name"], channel,
                                     pending["data"]))  # fmt: skip
        self.shared += shared
        return {"files": [{"id": f.id, "name": f.name, "title": f.title} for f in shared]}

    async def _respond(self, request: web.Request) -> web.Response:
        body = await _parse(request)
        problems = _message_problems(body)
        self.problems += [f"response_url: {p}" for p in problems]
        self.calls.append(Call("response_url", body, ok=not problems))
        return web.Response(text="ok" if not problems else "invalid_blocks", status=200 if not problems else 400)


async def _parse(request: web.Request) -> dict[str, Any]:
    raw = await request.text()
    body: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json" and raw:
        body.update(json.loads(raw))
    elif raw:
        body.update(dict(parse_qsl(raw)))
    return body


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _all_text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_all_text(v) for k, v in value.items() if k in ("text", "blocks", "elements", "fields")
                        or isinstance(v, dict | list))  # fmt: skip
    if isinstance(value, list):
        return " ".join(_all_text(v) for v in value)
    return str(value) if isinstance(value, str) else ""


# -- Block Kit limits, as Slack documents them ------------------------------------------------

BLOCK_TYPES = {"section", "actions", "context", "header", "divider", "input", "image", "rich_text"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_payload(method: str, body: dict[str, Any]) -> list[str]:
    if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        return _message_problems(body)
    if method in ("views.open", "views.push", "views.update", "views.publish"):
        view = _json(body.get("view"))
        if not isinstance(view, dict):
            return ["view is missing"]
        return _view_problems(view)
    return []


def _message_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    blocks = _json(body.get("blocks")) or []
    text = body.get("text") or ""
    if not blocks and not text:
        problems.append("a message needs text or blocks")
    if len(text) > 40000:
        problems.append("text over 40000 characters")
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks in a message (limit 50)")
    for block in blocks:
        problems += _block_problems(block, surface="message")
    return problems


def _view_problems(view: dict[str, Any]) -> list[str]:
    problems = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(f"view type {kind!r}")
    for name in ("title", "submit", "close"):
        if name in view:
            problems += _text_problems(view[name], f"view {name}", 24, plain_only=True)
    if kind == "modal" and "title" not in view:
        problems.append("a modal needs a title")
    blocks = view.get("blocks") or []
    if len(blocks) > 100:
        problems.append(f"{len(blocks)} blocks in a view (limit 100)")
    if len(view.get("private_metadata") or "") > 3000:
        problems.append("private_metadata over 3000 characters")
    if len(view.get("callback_id") or "") > 255:
        problems.append("callback_id over 255 characters")
    has_input = any(b.get("type") == "input" for b in blocks)
    if kind == "modal" and has_input and "submit" not in view:
        problems.append("a modal with inputs needs a submit button")
    for block in blocks:
        problems += _block_problems(block, surface=kind or "view")
    return problems


def _text_problems(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: not a text object"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}: empty text"]
    if len(text) > limit:
        return [f"{where}: {len(text)} characters (limit {limit})"]
    return []


def _block_problems(block: dict[str, Any], surface: str) -> list[str]:
    kind = block.get("type")
    where = f"{kind} block"
    problems = []
    if kind not in BLOCK_TYPES:
        return [f"unknown block type {kind!r}"]
    if len(block.get("block_id") or "") > 255:
        problems.append(f"{where}: block_id over 255 characters")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append("section without text or fields")
        if "text" in block:
            problems += _text_problems(block["text"], where, 3000)
        fields = block.get("fields") or []
        if len(fields) > 10:
            problems.append("section with over 10 fields")
        for f in fields:
            problems += _text_problems(f, f"{where} field", 2000)
        if "accessory" in block:
            problems += _element_problems(block["accessory"], where)
    elif kind == "header":
        problems += _text_problems(block.get("text"), where, 150, plain_only=True)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            problems.append(f"{where}: {len(elements)} elements (1 to 10)")
        for e in elements:
            if e.get("type") != "image":
                problems += _text_problems(e, where, 3000)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            problems.append(f"{where}: {len(elements)} elements (1 to 25)")
        ids = [e.get("action_id") for e in elements if e.get("action_id")]
        if len(ids) != len(set(ids)):
            problems.append(f"{where}: repeated action_id")
        for e in elements:
            problems += _element_problems(e, where)
    elif kind == "input":
        if surface == "message":
            problems.append("input blocks belong in modals")
        problems += _text_problems(block.get("label"), f"{where} label", 2000, plain_only=True)
        if "hint" in block:
            problems += _text_problems(block["hint"], f"{where} hint", 2000, plain_only=True)
        if "element" not in block:
            problems.append(f"{where}: no element")
        else:
            problems += _element_problems(block["element"], where)
    return problems


def _element_problems(element: dict[str, Any], where: str) -> list[str]:
    kind = element.get("type")
    where = f"{where} {kind}"
    problems = []
    if len(element.get("action_id") or "") > 255:
        problems.append(f"{where}: action_id over 255 characters")
    if "placeholder" in element:
        problems += _text_problems(element["placeholder"], f"{where} placeholder", 150, plain_only=True)
    if kind == "button":
        problems += _text_problems(element.get("text"), where, 75, plain_only=True)
        if len(element.get("value") or "") > 2000:
            problems.append(f"{where}: value over 2000 characters")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}: style {element.get('style')!r}")
    elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes"):
        options = element.get("options") or []
        limit = 10 if kind in ("radio_buttons", "checkboxes") else 100
        if not 1 <= len(options) <= limit:
            problems.append(f"{where}: {len(options)} options (1 to {limit})")
        for option in options:
            problems += _text_problems(option.get("text"), f"{where} option", 75)
            if not option.get("value") or len(option["value"]) > 150:
                problems.append(f"{where}: option value empty or over 150 characters")
    elif kind == "datepicker":
        if "initial_date" in element and not DATE.match(str(element["initial_date"])):
            problems.append(f"{where}: initial_date must be YYYY-MM-DD")
    elif kind == "plain_text_input":
        limit = element.get("max_length", 3000)
        if limit > 3000:
            problems.append(f"{where}: max_length over 3000")
        if len(element.get("initial_value") or "") > limit:
            problems.append(f"{where}: initial_value longer than max_length")
    elif kind not in ("image", "overflow", "users_select", "conversations_select", "channels_select"):
        problems.append(f"unknown element type {kind!r}")
    return problems
