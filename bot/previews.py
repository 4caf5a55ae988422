"""Previews: a client's next emails, written as files a person opens in a browser before they go.

The same composition as sending (bot/drafts.py), so what is previewed is what
would go, dated as it would go: each file is the HTML part of the email, with
its plain-text twin beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.answers import client_key
from bot.clock import parse_iso
from bot.drafts import Drafts
from bot.mailer import message_part
from bot.playbook import NOT_YET_SENT
from storage import Store
from storage.records import Channel, Departure, TouchKind

# The most emails previewed at once: the next few are what a person checks.
MOST = 5


@dataclass(frozen=True)
class Preview:
    html: Path
    text: Path
    kind: TouchKind
    due: datetime  # local to the client
    subject: str


def preview_folder(data_dir: Path, record: Departure) -> Path:
    """Where a departure's previews go: one folder per client, under the data folder."""
    name = re.sub(r"[^a-z0-9]+", "-", client_key(record["client"])).strip("-") or "client"
    return data_dir / "previews" / f"{record['id']}-{name}"


def write_previews(store: Store, drafts: Drafts, record: Departure, folder: Path) -> list[Preview]:
    """The next ``MOST`` emails planned for ``record``'s client, written under ``folder`` (emptied first)."""
    touches = [t for t in store.find_touches(departure_id=record["id"], statuses=NOT_YET_SENT)
               if t["channel"] is Channel.EMAIL][:MOST]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.htm*"):
        old.unlink()
    for old in folder.glob("*.txt"):
        old.unlink()
    written = []
    for number, touch in enumerate(touches, 1):
        due = parse_iso(touch["due_at"]).astimezone(ZoneInfo(touch["zone"]))
        message = drafts.compose(touch, record, at=due)  # as it will read then: "since December" ages
        stem = f"{number:02d}-{touch['kind'].value.replace('_', '-')}-{due:%Y-%m-%d}"
        html, text = folder / f"{stem}.html", folder / f"{stem}.txt"
        html.write_text(message_part(message, "html"), encoding="utf-8")
        text.write_text(message_part(message, "plain"), encoding="utf-8")
        written.append(Preview(html, text, touch["kind"], due, str(message["Subject"] or "")))
    return written

