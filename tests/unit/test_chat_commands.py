"""The brain: each command and turn returns what happened as data, and changes nothing when it refuses."""

from __future__ import annotations

from bot.chat_commands import Commands, Transport
from bot.command_words import Command
from bot.interview_turns import Control, Turns
from bot.lifecycle import Lifecycle
from bot.replies import Asked, CommandRef, Confirm, Result, Say, Summary, Tone
from handlers.console import Lines
from handlers.slack.render import SlackWords
from storage.records import Status

pytest_plugins = ["tests.touch_data"]


def keys(result: Result) -> list[str]:
    return [p.key for p in result.parts if isinstance(p, Say)]


def test_a_refusal_is_a_warning_and_changes_nothing(core):
    commands = Commands(core, Transport.CONSOLE)
    commands.run("ann", Command("start", "Acme Corp"))
    before = core.store.get_departure(1)
    result = commands.run("bob", Command("retained", "Acme"))
    assert result.warned and keys(result) == ["not_allowed"]
    assert commands.run("ann", Command("status", "Nobody")).parts[0].key == "unknown_client"
    assert commands.run("ann", Command("wonback", "Acme")).parts[0].values["now"] == "interviewing"
    assert core.store.get_departure(1) == before


def test_forget_asks_first_and_only_yes_erases(core):
    commands = Commands(core, Transport.SLACK)
    commands.run("ann", Command("start", "Acme Corp"))
    [confirm] = commands.run("ann", Command("forget", "acme")).parts
    assert isinstance(confirm, Confirm) and confirm.question.key == "confirm_forget"
    assert core.departures.find("Acme") is not None
    assert keys(commands.confirmed("ann", confirm.what, confirm.departure_id, yes=False)) == ["nothing_erased"]
    assert core.departures.find("Acme") is not None
    assert keys(commands.confirmed("bob", confirm.what, confirm.departure_id, yes=True)) == ["not_allowed"]
    assert keys(commands.confirmed("ann", confirm.what, confirm.departure_id, yes=True)) == ["forgotten"]
    assert core.departures.find("Acme") is None


def test_the_console_clock_is_the_consoles_only(core):
    assert Commands(core, Transport.CONSOLE).run("ann", Command("advance", "3d")).advance_to is not None
    slack = Commands(core, Transport.SLACK).run("ann", Command("advance", "3d"))
    assert slack.advance_to is None and keys(slack) == ["unknown_command"]
    assert "advance" not in str(Commands(core, Transport.SLACK).run("ann", Command("help")).parts)


def test_a_start_asks_the_first_question_and_a_status_shows_details_only_to_those_allowed(core):
    commands = Commands(core, Transport.CONSOLE)
    started = commands.run("ann", Command("start", "Acme Corp"))
    assert keys(started) == ["started"] and isinstance(started.asked, Asked)
    assert started.asked.question_id == "confirmed" and started.interview == 1
    Turns(core).reply("ann", "yes")
    own = commands.run("ann", Command("status", "Acme"))
    other = commands.run("bob", Command("status", "Acme"))
    assert isinstance(own.parts[0], Summary) and own.parts[0].sections
    assert isinstance(other.parts[0], Summary) and other.parts[0].sections == () and keys(other) == ["not_allowed"]


def test_a_turn_that_is_refused_asks_the_same_question_again(core):
    Commands(core, Transport.CONSOLE).run("ann", Command("start", "Acme Corp"))
    turns = Turns(core)
    refused = turns.reply("ann", "perhaps")
    assert refused.warned and refused.asked is not None and refused.asked.repeated
    assert refused.asked.question_id == "confirmed"
    not_skippable = turns.control("ann", 1, "confirmed", Control.SKIP)
    assert keys(not_skippable) == ["not_skippable"] and not_skippable.parts[0].tone is Tone.NOTE
    assert core.departures.state(core.departures.get(1)).answers == {}
    assert turns.reply("bob", "yes").parts[0].key == "no_interview"  # not bob's interview


def test_finishing_tells_the_team_without_personal_details(core):
    commands = Commands(core, Transport.CONSOLE)
    commands.run("ann", Command("start", "Acme Corp"))
    turns = Turns(core)
    result = Result()
    for _ in range(40):
        record = core.departures.get(1)
        question = core.departures.current_question(record)
        if question is None:
            break
        by_kind = {"date": "today", "country": "DE", "email": "jo@acme.example", "yes_no": "yes"}
        result = turns.reply("ann", by_kind.get(question.kind, "skip" if question.skippable else "1"))
    assert "completed" in keys(result)
    [team] = result.team
    assert isinstance(team, Summary)
    assert "jo@acme.example" not in str(team.sections)
    [own] = [p for p in result.parts if isinstance(p, Summary)]
    assert "jo@acme.example" in str(own.sections)
    assert core.departures.get(1)["status"] is Status.SAVING  # "could this be fixed?" was answered yes


