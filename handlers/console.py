"""The terminal transport: a chat with the bot, one line at a time.

Piped input is read line by line with no prompts (``sendoff console < session.txt``)
and each line is echoed, so the output reads as a transcript. On a terminal
there are prompts, line editing and history (readline).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.answers import AnswerError, options_for
from bot.app import Core
from bot.clock import iso, parse_iso
from bot.command_words import Command, parse_departure, split_edit_argument
from bot.departures import DepartureError, status_label
from bot.dispatcher import CONTINUE, LEAVING, PAID, RETAINED, SIGNED, Notice
from bot.interview import Outcome
from bot.playbook import CHANNEL
from bot.reports import build_report, render_report_text
from storage import Record

HELP = """Commands:
  /departure <client>        record a client's departure and start the interview
  /list                      open departures and their progress
  /status <client>           one departure: status and answers
  /resume <client>           continue an interview (parked stages too)
  /edit <client> <question>  change an earlier answer (the history is kept)
  /retained <client>         the client stays: the save worked
  /departed <client>         the client has left
  /wonback <client>          a former client came back
  /optout <client>           the client wants no more messages
  /paid <client>             the final payment came in
  /signed <client>           the termination agreement is signed by both parties
  /forget <client>           erase the client's personal data and answers
  /report                    reasons, save rate, revenue and workload
  /touches <client>          planned and sent messages, with their local times
  /advance 45d | 2027-01-02 09:00
                             move the clock; what falls due on the way goes out
  /help                      this list
  /quit                      leave (everything is saved as you go)
