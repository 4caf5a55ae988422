"""Updates: news for former clients on the topics they asked to hear about ("Hear it from the client", point 4).

One step per function, for the transports to call (the console's ``/update``, Slack's ``/departure update``):

``draft_update``  a person writes an update (English text, topics, translations by language); it is kept as
                  a draft, with who would get it and why (``audience``).
``audience``      every departure considered, each with the reason it gets the update or does not: only former
                  clients (leaving or departed) who agreed to stay in touch (the consent answer, or their own yes
                  in the exit note's form; their own no there counts over the AM's yes), whose topics share a
                  word with the update's, with an address that did not bounce, never opted out, forgotten, won
                  back or retained, and not sent (or due) another update within ``gap_days``.
``approve_update`` a second admin (SENDOFF_ADMINS; never the author) approves it: one email touch is planned
                  per recipient, at the client's next 09:00 on a working day, and the dispatcher sends it like
                  any client email (holds apply: an opt-out or a forget cancels it; no draft is asked for again).

Updates are kept in the store (its ``updates`` table), so that every process sharing a database sees the
same drafts and approvals. Each touch carries the text as approved, in the language it goes in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.app import Core
from bot.clock import iso
from bot.notify import Action, Notice
from bot.playbook import new_touch
from prompts import EMAIL_LANGUAGE
from storage.records import (
    Channel,
    Departure,
    Status,
    Touch,
    TouchKind,
    TouchStatus,
    Update,
    UpdatePayload,
    UpdateStatus,
)

# How long after a client's last update no other goes to them (the default of SENDOFF_UPDATE_GAP_DAYS).
GAP_DAYS = 30
# The longest text of an update (and of each translation), in characters.
MAX_TEXT = 5000
# How many topic words an update may name.
MAX_TOPICS = 10
# Once approved, an update goes at the client's next 09:00 on a working day; missed then, up to this long after.
UPDATE_GRACE = timedelta(days=3)
# Who counts as a former client: the departure is confirmed, or done.
FORMER = frozenset({Status.LEAVING, Status.DEPARTED})
# An update that is planned, shown, going or sent counts against the gap; one cancelled or skipped does not.
COUNTED = frozenset({TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL, TouchStatus.SENDING, TouchStatus.SENT,
                     TouchStatus.UNKNOWN})  # fmt: skip
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")


# The fields of an update, as UpdateError names them (a form shows the message beside that field).
TEXT_FIELD = "text"
TOPICS_FIELD = "topics"
TRANSLATION_FIELD = "translation_"  # + the language


class UpdateError(ValueError):
    """What a person asked for cannot be done; the message says why, in words for them, and ``field`` which of
    the update's fields is at fault ("" when none is)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Recipient:
    """A departure considered for an update: whether its client gets it, and why (or why not)."""

    departure_id: int
    client: str
    email: str  # "" when none is known
    language: str  # the language the update would go in: theirs where translated, else English
    included: bool
    reason: str


@dataclass(frozen=True)
class UpdateDraft:
    """A stored draft, and who would get it now."""

    update: Update
    recipients: list[Recipient]

    @property
    def count(self) -> int:
        return sum(r.included for r in self.recipients)


@dataclass(frozen=True)
class Approved:
    """An approved update: the touches planned (one per recipient), and who got one and who did not, why."""

    update: Update
    touches: list[Touch]
    recipients: list[Recipient]


# -- the steps --------------------------------------------------------------------------------------
def draft_update(core: Core, author: str, text: str, topics: str | Sequence[str],
                 translations: Mapping[str, str] | None = None, *,
                 gap_days: int = GAP_DAYS) -> UpdateDraft:  # fmt: skip
    """Check and keep an update written by ``author``: ``text`` in English, ``topics`` as words ("SEO, pricing"
    or ["SEO", "pricing"]), ``translations`` by ISO 639-1 language. UpdateError says what is wrong."""
    say = core.prompts.messages.render
    body = _text(core, text)
    words = topic_words(topics if isinstance(topics, str) else " ".join(topics))
    if not 1 <= len(words) <= MAX_TOPICS:
        raise UpdateError(say("update_needs_topics", most=MAX_TOPICS), TOPICS_FIELD)
    translated = dict(_translation(core, language, text) for language, text in (translations or {}).items())
    translated.pop(EMAIL_LANGUAGE, None)  # the text itself is the English one
    update = core.store.insert_update({"author": author, "text": body, "translations": translated, "topics": words,
                                       "status": UpdateStatus.DRAFT, "created_at": iso(core.clock.now())})  # fmt: skip
    return UpdateDraft(update, audience(core, update, gap_days=gap_days))


