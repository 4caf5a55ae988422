"""Departures: recording them, their interview, their status and their history.

Every public method that changes a departure saves it in one store write, so
a crash leaves either the whole change or none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.access import Access
from bot.answers import AnswerError, Context, client_key, client_key_variants, parse_client_name, parse_email
from bot.clock import Clock, iso
from bot.crm import CrmDeparture
from bot.interview import Interview, InterviewState, Outcome
from bot.replies import CommandRef, Refusal, Section
from prompts import Prompts, Question, Stage
from storage import Store
from storage.records import (
    OPEN,
    AuditEntry,
    AuditEvent,
    Departure,
    NewDeparture,
    PromptRef,
    Source,
    Status,
)

# Statuses the interview answers move a departure among; the rest are set by a person.
AUTOMATIC = frozenset({Status.INTERVIEWING, Status.SAVING, Status.LEAVING})
SAVE_ATTEMPT = ("yes", "maybe")
# Roles whose answers identify a person: left out of team summaries, erased by forget.
PERSONAL_ROLES = ("contact_name", "salutation", "contact_email", "topics")
# How long an event id (Slack's retries, a CRM's repeats) is remembered.
EVENT_MEMORY = timedelta(days=7)

# Kept for callers that catch it by this name: every refusal of bot/ is a Refusal.
DepartureError = Refusal


class Change(StrEnum):
    """What a saved change was, for the watchers (the playbook re-plans on each)."""

    START = "start"
    ANSWERS = "answers"
    STATUS = "status"
    PAID = "paid"
    OPT_OUT = "opt_out"
    FORGET = "forget"
    ITEM = "item"
    ASSIGNED = "assigned"


Watcher = Callable[[Departure, Change], None]


class FormError(Exception):
    """Some answers of a form are invalid: question id -> why. Nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{qid}: {why}" for qid, why in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class FormOutcome:
    """What submitting a form did, as a whole."""

    answered: tuple[Outcome, ...]
    paused: bool
    finished: bool


@dataclass(frozen=True)
class Started:
    departure: Departure
    created: bool  # False: an open departure for this client already existed


def newer_key(record: Departure) -> str | None:
    """The key ``client_key`` makes of the departure's name now, if it differs from the stored one (made by an
    older release); a forgotten record keeps its empty key."""
    key = client_key(record["client"])
    return key if record["client_key"] and key and record["client_key"] != key else None


def rekey_departures(store: Store, records: Iterable[Departure] | None = None) -> int:
    """Give every stored departure (or those of ``records``) the key ``client_key`` makes of its name now;
    how many changed.

    Records stored before keys folded accents hold "müllergmbh" where a lookup now asks for "mullergmbh", and
    a lookup reads only the stored key. Re-keying once is simpler than recomputing every name's key on every
    lookup, and it keeps lookups, prefixes and the "already open" check of ``start`` agreeing. A forgotten
    record keeps its empty key: it is found by no name.
    """
    stale = []
    for record in store.find_departures() if records is None else records:
        key = newer_key(record)
        if key is not None:
            record["client_key"] = key
            stale.append(record)
    if stale:
        with store.batch():  # an index correction, not a change anyone made: no history, no watchers
            for record in stale:
                store.save_departure(record)
    return len(stale)


