"""``sendoff preview <client>``: a client's next emails as HTML files, and where they are."""

from __future__ import annotations

from dataclasses import replace

from bot.app import build_core
from bot.chat_commands import Commands, Transport
from bot.clock import data_clock
from bot.command_words import Command
from bot.notify import LogNotifier
from bot.settings import Settings
from handlers.console import Lines

# Whoever runs the command on the machine that holds the data may read all of it, as with ``sendoff report``.
OPERATOR = "operator"


def preview_emails(settings: Settings, client: str) -> int:
    core = build_core(replace(settings, admins=settings.admins | {OPERATOR}), LogNotifier(),
                      clock=data_clock(settings.db_path))  # fmt: skip
    try:
        result = Commands(core, Transport.CONSOLE).run(OPERATOR, Command("preview", client))
        lines = Lines(core.prompts.messages)
        for part in result.parts:
            print("\n".join(lines.part(part)))
        return 1 if result.warned else 0
    finally:
        core.close()
