"""The console's first start: who the emails come from.

Emails go out as "Ana Ruiz at Northwind <MAIL_FROM>", with replies to the AM.
In Slack the AM's name and address come from their profile; the console's AM
is named by SENDOFF_COMPANY, SENDOFF_AM_NAME and SENDOFF_AM_EMAIL. In an
interactive terminal, the first start asks once for whichever of them is not
set and keeps the answers with the data (``console.json`` beside the store);
with piped input it never asks, so a scripted session stays scripted, and says
once at the start which defaults it used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.settings import Settings, is_email_address, is_plain_name
from prompts import Messages

SETUP_FILE = "console.json"
# What is asked, in order: the setting's field, its variable, and the message that asks for it.
ASKED = (
    ("company", "SENDOFF_COMPANY", "setup_ask_company"),
    ("am_name", "SENDOFF_AM_NAME", "setup_ask_am_name"),
    ("am_email", "SENDOFF_AM_EMAIL", "setup_ask_am_email"),
)
TRIES = 3


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # never written, or unreadable: asked again (nothing else depends on it)
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(values, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _valid(field: str, text: str) -> bool:
    return is_email_address(text) if field == "am_email" else is_plain_name(text)


def who_sends(settings: Settings, messages: Messages, *, interactive: bool, ask: Callable[[str], str],
              write: Callable[[str], None]) -> Settings:  # fmt: skip
    """``settings`` with the console's company and AM filled in: from the environment, else from what was
    answered before, else asked now (in a terminal, once), else the defaults, which are then said."""
    path = settings.data_dir / SETUP_FILE
    saved = _read(path)
    values: dict[str, str | None] = {field: getattr(settings, field) or saved.get(field) or None
                                     for field, _, _ in ASKED}  # fmt: skip
    missing = [(field, key) for field, _, key in ASKED if values[field] is None]
    if missing and interactive and saved.get("asked") != "yes":
        write(messages.render("setup_intro"))
        for field, key in missing:
            for _ in range(TRIES):
                try:
                    answer = ask(messages.render(key) + " ").strip()
                except EOFError:
                    answer = ""
                if not answer or _valid(field, answer):
                    break
                write(messages.render("setup_not_valid"))
            else:
                answer = ""
            if answer:
                values[field] = saved[field] = answer
        saved["asked"] = "yes"
        _write(path, saved)
    filled = replace(settings, company=values["company"], am_email=values["am_email"],
                     am_name=values["am_name"] or settings.console_user.title())  # fmt: skip
    if any(getattr(settings, field) is None and field not in saved for field, _, _ in ASKED):
        variables = ", ".join(variable for field, variable, _ in ASKED if getattr(settings, field) is None)
        write(messages.render("setup_defaults", name=filled.am_name or "", company=filled.company or "-",
                              reply=filled.am_email or "-", variables=variables))  # fmt: skip
    return filled
