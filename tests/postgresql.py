"""A PostgreSQL cluster for one test session: Debian's PostgreSQL server binaries,
a data directory and a unix socket in a temporary folder (no TCP port, so no
clash with anything else on the machine), a template database migrated once,
and a fresh database per test copied from that template (fast: no migrations
per test). The server refuses to run as root: as root it runs as `postgres`."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg

from bot.store import postgres

TEMPLATE = "frontline_template"
AHEAD = 2  # databases made ahead of the tests that will take them
_numbers = itertools.count(1)


def binaries() -> Path | None:
    """The server's bin/: FRONTLINE_POSTGRESQL_BIN if set, else the newest installed
    (Debian: /usr/lib/postgresql/N/bin), else initdb's folder on PATH."""
    chosen = os.environ.get("FRONTLINE_POSTGRESQL_BIN")
    if chosen is not None:
        return Path(chosen) if (Path(chosen) / "initdb").exists() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A throwaway server in a temporary folder, for the tests and the benchmarks
    (bench/pipeline.py --db postgresql). `durable`: PostgreSQL's own defaults
    (fsync, full-page writes, a flush at each commit), as a deployment runs it;
    without, the tests' fast settings."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="frontline-pg-"))
        self.data = self.root / "data"
        self.socket = self.root
        self.port = 5432  # only the socket's file name: the server listens on no TCP port
        self._as: list[str] = []
        self._ready: queue.Queue[str] = queue.Queue()
        self._used: queue.Queue[str] = queue.Queue()
        self._helper: threading.Thread | None = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> Cluster:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        # Durability is not what these tests are about: no fsync makes each
        # CREATE DATABASE from the template a few milliseconds.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket}'"
            f" -c port={self.port} -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        postgres.migrate_url(self.url(TEMPLATE))
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket}&port={self.port}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def fresh(self) -> str:
        """A new database holding the migrated, empty schema. A helper thread keeps
        a few made ahead (and drops the used ones), so a test rarely waits for one."""
        if self._helper is None:
            self._helper = threading.Thread(target=self._serve, name="pg-databases", daemon=True)
            self._helper.start()
        return self._ready.get(timeout=120)  # queue.Empty: the helper thread died

    def _serve(self) -> None:
        with self._admin() as conn:
            while True:
                try:
                    dropped = self._used.get(timeout=0.05)
                except queue.Empty:
                    dropped = None
                if dropped == "":
                    return
                if dropped:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute(f"DROP DATABASE IF EXISTS {dropped} WITH (FORCE)")
                if self._ready.qsize() < AHEAD:
                    name = f"test_{os.getpid()}_{next(_numbers)}"
                    conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
                    self._ready.put(self.url(name))

    def empty(self) -> str:
        """A new database without even the schema (a target for `frontline db copy`)."""
        name = f"empty_{os.getpid()}_{next(_numbers)}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a test's database, in the helper thread's own time."""
        self._used.put(url.split("/")[3].split("?")[0])

    def stop(self) -> None:
        if self._helper is not None:
            self._used.put("")
            self._helper.join(timeout=10)
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start(*, durable: bool = False) -> tuple[Cluster | None, str]:
    """The session's cluster, or None and why there is none."""
    bin_dir = binaries()
    if bin_dir is None:
        return None, "no PostgreSQL server installed (Debian: apt-get install postgresql)"
    cluster = Cluster(bin_dir, durable=durable)
    try:
        return cluster.start(), ""
    except (subprocess.CalledProcessError, psycopg.Error, OSError, KeyError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        cluster.stop()
        return None, f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')[-300:]}"
