"""The Block Kit builders are pure: plain data in, payloads within Slack's limits out."""

from __future__ import annotations

import json

from bot.command_words import guess_client
from bot.replies import Asked
from handlers.slack import blocks as kit
from tests.fakes.slack import check_payload


def asked(**changes) -> Asked:
    values = dict(departure_id=7, question_id="reason", client="Acme", stage="Why", number=4, total=17,
                  text="What is the main reason?", kind="choice", options=(("a", "A"), ("b", "B")))  # fmt: skip
    values.update(changes)
    return Asked(**values)


def elements(blocks: list[dict], prefix: str) -> list[dict]:
    return next(b for b in blocks if b.get("block_id", "").startswith(prefix))["elements"]


def test_few_choices_are_buttons_many_are_a_select_and_dates_a_picker():
    buttons = elements(kit.question_blocks(asked()), "answer:")
    assert [b["type"] for b in buttons] == ["button", "button"]
    assert buttons[1]["value"] == "7:reason:b"
    many = asked(options=tuple((f"o{n}", f"Option {n}") for n in range(10)))
    select = elements(kit.question_blocks(many), "answer:")
    assert [e["type"] for e in select] == ["static_select"] and len(select[0]["options"]) == 10
    picker = elements(kit.question_blocks(asked(kind="date", options=())), "answer:")
    assert picker[0]["type"] == "datepicker"
    typed = kit.question_blocks(asked(kind="text", options=()), hint="Reply in this DM to answer.")
    assert not any(b.get("block_id", "").startswith("answer:") for b in typed)
    assert "Reply in this DM" in json.dumps(typed)


def test_controls_follow_the_question():
    ids = [e["action_id"] for e in elements(kit.question_blocks(asked()), "controls:")]
    assert ids == ["back", "later", "open_form"]
    ids = [e["action_id"] for e in elements(kit.question_blocks(asked(skippable=True, current="A")), "controls:")]
    assert ids == ["keep", "skip", "back", "later", "open_form"]


def test_long_user_text_is_clipped_with_an_ellipsis_and_stays_within_limits():
    huge = "x" * 10_000
    blocks = kit.question_blocks(asked(client=huge, text=huge, options=(("a", huge), ("b", "B"))))
    assert check_payload("chat.postMessage", {"blocks": blocks, "text": "t"}) == []
    assert blocks[0]["text"]["text"].endswith("…") and len(blocks[0]["text"]["text"]) == kit.SECTION_TEXT
    summary = kit.summary_blocks(huge, huge, [(huge, [(huge, huge)] * 5)] * 60)
    assert check_payload("chat.postMessage", {"blocks": summary, "text": "t"}) == []
    assert len(summary) == kit.MESSAGE_BLOCKS and "more" in summary[-1]["elements"][0]["text"]
    report = kit.preformatted_blocks("\n".join(["line " * 30] * 400))
    assert check_payload("chat.postMessage", {"blocks": report, "text": "t"}) == []


def test_modals_and_home_stay_within_limits():
    fields = [kit.FormField(f"q{n}", "Label " * 500, "choice", tuple((f"o{i}", "L" * 100) for i in range(150)))
              for n in range(120)]  # fmt: skip
    view = kit.form_view(1, "A stage title far longer than twenty-four", fields)
    assert check_payload("views.open", {"view": view}) == []
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) == kit.VIEW_BLOCKS
    rows = [kit.HomeRow(n, "C" * 500, "leaving", "3/17", True) for n in range(60)]
    home = kit.home_view(kit.HomeContent(rows=rows, team="figures\n" * 2000))
    assert check_payload("views.publish", {"view": home}) == []


def test_user_text_is_escaped_for_mrkdwn():
    blocks = kit.question_blocks(asked(client="<!channel> & <@U1>"))
    text = blocks[0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in text and "<!" not in text
    assert kit.user_ref("U0ANN") == "<@U0ANN>" and kit.user_ref("<!here>") == "&lt;!here&gt;"


def test_the_fake_refuses_what_slack_would():
    bad = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
           {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76},
                                             "action_id": "a"}]}]  # fmt: skip
    problems = check_payload("chat.postMessage", {"blocks": bad + [{"type": "divider"}] * 49})
    assert len(problems) == 3


def test_a_mention_names_its_client_only_when_it_plainly_does():
    assert guess_client("<@U0BOT> Acme Corp is leaving") == "Acme Corp"
    assert guess_client("<@U0BOT> BigCo has churned.") == "BigCo"
    assert guess_client("<@U0BOT> Acme") == "Acme"
    assert guess_client("<@U0BOT> hello there, could you please help me with something today") == ""
    assert guess_client("<@U0BOT>") == ""
