"""The terminal transport: a chat with the bot, one line at a time.

It only parses lines and renders what bot/ returns: a command goes to
bot.chat_commands, anything else to bot.interview_turns, and each part of the
Result becomes lines. Piped input is read line by line with no prompts
(``sendoff console < session.txt``) and each line is echoed, so the output
reads as a transcript. On a terminal there are prompts, line editing and
history (readline).

The exit note (the AM's personal note to a client who confirmed) is the one
draft shown here: once no interview question is on screen, its text and a
prompt, answered on the next line with ``send``, ``edit`` (then the new text,
ending with a line holding a single ``.``) or ``skip``; a command typed instead
runs, and the note is asked about again after it. Nothing goes without ``send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import ClassVar, TextIO
from zoneinfo import ZoneInfo

from bot.app import Core, build_core
from bot.chat_commands import ITEM_WORDS, Commands, Transport
from bot.clock import Clock, iso, parse_iso
from bot.command_words import parse_console
from bot.interview_turns import Turns
from bot.mailer import plain_text
from bot.notify import Action, Availability, Notice
from bot.replies import (
    Asked,
    Closed,
    CommandRef,
    Confirm,
    Help,
    Listing,
    Medium,
    Part,
    Preformatted,
    Refusal,
    Result,
    Say,
    Summary,
    TouchList,
    words,
)
from bot.settings import Settings
from bot.settling import Outcome, Settled
from handlers.console_server import bind_client_pages, serve_client_pages
from handlers.console_setup import who_sends
from prompts import Messages, load_prompts
from storage.records import CHANNEL, Channel, Touch, TouchKind, TouchStatus

Write = Callable[[str], None]

# What a notice's buttons are in Slack, as console commands.
CONSOLE_ACTIONS: dict[Action, str] = {
    Action.RETAINED: "retained",
    Action.LEAVING: "leaving",
    Action.PAID: "paid",
    Action.SIGNED: "signed",
    Action.CONTINUE: "resume",
    Action.SAVE: "save",
}
# Actions on an open item, as commands: what follows the client's name and the item's word.
ITEM_COMMANDS: dict[Action, tuple[str, str]] = {
    Action.DONE: ("done", ""),
    Action.NOT_APPLICABLE: ("done", " n/a"),
    Action.SNOOZE: ("snooze", " [until <date>]"),
}
ITEM_WORD = {item: word for word, item in ITEM_WORDS.items()}
YES = frozenset({"yes", "y"})
# The answers to an exit note's draft, as typed; ``END_OF_TEXT`` alone on a line ends an edited text.
DRAFT_ANSWERS = {"send": Action.SEND, "edit": Action.EDIT, "skip": Action.SKIP}
END_OF_TEXT = "."
MAX_EDITED_LINES = 200


def command_text(ref: CommandRef) -> str:
    """A command as typed in the console: ``/resume Acme``, ``/departure <client>``."""
    name = "departure" if ref.name == "start" else ref.name
    return f"/{name} {ref.argument}".rstrip()


MEDIUM = Medium(command=command_text)


class Lines:
    """Renders the parts of a Result as terminal lines."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    def say(self, say: Say) -> str:
        return words(self.messages, say, MEDIUM)

    def text(self, key: str, **values: str | int) -> str:
        return self.say(Say(key, values))

    def part(self, part: Part) -> list[str]:
        if isinstance(part, Say):
            return [self.say(part)]
        if isinstance(part, Asked):
            return self.question(part)
        if isinstance(part, Summary):
            return self.summary(part)
        if isinstance(part, Listing):
            return self.listing(part)
        if isinstance(part, TouchList):
            return self.touches(part)
        if isinstance(part, Preformatted):
            return [part.text]
        if isinstance(part, Help):
            return self.help(part)
        if isinstance(part, Confirm):
            return [self.say(part.question), "  (" + self.text("confirm_yes_no") + ")"]
        if isinstance(part, Closed):
            return []  # the answer was just typed: nothing to close in a terminal
        raise TypeError(f"no console rendering for {type(part).__name__}")

    def question(self, asked: Asked) -> list[str]:
        lines = [f"[{asked.stage} · {asked.number}/{asked.total}] {asked.text}"]
        lines += [f"  {n}. {label}" for n, (_, label) in enumerate(asked.options, 1)]
        hint = self.text(f"hint_{asked.kind}") if f"hint_{asked.kind}" in self.messages.texts else ""
        controls = self.text("controls" if asked.skippable else "controls_required")
        lines.append(f"  ({hint + '; ' if hint else ''}{controls})")
        if asked.current is not None:
            lines.append("  " + self.text("current_answer", answer=asked.current))
        return lines

    def summary(self, summary: Summary) -> list[str]:
        facts = self.text("summary_facts", status=summary.status.label, am=summary.am, since=summary.since,
                          progress=summary.progress)  # fmt: skip
        if summary.save_outcome is not None:
            facts += ", " + self.text(f"summary_save_{summary.save_outcome}")
        if summary.opted_out:
            facts += ", " + self.text("summary_opted_out")
        lines = [f"{summary.client} (#{summary.departure_id}): {facts}"]
        for title, rows in summary.sections:
            lines.append(f"  {title}")
            width = max(len(label) for label, _ in rows)
            lines += [f"    {label:<{width}}  {value}" for label, value in rows]
        return lines

    def listing(self, listing: Listing) -> list[str]:
        lines = [self.text("list_heading", count=len(listing.rows))]
        for row in listing.rows:
            note = self.text("list_waiting" if row.waiting else "list_parked" if row.parked else "list_done")
            lines.append(f"  #{row.departure_id:<4} " + self.text("list_row", client=row.client,
                         status=row.status.label, progress=row.progress, note=note, am=row.am))  # fmt: skip
        return lines

    def touches(self, touches: TouchList) -> list[str]:
        lines = [self.text("touches_heading", client=touches.client)]
        if not touches.rows:
            return lines
        # columns as wide as what they hold: nothing a person needs is cut off
        zone = max(len(row.zone) for row in touches.rows)
        what = max(len(row.what) for row in touches.rows)
        to = max(len(row.to) for row in touches.rows)
        for row in touches.rows:
            reason = f" ({row.reason})" if row.reason else ""
            when = f"{row.when:%a %d %b %Y %H:%M} {row.zone:<{zone}}"
            lines.append(f"  {when} {row.what:<{what}} to {row.to:<{to}} {row.status}{reason}")
        return lines

    def help(self, help_: Help) -> list[str]:
        lines = [self.text("help_heading")]
        entries = [(command_text(CommandRef(e.command, e.usage)), e.text) for e in help_.entries]
        entries.append(("/quit", self.text("help_quit")))
        width = max(len(syntax) for syntax, _ in entries)
        lines += [f"  {syntax:<{width}}  {text}" for syntax, text in entries]
        lines.append(help_.controls)
        return lines


