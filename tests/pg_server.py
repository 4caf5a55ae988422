"""A throw-away PostgreSQL cluster for the tests: initdb in a temporary folder, started on a free port.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster runs
as an unprivileged user (created with useradd when missing) through
``runuser``. The server listens on 127.0.0.1 (password login, as a user's
URL would have it) and on a Unix socket in the cluster's folder (no password,
for creating databases). Durability is switched off: a test database is worth
nothing after the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

# The unprivileged user the cluster runs as when the tests run as root.
SERVER_USER = "sendoff-pg"
SUPERUSER = "sendoff"
# Debian's package keeps the server binaries here, off PATH.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: from PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        folder = Path(on_path).resolve().parent  # /usr/local/bin/initdb may link to Debian's folder
        if (folder / "pg_ctl").exists():
            return folder
    versions = []
    for folder in DEBIAN_BINARIES.glob("*/bin"):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists() and folder.parent.name.isdigit():
            versions.append((int(folder.parent.name), folder))
    return max(versions)[1] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """Who runs the server: None for the current user, unless that is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                               "--shell", "/usr/sbin/nologin", SERVER_USER],
                              capture_output=True, text=True, check=False)  # fmt: skip
        try:
            pwd.getpwnam(SERVER_USER)  # another test run may have created it meanwhile
        except KeyError:
            raise RuntimeError(f"could not create the user {SERVER_USER}: {made.stderr.strip()}") from None
    return SERVER_USER


class PgServer:
    """One cluster; ``database()`` makes a fresh database in it for each test."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.user = _server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="sendoff-pg-"))
        self.data = self.folder / "data"
        self.sockets = self.folder / "sockets"
        self.log = self.folder / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self._count = 0
        self._templates: set[str] = set()

    # -- life ---------------------------------------------------------------------------
    def start(self) -> PgServer:
        self.sockets.mkdir()
        password_file = self.folder / "password"
        password_file.write_text(self.password)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.folder, self.sockets, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._as_server(["initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                         "--no-sync"])  # fmt: skip
        password_file.unlink()
        for attempt in range(3):  # a free port may be taken between the look and the start
            self.port = _free_port()
            options = " ".join([f"-p {self.port}", f"-k {self.sockets}", *(f"-c {k}={v}" for k, v in SETTINGS.items())])
            started = self._as_server(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                                       "-o", options, "start"], check=attempt == 2)  # fmt: skip
            if started.returncode == 0:
                return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.data.exists():
            self._as_server(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _as_server(self, command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binaries / command[0]), *command[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command[:1])} failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        return done

    # -- databases ------------------------------------------------------------------------
    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run ``statement`` as the superuser over the socket (no password); what it printed."""
        done = subprocess.run(
            [str(self.binaries / "psql"), "-h", str(self.sockets), "-p", str(self.port), "-U", SUPERUSER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", statement],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout.strip()

    def url(self, database: str, *, password: str | None = None, scheme: str = "postgresql") -> str:
        """A user's URL for ``database``: over TCP, with the password (or another one, to see it refused)."""
        return f"{scheme}://{SUPERUSER}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def database(self, *, like: str | None = None) -> str:
        """A new, empty database (a copy of the template ``like``, when given); its name."""
        self._count += 1
        name = f"test_{self._count}_{secrets.token_hex(3)}"
        template = f' TEMPLATE "{like}"' if like else ""
        self.sql(f'CREATE DATABASE "{name}"{template}')
        return name

    def template(self, name: str, prepare: object) -> str:
        """The database ``name`` made once by ``prepare(url)`` (a migration), then marked as a template."""
        if name not in self._templates:
            assert re.fullmatch(r"\w+", name)
            self.sql(f'CREATE DATABASE "{name}"')
            prepare(self.url(name))  # type: ignore[operator]
            self.sql(f"ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
            self._templates.add(name)
        return name

    def drop(self, database: str) -> None:
        with contextlib.suppress(RuntimeError):
            self.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
