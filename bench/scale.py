"""Whether what a person waits for stays flat as the store grows: 10 departures against 10,000.

Builds two stores the way the bot fills one: a few hundred departures recorded
through the real interview over two years on the movable clock, each month's
due touches sent by the real dispatcher (to the outbox), then copied under new
client names until there are 10 and 10,000, and planned by the real playbook.
Each is built once into a file under the temp folder (keyed by the code that
built it) and copied before every measurement, so a second run starts at once.

For TinyDB, and for PostgreSQL when ``SENDOFF_BENCH_PG_URL`` names a database
the bench may fill (``postgresql://user:password@host/db``: it creates
``<db>_scale_<n>`` beside it), it prints the median of each of:

- start-up: open the store and build the core (the read), recover
  interrupted sends, plan_all (what ``sendoff console`` does before its
  first prompt), with that split;
- ``/status <client>``; recording one answer; one dispatch tick with nothing
  due and with one touch due;
- ``sendoff report`` (read-only open, build and render) on the larger store;

each as a ratio against the 10-departure store measured in the same run,
flagged ``!`` above the goal of 1.5x.

    python bench/scale.py [--departures 10000] [--baseline 10] [--repeat 5] [--rebuild]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder heads sys.path and would shadow the storage package; the root must head it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import copy
import hashlib
import io
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.answers import client_key
from bot.app import Core, build_core
from bot.chat_commands import Commands, Transport
from bot.clock import ManualClock
from bot.departures import Departures
from bot.lifecycle import Lifecycle
from bot.notify import LogNotifier
from bot.periods import between
from bot.playbook import new_touch
from bot.privacy import Privacy
from bot.reports import build_report, render_report_text
from bot.settings import Settings
from handlers.report_command import run_report
from prompts import load_prompts
from storage import Store
from storage.contract import TABLES
from storage.memory_store import MemoryStore
from storage.records import Channel, Departure, Source, Status, TouchKind
from storage.tinydb_store import ReadOnlyTinyDBStore, TinyDBStore

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.5
REPORT_GOAL = 2.0  # seconds, on the larger store
ZONE = "Europe/Berlin"
AM = "ann"
# The first month departures are recorded in (a Wednesday, 10:00 in Berlin), and how many months they span.
FIRST = datetime(2025, 1, 8, 9, tzinfo=UTC)
MONTHS = 24
# Where the clock stands when the stores are measured: a Wednesday morning, after the last month recorded.
NOW = FIRST + timedelta(weeks=106)
# Every answer of the default interview that is not given by a variant: a client who consents to everything.
ANSWERS: dict[str, str] = {
    "confirmed": "yes", "told_how": "1", "notified_on": "today", "reason": "1", "in_their_words": "Too dear",
    "competitor": "Rival Inc", "mrr": "1200", "fixable": "3", "save_plan": "A discount", "save_owner": "Jane",
    "save_by": "in 2 weeks", "final_payment": "500", "final_payment_due": "in 3 weeks", "data_ownership": "logos",
    "data_by": "in 4 weeks", "support_ends": "in 1 week", "agreement_signed": "yes", "client_requests": "none",
    "alternative": "none", "consent": "yes", "contact_name": "Jane Roe", "salutation": "1",
    "contact_email": "jane@client.example", "country": "Germany", "timezone": "1", "language": "en",
    "greetings": "yes", "topics": "SEO", "differently": "Talk sooner", "workload": "12",
}  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One kind of departure: answers in place of the consenting ones, and what happens after."""

    name: str
    answers: dict[str, str] = field(default_factory=dict)
    stop_after: int | None = None  # answers given before the AM stops (an unfinished interview)
    paid: bool = True
    then: str | None = None  # "retained", "opt_out"
    crm: bool = False  # reported by a CRM, nothing answered yet


