"""Fixtures for grantry's black-box suite.

The suite behaves like an integrator: it starts the real `grantry` binary as a
subprocess, drives it only through its public surface (the CLI with `--json`
and HTTP), and reads nothing but what a user could read (CLI output, HTTP
responses, the mail outbox, the server's stdout/stderr).

Every test runs twice: on SQLite, and on a fresh database created (with psql) on the
PostgreSQL server named by GRANTRY_TEST_DATABASE_URL. Without that server the suite refuses to
start, saying how to fix it, rather than quietly testing half of grantry.

Environment:
  GRANTRY_BIN                    the binary (default: <repo>/target/debug/grantry)
  GRANTRY_TEST_DATABASE_URL      a PostgreSQL server URL on which the tests may create and drop
                                 databases, e.g. postgres://postgres@127.0.0.1:5432/postgres
                                 (./scripts/test sets it and starts the server)
  GRANTRY_TEST_SKIP_POSTGRES=1   run the SQLite half only (said once at the start)
  GRANTRY_TEST_REQUIRE_POSTGRES=1  set by ./scripts/test and CI: PostgreSQL may not be skipped
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
_bin = Path(os.environ.get("GRANTRY_BIN") or "target/debug/grantry")
GRANTRY_BIN = _bin if _bin.is_absolute() else REPO_ROOT / _bin

# A change that narrows what a credential opens, made by another process, is honoured by every
# server within one second (see the README, "Credential cache"). Grantry.eventually() holds the
# server to that bound, measured from the moment the CLI command returned; the slack is what a
# loaded machine may add between a request's start and the server reading it (scheduling of
# the test's HTTP client and of the server's threads).
PROPAGATION_S = 1.0
PROPAGATION_SLACK_S = 0.25

PG_SERVER_URL = os.environ.get("GRANTRY_TEST_DATABASE_URL", "").strip()
REQUIRE_POSTGRES = os.environ.get("GRANTRY_TEST_REQUIRE_POSTGRES", "").strip() == "1"
SKIP_POSTGRES = os.environ.get("GRANTRY_TEST_SKIP_POSTGRES", "").strip() == "1"
BACKENDS = ["sqlite"] if SKIP_POSTGRES and not REQUIRE_POSTGRES else ["sqlite", "postgres"]

ALL_GRANTS = ["lists:read", "lists:write", "contacts:read", "contacts:write"]
ADMIN_PASSWORD_RE = re.compile(r"One-time admin password \(shown once, keep it\): (\S+)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

EVENTS_PATH = "/campaignapi/resources/v3/events"

STARTUP_TIMEOUT = 30.0  # seconds; the poll itself is fast
HTTP_TIMEOUT = 10.0


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any GRANTRY_* setting that could leak in
    (a stray GRANTRY_CONFIG or GRANTRY_DATABASE__URL would change what we test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTRY_")}
    env["GRANTRY_LOG"] = "debug"
    env.update(extra or {})
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(url: str, sql: str) -> None:
    proc = subprocess.run(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed ({proc.returncode}): {proc.stderr.strip()}")


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _postgres_problem() -> str | None:
    """Why the PostgreSQL half cannot run, or None when the server answers."""
    if not PG_SERVER_URL:
        return "GRANTRY_TEST_DATABASE_URL is not set"
    if shutil.which("psql") is None:
        return "psql is not on PATH (the suite creates its databases with it)"
    try:
        proc = subprocess.run(["psql", PG_SERVER_URL, "-X", "-q", "-t", "-c", "SELECT 1"],
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"PostgreSQL at {_redacted(PG_SERVER_URL)} did not answer within 30 s"
    if proc.returncode != 0:
        return f"PostgreSQL is not reachable at {_redacted(PG_SERVER_URL)}: {proc.stderr.strip()}"
    return None


def _with_database(server_url: str, dbname: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text)


@dataclass
class ApiKey:
    """An API user's secret key as `grantry key generate` hands it over."""

    org: str
    username: str
    key_id: str
    slot: int
    secret: str
    bearer: str  # base64("<key id>:<secret>"), sent as `Authorization: Bearer <bearer>`


