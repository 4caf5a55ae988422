from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.clock import ManualClock
from bot.settings import Settings
from prompts import Prompts, load_prompts
from tests.fakes.notifier import RecordingNotifier

# A Wednesday, well inside a normal week in Europe/Berlin.
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def prompts() -> Prompts:
    return load_prompts()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_path=tmp_path / "data" / "sendoff.json", timezone="Europe/Berlin", console_user="ann")


@pytest.fixture
def notifier() -> RecordingNotifier:
    """What the core tells people (nudges, drafts, the digest), kept for the test to read."""
    return RecordingNotifier()


@pytest.fixture
def core(settings: Settings, notifier: RecordingNotifier, clock: ManualClock) -> Iterator[Core]:
    built = build_core(settings, notifier, clock=clock)
    yield built
    built.close()
