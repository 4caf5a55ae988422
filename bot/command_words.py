"""The command words, shared by Slack's /departure and the console."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words after /departure that are commands rather than a client's name.
SUBCOMMANDS = frozenset(
    {"help", "list", "report", "status", "optout", "forget", "wonback", "retained", "departed",
     "edit", "resume", "start", "paid", "signed", "touches", "preview", "done", "snooze", "leaving", "update",
     "approve", "clients", "save", "translate"}
)  # fmt: skip


# Subcommands that take nothing after them: with more words, the whole is a client's name ("Help Scout").
WITHOUT_ARGUMENT = frozenset({"help", "list"})


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""
    # What follows /departure read as a client's name, when its first word is a subcommand ("Optout Oy"):
    # a refusal then says how to start that client instead.
    as_client: str = ""


def parse_departure(text: str) -> Command:
    """What follows /departure: a subcommand, or the name of a client to start.

    ``/departure start List Ltd`` starts a client whose name is a command word.
    """
    text = text.strip()
    word, _, rest = text.partition(" ")
    if not text:
        return Command("help")
    name = word.lower()
    if name in SUBCOMMANDS and not (name in WITHOUT_ARGUMENT and rest.strip()):
        return Command(name, rest.strip(), as_client=text if rest.strip() and name != "start" else "")
    return Command("start", text)


def parse_console(line: str) -> Command | None:
    """A console line that starts with ``/``: the command it names; None for an answer."""
    text = line.strip()
    if not text.startswith("/"):
        return None
    word, _, rest = text[1:].partition(" ")
    word = word.lower()
    return parse_departure(rest) if word == "departure" else Command(word, rest.strip())


# "@sendoff Acme is leaving": what follows the client's name in a mention.
_LEAVING = re.compile(
    r"\s+(?:is|are|has|have|wants? to|will be|just)?\s*"
    r"(?:leaving|churning|churned|cancell?ing|cancell?ed|quitting|moving on|gone|left|leave|going)\b.*$",
    re.IGNORECASE | re.DOTALL,
)
MAX_GUESSED_WORDS = 5
_MENTION = re.compile(r"<[@#!][^>]*>")


def guess_client(text: str) -> str:
    """The client a mention of the bot is about, or "" when it names none."""
    plain = _MENTION.sub(" ", text or "")
    plain = " ".join(plain.split()).strip(" :,.-!?")
    guess = _LEAVING.sub("", plain).strip(" :,.-!?")
    # A long sentence is not a name: the person types it in the start form instead.
    return guess if len(guess.split()) <= MAX_GUESSED_WORDS else ""
