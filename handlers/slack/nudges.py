"""Nudges, drafts and notices in Slack: the dispatcher's way to reach a person, and their buttons.

A nudge goes to the person's DM (or to SENDOFF_CHANNEL); its buttons act on
the departure (Retained, Still leaving, Mark paid, Signed, Continue, Draft
email) or on a draft email (Send, Edit, Skip, Always ask). Once acted on, the
message shows what was done instead of its buttons.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.mailer import SendError, plain_text
from bot.notify import Action, Availability, Notice
from bot.replies import Person, Refusal, Result, Say, Tone
from bot.reports import Digest
from bot.settings import Settings
from bot.settling import Outcome, Settled
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation
from handlers.slack.uploads import drawn, upload
from handlers.slack.web_api import SlackOut
from storage.records import CHANNEL, Item

log = logging.getLogger("sendoff.slack")

# A Slack status that means "not at work": its text or its emoji.
AWAY = re.compile(
    r"vacation|holiday|out of (the )?office|\booo\b|on leave|\bpto\b|annual leave|sick|"
    r":palm_tree:|:airplane:|:desert_island:|:beach_with_umbrella:|:face_with_thermometer:",
    re.IGNORECASE,
)
PRESENCE_MEMORY_SECONDS = 600
# Slack errors that no retry will fix
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "user_not_found", "account_inactive",
             "user_disabled", "cannot_dm_bot", "invalid_auth", "not_authed", "missing_scope"}  # fmt: skip


def draft_of(message: Message) -> kit.Draft:
    def header(name: str) -> str:
        return str(make_header(decode_header(str(message[name]))))

    return kit.Draft(header("To"), header("Subject"), plain_text(message))


class SlackNotices:
    """The notifier for Slack: delivers the dispatcher's notices and tells it who is away."""

    shows_drafts = True

    def __init__(self, out: SlackOut, settings: Settings, clock: Clock) -> None:
        self.out = out
        self.settings = settings
        self.clock = clock
        self._seen: dict[str, tuple[float, Availability]] = {}

    async def deliver(self, notice: Notice) -> None:
        """Post ``notice``; a Slack failure raises SendError, so the dispatcher retries or gives up."""
        text = kit.escape(notice.text)
        record, touch = notice.record, notice.touch
        draft = draft_of(notice.draft) if notice.draft is not None else None
        blocks = kit.nudge_blocks(text, notice.offered, record["id"] if record else None,
                                  touch["id"] if touch and "id" in touch else None, draft, notice.item,
                                  notice.update)  # fmt: skip
        if notice.recipient == CHANNEL:
            channel = self.settings.channel
            if not channel:
                log.info("no SENDOFF_CHANNEL: a note for the channel was not posted: %s", notice.text)
                return
        else:
            found = await self.out.dm_channel(notice.recipient)
            if found is None:
                raise SendError(f"could not open a DM with {notice.recipient}", permanent=False)
            channel = found
        try:
            posted = await self.out.post(channel, kit.fallback(text), blocks)
        except SlackApiError as err:
            error = str(err.response.get("error", err.response.status_code))
            raise SendError(f"Slack: {error}", permanent=error in PERMANENT) from None
        if isinstance(notice.text, Digest):
            # The chart follows the digest, in the channel the post went to (an id: SENDOFF_CHANNEL may be a
            # name). The digest is delivered either way: a chart that cannot go is logged, not retried.
            chart = await drawn(notice.text.chart)
            await upload(self.out, str(posted.get("channel") or channel), notice.text.file_name, chart,
                         notice.text.chart_heading)  # fmt: skip

    async def presence(self, user: str) -> Availability:
        """Their time zone and whether their status says they are away; asked of Slack at most every 10 minutes."""
        now = self.clock.now().timestamp()
        known = self._seen.get(user)
        if known is not None and known[0] > now - PRESENCE_MEMORY_SECONDS:
            return known[1]
        info = await self.out.call("users.info", user=user)
        if info is None:
            return Availability(None)
        person = info.get("user", {})
        profile = person.get("profile", {})
        status = f"{profile.get('status_text', '')} {profile.get('status_emoji', '')}"
        expires = profile.get("status_expiration") or 0
        away = bool(AWAY.search(status)) and (not expires or expires > now)
        seen = Availability(person.get("tz") or None, away)
        self._seen[user] = (now, seen)
        return seen


def register(app: AsyncApp) -> None:
    app.view(kit.EMAIL_VIEW)(on_email_edited)


def outcome_blocks(body: dict[str, Any], outcome: str) -> tuple[str, list[dict[str, Any]]]:
    text = body.get("message", {}).get("text") or ""
    if not text.strip():  # Slack sent no copy of the message: what was done stands alone
        return kit.fallback(outcome), kit.notice_blocks(f":white_check_mark: {outcome}")
    return text, kit.settled_blocks(text, outcome)


