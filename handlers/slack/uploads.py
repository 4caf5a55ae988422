"""Files in Slack: the report's chart and exports, the digest's chart.

Uploaded with ``files_upload_v2`` (files.getUploadURLExternal, the upload
itself, files.completeUploadExternal; the old files.upload is retired), which
needs the ``files:write`` scope. ``channel`` must be an id (``C…``, ``D…``):
completeUploadExternal takes no channel names. A chart is drawn in a worker
thread, so the event loop keeps acking Slack's requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError, SlackClientError

from handlers.slack.web_api import SlackOut

log = logging.getLogger("sendoff.slack")


async def upload(out: SlackOut, channel: str, name: str, data: bytes, title: str) -> str | None:
    """Put ``data`` in ``channel`` as the file ``name``; None when done, else why not (also logged)."""
    await out.acks.wait()
    try:
        await out.client.files_upload_v2(channel=channel, filename=name, file=data, title=title)
    except SlackApiError as err:
        error = str(err.response.get("error", err.response.status_code))
        log.warning("Slack upload of %s failed: %s", name, error)
        return error
    except SlackClientError as err:  # the upload URL refused the bytes, or could not be reached
        log.warning("Slack upload of %s failed: %s", name, err)
        return type(err).__name__
    return None


async def drawn(draw: Callable[[], bytes]) -> bytes:
    """A chart, drawn off the event loop (it takes a few hundred milliseconds)."""
    return await asyncio.to_thread(draw)