@dataclass(frozen=True)
class ConsoleNotifier:
    """The dispatcher's notices, printed as they go, with the commands that do what Slack's buttons would."""

    settings: Settings
    clock: Clock
    write: Write
    messages: Messages
    # no buttons here: client emails go without a draft, but the exit note, which ConsoleChat asks about
    shows_drafts: ClassVar[bool] = False

    async def deliver(self, notice: Notice) -> None:
        if notice.draft is not None and notice.touch is not None and notice.touch["kind"] is TouchKind.EXIT_NOTE:
            return  # the chat shows it, with its prompt, once no interview question is on screen (ConsoleChat)
        zone = notice.touch["zone"] if notice.touch else self.settings.timezone
        local = self.clock.now().astimezone(ZoneInfo(zone))
        to = notice.recipient
        if to == CHANNEL:
            to = self.settings.channel or self.messages.render("to_team_channel")
        client = notice.record["client"] if notice.record else ""
        hints = [command_text(CommandRef(CONSOLE_ACTIONS[a], client)) for a in notice.offered if a in CONSOLE_ACTIONS]
        if notice.item is not None:
            word = ITEM_WORD[notice.item]
            hints += [command_text(CommandRef(name, f"{client} {word}{tail}"))
                      for a, (name, tail) in ITEM_COMMANDS.items() if a in notice.offered]  # fmt: skip
        line = self.messages.render("notice_line", when=f"{local:%a %d %b %Y %H:%M}", to=to, text=notice.text)
        self.write(line + (f" ({'; '.join(hints)})" if hints else ""))

    async def presence(self, user: str) -> Availability:
        return Availability(None)


