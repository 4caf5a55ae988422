"""A notifier (bot.notify.Notifier) that keeps what it was told, for tests that build the core themselves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.notify import Availability, Notice


@dataclass
class RecordingNotifier:
    notices: list[Notice] = field(default_factory=list)
    away: set[str] = field(default_factory=set)  # users whose status says they are out of office
    zones: dict[str, str] = field(default_factory=dict)  # user -> their own time zone
    drafts: bool = False  # whether a person could approve drafts here, as in Slack
    # Set at each delivery; a test clears it before waiting for the next one.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def shows_drafts(self) -> bool:
        return self.drafts

    async def deliver(self, notice: Notice) -> None:
        self.notices.append(notice)
        self.arrived.set()

    async def presence(self, user: str) -> Availability:
        return Availability(self.zones.get(user), away=user in self.away)

    def touch_keys(self) -> list[str]:
        """The keys of the touches whose notices were delivered, in order."""
        return [n.touch["key"] for n in self.notices if n.touch is not None]