VARIANTS = (
    Variant("de"),
    Variant("us", {"country": "United States", "reason": "5", "support_ends": "skip"}),
    Variant("fr", {"country": "France", "greetings": "no", "reason": "2"}),
    Variant("jp", {"country": "Japan", "reason": "4"}),
    Variant("no-consent", {"consent": "no", "reason": "3"}),
    Variant("saving", {"fixable": "1"}),
    Variant("unfinished", stop_after=9),
    Variant("unpaid", paid=False),
    Variant("retained", {"fixable": "2"}, then="retained"),
    Variant("opted-out", then="opt_out"),
    Variant("crm", crm=True),
    Variant("unsigned", {"agreement_signed": "no", "country": "United Kingdom"}),
)


# -- building -------------------------------------------------------------------------------------
def _settings(folder: Path, db: str | Path | None = None) -> Settings:
    return Settings(db_path=db if db is not None else folder / "sendoff.json", timezone=ZONE,  # type: ignore[arg-type]
                    console_user=AM)  # fmt: skip


def _record(core: Core, variant: Variant, client: str) -> None:
    departures = core.departures
    if variant.crm:
        departures.start(client, am="", source=Source.CRM, status=Status.REPORTED, context="from the CRM")
        return
    record = departures.start(client, am=AM, source=Source.CONSOLE).departure
    given = 0
    while (question := departures.current_question(record)) is not None:
        if variant.stop_after is not None and given >= variant.stop_after:
            return
        raw = variant.answers.get(question.id, ANSWERS[question.id])
        if raw == "skip":
            record, _ = departures.skip(record, actor=AM)
        else:
            record, _ = departures.answer(record, raw, actor=AM)
        given += 1
    if variant.paid:
        record = Lifecycle(departures).mark_paid(record, actor=AM)
    if variant.then == "retained":
        Lifecycle(departures).set_status(record, Status.RETAINED, actor=AM)
    elif variant.then == "opt_out":
        Privacy(departures).opt_out(record, actor=AM)


async def _templates(folder: Path) -> MemoryStore:
    """Every variant recorded once a month for ``MONTHS`` months, the bot sending what falls due between."""
    store = MemoryStore()
    clock = ManualClock(FIRST)
    core = build_core(_settings(folder), LogNotifier(), clock=clock, store=store)
    for month in range(MONTHS):
        clock.set(max(clock.now(), FIRST + timedelta(weeks=round(month * 52 / 12))))
        for variant in VARIANTS:
            _record(core, variant, f"{variant.name} {month:02d}")
        async for _ in core.dispatcher.run_until(FIRST + timedelta(weeks=round((month + 1) * 52 / 12))):
            pass
    async for _ in core.dispatcher.run_until(NOW):
        pass
    return store


def _copies(templates: MemoryStore, count: int) -> MemoryStore:
    """``count`` departures copied from the templates with their touches: the variants in turn, the months
    spread over the two years, so that even 10 hold most kinds of departure."""
    by_name = {d["client"]: d for d in templates.find_departures()}
    touches: dict[int | None, list[dict[str, Any]]] = {}
    for touch in templates.find_touches():
        touches.setdefault(touch["departure_id"], []).append(dict(touch))
    store = MemoryStore()
    with store.batch():
        for n in range(count):
            variant, month = VARIANTS[n % len(VARIANTS)], n * MONTHS // count % MONTHS
            template = by_name[f"{variant.name} {month:02d}"]
            record: dict[str, Any] = copy.deepcopy(dict(template))
            record.pop("id")
            record.pop("planned", None)  # what it was planned from names the template: planned afresh below
            record["client"] = f"{template['client']} {n:05d}"
            record["client_key"] = client_key(record["client"])
            saved = store.insert_departure(record)  # type: ignore[arg-type]
            prefix = f"{template['id']}:"
            for touch in touches.get(template["id"], []):
                cloned = copy.deepcopy(touch)
                cloned.pop("id")
                cloned["departure_id"] = saved["id"]
                cloned["key"] = f"{saved['id']}:{touch['key'][len(prefix) :]}"
                store.put_touch(cloned)  # type: ignore[arg-type]
        for touch in touches.get(None, []):  # the digests
            cloned = copy.deepcopy(touch)
            cloned.pop("id")
            store.put_touch(cloned)  # type: ignore[arg-type]
    return store


