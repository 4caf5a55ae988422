from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.clock import ManualClock
from bot.settings import Settings
from prompts import Prompts, load_prompts
from tests.fakes.notifier import RecordingNotifier
from tests.pg_server import PgServer, find_binaries

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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throw-away PostgreSQL cluster for the session, stopped at its end. Without the server binaries the
    test skips, except under CI, where it must run (.ci/run installs Debian's postgresql package)."""
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server binaries are missing: .ci/run installs Debian's postgresql package")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
                    "apt-get install postgresql")  # fmt: skip
    server = PgServer(binaries).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL (postgresql://, with its password) of a database of this test's own, at the newest schema."""
    from storage.postgres_store import migrate

    name = pg_server.database(like=pg_server.template("sendoff_migrated", migrate))
    yield pg_server.url(name)
    pg_server.drop(name)


@pytest.fixture
def pg_empty_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of an empty database of this test's own, never migrated."""
    name = pg_server.database()
    yield pg_server.url(name)
    pg_server.drop(name)
