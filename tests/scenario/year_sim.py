"""A year of departures as a team lives it, run as a process that may be killed at any moment.

``python -m tests.scenario.year_sim <folder> <seed> <departures>`` plays a script of steps
drawn from ``seed``: departures recorded through the interview (the brain both transports
use), days passing on the saved clock with everything due sent on the way, and what the team
does meanwhile (paid, signed, done, snooze, outcomes of save attempts, opt-outs, forget, win-backs).

The script is fixed by the seed; which step comes next is kept in ``progress`` beside the data,
written after each step. Every step can be played again after a kill (it finds what a killed
run left and carries on), so a killed process started again goes on where it stopped: the
clock is the console's saved clock, the store the TinyDB files. Every ``RESTART_EVERY`` steps
the process ends cleanly with ``RESTART`` (exit code), to be started again.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import Core, build_core
from bot.chat_commands import Commands, Transport
from bot.clock import SavedClock
from bot.command_words import Command
from bot.notify import LogNotifier
from bot.privacy import Privacy
from bot.settings import Settings
from storage.records import Departure, Source

START = datetime(2027, 1, 4, 7, tzinfo=UTC)  # Monday 08:00 in Berlin
DAYS = 365
TEAM_ZONE = "Europe/Berlin"
RESTART = 3
RESTART_EVERY = 97
AMS = ("ann", "bob", "cy")

# (country as typed, the time zone as typed when the country has several, the zone it must be, its ISO code)
PLACES: tuple[tuple[str, str | None, str, str], ...] = (
    ("Germany", None, "Europe/Berlin", "DE"),
    ("France", None, "Europe/Paris", "FR"),
    ("Spain", "Madrid", "Europe/Madrid", "ES"),
    ("Italy", None, "Europe/Rome", "IT"),
    ("Netherlands", None, "Europe/Amsterdam", "NL"),
    ("United Kingdom", None, "Europe/London", "GB"),
    ("Ireland", None, "Europe/Dublin", "IE"),
    ("Poland", None, "Europe/Warsaw", "PL"),
    ("Sweden", None, "Europe/Stockholm", "SE"),
    ("Switzerland", None, "Europe/Zurich", "CH"),
    ("Japan", None, "Asia/Tokyo", "JP"),
    ("India", None, "Asia/Kolkata", "IN"),
    ("Singapore", None, "Asia/Singapore", "SG"),
    ("South Africa", None, "Africa/Johannesburg", "ZA"),
    ("Israel", None, "Asia/Jerusalem", "IL"),
    ("United Arab Emirates", None, "Asia/Dubai", "AE"),
    ("South Korea", None, "Asia/Seoul", "KR"),
    ("USA", "New York", "America/New_York", "US"),
    ("USA", "Los Angeles", "America/Los_Angeles", "US"),
    ("USA", "Chicago", "America/Chicago", "US"),
    ("Canada", "Toronto", "America/Toronto", "CA"),
    ("Canada", "Vancouver", "America/Vancouver", "CA"),
    ("Australia", "Sydney", "Australia/Sydney", "AU"),
    ("Australia", "Adelaide", "Australia/Adelaide", "AU"),
    ("Australia", "Perth", "Australia/Perth", "AU"),
    ("Brazil", "São Paulo", "America/Sao_Paulo", "BR"),
    ("Mexico", "Mexico City", "America/Mexico_City", "MX"),
    ("New Zealand", "Auckland", "Pacific/Auckland", "NZ"),
)


@dataclass(frozen=True)
class Step:
    day: int  # days after START: the clock is moved there first
    do: str  # record, advance, or a command
    client: str = ""
    argument: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    stop_after: int | None = None  # an interview left unfinished after this many answers


@dataclass(frozen=True)
class Plan:
    """What the year holds for one departure; the test reads it to know what to expect."""

    client: str
    am: str
    zone: str | None  # the client's zone, when they agreed to stay in touch with an email address
    country: str | None  # their country's ISO code, then


def script(seed: int, departures: int) -> tuple[list[Step], list[Plan]]:
    """The year's steps in order, and what each departure is."""
    rng = random.Random(seed)
    steps: list[Step] = []
    plans: list[Plan] = []
    for number in range(departures):
        client = f"Client {number:03d} {rng.choice(['GmbH', 'Ltd', 'SA', 'Inc', 'KK', 'Pty'])}"
        am = rng.choice(AMS)
        day = rng.randrange(0, DAYS - 60)
        country, city, zone, code = PLACES[number % len(PLACES)]
        answers = {
            "confirmed": "yes", "told_how": rng.choice(["call", "email", "meeting"]), "notified_on": "today",
            "reason": rng.choice(["price", "quality", "results", "fit", "competitor", "project_finished"]),
            "in_their_words": "We need to cut costs", "competitor": "Rival Co",
            "mrr": f"{rng.randrange(5, 60) * 100} EUR", "fixable": rng.choice(["yes", "no", "no", "maybe"]),
            "save_plan": "A discount", "save_owner": "Jane", "save_by": f"in {rng.randrange(2, 6)} weeks",
            "final_payment": rng.choice(["0", "none", "1.5k", "800 EUR"]),
            "final_payment_due": f"in {rng.randrange(1, 5)} weeks", "data_ownership": "logos and reports",
            "data_by": rng.choice(["skip", f"in {rng.randrange(2, 8)} weeks"]),
            "support_ends": rng.choice(["skip", f"in {rng.randrange(1, 10)} weeks"]),
            "agreement_signed": rng.choice(["yes", "yes", "no"]), "client_requests": "none", "alternative": "none",
            "consent": rng.choice(["yes", "yes", "yes", "no"]), "contact_name": "Pat Lee", "salutation": "1",
            "language": "1",  # the country's language: the year's emails go out in every language there is
            "contact_email": rng.choice([f"pat{number}@client{number}.example"] * 9 + ["no email"]),
            "country": country, "timezone": city or "1", "greetings": rng.choice(["yes", "yes", "no"]),
            "topics": "SEO", "differently": "Talk sooner", "workload": str(rng.randrange(5, 30)),
        }  # fmt: skip
        unfinished = rng.random() < 0.06
        steps.append(Step(day, "record", client, am, answers, rng.randrange(3, 12) if unfinished else None))
        staying = answers["consent"] == "yes" and answers["contact_email"] != "no email"
        plans.append(Plan(client, am, zone if staying else None, code if staying else None))
        if unfinished:
            continue
        later = day + rng.randrange(1, 40)
        if answers["final_payment"] not in ("0", "none") and rng.random() < 0.6:
            steps.append(Step(later, "paid", client, am))
        if answers["agreement_signed"] == "no" and rng.random() < 0.5:
            steps.append(Step(day + rng.randrange(1, 20), "signed", client, am))
        if answers["data_by"] != "skip" and rng.random() < 0.4:
            steps.append(Step(day + rng.randrange(10, 50), "done", client, f"{am}|data"))
        if answers["fixable"] in ("yes", "maybe"):
            outcome = rng.choice(["retained", "leaving", "more time", "none", "none"])
            when = day + rng.randrange(3, 20)
            if outcome == "more time":
                steps.append(Step(when, "snooze", client, f"{am}|save until in 3 weeks"))
            elif outcome != "none":
                steps.append(Step(when, outcome, client, am))
        fate = rng.random()
        if fate < 0.10:
            steps.append(Step(day + rng.randrange(30, 200), "optout", client, am))
        elif fate < 0.15:
            steps.append(Step(day + rng.randrange(20, 200), "forget", client, am))
        elif fate < 0.21:
            went = day + rng.randrange(10, 60)
            steps.append(Step(went, "departed", client, am))
            steps.append(Step(went + rng.randrange(30, 200), "wonback", client, am))
        elif fate < 0.25:
            steps.append(Step(day + rng.randrange(5, 40), "snooze", client, f"{am}|agreement until in 2 weeks"))
    steps = [s for s in steps if s.day < DAYS]  # what the team would do after the year is not played
    steps += [Step(day, "advance") for day in range(1, DAYS + 1)]
    # within a day: what the team does in the morning first, then the day passes
    steps.sort(key=lambda s: (s.day, s.do == "advance"))
    return steps, plans


