"""Links sent to a client that act on their departure: signed, and valid for a while.

A link names the departure and the day it was sent, signed with HMAC-SHA256 so
that nobody can make one for another departure or stretch its life; it is
checked against the bot's clock, so a moved clock (the console's /advance)
ages it too. The exit note's form link lives 30 days from when it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FORM_LIFETIME = timedelta(days=30)
FORM_PATH = "/form"
MAX_TOKEN = 200  # longer than any link this module makes: anything longer is refused unread


@dataclass(frozen=True)
class LinkCheck:
    """What a link says, once read: its departure, when it was sent, and whether it still holds."""

    departure_id: int
    sent_at: datetime
    expired: bool


def _sign(secret: str, purpose: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"sendoff-{purpose}:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def client_token(secret: str, purpose: str, departure_id: int, sent_at: datetime) -> str:
    """``<id>.<sent, unix seconds>.<signature>``: short enough for a link, meaningless without the secret."""
    body = f"{departure_id}.{int(sent_at.astimezone(UTC).timestamp())}"
    return f"{body}.{_sign(secret, purpose, body)}"


def read_client_token(secret: str, purpose: str, token: str, now: datetime,
                      lifetime: timedelta = FORM_LIFETIME) -> LinkCheck | None:  # fmt: skip
    """The link's departure and age if ``token`` was signed for ``purpose`` with ``secret``; None if forged,
    damaged or made for something else. An expired link still reads (the page says so), but ``expired``."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 2:
        return None
    raw_id, raw_sent, signature = token.split(".")
    if not (raw_id.isdigit() and raw_sent.isdigit()) or len(raw_id) > 12 or len(raw_sent) > 12:
        return None
    if not hmac.compare_digest(_sign(secret, purpose, f"{raw_id}.{raw_sent}"), signature):
        return None
    sent_at = datetime.fromtimestamp(int(raw_sent), UTC)
    return LinkCheck(int(raw_id), sent_at, expired=now >= sent_at + lifetime or now < sent_at - timedelta(days=1))


def form_link(base_url: str, secret: str, departure_id: int, sent_at: datetime) -> str:
    return f"{base_url}{FORM_PATH}/{client_token(secret, 'form', departure_id, sent_at)}"
