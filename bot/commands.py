"""The command words, shared by Slack's /departure and the console."""

from __future__ import annotations

from dataclasses import dataclass

# Words after /departure that are commands rather than a client's name.
SUBCOMMANDS = frozenset(
    {"help", "list", "report", "status", "optout", "forget", "wonback", "retained", "departed",
     "edit", "resume", "start"}
)  # fmt: skip


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""


def parse_departure(text: str) -> Command:
    """What follows /departure: a subcommand, or the name of a client to start.

    ``/departure start List Ltd`` starts a client whose name is a command word.
    """
    text = text.strip()
    word, _, rest = text.partition(" ")
    if not text:
        return Command("help")
    if word.lower() in SUBCOMMANDS:
        return Command(word.lower(), rest.strip())
    return Command("start", text)


def split_edit_argument(argument: str) -> tuple[str, str]:
    """``Acme Corp reason`` -> (``Acme Corp``, ``reason``): the question id comes last."""
    client, _, question = argument.strip().rpartition(" ")
    return client.strip(), question.strip()
