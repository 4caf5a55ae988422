import pytest

from bot.answers import AnswerError
from bot.lifecycle import Lifecycle
from bot.privacy import Privacy
from bot.replies import Refusal
from bot.reports import build_report, render_report_text
from bot.settings import SettingsError, load_settings
from storage.records import AuditEvent, Source, Status


def answer_all(core, record, *answers, actor="ann"):
    for raw in answers:
        if raw == "skip":
            record, _ = core.departures.skip(record, actor=actor)
        else:
            record, _ = core.departures.answer(record, raw, actor=actor)
    return record


WHY = ["yes", "call", "today", "price", "too dear", "1,000 EUR"]


def test_starting_the_same_client_twice_offers_the_open_one(core):
    first = core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE)
    again = core.departures.start("  acme   CORP ", am="bob", source=Source.SLACK)
    assert first.created and not again.created
    assert again.departure["id"] == first.departure["id"]
    assert core.store.count_departures() == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_bad_client_name_stores_nothing(core, name):
    with pytest.raises(AnswerError):
        core.departures.start(name, am="ann", source=Source.CONSOLE)
    assert core.store.count_departures() == 0


def test_a_name_with_a_broadcast_is_stored_neutralised(core):
    record = core.departures.start("Acme <!channel>\r\nCorp", am="ann", source=Source.CONSOLE).departure
    assert core.store.get_departure(record["id"])["client"] == "Acme ＠channel Corp"


def test_answers_move_the_status_and_every_change_is_audited(core, clock):
    record = core.departures.start("Acme", am="ann", source=Source.CONSOLE).departure
    record = answer_all(core, record, *WHY, "maybe")
    assert record["status"] is Status.SAVING
    core.departures.edit(record, "fixable", actor="ann")
    record = answer_all(core, core.departures.get(record["id"]), "no")
    stored = core.store.get_departure(record["id"])
    assert stored["status"] == "leaving"
    statuses = [(h["from"], h["to"]) for h in stored["history"] if h["event"] is AuditEvent.STATUS]
    assert statuses == [(None, "interviewing"), ("interviewing", "saving"), ("saving", "leaving")]
    edits = [h for h in stored["history"] if h["event"] == "answer" and h["question"] == "fixable"]
    assert [(e["from"], e["to"]) for e in edits] == [(None, "Maybe"), ("Maybe", "No")]


def test_only_allowed_status_moves_are_accepted(core):
    lifecycle = Lifecycle(core.departures)
    record = core.departures.start("Acme", am="ann", source=Source.CONSOLE).departure
    with pytest.raises(Refusal) as refused:
        lifecycle.set_status(record, Status.WON_BACK, actor="ann")
    assert refused.value.key == "bad_status" and refused.value.values["status"] == "won back"
    assert core.departures.get(record["id"])["status"] is Status.INTERVIEWING
    lifecycle.set_status(record, Status.DEPARTED, actor="ann")
    assert lifecycle.set_status(record, Status.WON_BACK, actor="ann")["status"] is Status.WON_BACK


def test_others_cannot_change_a_departure(core):
    record = core.departures.start("Acme", am="ann", source=Source.CONSOLE).departure
    with pytest.raises(Refusal, match="not_allowed"):
        Lifecycle(core.departures).set_status(record, Status.RETAINED, actor="mallory")
    with pytest.raises(Refusal, match="not_allowed"):
        Privacy(core.departures).forget(record, actor="mallory")
    assert core.departures.get(record["id"])["status"] is Status.INTERVIEWING


def test_forget_keeps_only_anonymous_counts(core):
    record = core.departures.start("Acme", am="ann", source=Source.CONSOLE).departure
    record = answer_all(core, record, *WHY, "no", "skip", "skip", "skip", "skip", "yes", "skip", "skip", "yes",
                        "Jane Roe", "jane@acme.test")  # fmt: skip
    Privacy(core.departures).forget(record, actor="ann")
    stored = core.store.get_departure(record["id"])
    text = str(stored)
    assert "Acme" not in text and "jane" not in text.lower() and "too dear" not in text
    assert core.departures.answer_value(stored, "reason") == "price"
    assert core.departures.find("Acme") is None


