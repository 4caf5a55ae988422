"""`sendoff console` as a user runs it: a real process, piped stdin, real files.

Answers are given by question id (tests.fakes.console_driver reads which question
is on screen), so the tests hold however the interview script orders its questions.
"""

from __future__ import annotations

import email
import re
from datetime import date, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tinydb import TinyDB

from bot.clock import parse_iso
from bot.workdays import is_working_day
from tests.fakes.console_driver import Console, Typed

pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")  # SENDOFF_TIMEZONE of the console under test

# One sitting: the save stage is parked with "later", the rest answered, with a few mistakes on the way.
FIRST_SITTING: dict[str, Any] = {
    "confirmed": "yes",
    "told_how": "email",
    "notified_on": "today",
    "reason": "competitor",
    "in_their_words": "They found it cheaper",
    "competitor": "BigCo",
    "mrr": "$1,200",
    "fixable": ["9", "maybe", ""],  # no option 9: asked again; then "back" from the next one, Enter keeps "maybe"
    "save_plan": ["back", "later"],  # back to "fixable", then park the rest of the save stage
    "final_payment": "500 EUR",
    "final_payment_due": ["31/02/2027", "in 30 days"],
    "data_ownership": "Data is theirs",
    "data_by": "in 2 weeks",
    "support_ends": "skip",
    "agreement_signed": "no",
    "client_requests": "skip",
    "alternative": "skip",
    "consent": "yes",
    "contact_name": "John Doe",
    "salutation": "1",
    "contact_email": ["not-an-email", "john@example.com"],
    "country": ["Narnia", "USA"],
    "timezone": "America/New_York",  # the USA has several: the console asks
    "language": "",  # Enter keeps the country's language
    "greetings": "yes",
    "topics": "gardening",
    "differently": "skip",
    "workload": "12",
}
PARKED_STAGE = {"save_plan": "rebuild trust", "save_owner": "Jane", "save_by": "in 3 weeks"}


def stored_departures(folder: Path) -> list[dict[str, Any]]:
    db = TinyDB(folder / "data" / "sendoff.json")
    try:
        return db.table("departures").all()
    finally:
        db.close()


