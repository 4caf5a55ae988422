"""Who may see and change a departure: its account manager, the admins, and for the save
outcome, the owner of the save attempt."""

from __future__ import annotations

import re

from bot.interview import Interview, InterviewState
from bot.replies import Refusal
from storage.records import NewDeparture

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class Access:
    def __init__(self, interview: Interview, admins: frozenset[str]) -> None:
        self.interview = interview
        self.admins = admins

    def may_see(self, record: NewDeparture, user: str) -> bool:
        """Details of a departure are for its account manager and the admins."""
        return user == record["am"] or user in self.admins

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def save_owner(self, record: NewDeparture) -> str | None:
        """The Slack user the save-owner answer names (``<@U123>``), if it names one."""
        value = self.interview.value_of(InterviewState.from_record(record), "save_owner")
        found = _MENTION.search(str(value or ""))
        return found.group(1) if found else None

    def require(self, record: NewDeparture, user: str) -> None:
        if not self.may_see(record, user):
            raise Refusal("not_allowed", client=record["client"])
