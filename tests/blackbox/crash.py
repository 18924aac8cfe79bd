"""Crash-consistency driver: what grantry acknowledged survives a SIGKILL.

A few threads send mixed load to one real `grantry serve`: token issuance (the refresh grant,
`client_credentials` with API secret keys), RFC 7009 revocation, account access and API key
creation and deletion through the CLI, REST list and contact writes, Event API posts and XML
API `Login`/`Logout` sessions. Every acknowledged answer (a 2xx with its body, or a CLI command
that exited 0 with its `--json` output) goes into a ledger. At a random moment the server is
killed with SIGKILL, restarted on the same database and port, and every ledger entry is checked
against what a client relies on:

* an acknowledged access token (refresh grant, `client_credentials`) still opens the REST API,
  and a refresh inside the re-issue window hands back the same access token (README,
  walk-through step 3), unless it was revoked;
* an acknowledged revocation still holds: the access token is refused with 401 (RFC 6750 §3.1),
  the refresh token with `invalid_grant` (RFC 6749 §5.2), and with it its access tokens (README,
  "Introspection, revocation, metadata");
* an acknowledged refresh token from `grantry access add` still trades for an access token;
* an acknowledged API secret key still opens the APIs; an acknowledged key deletion holds once
  its `api_keys.delete_grace` is over: the key, its `client_credentials` tokens and the `Login`
  sessions opened with it are refused (README, "API users", "XML API sessions");
* an acknowledged list and contact can be read back with the values that were written;
* an acknowledged Event API event is stored (README, "The Event API": "stores the event durably
  and only then answers"). The Event API has no read side, so the event is looked up by its
  transaction id in the database, read-only, as an operator would;
* an acknowledged `Login` session still answers calls, unless its `Logout` was acknowledged or
  its key's deletion grace is over; an acknowledged `Logout` still holds (Fault 145).

A request whose answer did not arrive (the connection was reset by the kill) is *unknown*: its
effect may or may not be there, and nothing is asserted about it, nor about anything it could
have changed (a token whose revocation is unknown may work or not). On SQLite the database file
is also checked with `PRAGMA integrity_check` (read-only) between the kill and the restart.

Any other answer during the load (a 5xx, an unexpected 4xx, a connection error while the server
was up) is a failure too, and so is any ledger entry that does not hold after the restart: each
is reported with what was acknowledged and what was found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from conftest import (
    ALL_GRANTS,
    EVENTS_PATH,
    GRANTRY_BIN,
    HTTP_TIMEOUT,
    PG_SERVER_URL,
    STARTUP_TIMEOUT,
    Grantry,
    _child_env,
    _free_port,
    _psql,
    _with_database,
    envelope,
)
from test_oauth_clients import parse_forms

API_GRANTS = [*ALL_GRANTS, "events:write"]
# api_keys.delete_grace, short so that a deletion acknowledged in a cycle is in force when the
# cycle's checks run; stops_at is printed to the second, so a key may work up to a second longer
DELETE_GRACE_S = 1
CRASH_ENV = {
    "GRANTRY_API_KEYS__DELETE_GRACE": f"{DELETE_GRACE_S}s",
    # the checks present revoked and deleted credentials on purpose, many times: the limits on
    # guessing (README, "Limits on guessing secrets") must not turn those 401s into 429s
    "GRANTRY_LIMITS__SOURCE_FAILURES": "1000000",
    "GRANTRY_LIMITS__LOCKOUT_AFTER": "1000000",
    # every cycle opens sessions and ends only some of them (README, sessions.max_per_org)
    "GRANTRY_SESSIONS__MAX_PER_ORG": "1000000",
    "GRANTRY_LOG": "info",
}
# never contacted: the driver reads the code from the redirect's Location header
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
GET_LISTS = envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>")
WORKERS = 5
LOAD_S = (0.5, 2.0)
# a short pause between one worker's operations keeps the ledger (and so the checks of every
# cycle) to a size the 2-core machine verifies in a few seconds
OP_PAUSE_S = (0.0, 0.01)


class Killed(Exception):
    """The request's answer did not arrive because the server was killed."""


# ---- the server under test -----------------------------------------------------------------------