class ConsoleChat:
    """One person's conversation with the bot: ``handle`` takes a line and prints the reply."""

    def __init__(self, core: Core, write: Write) -> None:
        self.core = core
        self.user = core.settings.console_user
        self.write = write
        self.commands = Commands(core, Transport.CONSOLE)
        self.turns = Turns(core)
        self.lines = Lines(core.prompts.messages)
        self.confirming: Confirm | None = None  # a question of the bot's own, answered by the next line
        self.advance_to: datetime | None = None  # set by /advance, carried out by the run loop
        self.asking = False  # an interview question is on screen: a draft waits until it is answered
        self.drafting: DraftPrompt | None = None  # an exit note's draft on screen, answered by the next line
        self.shown: set[int] = set()  # drafts shown in full already: asked about again in one line
        self.approving: tuple[int, tuple[str, str] | None] | None = None  # a Send for ``finish`` to carry out

    def greet(self) -> None:
        self.show(self.turns.greet(self.user))

    def handle(self, line: str) -> bool:
        """Act on one line; False when the person wants to leave."""
        if self.confirming is not None:
            asked, self.confirming = self.confirming, None
            yes = line.strip().lower() in YES
            self.show(self.commands.confirmed(self.user, asked.what, asked.departure_id, yes))
            return True
        if self.drafting is not None and self._draft_answer(self.drafting, line):
            return True
        command = parse_console(line)
        if command is not None and command.name in ("quit", "exit"):
            return False
        if command is None:
            result = self.commands.guarded(lambda: self.turns.reply(self.user, line))
        else:
            result = self.commands.run(self.user, command)
        self.show(result)
        return True

    # -- the exit note's draft: send, edit or skip ------------------------------------------------
    def offer_draft(self) -> None:
        """Show an exit note waiting for the AM's yes, with its prompt, unless something else is asked now."""
        if self.drafting is not None or self.confirming is not None or self.asking:
            return
        touch = next(iter(self._waiting_drafts()), None)
        if touch is None:
            return
        dispatcher = self.core.dispatcher
        record = self.core.departures.get(touch["departure_id"] or 0)
        draft = dispatcher.draft(touch["id"])
        prompt = DraftPrompt(touch["id"], record["client"], _header(draft, "Subject"))
        self.drafting = prompt
        if touch["id"] in self.shown:
            self.write(self.lines.text("exit_note_waits", client=prompt.client))
        else:
            self.shown.add(touch["id"])
            self.write(dispatcher.notices.exit_note_ready(touch, record, draft).text)
            self.write(f"  To: {_header(draft, 'To')}")
            self.write(f"  Subject: {prompt.subject}")
            self.write("  " + "-" * 60)
            self.write("\n".join(f"  {line}".rstrip() for line in plain_text(draft).rstrip("\n").split("\n")))
            self.write("  " + "-" * 60)
        self.write("  (" + self.lines.text("exit_note_prompt") + ")")

    def _waiting_drafts(self) -> list[Touch]:
        """Exit notes waiting for a yes, of the departures this person may act on, earliest first."""
        found = []
        for touch in self.core.store.find_touches(statuses=[TouchStatus.AWAITING_APPROVAL]):
            if touch["kind"] is not TouchKind.EXIT_NOTE or touch["departure_id"] is None:
                continue
            record = self.core.store.get_departure(touch["departure_id"])
            if record is not None and self.core.departures.may_see(record, self.user):
                found.append(touch)
        return found

    def _draft_answer(self, prompt: DraftPrompt, line: str) -> bool:
        """The line answers the draft on screen (True), or is a command, which runs first (False)."""
        if prompt.lines is not None:  # the new text, line by line, up to a line holding a single "."
            if line.strip() != END_OF_TEXT:
                if len(prompt.lines) < MAX_EDITED_LINES:
                    prompt.lines.append(line)
                return True
            text, prompt.lines = "\n".join(prompt.lines).strip("\n"), None
            if not text.strip():
                self.write(self.lines.text("exit_note_needs_text"))
                self.write("  (" + self.lines.text("exit_note_prompt") + ")")
                return True
            self.approving = (prompt.touch_id, (prompt.subject, text))
            return True
        answer = DRAFT_ANSWERS.get(line.strip().lower())
        if answer is Action.SEND:
            self.approving = (prompt.touch_id, None)
        elif answer is Action.EDIT:
            prompt.lines = []
            self.write(self.lines.text("exit_note_edit"))
        elif answer is Action.SKIP:
            self.drafting = None
            try:
                settled = self.core.dispatcher.decline(prompt.touch_id, self.user)
            except Refusal as refusal:
                self.show(Result.refused(refusal))
                return True
            except LookupError:
                self.write(self.lines.text("email_gone"))
                return True
            if settled.outcome is Outcome.CANCELLED and settled.touch["status"] is TouchStatus.CANCELLED:
                self.write(self.lines.text("exit_note_skipped", client=prompt.client))
            else:
                self.write(self._settled_text(settled))
        elif parse_console(line) is not None:
            self.drafting = None  # the command first; the note is asked about again after it
            return False
        else:
            self.write("  (" + self.lines.text("exit_note_prompt") + ")")
        return True

    async def finish(self) -> None:
        """Carry out a Send (or an edit) typed for the draft on screen: the note is set for its time."""
        if self.approving is None:
            return
        (touch_id, override), self.approving = self.approving, None
        self.drafting = None
        try:
            settled = await self.core.dispatcher.approve(touch_id, self.user, override)
        except Refusal as refusal:
            self.show(Result.refused(refusal))
            return
        except LookupError:
            self.write(self.lines.text("email_gone"))
            return
        self.write(self._settled_text(settled))

    def _settled_text(self, settled: Settled) -> str:
        to = settled.touch["recipient"]
        if settled.outcome is Outcome.DEFERRED:
            return self.lines.text("exit_note_scheduled", to=to, when=settled.detail)
        if settled.outcome is Outcome.SENT:
            return self.lines.text("email_sent", to=to)
        return self.lines.text("email_not_sent", outcome=self.lines.text(f"outcome_{settled.outcome}"),
                               detail=settled.detail)  # fmt: skip

    def show(self, result: Result) -> None:
        self.asking = any(isinstance(part, Asked) for part in result.parts)
        for part in result.parts:
            if isinstance(part, Confirm):
                self.confirming = part
            for line in self.lines.part(part):
                self.write(line)
        for part in result.team:
            to = self.core.settings.channel or self.lines.text("to_team_channel")
            self.write(f"[for {to}]")
            for line in self.lines.part(part):
                self.write("  " + line)
        if result.advance_to is not None:
            self.advance_to = result.advance_to


