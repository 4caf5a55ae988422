"""``GET /unsubscribe``: the signed link in each email opts its client out at once.

POST works too: mail apps send it for ``List-Unsubscribe-Post: One-Click``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.app import Core
from bot.privacy import Privacy
from bot.replies import Refusal
from bot.unsubscribe import read_unsubscribe

log = logging.getLogger("sendoff")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>{title}</h1><p>{text}</p></body></html>"""


def _page(status: int, title: str, text: str) -> web.Response:
    return web.Response(status=status, content_type="text/html",
                        text=PAGE.format(title=html.escape(title), text=html.escape(text)))  # fmt: skip


def unsubscribe_page(core: Core) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def unsubscribe(request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            return _page(405, "Not allowed", "Open the link from the email.")
        secret = core.settings.link_secret
        departure_id = read_unsubscribe(secret, dict(request.query)) if secret else None
        if departure_id is None:
            log.info("unsubscribe: a link with a bad signature")
            return _page(400, "This link does not work", "Please use the link from the email as it is, or reply "
                                                          "to the email with \"unsubscribe\".")  # fmt: skip
        try:
            record = core.departures.get(departure_id)
        except Refusal:
            record = None
        if record is not None:
            Privacy(core.departures).opt_out_by_client(record, via="unsubscribe link")
            log.info("departure %s: the client unsubscribed", departure_id)
        # The same answer either way: a link tells nothing about who else is stored.
        return _page(200, "You are unsubscribed", "You will get no more emails from us. Thank you for the time "
                                                  "we worked together.")  # fmt: skip

    return unsubscribe
