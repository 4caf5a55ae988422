"""The ``sendoff`` command: console, run, report, check.

The entry point sits above the layers it wires: it picks the transport,
which builds the core with its own notifier.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bot import __version__
from bot.clock import ClockFileError, SavedClock, clock_path
from bot.settings import Settings, SettingsError, load_settings
from handlers.console import run_console
from handlers.preview_command import preview_emails
from handlers.report_command import add_report_arguments, run_report
from handlers.server import serve
from prompts import PromptError, load_prompts
from storage import StoreError


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "check":
            return _check(settings)
        if args.command == "run" and settings.problems_for_run():
            raise SettingsError(settings.problems_for_run())
        if args.command == "console":
            # The console's clock moves with /advance and is kept beside the data; everything else keeps
            # the system's.
            clock = SavedClock(clock_path(settings.db_path))
            asyncio.run(run_console(settings, clock))
        elif args.command == "run":
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    print(f"Configuration is valid. Data: {settings.db_path}. Prompts: {settings.prompts_dir or 'built-in'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
