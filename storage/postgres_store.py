"""The PostgreSQL backend: one database shared by several sendoff processes (and machines).

- One table per ``storage.contract.TABLES``: ``id bigserial``, the whole record
  as ``doc jsonb`` (without its id), and the ``INDEXED`` fields as real columns
  with indexes (``UNIQUE`` ones unique), so that every lookup the contract
  makes is answered by the database. Text columns use the "C" collation: the
  contract compares ISO times and keys as plain strings, byte by byte, and a
  language collation would order them otherwise.
- Nothing is cached in this process: another process may have changed any
  record since; every read asks the database.
- A touch is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` in a short
  transaction of its own, and an event id is remembered with ``INSERT ... ON
  CONFLICT DO NOTHING``: of two processes doing the same, exactly one wins.
- The schema belongs to Alembic (``storage/migrations``); ``migrate`` brings a
  database to the newest revision, and a store refuses to open on an older one.

Messages never hold the database password: every one that names the database
or repeats an error of the driver goes through ``mask_url``/``_Secret.hide``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.contract import (
    DEPARTURES,
    EVENTS,
    INDEXED,
    TABLES,
    TOUCHES,
    UNIQUE,
    Equal,
    Outline,
    Predicate,
    Record,
    Store,
    StoreError,
    _restore,
    database_url,
    load_json,
    mask_url,
    outline_from,
)
from storage.records import Departure, NewTouch, Status, Touch, TouchStatus, departure_from, touch_from

MIGRATIONS = Path(__file__).with_name("migrations")
# How long to wait for the server to accept a connection, and for one statement to finish.
CONNECT_TIMEOUT = 10.0
STATEMENT_TIMEOUT = 60.0
# Due touches read at a time (``PostgresStore._due_pages``).
DUE_PAGE = 500
# Rows per INSERT when ``move_data`` copies a table.
COPY_CHUNK = 500
# Held (for its transaction) while ``migrate`` runs, so that two processes never migrate at once.
MIGRATE_LOCK = 0x5E4D0FF

_T = TypeVar("_T")
# A result row: sqlalchemy.Row, whose type parameters differ between SQLAlchemy 2.0 and 2.1.
Row = Any

METADATA = sa.MetaData()

# The indexed fields that are not text; all others are text in the "C" collation.
_NOT_TEXT: dict[str, sa.types.TypeEngine[Any]] = {"departure_id": sa.BigInteger()}


# Indexed fields whose own index is a composite one, declared below (storage/migrations, 0003).
_COMPOSITE = {(TOUCHES, "sent_at")}


def _index_column(table: str, name: str) -> sa.Column[Any]:
    kind = _NOT_TEXT.get(name, sa.Text(collation="C"))
    return sa.Column(name, kind, nullable=True, unique=UNIQUE.get(table) == name,
                     index=UNIQUE.get(table) != name and (table, name) not in _COMPOSITE)  # fmt: skip


TABLE: dict[str, sa.Table] = {
    name: sa.Table(
        name,
        METADATA,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("doc", JSONB, nullable=False),
        *(_index_column(name, field) for field in INDEXED[name]),
    )
    for name in TABLES
}
# What the dispatcher asks every few minutes: pending touches due before now, by due time (a touch without
# one counts as due: the contract sorts it as ""), in the order it takes them.
# ('' as a literal, not a parameter: only the very expression of the index lets the planner use it)
_DUE = sa.func.coalesce(TABLE[TOUCHES].c.due_at, sa.literal_column("''"))
sa.Index("ix_touches_status_due", TABLE[TOUCHES].c.status, _DUE, TABLE[TOUCHES].c.id)
# The emails sent in the last day, counted at start-up for the daily cap.
sa.Index("ix_touches_status_sent_at", TABLE[TOUCHES].c.status, TABLE[TOUCHES].c.sent_at)


class StoreUnavailableError(StoreError):
    """The database cannot be reached (down, unreachable, refused the login); the message names it, masked."""


class SchemaError(StoreError):
    """The database's schema is missing, older or newer than this sendoff's; the message says what to run."""


class _Secret:
    """Hides one URL's password in any text: error texts of the driver may quote what they were given."""

    def __init__(self, url: str) -> None:
        self.shown = mask_url(url)
        try:
            parts = urlsplit(url)
            written = [parts.password or "", *(v for k, v in parse_qsl(parts.query) if k.lower() == "password")]
        except ValueError:
            written = []
        # As written in the URL (percent-encoded), as the driver got it, and encoded again.
        forms = {form for raw in written for form in (raw, unquote(raw), quote(unquote(raw), safe=""))}
        self._hidden = sorted((f for f in forms if f), key=len, reverse=True)

    def hide(self, text: str) -> str:
        for secret in self._hidden:
            text = text.replace(secret, "***")
        return text


