"""Buttons, selects and pickers: each is acked first, then handled."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from bot.departures import DepartureError, status_label
from handlers.slack import blocks as kit
from handlers.slack import nudges
from handlers.slack.conversation import Conversation


def register(app: AsyncApp) -> None:
    # One listener routes every action: Bolt tries its listeners one by one, and acks wait for that.
    app.action(re.compile(".+"))(on_action)


async def on_action(ack, action, body, context, respond) -> None:
    action_id = action["action_id"]
    handler = ROUTES.get(action_id) or (on_choose if kit.CHOOSE_PATTERN.match(action_id) else None)
    if action_id.startswith(kit.NUDGE_PREFIX):
        handler = nudges.on_nudge
    elif action_id.startswith(kit.EMAIL_PREFIX):
        handler = nudges.on_email
    if handler is None:
        await ack()
        return
    await handler(ack, action, body, context["talk"], respond)


def _ref(text: str) -> tuple[int, str, str]:
    """``"12:reason:price"`` or ``"12:reason"`` -> (12, "reason", "price" or "")."""
    departure, _, rest = text.partition(":")
    question, _, value = rest.partition(":")
    return int(departure), question, value


async def on_ack_only(ack, action, body, talk: Conversation, respond) -> None:
    await ack()


async def on_choose(ack, action, body, talk: Conversation, respond) -> None:
    """An option button, a select or a date picker answered the question."""
    await ack()
    kind = action["type"]
    if kind == "button":
        departure_id, question_id, raw = _ref(action["value"])
    else:
        departure_id, question_id, _ = _ref(action["block_id"].removeprefix("answer:"))
        raw = action["selected_date"] if kind == "datepicker" else action["selected_option"]["value"]
    await talk.answer(body["user"]["id"], departure_id, question_id, raw)


async def on_choose_many(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    departure_id, question_id, _ = _ref(action["value"])
    block = body.get("state", {}).get("values", {}).get(f"answer:{departure_id}:{question_id}", {})
    picked = [o["value"] for o in block.get(kit.CHOOSE_MANY, {}).get("selected_options", [])]
    await talk.answer(body["user"]["id"], departure_id, question_id, ",".join(picked))


async def on_control(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    departure_id, question_id, _ = _ref(action["value"])
    await talk.control(body["user"]["id"], departure_id, question_id, action["action_id"])


async def on_open_form(ack, action, body, talk: Conversation, respond) -> None:
    """The rest of the current stage as a modal; it must open within the trigger's 3 s."""
    await ack()
    departure_id, _, _ = _ref(action["value"])
    view = await talk.form(body["user"]["id"], departure_id)
    if view is not None:
        await talk.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_start_from_mention(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    message = body.get("message", {})
    view = kit.start_view(action.get("value", ""), "", src="mention", channel=body.get("channel", {}).get("id"),
                          ts=message.get("ts"))  # fmt: skip
    await talk.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_claim(ack, action, body, talk: Conversation, respond) -> None:
    """Someone takes on a CRM departure whose account manager was not found in Slack."""
    await ack()
    user = body["user"]["id"]
    try:
        record = talk.departures.assign(talk.departures.get(int(action["value"])), user, actor=user)
    except DepartureError as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")
        return
    claimed = talk.messages.render("claimed", client=kit.escape(record["client"]), user=kit.user_ref(user))
    channel, ts = body.get("channel", {}).get("id"), body.get("message", {}).get("ts")
    if channel and ts:
        await talk.call("chat.update", channel=channel, ts=ts, text=claimed, blocks=kit.notice_blocks(claimed))
    await talk.tell(user, talk.say("crm_reported", client=record["client"]))
    await talk.ask(record)


async def on_forget_confirm(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    user = body["user"]["id"]
    try:
        record = talk.departures.get(int(action["value"]))
        name = record["client"]
        talk.departures.forget(record, actor=user)
        text = talk.say("forgotten", client=name)
    except DepartureError as err:
        text = f":warning: {kit.escape(err)}"
    await respond(text=text, replace_original=True)


async def on_forget_cancel(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    await respond(text="Nothing was erased.", replace_original=True)


async def on_home_continue(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    user = body["user"]["id"]
    try:
        await talk.resume(user, talk.departures.get(int(action["value"])))
    except DepartureError as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")


async def on_home_edit(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    view = await talk.edit_picker(body["user"]["id"], int(action["value"]))
    if view is not None:
        await talk.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_home_status(ack, action, body, talk: Conversation, respond) -> None:
    await ack()
    user = body["user"]["id"]
    status = "retained" if action["action_id"] == kit.HOME_RETAINED else "departed"
    try:
        record = talk.departures.set_status(talk.departures.get(int(action["value"])), status, actor=user)
        await talk.tell(user, talk.say("status_changed", client=record["client"], status=status_label(status)))
    except DepartureError as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")
    await talk.publish_home(user)


ROUTES = {
    kit.CHOOSE_SELECT: on_choose,
    kit.CHOOSE_DATE: on_choose,
    kit.CHOOSE_MANY: on_ack_only,  # ticking boxes; "Done" answers
    kit.CHOOSE_MANY_DONE: on_choose_many,
    kit.SKIP: on_control,
    kit.BACK: on_control,
    kit.LATER: on_control,
    kit.KEEP: on_control,
    kit.FORM: on_open_form,
    kit.START_FROM_MENTION: on_start_from_mention,
    kit.CLAIM: on_claim,
    kit.FORGET_CONFIRM: on_forget_confirm,
    kit.FORGET_CANCEL: on_forget_cancel,
    kit.HOME_CONTINUE: on_home_continue,
    kit.HOME_EDIT: on_home_edit,
    kit.HOME_RETAINED: on_home_status,
    kit.HOME_DEPARTED: on_home_status,
}
