"""Shared data of the touch tests: a finished interview whose client consents to staying in touch.

A pytest plugin: the test modules that need it name it in ``pytest_plugins``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.departures import Departures
from bot.lifecycle import Lifecycle
from storage.records import Departure, Source

Interview = Callable[..., Departure]


@pytest.fixture
def consenting_answers() -> list[str]:
    """Every answer of the default interview, in order: no save, 500 due in 3 weeks, a client in Germany who
    consents to check-ins and greetings."""
    return ["yes", "1", "today", "1", "Too dear", "1200", "3",  # why, save (no)
            "500", "in 3 weeks", "logos", "in 4 weeks", "in 6 weeks", "yes", "none", "none",  # hand-over
            "yes", "Jane <b>Roe</b>", "jane@acme.example", "Germany", "yes", "SEO",  # stay in touch
            "Talk sooner", "12"]  # fmt: skip


@pytest.fixture
def interview(consenting_answers: list[str]) -> Interview:
    """``interview(departures, client, answers, am=, source=, paid=)``: a departure answered to the end.

    ``paid``: the final payment came in (else the client's emails are held once it is overdue).
    """

    def finish(departures: Departures, client: str = "Acme Corp", answers: list[str] | None = None, *,
               am: str = "ann", source: Source = Source.CONSOLE, paid: bool = True) -> Departure:  # fmt: skip
        record = departures.start(client, am=am, source=source).departure
        for raw in consenting_answers if answers is None else answers:
            record, _ = departures.answer(record, raw, actor=am)
        return Lifecycle(departures).mark_paid(record, actor=am) if paid else record

    return finish
