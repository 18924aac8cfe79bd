"""Several `grantry serve` instances on one PostgreSQL database (README, "Running on
PostgreSQL": any number of instances can share the database).

Three instances, A, B and C, listen on three loopback ports and share one fresh database (and
one OAuth 1.0a key file, which README's configuration table asks of every instance on one
database). The tests prove what an operator relies on when putting them behind one load
balancer:

* a credential issued by one instance opens the APIs on the others, and a revocation made on
  one (or by the CLI) is enforced by every other within the credential cache's one-second
  bound (README, "Credential cache, and how fast a revocation takes effect");
* single-use things stay single use when 16 clients race for them over all three instances:
  authorization codes, rotated refresh tokens, OAuth 1.0a nonces and temporary credentials,
  the re-issue window's one access token, and the XML API's `Login` cap;
* three instances started at the same moment on an empty database migrate it once.

PostgreSQL only: SQLite is one file on one machine, which instances cannot share.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from oauthlib.oauth1 import Client as OAuth1Client
from requests_oauthlib import OAuth1, OAuth1Session

from conftest import (
    ALL_GRANTS,
    BACKENDS,
    GRANTRY_BIN,
    HTTP_TIMEOUT,
    PG_SERVER_URL,
    STARTUP_TIMEOUT,
    Grantry,
    Integration,
    _child_env,
    _free_port,
    _psql,
    _with_database,
    envelope,
    strip_ansi,
    xml_ok,
)
from test_oauth1 import authorize_in_browser
from test_oauth_clients import Browser

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS,
                                reason="several instances need a shared PostgreSQL database")

RACERS = 16
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
OAUTH1_CALLBACK = "http://127.0.0.1:9/oauth1/callback"
# a short rotation grace, so that the reuse of a rotated refresh token after it can be seen
# within the test (README, "Refresh-token rotation": `tokens.rotation_grace`, 10 s by default)
ROTATION_GRACE_S = 2
# the XML API's cap on live `Login` sessions per organization, small enough for a race of 16
MAX_SESSIONS = 4
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "crates" / "store" / "migrations" / "postgres"
GET_LISTS = envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>")


# ---- three instances on one database ---------------------------------------------------------

def _psql_rows(url: str, sql: str) -> list[list[str]]:
    """The rows psql prints for `sql`, unaligned, fields split on '|'."""
    proc = subprocess.run(["psql", url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split("|") for line in proc.stdout.splitlines() if line]


def _create_database() -> tuple[str, str]:
    dbname = f"grantry_bb_{uuid.uuid4().hex[:12]}"
    _psql(PG_SERVER_URL, f'CREATE DATABASE "{dbname}"')
    return dbname, _with_database(PG_SERVER_URL, dbname)


def _shared_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The configuration every instance (and the CLI) reads: one OAuth 1.0a key file."""
    key_file = root / "oauth1.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n")
        key_file.chmod(0o600)
    return {"GRANTRY_OAUTH1__KEY_FILE": str(key_file), **(extra or {})}


def _instances(root: Path, database_url: str, env: dict[str, str]) -> list[Grantry]:
    servers = []
    for name in ("a", "b", "c"):
        workdir = root / name
        workdir.mkdir(parents=True, exist_ok=True)
        servers.append(Grantry("postgres", workdir, database_url, env=env))
    return servers


