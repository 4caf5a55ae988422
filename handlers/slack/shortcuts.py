"""The message shortcut "Report client departure": the start modal, with the message as context."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.command_words import guess_client
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation, slack_text


def register(app: AsyncApp) -> None:
    app.shortcut(kit.REPORT_SHORTCUT)(on_report_shortcut)


async def on_report_shortcut(ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    talk: Conversation = context["talk"]
    text = slack_text(shortcut.get("message", {}).get("text", ""))
    # The trigger expires 3 s after the click: the modal opens before anything else.
    view = kit.start_view(guess_client(text), text, src="shortcut")
    await talk.out.call("views.open", trigger_id=shortcut["trigger_id"], view=view)
