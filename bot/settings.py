"""Configuration, from the environment and an optional ``.env`` file.

The environment always wins over ``.env``. Every variable is documented in
``.env.example``. A setting that is present but malformed is an error for every
command; what Slack needs is only required by ``sendoff run``.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from storage import database_url, mask_url

SLACK_APPS = "https://api.slack.com/apps"
LOG_FORMATS = ("text", "json")


class SettingsError(Exception):
    """One or more settings are missing or malformed; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    # The TinyDB file; with PostgreSQL (``db_url``) where it would be, in the data folder (SENDOFF_DATA_DIR),
    # so that the files kept beside the data (the console's clock, the outbox, previews, updates) stay local.
    db_path: Path = Path("data/sendoff.json")
    # SENDOFF_DB=postgresql://...: the database, as a postgresql+asyncpg:// URL (it may hold a password).
    db_url: str | None = field(default=None, repr=False)
    prompts_dir: Path | None = None
    timezone: str = "UTC"
    currency: str = "EUR"
    channel: str | None = None
    admins: frozenset[str] = field(default_factory=frozenset)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: str = "starttls"
    mail_from: str | None = None
    smtp_per_second: float = 5.0
    smtp_per_day: int = 1000
    public_url: str | None = None
    stay_in_touch_years: int = 3
    update_gap_days: int = 30  # SENDOFF_UPDATE_GAP_DAYS: no client gets two updates closer than this
    log_format: str = "text"  # SENDOFF_LOG_FORMAT: "json" for one JSON object per line, for a log collector
    webhook_secret: str | None = field(default=None, repr=False)
    port: int = 3000
    console_user: str = "you"
    company: str | None = None  # SENDOFF_COMPANY: who the emails come from ("Ana Ruiz at Northwind")
    am_name: str | None = None  # SENDOFF_AM_NAME: the console's account manager
    am_email: str | None = None  # SENDOFF_AM_EMAIL: their address, where clients' replies go
    logo_url: str | None = None  # SENDOFF_LOGO_URL: an https image shown at the top of each email

    @property
    def data_dir(self) -> Path:
        return self.db_path.parent

    @property
    def db_shown(self) -> str:
        """Where the data is, for messages: the file, or the database URL with its password masked."""
        return mask_url(self.db_url) if self.db_url is not None else str(self.db_path)

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def link_secret(self) -> str | None:
        """The key that signs unsubscribe links: one of the secrets HTTP mode has anyway."""
        return self.slack_signing_secret or self.webhook_secret

    def problems_for_run(self) -> list[str]:
        """What ``sendoff run`` needs beyond a well-formed configuration."""
        problems = []
        if not self.slack_bot_token:
            problems.append(
                f"SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from "
                f"{SLACK_APPS} > your app > OAuth & Permissions."
            )
        if not self.slack_app_token and not self.slack_signing_secret:
            problems.append(
                f"SLACK_SIGNING_SECRET is not set (needed in HTTP mode): copy it from {SLACK_APPS} > "
                f"your app > Basic Information > App Credentials, or set SLACK_APP_TOKEN for Socket Mode."
            )
        return problems


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return "you"


