import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from tinydb import TinyDB

import storage.postgres_store as pg
from storage import StoreCorruptError, StoreError
from storage.contract import Outline, load_json
from storage.memory_store import MemoryStore
from storage.records import (
    Approval,
    AuditEvent,
    Channel,
    Item,
    NewDeparture,
    NewTouch,
    Reminder,
    SaveOutcome,
    Source,
    Status,
    TouchKind,
    TouchStatus,
    UpdateStatus,
)
from storage.tinydb_store import ReadOnlyTinyDBStore, TinyDBStore


def departure(name: str = "Acme", status: Status = Status.INTERVIEWING, am: str = "ann") -> NewDeparture:
    at = "2026-11-25T10:00:00.000Z"
    return {
        "client": name,
        "client_key": name.lower(),
        "am": am,
        "source": Source.CONSOLE,
        "status": status,
        "context": None,
        "created_at": at,
        "updated_at": at,
        "interview": {"answers": {}, "trail": [], "parked": [], "editing": None},
        "history": [{"at": at, "by": am, "event": AuditEvent.STATUS, "from": None, "to": status}],
        "opted_out": False,
    }


def touch(
    key: str,
    due: str = "2026-12-01T08:00:00Z",
    status: TouchStatus = TouchStatus.PENDING,
    departure_id: int | None = 1,
) -> NewTouch:
    return {
        "key": key,
        "departure_id": departure_id,
        "kind": TouchKind.CHECK_IN,
        "channel": Channel.EMAIL,
        "recipient": "pat@acme.example",
        "due_at": due,
        "latest_at": "2027-12-31T23:00:00Z",
        "zone": "Europe/Berlin",
        "payload": {},
        "status": status,
        "attempts": 0,
    }


@pytest.fixture(params=["memory", "tinydb", "postgres"])
def store(request, tmp_path):
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "tinydb":
        made = TinyDBStore(tmp_path / "sendoff.json")
    else:
        made = pg.PostgresStore(request.getfixturevalue("pg_url"))
    yield made
    made.close()


# -- the contract, on every backend -------------------------------------------------


def test_departures_are_stored_found_and_copied(store):
    saved = store.insert_departure(departure())
    assert saved["id"] == 1
    fetched = store.get_departure(1)
    fetched["client"] = "mutated"
    assert store.get_departure(1)["client"] == "Acme"
    store.insert_departure(departure("Beta", status=Status.DEPARTED, am="bob"))
    assert [d["client"] for d in store.find_departures(statuses=[Status.INTERVIEWING])] == ["Acme"]
    assert [d["client"] for d in store.find_departures(am="bob")] == ["Beta"]
    assert [d["client"] for d in store.find_departures(client_key="acme")] == ["Acme"]
    assert [d["client"] for d in store.find_departures(client_prefix="be")] == ["Beta"]
    assert store.count_departures() == 2


def test_updates_are_stored_changed_and_listed_in_order(store):
    draft = {"author": "ann", "text": "News", "translations": {"de": "Neues"}, "topics": ["seo"],
             "status": UpdateStatus.DRAFT, "created_at": "2026-11-25T10:00:00.000Z"}  # fmt: skip
    first = store.insert_update(draft)
    second = store.insert_update({**draft, "text": "More news"})
    assert (first["id"], second["id"]) == (1, 2) and store.get_update(3) is None
    first["status"], first["approved_by"] = UpdateStatus.APPROVED, "bob"
    store.save_update(first)
    kept = store.get_update(1)
    assert kept == first and kept["status"] is UpdateStatus.APPROVED
    assert [u["text"] for u in store.list_updates()] == ["News", "More news"]
    with pytest.raises(ValueError):
        store.insert_update({**draft, "status": "sent"})  # not a status an update has: refused, nothing kept
    assert len(store.list_updates()) == 2


