"""The Store contract that bot/ relies on, and what every backend shares.

Records cross this contract typed (``storage.records``): statuses, kinds and
channels are StrEnums going in and coming out. Underneath, a backend holds
plain JSON documents: a StrEnum member is a ``str``, so ``json.dumps`` writes
its value and an index keyed by the stored string matches a lookup by the
member (equal, and of equal hash). The store interprets nothing beyond the few
fields it indexes (see ``INDEXED``); bot/ owns the meaning of every field.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from storage.records import (
    Departure,
    NewDeparture,
    NewTouch,
    NewUpdate,
    Status,
    Touch,
    TouchStatus,
    Update,
    departure_from,
    touch_from,
    update_from,
)

SCHEMA_VERSION = 1

DEPARTURES = "departures"
TOUCHES = "touches"
EVENTS = "events"
TEAM_SIZES = "team_sizes"
UPDATES = "updates"
TABLES = (DEPARTURES, TOUCHES, EVENTS, TEAM_SIZES, UPDATES)

# Fields kept in memory beside each record so that lists and lookups never
# have to parse every stored document.
INDEXED: dict[str, tuple[str, ...]] = {
    DEPARTURES: ("client_key", "status", "am", "updated_at", "plan_by", "plan_until"),
    TOUCHES: ("key", "departure_id", "status", "due_at", "kind", "sent_at"),
    EVENTS: ("key", "at"),
    TEAM_SIZES: ("at",),
    UPDATES: ("status",),
}

# Fields whose value is unique within their table, looked up through a dict.
UNIQUE: dict[str, str] = {TOUCHES: "key", EVENTS: "key"}

# Indexed fields also kept as value -> ids, so that a filter on them reads only the matches.
LOOKUP: dict[str, tuple[str, ...]] = {DEPARTURES: ("client_key", "am", "status"), TOUCHES: ("departure_id", "status")}

# A filter's exact values per looked-up field: one value, or a set of any-of values.
Equal = dict[str, Any]

# A document as a backend holds it: JSON-able, enums as their plain strings.
# Code that has not moved to the typed records still imports it from storage.
Record = dict[str, Any]
# Called with a record's indexed fields (see INDEXED), never the whole document.
Predicate = Callable[[dict[str, Any]], bool]


class NewTeamSize(TypedDict):
    """How many active clients the team said it has (``/clients 42``), kept with its date: a report of a
    past period uses the count that held then. Statements are only added, never changed."""

    count: int
    at: str  # from when the count holds, ISO UTC (the moment it was said, or the start of the day it names)
    by: str  # who said it
    said_at: str  # when it was said, ISO UTC


class TeamSize(NewTeamSize):
    id: int


def team_size_from(raw: dict[str, Any]) -> TeamSize:
    """A stored team size, checked: a count that is a whole number, not negative, and its times."""
    count = raw["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"a team size must be a whole number of clients, not {count!r}")
    for name in ("at", "by", "said_at"):
        if not isinstance(raw[name], str):
            raise TypeError(f"a team size's {name} must be text, not {raw[name]!r}")
    return raw  # type: ignore[return-value]  # checked field by field above


# Always in an outline: the id, and what ``departure_from`` restores to enums without asking.
OUTLINE_ALWAYS = ("status", "source")
# Given in their cut-down form, never whole.
_OUTLINE_PARTS = frozenset({"id", "interview", "history"})


@dataclass(frozen=True)
class Outline:
    """The parts of each departure that a reader of every one of them needs (``sendoff report`` reads
    10,000 departures, and a few fields of each): the rest is neither shipped nor parsed where the
    backend can avoid it.

    An outline holds ``id``, ``status`` and ``source``; the top-level ``fields`` named; ``interview.answers``
    with the answers to the questions named in ``answers``, each with only its ``answer_fields``; and
    ``history`` with the entries whose event is one of ``history_events``, in their order. A field that
    is null may be left out, at any depth (PostgreSQL's outlines leave out every one: stripping them here
    would cost more than the cut saves), so an outline's fields are read with ``.get``.
    """

    fields: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()  # question ids
    answer_fields: tuple[str, ...] = ()
    history_events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if _OUTLINE_PARTS & set(self.fields):
            raise ValueError(f"an outline gives {', '.join(sorted(_OUTLINE_PARTS))} itself, not as fields")

    @property
    def top(self) -> tuple[str, ...]:
        """The top-level fields of the document kept, each once."""
        return tuple(dict.fromkeys(OUTLINE_ALWAYS + self.fields))

    def cut(self, raw: Record) -> Record:
        """``raw``, a whole stored departure, cut down to this outline."""
        answers = (raw.get("interview") or {}).get("answers") or {}
        kept: dict[str, Any] = {}
        fields = self.answer_fields
        for question in self.answers:
            if question in answers:
                answer = answers[question] if isinstance(answers[question], dict) else {}
                # a loop, not a comprehension: no frame per answer (70,000 in a report of 10,000 departures)
                part: dict[str, Any] = {}
                for name in fields:
                    if name in answer:
                        part[name] = answer[name]
                kept[question] = part
        events = set(self.history_events)
        cut: Record = {name: raw[name] for name in self.top if name in raw}
        cut["interview"] = {"answers": kept}
        cut["history"] = [entry for entry in raw.get("history") or () if entry["event"] in events]
        cut["id"] = raw["id"]
        return cut

    def read(self, raw: Record) -> Record:
        """``raw`` cut down, its enums restored: a stored departure as ``Store.outline_departures`` gives it."""
        return outline_from(self.cut(raw))


def outline_from(raw: Record) -> Record:
    """A stored outline with the enums of what it holds restored, as in a whole departure."""
    departure_from(raw)
    return raw


# -- where the data is (SENDOFF_DB): a file path, or a PostgreSQL URL ----------------------------
# What a user may write; every one means asyncpg underneath, the one driver sendoff ships.
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
ASYNC_SCHEME = "postgresql+asyncpg"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
MASK = "***"


def database_url(location: str) -> str | None:
    """The SQLAlchemy URL (``postgresql+asyncpg://``) that ``location`` names, or None when it is a file path.

    ValueError for any other ``scheme://`` or a URL that cannot be read; its message never holds the
    password (nor the rest of the URL), so that it can be shown as it is.
    """
    found = _SCHEME.match(location)
    if found is None:
        return None
    scheme = found.group(1).lower()
    accepted = ", ".join(f"{s}://" for s in POSTGRES_SCHEMES)
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"{scheme}:// is not a database sendoff can use: give a file path for the embedded "
                         f"TinyDB store (such as data/sendoff.json) or a PostgreSQL URL ({accepted}...)")  # fmt: skip
    rest = location[found.end() :]
    how = f"write it as {scheme}://user:password@host:5432/database"
    if rest.split("/", 1)[0].count("@") > 1:
        # Drivers would read part of the password as the host, and name it in their errors.
        raise ValueError(f"the {scheme}:// URL has more than one @ before its host: {how}, an @ in the password "
                         f"written as %40")  # fmt: skip
    try:
        parts = urlsplit(f"{ASYNC_SCHEME}://{rest}")
        parts.port  # noqa: B018 - read for its check: a port that is not a number raises
    except ValueError:
        raise ValueError(f"the {scheme}:// URL cannot be read: {how} (a password with @, : or / in it "
                         f"percent-encoded, such as %40 for @)") from None  # fmt: skip
    if not parts.hostname and "host" not in dict(parse_qsl(parts.query)):
        raise ValueError(f"the {scheme}:// URL names no host: {how}")
    return f"{ASYNC_SCHEME}://{rest}"


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or as ``?password=``) replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return f"{url.split('://', 1)[0]}://{MASK}"  # unreadable: show nothing that might be a secret
    netloc = parts.netloc
    if password is not None:
        user = netloc.rpartition("@")[0].partition(":")[0]  # as written (percent-encoded)
        netloc = f"{user}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() == "password" for k, _ in pairs):
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs], safe="*")
    # Written out: urlunsplit drops the // of a URL without a host (postgresql:///db?host=/run/postgresql).
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class StoreError(Exception):
    """The store cannot be used; the message says what to do."""


class StoreCorruptError(StoreError):
    """A data file cannot be read. It is left exactly as it was found."""


_T = TypeVar("_T")


def load_json(text: str | bytes) -> Any:
    """JSON parsed by orjson, three to four times as fast as json on stored records (start-up and reports
    parse every one), or by json where orjson refuses what json takes (a lone surrogate's escape, NaN).

    Alike wherever both read it, but for an integer past 64 bits, which orjson reads as a float: records
    hold none (ids, counts, amounts up to bot.answers.MAX_AMOUNT, whole-number answers up to
    bot.answers.LARGEST_WHOLE_NUMBER)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _without(record: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in names}


def _restore(convert: Callable[[Record], _T], table: str, raw: Record) -> _T:
    try:
        return convert(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        # A stored record that is no longer a valid one: say which, rather
        # than fail somewhere above with a bare KeyError.
        raise StoreCorruptError(
            f"{table} record {raw.get('id')} in the store is not a valid record ({err!r}). "
            f"Restore the data from a backup, or correct that record."
        ) from err


class Store(ABC):
    """The repository contract that bot/ relies on.

    Every write is durable when the call returns. ``batch()`` groups writes so
    that either all of them or none survive a crash. A record handed in is
    checked with the same converter that reads it back, so a value that could
    not be read (an unknown status, a missing kind) is refused before it is
    stored rather than found on every later read. Reads return fresh copies
    with their enums restored; an insert returns what it was given plus its id.
    """

    # Whether other processes may use the same data at once (PostgreSQL): then a touch found in flight may be
    # another process's send, not one cut off by a crash (bot/dispatcher.py).
    shared = False

    # -- departures ---------------------------------------------------------
    def insert_departure(self, record: NewDeparture) -> Departure:
        checked = departure_from({**record})
        return departure_from(self._insert(DEPARTURES, checked))

    def save_departure(self, record: Departure) -> None:
        self._put(DEPARTURES, departure_from({**record}))

    def note_on_departure(self, departure_id: int, fields: Mapping[str, Any], read: Departure | None = None) -> bool:
        """Write ``fields`` (what is noted beside a departure: its plan's note) onto the stored departure, and
        nothing else: a change another process made to it since it was read stays. With ``read``: only while
        the stored departure, but for ``fields``, is still ``read``. False when nothing was written (gone,
        or changed since it was read)."""
        stored = self._get(DEPARTURES, departure_id)
        if stored is None:
            return False
        if read is not None and _without(stored, fields) != _without({**read, "id": departure_id}, fields):
            return False
        self._put(DEPARTURES, departure_from({**stored, **fields}))
        return True

    def get_departure(self, departure_id: int) -> Departure | None:
        raw = self._get(DEPARTURES, departure_id)
        return None if raw is None else _restore(departure_from, DEPARTURES, raw)

    def find_departures(
        self,
        *,
        client_key: str | None = None,
        client_prefix: str | None = None,
        statuses: Iterable[Status] | None = None,
        am: str | None = None,
    ) -> list[Departure]:
        """Departures matching every given filter, oldest first."""
        equal: Equal = {"client_key": client_key, "status": set(statuses) if statuses is not None else None, "am": am}
        found = self._select(
            DEPARTURES,
            lambda f: client_prefix is None or f["client_key"].startswith(client_prefix),
            {k: v for k, v in equal.items() if v is not None},
        )
        return [_restore(departure_from, DEPARTURES, raw) for raw in found]

    def departures_to_plan(self, plan_by: str, now: str) -> list[Departure]:
        """The departures whose plan no longer holds, oldest first: planned by something other than
        ``plan_by`` (another release, other settings; never planned so), or only until ``now`` or before
        (their ``plan_until``; bot/playbook.py). Start-up reads these, not every departure."""
        def lapsed(f: dict[str, Any]) -> bool:
            return f["plan_by"] != plan_by or (f["plan_until"] is not None and f["plan_until"] <= now)

        found = self._select(DEPARTURES, lapsed)
        return [_restore(departure_from, DEPARTURES, raw) for raw in found]

    def count_departures(self) -> int:
        return self._count(DEPARTURES)

    def outline_departures(self, outline: Outline) -> list[Record]:
        """Every departure, oldest first, cut down to ``outline`` (see ``Outline``), its enums restored."""
        found = self._select(DEPARTURES, lambda _: True)
        return [_restore(outline.read, DEPARTURES, raw) for raw in found]

    # -- touches ------------------------------------------------------------
    def put_touch(self, record: NewTouch | Touch) -> Touch:
        """Insert a touch, or replace the one with the same unique ``key``."""
        checked = touch_from({**record})
        existing = self._id_for_key(TOUCHES, checked["key"])
        if existing is None:
            return touch_from(self._insert(TOUCHES, checked))
        checked["id"] = existing
        self._put(TOUCHES, checked)
        return checked

    def replace_touch(self, record: NewTouch | Touch, read: Touch | None) -> Touch | None:
        """Write ``record`` under its ``key`` only while the stored touch is still ``read``, as it was read
        (``read`` None: while there is no touch with that key); None, writing nothing, when another writer
        got there first: a dispatcher claimed it, a retry moved it, another process planned it.

        A plan is made from what was read; written over a touch changed since, it would undo that change
        (a claimed touch made pending again is sent twice).
        """
        checked = touch_from({**record})
        existing = self._id_for_key(TOUCHES, checked["key"])
        if existing is None:
            return None if read is not None else touch_from(self._insert(TOUCHES, checked))
        if read is None or self._get(TOUCHES, existing) != {**read, "id": existing}:
            return None
        checked["id"] = existing
        self._put(TOUCHES, checked)
        return checked

    def save_touch(self, record: Touch) -> None:
        self._put(TOUCHES, touch_from({**record}))

    def get_touch(self, touch_id: int) -> Touch | None:
        raw = self._get(TOUCHES, touch_id)
        return None if raw is None else _restore(touch_from, TOUCHES, raw)

    def touch_by_key(self, key: str) -> Touch | None:
        found = self._id_for_key(TOUCHES, key)
        return None if found is None else self.get_touch(found)

    def find_touches(
        self,
        *,
        departure_id: int | None = None,
        statuses: Iterable[TouchStatus] | None = None,
        due_before: str | None = None,
        sent_after: str | None = None,
        limit: int | None = None,
    ) -> list[Touch]:
        """Touches matching every filter, earliest due first (a touch without a due time first of all);
        the first ``limit`` of them.

        ``due_before`` (due at or before) and ``sent_after`` (sent after) compare ISO-8601 UTC strings, which
        sort as times do.
        """
        equal: Equal = {"departure_id": departure_id, "status": set(statuses) if statuses is not None else None}
        found = self._select(
            TOUCHES,
            lambda f: ((due_before is None or (f["due_at"] or "") <= due_before)
                       and (sent_after is None or (f["sent_at"] or "") > sent_after)),
            {k: v for k, v in equal.items() if v is not None},
        )  # fmt: skip
        found.sort(key=lambda t: (t.get("due_at") or "", t["id"]))
        return [_restore(touch_from, TOUCHES, raw) for raw in found[:limit]]

    def count_touches(self) -> int:
        return self._count(TOUCHES)

    def claim_touch(self, touch_id: int, expected: TouchStatus, new: TouchStatus, **changes: Any) -> Touch | None:
        """Move a touch from ``expected`` to ``new`` status, durably, or do nothing.

        Returns the updated touch, or None when it was not in ``expected``:
        the dispatcher claims a touch before sending so that it goes at most once.
        """
        touch = self.get_touch(touch_id)
        if touch is None or touch["status"] != expected:
            return None
        claimed = touch_from({**touch, **changes, "status": new})
        self._put(TOUCHES, claimed)
        return claimed

    # -- processed events ---------------------------------------------------
    def remember_event(self, key: str, at: str, forget_before: str) -> bool:
        """Record an event id; False when it was seen already.

        Ids older than ``forget_before`` are dropped in the same write.
        """
        if self._id_for_key(EVENTS, key) is not None:
            return False
        stale = self._ids_where(EVENTS, lambda f: f["at"] < forget_before)
        with self.batch():
            for event_id in stale:
                self._delete(EVENTS, event_id)
            self._insert(EVENTS, {"key": key, "at": at})
        return True

    def forget_event(self, key: str) -> None:
        """Drop an event id, so that a retry of an event whose handling failed is handled."""
        event_id = self._id_for_key(EVENTS, key)
        if event_id is not None:
            self._delete(EVENTS, event_id)

    # -- the team's size over time --------------------------------------------
    def add_team_size(self, record: NewTeamSize) -> TeamSize:
        """Keep one statement of how many active clients the team has."""
        return team_size_from(self._insert(TEAM_SIZES, team_size_from({**record})))

    def team_sizes(self) -> list[TeamSize]:
        """Every statement, by the time from which it holds (then in the order said)."""
        found = [_restore(team_size_from, TEAM_SIZES, raw) for raw in self._select(TEAM_SIZES, lambda f: True)]
        found.sort(key=lambda t: (t["at"], t["id"]))
        return found

    # -- updates to former clients (bot/updates.py) -----------------------------
    def insert_update(self, record: NewUpdate) -> Update:
        return update_from(self._insert(UPDATES, update_from({**record})))

    def save_update(self, record: Update) -> None:
        self._put(UPDATES, update_from({**record}))

    def get_update(self, update_id: int) -> Update | None:
        raw = self._get(UPDATES, update_id)
        return None if raw is None else _restore(update_from, UPDATES, raw)

    def list_updates(self) -> list[Update]:
        """Every update, oldest first."""
        return [_restore(update_from, UPDATES, raw) for raw in self._select(UPDATES, lambda f: True)]

    # -- backend hooks --------------------------------------------------------
    # Generic over tables, so they take and give plain documents; the typed
    # methods above convert on the way in and out.
    @abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Group the writes made inside the block into one atomic write."""

    def batch_durable_later(self) -> AbstractContextManager[None]:
        """Like ``batch()``, except that its writes may be durable only once a later ``durable()`` returns.

        For a writer that must know its write is durable before it acts, but need not hold the event loop
        while the disk takes it: marks in flight (bot/sending.py). Where a commit is durable anyway (a
        database), it is ``batch()``.
        """
        return self.batch()

    async def durable(self) -> None:
        """Return once every write made so far is durable; raises the store's error (StoreError, OSError).

        Where every commit is durable when it returns (a database, memory), there is nothing to wait for."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; it is unusable afterwards."""

    @abstractmethod
    def _insert(self, table: str, record: Mapping[str, Any]) -> Record:
        """Store a new record under a fresh id and return it with that id."""

    @abstractmethod
    def _put(self, table: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` under its own ``id``, replacing what was there."""

    @abstractmethod
    def _delete(self, table: str, record_id: int) -> None:
        """Remove a record; removing a missing one is not an error."""

    @abstractmethod
    def _get(self, table: str, record_id: int) -> Record | None:
        """A fresh copy of one record, or None."""

    @abstractmethod
    def _ids_where(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[int]:
        """Ids whose indexed fields hold the ``equal`` values and satisfy ``predicate``, in id order."""

    @abstractmethod
    def _id_for_key(self, table: str, key: str) -> int | None:
        """The id of the record whose unique field (see UNIQUE) is ``key``."""

    @abstractmethod
    def _select(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[Record]:
        """Fresh copies of the records ``_ids_where`` names, in id order."""

    @abstractmethod
    def _count(self, table: str) -> int:
        """How many records ``table`` holds."""
