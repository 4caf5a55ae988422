"""Every command, once for every transport: one method per command, a table that names them.

A command takes who acted and the text after the command word, acts through
bot/, and returns a ``Result``. A refusal (an unknown client, no access, a
status that cannot follow) comes back as a warning in the same Result, with
nothing changed. ``/departure status Acme`` in Slack and ``/status Acme`` in
the console both end in ``Commands.status``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.answers import AnswerError, parse_client_name, parse_date
from bot.app import Core
from bot.clock import parse_iso
from bot.command_words import Command
from bot.interview_turns import Turns, refused_answer
from bot.lifecycle import Lifecycle
from bot.notify import Action
from bot.playbook import NOT_YET_SENT
from bot.previews import preview_folder, write_previews
from bot.privacy import Privacy
from bot.replies import (
    CommandRef,
    Confirm,
    Confirmation,
    Help,
    HelpEntry,
    Listing,
    OpenRow,
    Preformatted,
    Refusal,
    Result,
    Say,
    Tone,
    TouchList,
    TouchRow,
)
from bot.reports import (
    Asked,
    Lessons,
    build_report,
    read_report_words,
    read_team_size,
    render_report_text,
    say_team_size,
    team_size_day,
    team_size_now,
    team_sizes_around,
    write_report_file,
)
from bot.updates import (
    UpdateDraft,
    UpdateError,
    add_translation,
    approval_requests,
    approve_update,
    draft_update,
)
from prompts import Question
from storage.records import CHANNEL, OPEN, Channel, Departure, Item, ItemState, SaveOutcome, Source, Status, Touch

SNOOZE = timedelta(days=7)
# Where the console's /report writes its chart and exports, under the data folder.
REPORTS_FOLDER = "reports"
NOT_APPLICABLE_WORDS = frozenset({"n/a", "na", "moot", "irrelevant"})
# Short names a person types for an open item (its label from prompts/ works too).
ITEM_WORDS: dict[str, Item] = {
    "payment": Item.FINAL_PAYMENT_DUE,
    "agreement": Item.AGREEMENT_SIGNED,
    "data": Item.DATA_RETURN,
    "support": Item.SUPPORT_END,
    "save": Item.SAVE_DEADLINE,
    "interview": Item.INTERVIEW,
}
ITEM_ACTIONS: dict[Action, ItemState] = {
    Action.DONE: ItemState.DONE,
    Action.SNOOZE: ItemState.SNOOZED,
    Action.NOT_APPLICABLE: ItemState.NOT_APPLICABLE,
}


class Transport(StrEnum):
    CONSOLE = "console"
    SLACK = "slack"


Run = Callable[["Commands", str, str], Result]


@dataclass(frozen=True)
class Spec:
    name: str
    usage: str  # what follows the command word, as shown in help
    run: Run
    console_only: bool = False


class Commands:
    def __init__(self, core: Core, transport: Transport) -> None:
        self.core = core
        self.transport = transport
        self.departures = core.departures
        self.messages = core.prompts.messages
        self.turns = Turns(core)
        self.lifecycle = Lifecycle(core.departures)
        self.privacy = Privacy(core.departures)

    def run(self, actor: str, command: Command) -> Result:
        """Carry out ``command`` for ``actor``; every refusal becomes a warning in the Result."""
        spec = SPECS.get(command.name)
        if spec is None or (spec.console_only and self.transport is not Transport.CONSOLE):
            return Result().say("unknown_command", command=command.name, help=CommandRef("help"))
        result = self.guarded(lambda: spec.run(self, actor, command.argument))
        if result.warned and command.as_client:
            result.say("meant_client", client=command.as_client,
                       start=CommandRef("departure", f"start {command.as_client}"))  # fmt: skip
        return result

    @staticmethod
    def guarded(act: Callable[[], Result]) -> Result:
        try:
            return act()
        except Refusal as refusal:
            return Result.refused(refusal)
        except AnswerError as err:
            return Result([refused_answer(err)])

    # -- starting and steering the interview -----------------------------------------------
    def start(self, actor: str, client: str, *, source: Source | None = None, context: str | None = None) -> Result:
        started = self.departures.start(client, am=actor, source=source or Source(self.transport.value),
                                        context=context)  # fmt: skip
        record = started.departure
        if not started.created:
            return Result().say("already_open", client=record["client"], status=record["status"].label,
                                progress=self.departures.progress(record),
                                resume=CommandRef("resume", record["client"]))  # fmt: skip
        total = len(list(self.core.prompts.script.questions()))
        return self.turns.ask(record, Result().say("started", client=record["client"], questions=total))

    def resume(self, actor: str, client: str) -> Result:
        return self.resume_departure(actor, self.departures.named(client))

    def resume_departure(self, actor: str, record: Departure) -> Result:
        self.departures.access.require(record, actor)
        if self.departures.resume(record) is None:
            return Result().say("nothing_to_ask", client=record["client"])
        result = Result().say("resuming", client=record["client"], progress=self.departures.progress(record))
        return self.turns.ask(self.departures.get(record["id"]), result)

    def edit(self, actor: str, argument: str) -> Result:
        """``Acme Corp reason``, ``Acme Corp main reason`` or ``Acme Corp 4``: the client, then the question."""
        words = argument.split()
        if len(words) < 2:
            return Result().say("edit_usage", edit=CommandRef("edit", "Acme Corp 4"))
        for cut in range(len(words) - 1, 0, -1):  # the longest client name that names a departure
            record = self.departures.find(" ".join(words[:cut]))
            if record is not None:
                break
        else:
            raise Refusal("unknown_client", client=" ".join(words[:-1]), list=CommandRef("list"))
        named = " ".join(words[cut:])
        question = self.question_named(record, named)
        if question is None:
            applicable = self.departures.interview.applicable(self.departures.state(record))
            listed = ", ".join(f"{n}. {q.label}" for n, q in enumerate(applicable, 1))
            return Result().say("unknown_question", question=named, questions=listed)
        return self.edit_answer(actor, record["id"], question.id)

    def question_named(self, record: Departure, named: str) -> Question | None:
        """A question by its number in the interview (as shown while asking), its label, or the start of it."""
        applicable = self.departures.interview.applicable(self.departures.state(record))
        wanted = named.strip().casefold()
        if wanted.isdigit():
            n = int(wanted)
            return applicable[n - 1] if 1 <= n <= len(applicable) else None
        exact = [q for q in applicable if wanted in (q.id.casefold(), q.label.casefold())]
        if exact:
            return exact[0]
        starts = [q for q in applicable if q.label.casefold().startswith(wanted)]
        return starts[0] if len(starts) == 1 else None

    def edit_answer(self, actor: str, departure_id: int, question_id: str) -> Result:
        """Ask ``question_id`` again; the answer it had is shown, and kept if the person says so."""
        record = self.departures.get(departure_id)
        self.departures.edit(record, question_id, actor=actor)
        return self.turns.ask(self.departures.get(departure_id))

    # -- reading ------------------------------------------------------------------------
    def help(self, actor: str, _: str) -> Result:
        entries = tuple(
            HelpEntry(spec.name, spec.usage, self.messages.render(f"help_{spec.name}"))
            for spec in SPECS.values()
            if spec.name != "start" and (not spec.console_only or self.transport is Transport.CONSOLE)
        )
        start = HelpEntry("departure", "<client>", self.messages.render("help_start"))
        controls = self.messages.render("help_controls")
        return Result([Help((start, *entries), controls)])

    def list_open(self, actor: str, _: str) -> Result:
        records = self.departures.list_open()
        if not records:
            return Result().say("no_open", start=CommandRef("departure", "<client>"))
        rows = []
        for record in records:
            waiting = self.departures.current_question(record) is not None
            parked = bool(self.departures.state(record).parked)
            rows.append(OpenRow(record["id"], record["client"], record["status"], self.departures.progress(record),
                                waiting, parked, record["am"]))  # fmt: skip
        return Result([Listing(tuple(rows))])

    def status(self, actor: str, client: str) -> Result:
        record = self.departures.named(client)
        result = Result([self.turns.summary(record, actor)])
        if not self.departures.may_see(record, actor):
            result.say("not_allowed", client=record["client"])
        return result

    # -- the report ---------------------------------------------------------------------------
    def report(self, actor: str, argument: str) -> Result:
        """``/report``, ``/report last quarter``, ``/report 2027 csv``: the lessons of a period, with a chart."""
        return self.report_result(self.lessons(actor, self.report_asked(argument)))

    def report_asked(self, argument: str) -> Asked:
        """The period and format ``argument`` names; a Refusal names the words that name no period, with an example."""
        return read_report_words(argument, self.departures.today())

    def lessons(self, actor: str, asked: Asked) -> Lessons:
        """The report asked for. In Slack the listener uploads the chart and export of these same figures."""
        access = self.departures.access
        # An export names a client only to whom may see the departure (as Access.may_see): the console's
        # user holds the data file anyway.
        named = None if self.transport is Transport.CONSOLE or access.is_admin(actor) else (
            lambda row: row.am == actor)  # fmt: skip
        return Lessons(asked, build_report(self.departures, asked.period), named)

    def report_result(self, lessons: Lessons) -> Result:
        """The text; in the console the chart (and a CSV or JSON asked for) is written under the data folder."""
        text = render_report_text(lessons.report, self.core.prompts)
        result = Result([Preformatted(self.messages.render("report_title"), text)])
        export_name, export = lessons.export_name, lessons.export()
        kind = lessons.asked.format.value.upper()
        if self.transport is not Transport.CONSOLE:
            if export is None:
                return result.say("report_chart_in_dm")
            return result.say("report_export_in_dm", format=kind)
        folder = self.core.settings.db_path.parent / REPORTS_FOLDER
        chart = write_report_file(folder, lessons.chart_name, lessons.chart(self.messages))
        result.say("report_chart_saved", path=str(chart))
        if export_name is not None and export is not None:
            result.say("report_export_saved", format=kind, path=str(write_report_file(folder, export_name, export)))
        return result

    # -- the team's size ------------------------------------------------------------------------
    def clients(self, actor: str, argument: str) -> Result:
        """``/clients 42``, or ``/clients 40 since 2026-10-01``: how many active clients the team has, kept with
        its day, so that the report's turnover of a period counts against the number that held then. Anyone who
        may use the bot may say it; a count that is missing, below zero or not a number is refused."""
        departures = self.departures
        try:
            said = read_team_size(argument, departures.today())
        except Refusal as refusal:
            result = Result.refused(refusal)
            current = team_size_now(departures)
            if current is not None:
                result.say("clients_now", count=current["count"], day=team_size_day(departures, current).isoformat())
            return result
        kept = say_team_size(departures, said, by=actor)
        day = team_size_day(departures, kept).isoformat()
        result = Result().say("clients_noted_one" if kept["count"] == 1 else "clients_noted", count=kept["count"],
                              day=day)  # fmt: skip
        before, after = team_sizes_around(departures, kept)
        if before is not None:
            result.say("clients_before", count=before["count"], day=team_size_day(departures, before).isoformat())
        if after is not None:
            result.say("clients_until", count=after["count"], day=team_size_day(departures, after).isoformat())
        return result.say("clients_in_report", report=CommandRef("report", "last quarter"))

    def preview(self, actor: str, client: str) -> Result:
        """The client's next emails, written as HTML files to open in a browser before they go."""
        record = self.departures.named(client)
        self.departures.access.require(record, actor)
        folder = preview_folder(self.core.settings.data_dir, record)
        written = write_previews(self.core.store, self.core.dispatcher.drafts, record, folder)
        if not written:
            return Result().say("preview_none", client=record["client"])
        if self.transport is Transport.SLACK:
            # the files are on the bot's machine: in Slack they come to the person's DM
            result = Result(files=[p.html for p in written])
            if len(written) == 1:
                return result.say("preview_in_dm_one", client=record["client"])
            return result.say("preview_in_dm", client=record["client"], count=len(written))
        if len(written) == 1:
            result = Result().say("preview_written_one", client=record["client"], folder=str(folder))
        else:
            result = Result().say("preview_written", client=record["client"], count=len(written), folder=str(folder))
        for preview in written:
            result.say("preview_file", path=str(preview.html), subject=preview.subject,
                       when=f"{preview.due:%a %d %b %Y %H:%M} {preview.due.tzinfo}")  # fmt: skip
        return result

    # -- updates to former clients (bot/updates.py) -------------------------------------------
    def update(self, actor: str, argument: str) -> Result:
        """``SEO, pricing: the news``: a draft, who would get it and why; a second admin approves it."""
        topics, colon, text = argument.partition(":")
        if not colon or not text.strip():
            return Result().say("update_usage", example=CommandRef("update", "SEO, pricing: Our new audit is out..."))
        try:
            return self.update_drafted(self.draft_update(actor, text, topics))
        except UpdateError as err:
            return Result([Say("update_refused", {"why": str(err)}, Tone.WARNING)])

    def draft_update(self, actor: str, text: str, topics: str,
                     translations: Mapping[str, str] | None = None) -> UpdateDraft:  # fmt: skip
        """An update drafted from a form (Slack's modal): UpdateError names the field at fault."""
        return draft_update(self.core, actor, text, topics, translations,
                            gap_days=self.core.settings.update_gap_days)  # fmt: skip

    def update_drafted(self, drafted: UpdateDraft, result: Result | None = None) -> Result:
        """Who would get a draft and why, how to translate and approve it; a request to each admin who may."""
        number = drafted.update["id"]
        result = (result or Result()).say("update_drafted", number=number, count=drafted.count)
        for recipient in drafted.recipients:
            key = "update_gets_it" if recipient.included else "update_left_out"
            result.say(key, client=recipient.client, why=recipient.reason)
        result.say("update_translate_hint", translate=CommandRef("translate", f"{number} de: <text>"))
        result.notices.extend(approval_requests(self.core, drafted))
        return result.say("update_approve_hint", approve=CommandRef("approve", str(number)))

    def translate(self, actor: str, argument: str) -> Result:
        """``3 de: Der Text``: the text of draft update 3 in German."""
        head, colon, text = argument.partition(":")
        words = head.split()
        if not colon or len(words) != 2 or not words[0].lstrip("#").isdigit():
            return Result().say("update_translate_usage",
                                example=CommandRef("translate", "3 de: Unser neuer Audit ist da..."))  # fmt: skip
        try:
            drafted = add_translation(self.core, int(words[0].lstrip("#")), words[1], text, actor,
                                      gap_days=self.core.settings.update_gap_days)  # fmt: skip
        except UpdateError as err:
            return Result([Say("update_refused", {"why": str(err)}, Tone.WARNING)])
        update = drafted.update
        return Result().say("update_translated", number=update["id"], language=words[1].lower(),
                            languages=", ".join(sorted(update["translations"])), count=drafted.count)  # fmt: skip

    def approve(self, actor: str, argument: str) -> Result:
        """``3``: a second admin approves update 3; each recipient gets it at their next 09:00."""
        if not argument.strip().lstrip("#").isdigit():
            return Result().say("update_usage", example=CommandRef("approve", "3"))
        try:
            approved = approve_update(self.core, int(argument.strip().lstrip("#")), actor,
                                      gap_days=self.core.settings.update_gap_days)  # fmt: skip
        except UpdateError as err:
            return Result([Say("update_refused", {"why": str(err)}, Tone.WARNING)])
        return Result().say("update_approved", number=approved.update["id"], count=len(approved.touches))

    def touches(self, actor: str, client: str) -> Result:
        record = self.departures.named(client)
        self.departures.access.require(record, actor)
        found = self.core.store.find_touches(departure_id=record["id"])
        if not found:
            return Result().say("nothing_planned", client=record["client"])
        return Result([TouchList(record["client"], tuple(self.touch_row(t) for t in found))])

    def touch_row(self, touch: Touch) -> TouchRow:
        render = self.messages.render
        local = parse_iso(touch["due_at"]).astimezone(ZoneInfo(touch["zone"]))
        if touch["recipient"] == CHANNEL:
            to = render("to_team_channel")
        elif touch["channel"] is Channel.EMAIL:
            to = touch["recipient"]
        else:
            to = render("to_person", person=touch["recipient"])
        payload = touch["payload"]
        detail = payload.get("holiday") or (render(f"item_{payload['what']}") if "what" in payload else "")
        if payload.get("lapse"):
            detail = render("touch_lapse")
        elif payload.get("escalated"):
            detail = render("touch_escalation", item=detail)
        elif "number" in payload:
            detail = f"{detail} {payload['number']}/{payload.get('of', payload['number'])}".strip()
        what = render(f"kind_{touch['kind']}", detail=detail).strip()
        return TouchRow(local, touch["zone"], what, to, render(f"touch_{touch['status']}"), touch.get("reason", ""))

    # -- changing ---------------------------------------------------------------------------
    def set_status(self, actor: str, client: str, status: Status) -> Result:
        return self.status_of(actor, self.departures.named(client), status)

    def status_of(self, actor: str, record: Departure, status: Status) -> Result:
        record = self.lifecycle.set_status(record, status, actor=actor)
        return Result().say("status_changed", client=record["client"], status=status.label)

    def paid(self, actor: str, client: str) -> Result:
        return self.paid_departure(actor, self.departures.named(client))

    def paid_departure(self, actor: str, record: Departure) -> Result:
        record = self.lifecycle.mark_paid(record, actor=actor)
        return Result().say("paid_noted", client=record["client"])

    def signed(self, actor: str, client: str) -> Result:
        return self.signed_departure(actor, self.departures.named(client))

    def signed_departure(self, actor: str, record: Departure) -> Result:
        record = self.lifecycle.mark_signed(record, actor=actor)
        return Result().say("signed_noted", client=record["client"])

    # -- open items: done, snoozed, no longer applying -------------------------------------
    def done(self, actor: str, argument: str) -> Result:
        """``Acme payment``, or ``Acme payment n/a`` when it no longer applies."""
        words = argument.split()
        state = ItemState.DONE
        if words and words[-1].casefold() in NOT_APPLICABLE_WORDS:
            state = ItemState.NOT_APPLICABLE
            words = words[:-1]
        record, item = self.client_and_item(words)
        return self.mark(actor, record, item, state, None)

    def snooze(self, actor: str, argument: str) -> Result:
        """``Acme payment`` (a week), or ``Acme payment until 15 Jan``: nudge again then."""
        before, _, when = argument.partition(" until ")
        record, item = self.client_and_item(before.split())
        today = self.departures.today()
        # A snooze ends ahead: "friday" is the coming one, "15 jan" the next, "3 weeks" from now.
        until = parse_date(when, today, "future") if when.strip() else today + SNOOZE
        return self.mark(actor, record, item, ItemState.SNOOZED, until)

    def mark(self, actor: str, record: Departure, item: Item, state: ItemState, until: date | None) -> Result:
        self.lifecycle.mark_item(record, item, state, actor=actor, until=until)
        what = self.messages.render(f"item_{item.value}")
        if state is ItemState.SNOOZED and until is not None:
            return Result().say("item_snoozed", client=record["client"], item=what, until=f"{until:%a %d %b %Y}")
        return Result().say(f"item_{state.value}", client=record["client"], item=what)

    def save(self, actor: str, client: str) -> Result:
        """Begin a save attempt with what the client said could change their mind (the exit note's form)."""
        return self.save_departure(actor, self.departures.named(client))

    def save_departure(self, actor: str, record: Departure) -> Result:
        record = self.lifecycle.save_from_client(record, actor=actor)
        result = Result().say("save_started_from_client", client=record["client"])
        if self.departures.current_question(record) is None:
            return result
        return self.turns.ask(record, result)  # who owns it, and by when: asked like any open question

    def leaving(self, actor: str, client: str) -> Result:
        """The save attempt did not work: the client is still leaving."""
        record = self.lifecycle.save_outcome(self.departures.named(client), SaveOutcome.LEAVING, actor=actor)
        return Result().say("status_changed", client=record["client"], status=record["status"].label)

    def client_and_item(self, words: list[str]) -> tuple[Departure, Item]:
        """The departure and the open item a command names: the client first, the item last."""
        named_item = None
        for cut in range(1, len(words)):  # the longest item name that follows a client's name
            item = self.item_named(" ".join(words[cut:]))
            if item is None:
                continue
            record = self.departures.find(" ".join(words[:cut]))
            if record is not None:
                return record, item
            named_item = named_item or cut
        if named_item is not None:
            return self.departures.named(" ".join(words[:named_item])), Item.INTERVIEW  # refused: unknown client
        items = ", ".join(ITEM_WORDS)
        raise Refusal("item_usage", done=CommandRef("done", "Acme Corp payment"), items=items)

    def item_named(self, named: str) -> Item | None:
        wanted = named.strip().casefold()
        if wanted in ITEM_WORDS:
            return ITEM_WORDS[wanted]
        return next((i for i in Item if wanted in (i.value, self.messages.render(f"item_{i.value}").casefold())),
                    None)

    def act_on(self, actor: str, departure_id: int, action: Action, item: Item | None = None,
               until: date | None = None) -> Result:  # fmt: skip
        """A button on a nudge (Slack) does what its command does in the console."""

        def act() -> Result:
            record = self.departures.get(departure_id)
            if action is Action.LEAVING and record["status"] is Status.SAVING:
                self.lifecycle.save_outcome(record, SaveOutcome.LEAVING, actor=actor)
                return Result().say("status_changed", client=record["client"], status=Status.LEAVING.label)
            if action in (Action.RETAINED, Action.LEAVING):
                return self.status_of(actor, record, Status(action.value))
            if action is Action.PAID:
                return self.paid_departure(actor, record)
            if action is Action.SIGNED:
                return self.signed_departure(actor, record)
            if action is Action.CONTINUE:
                return self.resume_departure(actor, record)
            if action is Action.SAVE:
                return self.save_departure(actor, record)
            if item is not None and action in ITEM_ACTIONS:
                state = ITEM_ACTIONS[action]
                today = self.departures.today()
                return self.mark(actor, record, item, state, (until or today + SNOOZE) if action is Action.SNOOZE
                                 else None)  # fmt: skip
            raise ValueError(f"{action} is not an action on a departure")

        return self.guarded(act)

    def optout(self, actor: str, client: str) -> Result:
        record = self.privacy.opt_out(self.departures.named(client), actor=actor)
        return Result().say("opted_out", client=record["client"])

    def forget(self, actor: str, client: str) -> Result:
        """Asks first: erasing cannot be undone."""
        record = self.departures.named(client)
        self.departures.access.require(record, actor)
        planned = self.core.store.find_touches(departure_id=record["id"], statuses=NOT_YET_SENT)
        emails = sum(t["channel"] is Channel.EMAIL for t in planned)
        render = self.messages.render
        planned_words = "" if not emails else render("forget_planned_one") if emails == 1 else render(
            "forget_planned", emails=emails)  # fmt: skip
        closing = render("forget_closes") if record["status"] in OPEN else ""
        question = Say("confirm_forget", {"client": record["client"], "planned": planned_words, "closing": closing})
        return Result([Confirm(Confirmation.FORGET, record["id"], question)])

    def confirmed(self, actor: str, what: Confirmation, departure_id: int, yes: bool) -> Result:
        """The answer to a Confirm: ``yes`` carries it out, anything else changes nothing."""
        if not yes:
            return Result().say("nothing_erased")
        return self.guarded(lambda: self._forget(actor, departure_id))

    def _forget(self, actor: str, departure_id: int) -> Result:
        record = self.departures.get(departure_id)
        name = record["client"]
        self.privacy.forget(record, actor=actor)
        return Result().say("forgotten", client=name)

    # -- the console's clock --------------------------------------------------------------
    def advance(self, actor: str, argument: str) -> Result:
        target = parse_advance(argument, self.core.clock.now(), self.departures.zone)
        if target is None:
            return Result().say("advance_usage")
        if target <= self.core.clock.now():
            return Result().say("clock_forward_only")
        result = Result()
        result.advance_to = target
        return result


    def clock(self, actor: str, _: str) -> Result:
        now = self.core.clock.now()
        local = now.astimezone(self.departures.zone)
        return Result().say("clock_shows", local=f"{local:%a %d %b %Y %H:%M} {self.departures.zone.key}",
                            utc=f"{now:%a %d %b %Y %H:%M} UTC")  # fmt: skip