@dataclass
class DraftPrompt:
    """An exit note's draft on screen: which, and, while the AM types a new text, its lines so far."""

    touch_id: int
    client: str
    subject: str  # kept when the text is edited
    lines: list[str] | None = None


def _header(message: Message, name: str) -> str:
    return str(make_header(decode_header(str(message[name] or ""))))


async def dispatch_until(core: Core, target: datetime | None, write: Write) -> None:
    """Send what is due now, or everything due up to ``target`` (/advance), and say what happened."""
    if target is None:
        _say_settled(core, await core.dispatcher.run_due(), write)
        return
    async for settled in core.dispatcher.run_until(target):
        _say_settled(core, settled, write)


def _say_settled(core: Core, settled: list[Settled], write: Write) -> None:
    for done in settled:
        t = done.touch
        at = parse_iso(t.get("sent_at") or t.get("ended_at") or iso(core.clock.now()))
        local = f"{at.astimezone(ZoneInfo(t['zone'])):%a %d %b %Y %H:%M} {t['zone']}"
        words = core.prompts.messages
        kind = words.render(f"email_kind_{t['kind']}")
        if t["channel"] is Channel.EMAIL and done.outcome is Outcome.SENT:
            write(words.render("email_went", when=local, kind=kind, to=t["recipient"], detail=done.detail))
        elif done.outcome is not Outcome.SENT:  # a sent notice to the AM was printed as it went
            outcome = words.render(f"outcome_{done.outcome}")
            record = core.store.get_departure(t["departure_id"]) if t["departure_id"] is not None else None
            client = record["client"] if record else words.render("to_team_channel")
            write(words.render("touch_settled", when=local, kind=kind, client=client, outcome=outcome,
                               detail=done.detail))  # fmt: skip


