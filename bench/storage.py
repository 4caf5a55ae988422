"""What recording one answer durably costs as the store grows.

Prints, for sendoff's store and for plain TinyDB JSONStorage measured in the
same run, the median cost of recording one answer with an empty store, with
10k and 100k stored touches, and with 10k departures plus 100k touches, each
as a ratio against the empty store. It also prints the longest stall a 10 ms
asyncio heartbeat saw while answers were recorded on the loop (the stall
includes any background compaction competing for the GIL).

    python bench/storage.py [--answers 200] [--scale 1.0]

``--scale 0.01`` shrinks every size for a quick check that it still runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder heads sys.path and this file would shadow the
# storage package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tinydb import TinyDB
from tinydb.storages import JSONStorage

from bot.app import build_core
from bot.clock import ManualClock
from bot.notify import LogNotifier
from bot.settings import Settings
from storage.records import AuditEvent, Channel, NewDeparture, NewTouch, Source, Status, TouchKind, TouchStatus
from storage.tinydb_store import TinyDBStore

SIZES = [
    ("empty", 0, 0),
    ("10k touches", 0, 10_000),
    ("100k touches", 0, 100_000),
    ("10k dep + 100k touches", 10_000, 100_000),
]


def filler_departure(n: int) -> NewDeparture:
    at = "2025-01-01T00:00:00.000Z"
    answers = {
        f"q{i}": {"value": f"answer {i} of departure {n}", "display": "x" * 30, "skipped": False, "at": at, "by": "ann"}
        for i in range(25)
    }
    return {"client": f"Client {n}", "client_key": f"client{n}", "am": f"am{n % 7}", "source": Source.CONSOLE,
            "status": Status.DEPARTED, "context": None, "created_at": at, "updated_at": at,
            "interview": {"answers": answers, "trail": [], "parked": [], "editing": None},
            "history": [{"at": at, "by": "ann", "event": AuditEvent.STATUS, "from": None, "to": Status.DEPARTED}],
            "opted_out": False}  # fmt: skip


def filler_touch(n: int) -> NewTouch:
    return {"key": f"bench:{n}", "departure_id": n % 10_000 + 1, "kind": TouchKind.CHECK_IN,
            "channel": Channel.EMAIL, "recipient": f"c{n}@example.com", "due_at": "2025-06-01T07:00:00.000Z",
            "latest_at": "2025-06-15T07:00:00.000Z", "zone": "Europe/Berlin", "payload": {},
            "status": TouchStatus.SENT, "attempts": 1}  # fmt: skip


def seed_sendoff(path: Path, departures: int, touches: int) -> None:
    store = TinyDBStore(path)
    with store.batch():
        for n in range(departures):
            store.insert_departure(filler_departure(n))
        for n in range(touches):
            store.put_touch(filler_touch(n))
    store.close()


async def measure_sendoff(path: Path, answers: int) -> tuple[float, float]:
    """Median ms per recorded answer, and the longest loop stall in ms."""
    settings = Settings(db_path=path, console_user="ann")
    core = build_core(settings, LogNotifier(), clock=ManualClock())
    stall = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal stall
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            stall = max(stall, (now - last) * 1000 - 10)
            last = now

    beat = asyncio.create_task(heartbeat())
    costs = []
    record = core.departures.start("Bench Client", am="ann", source=Source.CONSOLE).departure
    for n in range(answers):
        if core.departures.current_question(record) is None:
            # Interview done: keep recording answers by editing a free-text one.
            core.departures.edit(record, "in_their_words", actor="ann")
            record = core.departures.get(record["id"])
        question = core.departures.current_question(record)
        raw = {"choice": "1", "date": "today", "money": "100", "yes_no": "yes", "email": "a@b.co",
               "country": "DE", "number": "3"}.get(question.kind, f"text {n}")  # fmt: skip
        start = time.perf_counter()
        record, _ = core.departures.answer(record, raw, actor="ann")
        costs.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0)
    running = False
    await beat
    core.close()
    return statistics.median(costs), stall


def seed_tinydb(path: Path, departures: int, touches: int) -> None:
    data = {
        "departures": {str(n + 1): filler_departure(n) for n in range(departures)},
        "touches": {str(n + 1): filler_touch(n) for n in range(touches)},
    }
    path.write_text(json.dumps(data))


def measure_tinydb(path: Path, answers: int) -> float:
    """Plain TinyDB: one answer = one document update, the whole file rewritten."""
    db = TinyDB(path, storage=JSONStorage)
    table = db.table("departures")
    doc_id = table.insert(filler_departure(-1))
    costs = []
    for n in range(answers):
        start = time.perf_counter()
        table.update({"updated_at": f"t{n}", "last": f"answer {n}"}, doc_ids=[doc_id])
        # JSONStorage flushes but never fsyncs: give it sendoff's durability.
        os.fsync(db.storage._handle.fileno())
        costs.append((time.perf_counter() - start) * 1000)
    db.close()
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=200, help="answers recorded per size")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every stored size by this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, full_departures, full_touches in SIZES:
            departures, touches = round(full_departures * args.scale), round(full_touches * args.scale)
            ours = Path(folder) / f"sendoff-{departures}-{touches}.json"
            seed_sendoff(ours, departures, touches)
            ms, stall = asyncio.run(measure_sendoff(ours, args.answers))
            plain = Path(folder) / f"tinydb-{departures}-{touches}.json"
            seed_tinydb(plain, departures, touches)
            tiny_answers = args.answers if departures + touches < 50_000 else max(10, args.answers // 10)
            shown = label if args.scale == 1 else f"{departures} dep + {touches} touches"
            rows.append((shown, ms, stall, measure_tinydb(plain, tiny_answers)))
    base_ours, base_tiny = rows[0][1], rows[0][3]
    print(f"{'stored':<24} {'sendoff ms':>10} {'x empty':>8} {'loop stall ms':>14} {'TinyDB ms':>10} {'x empty':>8}")
    for label, ms, stall, tiny in rows:
        print(f"{label:<24} {ms:>10.3f} {ms / base_ours:>8.2f} {stall:>14.1f} {tiny:>10.2f} {tiny / base_tiny:>8.2f}")
    worst = max(r[1] for r in rows) / base_ours
    print(f"goal: <= 3.00x empty at 10k departures + 100k touches; sendoff worst {worst:.2f}x")


if __name__ == "__main__":
    main()
