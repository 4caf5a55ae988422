"""The report's files: the chart (a PNG), the CSV (one row per departure) and the JSON; /report in the console."""

from __future__ import annotations

import csv
import io
import json
import struct

from bot.chat_commands import Commands, Transport
from bot.command_words import Command
from bot.replies import Preformatted, Say
from bot.reports import CSV_COLUMNS, build_report, chart_png, report_csv, report_json
from tests.unit.test_report_figures import Q3, hand_made_set

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's header chunk (IHDR comes first)."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_of_a_sensible_size(core, clock, prompts):
    hand_made_set(core, clock)
    chart = chart_png(build_report(core.departures, Q3), prompts.messages)
    width, height = png_size(chart)
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    assert 10_000 < len(chart) < 1_000_000  # bars and lines, not an empty canvas


def test_a_period_with_no_departure_still_gets_a_picture(core, prompts):
    chart = chart_png(build_report(core.departures), prompts.messages)
    assert png_size(chart)[0] >= 600


def test_the_csv_has_the_documented_columns_and_nothing_personal_of_a_forgotten_departure(core, clock):
    ids = hand_made_set(core, clock)
    text = report_csv(build_report(core.departures, Q3)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == [ids[n] for n in ("Saved Co", "Kept Co", "Lapsed Co", "Left Co",
                                                              "Forgot Co", "Open Co")]  # fmt: skip
    by_client = {r["client"]: r for r in rows}
    assert (by_client["Saved Co"]["save_attempt"], by_client["Saved Co"]["save_outcome"]) == ("yes", "saved")
    assert (by_client["Kept Co"]["save_attempt"], by_client["Kept Co"]["status"]) == ("no", "retained")
    assert by_client["Lapsed Co"]["save_outcome"] == "lapsed" and by_client["Lapsed Co"]["revenue"] == "lost"
    assert (by_client["Left Co"]["mrr"], by_client["Left Co"]["currency"]) == ("300", "USD")
    assert by_client["Open Co"]["revenue"] == "at_stake" and by_client["Open Co"]["save_outcome"] == "under_way"
    assert by_client["Saved Co"]["days_to_decision"] == "10" and by_client["Saved Co"]["notified_on"] == "2026-07-03"
    [forgot] = [r for r in rows if r["forgotten"] == "yes"]
    assert forgot["client"] == forgot["account_manager"] == forgot["country"] == forgot["notified_on"] == ""
    assert (forgot["reason"], forgot["mrr"], forgot["revenue"]) == ("price", "700", "lost")  # anonymous: kept
    assert "Forgot Co" not in text


def test_an_export_names_only_the_clients_the_reader_may_see(core, clock):
    hand_made_set(core, clock)
    report = build_report(core.departures, Q3)
    rows = list(csv.DictReader(io.StringIO(report_csv(report, lambda row: row.am == "ann").decode())))
    assert {r["client"] for r in rows if r["account_manager"] == "bob"} == {""}
    assert {r["client"] for r in rows if r["account_manager"] == "ann"} == {"Saved Co", "Kept Co", "Open Co"}


def test_the_json_holds_the_figures_the_period_before_and_each_departure(core, clock):
    hand_made_set(core, clock)
    data = json.loads(report_json(build_report(core.departures, Q3)))
    assert data["period"] == {"name": "2026-Q3", "span": "quarter", "start": "2026-07-01", "end": "2026-09-30"}
    assert data["previous_period"]["name"] == "2026-Q2" and data["zone"] == "Europe/Berlin"
    figures = data["figures"]
    assert (figures["departures"], figures["saved"], figures["save_rate"]) == (6, 1, 0.25)
    assert figures["revenue_lost"] == {"EUR": "2700", "USD": "300"} and figures["revenue_at_stake"] == {"EUR": "400"}
    assert data["previous"]["departures"] == 2
    assert [m["key"] for m in data["monthly"]] == ["2026-07", "2026-08", "2026-09"]
    assert {a["account_manager"] for a in data["by_account_manager"]} == {"ann", "bob"}
    assert len(data["departures"]) == 6 and set(data["departures"][0]) == set(CSV_COLUMNS)


def test_report_in_the_console_writes_the_chart_under_the_data_folder_and_says_where(core, clock, settings):
    hand_made_set(core, clock)
    commands = Commands(core, Transport.CONSOLE)
    result = commands.run("ann", Command("report", "Q3 2026 csv"))
    says = {p.key: p.values for p in result.parts if isinstance(p, Say)}
    reports = settings.db_path.parent / "reports"
    assert says["report_chart_saved"]["path"] == str(reports / "report-2026-Q3.png")
    assert says["report_export_saved"] == {"format": "CSV", "path": str(reports / "report-2026-Q3.csv")}
    assert (reports / "report-2026-Q3.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (reports / "report-2026-Q3.csv").read_text().startswith(",".join(CSV_COLUMNS))
    assert any(isinstance(p, Preformatted) and "6 departures" in p.text for p in result.parts)
    # in Slack the same command writes nothing: the listener uploads the files
    slack = Commands(core, Transport.SLACK).run("ann", Command("report", "Q3 2026"))
    assert [p.key for p in slack.parts if isinstance(p, Say)] == ["report_chart_in_dm"]