class Year:
    def __init__(self, folder: Path, seed: int, departures: int) -> None:
        self.folder = folder
        self.steps, self.plans = script(seed, departures)
        self.progress = folder / "progress"
        self.settings = Settings(db_path=folder / "data" / "sendoff.json", timezone=TEAM_ZONE, console_user="ann")

    def next_step(self) -> int:
        return int(self.progress.read_text()) if self.progress.exists() else 0

    def done_with(self, index: int) -> None:
        tmp = self.progress.with_name(".progress.tmp")
        tmp.write_text(str(index + 1))
        os.replace(tmp, self.progress)

    async def run(self) -> int:
        clock = SavedClock(self.settings.db_path.with_name("sendoff.json.clock"))
        if clock.now() < START:
            clock.set(START)
        core = build_core(self.settings, LogNotifier(), clock=clock)
        try:
            # as the console starts: sends cut off by a kill wait for the AM; plans are topped up
            await core.dispatcher.ask_about_unknown(core.dispatcher.recover())
            core.playbook.plan_all()
            first = self.next_step()
            for index in range(first, len(self.steps)):
                await self.play(core, self.steps[index])
                self.done_with(index)
                if index > first and index % RESTART_EVERY == 0:
                    return RESTART
            return 0
        finally:
            await core.dispatcher.courier.close_lanes()
            core.close()

    async def play(self, core: Core, step: Step) -> None:
        moment = START + timedelta(days=step.day)
        if core.clock.now() < moment:
            async for _ in core.dispatcher.run_until(moment):
                pass
        if step.do == "advance":
            return
        if step.do == "record":
            self.record(core, step)
            return
        am, _, argument = step.argument.partition("|")
        record = self.find(core, step.client)
        if record is None or record.get("forgotten"):
            return
        if step.do == "forget":
            Privacy(core.departures).forget(record, actor=am)
            return
        commands = Commands(core, Transport.CONSOLE)
        commands.run(am, Command(step.do, f"{record['client']} {argument}".strip()))

    def record(self, core: Core, step: Step) -> None:
        departures = core.departures
        record = self.find(core, step.client)
        if record is None:
            record = departures.start(step.client, am=step.argument, source=Source.CONSOLE).departure
        while (question := departures.current_question(record)) is not None:
            if step.stop_after is not None and len(departures.state(record).answers) >= step.stop_after:
                return
            answer = step.answers[question.id]
            if answer == "skip":
                record, _ = departures.skip(record, actor=step.argument)
            else:
                record, _ = departures.answer(record, answer, actor=step.argument)

    @staticmethod
    def find(core: Core, client: str) -> Departure | None:
        return next((r for r in core.departures.all() if r["client"] == client), None)


def main(argv: list[str]) -> int:
    folder, seed, departures = Path(argv[0]), int(argv[1]), int(argv[2])
    return asyncio.run(Year(folder, seed, departures).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
