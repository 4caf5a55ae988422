"""The ``sendoff`` command: console, run, report, check, preview, migrate, move-data, backup.

The entry point sits above the layers it wires: it picks the transport,
which builds the core with its own notifier.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot import __version__
from bot.clock import ClockFileError, SavedClock, clock_path
from bot.departures import rekey_departures
from bot.settings import Settings, SettingsError, load_settings
from handlers.console import run_console
from handlers.logs import configure_logging
from handlers.preview_command import preview_emails
from handlers.report_command import add_report_arguments, run_report
from handlers.server import serve
from prompts import PromptError, load_prompts
from storage import StoreError, database_url, mask_url, open_store
from storage.backup import backup_tinydb, default_backup_path
from storage.tinydb_store import TinyDBStore

# What reads or writes the data: each refuses a PostgreSQL database whose schema is not the newest.
USES_DATA = frozenset({"console", "run", "report", "preview"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sendoff", description="Record client departures and learn from them.")
    parser.add_argument("--version", action="version", version=f"sendoff {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("console", help="chat with the bot in this terminal (no Slack needed)")
    commands.add_parser("run", help="serve Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP on PORT)")
    add_report_arguments(commands.add_parser(
        "report", help="reasons, save rate, revenue and workload of a period, as text, CSV or JSON, with a chart"))
    commands.add_parser("check", help="validate the configuration and the prompts, then exit")
    preview = commands.add_parser("preview", help="write a client's next emails as HTML files to open in a browser")
    preview.add_argument("client", nargs="+", help="the client's name (the start of it is enough)")
    commands.add_parser("migrate", help="create or upgrade the PostgreSQL schema of SENDOFF_DB=postgresql://...")
    move = commands.add_parser(
        "move-data", help="copy the TinyDB file at SENDOFF_DB into an empty PostgreSQL database, ids kept")
    move.add_argument("--to", required=True, metavar="postgresql://...",
                      help="the database: postgresql://user:password@host:5432/database")  # fmt: skip
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the TinyDB file (also while the bot runs); pg_dump for PostgreSQL")
    backup.add_argument("--to", metavar="FILE", help="where (default: data/backups/sendoff-<UTC time>.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "check":
            return _check(settings)
        if args.command == "run" and settings.problems_for_run():
            raise SettingsError(settings.problems_for_run())
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "move-data":
            return _move_data(settings, args.to)
        if args.command == "backup":
            return _backup(settings, args.to)
        if args.command in USES_DATA and settings.db_url is not None:
            _check_database(settings.db_url)
        if args.command == "console":
            # The console's clock moves with /advance and is kept beside the data; everything else keeps
            # the system's.
            clock = SavedClock(clock_path(settings.db_path))
            asyncio.run(run_console(settings, clock))
        elif args.command == "run":
            configure_logging(settings.log_format)
            asyncio.run(serve(settings))
        elif args.command == "report":
            return run_report(settings, args)
        elif args.command == "preview":
            return preview_emails(settings, " ".join(args.client))
    except (SettingsError, PromptError, StoreError, ClockFileError) as err:
        print(f"sendoff: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _check(settings: Settings) -> int:
    load_prompts(settings.prompts_dir)
    if settings.db_url is not None:
        _check_database(settings.db_url)  # reachable, and at the newest schema
    print(f"Configuration is valid. Data: {settings.db_shown}. Prompts: {settings.prompts_dir or 'built-in'}.")
    return 0


def _check_database(url: str) -> None:
    """StoreError (saying to run ``sendoff migrate``) unless the database is reachable and at the newest schema.

    Imported here: SQLAlchemy and Alembic cost a TinyDB user nothing.
    """
    from storage.postgres_store import check_schema

    check_schema(url)


def _migrate(settings: Settings) -> int:
    if settings.db_url is None:
        print(f"Nothing to migrate: {settings.db_path} is a TinyDB file, which needs no migration. "
              f"Set SENDOFF_DB=postgresql://... to create or upgrade a PostgreSQL database.")  # fmt: skip
        return 0
    from storage.postgres_store import migrate

    before, after = migrate(settings.db_url)
    done = "already up to date" if before == after else "migrated"
    print(f"Schema of {settings.db_shown}: {before or 'none'} -> {after} ({done}).")
    return 0


def _move_data(settings: Settings, to: str) -> int:
    """Copy the TinyDB file at SENDOFF_DB into the database at ``to``, which gets sendoff's schema first."""
    if settings.db_url is not None:
        raise StoreError("move-data copies the TinyDB file at SENDOFF_DB into PostgreSQL, and SENDOFF_DB is "
                         "a database URL: set SENDOFF_DB to the file (such as data/sendoff.json) "
                         "for the move.")  # fmt: skip
    try:
        url = database_url(to)
    except ValueError as err:
        raise StoreError(f"--to: {err}") from None
    if url is None:
        raise StoreError("--to must be a PostgreSQL URL: postgresql://user:password@host:5432/database")
    if not settings.db_path.is_file():
        raise StoreError(f"there is no TinyDB file at {settings.db_path} to move (SENDOFF_DB names the file).")
    from storage.postgres_store import migrate, move_data

    shown = mask_url(url)
    before, after = migrate(url)
    if before != after:
        print(f"Schema of {shown}: {before or 'none'} -> {after} (migrated).")
    # The writer's lock: a running bot (which would write meanwhile) makes this stop with a message.
    source = TinyDBStore(settings.db_path)
    try:
        copied, found = move_data(source, url)
    finally:
        source.close()
    target = open_store(url)
    try:
        rekey_departures(target)  # the file's older keys: processes on a database never re-key at start-up
    finally:
        target.close()
    print(f"Copied {settings.db_path} into {shown}, ids kept:")
    for table, count in copied.items():
        print(f"  {table:<12} {count:>7} copied, {found[table]:>7} in the database")
    print(f"To use it: SENDOFF_DB=postgresql://... (the URL above). {settings.db_path} is left as it was.")
    return 0


def _backup(settings: Settings, to: str | None) -> int:
    if settings.db_url is not None:
        raise StoreError("sendoff backup copies a TinyDB file; for PostgreSQL use pg_dump (see the README): "
                         "pg_dump --format=custom --file=sendoff.dump <database>")  # fmt: skip
    destination = Path(to) if to else default_backup_path(settings.db_path, datetime.now(UTC))
    counts = backup_tinydb(settings.db_path, destination)
    shown = ", ".join(f"{table}: {count}" for table, count in counts.items())
    print(f"Wrote {destination}: {shown}. To use it: SENDOFF_DB={destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
