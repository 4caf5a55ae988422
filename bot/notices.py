"""What the dispatcher tells people, as ``Notice``s: nudges to the team and notices about client emails.

The words come from prompts/ (notices.toml); a notice is plain text and
each transport escapes it. The buttons (or console commands) a notice offers
are ``Action``s, chosen here from the touch.
"""

from __future__ import annotations

from datetime import date
from email.message import Message

from bot.departures import Departures
from bot.notify import Action, Notice
from bot.playbook import am_or_channel
from bot.reports import digest_text
from storage.records import CHANNEL, Departure, Item, Reminder, Touch, TouchKind, TouchPayload

# The answers a win-back nudge recalls (question ids of the default interview; others are left out).
HISTORY_QUESTIONS = ("notified_on", "reason", "in_their_words", "competitor", "mrr", "fixable")

EMAIL_KIND_WORDS: dict[TouchKind, str] = {kind: f"email_kind_{kind}" for kind in TouchKind}
DEADLINE_WORDS: dict[Item, str] = {
    Item.FINAL_PAYMENT_DUE: "nudge_final_payment_due",
    Item.DATA_RETURN: "nudge_data_return",
    Item.SUPPORT_END: "nudge_support_end",
    Item.SAVE_DEADLINE: "nudge_save_deadline",
    Item.AGREEMENT_SIGNED: "nudge_agreement_signed",
}
# What a person can do about a deadline from the nudge itself.
DEADLINE_ACTIONS: dict[Item, tuple[Action, ...]] = {
    Item.SAVE_DEADLINE: (Action.RETAINED, Action.LEAVING),
    Item.FINAL_PAYMENT_DUE: (Action.PAID,),
    Item.AGREEMENT_SIGNED: (Action.SIGNED,),
}
DRAFT_ACTIONS = (Action.SEND, Action.EDIT, Action.SKIP)


class Notices:
    def __init__(self, departures: Departures) -> None:
        self.departures = departures
        self.words = departures.prompts.messages

    def _say(self, key: str, **values: object) -> str:
        return self.words.render(key, **values)

    def _email(self, key: str, touch: Touch, record: Departure, **values: object) -> str:
        kind = self._say(EMAIL_KIND_WORDS[touch["kind"]])
        return self._say(key, kind=kind, client=record["client"], **values)

    # -- about an email to the client, for its AM ------------------------------------------
    def cut_off(self, touch: Touch, record: Departure, draft: Message) -> Notice:
        text = self._email("notice_cut_off", touch, record)
        return Notice(am_or_channel(record), text, touch, record, (Action.SEND, Action.SKIP), draft)

    def draft_ready(self, touch: Touch, record: Departure, draft: Message, *, first: bool) -> Notice:
        """``first``: the first email of the departure; approving it may let the rest go by themselves."""
        text = self._email("notice_draft_first" if first else "notice_draft_always", touch, record)
        actions = DRAFT_ACTIONS + ((Action.ALWAYS_ASK,) if first else ())
        return Notice(am_or_channel(record), text, touch, record, actions, draft)

    def exit_note_ready(self, touch: Touch, record: Departure, draft: Message) -> Notice:
        """The exit note, for the AM's yes: it never goes without it, whatever they chose for other emails."""
        text = self._say("notice_draft_exit_note", client=record["client"], to=touch["recipient"])
        return Notice(am_or_channel(record), text, touch, record, DRAFT_ACTIONS, draft)

    def send_failed(self, touch: Touch, record: Departure, error: str) -> Notice:
        return Notice(am_or_channel(record), self._email("notice_send_failed", touch, record, error=error), touch,
                      record)  # fmt: skip

    def email_gone(self) -> str:
        return self._say("notice_email_gone")

    # -- team touches: nudges and the digest -------------------------------------------------
    def team_notice(self, touch: Touch, record: Departure | None) -> Notice:
        if touch["kind"] == TouchKind.DIGEST:
            return Notice(CHANNEL, digest_text(self.departures, touch["payload"].get("month", "")), touch)
        if record is None:
            raise LookupError(f"{touch['key']}: a nudge about a departure that is gone")
        text = self.team_text(touch, record)
        if touch["kind"] == TouchKind.WIN_BACK:
            history = self.history(record)
            text = f"{text}\n{history}" if history else text
        return Notice(touch["recipient"], text, touch, record, team_actions(touch))

    def team_text(self, touch: Touch, record: Departure) -> str:
        client = record["client"]
        payload = touch["payload"]
        if touch["kind"] == TouchKind.WIN_BACK:
            return self._say("nudge_win_back", client=client)
        if touch["kind"] == TouchKind.INTERVIEW_REMINDER:
            if payload.get("escalated"):
                return self._say("nudge_escalated", client=client, reminders=payload.get("number", 1) - 1)
            if not record["am"]:
                text = self._say("nudge_unclaimed", client=client)
            elif payload.get("why") == Reminder.UNCONFIRMED:
                text = self._say("nudge_unconfirmed", client=client)
            else:
                text = self._say("nudge_unfinished", client=client)
            return self._numbered(text, payload)
        what = payload.get("what")
        if what is None:
            return self._say("nudge_other", client=client)
        on = _day(payload.get("on", ""))
        if payload.get("escalated"):
            key = "nudge_item_escalated" if on else "nudge_item_escalated_undated"
            return self._say(key, client=client, item=self._say(f"item_{what}"), on=on,
                             reminders=payload.get("number", 1) - 1)  # fmt: skip
        if payload.get("lapse"):
            return self._say("nudge_save_lapsed", client=client, on=on, revenue=self._revenue(record))
        return self._numbered(self._say(DEADLINE_WORDS[what], client=client, on=on), payload)

    def _numbered(self, text: str, payload: TouchPayload) -> str:
        """A nudge after the first says which it is, and how many there are at most."""
        number = payload.get("number", 1)
        if number <= 1 or "of" not in payload:
            return text
        return f"{text} {self._say('nudge_number', number=number, of=payload['of'])}"

    def _revenue(self, record: Departure) -> str:
        question = self.departures.prompts.script.by_role("revenue")
        answer = self.departures.state(record).answers.get(question.id) if question else None
        return str(answer["display"]) if answer and not answer.get("skipped") else "-"

    def history(self, record: Departure) -> str:
        """What a win-back nudge recalls: when and why they left, in their words, and what was at stake."""
        answers = self.departures.state(record).answers
        script = self.departures.prompts.script
        facts = [self._say("nudge_history_fact", question=q.label, answer=answers[q.id]["display"])
                 for q in map(script.question, HISTORY_QUESTIONS)
                 if q is not None and q.id in answers and not answers[q.id].get("skipped")]  # fmt: skip
        return self._say("nudge_history", facts="; ".join(facts)) if facts else ""


def _day(iso_day: str) -> str:
    """A date as people read it everywhere else in the bot: "Tue 15 Dec 2026"."""
    try:
        return f"{date.fromisoformat(iso_day):%a %d %b %Y}"
    except ValueError:
        return iso_day


def team_actions(touch: Touch) -> tuple[Action, ...]:
    if touch["kind"] == TouchKind.WIN_BACK:
        return (Action.DRAFT,)
    if touch["kind"] == TouchKind.INTERVIEW_REMINDER and touch["recipient"] != CHANNEL:
        return (Action.CONTINUE,)
    what = touch["payload"].get("what")
    if what is None or touch["payload"].get("lapse"):
        return ()  # the lapse is told, not asked: the save attempt is over
    return DEADLINE_ACTIONS.get(what, ())