def start_together(servers: list[Grantry]) -> None:
    """Starts every server at the same moment: all processes are spawned before any is
    waited for, so that they meet on the database (migrations, the default org) at once."""
    for server in servers:
        port = _free_port()
        with open(server.stdout_path, "wb") as out, open(server.stderr_path, "wb") as err:
            server.proc = subprocess.Popen(
                [str(GRANTRY_BIN), *server.global_args(), "serve", "--listen", f"127.0.0.1:{port}"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=server.workdir,
                env=_child_env(server.env),
            )
        server.base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for server in servers:
        while True:
            assert server.proc.poll() is None, (
                f"{server.workdir.name} exited {server.proc.returncode}:\n"
                + strip_ansi(server.stderr_path.read_text(errors="replace"))[-4000:])
            try:
                if server.http.get(server.url("/healthz"), timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"{server.workdir.name} did not become healthy"
            time.sleep(0.02)


def _print_logs(servers: list[Grantry]) -> None:
    for server in servers:
        if not server.stdout_path.exists():
            continue
        out, err = server.server_output()
        print(f"--- grantry {server.workdir.name} ({server.base_url}); logs in {server.workdir}")
        print("--- stdout (tail)\n" + out[-2000:])
        print("--- stderr (tail)\n" + strip_ansi(err)[-5000:])


@dataclass
class Trio:
    a: Grantry
    b: Grantry
    c: Grantry
    database_url: str

    @property
    def all(self) -> list[Grantry]:
        return [self.a, self.b, self.c]


@pytest.fixture(scope="module")
def trio_servers(grantry_bin, tmp_path_factory) -> Iterator[Trio]:
    """Three instances on one fresh database, shared by the module's tests (each test makes
    its own applications and users)."""
    root = tmp_path_factory.mktemp("instances")
    dbname, url = _create_database()
    env = _shared_env(root, {"GRANTRY_TOKENS__ROTATION_GRACE": f"{ROTATION_GRACE_S}s",
                             "GRANTRY_SESSIONS__MAX_PER_ORG": str(MAX_SESSIONS)})
    servers = _instances(root, url, env)
    try:
        # A first, then B and C: starting all three at once on an empty database is what
        # test_three_instances_started_together_migrate_an_empty_database_once is about
        start_together(servers[:1])
        start_together(servers[1:])
        yield Trio(*servers, database_url=url)
    finally:
        for server in servers:
            server.stop()
            server.http.close()
        _psql(PG_SERVER_URL, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def trio(request, trio_servers: Trio) -> Iterator[Trio]:
    """The module's instances; each must still be running after the test, and their logs are
    printed when the test failed."""
    yield trio_servers
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    crashed = [s.workdir.name for s in trio_servers.all if not s.is_running()]
    if failed or crashed:
        _print_logs(trio_servers.all)
    assert not crashed, f"grantry instance(s) {crashed} exited during the test"


# ---- helpers ----------------------------------------------------------------------------------

def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def race(servers: list[Grantry], send: Callable[[Grantry, requests.Session, int], requests.Response],
         n: int = RACERS) -> list[tuple[str, requests.Response]]:
    """Sends `n` requests at the same moment, round-robin over `servers` (A, B, C, A, ...):
    each thread has its own connection, opened before the barrier, so that the requests
    leave together. Returns (instance name, answer) in thread order."""
    barrier = threading.Barrier(n)
    results: list[tuple[str, requests.Response] | BaseException | None] = [None] * n

    def worker(i: int) -> None:
        server = servers[i % len(servers)]
        http = _session()
        try:
            assert http.get(server.url("/healthz"), timeout=HTTP_TIMEOUT).status_code == 200
            barrier.wait(timeout=30)
            results[i] = (server.workdir.name, send(server, http, i))
        except BaseException as e:  # reported by the caller, with the thread's number
            results[i] = e
        finally:
            http.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i, r in enumerate(results):
        if not isinstance(r, tuple):
            raise AssertionError(f"racer {i} did not get an answer: {r!r}")
    return results  # type: ignore[return-value]


def _statuses(results: list[tuple[str, requests.Response]]) -> list[tuple[str, int, str]]:
    return [(name, r.status_code, r.text[:300]) for name, r in results]


def refresh(server: Grantry, integ: Integration, http: requests.Session | None = None,
            refresh_token: str | None = None) -> requests.Response:
    return (http or server.http).post(server.url("/oauth/token"), data={
        "grant_type": "refresh_token",
        "client_id": integ.client_id,
        "client_secret": integ.client_secret,
        "refresh_token": refresh_token or integ.refresh_token,
    }, timeout=HTTP_TIMEOUT)


def assert_oauth_error(resp: requests.Response, status: int, error: str) -> dict:
    """RFC 6749 §5.2: the status, JSON `error` and a description, `Cache-Control: no-store`."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == error, body
    assert body.get("error_description"), body
    assert "access_token" not in body, body
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers
    return body


def assert_invalid_token(resp: requests.Response) -> None:
    """RFC 6750 §3.1: 401 with an `invalid_token` Bearer challenge."""
    assert resp.status_code == 401, (resp.status_code, resp.text)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, resp.headers


def introspect(server: Grantry, client_id: str, client_secret: str, token: str) -> dict:
    resp = server.http.post(server.url("/oauth/introspect"), data={"token": token},
                            auth=(client_id, client_secret), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def audit_of(server: Grantry, action: str, client_id: str) -> list[dict]:
    """The org's audit events of `action` about this application."""
    return [e for e in server.audit()
            if e["action"] == action and e["target"] == f"application:{client_id}"]


def add_password_user(server: Grantry, grants: tuple[str, ...] = ("lists:read", "lists:write")) -> tuple[str, str]:
    username = f"ann-{uuid.uuid4().hex[:6]}"
    password = secrets.token_urlsafe(18)
    args = ["user", "add", "--org", "default", "--username", username, "--email", f"{username}@example.com",
            "--kind", "ui", "--password-stdin"]
    for grant in grants:
        args += ["--grant", grant]
    server.cli(*args, stdin=password + "\n")
    return username, password


# ---- 1. issue on A, use on B, revoke on C ---------------------------------------------------------

def test_refresh_token_revoked_on_c_is_refused_on_a_and_b_within_a_second(trio: Trio):
    """A token issued by A opens B's APIs; RFC 7009 revocation of the refresh token on C stops
    it (and the access token issued from it) on C at the next request and on A and B within
    the credential cache's bound, counted from the moment C answered the revocation."""
    a, b, c = trio.a, trio.b, trio.c
    integ = a.new_integration(app_name=f"abc-{uuid.uuid4().hex[:6]}")
    issued = refresh(a, integ)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    assert b.rest("GET", "/databases", token).status_code == 200
    xml_ok(b.xml(token, GET_LISTS))
    # inside the re-issue window B hands back the very token A issued (README, step 3)
    again = refresh(b, integ)
    assert again.status_code == 200 and again.json()["access_token"] == token, again.text
    assert c.rest("GET", "/databases", token).status_code == 200

    revoked = c.http.post(c.url("/oauth/revoke"), data={"token": integ.refresh_token, "token_type_hint": "refresh_token"},
                          auth=(integ.client_id, integ.client_secret), timeout=HTTP_TIMEOUT)
    answered = time.monotonic()
    assert revoked.status_code == 200, revoked.text

    # on the instance that revoked: the next request (README, "Credential cache")
    assert_invalid_token(c.rest("GET", "/databases", token))
    assert_oauth_error(refresh(c, integ), 400, "invalid_grant")

    for server in (a, b):
        def refused(server: Grantry = server) -> None:
            assert_invalid_token(server.rest("GET", "/databases", token))
            assert_oauth_error(refresh(server, integ), 400, "invalid_grant")
            fault = server.xml(token, GET_LISTS)
            assert fault.status_code == 401, fault.text
        server.eventually(refused, f"the refresh token revoked on C refused on {server.workdir.name.upper()}",
                          since=answered)
    assert introspect(a, integ.client_id, integ.client_secret, token) == {"active": False}


def test_access_token_revoked_on_c_is_refused_on_a_and_b_within_a_second(trio: Trio):
    """RFC 7009 revocation of just the access token on C: it stops on every instance within
    the bound, while the refresh token itself keeps working on all of them."""
    a, b, c = trio.a, trio.b, trio.c
    integ = a.new_integration(app_name=f"abc-{uuid.uuid4().hex[:6]}")
    token = a.access_token(integ)
    assert b.rest("GET", "/databases", token).status_code == 200

    revoked = c.http.post(c.url("/oauth/revoke"), data={"token": token, "token_type_hint": "access_token"},
                          auth=(integ.client_id, integ.client_secret), timeout=HTTP_TIMEOUT)
    answered = time.monotonic()
    assert revoked.status_code == 200, revoked.text
    assert_invalid_token(c.rest("GET", "/databases", token))
    for server in (a, b):
        server.eventually(lambda server=server: assert_invalid_token(server.rest("GET", "/databases", token)),
                          f"the access token revoked on C refused on {server.workdir.name.upper()}",
                          since=answered)
    for server in trio.all:
        resp = refresh(server, integ)
        assert resp.status_code == 200, (server.workdir.name, resp.text)


def test_account_access_deleted_by_the_cli_is_refused_everywhere_within_a_second(trio: Trio):
    """`grantry access delete` (another process) cuts the integration off on all three
    instances within the bound: the refresh token is invalid_grant, the access token 401 on
    REST and XML, and the audit log, read through any instance's database, says so once."""
    integ = trio.a.new_integration(app_name=f"abc-{uuid.uuid4().hex[:6]}")
    token = trio.a.access_token(integ)
    for server in trio.all:
        assert server.rest("GET", "/databases", token).status_code == 200, server.workdir.name

    deleted = trio.c.delete_access(integ.client_id, integ.username)
    assert deleted["client_id"] == integ.client_id and deleted["username"] == integ.username
    answered = trio.c.cli_returned

    for server in trio.all:
        def cut_off(server: Grantry = server) -> None:
            assert_invalid_token(server.rest("GET", "/databases", token))
            assert_oauth_error(refresh(server, integ), 400, "invalid_grant")
            xml = server.xml(token, GET_LISTS, form=True)
            assert xml.status_code == 401, xml.text
        server.eventually(cut_off, f"the deleted account access refused on {server.workdir.name.upper()}",
                          since=answered)


# ---- 2. races over the three instances ---------------------------------------------------------------

def test_refresh_race_inside_the_reissue_window_mints_one_access_token(trio: Trio):
    """16 simultaneous refreshes of one refresh token over A, B and C: all succeed and hand
    back the same access token (README, step 3: the re-issue window is decided under the
    refresh token's lock), and the audit log records one issuance."""
    integ = trio.a.new_integration(app_name=f"race-{uuid.uuid4().hex[:6]}")
    results = race(trio.all, lambda server, http, _i: refresh(server, integ, http))

    assert [r.status_code for _, r in results] == [200] * RACERS, _statuses(results)
    tokens = {r.json()["access_token"] for _, r in results}
    assert len(tokens) == 1, tokens
    assert {r.json()["refresh_token"] for _, r in results} == {integ.refresh_token}
    issued = audit_of(trio.b, "access_token.issued", integ.client_id)
    assert len(issued) == 1, issued
    (token,) = tokens
    for server in trio.all:
        assert server.rest("GET", "/databases", token).status_code == 200


def test_rotation_race_rotates_once_and_a_late_reuse_revokes_the_family_everywhere(trio: Trio):
    """16 simultaneous refreshes of one refresh token of a rotating application over A, B and
    C: exactly one rotation happens. Every racer gets the same successor and access token (the
    losers are inside `tokens.rotation_grace`, which answers a lost response again, README
    "Refresh-token rotation"), one access token is recorded as issued, and the successor works
    on every instance. After the grace, the old token is taken as stolen: it is refused with
    invalid_grant and the successor and its access token stop on all three instances."""
    a = trio.a
    app = a.cli("app", "add", "--org", "default", "--name", f"rotating-{uuid.uuid4().hex[:6]}",
                "--rotate-refresh-tokens", *sum((["--scope", s] for s in ALL_GRANTS), []))
    username = f"rot-{uuid.uuid4().hex[:6]}"
    a.add_ui_user(username, grants=ALL_GRANTS)
    access = a.add_access(app["client_id"], username)
    integ = Integration("default", app["client_id"], app["client_secret"], username, access["refresh_token"])

    results = race(trio.all, lambda server, http, _i: refresh(server, integ, http))
    raced_at = time.monotonic()

    assert [r.status_code for _, r in results] == [200] * RACERS, _statuses(results)
    successors = {r.json()["refresh_token"] for _, r in results}
    assert len(successors) == 1, successors
    (successor,) = successors
    assert successor != integ.refresh_token
    tokens = {r.json()["access_token"] for _, r in results}
    assert len(tokens) == 1, tokens
    (token,) = tokens
    issued = audit_of(trio.c, "access_token.issued", integ.client_id)
    assert len(issued) == 1, issued
    for server in trio.all:
        assert server.rest("GET", "/databases", token).status_code == 200, server.workdir.name

    # the old token presented again once the grace is over (polled: inside the grace it is
    # answered like the race was)
    deadline = raced_at + ROTATION_GRACE_S + 5
    while True:
        late = refresh(trio.b, integ)
        if late.status_code != 200:
            break
        assert late.json()["refresh_token"] == successor, late.text
        assert time.monotonic() < deadline, "the reused refresh token still answered after the grace"
        time.sleep(0.1)
    assert_oauth_error(late, 400, "invalid_grant")
    reused_at = time.monotonic()
    for server in trio.all:
        def family_revoked(server: Grantry = server) -> None:
            assert_oauth_error(refresh(server, integ, refresh_token=successor), 400, "invalid_grant")
            assert_invalid_token(server.rest("GET", "/databases", token))
        server.eventually(family_revoked, f"the rotated family revoked on {server.workdir.name.upper()}",
                          since=reused_at)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_authorization_code_race_redeems_once(trio: Trio):
    """One authorization code (from the web-server flow's HTML pages on A), redeemed by 16
    simultaneous token requests over A, B and C: at most one 200; the others are 400
    invalid_grant (RFC 6749 §4.1.2, codes are single use). A code used more than once has its
    tokens revoked (README, "Third-party applications"): a reuse while the first redemption
    is still being stored leaves it without tokens, a later one revokes them, so afterwards
    no token of the code works on any instance; the audit log holds one
    `account_access.granted` per 200."""
    a = trio.a
    app = a.cli("app", "add", "--org", "default", "--name", f"code-{uuid.uuid4().hex[:6]}",
                "--redirect-uri", REDIRECT_URI, "--scope", "lists:read", "--scope", "lists:write")
    code, verifier = _code(a, app)

    def redeem(server: Grantry, http: requests.Session, _i: int) -> requests.Response:
        return http.post(server.url("/oauth/token"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT)

    results = race(trio.all, redeem)
    raced_at = time.monotonic()

    winners = [r for _, r in results if r.status_code == 200]
    assert len(winners) <= 1, _statuses(results)
    for _, r in results:
        if r.status_code != 200:
            assert_oauth_error(r, 400, "invalid_grant")
    granted = audit_of(a, "account_access.granted", app["client_id"])
    assert len(granted) == len(winners), granted
    if not winners:
        return
    won = winners[0].json()
    assert won["access_token"] and won["refresh_token"], won

    for server in trio.all:
        def revoked(server: Grantry = server) -> None:
            assert_invalid_token(server.rest("GET", "/databases", won["access_token"]))
            resp = server.http.post(server.url("/oauth/token"), data={
                "grant_type": "refresh_token", "refresh_token": won["refresh_token"]},
                auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT)
            assert_oauth_error(resp, 400, "invalid_grant")
        server.eventually(revoked, f"the reused code's tokens refused on {server.workdir.name.upper()}",
                          since=raced_at)


def _code(server: Grantry, app: dict) -> tuple[str, str]:
    """An authorization code for `app` through the sign-in and consent pages on `server`,
    with its PKCE verifier."""
    user = add_password_user(server)
    verifier, challenge = _pkce()
    query = urlencode({"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT_URI,
                       "scope": "lists:read", "state": secrets.token_urlsafe(8), "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    browser = Browser()
    try:
        location = browser.authorize(server.url("/oauth/authorize?" + query), *user)
    finally:
        browser.close()
    code = parse_qs(urlsplit(location).query)["code"][0]
    assert code.startswith("gac_"), location
    return code, verifier


def test_a_code_reused_during_its_first_redemption_still_revokes_what_it_issued(trio: Trio):
    """Two simultaneous redemptions of one code, on A and on B, repeated with fresh codes:
    each time at most one gets tokens and the other invalid_grant, and then no token of the
    code may work: README, "Third-party applications", a second redemption revokes the tokens
    the first one issued (RFC 6749 §4.1.2), however close together the two arrive (a reuse
    during the first redemption leaves it without tokens: both answers are invalid_grant)."""
    a = trio.a
    app = a.cli("app", "add", "--org", "default", "--name", f"code2-{uuid.uuid4().hex[:6]}",
                "--redirect-uri", REDIRECT_URI, "--scope", "lists:read")
    for attempt in range(8):
        code, verifier = _code(a, app)

        def redeem(server: Grantry, http: requests.Session, _i: int) -> requests.Response:
            return http.post(server.url("/oauth/token"), data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier}, auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT)

        results = race([trio.a, trio.b], redeem, n=2)
        raced_at = time.monotonic()
        winners = [r.json() for _, r in results if r.status_code == 200]
        assert len(winners) <= 1, _statuses(results)
        losers = [r for _, r in results if r.status_code != 200]
        said = [assert_oauth_error(r, 400, "invalid_grant")["error_description"] for r in losers]
        if not winners:
            assert any("no tokens were issued" in d for d in said), said
            continue
        assert "revoked" in said[0], said
        won = winners[0]

        def revoked() -> None:
            assert_invalid_token(trio.c.rest("GET", "/databases", won["access_token"]))
            assert introspect(trio.c, app["client_id"], app["client_secret"], won["refresh_token"]) == {"active": False}
        trio.c.eventually(revoked, f"attempt {attempt + 1}: the tokens of a code redeemed twice refused",
                          since=raced_at)


def _oauth1_app_and_token(server: Grantry) -> tuple[dict, dict, tuple[str, str]]:
    """An application, a user, and token credentials from the three-legged flow on `server`."""
    app = server.cli("app", "add", "--org", "default", "--name", f"oauth1-{uuid.uuid4().hex[:6]}",
                     "--redirect-uri", OAUTH1_CALLBACK, "--scope", "lists:read", "--scope", "lists:write")
    user = add_password_user(server)
    s = OAuth1Session(app["client_id"], client_secret=app["client_secret"], callback_uri=OAUTH1_CALLBACK)
    s.trust_env = False
    s.fetch_request_token(server.url("/oauth1/request_token"))
    answer = authorize_in_browser(s.authorization_url(server.url("/oauth1/authorize")), *user)
    assert answer.status_code == 303, answer.text[:2000]
    s.parse_authorization_response(answer.headers["Location"])
    token = s.fetch_access_token(server.url("/oauth1/access_token"))
    s.close()
    return app, token, user


def test_oauth1_nonce_race_admits_one_request(trio: Trio):
    """One signed REST call (same oauth_nonce, same oauth_timestamp, same signature) sent 16
    times at once over A, B and C: exactly one 200; the other 15 are 401 with the OAuth
    challenge and `nonce_used` (RFC 5849 §3.3: a nonce is remembered on every instance
    sharing the database, README "OAuth 1.0a"). Token credentials made through A sign
    calls to B and C (one shared key file)."""
    app, token, _user = _oauth1_app_and_token(trio.a)
    for server in (trio.b, trio.c):
        ok = server.http.get(server.url("/rest/databases"), timeout=HTTP_TIMEOUT,
                             auth=OAuth1(app["client_id"], client_secret=app["client_secret"],
                                         resource_owner_key=token["oauth_token"],
                                         resource_owner_secret=token["oauth_token_secret"]))
        assert ok.status_code == 200, (server.workdir.name, ok.text)

    client = OAuth1Client(app["client_id"], client_secret=app["client_secret"],
                          resource_owner_key=token["oauth_token"], resource_owner_secret=token["oauth_token_secret"],
                          nonce=secrets.token_hex(16), timestamp=str(int(time.time())))
    # the same signed request for every instance: the signature covers the host, so each
    # instance gets the request signed for its own URL, with the one nonce and timestamp
    signed = {s.workdir.name: client.sign(s.url("/rest/databases"))[:2] for s in trio.all}

    def send(server: Grantry, http: requests.Session, _i: int) -> requests.Response:
        uri, headers = signed[server.workdir.name]
        return http.get(uri, headers=headers, timeout=HTTP_TIMEOUT)

    results = race(trio.all, send)
    assert sorted(r.status_code for _, r in results) == [200] + [401] * (RACERS - 1), _statuses(results)
    for _, r in results:
        if r.status_code == 401:
            assert r.headers.get("WWW-Authenticate") == 'OAuth realm="grantry"', r.headers
            assert "nonce_used" in r.text, r.text


def test_oauth1_temporary_credentials_race_exchanges_once(trio: Trio):
    """One set of authorized temporary credentials exchanged by 16 simultaneous
    `POST /oauth1/access_token` (each with its own nonce) over A, B and C: exactly one gets
    token credentials; the other 15 are 401 `token_rejected` (README, "OAuth 1.0a": temporary
    credentials are used once). The audit log holds one `oauth1_token.issued`, and the
    credentials issued open the APIs on every instance."""
    a = trio.a
    app = a.cli("app", "add", "--org", "default", "--name", f"oauth1-{uuid.uuid4().hex[:6]}",
                "--redirect-uri", OAUTH1_CALLBACK, "--scope", "lists:read")
    user = add_password_user(a, grants=("lists:read",))
    s = OAuth1Session(app["client_id"], client_secret=app["client_secret"], callback_uri=OAUTH1_CALLBACK)
    s.trust_env = False
    temp = s.fetch_request_token(a.url("/oauth1/request_token"))
    answer = authorize_in_browser(s.authorization_url(a.url("/oauth1/authorize")), *user)
    assert answer.status_code == 303, answer.text[:2000]
    verifier = parse_qs(urlsplit(answer.headers["Location"]).query)["oauth_verifier"][0]
    s.close()

    def exchange(server: Grantry, http: requests.Session, _i: int) -> requests.Response:
        auth = OAuth1(app["client_id"], client_secret=app["client_secret"],
                      resource_owner_key=temp["oauth_token"], resource_owner_secret=temp["oauth_token_secret"],
                      verifier=verifier)
        return http.post(server.url("/oauth1/access_token"), auth=auth, timeout=HTTP_TIMEOUT)

    results = race(trio.all, exchange)
    winners = [r for _, r in results if r.status_code == 200]
    assert len(winners) == 1, _statuses(results)
    for _, r in results:
        if r.status_code != 200:
            assert r.status_code == 401, (r.status_code, r.text)
            assert r.headers.get("WWW-Authenticate") == 'OAuth realm="grantry"', r.headers
            assert parse_qs(r.text).get("oauth_problem") == ["token_rejected"], r.text
    creds = parse_qs(winners[0].text)
    assert creds["oauth_token"][0].startswith("goa_"), winners[0].text
    issued = [e for e in a.audit() if e["action"] == "oauth1_token.issued" and e["actor"] == app["client_id"]]
    assert len(issued) == 1, issued
    for server in trio.all:
        resp = server.http.get(server.url("/rest/databases"), timeout=HTTP_TIMEOUT,
                               auth=OAuth1(app["client_id"], client_secret=app["client_secret"],
                                           resource_owner_key=creds["oauth_token"][0],
                                           resource_owner_secret=creds["oauth_token_secret"][0]))
        assert resp.status_code == 200, (server.workdir.name, resp.text)


def test_racing_xml_logins_never_exceed_the_session_cap(trio: Trio):
    """16 simultaneous XML API `Login`s of one organization over A, B and C, with
    `sessions.max_per_org` = 4: exactly 4 get a session and 12 get business Fault 147 (HTTP
    200), as README "Legacy clients" promises ("Racing Logins never exceed the cap"); each
    session works on every instance, and after one `Logout` one more `Login` succeeds."""
    a = trio.a
    org = f"org{uuid.uuid4().hex[:8]}"
    a.cli("org", "create", "--name", org, "--admin", f"admin-{org}", "--email", f"admin@{org}.example")
    a.add_api_user("feeder", org=org, grants=["lists:read"])
    key = a.generate_key("feeder", org=org)
    login = envelope(f"<Login><USERNAME>feeder</USERNAME><PASSWORD>{key.secret}</PASSWORD></Login>")

    def send(server: Grantry, http: requests.Session, _i: int) -> requests.Response:
        return http.post(server.url("/XMLAPI"), data={"xml": login}, timeout=HTTP_TIMEOUT)

    results = race(trio.all, send)
    assert [r.status_code for _, r in results] == [200] * RACERS, _statuses(results)
    sessions = []
    refused = 0
    for _, r in results:
        if "<SUCCESS>TRUE</SUCCESS>" in r.text:
            sessions.append(xml_ok(r).findtext("SESSION_ENCODING"))
        else:
            assert "<errorid>147</errorid>" in r.text, r.text
            refused += 1
    assert (len(sessions), refused) == (MAX_SESSIONS, RACERS - MAX_SESSIONS), _statuses(results)

    for encoding, server in zip(sessions, [trio.a, trio.b, trio.c, trio.a]):
        resp = server.http.post(server.url("/XMLAPI" + encoding), data={"xml": GET_LISTS}, timeout=HTTP_TIMEOUT)
        xml_ok(resp)
    xml_ok(trio.b.http.post(trio.b.url("/XMLAPI" + sessions[0]), data={"xml": envelope("<Logout/>")},
                            timeout=HTTP_TIMEOUT))
    xml_ok(trio.c.http.post(trio.c.url("/XMLAPI"), data={"xml": login}, timeout=HTTP_TIMEOUT))


# ---- 3. migrations --------------------------------------------------------------------------------------

def test_three_instances_started_together_migrate_an_empty_database_once(grantry_bin, tmp_path):
    """Three instances spawned at the same moment on a brand-new empty database (README,
    "Running on PostgreSQL": migrations run under an advisory lock, so several instances may
    start together): all three become healthy and ready, sqlx's `_sqlx_migrations` holds
    each of the repository's migrations exactly once, successfully, and every instance
    serves a refresh-token exchange."""
    dbname, url = _create_database()
    servers = _instances(tmp_path, url, _shared_env(tmp_path))
    passed = False
    try:
        start_together(servers)
        for server in servers:
            ready = server.http.get(server.url("/readyz"), timeout=HTTP_TIMEOUT)
            assert ready.status_code == 200, (server.workdir.name, ready.status_code, ready.text)

        rows = _psql_rows(url, "SELECT version, success, count(*) OVER (PARTITION BY version) "
                               "FROM _sqlx_migrations ORDER BY version")
        expected = sorted(int(p.name.split("_", 1)[0]) for p in MIGRATIONS_DIR.glob("*.sql"))
        assert expected, MIGRATIONS_DIR
        assert [int(v) for v, _, _ in rows] == expected, rows
        assert all(ok == "t" and n == "1" for _, ok, n in rows), rows

        integ = servers[0].new_integration()
        tokens = set()
        for server in servers:
            resp = refresh(server, integ)
            assert resp.status_code == 200, (server.workdir.name, resp.text)
            tokens.add(resp.json()["access_token"])
        assert len(tokens) == 1, tokens
        passed = True
    finally:
        if not passed:
            _print_logs(servers)
        for server in servers:
            server.stop()
            server.http.close()
        _psql(PG_SERVER_URL, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
