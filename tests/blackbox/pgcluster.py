"""A PostgreSQL cluster of the test's own, which it may stop, start and cut connections of,
made with Debian's postgresql-common (pg_createcluster, pg_ctlcluster, pg_dropcluster).

The shared server named by GRANTRY_TEST_DATABASE_URL is never stopped: other tests (and other
suites) use it. A `PgCluster` lives on a free port, trusts local connections, and is dropped
at the end whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from conftest import _free_port

PG_CONF_ROOT = Path("/etc/postgresql")


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def problem() -> str | None:
    """Why a cluster of our own cannot be made here, or None."""
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Debian's postgresql-common makes the fault tests' cluster)"
    if not PG_CONF_ROOT.is_dir() or not _versions():
        return f"no PostgreSQL version under {PG_CONF_ROOT}"
    if os.geteuid() != 0:
        return "pg_createcluster needs root here (it writes /etc/postgresql and /var/lib/postgresql)"
    return None


def _versions() -> list[str]:
    return sorted((p.name for p in PG_CONF_ROOT.iterdir() if p.is_dir() and p.name.replace(".", "").isdigit()),
                  key=lambda v: [int(x) for x in v.split(".")])


class PgCluster:
    """One cluster: `create()`, then `start()`/`stop()` as often as a test likes, `drop()`."""

    def __init__(self) -> None:
        self.version = _versions()[-1]
        self.name = f"grantry_fault_{uuid.uuid4().hex[:8]}"
        self.port = _free_port()
        self.created = False

    def server_url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def create(self) -> None:
        # as root, pg_createcluster makes the cluster owned by the postgres user; durability
        # is not what these tests are about, so fsync is off to keep them fast
        _run(["pg_createcluster", self.version, self.name, "-p", str(self.port),
              "-o", "fsync=off", "-o", "synchronous_commit=off", "-o", "full_page_writes=off",
              "-o", "max_connections=200",
              "--", "--auth=trust"])
        self.created = True
        self.start()

    def start(self) -> None:
        try:
            _run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start"])
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- {self.log_path} (tail)\n{self.log_tail()}") from None
        self.wait_ready()

    @property
    def log_path(self) -> Path:
        return Path(f"/var/log/postgresql/postgresql-{self.version}-{self.name}.log")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as e:
            return f"(unreadable: {e})"

    def stop(self) -> None:
        """A fast shutdown (`-m fast`): the server ends every session and stops listening."""
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "stop", "-m", "fast"])

    def drop(self) -> None:
        if self.created:
            subprocess.run(["pg_dropcluster", "--stop", self.version, self.name],
                           capture_output=True, text=True, timeout=120)
            self.created = False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.run(["psql", self.server_url(), "-X", "-q", "-t", "-c", "SELECT 1"],
                                  capture_output=True, text=True, timeout=30)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster {self.name} did not accept connections: {proc.stderr}")
            time.sleep(0.05)

    def psql(self, sql: str, dbname: str = "postgres") -> list[list[str]]:
        """Runs `sql` and returns the rows psql prints (unaligned, fields split on '|')."""
        proc = _run(["psql", self.server_url(dbname), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
                    timeout=60)
        return [line.split("|") for line in proc.stdout.splitlines() if line]

    def terminate_backends(self, dbname: str) -> int:
        """`pg_terminate_backend` of every connection to `dbname` but psql's own; how many."""
        rows = self.psql(f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                         f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
        return int(rows[0][0])