def test_lookups_follow_changes_and_deletions(store):
    store.insert_departure(departure())
    store.insert_departure(departure("Beta", am="bob"))
    moved = store.get_departure(1)
    moved.update(status=Status.DEPARTED, am="bob")
    store.save_departure(moved)
    assert store.find_departures(statuses=[Status.INTERVIEWING], am="ann") == []
    assert [d["client"] for d in store.find_departures(am="bob")] == ["Acme", "Beta"]
    assert [d["client"] for d in store.find_departures(am="bob", statuses=[Status.DEPARTED, Status.SAVING])] == ["Acme"]
    store.put_touch(touch("t1", departure_id=1))
    store.put_touch(touch("t2", departure_id=2, status=TouchStatus.SENT))
    assert [t["key"] for t in store.find_touches(departure_id=2, statuses=[TouchStatus.SENT])] == ["t2"]
    assert store.find_touches(departure_id=2, statuses=[TouchStatus.PENDING]) == []
    store.forget_event("never-seen")  # forgetting what was never remembered is fine
    assert store.remember_event("E", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")
    store.forget_event("E")
    assert store.remember_event("E", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")


def test_planning_a_touch_twice_keeps_one(store):
    first = store.put_touch(touch("d1:check_in:30"))
    again = store.put_touch(touch("d1:check_in:30", due="2026-12-02T08:00:00Z"))
    assert again["id"] == first["id"]
    assert [t["due_at"] for t in store.find_touches()] == ["2026-12-02T08:00:00Z"]


def test_due_touches_come_earliest_first(store):
    store.put_touch(touch("b", due="2026-12-03T08:00:00Z"))
    store.put_touch(touch("a", due="2026-12-01T08:00:00Z"))
    store.put_touch(touch("c", due="2027-01-01T08:00:00Z"))
    due = store.find_touches(statuses=[TouchStatus.PENDING], due_before="2026-12-31T00:00:00Z")
    assert [t["key"] for t in due] == ["a", "b"]


def test_the_first_due_and_the_lately_sent_come_without_the_rest(store):
    for key, due, sent in [("a", "2026-12-03T08:00:00Z", None), ("b", "2026-12-01T08:00:00Z", None),
                           ("old", "2026-01-01T08:00:00Z", "2026-01-01T08:00:01Z"),
                           ("late", "2025-06-01T08:00:00Z", "2026-11-30T09:00:00Z"),
                           ("new", "2026-11-30T08:00:00Z", "2026-11-30T08:00:05Z")]:  # fmt: skip
        made = store.put_touch(touch(key, due=due))
        if sent:
            store.claim_touch(made["id"], TouchStatus.PENDING, TouchStatus.SENT, sent_at=sent)
    assert [t["key"] for t in store.find_touches(statuses=[TouchStatus.PENDING], limit=1)] == ["b"]
    assert [t["key"] for t in store.find_touches(statuses=[TouchStatus.SENT, TouchStatus.PENDING], limit=2)] == [
        "late", "old"]  # fmt: skip
    # sent after a moment, whenever they were due (a held email goes long after): earliest due first
    lately = store.find_touches(statuses=[TouchStatus.SENT], sent_after="2026-11-29T10:00:00Z")
    assert [t["key"] for t in lately] == ["late", "new"]
    assert store.find_touches(statuses=[TouchStatus.PENDING], sent_after="2026-11-29T10:00:00Z") == []
    gone = store.find_touches(statuses=[TouchStatus.SENT], sent_after="2026-11-30T08:00:05Z")
    assert [t["key"] for t in gone] == ["late"]
    moved = store.touch_by_key("late")
    moved["status"] = TouchStatus.FAILED
    store.save_touch(moved)
    assert store.find_touches(statuses=[TouchStatus.SENT], sent_after="2026-11-29T10:00:00Z")[0]["key"] == "new"


def test_the_departures_whose_plan_no_longer_holds_are_found_without_the_rest(store):
    plans = {"Never": None, "Older": ("release-1", None), "Holds": ("release-2", "2026-12-24T08:00:00Z"),
             "Lapsed": ("release-2", "2026-11-30T08:00:00Z"), "Always": ("release-2", None)}  # fmt: skip
    for name, plan in plans.items():
        record = departure(name)
        if plan is not None:
            record.update(plan_by=plan[0], plan_until=plan[1])  # type: ignore[typeddict-unknown-key]
        store.insert_departure(record)
    found = store.departures_to_plan("release-2", "2026-12-01T08:00:00Z")
    assert [d["client"] for d in found] == ["Never", "Older", "Lapsed"]
    assert store.departures_to_plan("release-2", "2026-11-30T08:00:00Z")[-1]["client"] == "Lapsed"  # until then


def test_a_touch_is_claimed_once(store):
    saved = store.put_touch(touch("x"))
    assert store.claim_touch(saved["id"], TouchStatus.PENDING, TouchStatus.SENDING)["status"] == TouchStatus.SENDING
    assert store.claim_touch(saved["id"], TouchStatus.PENDING, TouchStatus.SENDING) is None


def test_a_plan_is_written_only_over_the_touch_it_was_made_from(store):
    # absent and read as absent: inserted; present but read as absent: another planner's stays
    made = store.replace_touch(touch("x"), None)
    assert made is not None and store.replace_touch(touch("x", due="2026-12-09T08:00:00Z"), None) is None
    read = store.touch_by_key("x")
    assert store.replace_touch(touch("x", due="2026-12-02T08:00:00Z"), read)["id"] == made["id"]
    # the plan read before it moved: written over a newer touch, it would undo the move
    assert store.replace_touch(touch("x", due="2026-12-05T08:00:00Z"), read) is None
    moved = store.touch_by_key("x")
    assert moved["due_at"] == "2026-12-02T08:00:00Z"
    claimed = store.claim_touch(moved["id"], TouchStatus.PENDING, TouchStatus.SENDING)
    assert store.replace_touch(touch("x", due="2026-12-07T08:00:00Z"), moved) is None
    assert store.get_touch(moved["id"]) == claimed
    assert store.replace_touch(touch("y"), moved) is None and store.touch_by_key("y") is None  # read, now gone
    assert store.count_touches() == 1


def test_a_note_on_a_departure_leaves_the_rest_as_stored_now(store):
    made = store.insert_departure(departure("Acme"))
    read = store.get_departure(made["id"])
    answered = {**read, "context": "an answer given meanwhile", "updated_at": "2026-12-01T10:00:00Z"}
    store.save_departure(answered)
    note = {"planned": {"at": "2026-12-01T10:00:01Z", "until": None}, "plan_by": "r1", "plan_until": None}
    # made from the copy read before the answer: written only where the rest is unchanged, so not here
    assert not store.note_on_departure(made["id"], note, read=read)
    assert store.get_departure(made["id"]) == answered
    # unconditionally: the note is written, the answer stays
    lapsed = {**note, "plan_until": "2026-12-01T10:00:01Z"}
    assert store.note_on_departure(made["id"], lapsed)
    assert store.get_departure(made["id"]) == {**answered, **lapsed}
    assert [d["id"] for d in store.departures_to_plan("r1", "2026-12-01T10:00:02Z")] == [made["id"]]
    # read as it is now: written
    assert store.note_on_departure(made["id"], note, read=store.get_departure(made["id"]))
    assert store.get_departure(made["id"]) == {**answered, **note}
    assert store.departures_to_plan("r1", "2026-12-01T10:00:02Z") == []
    assert not store.note_on_departure(made["id"] + 1, note)  # gone (or never there)


def test_event_ids_are_remembered_and_old_ones_pruned(store):
    assert store.remember_event("E1", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")
    assert not store.remember_event("E1", "2026-11-25T10:01:00Z", forget_before="2026-11-24T10:00:00Z")
    assert store.remember_event("E2", "2026-11-27T10:00:00Z", forget_before="2026-11-26T10:00:00Z")
    assert store.remember_event("E1", "2026-11-27T10:00:00Z", forget_before="2026-11-26T10:00:00Z")


def test_a_failed_batch_leaves_nothing_behind(store):
    store.insert_departure(departure())
    with pytest.raises(RuntimeError), store.batch():
        store.put_touch(touch("one"))
        record = store.get_departure(1)
        record["status"] = Status.SAVING
        store.save_departure(record)
        raise RuntimeError("boom")
    assert store.find_touches() == []
    assert store.get_departure(1)["status"] == Status.INTERVIEWING


def test_records_read_back_carry_their_enums(store):
    record = departure()
    record["email_approval"] = Approval.ALWAYS
    inserted = store.insert_departure(record)
    reminder = touch("r")
    reminder["payload"] = {"what": Item.SAVE_DEADLINE, "why": Reminder.UNSIGNED, "number": 1}
    put = store.put_touch(reminder)
    replaced = store.put_touch(reminder)
    claimed = store.claim_touch(put["id"], TouchStatus.PENDING, TouchStatus.SENDING, attempts=1)
    for found in (inserted, store.get_departure(1), *store.find_departures(statuses=[Status.INTERVIEWING])):
        assert_departure_enums(found)
    for found in (put, replaced, claimed, store.get_touch(put["id"]), store.touch_by_key("r"), *store.find_touches()):
        assert_touch_enums(found)
    assert claimed["status"] is TouchStatus.SENDING and store.get_touch(put["id"])["attempts"] == 1


def assert_departure_enums(found):
    assert isinstance(found["status"], Status) and isinstance(found["source"], Source)
    assert isinstance(found["email_approval"], Approval)
    assert isinstance(found["history"][0]["event"], AuditEvent)


def assert_touch_enums(found):
    assert isinstance(found["status"], TouchStatus)
    assert isinstance(found["kind"], TouchKind) and isinstance(found["channel"], Channel)
    assert isinstance(found["payload"]["what"], Item) and isinstance(found["payload"]["why"], Reminder)


# -- outlines: a few parts of every departure (sendoff report) ---------------------------------------

OUTLINE = Outline(fields=("client", "forgotten", "save_outcome", "client_voice", "never_stored"),
                  answers=("reason", "mrr", "never_answered"), answer_fields=("value", "at"),
                  history_events=(AuditEvent.STATUS,))  # fmt: skip


def outlined(name: str, status: Status = Status.LEAVING) -> NewDeparture:
    """A departure with answers, a long history and parts an outline leaves out."""
    record = departure(name, status)
    at = record["created_at"]
    record["interview"]["answers"] = {
        "reason": {"value": "price", "display": "Price", "skipped": False, "at": at, "by": "ann"},
        "mrr": {"value": {"amount": "1200", "currency": "EUR"}, "display": "1,200 EUR", "skipped": False},
        "competitor": {"value": None, "display": "(skipped)", "skipped": True, "at": at, "by": "ann"},
    }
    record["interview"]["trail"] = ["reason", "mrr", "competitor"]
    record["history"] += [
        {"at": at, "by": "ann", "event": AuditEvent.ANSWER, "question": "reason", "from": None, "to": "Price"},
        {"at": at, "by": "ann", "event": AuditEvent.STATUS, "from": Status.INTERVIEWING, "to": status, "note": None},
    ]
    record["email_approval"] = Approval.ALWAYS
    record["client_voice"] = {"at": at, "submissions": 1, "reason": "fit", "words": None}
    record["save_outcome"] = SaveOutcome.LAPSED
    return record


def without_nulls(value):
    """An outline's fields that are null may be left out (PostgreSQL leaves out every one): compare without."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def test_an_outline_holds_only_what_it_names_on_every_backend(store):
    first = store.insert_departure(outlined("Acme"))
    bare = departure("Globex", Status.REPORTED)
    del bare["history"]  # written by nothing now, but an outline of it still has its (empty) parts
    bare["interview"]["answers"] = {}
    store.insert_departure(bare)
    at = first["created_at"]
    got = store.outline_departures(OUTLINE)
    assert [without_nulls(o) for o in got] == [
        {"id": 1, "status": "leaving", "source": "console", "client": "Acme", "save_outcome": "lapsed",
         "client_voice": {"at": at, "submissions": 1, "reason": "fit"},
         "interview": {"answers": {"reason": {"value": "price", "at": at},
                                   "mrr": {"value": {"amount": "1200", "currency": "EUR"}}}},
         "history": [{"at": at, "by": "ann", "event": "status", "to": "leaving"},
                     {"at": at, "by": "ann", "event": "status", "from": "interviewing", "to": "leaving"}]},
        {"id": 2, "status": "reported", "source": "console", "client": "Globex", "interview": {"answers": {}},
         "history": []},
    ]  # fmt: skip
    acme = got[0]
    assert acme["status"] is Status.LEAVING and acme["source"] is Source.CONSOLE
    assert acme["save_outcome"] is SaveOutcome.LAPSED
    assert all(isinstance(entry["event"], AuditEvent) for entry in acme["history"])
    # Each whole record is as it was: an outline is a copy.
    acme["client"] = "Changed"
    assert store.get_departure(1) == first


def test_an_outline_of_nothing_named_keeps_the_id_status_and_source(store):
    store.insert_departure(outlined("Acme"))
    assert [without_nulls(o) for o in store.outline_departures(Outline())] == [
        {"id": 1, "status": "leaving", "source": "console", "interview": {"answers": {}}, "history": []},
    ]
    with pytest.raises(ValueError, match="history"):
        Outline(fields=("history",))


def test_an_outline_read_from_the_file_as_it_was_written_is_the_same(tmp_path):
    path = tmp_path / "sendoff.json"
    writer = TinyDBStore(path)
    writer.insert_departure(outlined("Acme"))
    writer.insert_departure(outlined("Globex", Status.RETAINED))
    before = writer.outline_departures(OUTLINE)
    writer.close()
    reader = ReadOnlyTinyDBStore(path)  # the departures held as their texts, never indexed for an outline
    assert reader.outline_departures(OUTLINE) == before
    reader.close()
    reopened = TinyDBStore(path)
    assert reopened.outline_departures(OUTLINE) == before
    assert reopened.find_departures(client_key="globex")[0]["status"] is Status.RETAINED  # indexed when needed
    reopened.close()


def test_a_record_comes_back_as_it_went_whichever_parser_reads_it(store):
    made = store.insert_departure({**departure("Acme"), "context": "\U0001f600 caf\u00e9 \"q\" \\ 2\u2009000"})
    assert store.get_departure(made["id"])["context"] == made["context"]
    assert [d["context"] for d in store.find_departures()] == [made["context"]]
    # what orjson refuses and json reads (JSON from outside may hold a lone surrogate) is read all the same
    for text in ('{"context":"x\\ud800y"}', '{"n":NaN}'):
        assert repr(load_json(text)) == repr(json.loads(text))


def test_plain_strings_and_enum_members_find_the_same_records(store):
    # The lookup index is keyed by the strings read back from JSON; a member
    # must hash and compare as its value to find them.
    assert hash(Status.LEAVING) == hash("leaving") and {"leaving": 1}[Status.LEAVING] == 1
    store.insert_departure(departure(status=Status.LEAVING))
    store.put_touch(touch("t"))
    assert store.find_departures(statuses=["leaving"]) == store.find_departures(statuses=[Status.LEAVING]) != []
    assert store.find_touches(statuses=["pending"]) == store.find_touches(statuses=[TouchStatus.PENDING]) != []
    assert store.claim_touch(1, "pending", "sending")["status"] is TouchStatus.SENDING


def test_a_record_that_could_not_be_read_back_is_refused_before_it_is_stored(store):
    with pytest.raises(ValueError, match="'lost'"):
        store.insert_departure({**departure(), "status": "lost"})
    assert store.count_departures() == 0
    saved = store.insert_departure(departure())
    with pytest.raises(ValueError):
        store.save_departure({**saved, "source": "fax"})
    with pytest.raises(KeyError):
        store.put_touch({k: v for k, v in touch("t").items() if k != "kind"})
    assert store.count_touches() == 0
    store.put_touch(touch("t"))
    with pytest.raises(ValueError):
        store.claim_touch(1, TouchStatus.PENDING, "posted")
    assert store.get_departure(1)["source"] is Source.CONSOLE
    assert store.get_touch(1)["status"] is TouchStatus.PENDING


# -- the file backend -----------------------------------------------------------------


def test_everything_survives_a_reopen_and_the_file_is_tinydb(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path)
    store.insert_departure(departure())
    store.put_touch(touch("k"))
    store.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    db = TinyDB(path)
    assert db.table("departures").get(doc_id=1)["client"] == "Acme"
    assert db.table("meta").get(doc_id=1)["schema"] == 1
    db.close()
    reopened = TinyDBStore(path)
    assert reopened.get_departure(1)["client"] == "Acme"
    assert reopened.find_touches()[0]["key"] == "k"
    reopened.close()


def test_enums_come_back_after_a_reopen_and_the_files_hold_plain_strings(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path)
    store.insert_departure(departure())
    store.put_touch(touch("k"))
    journal = store._journal_path.read_text()
    assert '"status":"interviewing"' in journal and '"kind":"check_in"' in journal
    assert "Status." not in journal and "TouchKind." not in journal
    store._lock_handle.close()  # the process "dies": the records live only in the journal
    from_journal = TinyDBStore(path)
    assert isinstance(from_journal.get_departure(1)["status"], Status)
    assert isinstance(from_journal.touch_by_key("k")["kind"], TouchKind)
    from_journal.close()
    snapshot = path.read_text()
    assert '"status":"interviewing"' in snapshot and "Status." not in snapshot
    assert not list(tmp_path.glob("sendoff.json.journal-*"))
    from_snapshot = TinyDBStore(path)
    assert isinstance(from_snapshot.get_departure(1)["status"], Status)
    assert isinstance(from_snapshot.find_touches(statuses=["pending"])[0]["status"], TouchStatus)
    from_snapshot.close()


def test_a_stored_record_that_is_no_longer_valid_is_named(tmp_path):
    path = tmp_path / "sendoff.json"
    path.write_text(json.dumps({"departures": {"1": {**departure(), "status": "lost"}}}))
    store = TinyDBStore(path)
    with pytest.raises(StoreCorruptError, match="departures record 1"):
        store.get_departure(1)
    store.close()


CRASHER = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from storage.tinydb_store import TinyDBStore
    store = TinyDBStore(sys.argv[1], compact_at_bytes=int(sys.argv[2]))
    template = json.loads(sys.argv[4])

    async def write_all(later):
        for n in range(int(sys.argv[3])):
            with store.batch_durable_later() if later else store.batch():
                store.insert_departure({**template, "client": f"c{n}", "client_key": f"c{n}", "pad": "x" * 500})
            if later and n % 3 == 0:
                await store.durable()  # the others wait for the next one, or for a compaction's switch
        await store.durable()

    asyncio.run(write_all(sys.argv[5] == "later"))
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("durable", ["at once", "later"])
@pytest.mark.parametrize("compact_at", [1 << 30, 4096])
def test_a_killed_writer_loses_no_acknowledged_write(tmp_path, compact_at, durable):
    path = tmp_path / "sendoff.json"
    result = subprocess.run(
        [sys.executable, "-c", CRASHER, str(path), str(compact_at), "200", json.dumps(departure()), durable],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL and "written" in result.stdout, result.stderr
    store = TinyDBStore(path)
    assert store.count_departures() == 200
    assert [store.get_departure(n)["client"] for n in (1, 100, 200)] == ["c0", "c99", "c199"]
    assert isinstance(store.get_departure(200)["status"], Status)
    store.close()


async def test_a_batch_made_durable_later_is_seen_at_once_and_all_or_nothing(store):
    with store.batch_durable_later():
        first = store.insert_departure(departure("Acme"))
        assert store.get_departure(first["id"])["client"] == "Acme"
    await store.durable()
    await store.durable()  # nothing more to wait for
    with pytest.raises(RuntimeError), store.batch_durable_later():
        store.insert_departure(departure("Globex"))
        raise RuntimeError("the batch fails")
    assert [d["client"] for d in store.find_departures()] == ["Acme"]


def test_background_compaction_keeps_every_write(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path, compact_at_bytes=2048)
    for n in range(300):
        store.insert_departure({**departure(f"c{n}"), "pad": "y" * 200})
    store.wait_for_compaction()
    assert len(list(tmp_path.glob("sendoff.json.journal-*"))) <= 2
    store.close()
    assert TinyDBStore(path).count_departures() == 300


def test_a_corrupt_file_stops_the_start_and_is_left_untouched(tmp_path):
    path = tmp_path / "sendoff.json"
    path.write_text('{"departures": {"1": {"client": "Ac')
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(StoreCorruptError) as err:
        TinyDBStore(path)
    assert str(path) in str(err.value) and "untouched" in str(err.value)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    # The lock is released: a fixed file opens at once.
    path.write_text("{}")
    TinyDBStore(path).close()


def test_a_torn_last_journal_line_is_dropped(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path)
    store.insert_departure(departure())
    journal = store._journal_path
    store._lock_handle.close()  # the process "dies" without closing
    with open(journal, "ab") as handle:
        handle.write(b'{"w":[["departures",2,{"client":"Be')
    reopened = TinyDBStore(path)
    assert reopened.count_departures() == 1
    reopened.insert_departure(departure("Gamma"))
    reopened.close()
    assert [d["client"] for d in TinyDBStore(path).find_departures()] == ["Acme", "Gamma"]


def test_a_damaged_journal_line_in_the_middle_is_refused(tmp_path):
    path = tmp_path / "sendoff.json"
    journal = tmp_path / "sendoff.json.journal-000001"
    good = json.dumps({"w": [["departures", 1, {**departure(), "id": 1}]]})
    journal.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(StoreCorruptError, match="journal-000001"):
        TinyDBStore(path)
    assert journal.read_text().count("\n") == 3


def test_a_second_writer_is_refused(tmp_path):
    path = tmp_path / "sendoff.json"
    first = TinyDBStore(path)
    with pytest.raises(StoreError, match="in use by another sendoff process"):
        TinyDBStore(path)
    first.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "sendoff.json"
    path.write_text(json.dumps({"meta": {"1": {"schema": 99, "generation": 0}}}))
    with pytest.raises(StoreCorruptError, match="schema version 99"):
        TinyDBStore(path)


def test_files_are_private(tmp_path):
    path = tmp_path / "sendoff.json"
    store = TinyDBStore(path)
    store.insert_departure(departure())
    assert oct(os.stat(store._journal_path).st_mode & 0o777) == "0o600"
    store.close()


def test_a_nested_batch_joins_the_outer_one(store):
    with pytest.raises(RuntimeError), store.batch():
        with store.batch():
            store.insert_departure(departure())
        assert store.count_departures() == 1  # seen inside the batch
        raise RuntimeError("boom")
    assert store.count_departures() == 0
    with store.batch():
        with store.batch():
            store.insert_departure(departure())
        store.put_touch(touch("t"))
    assert store.count_departures() == 1 and store.count_touches() == 1


# -- the PostgreSQL backend: several processes, one database -----------------------------

@pytest.fixture
def two_stores(pg_url):
    """Two stores on one database, each with its own engine and connections: two processes, as far as
    the database can tell."""
    first, second = pg.PostgresStore(pg_url), pg.PostgresStore(pg_url)
    yield first, second
    first.close()
    second.close()


def test_what_one_process_writes_the_other_reads_at_once(two_stores):
    first, second = two_stores
    saved = first.insert_departure(departure())
    assert second.get_departure(saved["id"])["client"] == "Acme"
    moved = second.get_departure(saved["id"])
    moved["status"] = Status.LEAVING
    second.save_departure(moved)
    assert first.find_departures(statuses=[Status.LEAVING]) == [moved]  # nothing cached


def test_a_touch_locked_by_another_process_is_not_waited_for(two_stores):
    first, second = two_stores
    saved = first.put_touch(touch("x"))
    with first.batch():
        assert first.claim_touch(saved["id"], TouchStatus.PENDING, TouchStatus.SENDING) is not None
        # Locked by the open transaction: SKIP LOCKED answers at once, without waiting for it to end.
        assert second.claim_touch(saved["id"], TouchStatus.PENDING, TouchStatus.SENDING) is None
        assert second.get_touch(saved["id"])["status"] is TouchStatus.PENDING  # not committed yet
    assert second.get_touch(saved["id"])["status"] is TouchStatus.SENDING
    assert second.claim_touch(saved["id"], TouchStatus.PENDING, TouchStatus.SENDING) is None


def race(calls, *, threads_per_call: int = 1):
    """Run each of ``calls`` in threads of its own, released together; their results in order."""
    barrier = threading.Barrier(len(calls) * threads_per_call)
    results = [None] * (len(calls) * threads_per_call)

    def run(n, call):
        barrier.wait()
        results[n] = call()

    workers = [threading.Thread(target=run, args=(n, calls[n % len(calls)]))
               for n in range(len(calls) * threads_per_call)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return results


def test_of_two_processes_claiming_the_same_touches_at_once_exactly_one_gets_each(two_stores):
    first, second = two_stores
    ids = [first.put_touch(touch(f"t{n}"))["id"] for n in range(30)]

    def claim_all(store):
        return lambda: [store.claim_touch(i, TouchStatus.PENDING, TouchStatus.SENDING) is not None for i in ids]

    won_first, won_second = race([claim_all(first), claim_all(second)])
    assert [a + b for a, b in zip(won_first, won_second, strict=True)] == [1] * len(ids)
    assert {t["status"] for t in first.find_touches()} == {TouchStatus.SENDING}


def test_an_event_remembered_by_two_processes_at_once_is_new_to_exactly_one(two_stores):
    first, second = two_stores
    at, forget_before = "2026-11-25T10:00:00Z", "2026-11-24T10:00:00Z"
    for n in range(10):
        seen = race([lambda s=s, n=n: s.remember_event(f"E{n}", at, forget_before=forget_before)
                     for s in (first, second)], threads_per_call=3)  # fmt: skip
        assert seen.count(True) == 1, seen
    # One held back by the other's open transaction waits for it, and then knows the id.
    with first.batch():
        assert first.remember_event("late", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")
        waiting = []
        worker = threading.Thread(target=lambda: waiting.append(
            second.remember_event("late", "2026-11-25T10:00:00Z", forget_before="2026-11-24T10:00:00Z")))
        worker.start()
        worker.join(timeout=0.3)
        assert waiting == []  # still waiting on the first's insert
    worker.join(timeout=10)
    assert waiting == [False]


def test_a_touch_planned_by_two_processes_at_once_is_one_touch(two_stores):
    first, second = two_stores
    planned = race([lambda: first.put_touch(touch("same")), lambda: second.put_touch(touch("same"))])
    assert planned[0]["id"] == planned[1]["id"] and first.count_touches() == 1


def test_many_due_touches_come_page_by_page_as_one_list(pg_url, monkeypatch):
    monkeypatch.setattr(pg, "DUE_PAGE", 3)  # pages of 3: ties of due time and page ends fall together
    store, memory = pg.PostgresStore(pg_url), MemoryStore()
    try:
        dues = ["2026-12-01T08:00:00Z"] * 4 + ["2026-12-02T08:00:00Z", "2026-11-30T08:00:00Z"] * 2 + [
            "2026-12-01T09:00:00Z", "2027-02-01T08:00:00Z"]  # fmt: skip
        for n, due in enumerate(dues):
            for each in (store, memory):
                each.put_touch(touch(f"t{n}", due=due))
        due = store.find_touches(statuses=[TouchStatus.PENDING], due_before="2026-12-31T00:00:00Z")
        assert [t["key"] for t in due] == [t["key"] for t in memory.find_touches(
            statuses=[TouchStatus.PENDING], due_before="2026-12-31T00:00:00Z")]  # fmt: skip
        assert len(due) == 9 and len({t["id"] for t in due}) == 9
    finally:
        store.close()


def test_a_plan_never_undoes_another_process_claiming_its_touch(two_stores):
    first, second = two_stores
    read = first.put_touch(touch("x"))
    with second.batch():
        assert second.claim_touch(read["id"], TouchStatus.PENDING, TouchStatus.SENDING) is not None
        # the planner's write waits for the claim's transaction, then finds the touch changed
        written = []
        worker = threading.Thread(target=lambda: written.append(
            first.replace_touch(touch("x", due="2026-12-09T08:00:00Z"), read)))
        worker.start()
        worker.join(timeout=0.3)
        assert written == []
    worker.join(timeout=10)
    assert written == [None]
    assert first.get_touch(read["id"])["status"] is TouchStatus.SENDING


def test_ids_given_by_a_copy_move_the_sequence_on(pg_url):
    store = pg.PostgresStore(pg_url)
    try:
        store.save_departure({**departure(), "id": 7})  # as move-data keeps ids
        assert store.insert_departure(departure("Beta"))["id"] == 8
    finally:
        store.close()


def test_a_database_without_the_schema_is_refused_until_migrated(pg_empty_url):
    with pytest.raises(pg.SchemaError, match="Run `sendoff migrate`") as refused:
        pg.PostgresStore(pg_empty_url)
    assert "has no sendoff tables yet" in str(refused.value)
    head = pg.head_revision()
    assert pg.migrate(pg_empty_url) == (None, head)
    assert pg.migrate(pg_empty_url) == (head, head)  # nothing to do the second time
    pg.check_schema(pg_empty_url)
    store = pg.PostgresStore(pg_empty_url)
    try:
        assert store.counts() == {"departures": 0, "touches": 0, "events": 0, "team_sizes": 0, "updates": 0}
    finally:
        store.close()


def test_an_older_or_unknown_schema_says_what_to_do(pg_url, pg_server):
    head = pg.head_revision()
    older = pg.schema_problem(head, "9999", "postgresql+asyncpg://u:***@db/sendoff")  # as if a newer one shipped
    assert "older schema" in older and "Run `sendoff migrate`" in older
    assert pg.schema_problem(head, head, "x") is None
    pg_server.sql("UPDATE alembic_version SET version_num = 'ffff'", database=pg_url.rpartition("/")[2])
    with pytest.raises(pg.SchemaError, match="revision ffff, which this sendoff does not know"):
        pg.PostgresStore(pg_url)


def test_a_database_of_the_previous_revision_is_upgraded_with_its_data_found_as_before(pg_url, pg_server):
    store = pg.PostgresStore(pg_url)
    made = store.put_touch(touch("x", due="2026-11-30T08:00:00Z"))
    store.claim_touch(made["id"], TouchStatus.PENDING, TouchStatus.SENT, sent_at="2026-11-30T08:00:01Z")
    planned = departure("Planned")
    planned.update(plan_by="release-2", plan_until=None)  # type: ignore[typeddict-unknown-key]
    store.insert_departure(planned)
    store.close()
    database = pg_url.rpartition("/")[2]
    pg_server.sql("DROP INDEX ix_touches_status_due; DROP INDEX ix_touches_status_sent_at; "
                  "CREATE INDEX ix_touches_status_due_at ON touches (status, due_at); "
                  "ALTER TABLE touches DROP COLUMN sent_at; ALTER TABLE departures DROP COLUMN plan_by; "
                  "ALTER TABLE departures DROP COLUMN plan_until; UPDATE alembic_version SET version_num = '0002'",
                  database=database)  # fmt: skip
    assert pg.migrate(pg_url) == ("0002", pg.head_revision())
    store = pg.PostgresStore(pg_url)
    try:
        assert [t["key"] for t in store.find_touches(statuses=[TouchStatus.SENT], sent_after="2026-11-30")] == ["x"]
        assert store.departures_to_plan("release-2", "2026-12-01T08:00:00Z") == []
    finally:
        store.close()


def test_an_unreachable_database_is_a_store_error_that_hides_the_password(pg_server, pg_url):
    secret = "s3cret-Pw"
    nobody = f"postgresql://sendoff:{secret}@127.0.0.1:{free_port()}/sendoff"
    wrong = pg_server.url(pg_url.rpartition("/")[2], password=secret)
    for url, why in ((nobody, "Connect call failed"), (wrong, "password authentication failed")):
        with pytest.raises(pg.StoreUnavailableError) as refused:
            pg.PostgresStore(url)
        text = f"{refused.value!s} {refused.value!r} {refused.value.__cause__!r}"
        assert why in text and secret not in text and "sendoff:***@127.0.0.1" in text


def test_a_connection_lost_mid_batch_is_a_store_error_and_the_next_call_reconnects(pg_server, pg_url):
    store = pg.PostgresStore(pg_url)
    database = pg_url.rpartition("/")[2]
    try:
        with pytest.raises(pg.StoreUnavailableError) as lost, store.batch():
            store.insert_departure(departure())
            pg_server.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
            store.insert_departure(departure("Beta"))
        assert pg_server.password not in str(lost.value) and "***" in str(lost.value)
        assert store.count_departures() == 0  # nothing of the batch was committed; a fresh connection answers
    finally:
        store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_departures()


def test_urls_are_read_and_masked():
    from storage import database_url, mask_url

    assert database_url("data/sendoff.json") is None
    assert database_url("postgres://u:pw@db/x") == database_url("postgresql://u:pw@db/x") == (
        "postgresql+asyncpg://u:pw@db/x")
    assert mask_url("postgresql+asyncpg://u:p%40ss@db:5432/x?password=other") == (
        "postgresql+asyncpg://u:***@db:5432/x?password=***")
    for bad, says in (("mysql://u:hunter2@db/x", "postgresql://, postgres://, postgresql+asyncpg://"),
                      ("postgresql://u:hun@ter2@db/x", "%40"),
                      ("postgresql://u:hunter2@db:port/x", "cannot be read")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(says)) as refused:
            database_url(bad)
        assert "hunter2" not in str(refused.value) and "ter2" not in str(refused.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
