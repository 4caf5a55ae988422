"""SENDOFF_DB=postgresql://... as a user meets it: the settings, ``sendoff migrate``, ``sendoff move-data``, and
the refusals of ``run``, ``console`` and ``check`` on a database whose schema is not the newest.

The commands run in this process (``handlers.cli.main``) against the throw-away PostgreSQL cluster, with the
environment a user would set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.app import build_core
from bot.clock import ManualClock, clock_path
from bot.settings import Settings, SettingsError, load_settings
from handlers.cli import main
from storage.postgres_store import PostgresStore, head_revision
from storage.tinydb_store import TinyDBStore
from tests.conftest import START
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.slack import TOKEN
from tests.fakes.slack_driver import SIGNING_SECRET

pytest_plugins = ["tests.touch_data"]


@pytest.fixture
def user_env(monkeypatch, tmp_path):
    """A clean environment in an empty folder (no .env), as a user's shell would be; ``set(**values)`` adds."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "SENDOFF_", "SMTP_", "WEBHOOK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def password_of(url: str) -> str:
    return url.rpartition("@")[0].rpartition(":")[2]


def test_migrate_creates_the_schema_then_finds_it_up_to_date(user_env, pg_empty_url, capsys):
    user_env(SENDOFF_DB=pg_empty_url)
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    head = head_revision()
    assert f"none -> {head} (migrated)" in out and f"{head} -> {head} (already up to date)" in out
    assert password_of(pg_empty_url) not in out and "sendoff:***@127.0.0.1" in out
    assert main(["check"]) == 0
    assert "Configuration is valid. Data: postgresql+asyncpg://sendoff:***@" in capsys.readouterr().out


def test_migrate_with_a_file_has_nothing_to_do(user_env, tmp_path, capsys):
    user_env(SENDOFF_DB=str(tmp_path / "data" / "sendoff.json"))
    assert main(["migrate"]) == 0
    assert "Nothing to migrate" in capsys.readouterr().out
    assert not (tmp_path / "data").exists()


def test_run_console_and_check_refuse_a_database_that_needs_migrating(user_env, pg_empty_url, tmp_path, capsys):
    user_env(SENDOFF_DB=pg_empty_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, PORT="0")
    for command in ("run", "console", "check", "report", "preview"):
        assert main([command, *(["Acme"] if command == "preview" else [])]) == 2, command
        err = capsys.readouterr().err
        assert "Run `sendoff migrate`" in err and password_of(pg_empty_url) not in err, (command, err)
    assert not (tmp_path / "data").exists()  # nothing started, nothing written


def test_a_wrong_password_or_a_server_that_is_not_there_is_named_without_the_password(
    user_env, pg_url, pg_server, capsys
):
    wrong = pg_server.url(pg_url.rpartition("/")[2], password="Wr0ng-s3cret")
    user_env(SENDOFF_DB=wrong)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "password authentication failed" in err and "Wr0ng-s3cret" not in err and "sendoff:***@" in err
    user_env(SENDOFF_DB=pg_url.replace(f":{pg_server.port}/", ":1/"))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "cannot use the PostgreSQL database" in err and password_of(pg_url) not in err


def test_another_scheme_is_refused_naming_the_accepted_ones_and_never_echoing_it(user_env, capsys):
    user_env(SENDOFF_DB="mysql://admin:hunter2@db.example/sendoff")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "SENDOFF_DB: mysql:// is not a database sendoff can use" in err
    assert "postgresql://, postgres://, postgresql+asyncpg://" in err and "hunter2" not in err
    assert "admin" not in err and "db.example" not in err


