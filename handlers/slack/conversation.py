"""The interview over Slack: questions in the AM's DM, answers from buttons, pickers or replies.

Listeners call this after their ack. It asks the same engine as the console
(bot.departures) and turns its answers into Web API calls. A Slack error
never escapes: it becomes a log line, or a message to the person concerned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import AnswerError, options_for
from bot.app import Core
from bot.departures import DepartureError, FormOutcome, status_label
from bot.interview import Outcome
from bot.reports import build_report, render_report_text
from handlers.slack import blocks as kit
from prompts import Question
from storage import Record

log = logging.getLogger("sendoff.slack")

# Words a person may type in the DM instead of pressing the button.
TYPED_CONTROLS = ("skip", "back", "later")
HOME_ROWS = 20


def slack_text(text: str) -> str:
    """What a person typed, as they typed it: Slack sends &, < and > escaped."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class AcksFirst:
    """Lets Web API calls made after an ack wait while Slack requests keep arriving.

    Slack gives each request 3 s to be acked, and the listeners' later work
    shares the event loop with those acks; under a burst, the acks go first.
    "Quiet" is no request in flight and none for QUIET_SECONDS; the wait is
    bounded by MAX_WAIT_SECONDS, so that work is never held up for long.
    """

    QUIET_SECONDS = 0.05
    MAX_WAIT_SECONDS = 1.0

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.in_flight = 0
        self._last_seen = 0.0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._check: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around one Slack request, from its arrival to its reply."""
        self.in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._last_seen = asyncio.get_running_loop().time()
            if self.in_flight == 0 and self._check is None:
                self._check = asyncio.get_running_loop().call_later(self.QUIET_SECONDS, self._check_quiet)

    def _check_quiet(self) -> None:
        self._check = None
        if self.in_flight:
            return  # the request in flight checks again when it ends
        loop = asyncio.get_running_loop()
        left = self._last_seen + self.QUIET_SECONDS - loop.time()
        if left > 0:
            self._check = loop.call_later(left, self._check_quiet)
        else:
            self._quiet.set()

    async def wait(self) -> None:
        if self.enabled and not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.MAX_WAIT_SECONDS)


class Conversation:
    """Everything the Slack listeners do after their ack; one per app."""

    def __init__(self, core: Core, client: AsyncWebClient, acks: AcksFirst | None = None) -> None:
        self.core = core
        self.client = client
        self.acks = acks or AcksFirst(enabled=False)
        self.departures = core.departures
        self.messages = core.prompts.messages
        self._dm_channels: dict[str, str] = {}

    # -- saying things -------------------------------------------------------------------
    def say(self, key: str, **values: object) -> str:
        """A message from prompts/, its values escaped for mrkdwn."""
        return self.messages.render(key, escape=kit.escape, **values)

    async def call(self, method: str, **kwargs: Any) -> dict | None:
        """One Web API call; a Slack error is logged and gives None."""
        await self.acks.wait()
        try:
            response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as err:
            log.warning("Slack %s failed: %s", method, err.response.get("error", err.response.status_code))
            return None
        return response.data if isinstance(response.data, dict) else None

    async def dm_channel(self, user: str) -> str | None:
        channel = self._dm_channels.get(user)
        if channel is None:
            opened = await self.call("conversations.open", users=user)
            if opened is None:
                return None
            channel = opened["channel"]["id"]
            self._dm_channels[user] = channel
        return channel

    async def tell(self, user: str, text: str, blocks: list[dict] | None = None) -> dict | None:
        """A DM to ``user``; ``text`` is mrkdwn, already escaped."""
        channel = await self.dm_channel(user)
        if channel is None:
            return None
        return await self.call(
            "chat.postMessage", channel=channel, text=kit.fallback(text), blocks=blocks or kit.notice_blocks(text)
        )

    # -- asking --------------------------------------------------------------------------
    def asked(self, record: Record, question: Question, position: tuple[int, int] | None = None) -> kit.Asked:
        state = self.departures.state(record)
        number, total = position or self.departures.position(record, question)
        options = options_for(question, state.values())
        current = state.answers.get(question.id, {}).get("display") if state.editing == question.id else None
        return kit.Asked(
            departure_id=record["id"],
            question_id=question.id,
            client=record["client"],
            stage=self.core.prompts.script.stage(question.stage).title,
            number=number,
            total=total,
            text=question.text.format(client=record["client"], am=record["am"]),
            kind=question.kind,
            options=tuple((o.id, o.label) for o in options),
            skippable=question.skippable,
            current=current,
        )

    async def ask(self, record: Record) -> None:
        """Post the waiting question in the AM's DM and remember where, to close it once answered."""
        question = self.departures.current_question(record)
        if question is None:
            return
        asked = self.asked(record, question)
        posted = await self.tell(record["am"], kit.question_fallback(asked), kit.question_blocks(asked))
        if posted is not None:
            self.departures.remember_prompt(
                record,
                {"channel": posted["channel"], "ts": posted["ts"], "question": question.id,
                 "number": asked.number, "total": asked.total},
            )  # fmt: skip

    async def close_prompt(self, record: Record, question: Question, shown: str) -> None:
        """Replace the question's message with ``shown`` (its answer), so its buttons are gone."""
        prompt = record.get("prompt")
        if not prompt or prompt.get("question") != question.id:
            return
        asked = self.asked(record, question, (prompt["number"], prompt["total"]))
        await self.call(
            "chat.update",
            channel=prompt["channel"],
            ts=prompt["ts"],
            text=kit.question_fallback(asked),
            blocks=kit.answered_blocks(asked, shown),
        )

    # -- answering -----------------------------------------------------------------------
    def _waiting(self, user: str, departure_id: int, question_id: str) -> Record | None:
        """The departure, if ``question_id`` is the question it is waiting on and ``user`` may answer."""
        try:
            record = self.departures.get(departure_id)
        except DepartureError:
            return None
        if not self.departures.may_see(record, user):
            return None
        question = self.departures.current_question(record)
        return record if question is not None and question.id == question_id else None

    async def answer(self, user: str, departure_id: int, question_id: str, raw: str | None) -> None:
        """An answer from a button, select or picker (``raw``), or a skip (None)."""
        record = self._waiting(user, departure_id, question_id)
        if record is None:
            log.info("ignored an action on a question that is no longer waiting (%s:%s)", departure_id, question_id)
            return
        await self._settle(user, record, raw)

    async def answer_text(self, user: str, text: str) -> None:
        """A reply in the DM: answers the question waiting there, or names a control word."""
        record = self.departures.resumable(user)
        if record is None:
            await self.tell(user, "No interview is waiting for you. Type `/departure <client>` to start one.")
            return
        raw = slack_text(text).strip()
        word = raw.lower()
        question = self.departures.current_question(record)
        if word in TYPED_CONTROLS and question is not None:
            await self.control(user, record["id"], question.id, word)
            return
        if word == "" and self.departures.state(record).editing:
            await self.control(user, record["id"], question.id, "keep")
            return
        await self._settle(user, record, raw)

    async def _settle(self, user: str, record: Record, raw: str | None) -> None:
        question = self.departures.current_question(record)
        try:
            if raw is None:
                record, outcome = self.departures.skip(record, actor=user)
            else:
                record, outcome = self.departures.answer(record, raw, actor=user)
        except AnswerError as err:
            await self.tell(user, f":warning: {kit.escape(err)}")
            return
        await self.close_prompt(record, question, outcome.parsed.display if outcome.parsed else "skipped")
        await self.after(user, record, [outcome], paused=outcome.paused, finished=outcome.finished)

    async def after(self, user: str, record: Record, outcomes: list[Outcome], *, paused: bool, finished: bool) -> None:
        """What follows answers: a note on a changed answer, then the next question or the end."""
        for outcome in outcomes:
            if outcome.previous is not None and outcome.parsed and outcome.previous != outcome.parsed.display:
                await self.tell(
                    user,
                    self.say("edited", question=outcome.question.label, client=record["client"],
                             old=outcome.previous, new=outcome.parsed.display),
                )  # fmt: skip
        if paused:
            await self.tell(user, self.say("paused_unconfirmed", client=record["client"]))
            return
        if finished:
            await self.finish(record)
            return
        await self.ask(record)

    async def after_form(self, user: str, record: Record, outcome: FormOutcome) -> None:
        prompt = record.get("prompt")
        answered = {o.question.id: o for o in outcome.answered}
        if prompt and prompt.get("question") in answered:
            done = answered[prompt["question"]]
            await self.close_prompt(record, done.question, done.parsed.display if done.parsed else "skipped")
        await self.after(user, record, list(outcome.answered), paused=outcome.paused, finished=outcome.finished)

    async def control(self, user: str, departure_id: int, question_id: str, word: str) -> None:
        """Skip, Back, Later or Keep, pressed or typed."""
        record = self._waiting(user, departure_id, question_id)
        if record is None:
            return
        question = self.departures.current_question(record)
        if word == "skip":
            if not question.skippable:
                await self.tell(user, self.say("not_skippable"))
                return
            await self._settle(user, record, None)
            return
        if word == "back":
            previous = self.departures.back(record)
            if previous is None:
                await self.tell(user, self.say("first_question"))
                return
            await self.close_prompt(record, question, "went back")
        elif word == "later":
            stage = self.departures.later(record, actor=user)
            await self.close_prompt(record, question, "later")
            if stage is not None:
                await self.tell(user, self.say("parked", client=record["client"], stage=stage.title))
        elif word == "keep":
            self.departures.keep(record)
            await self.close_prompt(record, question, "kept")
        record = self.departures.get(departure_id)
        if self.departures.current_question(record) is None:
            if self.departures.interview.is_finished(self.departures.state(record)):
                await self.finish(record)
            return
        await self.ask(record)

    async def finish(self, record: Record) -> None:
        """The interview is complete: the full summary to the AM, the team's version to the channel."""
        self.departures.remember_prompt(record, None)
        am = record["am"]
        await self.tell(am, self.say("completed", client=record["client"]), self.summary(record, personal=True))
        await self.post_summary(record)

    def summary(self, record: Record, *, personal: bool) -> list[dict]:
        facts = (
            f"{status_label(record['status']).capitalize()} · AM {kit.user_ref(record['am'])} · "
            f"since {record['created_at'][:10]} · {self.departures.progress(record)} answered"
        )
        title = self.messages.render("summary_title", client=record["client"])
        return kit.summary_blocks(title, facts, self.departures.summary(record, include_personal=personal))

    async def post_summary(self, record: Record) -> None:
        channel = self.core.settings.channel
        if not channel:
            return
        title = self.say("summary_title", client=record["client"])
        await self.acks.wait()
        try:
            await self.client.chat_postMessage(
                channel=channel, text=kit.fallback(title), blocks=self.summary(record, personal=False)
            )
        except SlackApiError as err:
            error = err.response.get("error", "unknown error")
            log.warning("summary for departure %s not posted in %s: %s", record["id"], channel, error)
            await self.tell(record["am"], self.say("channel_failed", channel=channel, error=error))

    # -- starting ------------------------------------------------------------------------
    async def start(
        self, user: str, client: str, *, source: str, context: str | None = None, intro: str | None = None
    ) -> None:
        """Record the departure and open the interview in ``user``'s DM."""
        try:
            started = self.departures.start(client, am=user, source=source, context=context)
        except AnswerError as err:
            await self.tell(user, f":warning: {kit.escape(err)}")
            return
        record = started.departure
        if not started.created:
            await self.tell(
                user,
                self.say("already_open", client=record["client"], progress=self.departures.progress(record),
                         status=status_label(record["status"])),
            )  # fmt: skip
            return
        total = len(list(self.core.prompts.script.questions()))
        await self.tell(user, intro or self.say("started", client=record["client"], questions=total))
        await self.ask(record)
        await self.learn_am_email(record)

    async def learn_am_email(self, record: Record) -> None:
        """The AM's email from their Slack profile: client emails carry it as Reply-To."""
        info = await self.call("users.info", user=record["am"])
        email = (info or {}).get("user", {}).get("profile", {}).get("email")
        if email and not record.get("am_email"):
            try:
                self.departures.set_am_email(self.departures.get(record["id"]), email)
            except AnswerError:
                log.info("the Slack profile of %s has no usable email", record["am"])

    async def crm_reported(self, record: Record) -> None:
        """A CRM's departure: to its AM, found by email, or else up for claiming in the channel."""
        email = record.get("am_email", "")
        await self.acks.wait()
        try:
            found = await self.client.users_lookupByEmail(email=email)
            user = found["user"]["id"]
        except SlackApiError as err:
            error = err.response.get("error", "unknown error")
            log.info("CRM departure %s: no Slack user for its AM's email (%s)", record["id"], error)
            await self.offer_claim(record, email)
            return
        record = self.departures.assign(record, user, actor="crm")
        await self.tell(user, self.say("crm_reported", client=record["client"]))
        await self.ask(record)

    async def offer_claim(self, record: Record, email: str) -> None:
        channel = self.core.settings.channel
        if not channel:
            log.warning("CRM departure %s has no AM and SENDOFF_CHANNEL is not set: claim it with "
                        "/departure resume", record["id"])  # fmt: skip
            return
        text = self.say("claim_needed", client=record["client"], email=email)
        await self.call(
            "chat.postMessage", channel=channel, text=kit.fallback(text),
            blocks=kit.offer_blocks(text, kit.CLAIM, "I'll take it", str(record["id"])),
        )  # fmt: skip

    async def resume(self, user: str, record: Record) -> None:
        self.departures.require_access(record, user)
        if self.departures.resume(record) is None:
            await self.tell(user, self.say("nothing_to_ask", client=record["client"]))
            return
        await self.tell(user, self.say("resuming", client=record["client"], progress=self.departures.progress(record)))
        await self.ask(self.departures.get(record["id"]))

    # -- modals --------------------------------------------------------------------------
    async def _open_for(self, user: str, departure_id: int) -> Record | None:
        try:
            record = self.departures.get(departure_id)
            self.departures.require_access(record, user)
        except DepartureError as err:
            await self.tell(user, f":warning: {kit.escape(err)}")
            return None
        return record

    async def form(self, user: str, departure_id: int) -> dict | None:
        """The modal for the rest of the current stage, or None (and a note) when there is none."""
        record = await self._open_for(user, departure_id)
        if record is None:
            return None
        on_form = self.departures.form_questions(record)
        if not on_form:
            await self.tell(user, self.say("nothing_to_ask", client=record["client"]))
            return None
        state = self.departures.state(record)
        stage = self.core.prompts.script.stage(on_form[0].stage)
        fields = []
        for question in on_form:
            optional = self.departures.form_optional(question, on_form)
            hint = None
            if question.when and any(c.question in {q.id for q in on_form} for c in question.when):
                hint = "Only if it applies, given the answers above."
            elif question.skippable:
                hint = "Optional."
            current = state.answers.get(question.id, {})
            fields.append(
                kit.FormField(
                    question_id=question.id,
                    label=question.text.format(client=record["client"], am=record["am"]),
                    kind=question.kind,
                    options=tuple((o.id, o.label) for o in options_for(question, state.values())),
                    optional=optional,
                    hint=hint,
                    max_length=question.max_length,
                    initial=current.get("value") if isinstance(current.get("value"), str) else None,
                )
            )
        return kit.form_view(record["id"], stage.title, fields)

    async def edit_picker(self, user: str, departure_id: int) -> dict | None:
        record = await self._open_for(user, departure_id)
        if record is None:
            return None
        state = self.departures.state(record)
        answered = [(q.id, q.label) for q in self.departures.interview.applicable(state) if q.id in state.answers]
        if not answered:
            await self.tell(user, f"Nothing about *{kit.escape(record['client'])}* has been answered yet.")
            return None
        return kit.edit_view(record["id"], record["client"], answered)

    # -- App Home ------------------------------------------------------------------------
    def home(self, user: str) -> dict:
        records = self.departures.list_open(am=user)
        rows = [
            kit.HomeRow(
                departure_id=r["id"],
                client=r["client"],
                status=status_label(r["status"]),
                progress=self.departures.progress(r),
                waiting=self.departures.current_question(r) is not None,
            )
            for r in sorted(records, key=lambda r: r["updated_at"], reverse=True)[:HOME_ROWS]
        ]
        team = None
        if user in self.core.settings.admins:
            team = render_report_text(build_report(self.departures))
        return kit.home_view(kit.HomeContent(rows=rows, more=max(0, len(records) - HOME_ROWS), team=team))

    async def publish_home(self, user: str) -> None:
        await self.call("views.publish", user_id=user, view=self.home(user))
