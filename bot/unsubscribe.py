"""Unsubscribe links: signed with HMAC so that only the link in the email can opt its client out."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

PATH = "/unsubscribe"


def _signature(secret: str, departure_id: int) -> str:
    message = f"sendoff-unsubscribe:{departure_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def unsubscribe_link(base_url: str, secret: str, departure_id: int) -> str:
    return f"{base_url}{PATH}?{urlencode({'d': departure_id, 's': _signature(secret, departure_id)})}"


def read_unsubscribe(secret: str, query: dict[str, str]) -> int | None:
    """The departure id a link names, if its signature holds; None otherwise."""
    raw, signature = query.get("d", ""), query.get("s", "")
    if not raw.isdigit() or len(raw) > 12:
        return None
    departure_id = int(raw)
    return departure_id if hmac.compare_digest(_signature(secret, departure_id), signature) else None
