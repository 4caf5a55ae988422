"""``/departure``: start a departure, or one of its subcommands. Every reply is ephemeral;
the interview itself goes on in the DM."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.answers import AnswerError, parse_client_name
from bot.command_words import parse_departure
from bot.interview_turns import refused_answer
from bot.replies import Result
from handlers.slack.conversation import Conversation, slack_text


def register(app: AsyncApp) -> None:
    app.command("/departure")(on_departure)


async def on_departure(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    talk: Conversation = context["talk"]
    user = command["user_id"]
    parsed = parse_departure(slack_text(command.get("text", "")))
    if parsed.name == "start":
        try:
            name = parse_client_name(parsed.argument)
        except AnswerError as err:
            reply = talk.reply(Result([refused_answer(err)]))
            await ack(text=reply.text, blocks=reply.blocks)
            return
        # Acked before the work: the DM is opened and written to after it.
        await ack(text=talk.words.text("on_it", client=name))
        await talk.started(user, talk.commands.guarded(lambda: talk.commands.start(user, name)))
        return
    result = talk.commands.run(user, parsed)
    if result.interview is not None:
        await ack(text=talk.words.text("on_it", client=talk.departures.get(result.interview)["client"]))
        await talk.show(user, result)
        return
    reply = talk.reply(result)
    await ack(text=reply.text, blocks=reply.blocks)
