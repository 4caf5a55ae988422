"""What start-up and a dispatch tick read stays flat as the store grows, and nothing is missed for it.

Start-up re-plans only a departure whose plan no longer holds (its note, ``planned``, says what the plan
was made from and until when it holds, ``plan_by`` and ``plan_until`` what the store finds it by): each test
changes one input for real (a record written without its note or by an older release, the settings, the
cadence, the clock) on a real TinyDB store under tmp_path, reopened as
``sendoff console`` would, and looks at what was planned. The due-time index and the file's line layout are
held to the contract's results. No timings here: bench/scale.py measures them.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tinydb import TinyDB
from tinydb.storages import JSONStorage

from bot.app import build_core
from bot.clock import ManualClock, parse_iso
from bot.playbook import PLAN_NOTE
from prompts import DEFAULTS
from storage import StoreCorruptError
from storage.memory_store import MemoryStore
from storage.records import Channel, Status, TouchKind, TouchStatus
from storage.tinydb_store import ReadOnlyTinyDBStore, TinyDBStore
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]


def note(core, departure_id: int = 1) -> dict:
    return core.store.get_departure(departure_id)[PLAN_NOTE]


def reopened(settings, clock):
    """The store opened again by a new process, as ``sendoff console`` starts: recover, then plan_all."""
    core = build_core(settings, RecordingNotifier(), clock=clock)
    core.dispatcher.recover()
    core.playbook.plan_all()
    return core


@pytest.fixture
async def recorded(settings, clock, interview_with):
    """A departure answered to the end (greetings, check-ins, nudges planned), its exit note declined by the
    AM (a draft waiting for them is looked at by every start-up), the bot's work of the moment done, the store
    closed: its note, which holds until Christmas 2027's greeting comes within the year ahead, on 23 December
    (its touches falling due before then change nothing)."""
    core = build_core(settings, RecordingNotifier(drafts=True), clock=clock)
    interview_with(core.departures)
    [draft] = await core.dispatcher.run_due()
    core.dispatcher.decline(draft.touch["id"], "ann")
    core.playbook.plan_all()
    planned = note(core)
    assert planned["until"] == "2026-12-23T08:00:00.000Z"
    core.close()
    return planned


# -- start-up re-plans nothing that has not changed ---------------------------------------------------
def test_every_change_through_the_bot_leaves_a_note_and_start_up_replans_nothing(settings, clock, recorded):
    assert recorded["at"] == "2026-11-25T10:00:00.000Z"
    clock.advance(timedelta(minutes=5))  # a restart a moment later: nothing fell due, no greeting came in reach
    core = reopened(settings, clock)
    try:
        assert note(core) == recorded  # not planned again: its note is the one made when it was answered
        assert core.playbook.still_planned(core.departures.get(1))
    finally:
        core.close()


def test_a_record_written_without_its_note_is_replanned_at_start_up(settings, clock, recorded):
    core = build_core(settings, RecordingNotifier(), clock=clock)
    record = core.departures.get(1)
    record["status"] = Status.RETAINED  # written as an import or a hand edit would: no re-plan, no note
    for field in (PLAN_NOTE, "plan_by", "plan_until"):
        record.pop(field)
    core.store.save_departure(record)
    assert any(t["status"] is TouchStatus.PENDING and t["channel"] is Channel.EMAIL
               for t in core.store.find_touches(departure_id=1))  # fmt: skip
    core.close()
    clock.advance(timedelta(minutes=5))
    core = reopened(settings, clock)
    try:
        assert note(core)["at"] == "2026-11-25T10:05:00.000Z"
        emails = [t for t in core.store.find_touches(departure_id=1) if t["channel"] is Channel.EMAIL]
        assert emails and all(t["status"] is TouchStatus.CANCELLED for t in emails)
    finally:
        core.close()


def test_an_answer_planned_by_an_older_release_is_replanned_at_start_up(settings, clock, recorded):
    core = build_core(settings, RecordingNotifier(), clock=clock)
    record = core.departures.get(1)
    record["interview"]["answers"]["greetings"]["value"] = False
    record["plan_by"] = "an older sendoff"  # a release that planned otherwise
    core.store.save_departure(record)
    core.close()
    core = reopened(settings, clock)
    try:
        greetings = [t for t in core.store.find_touches(departure_id=1) if t["kind"] is TouchKind.GREETING]
        assert greetings and all(t["status"] is TouchStatus.CANCELLED for t in greetings)
        assert core.playbook.still_planned(core.departures.get(1))
    finally:
        core.close()


def test_an_opt_out_replans_at_once_and_start_up_then_has_nothing_to_do(settings, clock, recorded):
    from bot.privacy import Privacy

    core = build_core(settings, RecordingNotifier(), clock=clock)
    clock.advance(timedelta(minutes=1))
    Privacy(core.departures).opt_out(core.departures.get(1), actor="ann")
    after_opt_out = note(core)
    assert after_opt_out["at"] == "2026-11-25T10:01:00.000Z" and after_opt_out["inputs"] != recorded["inputs"]
    core.close()
    clock.advance(timedelta(minutes=5))
    core = reopened(settings, clock)
    try:
        assert note(core) == after_opt_out
        emails = [t for t in core.store.find_touches(departure_id=1) if t["channel"] is Channel.EMAIL]
        assert emails and all(t["status"] is TouchStatus.CANCELLED for t in emails)
    finally:
        core.close()


def test_a_setting_that_plans_otherwise_replans_every_departure(settings, clock, recorded):
    core = reopened(replace(settings, stay_in_touch_years=1), clock)
    try:
        assert note(core)["inputs"] != recorded["inputs"]
        assert note(core)["at"] == recorded["at"]  # planned again now (the clock has not moved)
        assert core.playbook.still_planned(core.departures.get(1))
    finally:
        core.close()
    core = reopened(settings, clock)  # and back: planned again, as before
    try:
        assert note(core)["inputs"] == recorded["inputs"]
    finally:
        core.close()


def test_a_companys_own_cadence_replans_with_its_days(settings, clock, recorded, tmp_path):
    own = tmp_path / "prompts"
    own.mkdir()
    cadence = (DEFAULTS / "cadence.toml").read_text().replace("days = [30, 90, 180]", "days = [45, 90, 180]")
    assert "days = [45, 90, 180]" in cadence
    (own / "cadence.toml").write_text(cadence)
    core = reopened(replace(settings, prompts_dir=own), clock)
    try:
        assert note(core)["inputs"] != recorded["inputs"]
        by_key = {t["key"]: t for t in core.store.find_touches(departure_id=1)}
        assert by_key["1:check_in:+30d"]["status"] is TouchStatus.CANCELLED
        assert by_key["1:check_in:+45d"]["status"] is TouchStatus.PENDING
    finally:
        core.close()


def test_the_clock_passing_the_horizon_tops_up_the_greetings_and_nothing_earlier(settings, clock, recorded):
    # Christmas 2027 is greeted on Thursday 23 December 2027: planned once it is within a year (365 days)
    christmas = datetime(2027, 12, 23, 8, tzinfo=UTC)
    core = build_core(settings, RecordingNotifier(), clock=clock)
    try:
        assert core.store.touch_by_key("1:greeting:christmas:2027") is None
        until = parse_iso(recorded["until"])
        assert until <= christmas - timedelta(days=365)  # it holds no longer than that
        clock.set(until - timedelta(minutes=1))
        core.playbook.plan_all()
        assert note(core) == recorded  # still holds: not planned again
        clock.set(christmas - timedelta(days=365))
        core.playbook.plan_all()
        assert core.store.touch_by_key("1:greeting:christmas:2027")["status"] is TouchStatus.PENDING
        assert parse_iso(note(core)["reach"]) == christmas
    finally:
        core.close()


async def test_touches_falling_due_while_down_replan_nothing_and_the_dispatcher_plans_each_next_nudge(
        settings, clock, interview_with):  # fmt: skip
    core = build_core(settings, RecordingNotifier(), clock=clock)
    # the agreement not signed: nudged from Friday 27 November; the data due back Wednesday 2 December
    interview_with(core.departures, agreement_signed="no", data_by="in 1 week")
    planned = note(core)
    core.close()
    # down until Tuesday 8 December, 08:00 in Berlin: the exit note and nudges fell due meanwhile, the
    # agreement's first over a week ago (its moment is over), the data's on Wednesday
    clock.set(datetime(2026, 12, 8, 7, tzinfo=UTC))
    core = reopened(settings, clock)
    try:
        assert note(core) == planned  # start-up planned nothing again: the dispatcher settles what is due

        def touch(key: str) -> dict:
            return core.store.touch_by_key(f"1:deadline:{key}")

        await core.dispatcher.run_due()
        assert touch("agreement_signed:2026-11-27:1")["status"] is TouchStatus.SKIPPED
        # the next follows at once, 3 working days after the skip, in working hours
        assert touch("agreement_signed:2026-11-27:2")["status"] is TouchStatus.PENDING
        assert touch("agreement_signed:2026-11-27:2")["due_at"] == "2026-12-11T08:00:00.000Z"
        # ann's working day begins at 09:00: the data's nudge waits for it, and nothing follows it yet
        assert touch("data_return:2026-12-02:1")["due_at"] == "2026-12-08T08:00:00.000Z"
        assert touch("data_return:2026-12-02:2") is None
        clock.set(datetime(2026, 12, 8, 8, tzinfo=UTC))
        await core.dispatcher.run_due()
        assert touch("data_return:2026-12-02:1")["status"] is TouchStatus.SENT
        assert touch("data_return:2026-12-02:2")["due_at"] == "2026-12-11T08:00:00.000Z"
        assert core.store.touch_by_key("1:exit_note")["status"] is TouchStatus.AWAITING_APPROVAL
        made = pending_nudges(core)
    finally:
        core.close()
    # the exit note waits for the AM, so start-up plans this departure again: the same as the dispatcher did
    clock.advance(timedelta(minutes=1))
    core = reopened(settings, clock)
    try:
        assert note(core)["at"] == "2026-12-08T08:01:00.000Z"
        assert pending_nudges(core) == made
    finally:
        core.close()


class Killed(BaseException):
    """The process killed at that moment: nothing after it runs (not an Exception: nobody catches it)."""


@dataclass
class KilledWhileNudging(RecordingNotifier):
    async def deliver(self, notice) -> None:
        if notice.touch is not None and notice.touch["kind"] is TouchKind.DEADLINE:
            raise Killed
        await super().deliver(notice)


async def test_a_nudge_cut_off_by_a_kill_is_followed_by_the_next_one_at_start_up(settings, clock, interview_with):
    core = build_core(settings, KilledWhileNudging(), clock=clock)
    interview_with(core.departures, agreement_signed="no")  # nudged from Friday 27 November, 11:00 in Berlin
    clock.set(datetime(2026, 11, 27, 10, tzinfo=UTC))
    with pytest.raises(Killed):
        await core.dispatcher.run_due()
    cut_off = core.store.touch_by_key("1:deadline:agreement_signed:2026-11-27:1")
    assert cut_off["status"] is TouchStatus.SENDING and core.store.touch_by_key(
        "1:deadline:agreement_signed:2026-11-27:2") is None  # fmt: skip
    core.close()
    core = reopened(settings, clock)
    try:
        assert core.store.get_touch(cut_off["id"])["status"] is TouchStatus.UNKNOWN  # never delivered twice
        follows = core.store.touch_by_key("1:deadline:agreement_signed:2026-11-27:2")
        assert follows["status"] is TouchStatus.PENDING and follows["due_at"] == "2026-12-02T10:00:00.000Z"
    finally:
        core.close()


def pending_nudges(core) -> dict[str, str]:
    return {t["key"]: t["due_at"] for t in core.store.find_touches(statuses=[TouchStatus.PENDING])
            if t["kind"] is TouchKind.DEADLINE}  # fmt: skip


def test_an_older_store_without_notes_is_planned_once(settings, clock, recorded):
    core = build_core(settings, RecordingNotifier(), clock=clock)
    record = core.departures.get(1)
    for field in (PLAN_NOTE, "plan_by", "plan_until"):
        del record[field]
    core.store.save_departure(record)
    core.close()
    core = reopened(settings, clock)
    try:
        assert note(core)["inputs"] == recorded["inputs"]
    finally:
        core.close()


# -- a dispatch tick reads only what is due -----------------------------------------------------------
def _random_touches(store, rng: random.Random, count: int) -> None:
    statuses = list(TouchStatus)
    for n in range(count):
        due = None if rng.random() < 0.05 else f"2027-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T08:00:00.000Z"
        store.put_touch({"key": f"k{n % (count // 2)}", "departure_id": rng.randint(1, 5), "kind": TouchKind.CHECK_IN,
                         "channel": Channel.EMAIL, "recipient": "pat@acme.example", "due_at": due,
                         "latest_at": "2028-01-01T00:00:00.000Z", "zone": "Europe/Berlin", "payload": {},
                         "status": rng.choice(statuses), "attempts": 0})  # fmt: skip


def _brute_force(store, statuses, due_before, departure_id=None):
    """The contract's meaning, from every touch: matching, earliest due first (None as ""), then by id."""
    found = [t for t in store.find_touches() if t["status"] in statuses and (t["due_at"] or "") <= due_before
             and (departure_id is None or t["departure_id"] == departure_id)]  # fmt: skip
    return [t["id"] for t in sorted(found, key=lambda t: (t["due_at"] or "", t["id"]))]