While answering: skip, back, later (park the rest of this stage)."""

# What a notice's buttons are in Slack, as console commands.
CONSOLE_ACTIONS = {
    RETAINED: "/retained {client}",
    LEAVING: "still leaving: nothing to do",
    PAID: "/paid {client}",
    SIGNED: "/signed {client}",
    CONTINUE: "/resume {client}",
}

KIND_HINTS = {
    "date": "a date: 2027-01-31, 31 Jan 2027, today, in 2 weeks",
    "money": "an amount: 1,200 or 1200 EUR or $1,200.50",
    "yes_no": "yes or no",
    "email": "an email address",
    "country": "a country: Germany or DE",
    "number": "a whole number",
    "multi_choice": "one or more numbers, such as 1,3",
}


class ConsoleChat:
    """One person's conversation with the bot. ``handle`` takes a line, prints replies."""

    def __init__(self, core: Core, write: Callable[[str], None]) -> None:
        self.core = core
        self.departures = core.departures
        self.messages = core.prompts.messages
        self.user = core.settings.console_user
        self.write = write
        self.active: int | None = None  # the departure being interviewed
        self.advance_to: datetime | None = None  # set by /advance, carried out by the run loop

    # -- the conversation ----------------------------------------------------------
    def greet(self) -> None:
        record = self.departures.resumable(self.user)
        if record is None:
            self.write("sendoff console. Type /departure <client> to begin, /help for commands.")
            return
        self.active = record["id"]
        self.say("resuming", client=record["client"], progress=self.departures.progress(record))
        self.ask(record)

    def handle(self, line: str) -> bool:
        """Act on one line; False when the person wants to leave."""
        text = line.strip()
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            word = word.lower()
            if word in ("quit", "exit"):
                return False
            command = parse_departure(rest) if word == "departure" else Command(word, rest.strip())
            self.run_command(command)
            return True
        record = self.active_record()
        if record is None:
            if text:
                self.write("No interview is running. Type /departure <client> to start one, or /help.")
            return True
        self.interview_input(record, text)
        return True

    def active_record(self) -> Record | None:
        if self.active is None:
            return None
        record = self.departures.store.get_departure(self.active)
        if record is None or self.departures.current_question(record) is None:
            return None
        return record

    def interview_input(self, record: Record, text: str) -> None:
        state = self.departures.state(record)
        word = text.lower()
        try:
            if word == "back":
                question = self.departures.back(record)
                if question is None:
                    self.say("first_question")
                self.ask(record)
                return
            if word == "later":
                stage = self.departures.later(record, actor=self.user)
                if stage is not None:
                    self.say("parked", client=record["client"], stage=stage.title)
                self.ask(record)
                return
            if word == "" and state.editing:
                self.departures.keep(record)
                self.ask(record)
                return
            if word == "skip":
                record, outcome = self.departures.skip(record, actor=self.user)
            else:
                record, outcome = self.departures.answer(record, text, actor=self.user)
        except AnswerError as err:
            self.write(str(err))
            self.ask(record)
            return
        self.after_answer(record, outcome)

    def after_answer(self, record: Record, outcome: Outcome) -> None:
        if outcome.previous is not None and outcome.parsed is not None and outcome.previous != outcome.parsed.display:
            self.say("edited", question=outcome.question.label, client=record["client"], old=outcome.previous,
                     new=outcome.parsed.display)  # fmt: skip
        if outcome.paused:
            self.say("paused_unconfirmed", client=record["client"])
            self.active = None
            return
        if outcome.finished:
            self.say("completed", client=record["client"])
            self.print_summary(record)
            self.active = None
            return
        self.ask(record)

    def ask(self, record: Record) -> None:
        question = self.departures.current_question(record)
        if question is None:
            self.active = None
            return
        self.active = record["id"]
        state = self.departures.state(record)
        stage = self.core.prompts.script.stage(question.stage)
        number, total = self.departures.position(record, question)
        text = question.text.format(client=record["client"], am=record["am"])
        lines = [f"[{stage.title} · {number}/{total}] {text}"]
        for n, option in enumerate(options_for(question, state.values()), 1):
            lines.append(f"  {n}. {option.label}")
        controls = ["skip"] if question.skippable else []
        controls += ["back", "later"]
        hint = KIND_HINTS.get(question.kind)
        lines.append(f"  ({hint + '; ' if hint else ''}{', '.join(controls)})")
        if state.editing == question.id and question.id in state.answers:
            lines.append(f"  Current answer: {state.answers[question.id].get('display')}. Press Enter to keep it.")
        self.write("\n".join(lines))

    def say(self, key: str, **values: object) -> None:
        self.write(self.messages.render(key, **values))

    # -- commands ------------------------------------------------------------------
    def run_command(self, command: Command) -> None:
        handler = getattr(self, f"cmd_{command.name}", None)
        if handler is None:
            self.write(f"Unknown command /{command.name}. Type /help for the list.")
            return
        try:
            handler(command.argument)
        except (AnswerError, DepartureError) as err:
            self.write(str(err))

    def cmd_help(self, _: str) -> None:
        self.write(HELP)

    def cmd_start(self, client: str) -> None:
        started = self.departures.start(client, am=self.user, source="console")
        record = started.departure
        if not started.created:
            self.say("already_open", client=record["client"], progress=self.departures.progress(record),
                     status=status_label(record["status"]))  # fmt: skip
            return
        total = len(list(self.core.prompts.script.questions()))
        self.say("started", client=record["client"], questions=total)
        self.ask(record)

    def cmd_resume(self, client: str) -> None:
        record = self.find(client)
        if record is None:
            return
        self.departures.require_access(record, self.user)
        if self.departures.resume(record) is None:
            self.say("nothing_to_ask", client=record["client"])
            return
        self.say("resuming", client=record["client"], progress=self.departures.progress(record))
        self.ask(record)

    def cmd_list(self, _: str) -> None:
        records = self.departures.list_open()
        if not records:
            self.say("no_open")
            return
        rows = ["Open departures:"]
        for record in records:
            waiting = self.departures.current_question(record)
            parked = self.departures.state(record).parked
            note = "parked" if parked and waiting is None else ("in progress" if waiting else "interview done")
            rows.append(
                f"  #{record['id']:<4} {record['client'][:40]:<40} {status_label(record['status']):<12} "
                f"{self.departures.progress(record):>6} answered  ({note}; AM {record['am']})"
            )
        self.write("\n".join(rows))

    def cmd_status(self, client: str) -> None:
        record = self.find(client)
        if record is None:
            return
        lines = [
            f"{record['client']} (#{record['id']}): {status_label(record['status'])}, "
            f"{self.departures.progress(record)} answered, AM {record['am']}, since {record['created_at'][:10]}"
            + (", opted out" if record.get("opted_out") else "")
        ]
        if self.departures.may_see(record, self.user):
            lines += self.summary_lines(record)
        self.write("\n".join(lines))

    def cmd_edit(self, argument: str) -> None:
        client, question_id = split_edit_argument(argument)
        if not client or not question_id:
            self.write("Usage: /edit <client> <question>, such as /edit Acme Corp reason.")
            return
        record = self.find(client)
        if record is None:
            return
        if self.core.prompts.script.question(question_id) is None:
            self.say("unknown_question", question=question_id, questions=", ".join(self.departures.question_ids()))
            return
        self.departures.edit(record, question_id, actor=self.user)
        self.ask(self.departures.get(record["id"]))

    def cmd_retained(self, client: str) -> None:
        self.change_status(client, "retained")

    def cmd_departed(self, client: str) -> None:
        self.change_status(client, "departed")

    def cmd_wonback(self, client: str) -> None:
        self.change_status(client, "won_back")

    def change_status(self, client: str, status: str) -> None:
        record = self.find(client)
        if record is None:
            return
        self.departures.set_status(record, status, actor=self.user)
        self.say("status_changed", client=record["client"], status=status_label(status))

    def cmd_paid(self, client: str) -> None:
        record = self.find(client)
        if record is not None:
            self.departures.mark_paid(record, actor=self.user)
            self.write(f"Noted: {record['client']} has paid. No more payment reminders.")

    def cmd_signed(self, client: str) -> None:
        record = self.find(client)
        if record is not None:
            self.departures.mark_signed(record, actor=self.user)
            self.write(f"Noted: the agreement with {record['client']} is signed.")

    def cmd_optout(self, client: str) -> None:
        record = self.find(client)
        if record is not None:
            self.departures.opt_out(record, actor=self.user)
            self.say("opted_out", client=record["client"])

    def cmd_forget(self, client: str) -> None:
        record = self.find(client)
        if record is None:
            return
        name = record["client"]
        self.departures.forget(record, actor=self.user)
        if self.active == record["id"]:
            self.active = None
        self.say("forgotten", client=name)

    def cmd_touches(self, client: str) -> None:
        record = self.find(client)
        if record is None:
            return
        self.departures.require_access(record, self.user)
        touches = self.core.store.find_touches(departure_id=record["id"])
        if not touches:
            self.write(f"Nothing is planned for {record['client']}.")
            return
        rows = [f"Touches for {record['client']}:"]
        for t in touches:
            local = parse_iso(t["due_at"]).astimezone(ZoneInfo(t["zone"]))
            to = t["recipient"] if t["channel"] == "email" else f"AM {t['recipient']}"
            if t["recipient"] == CHANNEL:
                to = "the team channel"
            what = t["key"].split(":", 1)[1].replace("_", " ")  # "check in:+30d", "deadline:final payment due:-3"
            reason = f" ({t['reason']})" if t.get("reason") else ""
            when = f"{local:%a %d %b %Y %H:%M} {t['zone']:<17}"
            rows.append(f"  {when} {what[:34]:<34} to {to:<25} {t['status']}{reason}")
        self.write("\n".join(rows))

    def cmd_advance(self, argument: str) -> None:
        target = parse_advance(argument, self.core.clock.now(), self.departures.zone)
        self.advance_to = target

    def cmd_report(self, _: str) -> None:
        self.write(render_report_text(build_report(self.departures)))

    def find(self, client: str) -> Record | None:
        if not client.strip():
            self.write("Name the client, as in /status Acme Corp.")
            return None
        record = self.departures.find(client)
        if record is None:
            self.say("unknown_client", client=client.strip())
        return record

    # -- rendering -----------------------------------------------------------------
    def summary_lines(self, record: Record) -> list[str]:
        lines = []
        for title, rows in self.departures.summary(record):
            lines.append(f"  {title}")
            width = max(len(label) for label, _ in rows)
            for label, value in rows:
                lines.append(f"    {label:<{width}}  {value}")
        return lines

    def print_summary(self, record: Record) -> None:
        self.write("\n".join([f"{record['client']}: {status_label(record['status'])}", *self.summary_lines(record)]))


