"""A CRM's report of a departure (``POST /hooks/departure``), read and validated.

The fields are those of DESIGN.md: ``client`` and ``account_manager_email``
are required; ``event_id``, ``contact_email``, ``mrr`` and ``reason`` are
optional. A value is checked by the same parser as the interview's answer to
the question of the same role, so a CRM cannot store what a person could not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.answers import AnswerError, Context, neutralise, parse_answer, parse_client_name, parse_email
from prompts import Prompts

MAX_EVENT_ID = 200
MAX_REASON = 500
# payload field -> the interview role it answers
PREFILLED = {"mrr": "revenue", "contact_email": "contact_email", "reason": "reason"}


class CrmError(ValueError):
    """The payload cannot be used; str() says which field and why."""


@dataclass(frozen=True)
class CrmDeparture:
    client: str
    am_email: str
    event_id: str | None
    prefill: dict[str, Any] = field(default_factory=dict)  # role -> stored value
    context: str | None = None


def read_crm_departure(data: Any, prompts: Prompts, ctx: Context) -> CrmDeparture:
    if not isinstance(data, dict):
        raise CrmError("the body must be a JSON object")
    client = _required(data, "client")
    try:
        client = parse_client_name(client)
    except AnswerError as err:
        raise CrmError(f"client: {err}") from None
    try:
        am_email = parse_email(_required(data, "account_manager_email"))
    except AnswerError as err:
        raise CrmError(f"account_manager_email: {err}") from None
    event_id = _string(data, "event_id", allow_number=True)
    if event_id is not None and len(event_id) > MAX_EVENT_ID:
        raise CrmError(f"event_id is longer than {MAX_EVENT_ID} characters")
    prefill: dict[str, Any] = {}
    notes: list[str] = []
    for name, role in PREFILLED.items():
        raw = _string(data, name, allow_number=name == "mrr")
        question = prompts.script.by_role(role)
        if raw is None or question is None:
            continue
        try:
            prefill[role] = parse_answer(question, raw, ctx).value
        except AnswerError as err:
            if name != "reason":
                raise CrmError(f"{name}: {err}") from None
            # A reason in the CRM's own words is kept for the AM, who then picks the category.
            notes.append(prompts.messages.render("crm_reason", reason=neutralise(raw)[:MAX_REASON]))
    return CrmDeparture(client, am_email, event_id, prefill, "\n".join(notes) or None)


def _required(data: dict[str, Any], name: str) -> str:
    value = _string(data, name)
    if value is None:
        raise CrmError(f"{name} is required")
    return value


def _string(data: dict[str, Any], name: str, *, allow_number: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise CrmError(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) that JSON allows and no text is made of
        raise CrmError(f"{name} is not valid text") from None
    return value
