from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.clock import ManualClock
from bot.settings import Settings
from prompts import Prompts, load_prompts

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
def core(settings: Settings, clock: ManualClock) -> Core:
    built = build_core(settings, clock=clock)
    yield built
    built.close()