def parse_advance(argument: str, now: datetime, zone: ZoneInfo) -> datetime:
    """``45d``, ``12h``, ``2w`` ahead, or ``2027-01-02 09:00`` (local to the team's zone)."""
    text = argument.strip().lower()
    step = re.fullmatch(r"(\d{1,5})\s*([mhdw])", text)
    if step:
        amount, unit = int(step.group(1)), step.group(2)
        return now + {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount),
                      "w": timedelta(weeks=amount)}[unit]  # fmt: skip
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise AnswerError("Usage: /advance 45d (m, h, d or w), or /advance 2027-01-02 09:00.") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if moment <= now:
        raise AnswerError("The clock only moves forward.")
    return moment


async def dispatch_until(core: Core, target: datetime | None, write: Callable[[str], None]) -> None:
    """Send what is due now, or everything due up to ``target`` (/advance), and say what happened."""
    if target is None:
        _say_settled(core, await core.dispatcher.run_due(), write)
        return
    async for settled in core.dispatcher.run_until(target):
        _say_settled(core, settled, write)


def _say_settled(core: Core, settled: list, write: Callable[[str], None]) -> None:
    for done in settled:
        t = done.touch
        at = parse_iso(t.get("sent_at") or t.get("ended_at") or iso(core.clock.now()))
        local = f"{at.astimezone(ZoneInfo(t['zone'])):%a %d %b %Y %H:%M} {t['zone']}"
        if t["channel"] == "email" and done.outcome == "sent":
            write(f"[{local}] {t['kind']} email to {t['recipient']}: {done.detail}")
        elif done.outcome != "sent":  # a sent notice to the AM was printed as it went
            write(f"[{local}] {t['kind']} {done.outcome}: {done.detail}")


