"""``/departure``: start a departure, or one of its subcommands. Every reply is ephemeral."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.answers import AnswerError, parse_client_name
from bot.command_words import Command, parse_departure, split_edit_argument
from bot.departures import DepartureError, status_label
from bot.reports import build_report, render_report_text
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation, slack_text
from storage import Record

HELP = """*`/departure <client>`*: record that a client is leaving; I interview you in our DM
*`/departure list`*: the open departures and their progress
*`/departure status <client>`*: one departure (its details, if it is yours)
*`/departure resume <client>`*: continue an interview, parked stages too
*`/departure edit <client> <question>`*: change an answer (the history is kept)
*`/departure report`*: reasons, save rate, revenue and workload
*`/departure retained|departed|wonback <client>`*: record how it ended
*`/departure optout <client>`*: the client wants no more messages
*`/departure paid|signed <client>`*: the final payment came in; the agreement is signed by both
*`/departure forget <client>`*: erase the client's personal data (asks first)
In the DM, press the buttons or reply with the answer; `skip`, `back` and `later` work too."""

LIST_ROWS = 40


def register(app: AsyncApp) -> None:
    app.command("/departure")(on_departure)


async def on_departure(ack, command, context) -> None:
    talk: Conversation = context["talk"]
    user = command["user_id"]
    parsed = parse_departure(slack_text(command.get("text", "")))
    try:
        if parsed.name == "start":
            name = parse_client_name(parsed.argument)
            await ack(text=talk.say("on_it", client=name))
            await talk.start(user, name, source="slack")
            return
        if parsed.name in ("resume", "edit"):
            await _in_dm(ack, talk, user, parsed)
            return
        reply = REPLIES.get(parsed.name)
        if reply is None:
            await ack(text=HELP)
            return
        text, blocks = reply(talk, user, parsed.argument)
    except (AnswerError, DepartureError) as err:
        await ack(text=f":warning: {kit.escape(err)}")
        return
    await ack(text=kit.fallback(text), blocks=blocks)


async def _in_dm(ack, talk: Conversation, user: str, parsed: Command) -> None:
    """resume and edit: checked here, so the refusal shows where they typed; asked in the DM."""
    if parsed.name == "edit":
        client, question_id = split_edit_argument(parsed.argument)
        if not client or not question_id:
            await ack(text="Usage: `/departure edit <client> <question>`, such as `/departure edit Acme reason`.")
            return
        record = _find(talk, client)
        if talk.core.prompts.script.question(question_id) is None:
            ids = ", ".join(talk.departures.question_ids())
            await ack(text=talk.say("unknown_question", question=question_id, questions=ids))
            return
        # Checked before the ack, so that a question that does not apply is refused where it was typed.
        talk.departures.edit(record, question_id, actor=user)
        await ack(text=talk.say("on_it", client=record["client"]))
        await talk.ask(talk.departures.get(record["id"]))
        return
    record = _find(talk, parsed.argument)
    talk.departures.require_access(record, user)
    await ack(text=talk.say("on_it", client=record["client"]))
    await talk.resume(user, record)


def _find(talk: Conversation, client: str) -> Record:
    if not client.strip():
        raise DepartureError("Name the client, as in `/departure status Acme Corp`.")
    record = talk.departures.find(client)
    if record is None:
        raise DepartureError(talk.messages.render("unknown_client", client=client.strip()))
    return record


Reply = tuple[str, list[dict] | None]


def _help(talk: Conversation, user: str, _: str) -> Reply:
    return HELP, None


def _list(talk: Conversation, user: str, _: str) -> Reply:
    records = talk.departures.list_open()
    if not records:
        return talk.say("no_open"), None
    lines = [
        f"• *{kit.escape(r['client'])}*: {status_label(r['status'])}, {talk.departures.progress(r)} answered, "
        f"AM {kit.user_ref(r['am'])}"
        for r in records[-LIST_ROWS:]
    ]
    heading = f"*Open departures* ({len(records)})" + (f", the latest {LIST_ROWS}" if len(records) > LIST_ROWS else "")
    text = "\n".join([heading, *lines])
    return text, kit.notice_blocks(text)


def _status(talk: Conversation, user: str, client: str) -> Reply:
    record = _find(talk, client)
    if talk.departures.may_see(record, user):
        blocks = talk.summary(record, personal=True)
        return talk.say("summary_title", client=record["client"]), blocks
    text = (
        f"*{kit.escape(record['client'])}*: {status_label(record['status'])}, AM {kit.user_ref(record['am'])}. "
        + talk.say("not_allowed", client=record["client"])
    )
    return text, None


def _report(talk: Conversation, user: str, _: str) -> Reply:
    text = render_report_text(build_report(talk.departures))
    return "Departures report", kit.preformatted_blocks(text)


def _set_status(status: str):
    def reply(talk: Conversation, user: str, client: str) -> Reply:
        record = talk.departures.set_status(_find(talk, client), status, actor=user)
        return talk.say("status_changed", client=record["client"], status=status_label(status)), None

    return reply


def _paid(talk: Conversation, user: str, client: str) -> Reply:
    record = talk.departures.mark_paid(_find(talk, client), actor=user)
    return f"Noted: *{kit.escape(record['client'])}* has paid. No more payment reminders.", None


def _signed(talk: Conversation, user: str, client: str) -> Reply:
    record = talk.departures.mark_signed(_find(talk, client), actor=user)
    return f"Noted: the agreement with *{kit.escape(record['client'])}* is signed.", None


def _optout(talk: Conversation, user: str, client: str) -> Reply:
    record = talk.departures.opt_out(_find(talk, client), actor=user)
    return talk.say("opted_out", client=record["client"]), None


def _forget(talk: Conversation, user: str, client: str) -> Reply:
    record = _find(talk, client)
    talk.departures.require_access(record, user)
    question = talk.say("confirm_forget", client=record["client"])
    return question, kit.confirm_forget_blocks(question, record["id"])


REPLIES = {
    "help": _help,
    "list": _list,
    "status": _status,
    "report": _report,
    "retained": _set_status("retained"),
    "departed": _set_status("departed"),
    "wonback": _set_status("won_back"),
    "optout": _optout,
    "paid": _paid,
    "signed": _signed,
    "forget": _forget,
}