async def on_nudge(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                   respond: AsyncRespond) -> None:  # fmt: skip
    """Retained, Still leaving, Mark paid, Signed, Continue or Draft email on a nudge."""
    await ack()
    user = body["user"]["id"]
    what = Action(action["action_id"].removeprefix(kit.NUDGE_PREFIX).partition(":")[0])  # "snooze:until": a picker
    # a button's value is "<departure id>" or "<departure id>:<item>"; a date picker says it in its block id
    ref = action.get("value") or str(action.get("block_id", "")).removeprefix("nudge:")
    departure, _, item_value = ref.partition(":")
    departure_id = int(departure)
    item = Item(item_value) if item_value else None
    until = date.fromisoformat(action["selected_date"]) if action.get("selected_date") else None
    if what is Action.DRAFT:
        await draft_for(user, departure_id, talk, respond)
        return
    result = talk.commands.act_on(user, departure_id, what, item, until)
    if what is Action.CONTINUE or result.asked is not None:
        await talk.show(user, result)
        return
    if result.warned:
        await talk.show(user, result)
        return
    done = talk.words.message(result.parts).text + " " + talk.words.text("acted_by", person=Person(user))
    text, blocks = outcome_blocks(body, done)
    await respond(text=text, blocks=blocks, replace_original=True)


async def draft_for(user: str, departure_id: int, talk: Conversation, respond: AsyncRespond) -> None:
    """A win-back email for the AM to send from their own mailbox."""
    try:
        record = talk.departures.get(departure_id)
        talk.departures.access.require(record, user)
    except Refusal as refusal:
        await talk.show(user, Result.refused(refusal))
        return
    draft = draft_of(talk.core.dispatcher.win_back_draft(record))
    intro = talk.words.text("draft_intro", client=record["client"])
    blocks = kit.nudge_blocks(intro, (), None, None, draft)
    await respond(text=kit.fallback(intro), replace_original=False, blocks=blocks)


async def on_email(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], talk: Conversation,
                   respond: AsyncRespond) -> None:  # fmt: skip
    """Send, Edit, Skip or Always ask on a draft email."""
    await ack()
    what = Action(action["action_id"].removeprefix(kit.EMAIL_PREFIX))
    user = body["user"]["id"]
    dispatcher = talk.core.dispatcher
    touch_id = int(action["value"])
    try:
        if what is Action.EDIT:
            dispatcher.approval_touch(touch_id, user)
            draft = draft_of(dispatcher.draft(touch_id))
            # the modal first: the trigger expires 3 s after the click
            view = kit.email_edit_view(touch_id, draft, channel=body.get("channel", {}).get("id"),
                                       ts=body.get("message", {}).get("ts"))  # fmt: skip
            await talk.out.call("views.open", trigger_id=body["trigger_id"], view=view)
            return
        if what is Action.SEND:
            done = describe(talk, await dispatcher.approve(touch_id, user))
        elif what is Action.SKIP:
            done = describe(talk, dispatcher.decline(touch_id, user))
        elif what is Action.ALWAYS_ASK:
            record = dispatcher.always_ask(touch_id, user)
            message = body.get("message", {})
            blocks = kit.always_asked_blocks(message.get("blocks", []), record["client"], touch_id)
            await respond(text=message.get("text", ""), blocks=blocks, replace_original=True)
            return
        else:
            return
    except Refusal as refusal:
        await talk.show(user, Result.refused(refusal))
        return
    except LookupError:
        await talk.show(user, Result([Say("email_gone", tone=Tone.WARNING)]))
        return
    text, blocks = outcome_blocks(body, done)
    await respond(text=text, blocks=blocks, replace_original=True)


async def on_email_edited(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
    """The edited draft was submitted: it goes now, as written."""
    talk: Conversation = context["talk"]
    values = {block: fields.get(kit.VALUE, {}).get("value") or "" for block, fields in view["state"]["values"].items()}
    if not values.get("subject", "").strip() or not values.get("text", "").strip():
        await ack(response_action="errors", errors={"text": talk.words.plain("email_needs_text")})
        return
    await ack()
    meta = json.loads(view.get("private_metadata") or "{}")
    user = body["user"]["id"]
    try:
        settled = await talk.core.dispatcher.approve(int(meta["touch"]), user,
                                                    override=(values["subject"].strip(), values["text"]))  # fmt: skip
    except Refusal as refusal:
        await talk.show(user, Result.refused(refusal))
        return
    except LookupError:
        await talk.show(user, Result([Say("email_gone", tone=Tone.WARNING)]))
        return
    done = describe(talk, settled) + " " + talk.words.text("email_edited")
    if meta.get("channel") and meta.get("ts"):
        await talk.out.call("chat.update", channel=meta["channel"], ts=meta["ts"], text=done,
                            blocks=kit.settled_blocks(talk.words.text("email_draft"), done))  # fmt: skip
    else:
        await talk.out.tell(user, kit.fallback(done), kit.notice_blocks(done))


def describe(talk: Conversation, settled: Settled) -> str:
    """What became of a draft, as escaped mrkdwn."""
    if settled.outcome is Outcome.SENT:
        return talk.words.text("email_sent", to=settled.touch["recipient"])
    if settled.outcome is Outcome.DEFERRED:  # an exit note approved: it goes at the client's next 09:00
        return talk.words.text("exit_note_scheduled", to=settled.touch["recipient"], when=settled.detail)
    if settled.outcome is Outcome.RETRY:
        return talk.words.text("email_retry")
    return talk.words.text("email_not_sent", outcome=str(settled.outcome), detail=settled.detail)