class _Loop:
    """An event loop of its own in a daemon thread, that synchronous callers hand coroutines to.

    The Store contract is synchronous: bot/ calls it from async code as it
    calls TinyDB, whose writes are short. SQLAlchemy's async engine (asyncpg)
    needs a running loop, and may not share the caller's (blocking on a
    coroutine of the caller's own loop would never finish). So one AsyncEngine
    lives on this private loop for the store's whole life, and each contract
    call submits a coroutine (``run_coroutine_threadsafe``) and waits for it.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("the store was called from its own loop: that would wait for itself forever")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the server is not there (or not for us), as opposed to a refused statement."""
    if isinstance(err, OSError | TimeoutError | asyncio.TimeoutError):
        return True
    if isinstance(err, sa_exc.DBAPIError):
        if err.connection_invalidated or isinstance(err, sa_exc.InterfaceError):
            return True
        orig = getattr(err.orig, "__cause__", None) or err.orig
        # asyncpg's refusals at login (password, unknown database or role) and its lost connections.
        name = type(orig).__name__
        return isinstance(orig, OSError) or name in _LOGIN_ERRORS or "Connection" in name
    return False


_LOGIN_ERRORS = frozenset({"InvalidPasswordError", "InvalidAuthorizationSpecificationError", "InvalidCatalogNameError",
                           "CannotConnectNowError", "TooManyConnectionsError", "ClientConfigurationError"})  # fmt: skip


def _reason(err: BaseException) -> str:
    """The driver's own words for ``err``, without SQLAlchemy's statement dump and help link."""
    orig = err.orig if isinstance(err, sa_exc.DBAPIError) and err.orig is not None else err
    text = str(getattr(orig, "__cause__", None) or orig) or type(orig).__name__
    return text.splitlines()[0] if text.strip() else type(orig).__name__


def _fail(secret: _Secret, err: BaseException) -> StoreError:
    if _unreachable(err):
        return StoreUnavailableError(
            f"cannot use the PostgreSQL database at {secret.shown}: {secret.hide(_reason(err))}. Check that the "
            f"server is running and reachable, and that SENDOFF_DB names the right user, password and database."
        )
    return StoreError(f"the PostgreSQL database at {secret.shown} refused a request: {secret.hide(_reason(err))}")


def _engine(url: str, **options: Any) -> AsyncEngine:
    return create_async_engine(
        url,
        json_serializer=lambda doc: json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
        json_deserializer=load_json,  # as the file's records are read (storage/memory_store.py)
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "command_timeout": STATEMENT_TIMEOUT,
            "server_settings": {"application_name": "sendoff"},
        },
        **options,
    )


def _plain(value: Any) -> Any:
    """A StrEnum member as its plain string (asyncpg binds by type), anything else as it is."""
    return str.__str__(value) if isinstance(value, str) else value


def _columns(table: str, record: Mapping[str, Any]) -> dict[str, Any]:
    values = {}
    for name in INDEXED[table]:
        value = _plain(record.get(name))
        wanted = int if name in _NOT_TEXT else str
        if value is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
            raise TypeError(f"a {table} record's {name} must be {wanted.__name__} or null, not {value!r}")
        values[name] = value
    return values


def _doc(record: Mapping[str, Any]) -> dict[str, Any]:
    """What goes into ``doc``: the record without its id, which is the row's own."""
    return {k: v for k, v in record.items() if k != "id"}


