"""``/snooze <client> <item> until <date>`` reads the date ahead of today: a snooze ends in the future."""

from __future__ import annotations

import pytest

from bot.chat_commands import Commands, Transport
from bot.command_words import Command
from bot.replies import Say
from handlers.console import ConsoleChat
from storage.records import Source

# The tests' clock stands on Wednesday 25 November 2026 (tests/conftest.py).


def snoozed_until(core, typed: str) -> str:
    """What ``/snooze Acme payment until <typed>`` answers: the day it settled on, or the refusal's key."""
    core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE)
    result = Commands(core, Transport.CONSOLE).run("ann", Command("snooze", f"acme payment until {typed}"))
    [said] = [p for p in result.parts if isinstance(p, Say)]
    return str(said.values["until"]) if said.key == "item_snoozed" else said.key


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("friday", "Fri 27 Nov 2026"),  # the coming Friday, not the one last week
        ("Monday", "Mon 30 Nov 2026"),
        ("wed", "Wed 02 Dec 2026"),  # today is no end for a snooze: the next Wednesday
        ("next friday", "Fri 27 Nov 2026"),
        ("3 weeks", "Wed 16 Dec 2026"),  # ahead, without asking "in 3 weeks or 3 weeks ago?"
        ("1 dec", "Tue 01 Dec 2026"),
        ("20 nov", "Sat 20 Nov 2027"),  # that day has passed this year
        ("2027-01-15", "Fri 15 Jan 2027"),
    ],
)
def test_a_snooze_date_is_read_as_the_next_one(core, typed, day):
    assert snoozed_until(core, typed) == day


@pytest.mark.parametrize("typed", ["yesterday", "today", "2026-11-20"])
def test_a_snooze_that_names_a_day_gone_by_is_refused(core, typed):
    assert snoozed_until(core, typed) == "snooze_needs_future"


def test_the_console_snoozes_until_the_coming_friday(core):
    shown: list[str] = []
    chat = ConsoleChat(core, shown.append)
    chat.handle("/departure Acme Corp")
    shown.clear()
    chat.handle("/snooze acme payment until friday")
    assert shown == ["Snoozed: the final payment for Acme Corp, until Fri 27 Nov 2026."]
    marks = core.departures.get(1).get("items", {})
    assert marks["final_payment_due"]["until"] == "2026-11-27"