def add_translation(core: Core, update_id: int, language: str, text: str, actor: str, *,
                    gap_days: int = GAP_DAYS) -> UpdateDraft:  # fmt: skip
    """Add (or replace) the text of a draft in one language: its author or an admin may, until it is approved."""
    say = core.prompts.messages.render
    stored = get_update(core, update_id)
    if stored["status"] is UpdateStatus.APPROVED:
        raise UpdateError(say("update_already_approved", id=stored["id"], person=stored.get("approved_by", "")))
    if actor != stored["author"] and actor not in core.settings.admins:
        raise UpdateError(say("update_translate_not_allowed", id=stored["id"]))
    code, clean = _translation(core, language, text)
    if code == EMAIL_LANGUAGE:
        raise UpdateError(say("update_translation_english", id=stored["id"]), TEXT_FIELD)
    stored["translations"][code] = clean
    core.store.save_update(stored)
    return UpdateDraft(stored, audience(core, stored, gap_days=gap_days))


def translation_languages(core: Core) -> list[tuple[str, str]]:
    """The languages an update can be translated into (those a client may choose, English aside), with labels."""
    question = core.prompts.script.by_role("language")
    options = [(o.id, o.label) for o in question.options] if question is not None and question.options else []
    return [(code, label) for code, label in options if code != EMAIL_LANGUAGE and LANGUAGE_CODE.match(code)]


def approvers(core: Core, update: Update) -> list[str]:
    """Who may approve ``update``: every admin but its author."""
    return sorted(a for a in core.settings.admins if a != update["author"])


def approval_requests(core: Core, drafted: UpdateDraft) -> list[Notice]:
    """A notice to each admin who may approve the draft: who wrote it, its topics, how many would get it, its text."""
    update = drafted.update
    text = core.prompts.messages.render(
        "update_approval_asked", number=update["id"], author=update["author"], topics=", ".join(update["topics"]),
        count=drafted.count, languages=", ".join(sorted(update["translations"])) or "-", text=update["text"])
    return [Notice(admin, text, actions=(Action.APPROVE,), update=update["id"]) for admin in approvers(core, update)]


def audience(core: Core, update: Update, *, gap_days: int = GAP_DAYS) -> list[Recipient]:
    """Every departure considered for ``update``, those who get it first, each with the reason it is in or out."""
    now = core.clock.now()
    since = iso(now - timedelta(days=gap_days))
    wanted = set(update["topics"])
    found = [_consider(core, update, record, wanted, since, gap_days) for record in core.departures.all()]
    return sorted(found, key=lambda r: (not r.included, r.client.casefold(), r.departure_id))


def approve_update(core: Core, update: Update | int, approver: str, *, gap_days: int = GAP_DAYS) -> Approved:
    """A second admin's yes: one email per recipient, at the client's next 09:00 on a working day.

    UpdateError when ``approver`` is no admin (SENDOFF_ADMINS), wrote it, or it was approved already.
    """
    say = core.prompts.messages.render
    stored = get_update(core, update if isinstance(update, int) else update["id"])
    if stored["status"] is UpdateStatus.APPROVED:
        raise UpdateError(say("update_already_approved", id=stored["id"], person=stored.get("approved_by", "")))
    if approver not in core.settings.admins:
        raise UpdateError(say("update_not_admin", person=approver))
    if approver == stored["author"]:
        raise UpdateError(say("update_own", person=approver))
    now = core.clock.now()
    recipients = audience(core, stored, gap_days=gap_days)
    touches: list[Touch] = []
    with core.store.batch():
        for recipient in (r for r in recipients if r.included):
            record = core.store.get_departure(recipient.departure_id)
            if record is None:
                continue
            due, zone = core.playbook.exit_note_send_at(record, now)  # the client's next 09:00 on a working day
            language = recipient.language
            payload: UpdatePayload = {"update_id": stored["id"], "language": language,
                                      "text": stored["translations"].get(language, stored["text"])}  # fmt: skip
            touch = new_touch(f"{record['id']}:{TouchKind.UPDATE}:{stored['id']}", record["id"], TouchKind.UPDATE,
                              Channel.EMAIL, recipient.email, due, due + UPDATE_GRACE, zone, payload)  # fmt: skip
            touch["planned_at"] = iso(now)
            touches.append(core.store.put_touch(touch))
        stored["status"] = UpdateStatus.APPROVED
        stored["approved_by"] = approver
        stored["approved_at"] = iso(now)
        stored["planned"] = [t["key"] for t in touches]
        core.store.save_update(stored)  # in the same write as its touches: approved means planned
    return Approved(stored, touches, recipients)


