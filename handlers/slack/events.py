"""Events: replies in the DM, mentions in channels, App Home opened."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.command_words import guess_client
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation, slack_text


def register(app: AsyncApp) -> None:
    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
    app.event("app_home_opened")(on_home_opened)


async def on_message(event, context) -> None:
    """A reply in the bot's DM answers the question waiting there. Edits, bots and channels are ignored."""
    if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
        return
    talk: Conversation = context["talk"]
    await talk.answer_text(event["user"], event.get("text", ""))


async def on_mention(event, context) -> None:
    """``@sendoff Acme is leaving``: offer to record it, in the thread of the mention."""
    talk: Conversation = context["talk"]
    text = slack_text(event.get("text", ""))
    client = guess_client(text)
    offer = talk.say("mention_offer", client=client) if client else talk.say("mention_offer_blank")
    label = f"Record {client}" if client else "Record a departure"
    value = kit.clip(client, kit.OPTION_VALUE)
    await talk.call(
        "chat.postMessage",
        channel=event["channel"],
        thread_ts=event.get("thread_ts") or event["ts"],
        text=kit.fallback(offer),
        blocks=kit.offer_blocks(offer, kit.START_FROM_MENTION, label, value),
    )


async def on_home_opened(event, context) -> None:
    if event.get("tab", "home") != "home":
        return
    talk: Conversation = context["talk"]
    await talk.publish_home(event["user"])
