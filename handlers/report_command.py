"""``sendoff report``: the lessons of a period as text, CSV or JSON, with a chart if asked; works while the bot runs.

A TinyDB file is opened read-only (storage.tinydb_store.ReadOnlyTinyDBStore): no
lock, nothing written, so the report may run beside ``sendoff run`` or
``sendoff console``; it then says that the figures are as of their last write.
PostgreSQL is read like any other client of the database.
The figures are bot.reports's, the same as /report's and the digest's.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from bot.clock import data_clock
from bot.departures import Departures
from bot.periods import Period, between
from bot.replies import CommandRef, Medium, Refusal, Say, words
from bot.reports import (
    ReportFormat,
    build_report,
    chart_png,
    read_report_words,
    render_report_text,
    report_csv,
    report_json,
    write_report_file,
)
from bot.settings import Settings
from prompts import Messages, load_prompts
from storage import Store, open_store
from storage.tinydb_store import ReadOnlyTinyDBStore


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("period", nargs="*", metavar="PERIOD",
                        help='"last quarter", "this month", 2027, 2027-03, "Q1 2027", "last 30 days" '
                             "(default: every departure)")  # fmt: skip
    parser.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the first day (the departures recorded from that day on)")  # fmt: skip
    parser.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the last day, included")  # fmt: skip
    parser.add_argument("--format", choices=[f.value for f in ReportFormat], default=ReportFormat.TEXT.value,
                        help="text (default), csv (one row per departure) or json")  # fmt: skip
    parser.add_argument("--chart", type=Path, metavar="FILE.png",
                        help="also draw the chart: reasons, save rate, revenue lost, per month")  # fmt: skip


class ReportUsageError(Exception):
    """What the person typed names no period; the message says what would."""


def _cli(ref: CommandRef) -> str:
    return f"sendoff {ref.name} {ref.argument}".strip()


def _period(args: argparse.Namespace, today: date, messages: Messages) -> Period:
    if args.period and (args.start or args.end):
        raise ReportUsageError("give the period in words or with --from/--to, not both")
    if args.start and args.end and args.start > args.end:
        raise ReportUsageError(messages.render("report_dates_reversed", start=args.start, end=args.end))
    if not args.period:
        return between(args.start, args.end)
    try:
        return read_report_words(" ".join(args.period), today).period
    except Refusal as refusal:
        raise ReportUsageError(words(messages, Say(refusal.key, refusal.values), Medium(command=_cli))) from None


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    prompts = load_prompts(settings.prompts_dir)
    # PostgreSQL serves readers beside writers by itself; a TinyDB file is read without its lock.
    store: Store = open_store(settings.db_url) if settings.db_url else ReadOnlyTinyDBStore(settings.db_path)
    try:
        departures = Departures(store, prompts, data_clock(settings.db_path), timezone=settings.timezone,
                                currency=settings.currency, admins=settings.admins)  # fmt: skip
        try:
            period = _period(args, departures.today(), prompts.messages)
        except ReportUsageError as err:
            print(f"sendoff report: {err}", file=sys.stderr)
            return 2
        report = build_report(departures, period)
        if isinstance(store, ReadOnlyTinyDBStore) and store.in_use and store.as_of is not None:
            when = f"{store.as_of.astimezone(departures.zone):%Y-%m-%d %H:%M:%S} {departures.zone.key}"
            print(prompts.messages.render("report_as_of", path=settings.db_path, when=when), file=sys.stderr)
        fmt = ReportFormat(args.format)
        if fmt is ReportFormat.CSV:
            sys.stdout.buffer.write(report_csv(report))
        elif fmt is ReportFormat.JSON:
            sys.stdout.buffer.write(report_json(report))
        else:
            print(render_report_text(report, prompts))
        sys.stdout.flush()
        if args.chart is not None:
            chart: Path = args.chart
            written = write_report_file(chart.parent if str(chart.parent) else Path("."), chart.name,
                                        chart_png(report, prompts.messages))  # fmt: skip
            print(prompts.messages.render("report_chart_saved", path=written), file=sys.stderr)
        return 0
    finally:
        store.close()