@pytest.mark.parametrize("backend", ["memory", "tinydb"])
def test_the_due_touches_come_from_the_index_as_the_contract_has_them(backend, tmp_path):
    rng = random.Random(7)
    store = MemoryStore() if backend == "memory" else TinyDBStore(tmp_path / "sendoff.json")
    _random_touches(store, rng, 400)  # every key twice: half of them replaced, status and due time changing
    for touch in store.find_touches()[::7]:
        store._delete("touches", touch["id"])
    if backend == "tinydb":
        store.close()
        store = TinyDBStore(tmp_path / "sendoff.json")  # read back in the line layout, indexed when first asked
    try:
        for statuses in (
            [TouchStatus.PENDING],
            [TouchStatus.PENDING, TouchStatus.AWAITING_APPROVAL],
            list(TouchStatus),
        ):
            for due_before in ("2027-01-01T00:00:00.000Z", "2027-05-15T08:00:00.000Z", "2099-01-01T00:00:00.000Z"):
                for departure_id in (None, 3):
                    found = store.find_touches(statuses=statuses, due_before=due_before, departure_id=departure_id)
                    assert [t["id"] for t in found] == _brute_force(store, statuses, due_before, departure_id)
        due = store.find_touches(statuses=[TouchStatus.PENDING], due_before="2099-01-01T00:00:00.000Z")
        sent = due[0]
        sent["status"] = TouchStatus.SENT
        store.save_touch(sent)  # the index follows the change
        assert sent["id"] not in [
            t["id"] for t in store.find_touches(statuses=[TouchStatus.PENDING], due_before="2099-01-01T00:00:00.000Z")
        ]
        with pytest.raises(RuntimeError), store.batch():  # and a batch that fails leaves it as it was
            moved = due[1]
            moved["due_at"] = "2030-01-01T00:00:00.000Z"
            store.save_touch(moved)
            store.put_touch({**moved, "key": "new", "due_at": "2026-01-01T00:00:00.000Z"})
            assert store.find_touches(statuses=[TouchStatus.PENDING], due_before="2026-06-01T00:00:00.000Z")
            raise RuntimeError("the batch fails")
        assert [
            t["id"] for t in store.find_touches(statuses=[TouchStatus.PENDING], due_before="2099-01-01T00:00:00.000Z")
        ] == [t["id"] for t in due[1:]]
    finally:
        store.close()


