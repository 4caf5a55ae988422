import pytest

from bot.answers import AnswerError
from bot.departures import DepartureError
from bot.reports import build_report, render_report_text
from bot.settings import SettingsError, load_settings


def answer_all(core, record, *answers, actor="ann"):
    for raw in answers:
        if raw == "skip":
            record, _ = core.departures.skip(record, actor=actor)
        else:
            record, _ = core.departures.answer(record, raw, actor=actor)
    return record


WHY = ["yes", "call", "today", "price", "too dear", "1,000 EUR"]


def test_starting_the_same_client_twice_offers_the_open_one(core):
    first = core.departures.start("Acme Corp", am="ann", source="console")
    again = core.departures.start("  acme   CORP ", am="bob", source="slack")
    assert first.created and not again.created
    assert again.departure["id"] == first.departure["id"]
    assert core.store.count_departures() == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_bad_client_name_stores_nothing(core, name):
    with pytest.raises(AnswerError):
        core.departures.start(name, am="ann", source="console")
    assert core.store.count_departures() == 0


def test_a_name_with_a_broadcast_is_stored_neutralised(core):
    record = core.departures.start("Acme <!channel>\r\nCorp", am="ann", source="console").departure
    assert core.store.get_departure(record["id"])["client"] == "Acme ＠channel Corp"


def test_answers_move_the_status_and_every_change_is_audited(core, clock):
    record = core.departures.start("Acme", am="ann", source="console").departure
    record = answer_all(core, record, *WHY, "maybe")
    assert record["status"] == "saving"
    core.departures.edit(record, "fixable", actor="ann")
    record = answer_all(core, core.departures.get(record["id"]), "no")
    stored = core.store.get_departure(record["id"])
    assert stored["status"] == "leaving"
    statuses = [(h["from"], h["to"]) for h in stored["history"] if h["event"] == "status"]
    assert statuses == [(None, "interviewing"), ("interviewing", "saving"), ("saving", "leaving")]
    edits = [h for h in stored["history"] if h["event"] == "answer" and h["question"] == "fixable"]
    assert [(e["from"], e["to"]) for e in edits] == [(None, "Maybe"), ("Maybe", "No")]


def test_only_allowed_status_moves_are_accepted(core):
    record = core.departures.start("Acme", am="ann", source="console").departure
    with pytest.raises(DepartureError, match="cannot become won back"):
        core.departures.set_status(record, "won_back", actor="ann")
    core.departures.set_status(record, "departed", actor="ann")
    assert core.departures.set_status(record, "won_back", actor="ann")["status"] == "won_back"


def test_others_cannot_change_a_departure(core):
    record = core.departures.start("Acme", am="ann", source="console").departure
    with pytest.raises(DepartureError, match="Only the account manager"):
        core.departures.set_status(record, "retained", actor="mallory")
    with pytest.raises(DepartureError):
        core.departures.forget(record, actor="mallory")
    assert core.departures.get(record["id"])["status"] == "interviewing"


def test_forget_keeps_only_anonymous_counts(core):
    record = core.departures.start("Acme", am="ann", source="console").departure
    record = answer_all(core, record, *WHY, "no", "skip", "skip", "skip", "skip", "yes", "skip", "skip", "yes",
                        "Jane Roe", "jane@acme.test")  # fmt: skip
    core.departures.forget(record, actor="ann")
    stored = core.store.get_departure(record["id"])
    text = str(stored)
    assert "Acme" not in text and "jane" not in text.lower() and "too dear" not in text
    assert core.departures.answer_value(stored, "reason") == "price"
    assert core.departures.find("Acme") is None


def test_a_prefix_finds_a_single_client_and_an_ambiguous_one_is_refused(core):
    core.departures.start("Acme Corp", am="ann", source="console")
    assert core.departures.find("acme")["client"] == "Acme Corp"
    core.departures.start("Acme Labs", am="ann", source="console")
    with pytest.raises(DepartureError, match="could be Acme Corp, Acme Labs"):
        core.departures.find("acme")


def test_the_report_counts_reasons_saves_revenue_and_workload(core):
    d = core.departures
    saved = answer_all(core, d.start("Saved Ltd", am="ann", source="console").departure, *WHY, "yes")
    d.set_status(saved, "retained", actor="ann")
    lost = answer_all(core, d.start("Lost Ltd", am="ann", source="console").departure, *WHY, "maybe")
    d.set_status(lost, "departed", actor="ann")
    answer_all(core, d.start("Open Ltd", am="bob", source="console").departure,
               "yes", "call", "today", "competitor", "skip", "skip", "$500")  # fmt: skip
    report = build_report(d)
    assert report.total == 3 and report.open == 1
    assert dict(report.reasons) == {"Price or budget": 2, "Moved to a competitor": 1}
    assert (report.save_attempts, report.retained, report.rectifiable_lost) == (2, 1, 1)
    assert report.save_rate == 0.5
    assert {k: str(v) for k, v in report.revenue_at_stake.items()} == {"USD": "500"}
    assert {k: str(v) for k, v in report.revenue_lost.items()} == {"EUR": "1000"}
    assert [(w.am, w.departures, w.open) for w in report.workload] == [("ann", 2, 0), ("bob", 1, 1)]
    assert "save rate 50%" in render_report_text(report)


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