def test_a_piped_session_completes_a_departure(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        asked = console.interview(FIRST_SITTING)
        console.send("/resume acme")
        console.interview(PARKED_STAGE)
        console.send("/status Acme Corp")
        console.send("/report")
        assert console.close() == 0, console.errors
    out = console.output
    assert asked.count("fixable") == 3  # a wrong number, the answer, and Enter after "back"
    assert "There is no option 9: pick a number from 1 to 3." in out
    assert "31/02/2027 is not a real date: February 2027 has 28 days." in out
    assert "'not-an-email' is not an email address" in out
    assert "I do not know the country 'Narnia'" in out
    assert 'Parked the rest of "Can it be saved"' in out
    assert "Interview complete for Acme Corp." in out
    assert "save rate n/a" in out and "1,200 USD" in out
    [record] = stored_departures(tmp_path)
    answers = record["interview"]["answers"]
    assert answers["reason"]["value"] == "competitor"
    assert answers["competitor"]["value"] == "BigCo"
    assert answers["fixable"]["value"] == "maybe"
    assert answers["save_owner"]["value"] == "Jane"
    assert answers["contact_email"]["value"] == "john@example.com"
    assert answers["timezone"]["value"] == "America/New_York"
    assert record["status"] == "saving"
    assert "Bye. Everything is saved." in out


def test_starting_an_open_client_again_offers_to_resume(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        console.interview({"confirmed": "yes"})
        console.command("/departure ACME  corp", then="already has an open departure")
        console.send("/list")
        assert console.close() == 0, console.errors
    assert len(stored_departures(tmp_path)) == 1


def test_sigkill_mid_interview_resumes_at_the_same_question(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        console.interview({"confirmed": "yes", "told_how": "call", "notified_on": "today", "reason": "price",
                           "in_their_words": "skip", "mrr": "skip", "fixable": "no"})  # fmt: skip
        assert console.close() == 0, console.errors

    with Console(tmp_path, prompts) as live:
        live.expect("Resuming the interview for Acme Corp")
        live.next_question()  # Acme's next question stays unanswered
        live.send("/departure Beta GmbH")
        # "competitor" typed as a word, as a person may, rather than its number
        live.interview({"confirmed": "yes", "told_how": "meeting", "notified_on": "yesterday",
                        "reason": Typed("competitor")})  # fmt: skip
        assert live.next_question().question.id == "in_their_words"
        live.kill()

    with Console(tmp_path, prompts) as console:
        console.expect("Resuming the interview for Beta GmbH (4/")
        assert console.next_question().question.id == "in_their_words"
        console.send("/quit")
        assert console.close() == 0, console.errors
    beta = next(d for d in stored_departures(tmp_path) if d["client"] == "Beta GmbH")
    answers = beta["interview"]["answers"]
    assert [answers[q]["value"] for q in ("confirmed", "told_how", "reason")] == ["yes", "meeting", "competitor"]
    # "yesterday" by the console's own clock, when it was answered
    answered = parse_iso(answers["notified_on"]["at"]).astimezone(BERLIN).date()
    assert answers["notified_on"]["value"] == (answered - timedelta(days=1)).isoformat()
    acme = next(d for d in stored_departures(tmp_path) if d["client"] == "Acme Corp")
    assert acme["status"] == "leaving"  # "fixable: no" was its last acknowledged answer


def test_forget_asks_first_and_erases_only_on_yes(tmp_path, prompts):
    say = prompts.messages.render
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        console.interview({"confirmed": "yes", "told_how": "email", "notified_on": "today"})
        # it names what goes, and that the open departure is closed
        asked = say("confirm_forget", client="Acme Corp", planned="", closing=say("forget_closes"))
        console.command("/forget Acme Corp", then=asked)
        console.command("no", then=say("nothing_erased"))
        # still there, answers and all (the data file is read once the console has stopped)
        console.command("/status Acme Corp", then="Acme Corp (#1)")
        console.command("/forget Acme Corp", then=asked)
        console.command("yes", then=say("forgotten", client="Acme Corp"))
        assert console.close() == 0, console.errors
    [erased] = stored_departures(tmp_path)
    assert "Acme" not in str(erased)
    assert "told_how" not in erased["interview"]["answers"] and "notified_on" not in erased["interview"]["answers"]


def year_end_answers(email_address: str, country: str, zone: str | None = None) -> dict[str, Any]:
    answers = {
        "confirmed": "yes", "told_how": "call", "notified_on": "today", "reason": "price",
        "in_their_words": "Too dear", "mrr": "900", "fixable": "no", "final_payment": "0",  # 0: no due date asked
        "data_ownership": "none", "data_by": "skip", "support_ends": "skip",
        "agreement_signed": "yes", "client_requests": "none", "alternative": "none", "consent": "yes",
        "contact_name": "Pat", "salutation": "1", "contact_email": email_address, "country": country,
        "language": "1", "greetings": "yes",
        "topics": "skip", "differently": "skip", "workload": "10",
    }  # fmt: skip
    if zone is not None:
        answers["timezone"] = zone
    return answers


CLOCK_LINE = re.compile(r"The clock is now \w{3} (\d{2} \w{3} \d{4} \d{2}:\d{2})")


def advance(console: Console, argument: str) -> datetime:
    """``/advance``, and the console's clock after it (the console starts on the system's date)."""
    line = console.command(f"/advance {argument}", then="The clock is now")[-1]
    found = CLOCK_LINE.search(line)
    assert found, line
    return datetime.strptime(found[1], "%d %b %Y %H:%M").replace(tzinfo=BERLIN)


def test_a_simulated_year_sends_each_email_once_at_nine_local_and_nothing_after_an_opt_out(tmp_path, prompts):
    clients = [
        ("Acme Corp", year_end_answers("pat@acme.example", "Germany")),
        ("Bolt Ltd", year_end_answers("pat@bolt.example", "USA", "America/New_York")),
        ("Crane Pty", year_end_answers("pat@crane.example", "Australia", "Australia/Brisbane")),
    ]
    with Console(tmp_path, prompts) as console:
        for client, answers in clients:
            console.send(f"/departure {client}")
            console.interview(answers)
            console.send(f"/paid {client}")
        # After the Christmas greetings and the first check-ins: the next 28 December on the console's clock.
        today = advance(console, "1m")
        after_christmas = date(today.year if today.date() <= date(today.year, 12, 14) else today.year + 1, 12, 28)
        cut = advance(console, f"{after_christmas} 12:00")
        console.send("/optout Crane Pty")
        console.send("/departed Bolt Ltd")
        console.send("/wonback Bolt Ltd")
        advance(console, "400d")
        assert console.close() == 0, console.errors
    assert "Bolt Ltd is now won back" in console.output and "Crane Pty opted out" in console.output
    assert "] check-in email to pat@acme.example" in console.output and "greeting email to" in console.output
    assert "] check_in" not in console.output and "] deadline" not in console.output  # no internal keys
    zones = {"pat@acme.example": ("Europe/Berlin", "DE"), "pat@bolt.example": ("America/New_York", "US")}
    sent: dict[str, int] = {}
    for path in sorted((tmp_path / "data" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        to = message["To"].addresses[0].addr_spec
        when = message["Date"].datetime
        key = message["X-Sendoff-Touch"]
        sent[key] = sent.get(key, 0) + 1
        if to == "pat@crane.example":
            assert when <= cut, "an email after the opt-out"
            continue
        zone, country = zones[to]
        local = when.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0) and is_working_day(local.date(), country), (key, local)
        if to == "pat@bolt.example":
            assert when <= cut, "an email after the win-back"
    assert sent and set(sent.values()) == {1}
    assert any(k.startswith("1:check_in") for k in sent) and any(k.startswith("1:greeting") for k in sent)


def test_the_consoles_clock_survives_a_restart_and_a_kill(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.command("/advance 2027-03-01 10:00", then="The clock is now Mon 01 Mar 2027 10:00")
        assert console.close() == 0, console.errors
    with Console(tmp_path, prompts) as console:
        console.command("/clock", then="Mon 01 Mar 2027 10:00 Europe/Berlin (Mon 01 Mar 2027 09:00 UTC)")
        console.command("/advance 2d", then="The clock is now Wed 03 Mar 2027 10:00")
        console.kill()
    with Console(tmp_path, prompts) as console:
        console.command("/clock", then="Wed 03 Mar 2027 10:00 Europe/Berlin")
        console.command("/advance 2027-01-01 09:00", then="The clock only moves forward.")
        assert console.close() == 0, console.errors


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_any_bytes_on_the_input_get_an_answer_and_no_traceback(tmp_path, locale):
    import subprocess
    import sys

    from tests.fakes.console_driver import console_env

    lines = [b"/departure Acme Corp", b"\xff\xfe not utf-8 \x01\x07", b"x" * 100_000, b"\x00", b"1", b"/list"]
    env = {**console_env(tmp_path), "LC_ALL": locale, "PYTHONIOENCODING": "" if locale == "C" else "utf-8:strict"}
    result = subprocess.run([sys.executable, "-m", "handlers.cli", "console"], input=b"\n".join(lines) + b"\n",
                            capture_output=True, cwd=tmp_path, env=env, timeout=60)  # fmt: skip
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "Traceback" not in err, err
    assert "is not one of the options" in out  # the undecodable line was read, and refused like any answer
    assert "Acme Corp: interviewing, 1/17 answered" in out  # the session went on to the end
    assert "Bye. Everything is saved." in out