def _env(environ: Mapping[str, str] | None, dotenv: Path | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return {k: v.strip() for k, v in merged.items() if v is not None and v.strip() != ""}


def is_plain_name(text: str) -> bool:
    """A name that can stand in an email's From: short, one line, no address characters."""
    return 0 < len(text.strip()) <= 80 and not any(c in text for c in "\r\n<>@\"")


def is_email_address(text: str) -> bool:
    return re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", text) is not None


def _database(env: Mapping[str, str], problems: list[str]) -> tuple[Path, str | None]:
    """SENDOFF_DB: a file path (TinyDB), or a PostgreSQL URL; then SENDOFF_DATA_DIR holds the local files.

    A problem never repeats the URL: it may hold a password.
    """
    raw = env.get("SENDOFF_DB", "data/sendoff.json")
    folder = env.get("SENDOFF_DATA_DIR")
    try:
        url = database_url(raw)
    except ValueError as err:
        problems.append(f"SENDOFF_DB: {err}.")
        return Path("data/sendoff.json"), None
    if url is not None:
        return Path(folder or "data") / "sendoff.json", url
    path = Path(raw)
    if folder is not None and Path(folder) != path.parent:
        problems.append(f"SENDOFF_DATA_DIR={folder!r} is for SENDOFF_DB=postgresql://...: with a file, the "
                        f"local files sit beside it, in {str(path.parent)!r}. Remove SENDOFF_DATA_DIR, "
                        f"or move the file.")  # fmt: skip
    return path, None


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Settings from ``environ`` (default: the process environment) over ``dotenv``."""
    env = _env(environ, dotenv)
    problems: list[str] = []

    def port_of(name: str, default: int | None, *, any_free: bool = False) -> int | None:
        """``any_free``: 0 is allowed, for a free port the system picks."""
        raw = env.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not (0 if any_free else 1) <= int(raw) < 65536:
            problems.append(f"{name}={raw!r} is not a port number (1-65535{', or 0 for any free one' * any_free}).")
            return default
        return int(raw)

    timezone = env.get("SENDOFF_TIMEZONE", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"SENDOFF_TIMEZONE={timezone!r} is not an IANA time zone, such as Europe/Berlin.")
        timezone = "UTC"

    currency = env.get("SENDOFF_CURRENCY", "EUR").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        problems.append(f"SENDOFF_CURRENCY={currency!r} is not a three-letter currency code, such as EUR.")
        currency = "EUR"

    security = env.get("SMTP_SECURITY", "starttls").lower()
    if security not in ("starttls", "tls", "none"):
        problems.append(f"SMTP_SECURITY={security!r} must be starttls, tls or none.")

    for name, prefix, where in (
        ("SLACK_BOT_TOKEN", "xoxb-", "OAuth & Permissions"),
        ("SLACK_APP_TOKEN", "xapp-", "Basic Information > App-Level Tokens (scope connections:write)"),
    ):
        value = env.get(name)
        if value is not None and not value.startswith(prefix):
            problems.append(f"{name} must start with {prefix}: copy it from {SLACK_APPS} > your app > {where}.")

    channel = env.get("SENDOFF_CHANNEL")
    if channel is not None and not re.fullmatch(r"#?[\w.-]{1,80}", channel):
        problems.append(f"SENDOFF_CHANNEL={channel!r} must be a channel id (C0123...) or a name such as #departures.")

    mail_from = env.get("MAIL_FROM")
    if mail_from is not None and ("\n" in mail_from or "\r" in mail_from or "@" not in mail_from):
        problems.append("MAIL_FROM must be one email address, such as Sendoff <team@example.com>.")

    prompts_dir = env.get("SENDOFF_PROMPTS")
    if prompts_dir is not None and not Path(prompts_dir).is_dir():
        problems.append(f"SENDOFF_PROMPTS={prompts_dir!r} is not a folder.")

    def number_of(name: str, default: float, kind: type[int] | type[float]) -> float:
        raw = env.get(name)
        if raw is None:
            return default
        try:
            value: float = kind(raw)
        except ValueError:
            value = -1
        if value < 0:
            problems.append(f"{name}={raw!r} must be a number, 0 or more (0: no limit).")
            return default
        return value

    per_second = number_of("SMTP_RATE_PER_SECOND", 5.0, float)
    per_day = int(number_of("SMTP_RATE_PER_DAY", 1000, int))

    public_url = env.get("SENDOFF_PUBLIC_URL")
    if public_url is not None:
        public_url = public_url.rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url):
            problems.append(f"SENDOFF_PUBLIC_URL={public_url!r} must be the bot's public base URL, "
                            "such as https://sendoff.example.com.")  # fmt: skip
        elif not (env.get("SLACK_SIGNING_SECRET") or env.get("WEBHOOK_SECRET")):
            problems.append("SENDOFF_PUBLIC_URL needs SLACK_SIGNING_SECRET or WEBHOOK_SECRET to sign "
                            "unsubscribe links.")  # fmt: skip

    def whole_number(name: str, default: int, most: int, unit: str, why: str) -> int:
        raw = env.get(name)
        if raw is None:
            return default
        if raw.isdigit() and 1 <= int(raw) <= most:
            return int(raw)
        problems.append(f"{name}={raw!r} must be a whole number of {unit}, 1 to {most}: {why}")
        return default

    gap_days = whole_number("SENDOFF_UPDATE_GAP_DAYS", 30, 365, "days",
                            "the least time between two updates to one client.")  # fmt: skip
    stay_years = whole_number("SENDOFF_STAY_IN_TOUCH_YEARS", 3, 50, "years",
                              "how long greetings go on after a departure ends.")  # fmt: skip

    log_format = env.get("SENDOFF_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        problems.append(f"SENDOFF_LOG_FORMAT={log_format!r} must be one of {', '.join(LOG_FORMATS)}.")
        log_format = "text"

    named: dict[str, str | None] = {}
    for name in ("SENDOFF_COMPANY", "SENDOFF_AM_NAME"):
        value = env.get(name)
        if value is not None and not is_plain_name(value):
            problems.append(f"{name}={value!r} must be a plain name of at most 80 characters, such as Northwind.")
            value = None
        named[name] = value
    am_email = env.get("SENDOFF_AM_EMAIL")
    if am_email is not None and not is_email_address(am_email):
        problems.append(f"SENDOFF_AM_EMAIL={am_email!r} must be one email address, such as ana@northwind.example.")
        am_email = None
    logo_url = env.get("SENDOFF_LOGO_URL")
    if logo_url is not None and not re.fullmatch(r"https://[^\s\"'<>]+", logo_url):
        problems.append(f"SENDOFF_LOGO_URL={logo_url!r} must be an https:// address of an image.")
        logo_url = None

    db_path, db_url = _database(env, problems)
    smtp_port = port_of("SMTP_PORT", None)
    port = port_of("PORT", 3000, any_free=True)
    if problems:
        raise SettingsError(problems)
    return Settings(
        db_path=db_path,
        db_url=db_url,
        prompts_dir=Path(prompts_dir) if prompts_dir else None,
        timezone=timezone,
        currency=currency,
        channel=channel,
        admins=frozenset(a.strip() for a in env.get("SENDOFF_ADMINS", "").split(",") if a.strip()),
        slack_bot_token=env.get("SLACK_BOT_TOKEN"),
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET"),
        slack_app_token=env.get("SLACK_APP_TOKEN"),
        slack_api_url=env.get("SLACK_API_URL"),
        smtp_host=env.get("SMTP_HOST"),
        smtp_port=smtp_port,
        smtp_username=env.get("SMTP_USERNAME"),
        smtp_password=env.get("SMTP_PASSWORD"),
        smtp_security=security,
        mail_from=mail_from,
        smtp_per_second=per_second,
        smtp_per_day=per_day,
        public_url=public_url,
        stay_in_touch_years=stay_years,
        update_gap_days=gap_days,
        log_format=log_format,
        webhook_secret=env.get("WEBHOOK_SECRET"),
        port=3000 if port is None else port,
        console_user=_login_name(),
        company=named["SENDOFF_COMPANY"],
        am_name=named["SENDOFF_AM_NAME"],
        am_email=am_email,
        logo_url=logo_url,
    )
