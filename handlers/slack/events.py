"""Events: replies in the DM, mentions in channels, App Home opened."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.command_words import guess_client
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation, slack_text


def register(app: AsyncApp) -> None:
    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
    app.event("app_home_opened")(on_home_opened)


async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """A reply in the bot's DM answers the question waiting there. Edits, bots and channels are ignored."""
    if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
        return
    talk: Conversation = context["talk"]
    user = event["user"]
    await talk.show(user, talk.commands.guarded(lambda: talk.turns.reply(user, slack_text(event.get("text", "")))))


async def on_mention(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """``@sendoff Acme is leaving``: offer to record it, in the thread of the mention."""
    talk: Conversation = context["talk"]
    client = guess_client(slack_text(event.get("text", "")))
    offer = talk.words.text("mention_offer", client=client) if client else talk.words.text("mention_offer_blank")
    label = talk.words.plain("mention_button", client=client) if client else talk.words.plain("mention_button_blank")
    await talk.out.call(
        "chat.postMessage",
        channel=event["channel"],
        thread_ts=event.get("thread_ts") or event["ts"],
        text=kit.fallback(offer),
        blocks=kit.offer_blocks(offer, kit.START_FROM_MENTION, label, kit.clip(client, kit.OPTION_VALUE)),
    )


async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    if event.get("tab", "home") != "home":
        return
    talk: Conversation = context["talk"]
    await talk.publish_home(event["user"])
