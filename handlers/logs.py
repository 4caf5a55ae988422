"""How ``sendoff run`` writes its log: today's text lines, or one JSON object per line (``SENDOFF_LOG_FORMAT=json``).

JSON lines are for log collectors (Loki, CloudWatch, Datadog...): a multi-line
traceback stays inside its record instead of becoming lines of its own, and
fields given with ``extra=`` arrive as fields, not as text to parse.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON = "json"

# What every LogRecord carries; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, exception, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            # Cached on the record, as logging.Formatter does, so that other handlers reuse the text.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                # An extra field never hides one of the fields above.
                line[key if key not in line else f"extra_{key}"] = value
        # default=str: an extra field that JSON cannot hold (a Path, a datetime) still gets logged.
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(format: str, *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr), as JSON lines or as text.

    ``format`` is ``"json"`` for JSON lines; anything else gives text. Handlers set up before are replaced,
    so that calling it twice never writes each line twice.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format.strip().lower() == JSON else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