def test_a_postgresql_url_keeps_the_local_files_in_the_data_folder(tmp_path):
    local = tmp_path / "local"
    env = {"SENDOFF_DB": "postgres://bot:pa55word@db.example:5433/sendoff", "SENDOFF_DATA_DIR": str(local)}
    settings = load_settings(env, dotenv=None)
    assert settings.db_url == "postgresql+asyncpg://bot:pa55word@db.example:5433/sendoff"
    assert settings.db_shown == "postgresql+asyncpg://bot:***@db.example:5433/sendoff"
    assert settings.data_dir == local and settings.outbox_dir == local / "outbox"
    assert clock_path(settings.db_path).parent == local  # the console's clock stays on this machine
    assert "pa55word" not in repr(settings)
    assert load_settings({"SENDOFF_DB": "postgresql://bot@db/x"}, dotenv=None).data_dir == Path("data")
    file_settings = load_settings({"SENDOFF_DB": "elsewhere/sendoff.json"}, dotenv=None)
    assert file_settings.db_url is None and file_settings.data_dir == Path("elsewhere")
    with pytest.raises(SettingsError, match="SENDOFF_DATA_DIR='local' is for SENDOFF_DB=postgresql://"):
        load_settings({"SENDOFF_DB": "elsewhere/sendoff.json", "SENDOFF_DATA_DIR": "local"}, dotenv=None)


def file_with_data(folder: Path, interview) -> Path:
    """A TinyDB file as the console leaves it: two departures (one answered to the end, with its touches),
    an event id and a team size."""
    path = folder / "data" / "sendoff.json"
    core = build_core(Settings(db_path=path, timezone="Europe/Berlin", console_user="ann"), RecordingNotifier(),
                      clock=ManualClock(START))  # fmt: skip
    try:
        interview(core.departures)
        core.departures.start("Müller GmbH", am="bob", source=core.departures.all()[0]["source"])
        core.store.remember_event("slack:Ev1", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")
        core.store.add_team_size({"count": 42, "at": "2026-11-01T00:00:00Z", "by": "ann",
                                  "said_at": "2026-11-25T10:00:00Z"})  # fmt: skip
    finally:
        core.close()
    return path


def test_move_data_copies_the_file_into_an_empty_database_keeping_ids(user_env, tmp_path, pg_empty_url, capsys,
                                                                       interview):  # fmt: skip
    path = file_with_data(tmp_path, interview)
    user_env(SENDOFF_DB=str(path))
    assert main(["move-data", "--to", pg_empty_url]) == 0
    out = capsys.readouterr().out
    source, target = TinyDBStore(path), PostgresStore(pg_empty_url)
    try:
        counts = {"departures": source.count_departures(), "touches": source.count_touches()}
        assert counts["touches"] > 3 and password_of(pg_empty_url) not in out
        assert f"none -> {head_revision()} (migrated)" in out
        for table, count in {**counts, "events": 1, "team_sizes": 1}.items():
            assert f"  {table:<12} {count:>7} copied, {count:>7} in the database" in out
        assert target.find_departures() == source.find_departures()  # ids, accents, enums, nested answers
        assert target.find_touches() == source.find_touches()
        assert target.team_sizes() == source.team_sizes()
        assert not target.remember_event("slack:Ev1", "2026-11-25T10:01:00Z", forget_before="2026-11-24T10:00:00Z")
        assert target.insert_departure(source.get_departure(1) | {"client": "Next"})["id"] == 3  # after the copied
    finally:
        source.close()
        target.close()
    assert main(["move-data", "--to", pg_empty_url]) == 2  # never into a database that holds records
    err = capsys.readouterr().err
    assert "already holds records (departures: 3" in err and password_of(pg_empty_url) not in err


def test_move_data_refuses_what_it_cannot_copy(user_env, tmp_path, pg_url, capsys):
    user_env(SENDOFF_DB=str(tmp_path / "nothing.json"))
    assert main(["move-data", "--to", pg_url]) == 2
    assert "there is no TinyDB file at" in capsys.readouterr().err
    assert main(["move-data", "--to", "mysql://u:hunter2@db/x"]) == 2
    err = capsys.readouterr().err
    assert "--to: mysql:// is not a database" in err and "hunter2" not in err
    user_env(SENDOFF_DB=pg_url)
    assert main(["move-data", "--to", pg_url]) == 2
    assert "set SENDOFF_DB to the file" in capsys.readouterr().err