@dataclass
class Integration:
    """What an org admin hands to an integrator: client id/secret and a refresh token."""

    org: str
    client_id: str
    client_secret: str
    username: str
    refresh_token: str


class Grantry:
    """One running grantry server plus the CLI pointed at the same store."""

    def __init__(self, backend: str, workdir: Path, database_url: str | None, env: dict[str, str] | None = None,
                 args: list[str] | None = None):
        self.backend = backend
        # extra GRANTRY_* settings for this instance; the CLI gets them too, so that both read
        # the same configuration (as they would from one shared config file)
        self.env = dict(env or {})
        # extra global flags (e.g. --config FILE), for the server and the CLI alike
        self.extra_args = list(args or [])
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.database_url = database_url
        self.stdout_path = workdir / "server.stdout.log"
        self.stderr_path = workdir / "server.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.base_url = ""
        self.admin_password: str | None = None
        self.cli_stderr: list[str] = []
        self.cli_returned = time.monotonic()  # when the last CLI command returned
        self.propagations: list[tuple[str, float]] = []  # (what, seconds until it showed)
        self.http = requests.Session()
        self.http.trust_env = False  # no proxies, no ~/.netrc credentials

    # ---- process -------------------------------------------------------------------

    def global_args(self) -> list[str]:
        args = [*self.extra_args, "--data", str(self.data_dir)]
        if self.database_url:
            args += ["--database", self.database_url]
        return args

    def start(self) -> None:
        last_error = ""
        for _attempt in range(3):
            port = _free_port()
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [str(GRANTRY_BIN), *self.global_args(), "serve", "--listen", f"127.0.0.1:{port}"],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                    env=_child_env(self.env),
                )
            self.base_url = f"http://127.0.0.1:{port}"
            if self._wait_healthy():
                match = ADMIN_PASSWORD_RE.search(self.stdout_path.read_text(errors="replace"))
                if match and self.admin_password is None:
                    self.admin_password = match.group(1)
                return
            self.stop()
            last_error = self.stderr_path.read_text(errors="replace")[-4000:]
            if "in use" not in last_error.lower():
                break  # not a port race: do not hide the failure behind retries
        raise RuntimeError(f"grantry did not become healthy (exit {self.returncode}):\n{last_error}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.http.get(self.url("/healthz"), timeout=0.5).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def server_output(self) -> tuple[str, str]:
        return (
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )

    # ---- CLI -----------------------------------------------------------------------

    def cli_run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(GRANTRY_BIN), *self.global_args(), "--json", *args],
            capture_output=True,
            text=True,
            input=stdin,
            cwd=self.workdir,
            env=_child_env(self.env),
            timeout=120,
        )
        self.cli_returned = time.monotonic()
        self.cli_stderr.append(proc.stderr)
        return proc

    def eventually(self, check: Callable[[], object], what: str, since: float | None = None):
        """Holds the server to the bound on how long a change made by another process (the CLI,
        another instance) may take to reach its credential cache.

        Polls `check` (which raises AssertionError while the server still shows the old state)
        until it passes, and returns what it returned. It fails only when an attempt that
        *started* more than PROPAGATION_S + PROPAGATION_SLACK_S after `since` (by default: when
        the last CLI command returned) still saw the old state; the message gives the measured
        delay. The time the change took to show is recorded in `self.propagations`."""
        since = self.cli_returned if since is None else since
        bound = PROPAGATION_S + PROPAGATION_SLACK_S
        attempts = 0
        while True:
            started = time.monotonic()
            attempts += 1
            try:
                result = check()
            except AssertionError as old_state:
                late = started - since
                if late > bound:
                    raise AssertionError(
                        f"{what}: not yet in effect in a request started {late * 1000:.0f} ms after the "
                        f"CLI command returned (the bound is {PROPAGATION_S * 1000:.0f} ms, plus "
                        f"{PROPAGATION_SLACK_S * 1000:.0f} ms slack; {attempts} attempts): {old_state}"
                    ) from old_state
                time.sleep(0.02)
                continue
            self.propagations.append((what, started - since))
            return result

    def cli(self, *args: str, stdin: str | None = None):
        proc = self.cli_run(*args, stdin=stdin)
        assert proc.returncode == 0, (
            f"grantry {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
        return json.loads(proc.stdout)

    # ---- the org admin's side (CLI) -----------------------------------------------------

    def add_app(self, name: str, org: str = "default", scopes: list[str] | None = None, description: str = "") -> dict:
        args = ["app", "add", "--org", org, "--name", name, "--description", description]
        for scope in scopes or []:
            args += ["--scope", scope]
        return self.cli(*args)

    def add_ui_user(self, username: str, org: str = "default", grants: list[str] | None = None, role: str = "user",
                    email_addr: str | None = None) -> dict:
        args = ["user", "add", "--org", org, "--username", username,
                "--email", email_addr or f"{username}@example.com", "--kind", "ui", "--role", role]
        for grant in grants or []:
            args += ["--grant", grant]
        return self.cli(*args)

    def add_access(self, client_id: str, username: str, org: str = "default", by: str = "admin") -> dict:
        return self.cli("access", "add", "--org", org, "--client-id", client_id, "--username", username, "--by", by)

    def delete_access(self, client_id: str, username: str, org: str = "default") -> dict:
        return self.cli("access", "delete", "--org", org, "--client-id", client_id, "--username", username)

    def add_api_user(self, username: str, org: str = "default", grants: list[str] | None = None,
                     email_addr: str | None = None) -> dict:
        args = ["user", "add", "--org", org, "--username", username,
                "--email", email_addr or f"{username}@example.com", "--kind", "api"]
        for grant in grants or []:
            args += ["--grant", grant]
        return self.cli(*args)

    def generate_key(self, username: str, org: str = "default") -> ApiKey:
        out = self.cli("key", "generate", "--org", org, "--username", username)
        return ApiKey(org, username, out["key_id"], out["slot"], out["secret"], out["bearer"])

    def delete_key(self, username: str, slot: int, org: str = "default") -> dict:
        return self.cli("key", "delete", "--org", org, "--username", username, "--slot", str(slot))

    def audit(self, org: str = "default") -> list[dict]:
        return self.cli("audit", "--org", org)

    def new_integration(self, app_name: str = "crm-sync", username: str | None = None,
                        grants: list[str] | None = None, scopes: list[str] | None = None,
                        org: str = "default", by: str = "admin") -> Integration:
        """Getting started, steps 1 and 2: add an application, a user, and account access."""
        username = username or f"user-{uuid.uuid4().hex[:8]}"
        app = self.add_app(app_name, org=org, scopes=scopes if scopes is not None else ALL_GRANTS)
        self.add_ui_user(username, org=org, grants=grants if grants is not None else ALL_GRANTS)
        access = self.add_access(app["client_id"], username, org=org, by=by)
        assert access["client_id"] == app["client_id"] and access["username"] == username
        return Integration(org, app["client_id"], app["client_secret"], username, access["refresh_token"])

    def outbox(self) -> list[tuple[Path, email.message.EmailMessage]]:
        folder = self.data_dir / "outbox"
        if not folder.is_dir():
            return []
        return [
            (p, email.message_from_bytes(p.read_bytes(), policy=email.policy.default))
            for p in sorted(folder.glob("*.eml"))
        ]

    # ---- the integrator's side (HTTP) ----------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def token_request(self, data=None, auth=None, **kwargs) -> requests.Response:
        return self.http.post(self.url("/oauth/token"), data=data, auth=auth, timeout=HTTP_TIMEOUT, **kwargs)

    def exchange(self, integ: Integration) -> requests.Response:
        """Getting started, step 3, exactly as documented: all four parameters in the form body."""
        return self.token_request({
            "grant_type": "refresh_token",
            "client_id": integ.client_id,
            "client_secret": integ.client_secret,
            "refresh_token": integ.refresh_token,
        })

    def access_token(self, integ: Integration) -> str:
        resp = self.exchange(integ)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def xml(self, token: str | None, body: str, form: bool = False, headers: dict | None = None) -> requests.Response:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if form:
            return self.http.post(self.url("/XMLAPI"), data={"xml": body}, headers=hdrs, timeout=HTTP_TIMEOUT)
        hdrs.setdefault("Content-Type", "text/xml;charset=utf-8")
        return self.http.post(self.url("/XMLAPI"), data=body.encode("utf-8"), headers=hdrs, timeout=HTTP_TIMEOUT)

    def rest(self, method: str, path: str, token: str | None, json_body=None, params=None,
             headers: dict | None = None, auth=None) -> requests.Response:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url("/rest" + path), json=json_body, params=params, headers=hdrs,
                                 auth=auth, timeout=HTTP_TIMEOUT)

    def event(self, token: str | None, body=None, *, data: bytes | None = None, headers: dict | None = None,
              auth=None, session: requests.Session | None = None) -> requests.Response:
        """POST an event to the Event API: `body` as JSON, or raw `data` with the caller's headers."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        http = session or self.http
        if data is not None:
            return http.post(self.url(EVENTS_PATH), data=data, headers=hdrs, auth=auth, timeout=HTTP_TIMEOUT)
        return http.post(self.url(EVENTS_PATH), json=body, headers=hdrs, auth=auth, timeout=HTTP_TIMEOUT)


# ---- XML helpers shared by the tests --------------------------------------------------------

def envelope(inner: str) -> str:
    return f"<Envelope><Body>{inner}</Body></Envelope>"


def xml_root(resp: requests.Response) -> ET.Element:
    assert resp.headers.get("Content-Type", "").startswith("text/xml"), resp.headers
    return ET.fromstring(resp.content)


def xml_ok(resp: requests.Response) -> ET.Element:
    """Assert a successful XML API answer and return its RESULT element."""
    assert resp.status_code == 200, resp.text
    root = xml_root(resp)
    assert root.tag == "Envelope", resp.text
    result = root.find("./Body/RESULT")
    assert result is not None, resp.text
    assert (result.findtext("SUCCESS") or "").upper() == "TRUE", resp.text
    assert root.find("./Body/Fault") is None, resp.text
    return result


def xml_fault(resp: requests.Response) -> tuple[str, str]:
    """Assert an XML API failure and return (errorid, FaultString)."""
    root = xml_root(resp)
    assert (root.findtext("./Body/RESULT/SUCCESS") or "").upper() == "FALSE", resp.text
    fault = root.find("./Body/Fault")
    assert fault is not None, resp.text
    return fault.findtext("./detail/error/errorid"), fault.findtext("FaultString") or ""


def assert_xml_fault(resp: requests.Response, status: int, errorid: str, *mentions: str) -> str:
    """Assert an XML API failure with this HTTP status and `errorid` (README, "The protected
    APIs": 51 invalid request, 126 invalid field, 128 recipient not found, 134 list not found,
    145 bad credential, 146 missing grant, ...) whose FaultString contains every one of
    `mentions` (case-insensitive); return the FaultString."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    got, message = xml_fault(resp)
    assert got == errorid, f"errorid {got}, expected {errorid}: {resp.text}"
    assert message.strip(), f"a Fault without a FaultString: {resp.text}"
    for word in mentions:
        assert word.lower() in message.lower(), (word, message)
    return message


