"""The composition root: builds the parts from the settings and hands them out.

Each transport hands in its own notifier (Slack posts, the console prints,
``sendoff report`` logs), so every part is complete when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.departures import Departures
from bot.dispatcher import Dispatcher
from bot.mailer import Composer, make_sender
from bot.notify import Notifier
from bot.pacing import RateCap
from bot.playbook import Playbook
from bot.settings import Settings
from prompts import Prompts, load_prompts
from storage import Store, open_store

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


def build_core(settings: Settings, notifier: Notifier, *, clock: Clock | None = None, store: Store | None = None,
               rate: RateCap | None = None) -> Core:  # fmt: skip
    """Load the prompts first: a broken prompt file must not leave a store open.

    ``rate``: the email caps, for tests; by default the SMTP account's from the settings.
    """
    prompts = load_prompts(settings.prompts_dir)
    clock = clock or SystemClock()
    store = store if store is not None else open_store(settings.db_url or settings.db_path)
    departures = Departures(
        store, prompts, clock, timezone=settings.timezone, currency=settings.currency, admins=settings.admins
    )
    playbook = Playbook(departures, store, clock, team_zone=settings.timezone, stay_years=settings.stay_in_touch_years)
    departures.watchers.append(playbook.on_change)
    # The cap protects an SMTP account's limits; the outbox folder has none.
    if rate is None and settings.smtp_host:
        rate = RateCap(settings.smtp_per_second, settings.smtp_per_day)
    # Two SMTP connections: one composes the next email while the other waits for the server.
    lanes = [make_sender(settings, prompts.messages) for _ in range(SMTP_LANES if settings.smtp_host else 1)]
    dispatcher = Dispatcher(departures, store, clock, Composer(settings, clock, prompts), lanes, notifier,
                            playbook=playbook, rate=rate)  # fmt: skip
    return Core(settings, store, prompts, clock, departures, playbook, dispatcher)