def get_update(core: Core, update_id: int) -> Update:
    found = core.store.get_update(update_id)
    if found is None:
        raise UpdateError(core.prompts.messages.render("update_unknown", id=update_id))
    return found


def list_updates(core: Core) -> list[Update]:
    """Every update kept, oldest first."""
    return core.store.list_updates()


def topic_words(text: str) -> list[str]:
    """The words of ``text``, lower-case, each once, in order: "SEO, Pricing & seo" -> ["seo", "pricing"]."""
    return list(dict.fromkeys(re.findall(r"\w+", text.casefold())))


# -- who gets it -------------------------------------------------------------------------------------
def _consider(core: Core, update: Update, record: Departure, wanted: set[str], since: str,
              gap_days: int) -> Recipient:  # fmt: skip
    say = core.prompts.messages.render

    def answer(role: str) -> Any:
        return core.departures.answer_value(record, role)

    voice = record.get("client_voice", {})
    email = answer("contact_email")
    email = email if isinstance(email, str) else ""
    spoken = voice.get("language") or answer("language") or EMAIL_LANGUAGE
    language = spoken if spoken in update["translations"] else EMAIL_LANGUAGE
    theirs = set(topic_words(" ".join(t for t in (answer("topics"), voice.get("topics")) if isinstance(t, str))))

    def out(key: str, **values: object) -> Recipient:
        return Recipient(record["id"], record["client"], email, language, False, say(key, **values))

    if record.get("forgotten"):
        return out("update_out_forgotten")
    if record.get("opted_out"):
        return out("update_out_opted_out")
    status = record["status"]
    if status is Status.WON_BACK:
        return out("update_out_won_back")
    if status is Status.RETAINED:
        return out("update_out_retained")
    if status not in FORMER:
        return out("update_out_not_former", status=status.label)
    # their own answer in the exit note's form counts over the AM's, either way
    agreed = voice["stay_in_touch"] if "stay_in_touch" in voice else answer("consent") is True
    if not agreed:
        return out("update_out_no_consent")
    if not theirs:
        return out("update_out_no_topics")
    shared = [t for t in update["topics"] if t in theirs]
    if not shared:
        return out("update_out_no_match", topics=", ".join(sorted(theirs)))
    if not email:
        return out("update_out_no_email")
    if email in record.get("bounced", []):
        return out("update_out_bounced")
    for touch in core.store.find_touches(departure_id=record["id"], statuses=COUNTED):
        if touch["kind"] is TouchKind.UPDATE and (touch.get("sent_at") or touch["due_at"]) >= since:
            return out("update_out_recent", days=gap_days)
    return Recipient(record["id"], record["client"], email, language, True,
                     say("update_in", topics=", ".join(shared)))  # fmt: skip


# -- keeping updates -----------------------------------------------------------------------------------
def _text(core: Core, text: str) -> str:
    say = core.prompts.messages.render
    clean = (text or "").strip()
    if not clean:
        raise UpdateError(say("update_needs_text", most=MAX_TEXT), TEXT_FIELD)
    if len(clean) > MAX_TEXT:
        raise UpdateError(say("update_too_long", length=len(clean), most=MAX_TEXT), TEXT_FIELD)
    return clean


def _translation(core: Core, raw_language: str, raw_text: str | None) -> tuple[str, str]:
    """A translation checked: its ISO 639-1 code, and its text trimmed and bounded."""
    say = core.prompts.messages.render
    language = raw_language.strip().lower()
    if not LANGUAGE_CODE.match(language):
        raise UpdateError(say("update_bad_language", language=raw_language))
    clean = (raw_text or "").strip()
    field = TRANSLATION_FIELD + language
    if not clean:
        raise UpdateError(say("update_translation_empty", language=language), field)
    if len(clean) > MAX_TEXT:
        raise UpdateError(say("update_translation_too_long", language=language, length=len(clean), most=MAX_TEXT),
                          field)  # fmt: skip
    return language, clean