# ---- fixtures -----------------------------------------------------------------------------------

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_sessionstart(session):
    """PostgreSQL is half of what the suite tests: refuse to start without it, unless told to
    skip it (GRANTRY_TEST_SKIP_POSTGRES=1), which is then said once."""
    if SKIP_POSTGRES and REQUIRE_POSTGRES:
        pytest.exit("GRANTRY_TEST_SKIP_POSTGRES=1 contradicts GRANTRY_TEST_REQUIRE_POSTGRES=1 "
                    "(set by ./scripts/test and CI); unset one of them", returncode=2)
    if SKIP_POSTGRES:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        note = ("GRANTRY_TEST_SKIP_POSTGRES=1: the PostgreSQL half of the black-box suite is skipped; "
                "every test runs on SQLite only")
        if reporter is not None:
            reporter.write_line(note, yellow=True, bold=True)
        else:
            print(note)
        return
    problem = _postgres_problem()
    if problem:
        pytest.exit(
            f"{problem}. Every black-box test runs on SQLite and on PostgreSQL: start PostgreSQL and set "
            "GRANTRY_TEST_DATABASE_URL to a server on which the tests may create databases "
            "(e.g. postgres://postgres@127.0.0.1:5432/postgres), or run ./scripts/test blackbox, which does both; "
            "GRANTRY_TEST_SKIP_POSTGRES=1 runs the SQLite half only.",
            returncode=2,
        )


