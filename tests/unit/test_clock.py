"""The console's clock is kept with the data: it survives restarts and never moves backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ClockFileError, SavedClock


def test_a_moved_clock_is_where_it_was_left_after_a_restart(tmp_path):
    path = tmp_path / "sendoff.json.clock"
    clock = SavedClock(path)
    later = clock.now() + timedelta(days=400)
    clock.set(later)
    assert SavedClock(path).now() == later


def test_it_never_moves_backwards(tmp_path):
    clock = SavedClock(tmp_path / "clock")
    with pytest.raises(ValueError):
        clock.set(clock.now() - timedelta(minutes=1))
    # a clock saved in the past starts at today instead: forward, never back
    (tmp_path / "old").write_text('{"now": "2001-01-01T00:00:00.000Z"}\n')
    assert SavedClock(tmp_path / "old").now() > datetime(2020, 1, 1, tzinfo=UTC)


def test_a_damaged_clock_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "clock"
    path.write_text("{not json")
    with pytest.raises(ClockFileError, match="damaged"):
        SavedClock(path)
    assert path.read_text() == "{not json"