# -- the file read back: its line layout, and every other -------------------------------------------------
def _filled(path: Path, clock, interview_with, settings) -> list:
    core = build_core(replace(settings, db_path=path), RecordingNotifier(), clock=clock)
    interview_with(core.departures)
    interview_with(core.departures, "Bolt Ltd")
    expected = [core.store.find_departures(), core.store.find_touches()]
    core.close()
    return expected


def test_the_snapshot_is_tinydb_one_record_a_line_and_reads_back_the_same(settings, clock, interview_with, tmp_path):
    path = tmp_path / "sendoff.json"
    expected = _filled(path, clock, interview_with, settings)
    lines = path.read_text().split("\n")
    assert lines[0] == "{" and lines[1] == '"departures":{' and lines[2].startswith('"1":{')
    db = TinyDB(path)  # TinyDB reads it as its own
    assert db.table("departures").get(doc_id=2)["client"] == "Bolt Ltd"
    db.close()
    reader = ReadOnlyTinyDBStore(path)
    assert reader._unindexed  # nothing parsed yet: a table is indexed when first looked into
    assert [reader.find_departures(), reader.find_touches()] == expected
    assert reader.find_departures(client_key="boltltd")[0]["id"] == 2


def test_a_file_in_tinydbs_own_layout_is_read_in_full(settings, clock, interview_with, tmp_path):
    path = tmp_path / "sendoff.json"
    expected = _filled(path, clock, interview_with, settings)
    data = json.loads(path.read_text())
    plain = tmp_path / "plain.json"
    db = TinyDB(plain, storage=JSONStorage, indent=2)  # as TinyDB (or a person) writes it
    for table in ("departures", "touches"):
        db.table(table).insert_multiple(data[table].values())
    db.close()
    store = TinyDBStore(plain)
    try:
        assert not store._unindexed
        assert [store.find_departures(), store.find_touches()] == expected
    finally:
        store.close()
    assert plain.read_text().split("\n")[0] == "{"  # written back in the line layout


