"""The composition root: builds the parts from the settings and hands them out."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.departures import Departures
from bot.settings import Settings
from prompts import Prompts, load_prompts
from storage import Store, open_store


@dataclass
class Core:
    """Everything a transport needs; one per process."""

    settings: Settings
    store: Store
    prompts: Prompts
    clock: Clock
    departures: Departures

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
    return Core(settings, store, prompts, clock, departures)
