"""The client's own answers, from the form behind the exit note's link: kept as theirs, and told to their AM.

The AM's interview says why the client leaves as the AM sees it; the form lets
the client say it: the main reason (an option of the interview's reason
question), in their own words, what would change their mind, whether we may
stay in touch and about what, and their language. What they send is stored on
the departure as ``client_voice`` (never mixed into the AM's answers), with a
CLIENT_ANSWERED entry in its history, and a notice goes to the AM at once.
Saying no to staying in touch opts them out, as the unsubscribe link does.

The client may change their answers until the link expires, but not endlessly:
at most ``MAX_SUBMISSIONS`` times, and not twice within ``MIN_INTERVAL``.
Text from the client is data: control characters are dropped and every field is
bounded before anything is checked or kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from bot.clock import iso, parse_iso
from bot.departures import Change, Departures
from bot.lifecycle import TRANSITIONS
from bot.notify import Action, Notice
from bot.playbook import am_or_channel
from bot.privacy import Privacy
from prompts import Script
from storage.records import AuditEvent, ClientVoice, Departure, Status

# Who the history and the opt-out name as having acted: the client, through their link.
VIA = "exit note form"
MAX_SUBMISSIONS = 10
MIN_INTERVAL = timedelta(seconds=10)
# The most each field keeps, in characters (a browser's maxlength says the same).
LIMITS: dict[str, int] = {"reason": 40, "words": 2000, "change_mind": 2000, "stay_in_touch": 3, "topics": 300,
                          "language": 12}  # fmt: skip
# How much of a long answer the AM's notice quotes (a Slack message holds 3,000 characters); all of it is stored.
QUOTED = 900
YES, NO = "yes", "no"
# Languages the form offers when the interview has no language question of its own (ISO 639-1).
LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "ja")

# Why a submission was refused, as a whole: nothing was saved.
TOO_MANY = "too_many"
TOO_SOON = "too_soon"
GONE = "gone"
# Why one answer was refused (ClientAnswersError.errors), by field; "form" for the form as a whole.
UNKNOWN_CHOICE = "unknown_choice"
TOO_LONG = "too_long"
EMPTY = "empty"
NEEDS_YES = "needs_yes"  # topics, without a yes to staying in touch

# Control characters other than line breaks and tabs, and the bidirectional overrides that can make text
# read backwards in a notice.
_UNWANTED = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


class SubmissionRefused(Exception):
    """The link may not send answers now (``why``: TOO_MANY, TOO_SOON or GONE). Nothing was saved."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ClientAnswersError(Exception):
    """Some answers cannot be kept: field -> why (UNKNOWN_CHOICE, TOO_LONG, EMPTY, NEEDS_YES). Nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ClientAnswers:
    """What the form sent, cleaned: "" for an unanswered field."""

    reason: str = ""
    words: str = ""
    change_mind: str = ""
    stay_in_touch: str = ""  # YES, NO or ""
    topics: str = ""
    language: str = ""

    @property
    def empty(self) -> bool:
        """Nothing said (the language is always chosen, so it does not count)."""
        return not (self.reason or self.words or self.change_mind or self.stay_in_touch or self.topics)


@dataclass(frozen=True)
class Heard:
    """What recording the client's answers did: the record as saved, their answers, and the AM's notice."""

    record: Departure
    voice: ClientVoice
    notice: Notice
    first: bool  # their first answers from this link, not a change
    opted_out: bool  # they said no to staying in touch, and are now opted out


def clean(text: str, limit: int) -> str:
    """``text`` with line breaks as ``\\n``, without control characters, trimmed; at most ``limit`` + 1 characters
    (enough to tell that it was too long, never more to hold)."""
    text = text[: limit * 2 + 2].replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")
    return _UNWANTED.sub("", text).strip()[: limit + 1]


def read_form(form: Mapping[str, Sequence[str]]) -> ClientAnswers:
    """The answers in a parsed form body (each field's first value), cleaned and bounded; unknown fields ignored."""
    values = {}
    for field in fields(ClientAnswers):
        given = form.get(field.name) or [""]
        values[field.name] = clean(given[0], LIMITS[field.name])
    return ClientAnswers(**values)


def answers_of(voice: ClientVoice | None) -> ClientAnswers:
    """What the client sent last, to show in the form again."""
    if not voice:
        return ClientAnswers()
    stay = voice.get("stay_in_touch")
    return ClientAnswers(reason=voice.get("reason", ""), words=voice.get("words", ""),
                         change_mind=voice.get("change_mind", ""),
                         stay_in_touch="" if stay is None else (YES if stay else NO),
                         topics=voice.get("topics", ""), language=voice.get("language", ""))  # fmt: skip


def reason_options(script: Script) -> list[str]:
    """The option ids of the interview's reason question, in its order ([] when it has none)."""
    question = script.by_role("reason")
    return [o.id for o in question.options] if question is not None else []


def language_options(script: Script) -> list[str]:
    """The languages a client may choose: those of the interview's language question, else LANGUAGES."""
    question = script.by_role("language")
    return [o.id for o in question.options] if question is not None and question.options else list(LANGUAGES)


def check_answers(script: Script, answers: ClientAnswers) -> dict[str, str]:
    """Why each answer cannot be kept, by field; {} when all can."""
    errors: dict[str, str] = {}
    for name in ("words", "change_mind", "topics"):
        if len(getattr(answers, name)) > LIMITS[name]:
            errors[name] = TOO_LONG
    if answers.reason and answers.reason not in reason_options(script):
        errors["reason"] = UNKNOWN_CHOICE
    if answers.stay_in_touch not in ("", YES, NO):
        errors["stay_in_touch"] = UNKNOWN_CHOICE
    elif answers.topics and answers.stay_in_touch != YES:
        # Consent is said, never guessed from the topics: ask for the yes (or no) itself.
        errors["stay_in_touch"] = NEEDS_YES
    if answers.language and answers.language not in language_options(script):
        errors["language"] = UNKNOWN_CHOICE
    if not errors and answers.empty:
        errors["form"] = EMPTY
    return errors


def refusal(record: Departure, now: datetime) -> str | None:
    """Why the client may not send answers now (TOO_MANY, TOO_SOON, GONE), or None."""
    if record.get("forgotten"):
        return GONE
    earlier = record.get("client_voice")
    if not earlier:
        return None
    if earlier["submissions"] >= MAX_SUBMISSIONS:
        return TOO_MANY
    if now < parse_iso(earlier["at"]) + MIN_INTERVAL:
        return TOO_SOON
    return None


def record_client_voice(departures: Departures, record: Departure, answers: ClientAnswers, now: datetime) -> Heard:
    """Keep the client's answers on ``record`` as theirs, opt them out if they said no to staying in touch, and
    make the notice for their AM; all saved in one write. SubmissionRefused or ClientAnswersError change nothing."""
    why = refusal(record, now)
    if why is not None:
        raise SubmissionRefused(why)
    errors = check_answers(departures.prompts.script, answers)
    if errors:
        raise ClientAnswersError(errors)
    earlier = record.get("client_voice")
    voice: ClientVoice = {"at": iso(now), "submissions": (earlier["submissions"] if earlier else 0) + 1}
    for name in ("reason", "words", "change_mind", "language"):
        if value := getattr(answers, name):
            voice[name] = value
    if answers.stay_in_touch:
        voice["stay_in_touch"] = answers.stay_in_touch == YES
        if answers.topics:
            voice["topics"] = answers.topics
    record["client_voice"] = voice
    departures.note(record, {"at": iso(now), "by": VIA, "event": AuditEvent.CLIENT_ANSWERED,
                             "note": "changed their answers" if earlier else None})  # fmt: skip
    declined = answers.stay_in_touch == NO and not record["opted_out"]
    with departures.store.batch():
        if voice.get("stay_in_touch") is True:
            departures.commit(record, Change.ITEM)  # their own yes: what staying in touch plans, the playbook plans
        else:
            departures.store.save_departure(record)  # their words change no plan: only a no below does
        if declined:
            record = Privacy(departures).opt_out_by_client(record, via=VIA)
    return Heard(record, voice, am_notice(departures, record, voice, first=earlier is None, opted_out=declined),
                 first=earlier is None, opted_out=declined)  # fmt: skip


def am_notice(departures: Departures, record: Departure, voice: ClientVoice, *, first: bool,
              opted_out: bool) -> Notice:  # fmt: skip
    """What the AM hears: the client's answers, quoted, with what they could do about them."""
    words = departures.prompts.messages
    script = departures.prompts.script
    lines = [words.render("client_answered" if first else "client_answered_again", client=record["client"])]
    actions: tuple[Action, ...] = ()
    reason = script.by_role("reason")
    if "reason" in voice and reason is not None:
        option = reason.option(voice["reason"])
        lines.append(words.render("client_said_reason", reason=option.label if option else voice["reason"]))
    if "change_mind" in voice:
        lines.append(words.render("client_said_change_mind", words=quoted(voice["change_mind"])))
        if record["status"] is Status.SAVING:
            lines.append(words.render("client_said_saving"))
        elif Status.SAVING in TRANSITIONS[record["status"]]:
            lines.append(words.render("client_said_try_save"))
            actions = (Action.SAVE,)
    if "words" in voice:
        lines.append(words.render("client_said_words", words=quoted(voice["words"])))
    stay = voice.get("stay_in_touch")
    if stay is True:
        topics = voice.get("topics")
        lines.append(words.render("client_said_stay_topics", topics=quoted(topics)) if topics else
                     words.render("client_said_stay"))  # fmt: skip
        consent = script.by_role("consent")
        if record["opted_out"]:
            lines.append(words.render("client_said_stay_opted_out"))
        elif consent is not None and departures.answer_value(record, "consent") is not True:
            # Their yes is theirs; the plan follows the interview's answer, which only the AM changes.
            lines.append(words.render("client_said_stay_consent", question=asked(consent.text, record)))
    elif stay is False:
        lines.append(words.render("client_said_no_stay" if opted_out else "client_said_no_stay_again"))
    recorded = departures.answer_value(record, "language")
    if "language" in voice and voice["language"] != recorded:  # the form offers the recorded one: no news
        label = _language_label(script, voice["language"])
        if isinstance(recorded, str) and not record["opted_out"]:
            lines.append(words.render("client_said_language_differs", language=label,
                                      recorded=_language_label(script, recorded)))  # fmt: skip
        else:
            lines.append(words.render("client_said_language", language=label))
    return Notice(am_or_channel(record), "\n".join(lines), record=record, actions=actions)


def asked(text: str, record: Departure) -> str:
    """A question of the interview as the AM saw it ({client} and {am} filled in)."""
    return text.format(client=record["client"], am=record["am"])


def _language_label(script: Script, language: str) -> str:
    question = script.by_role("language")
    option = question.option(language) if question is not None else None
    return option.label if option is not None else language


def quoted(text: str, limit: int = QUOTED) -> str:
    """``text`` for a notice: at most ``limit`` characters, cut at a word, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(None, 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip() + "…"