class Departures:
    """The departures and their interviews: recording, reading back, answering.

    Status changes live in bot/lifecycle.py, opt-out and forget in
    bot/privacy.py, who may do what in bot/access.py.
    """

    def __init__(self, store: Store, prompts: Prompts, clock: Clock, *, timezone: str = "UTC",
                 currency: str = "EUR", admins: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.store = store
        self.prompts = prompts
        self.interview = Interview(prompts.script)
        self.clock = clock
        self.zone = ZoneInfo(timezone)
        self.currency = currency
        self.access = Access(self.interview, admins)
        # Called with each change, inside its write and before the record is saved: the playbook re-plans
        # the touches and notes on the record what its plan was made from (saved with the change).
        self.watchers: list[Watcher] = []
        # A database (shared) was filled by this release, or re-keyed when a file was moved into it
        # (``sendoff move-data``): reading every departure there is what start-up no longer does.
        self.rekeyed = store.shared  # see rekey

    def rekey(self, records: Iterable[Departure] | None = None) -> int:
        """Give every stored departure the key ``client_key`` makes of its name now, once per process before
        the first lookup by name (``rekey_departures``); how many changed. ``records``: the only ones whose
        key may be older (bot/playbook.py, ``plan_all``)."""
        self.rekeyed = True
        return rekey_departures(self.store, records)

    def commit(self, record: Departure, change: Change) -> None:
        """Save ``record`` and what its watchers write about the change (touches), all or nothing.

        The watchers come first, so that what they note on the record (the playbook's note of what the
        plan was made from) is saved with the change in one write rather than in a second one.
        """
        with self.store.batch():
            for watcher in self.watchers:
                watcher(record, change)
            self.store.save_departure(record)

    def note(self, record: NewDeparture, entry: AuditEntry) -> None:
        """Add ``entry`` to the history and mark the record changed now."""
        record["history"].append(entry)
        record["updated_at"] = entry["at"]

    def now(self) -> str:
        return iso(self.clock.now())

    # -- lookups -----------------------------------------------------------------
    def today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    def context(self) -> Context:
        return Context(self.today(), self.currency)

    def get(self, departure_id: int) -> Departure:
        record = self.store.get_departure(departure_id)
        if record is None:
            raise Refusal("no_such_departure", number=departure_id)
        return record

    def find(self, client: str, *, open_only: bool = False, exact: bool = False) -> Departure | None:
        """The departure ``client`` names: its open one first, else (unless ``open_only``) its latest.

        A name that matches no client exactly may be spelled another way
        ("mueller" for "Müller", see ``client_key_variants``) or be the start
        of one ("acme" for "Acme Corp"), as long as it points at a single
        client. ``exact`` tries the name's own key only. Starting a departure
        offers an open one under another spelling, but never one that only
        starts with the name.
        """
        key = client_key(client)
        if not key:
            return None
        if not self.rekeyed:
            self.rekey()
        found = self.store.find_departures(client_key=key)
        variants = () if exact else client_key_variants(client)
        if not found and variants:
            found = self._one_client(client, (self.store.find_departures(client_key=k) for k in variants))
        if not found and not open_only:
            found = self._one_client(client, (self.store.find_departures(client_prefix=k) for k in (key, *variants)))
        open_ones = [d for d in found if d["status"] in OPEN]
        if open_ones:
            return open_ones[-1]
        return None if open_only or not found else found[-1]

    @staticmethod
    def _one_client(client: str, matches: Iterable[list[Departure]]) -> list[Departure]:
        """The departures of every match, oldest first and once each; a Refusal when they are of two clients."""
        found = sorted({d["id"]: d for match in matches for d in match}.values(), key=lambda d: d["id"])
        if len({d["client_key"] for d in found}) > 1:
            names = sorted({d["client"] for d in found})
            raise Refusal("ambiguous_client", client=client.strip(), candidates=", ".join(names[:5]))
        return found

    def named(self, client: str) -> Departure:
        """The departure a person named in a command; a Refusal says what is wrong with the name."""
        if not client.strip():
            raise Refusal("name_the_client", status=CommandRef("status", "Acme Corp"))
        record = self.find(client)
        if record is None:
            raise Refusal("unknown_client", client=client.strip(), list=CommandRef("list"))
        return record

    def list_open(self, am: str | None = None) -> list[Departure]:
        return self.store.find_departures(statuses=OPEN, am=am)

    def all(self) -> list[Departure]:
        return self.store.find_departures()

    def resumable(self, am: str) -> Departure | None:
        """The departure whose interview ``am`` was last in the middle of."""
        waiting = [d for d in self.list_open(am) if self.current_question(d) is not None]
        return max(waiting, key=lambda d: (d["updated_at"], d["id"]), default=None)

    def first_delivery(self, key: str) -> bool:
        """Remember an event id; False when it was delivered before (a retry, a replay)."""
        now = self.clock.now()
        return self.store.remember_event(key, iso(now), iso(now - EVENT_MEMORY))

    def forget_delivery(self, key: str) -> None:
        """Let a retry of an event whose handling failed be handled after all."""
        self.store.forget_event(key)

    def start_from_crm(self, report: CrmDeparture) -> Started | None:
        """Record a CRM's report, unless its ``event_id`` was seen (None): both or neither are stored."""
        with self.store.batch():
            if report.event_id is not None and not self.first_delivery(f"crm:{report.event_id}"):
                return None
            return self.start(report.client, am="", source=Source.CRM, context=report.context,
                              prefill=report.prefill, status=Status.REPORTED, am_email=report.am_email)  # fmt: skip

    # -- the interview -----------------------------------------------------------
    def state(self, record: NewDeparture) -> InterviewState:
        return InterviewState.from_record(record)

    def current_question(self, record: NewDeparture) -> Question | None:
        return self.interview.next_question(self.state(record))

    def position(self, record: NewDeparture, question: Question) -> tuple[int, int]:
        """Where ``question`` stands among the questions that apply: (1-based, total)."""
        applicable = self.interview.applicable(self.state(record))
        ids = [q.id for q in applicable]
        return (ids.index(question.id) + 1 if question.id in ids else len(ids)), len(ids)

    def progress(self, record: NewDeparture) -> str:
        done, total = self.interview.progress(self.state(record))
        return f"{done}/{total}"

    def answer_value(self, record: NewDeparture, role: str) -> Any:
        return self.interview.value_of(self.state(record), role)

    def start(
        self,
        client: str,
        *,
        am: str,
        source: Source,
        context: str | None = None,
        prefill: dict[str, Any] | None = None,
        status: Status = Status.INTERVIEWING,
        am_email: str | None = None,
    ) -> Started:
        """Record a new departure, or return the open one for the same client."""
        name = parse_client_name(client)
        existing = self.find(name, open_only=True, exact=True)
        if existing is None:
            # "Mueller GmbH" while "Müller GmbH" is open is the same client, spelled another way: offer that one
            try:
                existing = self.find(name, open_only=True)
            except Refusal:
                existing = None  # it could be either of two clients: a new departure, under the name as typed
        if existing is not None:
            return Started(existing, created=False)
        now = self.now()
        state = InterviewState()
        for role, value in (prefill or {}).items():
            question = self.prompts.script.by_role(role)
            if question is not None and value is not None:
                self.interview.prefill(state, question, value, actor=source, at=now)
        record: NewDeparture = {
            "client": name,
            "client_key": client_key(name),
            "am": am,
            "source": source,
            "status": status,
            "context": context,
            "created_at": now,
            "updated_at": now,
            "interview": state.to_record(),
            "history": [{"at": now, "by": am, "event": AuditEvent.STATUS, "from": None, "to": status}],
            "opted_out": False,
        }
        if am_email:
            record["am_email"] = am_email
        with self.store.batch():
            saved = self.store.insert_departure(record)
            for watcher in self.watchers:
                watcher(saved, Change.START)  # a departure nobody answers for is reminded too
            if self.watchers:
                self.store.save_departure(saved)  # with what they noted on it, as commit saves it
        return Started(saved, created=True)

    def answer(self, record: Departure, raw: str, *, actor: str) -> tuple[Departure, Outcome]:
        """Answer the current question with ``raw``; AnswerError changes nothing."""
        ctx = self.context()
        return self._settle_current(
            record,
            actor,
            lambda state, question, at: self.interview.answer(state, question, raw, ctx, actor=actor, at=at),
        )

    def skip(self, record: Departure, *, actor: str) -> tuple[Departure, Outcome]:
        return self._settle_current(
            record, actor, lambda state, question, at: self.interview.skip(state, question, actor=actor, at=at)
        )

    def _settle_current(
        self, record: Departure, actor: str, settle: Callable[[InterviewState, Question, str], Outcome]
    ) -> tuple[Departure, Outcome]:
        question = self.current_question(record)
        if question is None:
            raise Refusal("nothing_waiting")
        state = self.state(record)
        outcome = settle(state, question, self.now())
        return self.save_answers(record, state, [outcome], actor), outcome

    def save_answers(self, record: Departure, state: InterviewState, outcomes: list[Outcome],
                     actor: str) -> Departure:  # fmt: skip
        """Record what the answers did, and move the status they imply, in one write."""
        now = self.now()
        record["interview"] = state.to_record()
        for outcome in outcomes:
            new_display = outcome.parsed.display if outcome.parsed else "skipped"
            record["history"].append(
                {"at": now, "by": actor, "event": AuditEvent.ANSWER, "question": outcome.question.id,
                 "from": outcome.previous, "to": new_display}
            )  # fmt: skip
        automatic = self._automatic_status(record, state)
        if automatic is not None and automatic != record["status"]:
            self.move(record, automatic, actor, now, note="from the interview answers")
        record["updated_at"] = now
        self.commit(record, Change.ANSWERS)
        return record

    @staticmethod
    def move(record: NewDeparture, status: Status, actor: str, at: str, note: str | None) -> None:
        record["history"].append({"at": at, "by": actor, "event": AuditEvent.STATUS, "from": record["status"],
                                  "to": status, "note": note})  # fmt: skip
        record["status"] = status

    # -- the form: the rest of a stage at once -------------------------------------
    def form_questions(self, record: NewDeparture) -> list[Question]:
        """The current stage's questions still to answer, including those that hang on them.

        A question whose condition rests on another question in the form is
        shown too (the form cannot know the answer yet); it is optional there.
        """
        question = self.current_question(record)
        if question is None:
            return []
        state = self.state(record)
        stage = self.prompts.script.stage(question.stage)
        pending = [q for q in stage.questions if q.id == state.editing or not self.interview.is_settled(q, state)]
        chosen: list[Question] = []
        for q in pending:
            on_form = any(c.question in {c2.id for c2 in chosen} for c in q.when)
            if on_form or self.interview.applies(q, state):
                chosen.append(q)
        return chosen

    @staticmethod
    def form_optional(question: Question, on_form: list[Question]) -> bool:
        """Whether ``question`` may be left blank on the form."""
        ids = {q.id for q in on_form}
        return question.skippable or any(c.question in ids for c in question.when)

    def answer_form(self, record: Departure, raws: dict[str, str | None], *,
                    actor: str) -> tuple[Departure, FormOutcome]:  # fmt: skip
        """Answer several questions of one stage at once, all or nothing.

        Questions are taken in script order, so a condition sees the answers
        given above it on the same form. A blank answer skips a skippable
        question and is an error for one that applies and cannot be skipped.
        """
        on_form = self.form_questions(record)
        if not on_form:
            raise Refusal("nothing_waiting")
        ctx = self.context()
        state = self.state(record)
        at = self.now()
        errors: dict[str, str] = {}
        outcomes: list[Outcome] = []
        for question in on_form:
            if not self.interview.applies(question, state):
                continue
            raw = (raws.get(question.id) or "").strip()
            try:
                if raw:
                    outcomes.append(self.interview.answer(state, question, raw, ctx, actor=actor, at=at))
                elif question.skippable:
                    outcomes.append(self.interview.skip(state, question, actor=actor, at=at))
                else:
                    errors[question.id] = self.prompts.messages.render("needs_answer_on_form")
            except AnswerError as err:
                errors[question.id] = str(err)
        if errors:
            raise FormError(errors)
        record = self.save_answers(record, state, outcomes, actor)
        paused = any(o.paused for o in outcomes)
        return record, FormOutcome(tuple(outcomes), paused, self.interview.is_finished(state))

    def _automatic_status(self, record: Departure, state: InterviewState) -> Status | None:
        if (record["status"] != Status.REPORTED and record["status"] not in AUTOMATIC) or record.get("status_by_hand"):
            return None
        fixable = self.interview.value_of(state, "fixable")
        if fixable in SAVE_ATTEMPT:
            return Status.SAVING
        if fixable is not None or self.interview.is_finished(state):
            return Status.LEAVING
        return Status.INTERVIEWING

    def back(self, record: Departure) -> Question | None:
        state = self.state(record)
        question = self.interview.back(state)
        if question is not None:
            self._save_state(record, state)
        return question

    def later(self, record: Departure, *, actor: str) -> Stage | None:
        state = self.state(record)
        stage = self.interview.park_current_stage(state)
        if stage is not None:
            record["history"].append({"at": self.now(), "by": actor, "event": AuditEvent.LATER, "stage": stage.id})
            self._save_state(record, state)
        return stage

    def resume(self, record: Departure) -> Question | None:
        state = self.state(record)
        self.interview.resume(state)
        self._save_state(record, state)
        return self.interview.next_question(state)

    def edit(self, record: Departure, question_id: str, *, actor: str) -> Question:
        self.access.require(record, actor)
        state = self.state(record)
        question = self.interview.edit(state, question_id)
        self._save_state(record, state)
        return question

    def keep(self, record: Departure) -> None:
        state = self.state(record)
        self.interview.keep(state)
        self._save_state(record, state)

    def _save_state(self, record: Departure, state: InterviewState) -> None:
        record["interview"] = state.to_record()
        record["updated_at"] = self.now()
        # where the interview stands decides when its reminder comes: re-planned with the change
        self.commit(record, Change.ANSWERS)

    # -- who looks after it --------------------------------------------------------
    def assign(self, record: Departure, am: str, *, actor: str) -> Departure:
        """Give an unclaimed departure (a CRM's, whose AM was not found) to ``am``."""
        if record["am"] and record["am"] != am:
            raise Refusal("already_claimed", client=record["client"])
        if record["am"] != am:
            record["am"] = am
            self.note(record, {"at": self.now(), "by": actor, "event": AuditEvent.ASSIGNED, "to": am})
            self.commit(record, Change.ASSIGNED)  # its nudges go to the AM now, not the channel
        return record

    def set_am_email(self, record: Departure, email: str) -> Departure:
        """Where replies to client emails go (Reply-To): the AM's own address."""
        record["am_email"] = parse_email(email)
        self.store.save_departure(record)
        return record

    def remember_prompt(self, record: Departure, prompt: PromptRef | None) -> None:
        """Where the question now waiting was asked (a transport's message), so it can be closed."""
        fresh = self.get(record["id"])
        fresh["prompt"] = prompt
        self.store.save_departure(fresh)
        record["prompt"] = prompt

    # -- access, for callers that hold only the departures ---------------------------
    def may_see(self, record: NewDeparture, user: str) -> bool:
        return self.access.may_see(record, user)

    def require_access(self, record: NewDeparture, user: str) -> None:
        self.access.require(record, user)

    def save_owner_user(self, record: NewDeparture) -> str | None:
        return self.access.save_owner(record)

    # -- reading back ------------------------------------------------------------
    def summary(self, record: NewDeparture, *, include_personal: bool = True) -> list[Section]:
        """Stage title -> (question label, answer) for every answered question that applies."""
        state = self.state(record)
        sections: list[Section] = []
        for stage in self.prompts.script.stages:
            rows = []
            for question in stage.questions:
                answer = state.answers.get(question.id)
                if answer is None or not self.interview.applies(question, state):
                    continue
                if not include_personal and question.role in PERSONAL_ROLES:
                    continue
                rows.append((question.label, answer.get("display", "")))
            if rows:
                sections.append((stage.title, rows))
        return sections

    def question_ids(self) -> list[str]:
        return [q.id for q in self.prompts.script.questions()]