MAX_LINE = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(line: str) -> str:
    """A typed line as the bot reads it: no control characters, undecodable bytes shown as �, bounded."""
    return _CONTROL.sub("", line.rstrip("\r"))[:MAX_LINE]


def _reader(stream: TextIO, interactive: bool, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None],
            ready: threading.Event) -> None:  # fmt: skip
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
            try:
                raw = stream.readline()
            except (UnicodeDecodeError, OSError, ValueError):
                raw = None  # an unreadable stream ends the session like the end of input
            line = raw.rstrip("\n") if raw else None
        try:
            loop.call_soon_threadsafe(lines.put_nowait, None if line is None else clean_line(line))
        except RuntimeError:
            return  # the console has ended (after /quit) while this thread still read
        if line is None:
            return


async def run_console(settings: Settings, clock: Clock, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    interactive = stdin.isatty() and stdout.isatty()
    if isinstance(stdin, io.TextIOWrapper):
        # Any bytes may arrive on the input (a paste, a file in another encoding): they are shown as �, never fatal.
        stdin.reconfigure(errors="replace")

    def write(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    # The notifier speaks the company's words too; build_core checks the same prompts again.
    messages = load_prompts(settings.prompts_dir).messages

    def ask(prompt: str) -> str:
        # input()'s own prompt goes to stderr on a terminal without readline: print it where the chat is
        stdout.write(prompt)
        stdout.flush()
        return input()

    settings = who_sends(settings, messages, interactive=interactive, ask=ask, write=write)
    # the pages the emails link to (the exit note's form, unsubscribe) are served here while the console runs
    settings, listening = bind_client_pages(settings)
    notifier = ConsoleNotifier(settings, clock, write, messages)
    core = build_core(settings, notifier, clock=clock)
    runner = None
    try:
        if listening is not None:
            runner = await serve_client_pages(core, listening)
            write(messages.render("console_pages", url=settings.public_url or ""))
        elif not settings.public_url:
            write(messages.render("console_pages_port_taken", port=settings.port))
        await _converse(core, stdin, interactive, write)
    finally:
        if runner is not None:
            await runner.cleanup()
        core.close()


async def _converse(core: Core, stdin: TextIO, interactive: bool, write: Write) -> None:
    history = core.settings.data_dir / ".console_history"
    if interactive:
        import readline  # gives input() line editing and history

        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    chat = ConsoleChat(core, write)
    for touch in core.dispatcher.recover():
        record = core.store.get_departure(touch["departure_id"]) if touch["departure_id"] is not None else None
        kind = core.prompts.messages.render(f"email_kind_{touch['kind']}")
        write(chat.lines.text("cut_off", kind=kind, client=record["client"] if record else "-"))
    core.playbook.plan_all()  # greetings roll forward; the monthly digest
    chat.greet()
    if not core.settings.smtp_host:
        write(chat.lines.text("outbox_note", folder=str(core.settings.outbox_dir)))
    chat.offer_draft()  # an exit note still waiting for a yes from the last time
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
            await chat.finish()
            target, chat.advance_to = chat.advance_to, None
            await dispatch_until(core, target, write)
            if target is not None:
                now = core.clock.now().astimezone(core.departures.zone)
                write(chat.lines.text("clock_now", time=f"{now:%a %d %b %Y %H:%M %Z}"))
            chat.offer_draft()
            ready.set()
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if interactive:
            import readline

            with contextlib.suppress(OSError):
                readline.write_history_file(history)
    write(chat.lines.text("bye"))
