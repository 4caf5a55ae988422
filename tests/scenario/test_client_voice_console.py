"""The whole flow in `sendoff console`: the AM sends the exit note, the client opens the link in the .eml,
answers the form the console serves on 127.0.0.1, the AM sees their answer at once, and the report shows the
client's reason beside the AM's."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.fakes.console_driver import Console
from tests.scenario.test_exit_note_console import PROMPT, answers, outbox

pytestmark = pytest.mark.slow


def test_a_client_answers_the_form_from_the_link_in_the_eml_and_the_am_sees_it(tmp_path, prompts):
    with Console(tmp_path, prompts) as console:
        served = console.expect("answer at http://127.0.0.1:")[-1]
        base = re.search(r"http://127\.0\.0\.1:\d+", served).group(0)
        console.send("/departure Acme Corp")
        console.interview(answers())
        console.expect(PROMPT)
        console.command("send", then="Approved: it goes to jane@acme.example on")
        console.command("/advance 6d", then="personal note email to jane@acme.example")
        [note] = outbox(tmp_path)
        body = note.get_body(("plain",)).get_content()
        [link] = re.findall(r"http://127\.0\.0\.1:\d+/form/\S+", body)
        assert link.startswith(base)
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200 and "What is the main reason" in page.read().decode()
        form = urllib.parse.urlencode({"reason": "quality", "words": "The reports came late every month.",
                                       "change_mind": "Reports on time, every time.", "stay_in_touch": "yes",
                                       "topics": "SEO", "language": "en"}).encode()  # fmt: skip
        with urllib.request.urlopen(urllib.request.Request(link, data=form), timeout=10) as sent:
            assert sent.status == 200
        told = console.expect("They said this could change their mind")
        assert any("Acme Corp answered the form of your personal note" in line for line in told)
        # the lesson: what we heard beside what they said
        console.command("/report", then="We heard Price or budget; they said")
        forged = link[:-3] + "xyz"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(forged, data=form), timeout=10)
        assert refused.value.code == 400
        assert console.close() == 0, console.errors
    stored = (tmp_path / "data").glob("sendoff.json*")
    assert any("Reports on time" in path.read_text(errors="replace") for path in stored)
