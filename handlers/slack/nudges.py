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
from email.header import decode_header, make_header
from email.message import Message

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.departures import DepartureError, status_label
from bot.dispatcher import Availability, Notice, Settled
from bot.mailer import SendError, plain_text
from bot.playbook import CHANNEL
from handlers.slack import blocks as kit
from handlers.slack.conversation import Conversation

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
    """Delivers the dispatcher's notices, tells it who is away, and handles the buttons on them."""

    def __init__(self, talk: Conversation) -> None:
        self.talk = talk
        self.core = talk.core
        self._seen: dict[str, tuple[float, Availability]] = {}

    async def deliver(self, notice: Notice) -> None:
        """Post ``notice``; a Slack failure raises SendError, so the dispatcher retries or gives up."""
        text = kit.escape(notice.text)
        record, touch = notice.record, notice.touch
        draft = draft_of(notice.draft) if notice.draft is not None else None
        blocks = kit.nudge_blocks(text, notice.actions, record["id"] if record else None,
                                  touch["id"] if touch and "id" in touch else None, draft)  # fmt: skip
        if notice.recipient == CHANNEL:
            channel = self.core.settings.channel
            if not channel:
                log.info("no SENDOFF_CHANNEL: a note for the channel was not posted: %s", notice.text)
                return
        else:
            channel = await self.talk.dm_channel(notice.recipient)
            if channel is None:
                raise SendError(f"could not open a DM with {notice.recipient}", permanent=False)
        await self.talk.acks.wait()
        try:
            await self.talk.client.chat_postMessage(channel=channel, text=kit.fallback(text), blocks=blocks)
        except SlackApiError as err:
            error = err.response.get("error", str(err.response.status_code))
            raise SendError(f"Slack: {error}", permanent=error in PERMANENT) from None

    async def presence(self, user: str) -> Availability:
        """Their time zone and whether their status says they are away; asked of Slack at most every 10 minutes."""
        now = self.core.clock.now().timestamp()
        known = self._seen.get(user)
        if known is not None and known[0] > now - PRESENCE_MEMORY_SECONDS:
            return known[1]
        info = await self.talk.call("users.info", user=user)
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


def _outcome_blocks(body: dict, outcome: str) -> tuple[str, list[dict]]:
    text = body.get("message", {}).get("text") or ""
    return text, kit.settled_blocks(text, outcome)


async def on_nudge(ack, action, body, talk: Conversation, respond) -> None:
    """Retained, Still leaving, Mark paid, Signed, Continue or Draft email on a nudge."""
    await ack()
    user = body["user"]["id"]
    what = action["action_id"].removeprefix(kit.NUDGE_PREFIX)
    departures = talk.departures
    try:
        record = departures.get(int(action["value"]))
        if what in ("retained", "leaving"):
            departures.set_status(record, what, actor=user)
            done = f"Marked as {status_label(what)} by {kit.user_ref(user)}."
        elif what == "paid":
            departures.mark_paid(record, actor=user)
            done = "Marked paid: no more payment reminders, and held emails may go again."
        elif what == "signed":
            departures.mark_signed(record, actor=user)
            done = "Marked signed by both parties."
        elif what == "continue":
            await talk.resume(user, record)
            return
        elif what == "draft":
            departures.require_access(record, user)
            draft = draft_of(talk.core.dispatcher.win_back_draft(record))
            intro = f"A draft to send from your own mailbox to *{kit.escape(record['client'])}*:"
            await respond(text=kit.fallback(intro), replace_original=False,
                          blocks=kit.nudge_blocks(intro, (), None, None, draft))  # fmt: skip
            return
        else:
            return
    except DepartureError as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")
        return
    text, blocks = _outcome_blocks(body, done)
    await respond(text=text, blocks=blocks, replace_original=True)


async def on_email(ack, action, body, talk: Conversation, respond) -> None:
    """Send, Edit, Skip or Always ask on a draft email."""
    what = action["action_id"].removeprefix(kit.EMAIL_PREFIX)
    user = body["user"]["id"]
    dispatcher = talk.core.dispatcher
    touch_id = int(action["value"])
    if what == "edit":
        await ack()
        try:
            dispatcher.approval_touch(touch_id, user)
            draft = draft_of(dispatcher.draft(touch_id))
        except (LookupError, DepartureError) as err:
            await talk.tell(user, f":warning: {kit.escape(err)}")
            return
        # the modal first: the trigger expires 3 s after the click
        view = kit.email_edit_view(touch_id, draft, channel=body.get("channel", {}).get("id"),
                                   ts=body.get("message", {}).get("ts"))  # fmt: skip
        await talk.call("views.open", trigger_id=body["trigger_id"], view=view)
        return
    await ack()
    try:
        if what == "send":
            done = describe(await dispatcher.approve(touch_id, user))
        elif what == "skip":
            done = describe(dispatcher.decline(touch_id, user))
        elif what == "always_ask":
            record = dispatcher.always_ask(touch_id, user)
            message = body.get("message", {})
            blocks = kit.always_asked_blocks(message.get("blocks", []), record["client"], touch_id)
            await respond(text=message.get("text", ""), blocks=blocks, replace_original=True)
            return
        else:
            return
    except (LookupError, DepartureError) as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")
        return
    text, blocks = _outcome_blocks(body, done)
    await respond(text=text, blocks=blocks, replace_original=True)


async def on_email_edited(ack, body, view, talk: Conversation) -> None:
    """The edited draft was submitted: it goes now, as written."""
    values = {block: fields.get(kit.VALUE, {}).get("value") or "" for block, fields in view["state"]["values"].items()}
    if not values.get("subject", "").strip() or not values.get("text", "").strip():
        await ack(response_action="errors", errors={"text": "The email needs a subject and some text."})
        return
    await ack()
    meta = json.loads(view.get("private_metadata") or "{}")
    user = body["user"]["id"]
    try:
        settled = await talk.core.dispatcher.approve(int(meta["touch"]), user,
                                                    override=(values["subject"].strip(), values["text"]))  # fmt: skip
    except (LookupError, DepartureError) as err:
        await talk.tell(user, f":warning: {kit.escape(err)}")
        return
    done = describe(settled) + " (edited)"
    if meta.get("channel") and meta.get("ts"):
        await talk.call("chat.update", channel=meta["channel"], ts=meta["ts"], text=done,
                        blocks=kit.settled_blocks("The draft email", done))  # fmt: skip
    else:
        await talk.tell(user, kit.escape(done))


def describe(settled: Settled) -> str:
    """What became of a draft, as escaped mrkdwn."""
    if settled.outcome == "sent":
        return f"Sent to {kit.escape(settled.touch['recipient'])}."
    if settled.outcome == "retry":
        return "Sending failed for now; it will be tried again."
    return f"Not sent ({settled.outcome}): {kit.escape(settled.detail)}."
