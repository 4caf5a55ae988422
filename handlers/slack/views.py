"""Modal submissions: start a departure, fill in a stage, pick an answer to change.

A field that does not parse comes back as an inline error (``response_action:
errors``); nothing is saved until every field is valid.
"""

from __future__ import annotations

import json

from slack_bolt.async_app import AsyncApp

from bot.answers import AnswerError, parse_client_name
from bot.departures import DepartureError, FormError
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation

FALLBACK_ERROR_BLOCK = "client"


def register(app: AsyncApp) -> None:
    app.view(kit.START_VIEW)(on_start_submitted)
    app.view(kit.FORM_VIEW)(on_form_submitted)
    app.view(kit.EDIT_VIEW)(on_edit_submitted)


def field_values(view: dict) -> dict[str, str | None]:
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


def _metadata(view: dict) -> dict:
    try:
        return json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}


async def on_start_submitted(ack, body, view, context) -> None:
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
    await talk.start(user, name, source=_metadata(view).get("src", "slack"), context=context_text)


async def on_form_submitted(ack, body, view, context) -> None:
    talk: Conversation = context["talk"]
    user = body["user"]["id"]
    departure_id = int(_metadata(view).get("d", 0))
    try:
        record = talk.departures.get(departure_id)
        talk.departures.require_access(record, user)
        record, outcome = talk.departures.answer_form(record, field_values(view), actor=user)
    except FormError as err:
        await ack(response_action="errors", errors={qid: kit.clip(why, 150) for qid, why in err.errors.items()})
        return
    except (AnswerError, DepartureError) as err:
        # Not one field's fault (the interview moved on meanwhile): said on the first field.
        first = next(iter(view.get("state", {}).get("values", {})), FALLBACK_ERROR_BLOCK)
        await ack(response_action="errors", errors={first: kit.clip(str(err), 150)})
        return
    await ack()
    await talk.after_form(user, record, outcome)


async def on_edit_submitted(ack, body, view, context) -> None:
    talk: Conversation = context["talk"]
    user = body["user"]["id"]
    question_id = field_values(view).get("question") or ""
    try:
        record = talk.departures.get(int(_metadata(view).get("d", 0)))
        talk.departures.edit(record, question_id, actor=user)
    except (AnswerError, DepartureError) as err:
        await ack(response_action="errors", errors={"question": kit.clip(str(err), 150)})
        return
    await ack()
    await talk.ask(talk.departures.get(record["id"]))
