"""`sendoff console` as a user runs it: a real process, piped stdin, real files."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tinydb import TinyDB

pytestmark = pytest.mark.slow

FULL_INTERVIEW = [
    "/departure Acme Corp",
    "1", "2", "today", "5", "They found it cheaper", "BigCo", "$1,200",
    "9",  # no option 9: asked again
    "2", "back", "", "later",  # back to "fixable", keep it, park the save stage
    "500 EUR", "31/02/2027", "in 30 days", "Data is theirs", "in 2 weeks", "skip", "no", "skip", "skip",
    "yes", "John Doe", "not-an-email", "john@example.com", "Narnia", "USA", "1", "yes", "gardening",
    "skip", "12",
    "/resume acme", "rebuild trust", "Jane", "in 3 weeks",
    "/status Acme Corp",
    "/report",
]  # fmt: skip


def console_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDOFF_", "SLACK_", "SMTP_"))}
    env.update(SENDOFF_DB=str(tmp_path / "data" / "sendoff.json"), SENDOFF_TIMEZONE="Europe/Berlin", USER="ann")
    return env


def run_console(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", "console"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=console_env(tmp_path),
        timeout=60,
    )


def stored_departures(tmp_path: Path) -> list[dict]:
    db = TinyDB(tmp_path / "data" / "sendoff.json")
    try:
        return db.table("departures").all()
    finally:
        db.close()


def test_a_piped_session_completes_a_departure(tmp_path):
    result = run_console(tmp_path, FULL_INTERVIEW)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "There is no option 9: pick a number from 1 to 3." in out
    assert "31/02/2027 is not a real date: February 2027 has 28 days." in out
    assert "'not-an-email' is not an email address" in out
    assert "I do not know the country 'Narnia'" in out
    assert 'Parked the rest of "Can it be saved"' in out
    assert "Interview complete for Acme Corp." in out
    assert "Which time zone are they in?" in out  # the USA has several
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


def test_starting_an_open_client_again_offers_to_resume(tmp_path):
    result = run_console(tmp_path, ["/departure Acme Corp", "1", "/departure ACME  corp", "/list"])
    assert "already has an open departure" in result.stdout
    assert len(stored_departures(tmp_path)) == 1


class LiveConsole:
    """A console process driven line by line, as a person at a pipe would."""

    def __init__(self, tmp_path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "console"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=console_env(tmp_path),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return seen
        raise AssertionError(f"never saw {text!r}; saw {seen}")

    def send(self, line: str, then: str) -> list[str]:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.wait_for(then)


def test_sigkill_mid_interview_resumes_at_the_same_question(tmp_path):
    run_console(tmp_path, ["/departure Acme Corp", "1", "1", "today", "1", "skip", "skip", "3"])
    live = LiveConsole(tmp_path)
    live.wait_for("Resuming the interview for Acme Corp")
    live.send("/departure Beta GmbH", "Has Beta GmbH confirmed")
    live.send("1", "How did they tell us?")
    live.send("3", "On which date did they tell us?")
    live.send("yesterday", "What is the main reason Beta GmbH is leaving?")
    live.send("competitor", "In their words")
    live.process.send_signal(signal.SIGKILL)
    live.process.wait(timeout=10)

    result = run_console(tmp_path, ["/quit"])
    assert "Resuming the interview for Beta GmbH (4/" in result.stdout
    assert "In their words, why are they leaving?" in result.stdout
    beta = next(d for d in stored_departures(tmp_path) if d["client"] == "Beta GmbH")
    answers = beta["interview"]["answers"]
    assert [answers[q]["value"] for q in ("confirmed", "told_how", "reason")] == ["yes", "meeting", "competitor"]
    yesterday = datetime.now(ZoneInfo("Europe/Berlin")).date() - timedelta(days=1)
    assert answers["notified_on"]["value"] == yesterday.isoformat()
    acme = next(d for d in stored_departures(tmp_path) if d["client"] == "Acme Corp")
    assert acme["status"] == "leaving"  # "fixable: no" was its last acknowledged answer


def interview_lines(client: str, email: str, country: str, *extra: str) -> list[str]:
    return [f"/departure {client}", "1", "1", "today", "1", "Too dear", "900", "3",
            "0", "today", "none", "skip", "skip", "yes", "none", "none",
            "yes", "Pat", email, country, *extra, "yes", "skip", "skip", "10", "/paid " + client]  # fmt: skip


def test_a_simulated_year_sends_each_email_once_at_nine_local_and_nothing_after_an_opt_out(tmp_path):
    import email
    from email import policy

    from bot.workdays import is_working_day

    lines = [
        *interview_lines("Acme Corp", "pat@acme.example", "Germany"),
        *interview_lines("Bolt Ltd", "pat@bolt.example", "USA", "1"),  # New York
        *interview_lines("Crane Pty", "pat@crane.example", "Australia", "1"),
        "/advance 2026-12-28 12:00",
        "/optout Crane Pty",
        "/departed Bolt Ltd",
        "/wonback Bolt Ltd",
        "/advance 400d",
    ]
    result = run_console(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    assert "Bolt Ltd is now won back" in result.stdout and "Crane Pty opted out" in result.stdout
    zones = {"pat@acme.example": ("Europe/Berlin", "DE"), "pat@bolt.example": ("America/New_York", "US")}
    sent: dict[str, int] = {}
    for path in sorted((tmp_path / "data" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        to = message["To"].addresses[0].addr_spec
        when = message["Date"].datetime
        key = message["X-Sendoff-Touch"]
        sent[key] = sent.get(key, 0) + 1
        if to == "pat@crane.example":
            assert when < datetime(2026, 12, 28, 11, tzinfo=when.tzinfo), "an email after the opt-out"
            continue
        zone, country = zones[to]
        local = when.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0) and is_working_day(local.date(), country), (key, local)
        if to == "pat@bolt.example":
            assert when < datetime(2026, 12, 28, 11, tzinfo=when.tzinfo), "an email after the win-back"
    assert sent and set(sent.values()) == {1}
    assert any(k.startswith("1:check_in") for k in sent) and any(k.startswith("1:greeting") for k in sent)
