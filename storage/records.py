"""The typed records: departures, their answers and audit trail, and touches.

One model module for the whole house. Records stay dicts (TypedDicts) so that
they round-trip through JSON unchanged; every status, kind and channel is a
StrEnum, and the store turns stored strings back into those enums when it
reads (``departure_from`` and ``touch_from``), so nothing above the store
compares a status with a string literal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class Status(StrEnum):
    """Where a departure stands."""

    REPORTED = "reported"
    INTERVIEWING = "interviewing"
    SAVING = "saving"
    LEAVING = "leaving"
    DEPARTED = "departed"
    RETAINED = "retained"
    WON_BACK = "won_back"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


OPEN: frozenset[Status] = frozenset({Status.REPORTED, Status.INTERVIEWING, Status.SAVING, Status.LEAVING})
CLOSED: frozenset[Status] = frozenset({Status.DEPARTED, Status.RETAINED, Status.WON_BACK})
# The order in which statuses are listed to people.
STATUS_ORDER: tuple[Status, ...] = tuple(Status)


class Source(StrEnum):
    """Where a departure was first heard of."""

    CONSOLE = "console"
    SLACK = "slack"
    SHORTCUT = "shortcut"
    MENTION = "mention"
    CRM = "crm"


class AuditEvent(StrEnum):
    STATUS = "status"
    ANSWER = "answer"
    LATER = "later"
    ASSIGNED = "assigned"
    PAID = "paid"
    OPT_OUT = "opt_out"
    FORGOTTEN = "forgotten"
    ITEM = "item"  # an open item marked done, snoozed, or no longer applying
    SAVE_OUTCOME = "save_outcome"
    CLIENT_ANSWERED = "client_answered"  # the client answered the exit note's form


class Approval(StrEnum):
    """How client emails of a departure are approved in Slack."""

    AUTO = "auto"  # the first was approved: the rest go by themselves
    ALWAYS = "always"  # each one waits for the AM


class TouchKind(StrEnum):
    CHECK_IN = "check_in"
    GREETING = "greeting"
    WIN_BACK = "win_back"
    DEADLINE = "deadline"
    INTERVIEW_REMINDER = "interview_reminder"
    DIGEST = "digest"
    EXIT_NOTE = "exit_note"  # the AM's personal note to the client, with the form link; never without their yes
    UPDATE = "update"  # news on topics a former client asked to hear about, approved by a second admin (bot/updates.py)


class Channel(StrEnum):
    EMAIL = "email"  # to the client
    TEAM = "team"  # to a person in Slack (or the console), or the team channel


class TouchStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"  # a client email shown to the AM as a draft
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # cut off by a crash while sending: the AM decides


FINAL: frozenset[TouchStatus] = frozenset(
    {TouchStatus.SENT, TouchStatus.FAILED, TouchStatus.SKIPPED, TouchStatus.CANCELLED, TouchStatus.UNKNOWN}
)


class Item(StrEnum):
    """An open item of a departure that the team is nudged about."""

    FINAL_PAYMENT_DUE = "final_payment_due"
    DATA_RETURN = "data_return"
    SUPPORT_END = "support_end"
    SAVE_DEADLINE = "save_deadline"
    AGREEMENT_SIGNED = "agreement_signed"
    INTERVIEW = "interview"  # the interview itself, while unfinished


class ItemState(StrEnum):
    """What a person said about an open item from its nudge."""

    DONE = "done"
    SNOOZED = "snoozed"  # nudge again from ``until``
    NOT_APPLICABLE = "not_applicable"


class SaveOutcome(StrEnum):
    """How a save attempt ended: by a person's answer, or on its own."""

    SAVED = "saved"
    LEAVING = "leaving"
    LAPSED = "lapsed"  # no answer 5 working days after the deadline


class Reminder(StrEnum):
    """Why a repeating reminder is sent."""

    UNFINISHED = "unfinished"
    UNCONFIRMED = "unconfirmed"
    UNSIGNED = "unsigned"


# The recipient of a team touch meant for SENDOFF_CHANNEL.
CHANNEL = "channel"


class Answer(TypedDict):
    value: Any  # JSON-able: what the parser stored
    display: str  # how it is shown back
    skipped: bool
    at: NotRequired[str]
    by: NotRequired[str]


class InterviewData(TypedDict):
    answers: dict[str, Answer]
    trail: list[str]  # question ids in the order first answered
    parked: list[str]  # stage ids put off with "later"
    editing: str | None  # a question being asked again (back or edit)


# "from" is a keyword, hence the functional form.
AuditEntry = TypedDict(
    "AuditEntry",
    {
        "at": str,
        "by": str,
        "event": AuditEvent,
        "from": NotRequired["str | None"],
        "to": NotRequired["str | None"],
        "note": NotRequired["str | None"],
        "question": NotRequired[str],
        "stage": NotRequired[str],
    },
)


class ClientVoice(TypedDict):
    """What the client said in the exit note's form, in their own words (not the AM's)."""

    at: str  # when they last sent it, ISO
    submissions: int  # how often they sent it from their link
    reason: NotRequired[str]  # an option id of the interview's reason question
    words: NotRequired[str]  # why, in their words
    change_mind: NotRequired[str]  # what would change their mind, if anything
    stay_in_touch: NotRequired[bool]
    topics: NotRequired[str]  # what they want to hear about
    language: NotRequired[str]  # the language they prefer, ISO 639-1


class ItemMark(TypedDict):
    state: ItemState
    at: str
    by: str
    until: NotRequired[str]  # a snooze's date, ISO