class CrashServer(Grantry):
    """A Grantry that keeps its port across restarts, is stopped with SIGKILL, and appends its
    logs of every run to the same files."""

    def __init__(self, backend: str, workdir: Path, database_url: str | None):
        super().__init__(backend, workdir, database_url, env=CRASH_ENV)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.runs = 0

    def start(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            self.runs += 1
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                marker = f"\n==== run {self.runs} ====\n".encode()
                out.write(marker)
                err.write(marker)
                out.flush()
                err.flush()
                self.proc = subprocess.Popen(
                    [str(GRANTRY_BIN), *self.global_args(), "serve", "--listen", f"127.0.0.1:{self.port}"],
                    stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=self.workdir,
                    env=_child_env(self.env),
                )
            if self._wait_healthy():
                return
            self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None
            tail = self.stderr_path.read_text(errors="replace")[-4000:]
            # the port of the killed run may take a moment to be free again
            if "in use" not in tail.lower() or time.monotonic() > deadline:
                raise RuntimeError(f"grantry did not become healthy on port {self.port}:\n{tail}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no last commit."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "grantry.db"


def integrity_check(path: Path) -> str:
    """`PRAGMA integrity_check` on the SQLite file, opened read-only (the WAL is read, not
    checkpointed into the file)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "\n".join(str(r[0]) for r in rows)


def stored_events(server: CrashServer, transaction_ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """The events with these transaction ids as the database holds them: id -> (event-id,
    event-key, params as stored JSON). Read-only, on either backend."""
    if not transaction_ids:
        return {}
    sql = "SELECT transaction_id, event_id, event_key, params FROM events"
    if server.backend == "sqlite":
        conn = sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(sql).fetchall()
        finally:
            conn.close()
    else:
        proc = subprocess.run(
            ["psql", server.database_url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
             "SELECT json_agg(json_build_array(transaction_id, event_id, event_key, params)) FROM events"],
            capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        rows = json.loads(proc.stdout.strip() or "null") or []
    wanted = set(transaction_ids)
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[0] in wanted}


# ---- what was acknowledged --------------------------------------------------------------------

@dataclass
class Key:
    """An API user's secret key as `grantry key generate` handed it over."""

    username: str
    key_id: str
    secret: str
    bearer: str
    deleted_stops_at: float | None = None  # set once a deletion was acknowledged


@dataclass
class Integ:
    """An application, its account access and what the token endpoint answered for it."""

    client_id: str
    client_secret: str
    refresh_token: str
    access_tokens: list[str] = field(default_factory=list)  # acknowledged, newest last
    revoked: set[str] = field(default_factory=set)  # acknowledged revocations (token values)
    revoke_unknown: set[str] = field(default_factory=set)  # revocations whose answer was lost
    retired: bool = False  # no more load on it (a revocation was sent)


@dataclass
class Session:
    session_id: str
    key: Key
    logged_out: bool = False
    logout_unknown: bool = False


@dataclass
class Entry:
    """One acknowledged answer."""

    kind: str
    cycle: int
    what: dict
    ref: object = None  # the Integ, Key or Session it belongs to


class Ledger:
    """Every acknowledged answer, the unknown ones, and the failures seen during the load."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[Entry] = []
        self.unknown: Counter = Counter()
        self.failures: list[str] = []

    def ack(self, kind: str, cycle: int, what: dict, ref: object = None) -> None:
        with self.lock:
            self.entries.append(Entry(kind, cycle, what, ref))

    def lost_answer(self, kind: str) -> None:
        with self.lock:
            self.unknown[kind] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


# ---- the load ----------------------------------------------------------------------------------

def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class State:
    """What one worker owns on one database: its API users and keys, integrations, lists and
    sessions. Workers never share state, so their operations need no coordination."""

    def __init__(self, index: int):
        self.index = index
        self.ui_user = f"crash-ui-{index}"
        self.ui_password = secrets.token_urlsafe(18)
        self.api_users: dict[str, list[Key]] = {}  # live keys in slot order (slot 1 first)
        self.uncertain_users: set[str] = set()  # a CLI command on it failed: its slots are unknown
        self.integs: list[Integ] = []
        self.cc_tokens: list[tuple[str, Key]] = []
        self.lists: list[int] = []
        self.sessions: list[Session] = []
        self.contacts = 0
        self.apps = 0
        self.first_pass: list[str] | None = None  # operations not yet run on this database

    def live_keys(self) -> list[Key]:
        return [k for user, keys in self.api_users.items() if user not in self.uncertain_users for k in keys]


class Worker(threading.Thread):
    """Sends one worker's mixed load until the driver kills the server."""

    def __init__(self, driver: Driver, state: State, seed: int):
        super().__init__(name=f"crash-worker-{state.index}", daemon=True)
        self.driver = driver
        self.state = state
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.http.trust_env = False
        self.ops: list[tuple[Callable[[], None], int]] = [
            (self.op_exchange, 4), (self.op_access_add, 2), (self.op_client_credentials, 3),
            (self.op_revoke, 2), (self.op_key_generate, 1), (self.op_key_delete, 1),
            (self.op_create_list, 2), (self.op_add_contact, 5), (self.op_event, 5),
            (self.op_login, 2), (self.op_logout, 1), (self.op_session_call, 2),
            (self.op_authorization_code, 2),
        ]

    @property
    def ledger(self) -> Ledger:
        return self.driver.ledger

    @property
    def cycle(self) -> int:
        return self.driver.cycle

    def run(self) -> None:
        ops, weights = zip(*self.ops)
        if self.state.first_pass is None:
            # on a fresh database each worker first runs every operation once, in its own order,
            # so that even a short run acknowledges (and so checks) every kind of write
            self.state.first_pass = [op.__name__ for op in ops]
            self.rng.shuffle(self.state.first_pass)
        try:
            while not self.driver.killed.is_set():
                if self.state.first_pass:
                    op = getattr(self, self.state.first_pass.pop())
                else:
                    op = self.rng.choices(ops, weights)[0]
                try:
                    op()
                except Killed:
                    break
                pause = self.rng.uniform(*OP_PAUSE_S)
                if pause:
                    time.sleep(pause)
        except Exception as exc:  # a bug in the driver must fail the run, not hang it
            self.ledger.fail(f"worker {self.state.index} crashed: {exc!r}")
        finally:
            self.http.close()

    # -- transport --

    def _send(self, kind: str, method: str, path: str, **kwargs) -> requests.Response:
        """One request; a missing answer after the kill is unknown (raises Killed), before it
        a failure."""
        try:
            return self.http.request(method, self.driver.server.url(path), timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            if self.driver.killed.is_set():
                self.ledger.lost_answer(kind)
                raise Killed() from exc
            self.ledger.fail(f"{kind}: no answer while the server was up: {exc!r}")
            raise Killed() from exc

    def _unexpected(self, kind: str, resp: requests.Response, what: object = "") -> None:
        self.ledger.fail(f"{kind}: unexpected answer {resp.status_code} during the load ({what}): {resp.text[:500]}")

    def _cli(self, kind: str, *args: str) -> dict | None:
        proc = self.driver.server.cli_run(*args)
        if proc.returncode != 0:
            self.ledger.fail(f"{kind}: grantry {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
            return None
        return json.loads(proc.stdout)

    def _key(self) -> Key | None:
        keys = self.state.live_keys()
        return self.rng.choice(keys) if keys else None

    # -- operations --

    def op_access_add(self) -> None:
        """CLI: a new application and account access for this worker's UI user."""
        st = self.state
        st.apps += 1
        app = self._cli("access_add", "app", "add", "--org", "default", "--name", f"crash-{st.index}-{st.apps}",
                        *[a for s in ALL_GRANTS for a in ("--scope", s)])
        if app is None:
            return
        access = self._cli("access_add", "access", "add", "--org", "default", "--client-id", app["client_id"],
                           "--username", st.ui_user, "--by", "admin")
        if access is None:
            return
        integ = Integ(app["client_id"], app["client_secret"], access["refresh_token"])
        st.integs.append(integ)
        self.ledger.ack("refresh_token", self.cycle, {"client_id": integ.client_id,
                                                      "refresh_token": integ.refresh_token}, integ)

    def op_authorization_code(self) -> None:
        """The web-server flow with PKCE (README, "Third-party applications"; RFC 6749 §4.1,
        RFC 7636): sign in, consent, redeem the code. Only the redemption's answer goes into the
        ledger: its access and refresh token."""
        st = self.state
        st.apps += 1
        app = self._cli("code_tokens", "app", "add", "--org", "default", "--name", f"crash-web-{st.index}-{st.apps}",
                        "--redirect-uri", REDIRECT_URI, "--scope", "lists:read", "--scope", "lists:write")
        if app is None:
            return
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        url = "/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT_URI,
            "scope": "lists:read lists:write", "state": state, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        browser = requests.Session()
        browser.trust_env = False
        self.http, api = browser, self.http  # the browser's cookies stay out of the API calls
        try:
            page = self._send("authorize", "GET", url, allow_redirects=False)
            forms = parse_forms(page.text) if page.status_code == 200 else []
            if len(forms) != 1:
                return self._unexpected("authorize", page, "sign-in page")
            fields = dict(forms[0]["fields"], username=st.ui_user, password=st.ui_password)
            signed_in = self._send("authorize", "POST", urlsplit(urljoin(page.url, forms[0]["action"])).path,
                                   data=fields, allow_redirects=False)
            if signed_in.status_code != 303:
                return self._unexpected("authorize", signed_in, "sign-in")
            page = self._send("authorize", "GET", url, allow_redirects=False)
            forms = parse_forms(page.text) if page.status_code == 200 else []
            if len(forms) != 1:
                return self._unexpected("authorize", page, "consent page")
            answer = self._send("authorize", "POST", urlsplit(urljoin(page.url, forms[0]["action"])).path,
                                data=dict(forms[0]["fields"], decision="allow"), allow_redirects=False)
            location = answer.headers.get("Location", "")
            query = parse_qs(urlsplit(location).query)
            if answer.status_code != 303 or query.get("state") != [state] or not query.get("code"):
                return self._unexpected("authorize", answer, f"consent: Location {location!r}")
        finally:
            self.http = api
            browser.close()
        resp = self._send("code_tokens", "POST", "/oauth/token", data={
            "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, auth=(app["client_id"], app["client_secret"]))
        if resp.status_code != 200:
            return self._unexpected("code_tokens", resp, app["client_id"])
        body = resp.json()
        integ = Integ(app["client_id"], app["client_secret"], body["refresh_token"], [body["access_token"]])
        st.integs.append(integ)
        self.ledger.ack("code_tokens", self.cycle, {"client_id": integ.client_id,
                                                    "access_token": body["access_token"],
                                                    "refresh_token": body["refresh_token"]}, integ)

    def op_exchange(self) -> None:
        """The refresh grant (README, walk-through step 3)."""
        fresh = [i for i in self.state.integs if not i.retired]
        if not fresh:
            return self.op_access_add()
        integ = self.rng.choice(fresh)
        resp = self._send("access_token", "POST", "/oauth/token", data={
            "grant_type": "refresh_token", "client_id": integ.client_id, "client_secret": integ.client_secret,
            "refresh_token": integ.refresh_token})
        if resp.status_code != 200:
            return self._unexpected("access_token", resp, integ.client_id)
        token = resp.json()["access_token"]
        if integ.access_tokens and token != integ.access_tokens[-1]:
            self.ledger.fail(f"access_token: a second exchange inside the re-issue window answered another token "
                             f"({integ.access_tokens[-1]} then {token}) for client {integ.client_id}")
        if token not in integ.access_tokens:
            integ.access_tokens.append(token)
        self.ledger.ack("access_token", self.cycle, {"client_id": integ.client_id, "access_token": token}, integ)

    def op_revoke(self) -> None:
        """RFC 7009: the access token, or the refresh token with its access tokens."""
        candidates = [i for i in self.state.integs if not i.retired and i.access_tokens]
        if not candidates:
            return self.op_exchange()
        integ = self.rng.choice(candidates)
        integ.retired = True  # nothing more is sent with it, whatever the answer
        if self.rng.random() < 0.5:
            token, hint, kind = integ.access_tokens[-1], "access_token", "revoke_access"
        else:
            token, hint, kind = integ.refresh_token, "refresh_token", "revoke_refresh"
        integ.revoke_unknown.add(token)
        resp = self._send(kind, "POST", "/oauth/revoke", data={"token": token, "token_type_hint": hint},
                          auth=(integ.client_id, integ.client_secret))
        if resp.status_code != 200:
            return self._unexpected(kind, resp, integ.client_id)
        integ.revoke_unknown.discard(token)
        integ.revoked.add(token)
        self.ledger.ack(kind, self.cycle, {"client_id": integ.client_id, "token": token}, integ)

    def op_client_credentials(self) -> None:
        """The deprecated client_credentials path with an API secret key (README, "API users")."""
        key = self._key()
        if key is None:
            return self.op_key_generate()
        resp = self._send("cc_token", "POST", "/oauth/token", data={
            "grant_type": "client_credentials", "client_id": key.key_id, "client_secret": key.secret})
        if resp.status_code != 200:
            return self._unexpected("cc_token", resp, key.key_id)
        token = resp.json()["access_token"]
        self.state.cc_tokens.append((token, key))
        self.ledger.ack("cc_token", self.cycle, {"key_id": key.key_id, "access_token": token}, key)

    def op_key_generate(self) -> None:
        st = self.state
        users = [u for u, keys in st.api_users.items() if len(keys) < 2 and u not in st.uncertain_users]
        if not users or self.rng.random() < 0.2:
            username = f"crash-api-{st.index}-{len(st.api_users) + 1}"
            if self._cli("key_created", "user", "add", "--org", "default", "--username", username,
                         "--email", f"{username}@example.com", "--kind", "api",
                         *[a for g in API_GRANTS for a in ("--grant", g)]) is None:
                return
            st.api_users[username] = []
        else:
            username = self.rng.choice(users)
        out = self._cli("key_created", "key", "generate", "--org", "default", "--username", username)
        if out is None:
            st.uncertain_users.add(username)
            return
        if out["slot"] != len(st.api_users[username]) + 1:
            self.ledger.fail(f"key_created: slot {out['slot']} for {username}, which had "
                             f"{len(st.api_users[username])} live keys")
        key = Key(username, out["key_id"], out["secret"], out["bearer"])
        st.api_users[username].append(key)
        self.ledger.ack("key_created", self.cycle, {"username": username, "key_id": key.key_id,
                                                    "slot": out["slot"]}, key)

    def op_key_delete(self) -> None:
        st = self.state
        users = [u for u, keys in st.api_users.items() if keys and u not in st.uncertain_users]
        # keep at least two live keys to the worker for the rest of the load
        if len(st.live_keys()) < 3 or not users:
            return self.op_key_generate()
        username = self.rng.choice(users)
        keys = st.api_users[username]
        slot = self.rng.randint(1, len(keys))
        out = self._cli("key_deleted", "key", "delete", "--org", "default", "--username", username,
                        "--slot", str(slot))
        if out is None:
            st.uncertain_users.add(username)
            return
        key = keys.pop(slot - 1)
        key.deleted_stops_at = _parse_time(out["stops_at"])
        if out["deleted_slot"] != slot or out["promoted"] != (slot == 1 and len(keys) == 1):
            self.ledger.fail(f"key_deleted: deleting slot {slot} of {username} ({len(keys) + 1} keys) "
                             f"answered {out}")
        self.ledger.ack("key_deleted", self.cycle, {"username": username, "key_id": key.key_id, "slot": slot,
                                                    "stops_at": out["stops_at"]}, key)

    def op_create_list(self) -> None:
        key = self._key()
        if key is None:
            return self.op_key_generate()
        name = f"crash-list-{uuid.uuid4().hex[:10]}"
        resp = self._send("list_created", "POST", "/rest/databases", json={"name": name},
                          headers={"Authorization": f"Bearer {key.bearer}"})
        if resp.status_code != 201:
            return self._unexpected("list_created", resp, name)
        list_id = resp.json()["data"]["id"]
        self.state.lists.append(list_id)
        self.ledger.ack("list_created", self.cycle, {"id": list_id, "name": name})

    def op_add_contact(self) -> None:
        key = self._key()
        if key is None or not self.state.lists:
            return self.op_create_list()
        list_id = self.rng.choice(self.state.lists)
        self.state.contacts += 1
        email = f"c{self.state.index}-{self.state.contacts}-{uuid.uuid4().hex[:6]}@example.com"
        columns = {"First Name": f"N{self.state.contacts}", "City": self.rng.choice(["Oslo", "Lyon", "Kyiv"])}
        resp = self._send("contact_added", "POST", f"/rest/databases/{list_id}/contacts",
                          json={"email": email, "columns": columns}, headers={"Authorization": f"Bearer {key.bearer}"})
        if resp.status_code != 201:
            return self._unexpected("contact_added", resp, (list_id, email))
        contact_id = resp.json()["data"]["id"]
        self.ledger.ack("contact_added", self.cycle, {"list_id": list_id, "id": contact_id, "email": email,
                                                      "columns": columns})

    def op_event(self) -> None:
        key = self._key()
        if key is None:
            return self.op_key_generate()
        body = {"event-id": f"evt_{uuid.uuid4().hex[:12]}", "event-key": f"k{self.rng.randint(1, 10 ** 6)}@example.com",
                "event-params": {"n": self.rng.randint(0, 1000), "ok": self.rng.random() < 0.5, "s": "x" * 16}}
        # the key itself as the bearer, or a client_credentials token of a live key
        bearer = key.bearer
        tokens = [t for t, k in self.state.cc_tokens if k.deleted_stops_at is None]
        if tokens and self.rng.random() < 0.3:
            bearer = self.rng.choice(tokens)
        resp = self._send("event", "POST", EVENTS_PATH, json=body, headers={"Authorization": f"Bearer {bearer}"})
        if resp.status_code != 200:
            return self._unexpected("event", resp, body["event-id"])
        self.ledger.ack("event", self.cycle, {"transaction_id": resp.json()["transaction-id"], **body})

    def op_login(self) -> None:
        """XML API Login with an API user's secret key (README, "XML API sessions")."""
        key = self._key()
        if key is None:
            return self.op_key_generate()
        resp = self._send("session", "POST", "/XMLAPI", data={"xml": envelope(
            f"<Login><USERNAME>{key.username}</USERNAME><PASSWORD>{key.secret}</PASSWORD></Login>")})
        result = _xml_result(resp)
        if resp.status_code != 200 or result is None or result.findtext("SUCCESS", "").upper() != "TRUE":
            return self._unexpected("session", resp, key.username)
        session = Session(result.findtext("SESSIONID") or "", key)
        self.state.sessions.append(session)
        self.ledger.ack("session", self.cycle, {"session_id": session.session_id, "username": key.username}, session)

    def _open_sessions(self) -> list[Session]:
        return [s for s in self.state.sessions
                if not s.logged_out and not s.logout_unknown and s.key.deleted_stops_at is None]

    def op_session_call(self) -> None:
        """A call on a session: it must answer while the server is up (not a write to check)."""
        sessions = self._open_sessions()
        if not sessions:
            return self.op_login()
        session = self.rng.choice(sessions)
        resp = self._send("session_call", "POST", f"/XMLAPI;jsessionid={session.session_id}", data={"xml": GET_LISTS})
        result = _xml_result(resp)
        if resp.status_code != 200 or result is None or result.findtext("SUCCESS", "").upper() != "TRUE":
            self._unexpected("session_call", resp, session.session_id)

    def op_logout(self) -> None:
        sessions = self._open_sessions()
        if not sessions:
            return self.op_login()
        session = self.rng.choice(sessions)
        session.logout_unknown = True
        resp = self._send("logout", "POST", f"/XMLAPI;jsessionid={session.session_id}",
                          data={"xml": envelope("<Logout/>")})
        result = _xml_result(resp)
        if resp.status_code != 200 or result is None or result.findtext("SUCCESS", "").upper() != "TRUE":
            return self._unexpected("logout", resp, session.session_id)
        session.logout_unknown = False
        session.logged_out = True
        self.ledger.ack("logout", self.cycle, {"session_id": session.session_id}, session)


def _xml_result(resp: requests.Response) -> ET.Element | None:
    try:
        return ET.fromstring(resp.content).find("./Body/RESULT")
    except ET.ParseError:
        return None


def _xml_errorid(resp: requests.Response) -> str | None:
    try:
        return ET.fromstring(resp.content).findtext("./Body/Fault/detail/error/errorid")
    except ET.ParseError:
        return None


# ---- the checks after the restart ----------------------------------------------------------------

class Checker:
    """Checks every ledger entry against the restarted server. Each check returns None when the
    entry holds, "unknown" when an unknown answer makes either outcome right, "covered" when a
    later acknowledged change (a revocation, a key deletion, a Logout) is checked in its place,
    and raises AssertionError (with what was acknowledged and what was found) when it does not
    hold."""

    def __init__(self, server: CrashServer, auditor: Key):
        self.server = server
        self.auditor = auditor
        self.local = threading.local()

    def http(self) -> requests.Session:
        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
            self.local.http.trust_env = False
        return self.local.http

    def get(self, path: str, bearer: str) -> requests.Response:
        return self.http().get(self.server.url(path), headers={"Authorization": f"Bearer {bearer}"},
                               timeout=HTTP_TIMEOUT)

    def token(self, data: dict, auth=None) -> requests.Response:
        return self.http().post(self.server.url("/oauth/token"), data=data, auth=auth, timeout=HTTP_TIMEOUT)

    def exchange(self, integ: Integ) -> requests.Response:
        return self.token({"grant_type": "refresh_token", "client_id": integ.client_id,
                           "client_secret": integ.client_secret, "refresh_token": integ.refresh_token})

    def xml_session(self, session_id: str) -> requests.Response:
        return self.http().post(self.server.url(f"/XMLAPI;jsessionid={session_id}"), data={"xml": GET_LISTS},
                                timeout=HTTP_TIMEOUT)

    @staticmethod
    def refused(resp: requests.Response, what: str) -> None:
        assert resp.status_code == 401, f"{what}: expected 401, found {resp.status_code}: {resp.text[:300]}"

    @staticmethod
    def opens(resp: requests.Response, what: str) -> None:
        assert resp.status_code == 200, f"{what}: expected 200, found {resp.status_code}: {resp.text[:300]}"

    # -- one per kind --

    def check(self, entry: Entry, events: dict) -> str | None:
        return getattr(self, f"check_{entry.kind}")(entry, events)

    def _integ_state(self, integ: Integ, access_token: str) -> str:
        """'revoked', 'unknown' or 'live' for this access token of the integration."""
        if access_token in integ.revoked or integ.refresh_token in integ.revoked:
            return "revoked"
        if access_token in integ.revoke_unknown or integ.refresh_token in integ.revoke_unknown:
            return "unknown"
        return "live"

    def check_access_token(self, entry: Entry, _events) -> str | None:
        integ: Integ = entry.ref
        token = entry.what["access_token"]
        state = self._integ_state(integ, token)
        resp = self.get("/rest/databases", token)
        if state == "revoked":
            self.refused(resp, f"acknowledged access token {token} of a revoked grant (client {integ.client_id})")
            return None
        if state == "unknown":
            return "unknown"
        self.opens(resp, f"acknowledged access token {token} (client {integ.client_id}, cycle {entry.cycle})")
        if integ.revoked or integ.revoke_unknown:
            return None
        again = self.exchange(integ)
        self.opens(again, f"refresh token of client {integ.client_id} after its acknowledged access token")
        assert again.json()["access_token"] == integ.access_tokens[-1], (
            f"refresh of client {integ.client_id} inside the re-issue window: acknowledged access token "
            f"{integ.access_tokens[-1]}, after the restart the token endpoint answered {again.json()['access_token']}")
        return None

    def check_code_tokens(self, entry: Entry, events) -> str | None:
        """The access token as any acknowledged one, and the refresh token still refreshes."""
        held = self.check_access_token(entry, events)
        if held is None and not entry.ref.revoked:
            return self.check_refresh_token(entry, events)
        return held

    def check_refresh_token(self, entry: Entry, _events) -> str | None:
        integ: Integ = entry.ref
        if integ.refresh_token in integ.revoked:
            return "covered"  # its revocation is checked on its own entry
        if integ.refresh_token in integ.revoke_unknown:
            return "unknown"
        self.opens(self.exchange(integ), f"acknowledged refresh token {integ.refresh_token} from `grantry access add` "
                                         f"(client {integ.client_id}, cycle {entry.cycle})")
        return None

    def check_revoke_access(self, entry: Entry, _events) -> str | None:
        token = entry.what["token"]
        self.refused(self.get("/rest/databases", token),
                     f"access token {token} whose revocation was acknowledged in cycle {entry.cycle}")
        return None

    def check_revoke_refresh(self, entry: Entry, _events) -> str | None:
        integ: Integ = entry.ref
        resp = self.exchange(integ)
        assert resp.status_code == 400 and resp.json().get("error") == "invalid_grant", (
            f"refresh token {integ.refresh_token} whose revocation was acknowledged in cycle {entry.cycle}: "
            f"expected 400 invalid_grant, found {resp.status_code}: {resp.text[:300]}")
        for token in integ.access_tokens:
            self.refused(self.get("/rest/databases", token),
                         f"access token {token} of refresh token {integ.refresh_token}, revoked in cycle {entry.cycle}")
        return None

    def _key_state(self, key: Key) -> str:
        if key.deleted_stops_at is None:
            return "live"
        return "deleted"  # the driver waited until every acknowledged deletion's grace was over

    def check_cc_token(self, entry: Entry, _events) -> str | None:
        key: Key = entry.ref
        token = entry.what["access_token"]
        resp = self.get("/rest/databases", token)
        if self._key_state(key) == "deleted":
            self.refused(resp, f"client_credentials token {token} of key {key.key_id} deleted past its grace")
        else:
            self.opens(resp, f"acknowledged client_credentials token {token} of key {key.key_id} (cycle {entry.cycle})")
        return None

    def check_key_created(self, entry: Entry, _events) -> str | None:
        key: Key = entry.ref
        if self._key_state(key) == "deleted":
            return "covered"  # checked on its deletion's entry
        self.opens(self.get("/rest/databases", key.bearer), f"acknowledged secret key {key.key_id} slot {entry.what['slot']} of {key.username} "
                         f"(cycle {entry.cycle})")
        return None

    def check_key_deleted(self, entry: Entry, _events) -> str | None:
        key: Key = entry.ref
        what = (f"secret key of {key.username} (slot {entry.what['slot']}) whose deletion was acknowledged in "
                f"cycle {entry.cycle}, stops_at {entry.what['stops_at']}")
        self.refused(self.get("/rest/databases", key.bearer), what)
        resp = self.token({"grant_type": "client_credentials", "client_id": key.key_id, "client_secret": key.secret})
        assert resp.status_code == 401 and resp.json().get("error") == "invalid_client", (
            f"{what}: client_credentials expected 401 invalid_client, found {resp.status_code}: {resp.text[:300]}")
        return None

    def check_list_created(self, entry: Entry, _events) -> str | None:
        resp = self.get(f"/rest/databases/{entry.what['id']}", self.auditor.bearer)
        what = f"acknowledged list {entry.what['id']} {entry.what['name']!r} (cycle {entry.cycle})"
        self.opens(resp, what)
        assert resp.json()["data"]["name"] == entry.what["name"], f"{what}: found {resp.json()['data']}"
        return None

    def check_contact_added(self, entry: Entry, _events) -> str | None:
        w = entry.what
        resp = self.get(f"/rest/databases/{w['list_id']}/contacts/{w['id']}", self.auditor.bearer)
        what = f"acknowledged contact {w['id']} {w['email']} in list {w['list_id']} (cycle {entry.cycle})"
        self.opens(resp, what)
        data = resp.json()["data"]
        assert data["email"] == w["email"] and data["columns"] == w["columns"], f"{what}: found {data}"
        return None

    def check_event(self, entry: Entry, events: dict) -> str | None:
        w = entry.what
        what = f"acknowledged event {w['event-id']} transaction {w['transaction_id']} (cycle {entry.cycle})"
        assert w["transaction_id"] in events, f"{what}: not in the events table after the restart"
        event_id, event_key, params = events[w["transaction_id"]]
        assert (event_id, event_key) == (w["event-id"], w["event-key"]), f"{what}: found {(event_id, event_key)}"
        assert json.loads(params) == w["event-params"], f"{what}: params found {params}"
        return None

    def check_session(self, entry: Entry, _events) -> str | None:
        session: Session = entry.ref
        if session.logged_out or self._key_state(session.key) == "deleted":
            return "covered"  # checked on the Logout's entry, or on its own for the deleted key
        if session.logout_unknown:
            return "unknown"
        resp = self.xml_session(session.session_id)
        result = _xml_result(resp)
        assert resp.status_code == 200 and result is not None and result.findtext("SUCCESS", "").upper() == "TRUE", (
            f"acknowledged Login session {session.session_id} of {session.key.username} (cycle {entry.cycle}): "
            f"found {resp.status_code}: {resp.text[:300]}")
        return None

    def check_logout(self, entry: Entry, _events) -> str | None:
        session: Session = entry.ref
        resp = self.xml_session(session.session_id)
        assert resp.status_code == 401 and _xml_errorid(resp) == "145", (
            f"session {session.session_id} whose Logout was acknowledged in cycle {entry.cycle}: expected 401 Fault "
            f"145, found {resp.status_code}: {resp.text[:300]}")
        return None

    def check_session_of_deleted_key(self, session: Session) -> None:
        resp = self.xml_session(session.session_id)
        assert resp.status_code == 401 and _xml_errorid(resp) == "145", (
            f"Login session {session.session_id} opened with key {session.key.key_id}, whose deletion's grace is over: "
            f"expected 401 Fault 145, found {resp.status_code}: {resp.text[:300]}")


# ---- the driver ------------------------------------------------------------------------------------

@dataclass
class CycleResult:
    cycle: int
    load_s: float
    acknowledged: int
    unknown: int
    restart_s: float
    verify_s: float
    checked: int
    integrity: str | None
    violations: list[str]
    failures: list[str]


@dataclass
class Summary:
    backend: str
    cycles: int = 0
    checked: Counter = field(default_factory=Counter)  # entry checks that held, per kind
    unknown_skipped: Counter = field(default_factory=Counter)  # entries left open by an unknown answer
    acknowledged: Counter = field(default_factory=Counter)  # acknowledged answers, per kind
    unknown: Counter = field(default_factory=Counter)  # answers lost to the kill, per kind
    integrity: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    databases: int = 0

    def add(self, other: Summary) -> None:
        self.cycles += other.cycles
        self.databases += other.databases
        for name in ("checked", "unknown_skipped", "acknowledged", "unknown", "integrity"):
            getattr(self, name).update(getattr(other, name))
        self.lost += other.lost
        self.failures += other.failures

    def lines(self) -> list[str]:
        out = [f"backend {self.backend}: {self.cycles} cycles on {self.databases} databases"]
        out.append("acknowledged during the load, per kind: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(self.acknowledged.items())))
        out.append("answers lost to the kill (unknown), per kind: "
                   + (", ".join(f"{k} {v}" for k, v in sorted(self.unknown.items())) or "none"))
        out.append(f"ledger checks after restarts: {sum(self.checked.values())} held ("
                   + ", ".join(f"{k} {v}" for k, v in sorted(self.checked.items())) + ")"
                   + (f"; {sum(self.unknown_skipped.values())} left open by an unknown answer"
                      if self.unknown_skipped else ""))
        if self.backend == "sqlite":
            out.append("PRAGMA integrity_check after each kill: "
                       + ", ".join(f"{v}x {k!r}" for k, v in sorted(self.integrity.items())))
        out.append(f"lost (acknowledged but not there after a restart): {len(self.lost)}")
        out.append(f"other failures (5xx, unexpected answers, CLI errors): {len(self.failures)}")
        return out


class Driver:
    """Load, kill, restart, verify on one database, cycle after cycle."""

    def __init__(self, server: CrashServer, seed: int, log: Callable[[str], None] = print):
        self.server = server
        self.rng = random.Random(seed)
        self.log = log
        self.ledger = Ledger()
        self.killed = threading.Event()
        self.cycle = 0
        self.states = [State(i) for i in range(WORKERS)]
        self.auditor: Key | None = None
        self.summary = Summary(server.backend, databases=1)

    def setup(self) -> None:
        """Users that every cycle works with (the server is up)."""
        s = self.server
        out = s.cli("user", "add", "--org", "default", "--username", "crash-auditor", "--email",
                    "auditor@example.com", "--kind", "api", "--grant", "lists:read", "--grant", "contacts:read")
        key = s.cli("key", "generate", "--org", "default", "--username", "crash-auditor")
        assert key["key_id"] == out["key_id"]
        self.auditor = Key("crash-auditor", key["key_id"], key["secret"], key["bearer"])
        for st in self.states:
            s.cli("user", "add", "--org", "default", "--username", st.ui_user, "--email",
                  f"{st.ui_user}@example.com", "--kind", "ui", "--password-stdin",
                  *[a for g in ALL_GRANTS for a in ("--grant", g)], stdin=st.ui_password + "\n")

    def run_cycle(self, while_down: Callable[[Driver], None] | None = None) -> CycleResult:
        """One cycle: load for a random 0.5-2 s, SIGKILL, (integrity check), restart, verify.
        `while_down` runs between the kill and the restart (the driver's own test uses it to
        remove acknowledged rows and show that the checks notice)."""
        self.cycle += 1
        self.killed.clear()
        before = len(self.ledger.entries)
        unknown_before = sum(self.ledger.unknown.values())
        failures_before = len(self.ledger.failures)
        workers = [Worker(self, st, self.rng.randrange(2 ** 32)) for st in self.states]
        load_s = self.rng.uniform(*LOAD_S)
        started = time.monotonic()
        for w in workers:
            w.start()
        time.sleep(load_s)
        self.killed.set()
        self.server.kill()
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                self.ledger.fail(f"{w.name} did not stop within 60 s of the kill")
        load_s = time.monotonic() - started

        integrity = None
        if self.server.backend == "sqlite":
            integrity = integrity_check(self.server.sqlite_path)
            self.summary.integrity[integrity] += 1
        if while_down is not None:
            while_down(self)

        t0 = time.monotonic()
        self.server.start()
        restart_s = time.monotonic() - t0

        t0 = time.monotonic()
        violations, checked = self.verify()
        verify_s = time.monotonic() - t0

        acknowledged = self.ledger.entries[before:]
        for e in acknowledged:
            self.summary.acknowledged[e.kind] += 1
        failures = self.ledger.failures[failures_before:]
        if integrity is not None and integrity != "ok":
            failures = [*failures, f"PRAGMA integrity_check after the kill of cycle {self.cycle}: {integrity}"]
        self.summary.cycles += 1
        self.summary.unknown = Counter(self.ledger.unknown)
        self.summary.lost += violations
        self.summary.failures += failures
        return CycleResult(self.cycle, load_s, len(acknowledged), sum(self.ledger.unknown.values()) - unknown_before,
                           restart_s, verify_s, checked, integrity, violations, failures)

    def verify(self) -> tuple[list[str], int]:
        """Every ledger entry so far, against the restarted server."""
        entries = list(self.ledger.entries)
        # a deleted key may work until its stops_at (printed to the second) plus one second
        stops = [e.ref.deleted_stops_at for e in entries if e.kind == "key_deleted"]
        if stops:
            wait = max(stops) + 1.0 + 0.1 - time.time()
            if wait > 0:
                time.sleep(wait)
        checker = Checker(self.server, self.auditor)
        events = stored_events(self.server, [e.what["transaction_id"] for e in entries if e.kind == "event"])
        violations: list[str] = []
        checked = 0

        def one(entry: Entry) -> tuple[Entry, str | None, str | None]:
            try:
                return entry, checker.check(entry, events), None
            except AssertionError as exc:
                return entry, None, str(exc)
            except (requests.RequestException, ValueError, KeyError) as exc:
                return entry, None, f"{entry.kind} (cycle {entry.cycle}) {entry.what}: check failed: {exc!r}"

        deleted_sessions = [s for st in self.states for s in st.sessions
                            if s.key.deleted_stops_at is not None and not s.logged_out]
        with ThreadPoolExecutor(max_workers=4) as pool:
            for entry, outcome, problem in pool.map(one, entries):
                if problem is not None:
                    violations.append(f"cycle {self.cycle}: {problem}")
                elif outcome == "unknown":
                    self.summary.unknown_skipped[entry.kind] += 1
                elif outcome == "covered":
                    pass
                else:
                    checked += 1
                    self.summary.checked[entry.kind] += 1

            def session_of_deleted_key(session: Session) -> str | None:
                try:
                    checker.check_session_of_deleted_key(session)
                except AssertionError as exc:
                    return str(exc)
                return None

            for problem in pool.map(session_of_deleted_key, deleted_sessions):
                if problem is not None:
                    violations.append(f"cycle {self.cycle}: {problem}")
                else:
                    checked += 1
                    self.summary.checked["session_of_deleted_key"] += 1
        return violations, checked



def new_database(backend: str, workdir: Path) -> tuple[CrashServer, str | None]:
    """A fresh data folder (and on PostgreSQL a fresh database on GRANTRY_TEST_DATABASE_URL)."""
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = dbname = None
    if backend == "postgres":
        if not PG_SERVER_URL:
            raise RuntimeError("GRANTRY_TEST_DATABASE_URL is not set")
        dbname = f"grantry_crash_{uuid.uuid4().hex[:12]}"
        _psql(PG_SERVER_URL, f'CREATE DATABASE "{dbname}"')
        database_url = _with_database(PG_SERVER_URL, dbname)
    return CrashServer(backend, workdir, database_url), dbname


def execute_sql(server: CrashServer, sql: str) -> None:
    """A statement run on the server's database while the server is down (for the driver's own
    test, which removes acknowledged rows to show that the checks notice)."""
    assert not server.is_running()
    if server.backend == "sqlite":
        conn = sqlite3.connect(server.sqlite_path, timeout=10)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
    else:
        _psql(server.database_url, sql)


def drop_database(dbname: str | None) -> None:
    if dbname:
        _psql(PG_SERVER_URL, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def run(backend: str, cycles: int, workdir: Path, seed: int | None = None, cycles_per_db: int = 10,
        log: Callable[[str], None] = print) -> Summary:
    """`cycles` crash cycles on `backend`, on a fresh database every `cycles_per_db` cycles (the
    ledger of a database is checked in full after every one of its restarts, so it grows with
    the cycles; renewing the database keeps each cycle's checks to a few seconds)."""
    seed = random.randrange(2 ** 32) if seed is None else seed
    log(f"crash cycles on {backend}: {cycles}, seed {seed}, a fresh database every {cycles_per_db} cycles, "
        f"binary {GRANTRY_BIN}")
    rng = random.Random(seed)
    total = Summary(backend)
    done = 0
    while done < cycles:
        server, dbname = new_database(backend, workdir / f"db{total.databases + 1}")
        try:
            server.start()
            driver = Driver(server, rng.randrange(2 ** 32), log)
            driver.setup()
            for _ in range(min(cycles_per_db, cycles - done)):
                r = driver.run_cycle()
                done += 1
                integrity = f", integrity_check {r.integrity!r}" if r.integrity is not None else ""
                log(f"cycle {done}/{cycles} ({backend}, database {total.databases + 1}): load {r.load_s:.2f} s, "
                    f"{r.acknowledged} acknowledged, {r.unknown} unknown; SIGKILL; restart {r.restart_s:.2f} s; "
                    f"{r.checked} ledger checks held in {r.verify_s:.2f} s{integrity}; "
                    f"lost {len(r.violations)}, failures {len(r.failures)}")
                for v in r.violations:
                    log(f"  LOST: {v}")
                for f in r.failures:
                    log(f"  FAILURE: {f}")
        finally:
            if server.is_running():
                server.stop()
            server.http.close()
            drop_database(dbname)
        total.add(driver.summary)
    return total
