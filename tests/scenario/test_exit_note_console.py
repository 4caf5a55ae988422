"""The exit note in `sendoff console`: a real process on a pipe. Once the interview is done the draft is shown
with a prompt; `send`, `edit` (the new text, then a line holding a single ".") or `skip` answer it, and a
scripted session stays scripted. Where the console serves no form, the note goes without its link sentence."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.console_driver import Console, run_session

pytestmark = pytest.mark.slow

PROMPT = '(Type send, edit (then the new text, ending with a line holding a single ".") or skip.)'


def answers(language: str = "en", **changes: str) -> dict[str, Any]:
    """A client in Germany who is leaving (no save attempt, nothing owed), written to in ``language``."""
    found = {
        "confirmed": "yes", "told_how": "call", "notified_on": "today", "reason": "price",
        "in_their_words": "Too dear", "mrr": "900", "fixable": "no", "final_payment": "0",
        "data_ownership": "none", "data_by": "skip", "support_ends": "skip",
        "agreement_signed": "yes", "client_requests": "none", "alternative": "none", "consent": "yes",
        "contact_name": "Jane Roe", "salutation": "1", "contact_email": "jane@acme.example", "country": "Germany",
        "language": language, "greetings": "yes", "topics": "skip", "differently": "skip", "workload": "10",
    }  # fmt: skip
    return {**found, **changes}


def outbox(folder: Path) -> list[Any]:
    """The exit notes written to the outbox, read."""
    paths = sorted((folder / "data" / "outbox").glob("*exit_note.eml"))
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in paths]


def assert_no_broken_link(text: str, reply_instead: str) -> None:
    """A link to the form only where the console serves it (its own pages on 127.0.0.1, or a public address);
    without one, the note asks for a reply instead and names no link at all."""
    links = re.findall(r"\S*/form/\S*", text)
    assert all(re.fullmatch(r"https?://[^/\s]+/form/\d+\.\d+\.[A-Za-z0-9_-]+", link) for link in links), links
    assert links or reply_instead in text


def test_the_draft_shows_once_the_interview_is_done_and_send_sends_it_at_nine(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        console.interview(answers("de"))
        shown = console.expect(PROMPT)
        text = "\n".join(shown)
        assert "Acme Corp has confirmed they are leaving" in text and "To: Jane Roe <jane@acme.example>" in text
        assert "Subject: Vielen Dank – und eine kurze Frage" in text
        assert "vielen Dank für Ihre Nachricht, dass Acme Corp die Zusammenarbeit mit uns beenden möchte" in text
        assert_no_broken_link(text, "Ein paar Zeilen als Antwort auf diese E-Mail genügen.")
        console.command("maybe later", then=PROMPT)  # not an answer: asked again
        console.command("/touches Acme", then="The personal note to Acme Corp still waits for your answer.")
        console.expect(PROMPT)
        approved = console.command("send", then="Approved: it goes to jane@acme.example on")[-1]
        assert "09:00 Europe/Berlin (their time)" in approved
        console.command("/advance 6d", then="personal note email to jane@acme.example")
        console.command("/advance 10d", then="The clock is now")
        assert console.close() == 0, console.errors
    [sent] = outbox(tmp_path)
    local = sent["Date"].datetime.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5
    body = sent.get_body(("plain",)).get_content()
    assert sent["Subject"] == "Vielen Dank – und eine kurze Frage" and "Darf ich fragen" in body
    assert_no_broken_link(body, "Ein paar Zeilen als Antwort auf diese E-Mail genügen.")
    assert console.output.count("Acme Corp has confirmed they are leaving") == 1  # shown in full once


def test_edit_sends_the_text_typed_up_to_a_single_dot(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        console.send("/departure Acme Corp")
        console.interview(answers())
        console.expect(PROMPT)
        console.command("edit", then='End it with a line holding a single ".".')
        for line in ("Dear Jane,", "", "skip", "sorry to see you go. What tipped it?", "", "Ann"):
            console.send(line)  # "skip" inside the text is text
        console.command(".", then="Approved: it goes to jane@acme.example on")
        console.command("/advance 6d", then="personal note email to jane@acme.example")
        assert console.close() == 0, console.errors
    [sent] = outbox(tmp_path)
    body = sent.get_body(("plain",)).get_content()
    assert sent["Subject"] == "Thank you, and one question"  # the subject stays
    assert "Dear Jane,\n\nskip\nsorry to see you go. What tipped it?\n\nAnn" in body
    assert "Would you tell me why?" not in body


def test_a_scripted_session_skips_the_note_and_it_never_goes(tmp_path, prompts):
    """``sendoff console < session.txt``: the whole session piped, the note's answer in its place."""
    order = [q.id for q in prompts.script.questions()]
    given = answers()
    script = ["/departure Acme Corp"]
    labels = {"told_how": "1", "reason": "1", "fixable": "3", "salutation": "1", "language": "1"}
    script += [labels.get(qid, given[qid]) for qid in order if qid in given]
    script += ["skip", "/advance 20d", "/touches Acme Corp", "/quit"]
    done = run_session(tmp_path, script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Skipped: the note to Acme Corp will not go, and I will not ask about it again." in out
    assert "personal note email to" not in out and outbox(tmp_path) == []
    assert "skipped by" in out  # /touches says why it was cancelled
    assert out.count(PROMPT) == 1
