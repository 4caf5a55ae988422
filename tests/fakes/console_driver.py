"""`sendoff console` as a person at a pipe drives it: a real process, answers given by question id.

The console prints a question as a header, its numbered options and a hint:

    [Why they are leaving · 4/17] What is the main reason Acme Corp is leaving?
      1. Price or budget
      ...
      (back, later)

The driver reads the header's text against the interview script (prompts), so
a test says what to answer to which question, never in which order they come.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prompts import Prompts, Question, load_prompts

HEADER = re.compile(r"^\[(?P<stage>.+) · (?P<number>\d+)/(?P<total>\d+)\] (?P<text>.+)$")
OPTION = re.compile(r"^  (?P<number>\d+)\. (?P<label>.+)$")
HINT = re.compile(r"^  \(.*\)$")
TIMEOUT = 20.0


class Typed(str):
    """An answer sent exactly as written, even where it names an option (to test typing a choice's name)."""


Answer = str | Iterable[str]  # several answers: the same question is asked again (a wrong answer, back)


@dataclass(frozen=True)
class Asked:
    question: Question
    options: tuple[str, ...]  # the labels, as numbered on screen


def console_env(folder: Path) -> dict[str, str]:
    """The environment of a first-time user: none of the developer's settings, data under ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDOFF_", "SLACK_", "SMTP_"))}
    # PORT=0: the console serves its clients' pages on a free port, never a fixed one
    env.update(SENDOFF_DB=str(folder / "data" / "sendoff.json"), SENDOFF_TIMEZONE="Europe/Berlin", USER="ann", PORT="0")
    return env


class Console:
    """One ``python -m handlers.cli console`` process; every line it prints is kept in ``transcript``."""

    def __init__(self, folder: Path, prompts: Prompts | None = None, timeout: float = TIMEOUT) -> None:
        self.prompts = prompts or load_prompts()
        self.timeout = timeout
        self.transcript: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "console"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            env=console_env(folder),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()  # None: the output ended
        self._errors: list[str] = []
        self._ended = False
        # Threads, so that a read can time out without polling; stderr is drained so a chatty log never blocks.
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain_errors, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _drain_errors(self) -> None:
        assert self.process.stderr is not None
        self._errors.extend(self.process.stderr)

    @property
    def output(self) -> str:
        return "\n".join(self.transcript)

    @property
    def errors(self) -> str:
        return "".join(self._errors)

    # -- talking ---------------------------------------------------------------------------
    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_line(self, deadline: float) -> str | None:
        """The next line printed, or None once the process has closed its output."""
        if self._ended:
            return None
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the console printed nothing more within {self.timeout} s{self._tail()}") from None
        if line is None:
            self._ended = True
            return None
        self.transcript.append(line)
        return line

    def expect(self, text: str) -> list[str]:
        """Read until a line contains ``text``; the lines read, that one last."""
        deadline = time.monotonic() + self.timeout
        seen = []
        while (line := self.read_line(deadline)) is not None:
            seen.append(line)
            if text in line:
                return seen
        raise AssertionError(f"the console ended without printing {text!r}{self._tail()}")

    def command(self, line: str, then: str) -> list[str]:
        """Send ``line`` and read until ``then`` is printed."""
        self.send(line)
        return self.expect(then)

    def next_question(self) -> Asked:
        """Read until a whole question is on screen (its hint line ends it)."""
        deadline = time.monotonic() + self.timeout
        while (line := self.read_line(deadline)) is not None:
            header = HEADER.match(line)
            if header is None:
                continue
            question = self.identify(header["stage"], header["text"])
            options = []
            while (line := self.read_line(deadline)) is not None and not HINT.match(line):
                option = OPTION.match(line)
                assert option is not None, f"not an option of {question.id}: {line!r}{self._tail()}"
                options.append(option["label"])
            return Asked(question, tuple(options))
        raise AssertionError(f"the console ended while a question was expected{self._tail()}")

    def interview(self, answers: Mapping[str, Answer]) -> list[str]:
        """Answer each question asked from ``answers`` (question id -> answer, or answers in turn).

        Returns, once every answer is given, the ids of the questions in the order asked.
        A question with no answer left fails the test: the interview went where the test did not expect.
        """
        left = {qid: [answer] if isinstance(answer, str) else list(answer) for qid, answer in answers.items()}
        asked = []
        while any(left.values()):
            shown = self.next_question()
            qid = shown.question.id
            asked.append(qid)
            assert left.get(qid), f"asked {qid!r} with no answer left; still to give: {left}{self._tail()}"
            self.send(self.choice(shown, left[qid].pop(0)))
        return asked

    def choice(self, shown: Asked, answer: str) -> str:
        """What to type for ``answer``: an option id becomes its number on screen, anything else goes as it is."""
        if isinstance(answer, Typed) or not answer or not shown.options:
            return str(answer)
        option = shown.question.option(answer)
        for number, label in enumerate(shown.options, 1):
            if option is not None and label == option.label:
                return str(number)
            # Options built from earlier answers (time zones) are not in the script; their label starts with the id.
            if option is None and shown.question.options_from and label.startswith(answer):
                return str(number)
        return answer

    def identify(self, stage_title: str, text: str) -> Question:
        """The question of the script with this stage title and this text (its placeholders filled in)."""
        script = self.prompts.script
        found = [q for q in script.questions()
                 if script.stage(q.stage).title == stage_title and text_pattern(q.text).fullmatch(text)]  # fmt: skip
        assert len(found) == 1, f"{len(found)} questions of the script read {text!r}{self._tail()}"
        return found[0]

    # -- ending ----------------------------------------------------------------------------
    def close(self) -> int:
        """End the input, as at the end of a piped file; read the rest and return the exit code."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        deadline = time.monotonic() + self.timeout
        while self.read_line(deadline) is not None:
            pass
        return self.process.wait(timeout=self.timeout)

    def kill(self) -> None:
        """SIGKILL, as when the machine dies: no clean-up runs."""
        self.process.kill()
        self.process.wait(timeout=self.timeout)

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):  # stdin of a killed process
                    stream.close()

    def _tail(self) -> str:
        shown = "\n".join(self.transcript[-25:])
        errors = f"\nstderr:\n{self.errors[-2000:]}" if self._errors else ""
        return f"\nlast lines:\n{shown}{errors}"


def text_pattern(template: str) -> re.Pattern[str]:
    """A question's text as printed: its placeholders ({client}, {am}) stand for any words."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(".+?")
    return re.compile("".join(parts))


def run_session(folder: Path, lines: Iterable[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A whole piped session (``sendoff console < session.txt``), for a test that needs no answers by id."""
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", "console"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=folder,
        env=console_env(folder),
        timeout=timeout,
    )
