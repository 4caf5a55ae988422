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

# The consenting answers by question id, for tests that change a few of them (``interview_with``).
CONSENTING: dict[str, str] = {
    "confirmed": "yes", "told_how": "1", "notified_on": "today", "reason": "1", "in_their_words": "Too dear",
    "mrr": "1200", "fixable": "3", "final_payment": "500", "final_payment_due": "in 3 weeks",
    "data_ownership": "logos", "data_by": "in 4 weeks", "support_ends": "in 1 week", "agreement_signed": "yes",
    "client_requests": "none", "alternative": "none", "consent": "yes", "contact_name": "Jane <b>Roe</b>",
    "salutation": "1", "contact_email": "jane@acme.example", "country": "Germany", "timezone": "1",
    "language": "en", "greetings": "yes",
    "topics": "SEO", "differently": "Talk sooner", "workload": "12",
    # asked only when a save is possible (fixable "1")
    "save_plan": "A discount", "save_owner": "Jane", "save_by": "in 2 weeks",
}  # fmt: skip


@pytest.fixture
def consenting_answers() -> list[str]:
    """Every answer of the default interview, in order: no save, 500 due in 3 weeks, support ending in a week
    (so the departure ends 2 December 2026: greetings from Christmas 2026 on), a client in Germany who
    consents to check-ins and greetings, greeted "Dear Jane <b>Roe</b>" and written to in English."""
    return ["yes", "1", "today", "1", "Too dear", "1200", "3",  # why, save (no)
            "500", "in 3 weeks", "logos", "in 4 weeks", "in 1 week", "yes", "none", "none",  # hand-over
            "yes", "Jane <b>Roe</b>", "1", "jane@acme.example", "Germany", "en", "yes", "SEO",  # stay in touch
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


@pytest.fixture
def interview_with() -> Interview:
    """``interview_with(departures, client, am=, paid=, **answers)``: the consenting interview, with ``answers``
    (by question id, "skip" to skip one) in place of its own; a multi-zone country's time zone is its first
    unless given."""

    def finish(departures: Departures, client: str = "Acme Corp", *, am: str = "ann", paid: bool = True,
               **answers: str) -> Departure:  # fmt: skip
        record = departures.start(client, am=am, source=Source.CONSOLE).departure
        while (question := departures.current_question(record)) is not None:
            raw = answers.get(question.id, CONSENTING[question.id])
            if raw == "skip":
                record, _ = departures.skip(record, actor=am)
            else:
                record, _ = departures.answer(record, raw, actor=am)
        return Lifecycle(departures).mark_paid(record, actor=am) if paid else record

    return finish
