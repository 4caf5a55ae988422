"""``/unsubscribe``: the signed link in each email, as RFC 8058 asks.

A POST opts the client out at once (mail apps send it for
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; the page's button sends
it too) and says so again when repeated. A GET (or HEAD) only shows a page
with that button: the link scanners of corporate mail filters open every
link, and must not unsubscribe anyone. A forged or damaged link gets 400 and
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.app import Core
from bot.privacy import Privacy
from bot.replies import Refusal
from bot.unsubscribe import read_unsubscribe
from storage.records import Departure

log = logging.getLogger("sendoff")

TEMPLATE = "unsubscribe.html.j2"
READING = frozenset({"GET", "HEAD"})


def unsubscribe_page(core: Core) -> Callable[[web.Request], Awaitable[web.Response]]:
    def page(status: int, state: str, request: web.Request) -> web.Response:
        text = core.prompts.render_template(TEMPLATE, company=core.settings.company or "", state=state,
                                            action=request.path_qs)  # fmt: skip
        headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
        return web.Response(status=status, content_type="text/html", text=text, headers=headers)

    def departure(departure_id: int) -> Departure | None:
        try:
            record = core.departures.get(departure_id)
        except Refusal:
            return None
        return None if record is None or record.get("forgotten") else record

    async def unsubscribe(request: web.Request) -> web.Response:
        if request.method not in READING and request.method != "POST":
            return web.Response(status=405, headers={"Allow": "GET, HEAD, POST"}, text="Open the link from the email.")
        secret = core.settings.link_secret
        departure_id = read_unsubscribe(secret, dict(request.query)) if secret else None
        if departure_id is None:
            log.info("unsubscribe: a link with a bad signature")
            return page(400, "broken", request)
        record = departure(departure_id)
        # The same answers whether or not the departure is still stored: a link tells nothing about others.
        already = record is not None and bool(record.get("opted_out"))
        if request.method in READING:
            return page(200, "already" if already else "ask", request)
        if record is not None and not already:
            Privacy(core.departures).opt_out_by_client(record, via="unsubscribe link")
            log.info("departure %s: the client unsubscribed", departure_id)
        return page(200, "already" if already else "done", request)

    return unsubscribe
