"""``configure_logging``: JSON lines for log collectors, or today's text lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from handlers.logs import configure_logging


@contextmanager
def configured(format: str) -> Iterator[io.StringIO]:
    """Logging configured into a buffer, and the root logger put back as it was before the test's phase ends
    (pytest's own capture handlers are on it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging(format, stream=stream)
        yield stream
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_gives_one_object_per_line_with_time_level_logger_and_message():
    with configured("json") as stream:
        logging.getLogger("sendoff").info("planned %d touches", 3)
        logging.getLogger("sendoff.slack").warning("a line\nwith a break")
    first, second = (json.loads(line) for line in lines(stream))
    assert first["level"] == "INFO" and first["logger"] == "sendoff" and first["message"] == "planned 3 touches"
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None  # ISO 8601, with its zone
    assert second == {**second, "level": "WARNING", "logger": "sendoff.slack", "message": "a line\nwith a break"}


def test_json_keeps_the_traceback_inside_the_record():
    with configured("json") as stream:
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("sendoff").exception("the dispatcher failed")
    [line] = lines(stream)
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["message"] == "the dispatcher failed"
    assert record["exception"].startswith("Traceback") and "KeyError: 'missing'" in record["exception"]


def test_json_carries_extra_fields_as_fields_even_those_json_cannot_hold():
    where = Path("/data/sendoff.json")
    extra = {"touch": "acme:check_in:30", "attempts": 2, "where": where, "level": "not the level"}
    with configured("json") as stream:
        logging.getLogger("sendoff").info("touch settled", extra=extra)
    [line] = lines(stream)
    record = json.loads(line)
    assert record["touch"] == "acme:check_in:30" and record["attempts"] == 2 and record["where"] == str(where)
    assert record["level"] == "INFO" and record["extra_level"] == "not the level"


def test_text_is_todays_format():
    with configured("text") as stream:
        logging.getLogger("sendoff").info("stopped")
    [line] = lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sendoff: stopped", line)


def test_anything_but_json_is_text_and_levels_below_info_are_left_out():
    with configured("") as stream:
        logging.getLogger("sendoff").debug("not shown")
        logging.getLogger("sendoff").info("shown")
    [line] = lines(stream)
    assert line.endswith(" INFO sendoff: shown")


def test_configuring_again_replaces_the_handler_so_no_line_is_written_twice():
    with configured("text"):
        stream = io.StringIO()
        configure_logging("JSON", stream=stream)
        logging.getLogger("sendoff").info("once")
    assert [json.loads(line)["message"] for line in lines(stream)] == ["once"]
