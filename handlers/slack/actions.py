"""Buttons, selects and pickers: each is acked first, then handed to bot/."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.interview_turns import Control
from bot.replies import Confirmation, Refusal, Result
from handlers.slack import blocks as kit
from handlers.slack import nudges
from handlers.slack.conversation import Conversation
from storage.records import Status

Handler = Callable[[AsyncAck, dict[str, Any], dict[str, Any], Conversation, AsyncRespond], Awaitable[None]]


def register(app: AsyncApp) -> None:
    # One listener routes every action: Bolt tries its listeners one by one, and acks wait for that.
    app.action(re.compile(".+"))(on_action)


async def on_action(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext,
                    respond: AsyncRespond) -> None:  # fmt: skip
    action_id = action["action_id"]
    handler: Handler | None = ROUTES.get(action_id) or (on_choose if kit.CHOOSE_PATTERN.match(action_id) else None)
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


def _user(body: dict[str, Any]) -> str:
    return str(body["user"]["id"])


async def on_ack_only(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                      respond: AsyncRespond) -> None:  # fmt: skip
    await ack()


async def on_choose(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                    respond: AsyncRespond) -> None:  # fmt: skip
    """An option button, a select or a date picker answered the question."""
    await ack()
    kind = action["type"]
    if kind == "button":
        departure_id, question_id, raw = _ref(action["value"])
    else:
        departure_id, question_id, _ = _ref(action["block_id"].removeprefix("answer:"))
        raw = action["selected_date"] if kind == "datepicker" else action["selected_option"]["value"]
    user = _user(body)
    await talk.show(user, talk.turns.answer(user, departure_id, question_id, raw))


async def on_choose_many(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                         respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    departure_id, question_id, _ = _ref(action["value"])
    block = body.get("state", {}).get("values", {}).get(f"answer:{departure_id}:{question_id}", {})
    picked = [o["value"] for o in block.get(kit.CHOOSE_MANY, {}).get("selected_options", [])]
    user = _user(body)
    await talk.show(user, talk.turns.answer(user, departure_id, question_id, ",".join(picked)))


async def on_control(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                     respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    departure_id, question_id, _ = _ref(action["value"])
    user = _user(body)
    await talk.show(user, talk.turns.control(user, departure_id, question_id, Control(action["action_id"])))


async def on_open_form(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                       respond: AsyncRespond) -> None:  # fmt: skip
    """The rest of the current stage as a modal; it must open within the trigger's 3 s."""
    await ack()
    departure_id, _, _ = _ref(action["value"])
    view = await talk.form(_user(body), departure_id)
    if view is not None:
        await talk.out.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_start_from_mention(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                                respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    message = body.get("message", {})
    view = kit.start_view(action.get("value", ""), "", src="mention", channel=body.get("channel", {}).get("id"),
                          ts=message.get("ts"))  # fmt: skip
    await talk.out.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_claim(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                   respond: AsyncRespond) -> None:  # fmt: skip
    """Someone takes on a CRM departure whose account manager was not found in Slack."""
    await ack()
    user = _user(body)
    try:
        record = talk.departures.assign(talk.departures.get(int(action["value"])), user, actor=user)
    except Refusal as refusal:
        await talk.show(user, Result.refused(refusal))
        return
    claimed = talk.words.text("claimed", client=record["client"], user=kit.user_ref(user))
    channel, ts = body.get("channel", {}).get("id"), body.get("message", {}).get("ts")
    if channel and ts:
        await talk.out.call("chat.update", channel=channel, ts=ts, text=claimed, blocks=kit.notice_blocks(claimed))
    await talk.claimed(user, record)


async def on_confirm(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                     respond: AsyncRespond) -> None:  # fmt: skip
    """Yes or Cancel on a question of the bot's own (erase a client's data?)."""
    await ack()
    what, _, departure = action["value"].partition(":")
    yes = action["action_id"] == kit.CONFIRM
    result = talk.commands.confirmed(_user(body), Confirmation(what), int(departure), yes)
    reply = talk.reply(result)
    await respond(text=reply.text, blocks=reply.blocks, replace_original=True)


async def on_home_continue(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                           respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    user = _user(body)
    await talk.show(user, talk.commands.guarded(
        lambda: talk.commands.resume_departure(user, talk.departures.get(int(action["value"])))))  # fmt: skip


async def on_home_edit(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                       respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    view = await talk.edit_picker(_user(body), int(action["value"]))
    if view is not None:
        await talk.out.call("views.open", trigger_id=body["trigger_id"], view=view)


async def on_home_status(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                         respond: AsyncRespond) -> None:  # fmt: skip
    await ack()
    user = _user(body)
    status = Status.RETAINED if action["action_id"] == kit.HOME_RETAINED else Status.DEPARTED
    result = talk.commands.guarded(
        lambda: talk.commands.status_of(user, talk.departures.get(int(action["value"])), status))
    await talk.show(user, result)
    await talk.publish_home(user)


async def on_update_approve(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                            respond: AsyncRespond) -> None:  # fmt: skip
    """An admin's Approve on a request to approve an update: the request then says who approved it; a refusal
    (its author, no admin, approved already) is told to them and the button stays."""
    await ack()
    user = _user(body)
    result = talk.commands.approve(user, action.get("value") or "")
    if result.warned:
        await talk.show(user, result)
        return
    text, blocks = nudges.outcome_blocks(body, talk.words.message(result.parts).text)
    await respond(text=text, blocks=blocks, replace_original=True)


ROUTES: dict[str, Handler] = {
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
    kit.CONFIRM: on_confirm,
    kit.CANCEL: on_confirm,
    kit.HOME_CONTINUE: on_home_continue,
    kit.HOME_EDIT: on_home_edit,
    kit.HOME_RETAINED: on_home_status,
    kit.HOME_DEPARTED: on_home_status,
    kit.UPDATE_APPROVE: on_update_approve,
}