def test_a_line_changed_on_disk_is_read_in_full_and_a_broken_one_refused(settings, clock, interview_with, tmp_path):
    path = tmp_path / "sendoff.json"
    _filled(path, clock, interview_with, settings)
    edited = path.read_text().replace('"client":"Bolt Ltd"', '"client":"Bolt Limited"')
    path.write_text(edited)  # a hand edit: the checksum no longer holds, the JSON does
    store = TinyDBStore(path)
    try:
        assert store.get_departure(2)["client"] == "Bolt Limited"
    finally:
        store.close()
    broken = tmp_path / "broken.json"
    broken.write_text(path.read_text().replace('"client":"Bolt Limited"', '"client":"Bolt'))
    before = broken.read_bytes()
    with pytest.raises(StoreCorruptError, match="cannot be read"):
        TinyDBStore(broken)
    assert broken.read_bytes() == before  # left as it was found


def test_a_backup_of_a_lazily_read_store_holds_every_record(settings, clock, interview_with, tmp_path):
    from storage.backup import backup_tinydb

    path = tmp_path / "sendoff.json"
    expected = _filled(path, clock, interview_with, settings)
    counts = backup_tinydb(path, tmp_path / "copy.json")
    assert counts["departures"] == 2 and counts["touches"] == len(expected[1])
    copy = tmp_path / "again" / "sendoff.json"
    copy.parent.mkdir()
    shutil.copyfile(tmp_path / "copy.json", copy)
    assert [ReadOnlyTinyDBStore(copy).find_departures(), ReadOnlyTinyDBStore(copy).find_touches()] == expected


def test_start_up_finds_a_client_keyed_before_it_read_every_departure(settings, clock, recorded):
    core = build_core(settings, RecordingNotifier(), clock=ManualClock(clock.now()))
    try:
        assert not core.departures.rekeyed  # nothing read at open
        assert core.departures.find("acme corp")["id"] == 1
        assert core.departures.rekeyed
    finally:
        core.close()
