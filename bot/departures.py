"""Departures: recording them, their interview, their status and their history.

Every public method that changes a departure saves it in one store write, so
a crash leaves either the whole change or none of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.answers import AnswerError, Context, client_key, parse_client_name, parse_email
from bot.clock import Clock, iso
from bot.crm import CrmDeparture
from bot.interview import Interview, InterviewState, Outcome
from prompts import Prompts, Question, Stage
from storage import Record, Store

OPEN = ("reported", "interviewing", "saving", "leaving")
CLOSED = ("departed", "retained", "won_back")
STATUSES = OPEN + CLOSED
# Who may follow whom. Answers move a departure only among AUTOMATIC states;
# the rest are set by a person (or, later, by the save-deadline question).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("interviewing", "saving", "leaving", "departed", "retained"),
    "interviewing": ("saving", "leaving", "departed", "retained"),
    "saving": ("leaving", "departed", "retained"),
    "leaving": ("saving", "departed", "retained"),
    "departed": ("won_back",),
    "retained": ("leaving",),
    "won_back": (),
}
AUTOMATIC = ("interviewing", "saving", "leaving")
SAVE_ATTEMPT = ("yes", "maybe")
# Roles whose answers identify a person: left out of team summaries, erased by forget.
PERSONAL_ROLES = ("contact_name", "contact_email", "topics")
# How long an event id (Slack's retries, a CRM's repeats) is remembered.
EVENT_MEMORY = timedelta(days=7)
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
# What "forget" keeps: enough for anonymous counts, nothing about anyone.
ANONYMOUS_ROLES = ("reason", "fixable", "revenue", "workload")


class DepartureError(Exception):
    """A request that cannot be carried out; str() says why, for the person who asked."""


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
    departure: Record
    created: bool  # False: an open departure for this client already existed


def status_label(status: str) -> str:
    return status.replace("_", " ")


class Departures:
    def __init__(self, store: Store, prompts: Prompts, clock: Clock, *, timezone: str = "UTC",
                 currency: str = "EUR", admins: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.store = store
        self.prompts = prompts
        self.interview = Interview(prompts.script)
        self.clock = clock
        self.zone = ZoneInfo(timezone)
        self.currency = currency
        self.admins = admins
        # Called after each saved change with (record, what): "start", "answers", "status", "paid", "opt_out", "forget".
        self.watchers: list[Callable[[Record, str], None]] = []

    def _commit(self, record: Record, what: str) -> None:
        """Save ``record`` and what its watchers write about the change (touches), all or nothing."""
        with self.store.batch():
            self.store.save_departure(record)
            for watcher in self.watchers:
                watcher(record, what)

    # -- lookups -----------------------------------------------------------------
    def today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    def get(self, departure_id: int) -> Record:
        record = self.store.get_departure(departure_id)
        if record is None:
            raise DepartureError(f"There is no departure #{departure_id}.")
        return record

    def find(self, client: str, *, open_only: bool = False) -> Record | None:
        """The departure ``client`` names: its open one first, else (unless ``open_only``) its latest.

        A name that matches no client exactly may be the start of one ("acme"
        for "Acme Corp"), as long as it points at a single client.
        """
        key = client_key(client)
        if not key:
            return None
        found = self.store.find_departures(client_key=key)
        if not found and not open_only:
            prefixed = self.store.find_departures(client_prefix=key)
            clients = {d["client_key"] for d in prefixed}
            if len(clients) > 1:
                names = sorted({d["client"] for d in prefixed})
                raise DepartureError(f'"{client.strip()}" could be {", ".join(names[:5])}: type more of the name.')
            found = prefixed
        open_ones = [d for d in found if d["status"] in OPEN]
        if open_ones:
            return open_ones[-1]
        return None if open_only or not found else found[-1]

    def list_open(self, am: str | None = None) -> list[Record]:
        return self.store.find_departures(statuses=OPEN, am=am)

    def all(self) -> list[Record]:
        return self.store.find_departures()

    def resumable(self, am: str) -> Record | None:
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
            return self.start(report.client, am="", source="crm", context=report.context, prefill=report.prefill,
                              status="reported", am_email=report.am_email)  # fmt: skip

    # -- the interview -----------------------------------------------------------
    def state(self, record: Record) -> InterviewState:
        return InterviewState.from_record(record)

    def current_question(self, record: Record) -> Question | None:
        return self.interview.next_question(self.state(record))

    def position(self, record: Record, question: Question) -> tuple[int, int]:
        """Where ``question`` stands among the questions that apply: (1-based, total)."""
        applicable = self.interview.applicable(self.state(record))
        ids = [q.id for q in applicable]
        return (ids.index(question.id) + 1 if question.id in ids else len(ids)), len(ids)

    def progress(self, record: Record) -> str:
        done, total = self.interview.progress(self.state(record))
        return f"{done}/{total}"

    def answer_value(self, record: Record, role: str) -> Any:
        question = self.prompts.script.by_role(role)
        if question is None or not self.interview.applies(question, self.state(record)):
            return None
        return self.state(record).answers.get(question.id, {}).get("value")

    def start(
        self,
        client: str,
        *,
        am: str,
        source: str,
        context: str | None = None,
        prefill: dict[str, Any] | None = None,
        status: str = "interviewing",
        am_email: str | None = None,
    ) -> Started:
        """Record a new departure, or return the open one for the same client."""
        name = parse_client_name(client)
        existing = self.find(name, open_only=True)
        if existing is not None:
            return Started(existing, created=False)
        now = iso(self.clock.now())
        record: Record = {
            "client": name,
            "client_key": client_key(name),
            "am": am,
            "source": source,
            "status": status,
            "context": context,
            "created_at": now,
            "updated_at": now,
            "interview": InterviewState().to_record(),
            "history": [{"at": now, "by": am, "event": "status", "from": None, "to": status}],
            "opted_out": False,
        }
        if am_email:
            record["am_email"] = am_email
        if prefill:
            state = InterviewState()
            for role, value in prefill.items():
                question = self.prompts.script.by_role(role)
                if question is not None and value is not None:
                    self.interview.prefill(state, question, value, actor=source, at=now)
            record["interview"] = state.to_record()
        with self.store.batch():
            record = self.store.insert_departure(record)
            for watcher in self.watchers:
                watcher(record, "start")  # a departure nobody answers for is reminded too
        return Started(record, created=True)

    def answer(self, record: Record, raw: str, *, actor: str) -> tuple[Record, Outcome]:
        """Answer the current question with ``raw``; AnswerError changes nothing."""
        ctx = Context(self.today(), self.currency)
        return self._settle_current(
            record,
            actor,
            lambda state, question, at: self.interview.answer(state, question, raw, ctx, actor=actor, at=at),
        )

    def skip(self, record: Record, *, actor: str) -> tuple[Record, Outcome]:
        return self._settle_current(
            record, actor, lambda state, question, at: self.interview.skip(state, question, actor=actor, at=at)
        )

    def _settle_current(
        self, record: Record, actor: str, settle: Callable[[InterviewState, Question, str], Outcome]
    ) -> tuple[Record, Outcome]:
        question = self.current_question(record)
        if question is None:
            raise AnswerError("There is no question waiting for an answer.")
        state = self.state(record)
        outcome = settle(state, question, iso(self.clock.now()))
        return self._after(record, state, outcome, actor), outcome

    def _after(self, record: Record, state: InterviewState, outcome: Outcome, actor: str) -> Record:
        return self._save_answers(record, state, [outcome], actor)

    def _save_answers(self, record: Record, state: InterviewState, outcomes: list[Outcome], actor: str) -> Record:
        """Record what the answers did, and move the status they imply, in one write."""
        now = iso(self.clock.now())
        record["interview"] = state.to_record()
        for outcome in outcomes:
            new_display = outcome.parsed.display if outcome.parsed else "skipped"
            record["history"].append(
                {"at": now, "by": actor, "event": "answer", "question": outcome.question.id,
                 "from": outcome.previous, "to": new_display}
            )  # fmt: skip
        automatic = self._automatic_status(record, state)
        if automatic and automatic != record["status"]:
            self._move(record, automatic, actor, now, note="from the interview answers")
        record["updated_at"] = now
        self._commit(record, "answers")
        return record

    # -- the form: the rest of a stage at once -------------------------------------
    def form_questions(self, record: Record) -> list[Question]:
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

    def answer_form(self, record: Record, raws: dict[str, str | None], *, actor: str) -> tuple[Record, FormOutcome]:
        """Answer several questions of one stage at once, all or nothing.

        Questions are taken in script order, so a condition sees the answers
        given above it on the same form. A blank answer skips a skippable
        question and is an error for one that applies and cannot be skipped.
        """
        on_form = self.form_questions(record)
        if not on_form:
            raise AnswerError("There is no question waiting for an answer.")
        ctx = Context(self.today(), self.currency)
        state = self.state(record)
        at = iso(self.clock.now())
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
                    errors[question.id] = "This one needs an answer here, given the answers above it."
            except AnswerError as err:
                errors[question.id] = str(err)
        if errors:
            raise FormError(errors)
        record = self._save_answers(record, state, outcomes, actor)
        paused = any(o.paused for o in outcomes)
        return record, FormOutcome(tuple(outcomes), paused, self.interview.is_finished(state))

    def _automatic_status(self, record: Record, state: InterviewState) -> str | None:
        if record["status"] not in ("reported", *AUTOMATIC) or record.get("status_by_hand"):
            return None
        fixable = self.answer_value(record, "fixable")
        if fixable in SAVE_ATTEMPT:
            return "saving"
        if fixable is not None or self.interview.is_finished(state):
            return "leaving"
        return "interviewing"

    def back(self, record: Record) -> Question | None:
        state = self.state(record)
        question = self.interview.back(state)
        if question is not None:
            self._save_state(record, state)
        return question

    def later(self, record: Record, *, actor: str) -> Stage | None:
        state = self.state(record)
        stage = self.interview.park_current_stage(state)
        if stage is not None:
            record["history"].append({"at": iso(self.clock.now()), "by": actor, "event": "later", "stage": stage.id})
            self._save_state(record, state)
        return stage

    def resume(self, record: Record) -> Question | None:
        state = self.state(record)
        self.interview.resume(state)
        self._save_state(record, state)
        return self.interview.next_question(state)

    def edit(self, record: Record, question_id: str, *, actor: str) -> Question:
        self.require_access(record, actor)
        state = self.state(record)
        question = self.interview.edit(state, question_id)
        self._save_state(record, state)
        return question

    def keep(self, record: Record) -> None:
        state = self.state(record)
        self.interview.keep(state)
        self._save_state(record, state)

    def _save_state(self, record: Record, state: InterviewState) -> None:
        record["interview"] = state.to_record()
        record["updated_at"] = iso(self.clock.now())
        self.store.save_departure(record)

    # -- who looks after it --------------------------------------------------------
    def assign(self, record: Record, am: str, *, actor: str) -> Record:
        """Give an unclaimed departure (a CRM's, whose AM was not found) to ``am``."""
        if record["am"] and record["am"] != am:
            raise DepartureError(f"{record['client']} is already looked after by someone else.")
        if record["am"] != am:
            now = iso(self.clock.now())
            record["am"] = am
            record["history"].append({"at": now, "by": actor, "event": "assigned", "to": am})
            record["updated_at"] = now
            self.store.save_departure(record)
        return record

    def set_am_email(self, record: Record, email: str) -> Record:
        """Where replies to client emails go (Reply-To): the AM's own address."""
        record["am_email"] = parse_email(email)
        self.store.save_departure(record)
        return record

    def remember_prompt(self, record: Record, prompt: dict[str, str] | None) -> None:
        """Where the question now waiting was asked (a transport's message), so it can be closed."""
        fresh = self.get(record["id"])
        fresh["prompt"] = prompt
        self.store.save_departure(fresh)
        record["prompt"] = prompt

    # -- status ------------------------------------------------------------------
    def set_status(self, record: Record, status: str, *, actor: str, note: str | None = None) -> Record:
        if actor != self.save_owner_user(record) or record["status"] != "saving":
            self.require_access(record, actor)  # the save owner answers "retained or still leaving?" too
        if status not in STATUSES:
            raise DepartureError(f"'{status}' is not a status. Statuses: {', '.join(STATUSES)}.")
        if status == record["status"]:
            return record
        if status not in TRANSITIONS[record["status"]]:
            allowed = ", ".join(TRANSITIONS[record["status"]]) or "none"
            raise DepartureError(
                f"{record['client']} is {status_label(record['status'])}; it cannot become "
                f"{status_label(status)}. Allowed now: {allowed}."
            )
        now = iso(self.clock.now())
        self._move(record, status, actor, now, note)
        record["status_by_hand"] = True  # later answers no longer move it
        record["updated_at"] = now
        self._commit(record, "status")
        return record

    @staticmethod
    def _move(record: Record, status: str, actor: str, at: str, note: str | None) -> None:
        record["history"].append({"at": at, "by": actor, "event": "status", "from": record["status"], "to": status,
                                  "note": note})  # fmt: skip
        record["status"] = status

    def mark_paid(self, record: Record, *, actor: str) -> Record:
        """The final payment came in: its nudges stop, and client emails are no longer held for it."""
        self.require_access(record, actor)
        return self._mark_once(record, actor, "paid_at", "paid")

    def mark_signed(self, record: Record, *, actor: str) -> Record:
        """The agreement is signed by both parties: the answer says so, and its nudges stop."""
        self.require_access(record, actor)
        question = self.prompts.script.by_role("agreement_signed")
        if question is None or self.answer_value(record, "agreement_signed") is True:
            return record
        state = self.state(record)
        editing = state.editing
        outcome = self.interview.answer(state, question, "yes", Context(self.today(), self.currency), actor=actor,
                                        at=iso(self.clock.now()))  # fmt: skip
        state.editing = editing if editing != question.id else None  # whatever the AM was changing stays open
        return self._save_answers(record, state, [outcome], actor)

    def opt_out_by_client(self, record: Record, *, via: str) -> Record:
        """The client's own unsubscribe (a signed link): no team member's access is involved."""
        return self._opt_out(record, via)

    def opt_out(self, record: Record, *, actor: str) -> Record:
        self.require_access(record, actor)
        return self._opt_out(record, actor)

    def _opt_out(self, record: Record, actor: str) -> Record:
        return self._mark_once(record, actor, "opted_out", "opt_out")

    def _mark_once(self, record: Record, actor: str, flag: str, event: str) -> Record:
        """Set ``flag`` (True, or when for ``*_at``) and note ``event`` in the history, unless it is set already."""
        if not record.get(flag):
            now = iso(self.clock.now())
            record[flag] = now if flag.endswith("_at") else True
            record["history"].append({"at": now, "by": actor, "event": event})
            record["updated_at"] = now
            self._commit(record, event)
        return record

    def forget(self, record: Record, *, actor: str) -> Record:
        """Erase the client's personal data and the answers; keep anonymous counts."""
        self.require_access(record, actor)
        now = iso(self.clock.now())
        state = self.state(record)
        kept = {}
        for role in ANONYMOUS_ROLES:
            question = self.prompts.script.by_role(role)
            if question is not None and question.id in state.answers:
                answer = state.answers[question.id]
                kept[question.id] = {"value": answer.get("value"), "display": answer.get("display"),
                                     "skipped": answer.get("skipped", False)}  # fmt: skip
        record.update(
            client=f"Forgotten client #{record['id']}",
            client_key="",  # found by no name any more
            context=None,
            interview={"answers": kept, "trail": list(kept), "parked": [], "editing": None},
            history=[h for h in record["history"] if h["event"] == "status"]
            + [{"at": now, "by": actor, "event": "forgotten"}],
            opted_out=True,
            forgotten=True,
            updated_at=now,
        )
        for entry in record["history"]:
            entry.pop("note", None)
        self._commit(record, "forget")
        return record

    # -- access ------------------------------------------------------------------
    def may_see(self, record: Record, user: str) -> bool:
        """Details of a departure are for its account manager and the admins."""
        return user == record["am"] or user in self.admins

    def save_owner_user(self, record: Record) -> str | None:
        """The Slack user the save-owner answer names (``<@U123>``), if it names one."""
        found = _MENTION.search(str(self.answer_value(record, "save_owner") or ""))
        return found.group(1) if found else None

    def require_access(self, record: Record, user: str) -> None:
        if not self.may_see(record, user):
            raise DepartureError(f"Only the account manager of {record['client']} (or an admin) can change it.")

    # -- reading back ------------------------------------------------------------
    def summary(self, record: Record, *, include_personal: bool = True) -> list[tuple[str, list[tuple[str, str]]]]:
        """Stage title -> (question label, answer) for every answered question that applies."""
        state = self.state(record)
        sections = []
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