def _row(table: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values for ``record``, but its id: the document, and the indexed fields beside it."""
    doc = _doc(record)
    return {"doc": doc, **_columns(table, doc)}


def _where(table: sa.Table, equal: Equal | None) -> list[sa.ColumnElement[bool]]:
    clauses = []
    for name, wanted in (equal or {}).items():
        column = table.c[name]
        if isinstance(wanted, set | frozenset):
            values = [_plain(v) for v in wanted if v is not None]
            clause: sa.ColumnElement[bool] = column.in_(values)
            if None in wanted:
                clause = sa.or_(clause, column.is_(None))
            clauses.append(clause)
        else:
            clauses.append(column.is_(None) if wanted is None else column == _plain(wanted))
    return clauses


def _fields(table: str, row: Row) -> dict[str, Any]:
    return {name: getattr(row, name) for name in INDEXED[table]}


def _record(row: Row) -> Record:
    return {**row.doc, "id": row.id}


Work = Callable[[AsyncConnection], Coroutine[Any, Any, _T]]


class PostgresStore(Store):
    """The Store contract on a PostgreSQL database (``postgresql://``, ``postgres://`` or
    ``postgresql+asyncpg://`` URL), whose schema ``migrate`` has brought to the newest revision."""

    shared = True

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        sa_url = database_url(url)
        if sa_url is None:
            raise StoreError("a PostgreSQL store needs a postgresql:// URL, not a file path")
        self._secret = _Secret(sa_url)
        self.shown = self._secret.shown  # the URL for messages, password masked
        self._local = threading.local()  # each thread's open batch (a connection in a transaction), if any
        self._closed = False
        self._loop = _Loop("sendoff-postgres")
        try:
            # pre_ping: a connection the server dropped (a restart) is replaced instead of failing a call.
            self._engine = _engine(sa_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            self._run(_check_schema(self._engine, self.shown))
        except BaseException:
            self._shut()
            raise

    # -- running on the private loop ------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            return self._loop.run(coro)
        except (sa_exc.DBAPIError, OSError, TimeoutError) as err:
            failure = _fail(self._secret, err)
            # A lost connection's cause may quote what the driver was given: leave it out, the message says enough.
            raise failure from (None if isinstance(failure, StoreUnavailableError) else err)

    def _do(self, work: Work[_T]) -> _T:
        """Run ``work`` in this thread's batch, or else in a transaction of its own."""
        if self._closed:
            raise StoreError("the store is closed")
        batch: AsyncConnection | None = getattr(self._local, "conn", None)
        if batch is not None:
            return self._run(work(batch))

        async def alone() -> _T:
            async with self._engine.begin() as conn:
                return await work(conn)

        return self._run(alone())

    def _rows(self, statement: sa.Executable) -> list[Row]:
        async def work(conn: AsyncConnection) -> list[Row]:
            return list((await conn.execute(statement)).all())

        return self._do(work)

    # -- the contract's hooks -----------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:  # nested: the outer batch commits
            yield
            return
        if self._closed:
            raise StoreError("the store is closed")

        async def begin() -> AsyncConnection:
            conn = await self._engine.connect()
            try:
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
            return conn

        async def end(conn: AsyncConnection, commit: bool) -> None:
            try:
                await (conn.commit() if commit else conn.rollback())
            finally:
                await conn.close()

        conn = self._run(begin())
        self._local.conn = conn
        try:
            yield
        except BaseException:
            self._local.conn = None
            # A server that is gone dropped the transaction anyway; the first error is the one to see.
            with contextlib.suppress(StoreError):
                self._run(end(conn, commit=False))
            raise
        self._local.conn = None
        self._run(end(conn, commit=True))

    def _insert(self, table: str, record: Mapping[str, Any]) -> Record:
        values = _row(table, record)
        t = TABLE[table]
        rows = self._rows(sa.insert(t).values(**values).returning(t.c.id))
        return {**values["doc"], "id": rows[0].id}

    def _put(self, table: str, record: Mapping[str, Any]) -> None:
        record_id = int(record["id"])
        values = _row(table, record)
        t = TABLE[table]

        async def work(conn: AsyncConnection) -> None:
            updated = await conn.execute(sa.update(t).where(t.c.id == record_id).values(**values).returning(t.c.id))
            if updated.first() is not None:
                return
            # A record put under an id never handed out (a copy): the sequence must move past it.
            await conn.execute(sa.insert(t).values(id=record_id, **values))
            await conn.execute(_sequence_past_max(table))

        self._do(work)

    def _delete(self, table: str, record_id: int) -> None:
        t = TABLE[table]
        self._do(lambda conn: conn.execute(sa.delete(t).where(t.c.id == int(record_id))))

    def _get(self, table: str, record_id: int) -> Record | None:
        t = TABLE[table]
        rows = self._rows(sa.select(t.c.id, t.c.doc).where(t.c.id == int(record_id)))
        return _record(rows[0]) if rows else None

    def _ids_where(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[int]:
        t = TABLE[table]
        fields = [t.c[name] for name in INDEXED[table]]
        rows = self._rows(sa.select(t.c.id, *fields).where(*_where(t, equal)).order_by(t.c.id))
        return [row.id for row in rows if predicate(_fields(table, row))]

    def _id_for_key(self, table: str, key: str) -> int | None:
        t = TABLE[table]
        rows = self._rows(sa.select(t.c.id).where(t.c[UNIQUE[table]] == _plain(key)))
        return rows[0].id if rows else None

    def _select(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[Record]:
        t = TABLE[table]
        fields = [t.c[name] for name in INDEXED[table]]
        rows = self._rows(sa.select(t.c.id, t.c.doc, *fields).where(*_where(t, equal)).order_by(t.c.id))
        return [_record(row) for row in rows if predicate(_fields(table, row))]

    def _count(self, table: str) -> int:
        rows = self._rows(sa.select(sa.func.count()).select_from(TABLE[table]))
        return int(rows[0][0])

    # -- what the database answers better than the generic hooks ----------------------
    def find_departures(
        self,
        *,
        client_key: str | None = None,
        client_prefix: str | None = None,
        statuses: Iterable[Status] | None = None,
        am: str | None = None,
    ) -> list[Departure]:
        t = TABLE[DEPARTURES]
        where: list[sa.ColumnElement[bool]] = []
        if client_key is not None:
            where.append(t.c.client_key == client_key)
        if client_prefix is not None:
            where.append(t.c.client_key.startswith(client_prefix, autoescape=True))
        if statuses is not None:
            where.append(t.c.status.in_([_plain(s) for s in statuses]))
        if am is not None:
            where.append(t.c.am == am)
        rows = self._rows(sa.select(t.c.id, t.c.doc).where(*where).order_by(t.c.id))
        return [_restore(departure_from, DEPARTURES, _record(row)) for row in rows]

    def outline_departures(self, outline: Outline) -> list[Record]:
        """Cut down by the database with jsonb operators: only the outline is shipped and parsed, not each
        document's whole history and answers."""
        binds: dict[str, Any] = {"events": json.dumps(list(outline.history_events))}

        def name(prefix: str, n: int, value: str) -> str:
            binds[f"{prefix}{n}"] = value
            return f"CAST(:{prefix}{n} AS text)"

        fields = [f"{name('f', n, field)}, doc -> {name('f', n, field)}" for n, field in enumerate(outline.top)]
        answers = []
        for n, question in enumerate(outline.answers):
            q = name("q", n, question)
            kept = ", ".join(f"{name('a', m, f)}, answers -> {q} -> {name('a', m, f)}"
                             for m, f in enumerate(outline.answer_fields))  # fmt: skip
            answers.append(f"{q}, CASE WHEN jsonb_exists(answers, {q}) THEN jsonb_build_object({kept}) END")
        # Each reference to a column's jsonb would read (detoast) the whole stored document again: the
        # innermost query reads it once (the OFFSET 0 keeps PostgreSQL from folding it into the outer ones).
        # A jsonpath comparison with a list holds when it holds for any member: an entry of any event named.
        statement = sa.text(f"""
            SELECT id, jsonb_strip_nulls(jsonb_build_object(
                {", ".join(fields + [""])}
                'interview', jsonb_build_object('answers', jsonb_build_object({", ".join(answers)})),
                'history', COALESCE(jsonb_path_query_array(doc -> 'history', '$[*] ? (@.event == $e[*])',
                                                           jsonb_build_object('e', CAST(:events AS jsonb))),
                                    CAST('[]' AS jsonb)))) AS outline
            FROM (SELECT id, doc, COALESCE(doc -> 'interview' -> 'answers', CAST('{{}}' AS jsonb)) AS answers
                  FROM (SELECT id, doc || CAST('{{}}' AS jsonb) AS doc FROM {DEPARTURES} OFFSET 0) AS whole
                  OFFSET 0) AS parts
            ORDER BY id
        """).bindparams(**binds).columns(id=sa.BigInteger, outline=JSONB)  # fmt: skip
        rows = self._rows(statement)
        return [_restore(outline_from, DEPARTURES, {**row.outline, "id": row.id}) for row in rows]

    def departures_to_plan(self, plan_by: str, now: str) -> list[Departure]:
        t = TABLE[DEPARTURES]
        stale = sa.or_(t.c.plan_by.is_(None), t.c.plan_by != plan_by, t.c.plan_until <= now)
        rows = self._rows(sa.select(t.c.id, t.c.doc).where(stale).order_by(t.c.id))
        return [_restore(departure_from, DEPARTURES, _record(row)) for row in rows]

    def find_touches(
        self,
        *,
        departure_id: int | None = None,
        statuses: Iterable[TouchStatus] | None = None,
        due_before: str | None = None,
        sent_after: str | None = None,
        limit: int | None = None,
    ) -> list[Touch]:
        t = TABLE[TOUCHES]
        where: list[sa.ColumnElement[bool]] = []
        if departure_id is not None:
            where.append(t.c.departure_id == departure_id)
        if statuses is not None:
            where.append(t.c.status.in_([_plain(s) for s in statuses]))
        if due_before is not None:
            where.append(due_before >= _DUE)
        if sent_after is not None:
            where.append(t.c.sent_at > sent_after)
        query = sa.select(t.c.id, t.c.doc, _DUE.label("due")).where(*where).order_by(_DUE, t.c.id)
        rows = self._due_pages(query) if limit is None and due_before is not None else self._rows(query.limit(limit))
        return [_restore(touch_from, TOUCHES, _record(row)) for row in rows]

    def _due_pages(self, query: sa.Select[Any]) -> list[Row]:
        """Every row of ``query`` (the due ones, in due order), a page at a time.

        The planner cannot tell how many of one status are due: its statistics of the due times cover every
        status, and most touches ever planned were due long ago, so it takes most pending touches for due
        and reads them all (a tenth of a second with 10,000 departures, for a tick that finds nothing). A
        page with a LIMIT is read along the index in due order instead, and stops where the due ones end.
        """
        t = TABLE[TOUCHES]
        rows: list[Row] = []
        while True:
            after = [] if not rows else [sa.tuple_(_DUE, t.c.id) > sa.tuple_(sa.literal(rows[-1].due), rows[-1].id)]
            page = self._rows(query.where(*after).limit(DUE_PAGE))
            rows += page
            if len(page) < DUE_PAGE:
                return rows

    def put_touch(self, record: NewTouch | Touch) -> Touch:
        """Insert or replace by ``key`` in one statement: two processes planning the same touch keep one."""
        checked = touch_from({**record})
        t = TABLE[TOUCHES]
        values = _row(TOUCHES, checked)
        upsert = pg_insert(t).values(**values)
        upsert = upsert.on_conflict_do_update(index_elements=[t.c.key], set_={k: upsert.excluded[k] for k in values})
        checked["id"] = self._rows(upsert.returning(t.c.id))[0].id
        return checked

    def replace_touch(self, record: NewTouch | Touch, read: Touch | None) -> Touch | None:
        """In one statement: an insert that does nothing when the key exists, or an update whose condition
        (the stored document is still the one read) PostgreSQL checks on the newest version of the row, after
        waiting for a claim that holds it locked."""
        checked = touch_from({**record})
        t = TABLE[TOUCHES]
        values = _row(TOUCHES, checked)
        if read is None:
            insert = pg_insert(t).values(**values).on_conflict_do_nothing(index_elements=[t.c.key])
            rows = self._rows(insert.returning(t.c.id))
        else:
            was = sa.literal(_doc(touch_from({**read})), JSONB)
            update = sa.update(t).where(t.c.key == checked["key"], t.c.doc == was).values(**values)
            rows = self._rows(update.returning(t.c.id))
        if not rows:
            return None
        checked["id"] = rows[0].id
        return checked

    def note_on_departure(self, departure_id: int, fields: Mapping[str, Any], read: Departure | None = None) -> bool:
        """In one statement, as the contract's: the document merged with ``fields`` (``||``), their indexed
        columns beside it; with ``read``, on the condition that the document less ``fields`` is still it."""
        t = TABLE[DEPARTURES]
        patch = _doc(fields)
        columns = {name: value for name, value in _columns(DEPARTURES, patch).items() if name in patch}
        where = [t.c.id == int(departure_id)]
        if read is not None:
            rest: sa.ColumnElement[Any] = t.c.doc
            for name in patch:
                rest = rest.op("-", return_type=JSONB)(sa.cast(sa.literal(name), sa.Text))
            was = {k: v for k, v in _doc(departure_from({**read})).items() if k not in patch}
            where.append(rest == sa.literal(was, JSONB))
        merged = t.c.doc.op("||", return_type=JSONB)(sa.literal(patch, JSONB))
        return bool(self._rows(sa.update(t).where(*where).values(doc=merged, **columns).returning(t.c.id)))

    def claim_touch(self, touch_id: int, expected: TouchStatus, new: TouchStatus, **changes: Any) -> Touch | None:
        """In a short transaction of its own (or the open batch's): a touch another process holds locked,
        or that is no longer in ``expected``, is not waited for: None, as the contract says."""
        t = TABLE[TOUCHES]
        locked = (
            sa.select(t.c.id, t.c.doc)
            .where(t.c.id == int(touch_id), t.c.status == _plain(expected))
            .with_for_update(skip_locked=True)
        )

        async def claim(conn: AsyncConnection) -> Touch | None:
            row = (await conn.execute(locked)).first()
            if row is None:
                return None
            current = _restore(touch_from, TOUCHES, _record(row))
            claimed = touch_from({**current, **changes, "status": new})
            await conn.execute(sa.update(t).where(t.c.id == row.id).values(**_row(TOUCHES, claimed)))
            return claimed

        return self._do(claim)

    def remember_event(self, key: str, at: str, forget_before: str) -> bool:
        """The unique key decides: of two processes remembering one id at once, exactly one inserts it."""
        t = TABLE[EVENTS]
        insert = (
            pg_insert(t)
            .values(doc={"key": key, "at": at}, key=key, at=at)
            .on_conflict_do_nothing(index_elements=[t.c.key])
            .returning(t.c.id)
        )

        async def remember(conn: AsyncConnection) -> bool:
            inserted = (await conn.execute(insert)).first()
            if inserted is None:
                return False
            await conn.execute(sa.delete(t).where(t.c.at < forget_before, t.c.id != inserted.id))
            return True

        return self._do(remember)

    def forget_event(self, key: str) -> None:
        t = TABLE[EVENTS]
        self._do(lambda conn: conn.execute(sa.delete(t).where(t.c.key == key)))

    # -- moving data in -------------------------------------------------------------------
    def copy_from(self, source: Store) -> dict[str, int]:
        """Copy every record of ``source`` here, keeping ids, in one transaction; how many per table.

        Refused (StoreError) unless every table here is empty. The tables are locked meanwhile, so that a
        process already using this database cannot write between the check and the copy.
        """
        records = {table: source._select(table, lambda _: True) for table in TABLES}

        async def copy(conn: AsyncConnection) -> dict[str, int]:
            names = ", ".join(TABLES)
            await conn.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
            held = {table: await _count_in(conn, table) for table in TABLES}
            if any(held.values()):
                found = ", ".join(f"{table}: {n}" for table, n in held.items() if n)
                raise StoreError(f"the PostgreSQL database at {self.shown} already holds records ({found}): move-data "
                                 f"copies only into an empty database, so that no id is taken twice.")  # fmt: skip
            for table, rows in records.items():
                t = TABLE[table]
                for start in range(0, len(rows), COPY_CHUNK):
                    chunk = rows[start : start + COPY_CHUNK]
                    values = [{"id": int(r["id"]), **_row(table, r)} for r in chunk]
                    await conn.execute(sa.insert(t), values)
                if rows:
                    await conn.execute(_sequence_past_max(table))
            return {table: len(rows) for table, rows in records.items()}

        return self._do(copy)

    def counts(self) -> dict[str, int]:
        """How many records each table holds."""
        return {table: self._count(table) for table in TABLES}

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shut()

    def _shut(self) -> None:
        engine: AsyncEngine | None = getattr(self, "_engine", None)
        try:
            if engine is not None:
                self._loop.run(engine.dispose())
        except (sa_exc.DBAPIError, OSError, TimeoutError):
            pass  # the server went away: there is nothing left to close cleanly
        finally:
            self._loop.stop()


def _sequence_past_max(table: str) -> sa.TextClause:
    """Set ``table``'s id sequence to its largest id, so that the next insert takes the one after."""
    return sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


async def _count_in(conn: AsyncConnection, table: str) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(TABLE[table]))).scalar_one())


# -- the schema ---------------------------------------------------------------------------------
def head_revision() -> str:
    """The newest revision among ``storage/migrations/versions``."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise StoreError(f"{MIGRATIONS} holds no revision: the installation is incomplete")
    return head


async def _revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision; None when it has none (a database sendoff never migrated)."""
    if (await conn.execute(sa.text("SELECT to_regclass('alembic_version')"))).scalar() is None:
        return None
    return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()


async def _check_schema(engine: AsyncEngine, shown: str) -> None:
    async with engine.connect() as conn:
        current = await _revision(conn)
    problem = schema_problem(current, head_revision(), shown)
    if problem is not None:
        raise SchemaError(problem)


def schema_problem(current: str | None, head: str, shown: str) -> str | None:
    """Why a database at revision ``current`` cannot be used by a sendoff whose newest is ``head``; None if it can."""
    if current == head:
        return None
    if current is None:
        return f"the PostgreSQL database at {shown} has no sendoff tables yet. Run `sendoff migrate` to create them."
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    except CommandError:
        known = set()
    if current in known:
        return (f"the PostgreSQL database at {shown} has an older schema (revision {current}; this sendoff needs "
                f"{head}). Run `sendoff migrate` to upgrade it, then start sendoff again.")  # fmt: skip
    return (f"the PostgreSQL database at {shown} has schema revision {current}, which this sendoff does not know: "
            f"a newer release migrated it. Use that release (or a newer one).")  # fmt: skip


def check_schema(url: str) -> None:
    """Raise SchemaError (saying to run ``sendoff migrate``) unless the database at ``url`` is at the newest
    revision; StoreUnavailableError when it cannot be reached. Opens one connection and closes it."""
    sa_url = _sa_url(url)
    secret = _Secret(sa_url)

    async def check() -> None:
        engine = _engine(sa_url, poolclass=NullPool)
        try:
            await _check_schema(engine, secret.shown)
        finally:
            await engine.dispose()

    _once(secret, check())


def migrate(url: str) -> tuple[str | None, str]:
    """Create or upgrade the schema of the database at ``url`` to the newest revision: (from, to).

    ``from`` is None for a database without sendoff's tables. Alembic runs on a connection handed to it
    (``storage/migrations/env.py``), under an advisory lock, in one transaction: a failed upgrade leaves
    the schema as it was.
    """
    sa_url = _sa_url(url)
    secret = _Secret(sa_url)

    async def run() -> tuple[str | None, str]:
        engine = _engine(sa_url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})"))
                return await conn.run_sync(_upgrade)
        finally:
            await engine.dispose()

    return _once(secret, run())


def _upgrade(connection: sa.Connection) -> tuple[str | None, str]:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(config, "head")
    after = MigrationContext.configure(connection).get_current_revision()
    if after is None:
        raise StoreError("the migration left no revision behind")
    return before, after


def _sa_url(url: str) -> str:
    sa_url = database_url(url)
    if sa_url is None:
        raise StoreError("this needs a PostgreSQL URL (postgresql://user:password@host:5432/database)")
    return sa_url


def _once(secret: _Secret, coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on a loop of its own (callers may be inside a running loop), errors masked."""
    loop = _Loop("sendoff-postgres-once")
    try:
        return loop.run(coro)
    except (sa_exc.DBAPIError, OSError, TimeoutError) as err:
        failure = _fail(secret, err)
        raise failure from (None if isinstance(failure, StoreUnavailableError) else err)
    finally:
        loop.stop()


def move_data(source: Store, url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Copy ``source`` into the empty, migrated database at ``url``: (copied, found there afterwards) per table.

    StoreError when the two disagree: the copy is then in the database, and the message says so.
    """
    target = PostgresStore(url)
    try:
        copied = target.copy_from(source)
        found = target.counts()
    finally:
        target.close()
    expected = {table: source._count(table) for table in TABLES}
    if found != expected or copied != expected:
        raise StoreError(f"the copy in {target.shown} does not match the source: expected {expected}, "
                         f"found {found}. Empty the database before trying again.")  # fmt: skip
    return copied, found
