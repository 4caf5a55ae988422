"""Reading the TinyDB store beside the process that writes it: no lock, nothing written, a consistent view."""

from __future__ import annotations

import threading
from pathlib import Path

from storage.records import AuditEvent, NewDeparture, Source, Status
from storage.tinydb_store import ReadOnlyTinyDBStore, TinyDBStore, writer_running


def departure(name: str) -> NewDeparture:
    at = "2026-11-25T10:00:00.000Z"
    return {
        "client": name, "client_key": name.lower(), "am": "ann", "source": Source.CONSOLE,
        "status": Status.INTERVIEWING, "context": None, "created_at": at, "updated_at": at,
        "interview": {"answers": {}, "trail": [], "parked": [], "editing": None},
        "history": [{"at": at, "by": "ann", "event": AuditEvent.STATUS, "from": None, "to": Status.INTERVIEWING}],
        "opted_out": False,
    }  # fmt: skip


def files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and modification time, to see that nothing was touched."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_a_reader_sees_every_acknowledged_write_while_the_writer_holds_the_lock(tmp_path):
    path = tmp_path / "data" / "sendoff.json"
    writer = TinyDBStore(path)
    try:
        writer.insert_departure(departure("Acme"))
        writer.insert_departure(departure("Globex"))  # in the journal: no snapshot has them yet
        before = files(path.parent)
        reader = ReadOnlyTinyDBStore(path)
        assert reader.in_use and writer_running(path)
        assert [d["client"] for d in reader.find_departures()] == ["Acme", "Globex"]
        assert reader.as_of is not None
        reader.save_departure({**reader.find_departures()[0], "client": "Changed"})  # stays in its memory
        reader.close()
        assert files(path.parent) == before  # no file written, created, truncated or compacted
        writer.insert_departure(departure("Initech"))  # the writer still holds the store, unhindered
    finally:
        writer.close()
    assert not writer_running(path)
    reader = ReadOnlyTinyDBStore(path)
    assert not reader.in_use and [d["client"] for d in reader.find_departures()] == ["Acme", "Globex", "Initech"]


def test_a_line_still_being_appended_is_left_out_and_left_alone(tmp_path):
    path = tmp_path / "sendoff.json"
    writer = TinyDBStore(path)
    try:
        writer.insert_departure(departure("Acme"))
        [journal] = [p for p in tmp_path.iterdir() if ".journal-" in p.name]
        with open(journal, "ab") as half_written:
            half_written.write(b'{"w":[["departures",2,{"client":"Glo')
        size = journal.stat().st_size
        reader = ReadOnlyTinyDBStore(path)
        assert [d["client"] for d in reader.find_departures()] == ["Acme"]
        assert journal.stat().st_size == size  # a reader never repairs: the writer may be mid-append
    finally:
        journal.write_bytes(journal.read_bytes()[:size - len(b'{"w":[["departures",2,{"client":"Glo')])
        writer.close()


def test_no_data_yet_reads_as_empty_and_creates_nothing(tmp_path):
    reader = ReadOnlyTinyDBStore(tmp_path / "nowhere" / "sendoff.json")
    assert reader.count_departures() == 0 and not reader.in_use and reader.as_of is None
    assert list(tmp_path.iterdir()) == []


def test_readers_during_compactions_always_see_a_whole_prefix_of_the_writes(tmp_path):
    path = tmp_path / "sendoff.json"
    writer = TinyDBStore(path, compact_at_bytes=2_000)  # a new snapshot every few writes
    total = 400
    done = threading.Event()

    def write() -> None:
        try:
            for n in range(total):
                writer.insert_departure(departure(f"Client {n}"))
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen = []

    def read() -> None:
        ids = [d["id"] for d in ReadOnlyTinyDBStore(path).find_departures()]
        assert ids == list(range(1, len(ids) + 1))  # no write missing before the last one seen
        seen.append(len(ids))

    try:
        while not done.is_set() or len(seen) < 3:
            read()
        read()  # once the writer is done (a read begun before that may end after it)
    finally:
        thread.join()
        writer.close()
    assert seen == sorted(seen) and seen[-1] == total
    assert len(set(seen)) > 2  # the reader did read while the writer wrote