def test_a_prefix_finds_a_single_client_and_an_ambiguous_one_is_refused(core):
    core.departures.start("Acme Corp", am="ann", source=Source.CONSOLE)
    assert core.departures.find("acme")["client"] == "Acme Corp"
    core.departures.start("Acme Labs", am="ann", source=Source.CONSOLE)
    with pytest.raises(Refusal) as refused:
        core.departures.find("acme")
    assert refused.value.values["candidates"] == "Acme Corp, Acme Labs"


def test_the_report_counts_reasons_saves_revenue_and_workload(core):
    d = core.departures
    saved = answer_all(core, d.start("Saved Ltd", am="ann", source=Source.CONSOLE).departure, *WHY, "yes")
    Lifecycle(d).set_status(saved, Status.RETAINED, actor="ann")
    lost = answer_all(core, d.start("Lost Ltd", am="ann", source=Source.CONSOLE).departure, *WHY, "maybe")
    Lifecycle(d).set_status(lost, Status.DEPARTED, actor="ann")
    answer_all(core, d.start("Open Ltd", am="bob", source=Source.CONSOLE).departure,
               "yes", "call", "today", "competitor", "skip", "skip", "$500")  # fmt: skip
    report = build_report(d)
    assert report.total == 3 and report.open == 1
    assert dict(report.reasons) == {"Price or budget": 2, "Moved to a competitor": 1}
    assert (report.save_attempts, report.retained, report.rectifiable_lost) == (2, 1, 1)
    assert report.save_rate == 0.5
    assert {k: str(v) for k, v in report.revenue_at_stake.items()} == {"USD": "500"}
    assert {k: str(v) for k, v in report.revenue_lost.items()} == {"EUR": "1000"}
    assert [(w.am, w.departures, w.open) for w in report.workload] == [("ann", 2, 0), ("bob", 1, 1)]
    assert "save rate 50%" in render_report_text(report, core.prompts)


def test_settings_take_the_environment_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("SENDOFF_TIMEZONE=Asia/Tokyo\nSENDOFF_CURRENCY=GBP\n")
    settings = load_settings({"SENDOFF_TIMEZONE": "Europe/Berlin"}, dotenv)
    assert (settings.timezone, settings.currency) == ("Europe/Berlin", "GBP")


def test_malformed_settings_name_the_variable():
    with pytest.raises(SettingsError) as err:
        load_settings({"SENDOFF_TIMEZONE": "Mars/Base", "PORT": "http", "SLACK_BOT_TOKEN": "abc"}, None)
    problems = "\n".join(err.value.problems)
    assert "SENDOFF_TIMEZONE" in problems and "PORT" in problems and "SLACK_BOT_TOKEN must start with xoxb-" in problems


def test_forget_on_an_open_departure_closes_it_and_leaves_nothing_to_ask_or_send(core):
    d = core.departures
    record = answer_all(core, d.start("Acme", am="ann", source=Source.CONSOLE).departure, *WHY, "maybe")
    assert record["status"] is Status.SAVING and d.resumable("ann") is not None
    pending = [t for t in core.store.find_touches(departure_id=record["id"]) if t["status"] == "pending"]
    assert pending, "a departure being saved has reminders planned"
    Privacy(d).forget(d.get(record["id"]), actor="ann")
    assert d.list_open() == [] and d.resumable("ann") is None
    touches = core.store.find_touches(departure_id=record["id"])
    assert all(t["status"] != "pending" for t in touches)
    report = build_report(d)
    assert report.revenue_at_stake == {} and {k: str(v) for k, v in report.revenue_lost.items()} == {"EUR": "1000"}
    assert dict(report.reasons) == {"Price or budget": 1}


def test_forget_leaves_no_address_on_any_touch(core):
    d = core.departures
    record = answer_all(core, d.start("Acme", am="ann", source=Source.CONSOLE).departure, *WHY, "no", "skip", "skip",
                        "skip", "skip", "yes", "skip", "skip", "yes", "Jane Roe", "1", "jane@acme.test")  # fmt: skip
    Lifecycle(d).set_status(d.get(record["id"]), Status.DEPARTED, actor="ann")
    assert any(t["recipient"] == "jane@acme.test" for t in core.store.find_touches(departure_id=record["id"]))
    Privacy(d).forget(d.get(record["id"]), actor="ann")
    assert "jane" not in str(core.store.find_touches(departure_id=record["id"])).lower()
