"""Modal submissions: start a departure, fill in a stage, pick an answer to change.

A field that does not parse comes back as an inline error (``response_action:
errors``); nothing is saved until every field is valid.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.answers import AnswerError, parse_client_name
from bot.departures import FormError
from bot.replies import Refusal, Result, Say
from bot.updates import TEXT_FIELD, TOPICS_FIELD, TRANSLATION_FIELD, UpdateError
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation
from storage.records import Source

FALLBACK_ERROR_BLOCK = "client"
SOURCES = {s.value: s for s in (Source.SLACK, Source.MENTION, Source.SHORTCUT)}


def register(app: AsyncApp) -> None:
    app.view(kit.START_VIEW)(on_start_submitted)
    app.view(kit.FORM_VIEW)(on_form_submitted)
    app.view(kit.EDIT_VIEW)(on_edit_submitted)
    app.view(kit.UPDATE_VIEW)(on_update_submitted)


def field_values(view: dict[str, Any]) -> dict[str, str | None]:
    """block id -> what was entered there, as the text the interview engine parses."""
    values: dict[str, str | None] = {}
    for block_id, elements in view.get("state", {}).get("values", {}).items():
        element = elements.get(kit.VALUE, {})
        kind = element.get("type")
        if kind == "datepicker":
            values[block_id] = element.get("selected_date")
        elif kind in ("static_select", "radio_buttons"):
            values[block_id] = (element.get("selected_option") or {}).get("value")
        elif kind == "checkboxes":
            values[block_id] = ",".join(o["value"] for o in element.get("selected_options") or []) or None
        else:
            values[block_id] = element.get("value")
    return values


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def _inline(talk: Conversation, result: Result) -> str:
    """A refusal as one field's inline error: plain text, within Slack's limit."""
    said = next((p for p in result.parts if isinstance(p, Say)), Say("nothing_waiting"))
    return kit.clip(talk.words.plain(said.key, **{k: str(v) for k, v in said.values.items()}), 150)


async def on_start_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                             context: AsyncBoltContext) -> None:  # fmt: skip
    talk: Conversation = context["talk"]
    values = field_values(view)
    try:
        name = parse_client_name(values.get("client") or "")
    except AnswerError as err:
        await ack(response_action="errors", errors={"client": str(err)})
        return
    await ack()
    user = body["user"]["id"]
    context_text = (values.get("context") or "").strip() or None
    source = SOURCES.get(str(_metadata(view).get("src")), Source.SLACK)
    result = talk.commands.guarded(lambda: talk.commands.start(user, name, source=source, context=context_text))
    await talk.started(user, result)


async def on_form_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                            context: AsyncBoltContext) -> None:  # fmt: skip
    talk: Conversation = context["talk"]
    user = body["user"]["id"]
    departure_id = int(_metadata(view).get("d", 0))
    try:
        result = talk.turns.answer_form(user, departure_id, field_values(view))
    except FormError as err:
        await ack(response_action="errors", errors={qid: kit.clip(why, 150) for qid, why in err.errors.items()})
        return
    except Refusal as refusal:
        # Not one field's fault (the interview moved on meanwhile): said on the first field.
        first = next(iter(view.get("state", {}).get("values", {})), FALLBACK_ERROR_BLOCK)
        await ack(response_action="errors", errors={first: _inline(talk, Result.refused(refusal))})
        return
    await ack()
    await talk.show(user, result)


async def on_edit_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                            context: AsyncBoltContext) -> None:  # fmt: skip
    talk: Conversation = context["talk"]
    user = body["user"]["id"]
    question_id = field_values(view).get("question") or ""
    departure_id = int(_metadata(view).get("d", 0))
    result = talk.commands.guarded(lambda: talk.commands.edit_answer(user, departure_id, question_id))
    if result.warned:
        await ack(response_action="errors", errors={"question": _inline(talk, result)})
        return
    await ack()
    await talk.show(user, result)



async def on_update_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                              context: AsyncBoltContext) -> None:  # fmt: skip
    """An update written in the modal: refused beside the field at fault, else drafted; the author hears who would
    get it, and each other admin is asked to approve it."""
    talk: Conversation = context["talk"]
    user = body["user"]["id"]
    values = field_values(view)
    translations = {block.removeprefix(TRANSLATION_FIELD): text for block, text in values.items()
                    if block.startswith(TRANSLATION_FIELD) and text and text.strip()}  # fmt: skip
    try:
        drafted = talk.commands.draft_update(user, values.get(TEXT_FIELD) or "", values.get(TOPICS_FIELD) or "",
                                             translations)  # fmt: skip
    except UpdateError as err:
        await ack(response_action="errors", errors={err.field or TEXT_FIELD: kit.clip(str(err), 150)})
        return
    await ack()
    result = talk.commands.update_drafted(drafted)
    await talk.show(user, result)
    await talk.tell_all(result.notices)
