"""The interview over Slack: bot/'s Results shown in the AM's DM, the team channel and App Home.

Listeners parse what Slack sent, call bot.chat_commands or bot.interview_turns,
and hand the Result here after their ack. A question is posted with its
buttons and remembered, so that once it is answered its message shows the
answer instead of the buttons. A Slack error never escapes: it becomes a log
line, or a message to the person concerned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.answers import AnswerError
from bot.app import Core
from bot.chat_commands import Commands, Transport
from bot.interview_turns import Turns
from bot.notify import Notice
from bot.replies import Asked, Closed, Closing, Refusal, Result
from bot.reports import build_report, render_report_text
from handlers.slack import blocks as kit
from handlers.slack.render import Rendered, SlackWords
from handlers.slack.web_api import SlackOut
from storage.records import Departure

log = logging.getLogger("sendoff.slack")

HOME_ROWS = 20


def slack_text(text: str) -> str:
    """What a person typed, as they typed it: Slack sends &, < and > escaped."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class Conversation:
    """Everything the Slack listeners do after their ack; one per app."""

    def __init__(self, core: Core, out: SlackOut) -> None:
        self.core = core
        self.out = out
        self.departures = core.departures
        self.commands = Commands(core, Transport.SLACK)
        self.turns = Turns(core)
        self.words = SlackWords(core.prompts.messages)

    # -- showing a Result ----------------------------------------------------------------
    async def show(self, user: str, result: Result) -> None:
        """Post what ``result`` says to ``user`` in their DM, and its team parts in the team channel."""
        for part in result.parts:
            if isinstance(part, Closed):
                await self.close_prompt(part)
            elif isinstance(part, Asked):
                await self.ask(user, part)
            else:
                rendered = self.words.part(part)
                if rendered is not None:
                    await self.out.tell(user, rendered.text, rendered.blocks)
        for part in result.team:
            rendered = self.words.part(part)
            if rendered is not None:
                await self.post_to_team(user, rendered)

    async def ask(self, user: str, asked: Asked) -> None:
        """Post the question in the DM and remember where, to close it once answered."""
        record = self.departures.get(asked.departure_id)
        shown = record.get("prompt")
        if asked.repeated and shown and shown["question"] == asked.question_id:
            return  # still there, with its buttons, just above the note
        rendered = self.words.part(asked)
        assert rendered is not None
        posted = await self.out.tell(user, rendered.text, rendered.blocks)
        if posted is not None:
            self.departures.remember_prompt(record, {"channel": posted["channel"], "ts": posted["ts"],
                                                     "question": asked.question_id, "number": asked.number,
                                                     "total": asked.total})  # fmt: skip

    async def close_prompt(self, closed: Closed) -> None:
        """Replace the question's message with what became of it, so its buttons are gone."""
        record = self.departures.get(closed.departure_id)
        prompt = record.get("prompt")
        question = self.core.prompts.script.question(closed.question_id)
        if not prompt or prompt["question"] != closed.question_id or question is None:
            return
        shown = closed.shown if closed.how is Closing.ANSWERED else self.words.plain(f"closed_{closed.how}")
        asked = Asked(record["id"], question.id, record["client"], self.core.prompts.script.stage(question.stage).title,
                      prompt["number"], prompt["total"], question.text.format(client=record["client"], am=record["am"]),
                      question.kind)  # fmt: skip
        self.departures.remember_prompt(record, None)
        await self.out.call("chat.update", channel=prompt["channel"], ts=prompt["ts"],
                            text=kit.question_fallback(asked), blocks=kit.answered_blocks(asked, shown))  # fmt: skip

    async def post_to_team(self, user: str, rendered: Rendered) -> None:
        channel = self.core.settings.channel
        if not channel:
            return
        try:
            await self.out.post(channel, rendered.text, rendered.blocks)
        except SlackApiError as err:
            error = str(err.response.get("error", "unknown error"))
            log.warning("a message for %s was not posted: %s", channel, error)
            text = self.words.text("channel_failed", channel=channel, error=error)
            await self.out.tell(user, kit.fallback(text), kit.notice_blocks(text))

    def reply(self, result: Result) -> Rendered:
        """A Result as one ephemeral reply (a slash command's ack)."""
        return self.words.message(result.parts)

    # -- starting ------------------------------------------------------------------------
    async def tell_all(self, notices: Sequence[Notice]) -> None:
        """Notices for other people (an admin asked to approve an update), each as the dispatcher's notices go."""
        for notice in notices:
            await self.core.dispatcher.courier.tell(notice)

    async def started(self, user: str, result: Result) -> None:
        """A departure started in Slack: the interview in the DM, and the AM's email for Reply-To."""
        await self.show(user, result)
        if result.interview is not None:
            await self.learn_am_email(self.departures.get(result.interview))

    async def learn_am_email(self, record: Departure) -> None:
        """The AM's email from their Slack profile: client emails carry it as Reply-To."""
        if record.get("am_email"):
            return
        info = await self.out.call("users.info", user=record["am"])
        email = (info or {}).get("user", {}).get("profile", {}).get("email")
        if email:
            try:
                self.departures.set_am_email(self.departures.get(record["id"]), email)
            except AnswerError:
                log.info("the Slack profile of %s has no usable email", record["am"])

    async def crm_reported(self, record: Departure) -> None:
        """A CRM's departure: to its AM, found by email, or else up for claiming in the channel."""
        email = record.get("am_email", "")
        await self.out.acks.wait()
        try:
            found = await self.out.client.users_lookupByEmail(email=email)
            user = str(found["user"]["id"])
        except SlackApiError as err:
            log.info("CRM departure %s: no Slack user for its AM's email (%s)", record["id"],
                     err.response.get("error", "unknown error"))  # fmt: skip
            await self.offer_claim(record, email)
            return
        await self.claimed(user, self.departures.assign(record, user, actor="crm"))

    async def claimed(self, user: str, record: Departure) -> None:
        await self.show(user, self.turns.ask(record, Result().say("crm_reported", client=record["client"])))

    async def offer_claim(self, record: Departure, email: str) -> None:
        channel = self.core.settings.channel
        if not channel:
            log.warning("CRM departure %s has no AM and SENDOFF_CHANNEL is not set: claim it with "
                        "/departure resume", record["id"])  # fmt: skip
            return
        text = self.words.text("claim_needed", client=record["client"], email=email)
        await self.out.call("chat.postMessage", channel=channel, text=kit.fallback(text),
                            blocks=kit.offer_blocks(text, kit.CLAIM, self.words.plain("claim_button"),
                                                    str(record["id"])))  # fmt: skip

    # -- modals --------------------------------------------------------------------------
    async def form(self, user: str, departure_id: int) -> dict[str, Any] | None:
        """The modal for the rest of the current stage, or None (and a note) when there is none."""
        try:
            record, on_form = self.turns.form_questions(user, departure_id)
        except Refusal as refusal:
            await self.show(user, Result.refused(refusal))
            return None
        state = self.departures.state(record)
        ids = {q.id for q in on_form}
        fields = []
        for question in on_form:
            hint = None
            if question.when and any(c.question in ids for c in question.when):
                hint = self.words.plain("form_applies_if")
            elif question.skippable:
                hint = self.words.plain("form_optional")
            answer = state.answers.get(question.id)
            value = answer["value"] if answer is not None else None
            asked = self.turns.asked(record, question)
            optional = self.departures.form_optional(question, on_form)
            fields.append(kit.FormField(question_id=question.id, label=asked.text, kind=question.kind,
                                        options=asked.options, optional=optional, hint=hint,
                                        max_length=question.max_length,
                                        initial=value if isinstance(value, str) else None))  # fmt: skip
        return kit.form_view(record["id"], self.core.prompts.script.stage(on_form[0].stage).title, fields)

    async def edit_picker(self, user: str, departure_id: int) -> dict[str, Any] | None:
        try:
            record, answered = self.turns.answered_questions(user, departure_id)
        except Refusal as refusal:
            await self.show(user, Result.refused(refusal))
            return None
        return kit.edit_view(record["id"], record["client"], answered)

    # -- App Home ------------------------------------------------------------------------
    def home(self, user: str) -> dict[str, Any]:
        records = self.departures.list_open(am=user)
        rows = [
            kit.HomeRow(departure_id=r["id"], client=r["client"], status=r["status"].label,
                        progress=self.departures.progress(r), waiting=self.departures.current_question(r) is not None)
            for r in sorted(records, key=lambda r: r["updated_at"], reverse=True)[:HOME_ROWS]
        ]  # fmt: skip
        team = None
        if self.departures.access.is_admin(user):
            team = render_report_text(build_report(self.departures), self.core.prompts)
        return kit.home_view(kit.HomeContent(rows=rows, more=max(0, len(records) - HOME_ROWS), team=team))

    async def publish_home(self, user: str) -> None:
        await self.out.call("views.publish", user_id=user, view=self.home(user))