@pytest.fixture(scope="session")
def grantry_bin() -> Path:
    if not (GRANTRY_BIN.is_file() and os.access(GRANTRY_BIN, os.X_OK)):
        pytest.exit(f"grantry binary not found at {GRANTRY_BIN}; build it (cargo build -p grantry) or set GRANTRY_BIN",
                    returncode=2)
    return GRANTRY_BIN


class _Launcher:
    """Starts grantry servers for one test on one backend and cleans up after them."""

    def __init__(self, request, backend: str, tmp_path: Path):
        self.request = request
        self.backend = backend
        self.tmp_path = tmp_path
        self.servers: list[tuple[Grantry, str | None]] = []

    def __call__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> Grantry:
        database_url = None
        dbname = None
        if self.backend == "postgres":
            dbname = f"grantry_bb_{uuid.uuid4().hex[:12]}"
            _psql(PG_SERVER_URL, f'CREATE DATABASE "{dbname}"')
            database_url = _with_database(PG_SERVER_URL, dbname)
        workdir = self.tmp_path if not self.servers else self.tmp_path / f"server{len(self.servers)}"
        workdir.mkdir(parents=True, exist_ok=True)
        server = Grantry(self.backend, workdir, database_url, env=env, args=args)
        self.servers.append((server, dbname))
        server.start()
        return server

    def close(self) -> None:
        crashed_any = []
        for server, dbname in self.servers:
            crashed = server.proc is not None and not server.is_running()
            server.stop()
            server.http.close()
            failed = any(getattr(getattr(self.request.node, f"rep_{w}", None), "failed", False)
                         for w in ("setup", "call"))
            if failed or crashed:
                out, err = (server.server_output() if server.stdout_path.exists() else ("", ""))
                print(f"--- grantry ({self.backend}) exit code {server.returncode}; logs in {server.workdir}")
                print("--- stdout (tail)\n" + out[-3000:])
                print("--- stderr (tail)\n" + strip_ansi(err)[-6000:])
            if dbname:
                _psql(PG_SERVER_URL, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            if crashed:
                crashed_any.append(server.returncode)
        if crashed_any:
            pytest.fail(f"grantry exited during the test with code {crashed_any[0]}")


@pytest.fixture(params=BACKENDS)
def grantry(request, grantry_bin, tmp_path):
    """A freshly started grantry (fresh data dir; on postgres also a fresh database)."""
    launcher = _Launcher(request, request.param, tmp_path)
    try:
        yield launcher()
    finally:
        launcher.close()


@pytest.fixture(params=BACKENDS)
def grantry_factory(request, grantry_bin, tmp_path):
    """Starts a fresh grantry with extra GRANTRY_* settings, e.g.
    `grantry_factory({"GRANTRY_API_KEYS__DELETE_GRACE": "2s"})`; the settings apply to the
    server and to the CLI commands run through it. Each call starts another server on its own
    data dir (and, on postgres, its own database)."""
    launcher = _Launcher(request, request.param, tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()
