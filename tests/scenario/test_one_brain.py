"""One brain: the same session typed in the console and clicked in Slack leaves the same records."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.app import build_core
from bot.settings import Settings
from handlers.console import ConsoleChat, ConsoleNotifier
from prompts import load_prompts
from storage.records import Departure
from tests.scenario.conftest import SlackWorld


def comparable(record: Departure) -> dict[str, Any]:
    """What a session decides, without who typed it (a console login, a Slack id) or where it was shown."""
    answers = record["interview"]["answers"]
    return {
        "client": record["client"],
        "status": record["status"],
        "answers": {qid: (a["value"], a["display"], a["skipped"]) for qid, a in answers.items()},
        "trail": record["interview"]["trail"],
        "history": [(h["event"], h.get("question"), h.get("from"), h.get("to")) for h in record["history"]],
    }


def console_answer(core: Any, record: Departure, answers: dict[str, str]) -> str:
    """What a person types for the question waiting, by its id: the same defaults as the Slack driver."""
    question = core.departures.current_question(record)
    if question.id in answers:
        return answers[question.id]
    if question.kind == "date":
        return "2026-11-20"
    if question.kind in ("choice", "yes_no"):
        return "1"  # the first option, or yes
    return "Fine"


async def test_the_same_session_in_the_console_and_in_slack_leaves_the_same_record(
    world: SlackWorld, slack_settings: Settings, clock, tmp_path, person_answers
):
    # Slack: a slash command, then the questions in the DM, answered by clicks, picks and replies
    await world.slack.command("Acme Corp")
    for _ in range(40):
        record = world.departures.find("Acme Corp")
        if world.departures.current_question(record) is None:
            break
        await world.slack.answer_like_a_person("U0ANN", person_answers)
    in_slack = world.departures.find("Acme Corp")

    # the console: the same answers, typed, on a store of its own
    settings = replace(slack_settings, db_path=tmp_path / "console" / "sendoff.json", console_user="ann")
    printed: list[str] = []
    notifier = ConsoleNotifier(settings, clock, printed.append, load_prompts().messages)
    core = build_core(settings, notifier, clock=clock)
    try:
        chat = ConsoleChat(core, printed.append)
        chat.handle("/departure Acme Corp")
        for _ in range(40):
            record = core.departures.find("Acme Corp")
            if core.departures.current_question(record) is None:
                break
            chat.handle(console_answer(core, record, person_answers))
        in_console = core.departures.find("Acme Corp")
    finally:
        core.close()

    assert comparable(in_console) == comparable(in_slack)
    assert in_slack["interview"]["answers"]["reason"]["value"] == "competitor"
    assert any(line.startswith("Interview complete for Acme Corp.") for line in printed)
