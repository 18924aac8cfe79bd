"""What an integrator sees while grantry's PostgreSQL database is away, and after it is back.

grantry runs on a PostgreSQL cluster of the test's own (pgcluster.py), which the tests stop,
start, and cut the connections of. The contract they hold grantry to:

* `GET /readyz` says whether the database answers (README, "Command line": health), and
  follows it both ways without a restart;
* while the database is away, every API answers **503 with `Retry-After`** in its own
  format, never 500: the token endpoint an RFC 6749 §5.2 error `temporarily_unavailable`,
  REST its `meta.generalErrors` envelope, the XML API a `Fault`, the Event API
  `{"code", "description"}`. A credential checked less than a second ago may still be
  answered from the credential cache, but no later: the cache stops answering when it could
  not confirm the authorization epoch within the last 900 ms (README, "Credential cache"),
  so past one second a call fails closed;
* a connection killed under load (`pg_terminate_backend`) costs at most a few 503s, and
  calls succeed again within a few seconds;
* once the database is back, everything works again without restarting grantry.

PostgreSQL only: SQLite has no server to lose.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

import pgcluster
from conftest import (
    ALL_GRANTS,
    BACKENDS,
    EVENTS_PATH,
    PROPAGATION_S,
    PROPAGATION_SLACK_S,
    REQUIRE_POSTGRES,
    Grantry,
    Integration,
    envelope,
    strip_ansi,
    xml_ok,
    xml_root,
)

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS, reason="the fault tests need PostgreSQL")

GET_LISTS = envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>")
GRANTS = [*ALL_GRANTS, "events:write"]
READY_DOWN_S = 5.0  # how long /readyz may keep saying 200 once the database is gone
RECOVERY_S = 10.0  # how long calls may keep failing once the database is back
# while the database is away, an answer (503) must come within this; a client that waits
# longer has in effect been left hanging
OUTAGE_ANSWER_S = 3.0
KILLS = 5  # how often the load test kills every grantry connection
# past this since the database went away, nothing may be answered from the credential cache
FAIL_CLOSED_S = PROPAGATION_S + PROPAGATION_SLACK_S


# ---- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(grantry_bin) -> Iterator[pgcluster.PgCluster]:
    why = pgcluster.problem()
    if why:
        if REQUIRE_POSTGRES:
            pytest.fail(f"the database fault tests cannot run: {why}")
        pytest.skip(why)
    c = pgcluster.PgCluster()
    try:
        c.create()
        yield c
    finally:
        c.drop()


class Faulty:
    """grantry on a database of the fault cluster."""

    def __init__(self, cluster: pgcluster.PgCluster, server: Grantry, dbname: str):
        self.cluster = cluster
        self.server = server
        self.dbname = dbname
        self.running = True  # the cluster's state as the test left it

    def stop_db(self) -> float:
        """Stops the cluster; returns when it had stopped (time.monotonic())."""
        self.running = False
        self.cluster.stop()
        return time.monotonic()

    def start_db(self) -> float:
        self.cluster.start()
        self.running = True
        return time.monotonic()


@pytest.fixture
def faulty(request, cluster: pgcluster.PgCluster, tmp_path) -> Iterator[Faulty]:
    """A fresh database on the fault cluster and a grantry serving it. Afterwards the cluster
    is running again whatever the test did, grantry must still be running, and its logs are
    printed when the test failed."""
    dbname = f"grantry_fault_{uuid.uuid4().hex[:8]}"
    cluster.psql(f'CREATE DATABASE "{dbname}"')
    server = Grantry("postgres", tmp_path, cluster.server_url(dbname))
    f = Faulty(cluster, server, dbname)
    try:
        server.start()
        yield f
    finally:
        if not f.running:
            f.start_db()
        crashed = server.proc is not None and not server.is_running()
        failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
        server.stop()
        server.http.close()
        if failed or crashed:
            out, err = server.server_output() if server.stdout_path.exists() else ("", "")
            print(f"--- grantry exit code {server.returncode}; logs in {server.workdir}")
            print("--- stdout (tail)\n" + out[-2000:])
            print("--- stderr (tail)\n" + strip_ansi(err)[-6000:])
        cluster.psql(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        assert not crashed, f"grantry exited during the test with code {server.returncode}"


# ---- helpers --------------------------------------------------------------------------------------------

def integration(server: Grantry) -> tuple[Integration, str]:
    """An integration whose token holds every grant (events:write too), and that token."""
    integ = server.new_integration(app_name=f"fault-{uuid.uuid4().hex[:6]}", grants=GRANTS, scopes=GRANTS)
    return integ, server.access_token(integ)


def event_body() -> dict:
    return {"event-id": "signup", "event-key": f"k-{uuid.uuid4().hex[:8]}", "event-params": {"EMAIL": "a@example.com"}}


def assert_works(server: Grantry, integ: Integration, token: str) -> None:
    """A refresh and a call to each API answer as they do on a healthy database."""
    refreshed = server.exchange(integ)
    assert refreshed.status_code == 200, (refreshed.status_code, refreshed.text)
    rest = server.rest("GET", "/databases", token)
    assert rest.status_code == 200, (rest.status_code, rest.text)
    xml_ok(server.xml(token, GET_LISTS))
    event = server.event(token, event_body())
    assert event.status_code in (200, 201, 202), (event.status_code, event.text)
    assert event.json()["transaction-id"], event.text


def assert_retry_after(resp: requests.Response) -> None:
    """RFC 9110 §10.2.3: `Retry-After` as delay-seconds."""
    value = resp.headers.get("Retry-After", "")
    assert value.isdigit() and int(value) >= 1, (resp.status_code, resp.headers, resp.text[:500])


def assert_token_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:1000])
    assert_retry_after(resp)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == "temporarily_unavailable", body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    assert "access_token" not in body, body
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers


def assert_rest_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:1000])
    assert_retry_after(resp)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) >= {"meta", "links", "data"}, body
    assert set(body["meta"]) >= {"attributes", "generalErrors", "fieldErrors"}, body
    assert body["meta"]["generalErrors"] and all(isinstance(e, str) and e for e in body["meta"]["generalErrors"]), body


def assert_xml_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:1000])
    assert_retry_after(resp)
    root = xml_root(resp)
    assert root.tag == "Envelope", resp.text
    assert (root.findtext("./Body/RESULT/SUCCESS") or "").upper() == "FALSE", resp.text
    fault = root.find("./Body/Fault")
    assert fault is not None, resp.text
    assert (fault.findtext("FaultString") or "").strip(), resp.text
    assert (fault.findtext("./detail/error/errorid") or "").isdigit(), resp.text


def assert_event_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:1000])
    assert_retry_after(resp)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"code", "description"}, body
    assert type(body["code"]) is int, body
    assert isinstance(body["description"], str) and body["description"], body


def answered(what: str, call: Callable[[], requests.Response]) -> requests.Response:
    """`call`'s answer, or a failure saying it did not come within OUTAGE_ANSWER_S (the
    calls pass that as their timeout)."""
    started = time.monotonic()
    try:
        return call()
    except requests.Timeout:
        raise AssertionError(f"{what}: no answer within {OUTAGE_ANSWER_S} s "
                             f"(waited {time.monotonic() - started:.1f} s)") from None


def poll(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls `check` until it is true; returns how long that took, or fails when it was not
    true within `timeout` (also when the check that came true started or ended too late)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    took = time.monotonic() - started
    assert took < timeout, f"{what}: only after {took:.1f} s (the bound is {timeout} s)"
    return took


def readyz(server: Grantry) -> int:
    return answered("GET /readyz", lambda: server.http.get(server.url("/readyz"),
                                                           timeout=OUTAGE_ANSWER_S)).status_code


# ---- tests ----------------------------------------------------------------------------------------------

def test_readyz_follows_the_database_down_and_up_without_a_restart(faulty: Faulty):
    """`/readyz` is 200 on a healthy database, 503 within a few seconds of the database
    stopping, and 200 again once it is back, in the same grantry process."""
    server = faulty.server
    pid = server.proc.pid
    assert readyz(server) == 200

    faulty.stop_db()
    seen: set[int] = set()

    def down() -> bool:
        status = readyz(server)
        seen.add(status)
        return status == 503
    poll(down, READY_DOWN_S, "/readyz answering 503 after the database stopped")
    assert seen <= {200, 503}, seen

    faulty.start_db()
    poll(lambda: readyz(server) == 200, RECOVERY_S, "/readyz answering 200 after the database came back")
    assert server.is_running() and server.proc.pid == pid


def test_while_the_database_is_down_every_api_answers_503_with_retry_after(faulty: Faulty):
    """With the database stopped, a refresh at the token endpoint, a REST call, an XML API
    call and an Event API call each answer 503 with `Retry-After` in the API's own format.
    Until one second after the database went away a call may still be answered from the
    credential cache (200) or refused (503), never 500; after that second every one is 503."""
    server = faulty.server
    integ, token = integration(server)
    assert_works(server, integ, token)

    t = OUTAGE_ANSWER_S
    calls: dict[str, Callable[[], requests.Response]] = {
        "token": lambda: server.http.post(server.url("/oauth/token"), timeout=t, data={
            "grant_type": "refresh_token", "client_id": integ.client_id,
            "client_secret": integ.client_secret, "refresh_token": integ.refresh_token}),
        "rest": lambda: server.http.get(server.url("/rest/databases"), timeout=t,
                                        headers={"Authorization": f"Bearer {token}"}),
        "xml": lambda: server.http.post(server.url("/XMLAPI"), timeout=t, data=GET_LISTS.encode(),
                                        headers={"Authorization": f"Bearer {token}",
                                                 "Content-Type": "text/xml;charset=utf-8"}),
        "event": lambda: server.http.post(server.url(EVENTS_PATH), timeout=t, json=event_body(),
                                          headers={"Authorization": f"Bearer {token}"}),
    }
    checks = {"token": assert_token_unavailable, "rest": assert_rest_unavailable,
              "xml": assert_xml_unavailable, "event": assert_event_unavailable}

    stopped = faulty.stop_db()
    early: list[tuple[str, int]] = []
    while time.monotonic() - stopped < FAIL_CLOSED_S:
        for name, call in calls.items():
            resp = answered(name, call)
            early.append((name, resp.status_code))
            if resp.status_code != 200:
                checks[name](resp)
    assert early, "no call was made inside the first second"

    for name, call in calls.items():
        started = time.monotonic() - stopped
        resp = answered(name, call)
        assert resp.status_code != 200, (
            f"{name}: answered 200 {started * 1000:.0f} ms after the database stopped (the cache may "
            f"answer for {PROPAGATION_S * 1000:.0f} ms): {resp.text[:300]}")
        checks[name](resp)


def test_killed_connections_under_load_cost_no_500_and_calls_recover(faulty: Faulty):
    """A client thread refreshes and calls REST in a loop while every grantry connection is
    killed KILLS (5) times with `pg_terminate_backend`: no answer is 500 (a refused one is 503 with
    `Retry-After`), and within a few seconds of the last kill both calls succeed again."""
    server = faulty.server
    integ, token = integration(server)
    answers: list[tuple[float, str, requests.Response]] = []
    stop = threading.Event()
    failure: list[BaseException] = []

    def load() -> None:
        http = requests.Session()
        http.trust_env = False
        try:
            while not stop.is_set():
                for kind in ("refresh", "rest"):
                    if kind == "refresh":
                        resp = http.post(server.url("/oauth/token"), data={
                            "grant_type": "refresh_token", "client_id": integ.client_id,
                            "client_secret": integ.client_secret, "refresh_token": integ.refresh_token},
                            timeout=OUTAGE_ANSWER_S)
                    else:
                        resp = http.get(server.url("/rest/databases"), headers={"Authorization": f"Bearer {token}"},
                                        timeout=OUTAGE_ANSWER_S)
                    answers.append((time.monotonic(), kind, resp))
        except requests.Timeout:
            failure.append(AssertionError(f"no answer within {OUTAGE_ANSWER_S} s after a killed connection"))
        except BaseException as e:
            failure.append(e)
        finally:
            http.close()

    thread = threading.Thread(target=load)
    thread.start()
    kills: list[tuple[float, int]] = []
    try:
        for _ in range(KILLS):
            seen = len(answers)
            poll(lambda: len(answers) >= seen + 20 or bool(failure), 10, "the load thread answering")
            killed = faulty.cluster.terminate_backends(faulty.dbname)
            kills.append((time.monotonic(), killed))
        last_kill = kills[-1][0]

        def recovered() -> bool:
            after = [(kind, r.status_code) for t, kind, r in answers if t > last_kill]
            return bool(failure) or all((kind, 200) in after for kind in ("refresh", "rest"))
        poll(recovered, RECOVERY_S, "a refresh and a REST call answering 200 after the last kill")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failure, failure
    assert kills[0][1] >= 1, f"grantry had no connection to kill: {kills}"

    def since_kill(t: float) -> str:
        before = [k for k, _ in kills if k <= t]
        return f"{(t - before[-1]) * 1000:.0f} ms after kill {len(before)}" if before else "before the first kill"
    bad = [(kind, r.status_code, r.text[:200], since_kill(t)) for t, kind, r in answers if r.status_code not in (200, 503)]
    assert not bad, f"{len(bad)} of {len(answers)} answers were neither 200 nor 503: {bad}"
    for _, kind, r in answers:
        if r.status_code == 503:
            (assert_token_unavailable if kind == "refresh" else assert_rest_unavailable)(r)
    assert_works(server, integ, token)


def test_everything_works_again_once_the_database_is_back(faulty: Faulty):
    """After the database was stopped (and a call met the outage) and started again, the
    same grantry process serves again within a few seconds: a refresh of the old refresh
    token and REST, XML and Event API calls with its access token, and a new integration
    made by the CLI."""
    server = faulty.server
    pid = server.proc.pid
    integ, token = integration(server)
    faulty.stop_db()
    # one call meets the outage (how it is answered is the previous test's subject; here any
    # answer but 200, or none within OUTAGE_ANSWER_S, will do)
    try:
        during = server.http.get(server.url("/rest/databases"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=OUTAGE_ANSWER_S)
        assert during.status_code != 200, during.text
    except requests.Timeout:
        pass
    faulty.start_db()

    def serves() -> bool:
        refreshed = answered("refresh", lambda: server.http.post(server.url("/oauth/token"), timeout=OUTAGE_ANSWER_S,
                                                                 data={"grant_type": "refresh_token",
                                                                       "client_id": integ.client_id,
                                                                       "client_secret": integ.client_secret,
                                                                       "refresh_token": integ.refresh_token}))
        assert refreshed.status_code in (200, 503), (refreshed.status_code, refreshed.text)
        rest = answered("REST", lambda: server.http.get(server.url("/rest/databases"), timeout=OUTAGE_ANSWER_S,
                                                        headers={"Authorization": f"Bearer {token}"}))
        assert rest.status_code in (200, 503), (rest.status_code, rest.text)
        return refreshed.status_code == 200 and rest.status_code == 200
    poll(serves, RECOVERY_S, "a refresh and a REST call answering 200 after the database came back")
    assert_works(server, integ, token)

    fresh, fresh_token = integration(server)
    assert_works(server, fresh, fresh_token)
    assert server.is_running() and server.proc.pid == pid