def parse_advance(argument: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """``45d``, ``12h``, ``2w`` ahead, or ``2027-01-02 09:00`` (local to the team's zone); None if neither."""
    text = argument.strip().lower()
    step = re.fullmatch(r"(\d{1,5})\s*([mhdw])", text)
    if step:
        amount, unit = int(step.group(1)), step.group(2)
        return now + {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount),
                      "w": timedelta(weeks=amount)}[unit]  # fmt: skip
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _start(commands: Commands, actor: str, client: str) -> Result:
    return commands.start(actor, parse_client_name(client))


def _status_to(status: Status) -> Run:
    return lambda commands, actor, client: commands.set_status(actor, client, status)


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec("start", "<client>", _start),
        Spec("list", "", Commands.list_open),
        Spec("status", "<client>", Commands.status),
        Spec("resume", "<client>", Commands.resume),
        Spec("edit", "<client> <question number or label>", Commands.edit),
        Spec("retained", "<client>", _status_to(Status.RETAINED)),
        Spec("departed", "<client>", _status_to(Status.DEPARTED)),
        Spec("wonback", "<client>", _status_to(Status.WON_BACK)),
        Spec("optout", "<client>", Commands.optout),
        Spec("paid", "<client>", Commands.paid),
        Spec("signed", "<client>", Commands.signed),
        Spec("leaving", "<client>", Commands.leaving),
        Spec("save", "<client>", Commands.save),
        Spec("done", "<client> <item> [n/a]", Commands.done),
        Spec("snooze", "<client> <item> [until <date>]", Commands.snooze),
        Spec("forget", "<client>", Commands.forget),
        Spec("report", "[period] [csv | json]", Commands.report),
        Spec("clients", "<number> [since <date>]", Commands.clients),
        Spec("touches", "<client>", Commands.touches),
        Spec("preview", "<client>", Commands.preview),
        Spec("update", "<topics>: <text>", Commands.update),
        Spec("translate", "<update number> <language>: <text>", Commands.translate),
        Spec("approve", "<update number>", Commands.approve),
        Spec("advance", "45d | 2027-01-02 09:00", Commands.advance, console_only=True),
        Spec("clock", "", Commands.clock, console_only=True),
        Spec("help", "", Commands.help),
    )
}
