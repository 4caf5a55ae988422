"""While the console runs, the pages its emails link to are served on 127.0.0.1.

The exit note's form and the unsubscribe page answer at
``http://127.0.0.1:<PORT>``, so the whole flow can be tried from the link in
an .eml of data/outbox/. The links are signed with a key kept beside the data
(``link.key``, readable by its owner only) unless SLACK_SIGNING_SECRET or
WEBHOOK_SECRET is set: links from an earlier run keep working after a restart.
The socket is bound before the core is built, so the emails know the address.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from bot.app import Core
from bot.client_links import FORM_PATH
from bot.settings import Settings
from bot.unsubscribe import PATH as UNSUBSCRIBE_PATH
from handlers.form_page import ROUTE as FORM_ROUTE
from handlers.form_page import form_page
from handlers.unsubscribe_page import unsubscribe_page

HOST = "127.0.0.1"
KEY_FILE = "link.key"


def _link_key(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    with contextlib.suppress(OSError):
        kept = path.read_text(encoding="utf-8").strip()
        if len(kept) >= 32:
            return kept
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


def bind_client_pages(settings: Settings) -> tuple[Settings, socket.socket | None]:
    """Settings whose links point at the console's own pages, and the socket they are served on; the
    settings unchanged (and no socket) when SENDOFF_PUBLIC_URL is set or the port is taken."""
    if settings.public_url:
        return settings, None
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((HOST, settings.port))
    except OSError:
        listening.close()
        return settings, None
    listening.listen(16)
    port = listening.getsockname()[1]
    key = settings.link_secret or _link_key(settings.data_dir)
    served = replace(settings, public_url=f"http://{HOST}:{port}", webhook_secret=settings.webhook_secret or key)
    return served, listening


async def serve_client_pages(core: Core, listening: socket.socket) -> web.AppRunner:
    """Serve the form and the unsubscribe page on ``listening`` until the runner is cleaned up."""
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_route("*", UNSUBSCRIBE_PATH, unsubscribe_page(core))
    app.router.add_route("*", FORM_ROUTE, form_page(core))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listening).start()
    return runner


__all__ = ["FORM_PATH", "bind_client_pages", "serve_client_pages"]