def _reader(
    stream: TextIO, interactive: bool, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue, ready: threading.Event
) -> None:
    """Feed lines to the loop from a daemon thread, so that exit never waits on a read.

    On a terminal the prompt waits for ``ready``: the bot's reply comes first.
    None marks the end of input.
    """
    while True:
        if interactive:
            ready.wait()
            ready.clear()
            try:
                line: str | None = input("you> ")
            except EOFError:
                line = None
        else:
            raw = stream.readline()
            line = raw.rstrip("\n") if raw else None
        loop.call_soon_threadsafe(lines.put_nowait, line)
        if line is None:
            return


async def run_console(core: Core, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    interactive = stdin.isatty() and stdout.isatty()
    history = core.settings.data_dir / ".console_history"
    if interactive:
        import readline  # noqa: F401 - gives input() line editing and history

        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def write(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    chat = ConsoleChat(core, write)

    async def print_notice(notice: Notice) -> None:
        zone = notice.touch["zone"] if notice.touch else core.settings.timezone
        local = core.clock.now().astimezone(ZoneInfo(zone))
        to = core.settings.channel or "the team channel" if notice.recipient == CHANNEL else notice.recipient
        client = notice.record["client"] if notice.record else ""
        hints = [CONSOLE_ACTIONS[a].format(client=client) for a in notice.actions if a in CONSOLE_ACTIONS]
        write(f"[{local:%a %d %b %Y %H:%M}] for {to}: {notice.text}" + (f" ({'; '.join(hints)})" if hints else ""))

    core.dispatcher.notify = print_notice
    for touch in core.dispatcher.recover():
        write(f"A {touch['kind']} for departure {touch['departure_id']} was cut off while sending; it is not re-sent.")
    core.playbook.plan_all()  # greetings roll forward; the monthly digest
    chat.greet()
    if not core.settings.smtp_host:
        write(f"Emails are written to {core.settings.outbox_dir}/ (SMTP_HOST is not set).")
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    ready = threading.Event()
    ready.set()
    threading.Thread(target=_reader, args=(stdin, interactive, loop, lines, ready), daemon=True).start()
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(lines.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            getter.cancel()
            stopper.cancel()
            if getter not in done:
                break
            line = getter.result()
            if line is None:
                break
            if not interactive:
                write(f"you> {line}")
            if not chat.handle(line):
                break
            target, chat.advance_to = chat.advance_to, None
            await dispatch_until(core, target, write)
            if target is not None:
                write(f"The clock is now {core.clock.now().astimezone(core.departures.zone):%a %d %b %Y %H:%M %Z}.")
            ready.set()
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if interactive:
            import readline

            with contextlib.suppress(OSError):
                readline.write_history_file(history)
    write("Bye. Everything is saved.")
