"""What a command or an interview turn did, as data for a transport to render.

bot/ never formats for a medium: it returns a ``Result`` made of parts (a
message from prompts/, a question to ask, a summary, a table) and notices for
other people. The console turns each part into lines, Slack into Block Kit.
A message is a key of prompts/ with its values; the transport renders it
with its own escaping, and a ``CommandRef`` value in its own command syntax
(``/resume Acme`` in the console, ``/departure resume Acme`` in Slack).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from bot.notify import Notice
from prompts import Messages
from storage.records import SaveOutcome, Status


@dataclass(frozen=True)
class CommandRef:
    """A command a person could type next, named the same for every transport."""

    name: str
    argument: str = ""


@dataclass(frozen=True)
class Person:
    """A person named in a message: a Slack mention in Slack, their name in the console."""

    user: str


@dataclass(frozen=True)
class Bold:
    """A value to stand out (a client's name in a list), where the medium can show it."""

    text: str


Value = str | int | CommandRef | Person | Bold


class Tone(StrEnum):
    NOTE = "note"
    WARNING = "warning"  # the request was refused: nothing changed


class Refusal(Exception):
    """A request that cannot be carried out: the message ``key`` of prompts/ and its values.

    Raised anywhere in bot/; the command or turn that catches it returns it as a
    warning, in the place where the person acted. Nothing was changed.
    """

    def __init__(self, key: str, **values: Value) -> None:
        super().__init__(key)
        self.key = key
        self.values: Mapping[str, Value] = values


@dataclass(frozen=True)
class Say:
    """One message of prompts/ (``key``) with its values, unescaped."""

    key: str
    values: Mapping[str, Value] = field(default_factory=dict)
    tone: Tone = Tone.NOTE


@dataclass(frozen=True)
class Asked:
    """The question now waiting, as every transport shows it."""

    departure_id: int
    question_id: str
    client: str
    stage: str
    number: int
    total: int
    text: str
    kind: str
    options: tuple[tuple[str, str], ...] = ()  # (id, label)
    skippable: bool = False
    current: str | None = None  # the answer being reconsidered (back or edit)
    # Asked again after a refusal: a transport that still shows the question need not show it twice.
    repeated: bool = False

    @property
    def ref(self) -> str:
        return f"{self.departure_id}:{self.question_id}"


class Closing(StrEnum):
    """How a question left the conversation, besides being answered."""

    ANSWERED = "answered"
    SKIPPED = "skipped"
    WENT_BACK = "went_back"
    LATER = "later"
    KEPT = "kept"


@dataclass(frozen=True)
class Closed:
    """The question ``question_id`` is no longer waiting; ``shown`` is its answer when it was answered."""

    departure_id: int
    question_id: str
    how: Closing
    shown: str = ""


Section = tuple[str, list[tuple[str, str]]]  # stage title, (question label, answer)


@dataclass(frozen=True)
class Summary:
    departure_id: int
    client: str
    status: Status
    am: str
    since: str  # YYYY-MM-DD
    progress: str
    opted_out: bool
    sections: tuple[Section, ...]  # empty when the person may not see the details
    save_outcome: SaveOutcome | None = None  # how its save attempt ended, if it had one that ended


@dataclass(frozen=True)
class OpenRow:
    departure_id: int
    client: str
    status: Status
    progress: str
    waiting: bool  # a question waits for an answer
    parked: bool  # stages were put off with "later"
    am: str


@dataclass(frozen=True)
class Listing:
    rows: tuple[OpenRow, ...]


@dataclass(frozen=True)
class TouchRow:
    when: datetime  # local to ``zone``
    zone: str
    what: str  # words from prompts/
    to: str  # words from prompts/, or an email address
    status: str  # words from prompts/
    reason: str


@dataclass(frozen=True)
class TouchList:
    client: str
    rows: tuple[TouchRow, ...]


@dataclass(frozen=True)
class Preformatted:
    """Text laid out in columns (a report): shown in a fixed-width font."""

    title: str
    text: str


@dataclass(frozen=True)
class HelpEntry:
    command: str
    usage: str  # "<client>", "" or "<client> <question>"
    text: str  # what it does, from prompts/


@dataclass(frozen=True)
class Help:
    entries: tuple[HelpEntry, ...]
    controls: str  # how to steer the interview, from prompts/


class Confirmation(StrEnum):
    FORGET = "forget"


@dataclass(frozen=True)
class Confirm:
    """A question of the bot's own whose answer changes what happens: yes or no."""

    what: Confirmation
    departure_id: int
    question: Say


Part = Say | Asked | Closed | Summary | Listing | TouchList | Preformatted | Help | Confirm


@dataclass
class Result:
    """What a command or a turn did: for the person who acted, for the team, for others."""

    parts: list[Part] = field(default_factory=list)
    team: list[Part] = field(default_factory=list)  # for the team channel
    notices: list[Notice] = field(default_factory=list)  # for other people
    interview: int | None = None  # a departure whose question now waits for this person
    advance_to: datetime | None = None  # the console's clock is to move here
    files: list[Path] = field(default_factory=list)  # written for this person: Slack uploads them to their DM

    @classmethod
    def refused(cls, refusal: Refusal) -> Result:
        return cls([Say(refusal.key, refusal.values, Tone.WARNING)])

    def say(self, key: str, **values: Value) -> Result:
        self.parts.append(Say(key, values))
        return self

    @property
    def warned(self) -> bool:
        """Whether the request was refused (nothing changed)."""
        return any(isinstance(p, Say) and p.tone is Tone.WARNING for p in self.parts)

    @property
    def asked(self) -> Asked | None:
        return next((p for p in self.parts if isinstance(p, Asked)), None)


@dataclass(frozen=True)
class Medium:
    """How a transport writes values into a message."""

    command: Callable[[CommandRef], str]
    person: Callable[[str], str] = str
    bold: Callable[[str], str] = str
    escape: Callable[[str], str] = str

    def value(self, value: Value) -> str:
        if isinstance(value, CommandRef):
            return self.command(value)
        if isinstance(value, Person):
            return self.person(value.user)
        if isinstance(value, Bold):
            return self.bold(self.escape(value.text))
        return self.escape(str(value))


def words(messages: Messages, say: Say, medium: Medium) -> str:
    """The text of ``say``, each value written the medium's way: no value is read as a template."""
    return messages.format(say.key, {k: medium.value(v) for k, v in say.values.items()})
