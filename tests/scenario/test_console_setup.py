"""The console's first start: in a terminal it asks once who the emails come from; piped, it never asks."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.console_driver import Console, console_env

TIMEOUT = 20.0


class Terminal:
    """``sendoff console`` on a pseudo-terminal, as a person at a keyboard runs it."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "handlers.cli", "console"], stdin=slave, stdout=slave,
                                        stderr=subprocess.PIPE, cwd=folder, env=env)  # fmt: skip
        os.close(slave)
        self.seen = ""

    def expect(self, text: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never printed {text!r}; printed:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the process ended
                    assert text in self.seen, f"ended without printing {text!r}; printed:\n{self.seen}"
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def quit(self) -> int:
        self.type("/quit")
        code = self.process.wait(timeout=TIMEOUT)
        os.close(self.master)
        return code


def test_a_terminal_is_asked_once_and_the_answers_are_kept_with_the_data(tmp_path):
    env = console_env(tmp_path)
    first = Terminal(tmp_path, env)
    first.expect("Your company's name:")
    first.type("Northwind")
    first.expect("Your name, as clients know you:")
    first.type("Ana Ruiz")
    first.expect("Your email address, for clients' replies:")
    first.type("ana at northwind")
    first.expect("That does not look right")
    first.type("ana@northwind.example")
    first.expect("you> ")
    assert first.quit() == 0
    kept = json.loads((tmp_path / "data" / "console.json").read_text())
    assert (kept["company"], kept["am_name"], kept["am_email"]) == ("Northwind", "Ana Ruiz", "ana@northwind.example")
    again = Terminal(tmp_path, env)
    seen = again.expect("you> ")
    assert again.quit() == 0
    assert "Your company's name" not in seen and "Emails from this console are signed" not in seen


def test_a_terminal_asks_only_for_what_the_environment_does_not_say(tmp_path):
    env = {**console_env(tmp_path), "SENDOFF_COMPANY": "Northwind", "SENDOFF_AM_EMAIL": "ana@northwind.example"}
    terminal = Terminal(tmp_path, env)
    seen = terminal.expect("Your name, as clients know you:")
    terminal.type("")  # skipped: the login name stands in, and the console says so
    seen = terminal.expect("you> ")
    assert terminal.quit() == 0
    assert "Your company's name" not in seen and "Your email address" not in seen
    assert "Emails from this console are signed Ann (company: Northwind" in seen and "SENDOFF_AM_NAME" in seen


def test_piped_input_is_never_asked_and_hears_the_defaults_once(tmp_path):
    with Console(tmp_path) as console:
        console.expect("Emails from this console are signed Ann (company: -; replies to: -)")
        console.command("/help", then="Commands:")
        assert console.close() == 0
    assert "Your company's name" not in console.output
    assert console.output.count("Emails from this console are signed") == 1
    assert not (tmp_path / "data" / "console.json").exists()