def _digest() -> str:
    """The code that builds a store: a change to it builds the stores again."""
    hashed = hashlib.blake2b(digest_size=8)
    for folder in ("bot", "storage", "prompts", "bench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".toml", ".j2"}:
                hashed.update(path.read_bytes())
    return hashed.hexdigest()


def save_tinydb(source: Store, path: Path) -> None:
    """``source`` written as a TinyDB file, ids kept, in one write."""
    target = TinyDBStore(path)
    with target.batch():
        for table in TABLES:
            for raw in source._select(table, lambda _: True):
                target._put(table, raw)
    target.close()


def build(counts: list[int], rebuild: bool) -> dict[int, Path]:
    """The TinyDB file of each size, built once per version of the code."""
    cache = Path(tempfile.gettempdir()) / "sendoff-bench-scale" / _digest()
    paths = {n: cache / f"{n}.json" for n in counts}
    if rebuild and cache.exists():
        shutil.rmtree(cache)
    missing = [n for n, p in paths.items() if not p.exists()]
    if not missing:
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        templates = asyncio.run(_templates(Path(work)))
        print(f"built {templates.count_departures()} departures through the interview in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)  # fmt: skip
        for n in missing:
            started = time.perf_counter()
            store = _copies(templates, n)
            core = build_core(_settings(Path(work)), LogNotifier(), clock=ManualClock(NOW), store=store)
            core.playbook.plan_all()  # as the bot would have planned each of them by now
            asyncio.run(core.dispatcher.run_due())  # and sent what is due now: a tick finds nothing due
            save_tinydb(store, paths[n])
            print(f"built {n} departures, {store.count_touches()} touches "
                  f"({paths[n].stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)  # fmt: skip
    return paths


# -- measuring --------------------------------------------------------------------------------------
@dataclass
class Figures:
    """Seconds, median of the repeats, per thing measured (and the start-up's parts)."""

    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _median(runs: list[float]) -> float:
    return statistics.median(runs) if runs else float("nan")


def _timed(act: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = act()
    return time.perf_counter() - started, result


class _Counted:
    """Counts the departures a playbook plans (plan_all calls plan once per departure it re-plans)."""

    def __init__(self, core: Core) -> None:
        self.count = 0
        self._plan = core.playbook.plan
        core.playbook.plan = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self._plan(*args, **kwargs)


def start_up(open_store: Callable[[], Store], folder: Path) -> tuple[Core, dict[str, float], int]:
    """What ``sendoff console`` does before its first prompt: its parts in seconds, and how many it re-planned."""
    parts: dict[str, float] = {}
    parts["read"], store = _timed(open_store)
    parts["core"], core = _timed(lambda: build_core(_settings(folder), LogNotifier(), clock=ManualClock(NOW),
                                                    store=store))  # fmt: skip
    counted = _Counted(core)
    parts["recover"], _ = _timed(core.dispatcher.recover)
    parts["plan_all"], _ = _timed(core.playbook.plan_all)
    return core, parts, counted.count


def _open_departure(core: Core) -> Departure:
    """A departure whose interview waits for an answer (an AM stopped half-way)."""
    for record in core.departures.list_open(AM):
        if core.departures.current_question(record) is not None:
            return record
    raise LookupError("no interview waits for an answer")


def requests(core: Core, repeat: int) -> dict[str, float]:
    """/status, one answer, and dispatch ticks, on a core that has started."""
    found: dict[str, list[float]] = {"/status": [], "answer": [], "tick, nothing due": [], "tick, one due": []}
    commands = Commands(core, Transport.CONSOLE)
    departures = core.departures
    client = departures.all()[-1]["client"]
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(core.dispatcher.run_due())  # what start-up's re-planning made due goes first
        record = _open_departure(core)
        for n in range(repeat):
            found["/status"].append(_timed(lambda: commands.status(AM, client))[0])
            question = departures.current_question(record)
            assert question is not None
            raw = ANSWERS[question.id]
            seconds, (record, _) = _timed(lambda record=record, raw=raw: departures.answer(record, raw, actor=AM))
            found["answer"].append(seconds)
            record = departures.get(record["id"])
            departures.edit(record, question.id, actor=AM)  # the same question again next time
            record = departures.get(record["id"])
            found["tick, nothing due"].append(_timed(lambda: loop.run_until_complete(core.dispatcher.run_due()))[0])
            # one nudge due now, to the AM in their working hours: claimed, delivered, its departure re-planned
            now = core.clock.now()
            core.store.put_touch(new_touch(f"{record['id']}:win_back:bench-{n}", record["id"], TouchKind.WIN_BACK,
                                           Channel.TEAM, AM, now, now + timedelta(days=7), ZONE, {}))  # fmt: skip
            seconds, settled = _timed(lambda: loop.run_until_complete(core.dispatcher.run_due()))
            assert [s.touch["key"] for s in settled] == [f"{record['id']}:win_back:bench-{n}"], settled
            found["tick, one due"].append(seconds)
    finally:
        loop.close()
    return {name: _median(runs) for name, runs in found.items()}


def report_tinydb(path: Path) -> float:
    """``sendoff report`` as typed: read-only open, build, render (the text to nowhere)."""
    args = argparse.Namespace(period=[], start=None, end=None, format="text", chart=None)
    with contextlib.redirect_stdout(io.StringIO()):
        seconds, code = _timed(lambda: run_report(_settings(path.parent, path), args))
    assert code == 0
    return seconds


def report_store(store: Store) -> float:
    """What ``sendoff report`` does once its store is open: build the report of every departure, render it."""
    prompts = load_prompts()

    def run() -> str:
        departures = Departures(store, prompts, ManualClock(NOW), timezone=ZONE)
        return render_report_text(build_report(departures, between(None, None)), prompts)

    return _timed(run)[0]


def measure_tinydb(built: dict[int, Path], repeat: int, work: Path) -> dict[int, Figures]:
    figures: dict[int, Figures] = {}
    for n, source in built.items():
        found = Figures()
        runs: dict[str, list[float]] = {}
        replanned = []
        for attempt in range(repeat):
            folder = work / f"tinydb-{n}-{attempt}"
            folder.mkdir()
            path = folder / "sendoff.json"
            shutil.copyfile(source, path)  # each start-up finds the store as the bot left it
            os.sync()  # on disk: the first fsync of a journal must not also write the copy out
            core, parts, count = start_up(lambda path=path: TinyDBStore(path), folder)  # type: ignore[misc]
            replanned.append(count)
            for name, seconds in parts.items():
                runs.setdefault(f"start-up: {name}", []).append(seconds)
            runs.setdefault("start-up", []).append(sum(parts.values()))
            if attempt == 0:
                found.seconds.update(requests(core, max(repeat, 5)))
            core.close()
            shutil.rmtree(folder)
        found.seconds.update({name: _median(r) for name, r in runs.items()})
        found.notes["start-up"] = f"re-planned {statistics.median(replanned):.0f} of {n}"
        found.seconds["report"] = _median([report_tinydb(source) for _ in range(repeat)])
        figures[n] = found
    return figures


# -- PostgreSQL ---------------------------------------------------------------------------------
def _pg_database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _analyze(url: str) -> None:
    """Table statistics, as autovacuum gathers them soon after a bulk load: the planner then uses the indexes."""
    import asyncpg

    connection = await asyncpg.connect(urlunsplit(urlsplit(url)._replace(scheme="postgresql")))
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _recreate(url: str, name: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    dsn = urlunsplit(parts._replace(scheme="postgresql"))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def measure_postgres(url: str, built: dict[int, Path], repeat: int, work: Path) -> dict[int, Figures] | str:
    """The same on PostgreSQL, through ``storage.open_store(url)``; a reason in words when it cannot run."""
    try:
        import storage
        from storage.postgres_store import migrate, move_data
    except ImportError as err:
        return f"storage.postgres_store is not available ({err})"
    if storage.database_url(url) is None:
        return "SENDOFF_BENCH_PG_URL is not a postgresql:// URL"
    base = urlsplit(url).path.lstrip("/") or "sendoff"
    figures: dict[int, Figures] = {}
    for n, source in built.items():
        name = f"{base}_scale_{n}"
        target = _pg_database_url(url, name)
        asyncio.run(_recreate(url, name))
        migrate(target)
        reader = ReadOnlyTinyDBStore(source)
        move_data(reader, target)
        reader.close()
        asyncio.run(_analyze(target))
        found = Figures()
        try:
            opened = storage.open_store(target)
        except Exception as err:  # noqa: BLE001 - any failure here says the URL form is not there yet
            return f"storage.open_store does not open a PostgreSQL URL yet ({err})"
        if type(opened).__name__ != "PostgresStore":
            opened.close()
            return f"storage.open_store gave a {type(opened).__name__} for a PostgreSQL URL"
        opened.close()
        folder = work / f"postgres-{n}"
        folder.mkdir()
        # A start-up changes what the next one finds (the plans it refreshed are noted): the first is the one
        # that finds the store as the bot left it, the others a store started just before.
        core, parts, count = start_up(lambda target=target: storage.open_store(target), folder)  # type: ignore[misc]
        found.seconds.update({f"start-up: {k}": v for k, v in parts.items()})
        found.seconds["start-up"] = sum(parts.values())
        found.notes["start-up"] = f"re-planned {count} of {n}"
        found.seconds.update(requests(core, max(repeat, 5)))
        found.seconds["report"] = _median([report_store(core.store) for _ in range(repeat)])
        core.close()
        figures[n] = found
    return figures


# -- printing -------------------------------------------------------------------------------------
ORDER = ("start-up", "start-up: read", "start-up: core", "start-up: recover", "start-up: plan_all", "/status",
         "answer", "tick, nothing due", "tick, one due", "report")  # fmt: skip
# Parts of a figure, shown for the split but not held to the goal themselves.
PARTS = frozenset(name for name in ORDER if name.startswith("start-up: "))


def show(backend: str, figures: dict[int, Figures], baseline: int, large: int) -> list[str]:
    """One table; the names of the figures above the goal."""
    base, big = figures[baseline], figures[large]
    print(f"\n{backend}: {baseline} departures (the baseline) against {large}")
    print(f"{'':<22} {baseline:>10} {large:>10} {'ratio':>8}")
    over = []
    for name in ORDER:
        if name not in big.seconds:
            continue
        small_s, big_s = base.seconds[name], big.seconds[name]
        ratio = big_s / small_s if small_s > 0 else float("inf")
        # the report reads every departure, so its goal is a time (REPORT_GOAL), not a ratio
        above = big_s > REPORT_GOAL if name == "report" else ratio > GOAL and name not in PARTS
        flag = " !" if above else ""
        if flag:
            over.append(name)
        note = f"   {big.notes[name]} (baseline: {base.notes[name]})" if name in big.notes else ""
        print(f"{name:<22} {small_s * 1000:>8.1f}ms {big_s * 1000:>8.1f}ms {ratio:>7.2f}x{flag}{note}")
    return over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--departures", type=int, default=10_000, help="the larger store")
    parser.add_argument("--baseline", type=int, default=10, help="the smaller store, the ratios' base")
    parser.add_argument("--repeat", type=int, default=5, help="times each figure is taken (the median is shown)")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again, not from the cache")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the dispatcher's and notifier's lines are not the figures
    built = build([args.baseline, args.departures], args.rebuild)
    for n, path in built.items():
        print(f"store of {n}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    over: list[str] = []
    with tempfile.TemporaryDirectory() as work:
        over += [
            f"tinydb {name}"
            for name in show("TinyDB", measure_tinydb(built, args.repeat, Path(work)), args.baseline, args.departures)
        ]
        url = os.environ.get("SENDOFF_BENCH_PG_URL")
        if not url:
            print("\nPostgreSQL: skipped (set SENDOFF_BENCH_PG_URL=postgresql://user:password@host/db to measure it)")
        else:
            pg = measure_postgres(url, built, args.repeat, Path(work))
            if isinstance(pg, str):
                print(f"\nPostgreSQL: skipped: {pg}")
            else:
                over += [f"postgres {name}" for name in show("PostgreSQL", pg, args.baseline, args.departures)]
    print(f"\ngoal: each at most {GOAL}x the {args.baseline}-departure store; report under {REPORT_GOAL:.0f} s; "
          f"above the goal: {', '.join(over) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