class PromptRef(TypedDict):
    """Where a transport asked the question now waiting (a Slack message), so it can be closed."""

    channel: str
    ts: str
    question: str
    number: int
    total: int


class NewDeparture(TypedDict):
    client: str
    client_key: str  # "" once forgotten: found by no name
    am: str  # a Slack user id, the console's user, or "" while unclaimed
    source: Source
    status: Status
    context: str | None
    created_at: str
    updated_at: str
    interview: InterviewData
    history: list[AuditEntry]
    opted_out: bool
    am_email: NotRequired[str]
    am_name: NotRequired[str]  # the AM as clients know them (Slack profile, CRM), for the From of emails
    status_by_hand: NotRequired[bool]
    forgotten: NotRequired[bool]
    paid_at: NotRequired[str]
    prompt: NotRequired[PromptRef | None]
    bounced: NotRequired[list[str]]
    email_approval: NotRequired[Approval]
    items: NotRequired[dict[str, ItemMark]]  # Item value -> what a person said about it
    save_outcome: NotRequired[SaveOutcome]
    client_voice: NotRequired[ClientVoice]
    exit_note_sent_at: NotRequired[str]  # when the exit note (and its form link) went, ISO


class Departure(NewDeparture):
    id: int


class TouchPayload(TypedDict, total=False):
    what: Item  # the open item a deadline is about
    on: str  # its date, ISO
    why: Reminder
    number: int  # which nudge of its series
    of: int  # how many nudges its series has at most
    lapse: bool  # the save attempt lapses when this is due (bot.playbook)
    escalated: bool  # the one note to the team channel after the reminders
    holiday: str  # a greeting's holiday
    month: str  # the digest's month, YYYY-MM


class NewTouch(TypedDict):
    key: str  # unique: planning twice never plans two
    departure_id: int | None  # None for the digest
    kind: TouchKind
    channel: Channel
    recipient: str  # an email address, a Slack user id, or CHANNEL
    due_at: str
    latest_at: str
    zone: str
    payload: TouchPayload
    status: TouchStatus
    attempts: int
    planned_at: NotRequired[str]
    sent_at: NotRequired[str]
    ended_at: NotRequired[str]
    reason: NotRequired[str]
    detail: NotRequired[str]
    deferred: NotRequired[str]
    waited: NotRequired[str]  # once sent: the last thing it waited for, when it went later than planned
    last_error: NotRequired[str]
    failing_since: NotRequired[str]  # when its run of temporary refusals began (bot/sending.py)
    claimed_at: NotRequired[str]  # when it was last marked in flight (``sending``)
    asked_at: NotRequired[str]


class Touch(NewTouch):
    id: int


def departure_from(raw: dict[str, Any]) -> Departure:
    """A stored departure with its enums restored."""
    raw["status"] = Status(raw["status"])
    raw["source"] = Source(raw["source"])
    for entry in raw.get("history", []):
        entry["event"] = AuditEvent(entry["event"])
    if raw.get("email_approval") is not None:
        raw["email_approval"] = Approval(raw["email_approval"])
    for mark in (raw.get("items") or {}).values():
        mark["state"] = ItemState(mark["state"])
    if raw.get("save_outcome") is not None:
        raw["save_outcome"] = SaveOutcome(raw["save_outcome"])
    return raw  # type: ignore[return-value]  # checked field by field above


def touch_from(raw: dict[str, Any]) -> Touch:
    """A stored touch with its enums restored."""
    raw["kind"] = TouchKind(raw["kind"])
    raw["channel"] = Channel(raw["channel"])
    raw["status"] = TouchStatus(raw["status"])
    payload = raw.get("payload") or {}
    if "what" in payload:
        payload["what"] = Item(payload["what"])
    if "why" in payload:
        payload["why"] = Reminder(payload["why"])
    raw["payload"] = payload
    return raw  # type: ignore[return-value]


class UpdateStatus(StrEnum):
    """Where an update to former clients stands (bot/updates.py)."""

    DRAFT = "draft"  # written, waiting for a second admin's approval
    APPROVED = "approved"  # approved: one touch planned per recipient


class NewUpdate(TypedDict):
    """News for former clients who asked to hear about its topics, written by one person, approved by another.

    Kept in the store (its ``updates`` table), so that every process sharing a database sees it.
    """

    author: str
    text: str  # in English: what goes to a client whose language has no translation
    translations: dict[str, str]  # ISO 639-1 language -> the text in it
    topics: list[str]  # lower-case words, matched against the client's topics
    status: UpdateStatus
    created_at: str
    approved_by: NotRequired[str]
    approved_at: NotRequired[str]
    planned: NotRequired[list[str]]  # the keys of the touches its approval planned


class Update(NewUpdate):
    id: int


class UpdatePayload(TouchPayload, total=False):
    """What an update's touch carries: the text as approved, in the language it goes in."""

    update_id: int
    language: str  # the language the text is in (the client's, else English)
    text: str


def update_from(raw: dict[str, Any]) -> Update:
    """A stored update with its enum restored and its fields checked (ValueError, TypeError or KeyError)."""
    raw["status"] = UpdateStatus(raw["status"])
    for name in ("author", "text", "created_at"):
        if not isinstance(raw[name], str):
            raise TypeError(f"an update's {name} must be text, not {raw[name]!r}")
    if not isinstance(raw["topics"], list) or not isinstance(raw["translations"], dict):
        raise TypeError("an update's topics must be a list and its translations a mapping")
    return raw  # type: ignore[return-value]
