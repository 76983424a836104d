"""A throw-away PostgreSQL server for tests and benchmarks: ``initdb`` into a fresh temporary folder, run as an
unprivileged user, reachable on a unix socket in that folder (and a loopback port if asked), removed on stop.

PostgreSQL refuses to run as root: when we are root, the server runs as the ``postgres`` system user (the
Debian package creates it) or ``nobody``, through ``runuser``. ``kill()`` SIGKILLs the server and all of its
processes (a crash: the next ``start()`` recovers from the WAL); ``stop()`` is a clean fast shutdown.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
DATABASE_USER = "fleet"


def postgres_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: on PATH, else the newest Debian install; None when absent."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    return Path(found[-1]) if found and (Path(found[-1]) / "initdb").exists() else None


def _run_as() -> str | None:
    """The system user to run the server as when we are root (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class ThrowawayPostgres:
    """One temporary PostgreSQL cluster; ``url`` points at its ``postgres`` database as user ``fleet``."""

    def __init__(self, port: int | None = None) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh installs postgresql-15)")
        self.port, self.user, self._databases = port, _run_as(), 0
        self.root = Path(tempfile.mkdtemp(prefix="dp-pg-"))  # not pytest's tmp_path: that is root-only (0700)
        self.data, self.log = self.root / "data", self.root / "server.log"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._pg(["initdb", "-D", str(self.data), "-U", DATABASE_USER, "--auth=trust", "-E", "UTF8",
                  "--no-instructions"])

    @property
    def url(self) -> str:
        """The SQLAlchemy/psycopg URL of the server's ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        if self.port is not None:
            return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/{name}"
        return f"postgresql://{DATABASE_USER}@/{name}?host={self.root}&port={self._socket_port}"

    def create_database(self) -> str:
        """A new, empty database on the server (one per test); returns its URL."""
        import psycopg

        self._databases += 1
        name = f"store_{self._databases}"
        with psycopg.connect(host=str(self.root), port=self._socket_port, user=DATABASE_USER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.database_url(name)

    @property
    def _socket_port(self) -> int:
        return self.port or 5432

    def _pg(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        result = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=self.root)
        if check and result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
        return result

    def start(self) -> ThrowawayPostgres:
        """Start (or restart after a stop or a kill) and wait until it accepts connections."""
        listen = "127.0.0.1" if self.port is not None else ""
        options = (f"-k {self.root} -p {self._socket_port} -c listen_addresses='{listen}' "
                   "-c shared_buffers=16MB -c max_connections=200")
        try:
            self._pg(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"])
        except RuntimeError as error:
            tail = self.log.read_text()[-1500:] if self.log.exists() else ""
            raise RuntimeError(f"{error}\n{tail}") from None
        return self

    def stop(self) -> None:
        """A clean fast shutdown (the server can be started again)."""
        self._pg(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster and every one of its processes, as a crash would; returns once all are gone."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        while any(_alive(victim) for victim in victims):  # they are not our children: poll until they die
            time.sleep(0.05)
        # A dead postmaster may stay a zombie until init reaps it, and PostgreSQL takes a pid that still
        # answers kill(pid, 0) for a running server: the lock file of a server known dead goes, as after a crash.
        for lock in (self.data / "postmaster.pid", self.root / f".s.PGSQL.{self._socket_port}.lock",
                     self.root / f".s.PGSQL.{self._socket_port}"):
            lock.unlink(missing_ok=True)

    def running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _alive(pid)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        """Stop the server and delete its folder."""
        if self.running():
            self.stop()
        if self.running():
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:  # noqa: PYI034
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.close()


def _children(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (from /proc)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(Path(stat).parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
