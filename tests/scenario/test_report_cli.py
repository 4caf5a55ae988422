"""``sendoff report`` as a user runs it: a real process against a store a test filled, and beside a running console."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import build_core
from bot.clock import ManualClock
from bot.reports import CSV_COLUMNS
from bot.settings import Settings
from tests.fakes.console_driver import Console, console_env
from tests.fakes.notifier import RecordingNotifier
from tests.unit.test_report_figures import hand_made_set
from tests.unit.test_report_files import png_size

pytestmark = pytest.mark.slow


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A folder whose data/sendoff.json holds the hand-made departures (the store closed again)."""
    settings = Settings(db_path=tmp_path / "data" / "sendoff.json", timezone="Europe/Berlin", console_user="ann")
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    core = build_core(settings, RecordingNotifier(), clock=clock)
    try:
        hand_made_set(core, clock)
    finally:
        core.close()
    return tmp_path


def report(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "handlers.cli", "report", *args], cwd=folder,
                          env=console_env(folder), capture_output=True, timeout=60, check=False)  # fmt: skip


def test_report_of_a_quarter_as_text_csv_json_and_a_chart(filled):
    text = report(filled, "--from", "2026-07-01", "--to", "2026-09-30")
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    assert out.startswith("Departures recorded in 2026-Q3 (2026-07-01 to 2026-09-30, Europe/Berlin)")
    assert "6 departures (2 open)" in out and "save rate 25%" in out and "2026-Q2" in out
    assert text.stderr == b""  # nobody else had the data open: nothing to warn about

    as_csv = report(filled, "Q3", "2026", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 6
    assert [r["client"] for r in rows if r["forgotten"] == "yes"] == [""]

    as_json = report(filled, "--from", "2026-04-01", "--format", "json", "--chart", "out/chart.png")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["period"]["start"] == "2026-04-01" and data["figures"]["departures"] == 8
    chart = filled / "out" / "chart.png"
    assert png_size(chart.read_bytes())[0] >= 600
    assert f"Chart: {Path('out/chart.png')}" in as_json.stderr.decode()


def test_words_that_name_no_period_are_refused_with_an_example(filled):
    refused = report(filled, "the", "good", "old", "days")
    assert refused.returncode == 2 and refused.stdout == b""
    error = refused.stderr.decode()
    assert 'I do not know the period "the good old days"' in error and "sendoff report last quarter" in error
    reversed_dates = report(filled, "--from", "2026-09-30", "--to", "2026-07-01")
    assert reversed_dates.returncode == 2 and "starts after it ends" in reversed_dates.stderr.decode()


def test_report_works_while_the_console_holds_the_data_and_says_as_of_when(filled):
    data = filled / "data"
    with Console(filled) as console:
        console.send("/departure Newco")
        console.next_question()  # the departure is on disk (in the journal) before its first question shows
        running = report(filled, "--format", "json")
        assert running.returncode == 0, running.stderr
        assert json.loads(running.stdout)["figures"]["departures"] == 9  # the 8 in the snapshot, Newco in the journal
        note = running.stderr.decode()
        assert f"sendoff is running on {data / 'sendoff.json'}: these figures are as of its last write" in note
        console.send("/quit")
        assert console.close() == 0, console.errors
    assert not list(data.glob("*.tmp")) and not (data / "reports").exists()  # the report wrote nothing there
