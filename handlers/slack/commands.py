"""``/departure``: start a departure, or one of its subcommands. Every reply is ephemeral;
the interview itself goes on in the DM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.answers import AnswerError, parse_client_name
from bot.command_words import Command, parse_departure
from bot.interview_turns import refused_answer
from bot.replies import Refusal, Result
from bot.reports import chart_title
from bot.updates import translation_languages as update_languages
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation, slack_text
from handlers.slack.uploads import drawn, upload


def register(app: AsyncApp) -> None:
    app.command("/departure")(on_departure)


async def on_departure(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any],
                       context: AsyncBoltContext) -> None:  # fmt: skip
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
    if parsed.name == "report":
        await on_report(ack, respond, user, parsed, talk)
        return
    if parsed.name == "update" and not parsed.argument.strip():
        # the modal: topics, the text and its translations, each checked beside its field
        await ack()
        view = kit.update_view(update_languages(talk.core))
        await talk.out.call("views.open", trigger_id=command["trigger_id"], view=view)
        return
    result = talk.commands.run(user, parsed)
    if result.interview is not None:
        await ack(text=talk.words.text("on_it", client=talk.departures.get(result.interview)["client"]))
        await talk.show(user, result)
    else:
        reply = talk.reply(result)
        await ack(text=reply.text, blocks=reply.blocks)
        await send_files(talk, user, result.files)
    # after the ack: an update's request to each admin who may approve it goes out through Slack's Web API
    await talk.tell_all(result.notices)


async def send_files(talk: Conversation, user: str, files: list[Path]) -> None:
    """Files written for ``user`` (email previews), into their DM; a refused upload is told to them."""
    if not files:
        return
    channel = await talk.out.dm_channel(user)
    if channel is None:
        return
    for path in files:
        failed = await upload(talk.out, channel, path.name, path.read_bytes(), path.name)
        if failed is not None:
            text = talk.words.text("report_upload_failed", file=path.name, error=failed)
            await talk.out.tell(user, kit.fallback(text), kit.notice_blocks(text))
            return


async def on_report(ack: AsyncAck, respond: AsyncRespond, user: str, command: Command, talk: Conversation) -> None:
    """``/departure report [period] [csv|json]``: the figures in an ephemeral reply, the chart or export in the DM.

    Words that name no period are refused in the ack. Otherwise the ack goes at once, and the figures
    (however many departures), the chart and the uploads follow it.
    """
    try:
        asked = talk.commands.report_asked(command.argument)
    except Refusal:
        # The refusal, as every command words it (with the hint for a client whose name starts with "report"):
        # the words are refused before anything is counted.
        reply = talk.reply(talk.commands.run(user, command))
        await ack(text=reply.text, blocks=reply.blocks)
        return
    await ack(text=talk.words.text("report_working", title=talk.words.plain("report_title")))
    lessons = talk.commands.lessons(user, asked)
    reply = talk.reply(talk.commands.report_result(lessons))
    await respond(text=reply.text, blocks=reply.blocks)
    channel = await talk.out.dm_channel(user)
    if channel is None:
        return
    export, name = lessons.export(), lessons.export_name
    if export is not None and name is not None:
        title = name
    else:
        export, name = await drawn(lambda: lessons.chart(talk.core.prompts.messages)), lessons.chart_name
        title = chart_title(lessons.report, talk.core.prompts.messages)
    failed = await upload(talk.out, channel, name, export, title)
    if failed is not None:
        text = talk.words.text("report_upload_failed", file=name, error=failed)
        await talk.out.tell(user, kit.fallback(text), kit.notice_blocks(text))
