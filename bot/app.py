"""The composition root: builds the parts from the settings and hands them out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.departures import Departures
from bot.dispatcher import Dispatcher, Notice, RateCap
from bot.mailer import Composer, make_sender
from bot.playbook import Playbook
from bot.settings import Settings
from prompts import Prompts, load_prompts
from storage import Store, open_store

log = logging.getLogger("sendoff")

SMTP_LANES = 2


@dataclass
class Core:
    """Everything a transport needs; one per process."""

    settings: Settings
    store: Store
    prompts: Prompts
    clock: Clock
    departures: Departures
    playbook: Playbook
    dispatcher: Dispatcher

    def close(self) -> None:
        self.store.close()


def build_core(settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> Core:
    """Load the prompts first: a broken prompt file must not leave a store open."""
    prompts = load_prompts(settings.prompts_dir)
    clock = clock or SystemClock()
    store = store if store is not None else open_store(settings.db_path)
    departures = Departures(
        store, prompts, clock, timezone=settings.timezone, currency=settings.currency, admins=settings.admins
    )
    playbook = Playbook(departures, store, clock, team_zone=settings.timezone)
    departures.watchers.append(playbook.on_change)
    # The cap protects an SMTP account's limits; the outbox folder has none.
    rate = RateCap(settings.smtp_per_second, settings.smtp_per_day) if settings.smtp_host else None
    # Two SMTP connections: one composes the next email while the other waits for the server.
    senders = [make_sender(settings) for _ in range(SMTP_LANES if settings.smtp_host else 1)]
    dispatcher = Dispatcher(departures, store, clock, Composer(settings, clock), senders, _log_notice,
                            playbook=playbook, rate=rate)  # fmt: skip
    return Core(settings, store, prompts, clock, departures, playbook, dispatcher)


async def _log_notice(notice: Notice) -> None:
    """Until a transport takes over the notices (the console prints them, Slack DMs them)."""
    log.info("notice for %s: %s", notice.recipient, notice.text)