def test_each_transport_names_commands_its_own_way_and_escapes_for_its_medium(prompts):
    say = Say("unknown_client", {"client": "<Acme & co>", "list": CommandRef("list")})
    console = Lines(prompts.messages).say(say)
    slack = SlackWords(prompts.messages).say(say)
    assert '"<Acme & co>"' in console and console.endswith("/list.")
    assert "&lt;Acme &amp; co&gt;" in slack and "`/departure list`" in slack
    resume = Say("parked", {"client": "Acme", "stage": "Why", "resume": CommandRef("resume", "Acme")})
    assert "/resume Acme" in Lines(prompts.messages).say(resume)
    assert "`/departure resume Acme`" in SlackWords(prompts.messages).say(resume)


def test_edit_takes_the_clients_name_and_the_questions_number_or_label(core):
    commands = Commands(core, Transport.CONSOLE)
    commands.run("ann", Command("start", "Acme Corp"))
    turns = Turns(core)
    for typed in ("yes", "email", "today"):
        turns.reply("ann", typed)
    by_number = commands.run("ann", Command("edit", "Acme Corp 2"))
    assert by_number.asked is not None and by_number.asked.question_id == "told_how"
    assert by_number.asked.current == "Email"
    turns.reply("ann", "")  # keep it
    by_label = commands.run("ann", Command("edit", "acme corp date notified"))
    assert by_label.asked is not None and by_label.asked.question_id == "notified_on"
    unknown = commands.run("ann", Command("edit", "Acme Corp colour"))
    [said] = unknown.parts
    assert said.key == "unknown_question" and "2. How they told us" in said.values["questions"]
    assert "told_how" not in str(said.values)  # people never see an internal key


def saving(core) -> Commands:
    commands = Commands(core, Transport.CONSOLE)
    commands.run("ann", Command("start", "Acme Corp"))
    turns = Turns(core)
    for typed in ("yes", "email", "today", "price", "too dear", "1000", "yes", "a discount", "Jane", "in 2 weeks"):
        turns.reply("ann", typed)
    assert core.departures.get(1)["status"] is Status.SAVING
    return commands


def test_a_save_attempt_ends_with_an_answer_that_records_itself(core):
    commands = saving(core)
    assert keys(commands.run("ann", Command("done", "Acme save"))) == ["save_needs_outcome"]
    later = commands.run("ann", Command("snooze", "Acme save until in 4 weeks"))
    assert keys(later) == ["item_snoozed"] and core.departures.get(1)["status"] is Status.SAVING
    assert core.departures.answer_value(core.departures.get(1), "save_deadline") > core.departures.today().isoformat()
    assert keys(commands.run("ann", Command("leaving", "Acme"))) == ["status_changed"]
    record = core.departures.get(1)
    assert record["status"] is Status.LEAVING and record["save_outcome"] == "leaving"
    assert keys(commands.run("ann", Command("leaving", "Acme"))) == ["not_saving"]


def test_open_items_are_marked_done_snoozed_or_no_longer_applying(core):
    commands = saving(core)
    assert keys(commands.run("ann", Command("done", "Acme Corp data"))) == ["item_done"]
    assert keys(commands.run("ann", Command("done", "Acme Corp the end of support n/a"))) == ["item_not_applicable"]
    assert keys(commands.run("ann", Command("snooze", "Acme Corp interview"))) == ["item_snoozed"]
    past = commands.run("ann", Command("snooze", "Acme Corp interview until yesterday"))
    assert keys(past) == ["snooze_needs_future"]
    assert keys(commands.run("bob", Command("done", "Acme Corp data"))) == ["not_allowed"]
    assert keys(commands.run("ann", Command("done", "Acme Corp laundry"))) == ["item_usage"]
    items = core.departures.get(1)["items"]
    assert {k: v["state"] for k, v in items.items()} == {
        "data_return": "done", "support_end": "not_applicable", "interview": "snoozed"}
    assert items["interview"]["until"] == str(core.departures.today() + __import__("datetime").timedelta(days=7))
    assert keys(commands.run("ann", Command("done", "Acme Corp payment"))) == ["item_done"]
    assert core.departures.get(1)["paid_at"]


def test_an_edit_after_the_end_shows_the_summary_again_but_tells_the_team_nothing_new(core, consenting_answers):
    """``consenting_answers``: tests/touch_data.py."""
    commands = Commands(core, Transport.CONSOLE)
    commands.run("ann", Command("start", "Acme Corp"))
    turns = Turns(core)
    for typed in consenting_answers:
        finished = turns.reply("ann", typed)
    assert finished.team and "completed" in keys(finished)  # the team hears of it once, at the end
    commands.run("ann", Command("edit", "Acme Corp in their words"))
    edited = turns.reply("ann", "Far too dear")
    assert edited.team == [] and "completed" not in keys(edited) and "edited" in keys(edited)
    assert any(isinstance(p, Summary) for p in edited.parts)


def test_a_lapsed_save_attempt_shows_in_the_status(core):
    commands = saving(core)
    Lifecycle(core.departures).lapse_save(core.departures.get(1))
    [summary] = [p for p in commands.run("ann", Command("status", "Acme")).parts if isinstance(p, Summary)]
    assert summary.status is Status.LEAVING and summary.save_outcome == "lapsed"
    text = "\n".join(Lines(core.prompts.messages).summary(summary))
    assert "leaving" in text and "save lapsed" in text
