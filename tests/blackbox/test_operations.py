"""Running grantry in production: `GET /metrics`, JSON logs with request ids, pods, and a
clean shutdown on SIGTERM (README, "Running in production" and "Pods")."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import ALL_GRANTS, REPO_ROOT, Grantry, envelope, strip_ansi

WRONG = "gcs_local_" + "A" * 43


def metrics(g: Grantry, base: str | None = None) -> dict[str, float]:
    """The scrape as {'name{labels}': value}, every line of the Prometheus text format."""
    resp = g.http.get((base or g.base_url) + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in resp.text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def value(m: dict[str, float], name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    total = 0.0
    for key, v in m.items():
        series, _, rest = key.partition("{")
        if series != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(have.get(k) == want for k, want in labels.items()):
            total += v
    return total


def test_metrics_count_requests_tokens_failures_locks_cache_and_sessions(grantry: Grantry):
    integ = grantry.new_integration()
    before = metrics(grantry)
    token = grantry.access_token(integ)
    for _ in range(3):
        assert grantry.rest("GET", "/databases", token).status_code == 200
    # Wrong secrets for one client until it is locked (limits.lockout_after = 5).
    statuses = []
    for _ in range(7):
        statuses.append(grantry.token_request({
            "grant_type": "refresh_token", "client_id": integ.client_id,
            "client_secret": WRONG, "refresh_token": integ.refresh_token,
        }).status_code)
    assert statuses[:5] == [401] * 5 and 429 in statuses, statuses
    # An XML API session is live.
    grantry.add_api_user("bot", grants=ALL_GRANTS)
    key = grantry.generate_key("bot")
    login = grantry.xml(None, envelope(
        f"<Login><USERNAME>bot</USERNAME><PASSWORD>{key.secret}</PASSWORD></Login>"))
    assert login.status_code == 200 and "<SESSIONID>" in login.text, login.text

    after = metrics(grantry)
    d = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert d("grantry_http_requests_total", route="/rest/databases", method="GET", status="200") == 3
    assert d("grantry_http_requests_total", route="/oauth/token", method="POST", status="429") >= 1
    assert d("grantry_http_request_duration_seconds_count", route="/rest/databases", method="GET") == 3
    assert d("grantry_tokens_total", grant_type="refresh_token", outcome="issued") == 1
    assert d("grantry_auth_failures_total", door="client") >= 5
    assert d("grantry_throttled_total", door="client", waiting="lockout") >= 1
    # The first REST call looked the token up, the later ones found it in the cache.
    assert d("grantry_credential_cache_lookups_total", cache="bearer", result="hit") >= 2
    assert value(after, "grantry_credential_cache_epoch_age_seconds") < 1.5
    assert value(after, "grantry_live_sessions", kind="xml") == 1
    assert value(after, "grantry_db_up") == 1
    pool = "sqlite_read" if grantry.backend == "sqlite" else "postgres"
    assert value(after, "grantry_db_pool_max_connections", pool=pool) >= 1
    if grantry.backend == "sqlite":
        # Every durable write went through a group commit.
        assert d("grantry_group_commit_batch_size_count") >= 1
        assert d("grantry_group_commit_seconds_count") >= 1
    # Paths are route templates, never raw paths (which carry ids and sessions).
    assert not any("jsessionid" in k.lower() for k in after)

    # Every series the reference dashboard plots is one grantry exports.
    dashboard = (REPO_ROOT / "deploy" / "grafana-dashboard.json").read_text()
    exported = {re.sub(r"_(bucket|sum|count)$", "", k.partition("{")[0]) for k in after}
    plotted = set(re.findall(r"grantry_[a-z_]+?(?=_bucket\b|\b)", dashboard)) - {"grantry"}
    if grantry.backend != "sqlite":
        plotted = {n for n in plotted if "group_commit" not in n}
    assert plotted <= exported, sorted(plotted - exported)


def test_invented_methods_are_counted_as_other_and_add_no_series(grantry: Grantry):
    """A client choosing the method cannot grow the scrape: methods outside RFC 9110's are
    one `other` label."""
    before = metrics(grantry)
    for i in range(5):
        resp = grantry.http.request(f"BREW{i}", grantry.url("/rest/databases"), timeout=5)
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    after = metrics(grantry)
    assert value(after, "grantry_http_requests_total", method="other") \
        - value(before, "grantry_http_requests_total", method="other") == 5
    assert not [k for k in after if "BREW" in k], [k for k in after if "BREW" in k]


def test_metrics_on_a_listener_of_its_own_and_switched_off(grantry_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = grantry_factory({"GRANTRY_METRICS__LISTEN": f"127.0.0.1:{port}"})
    assert g.http.get(g.url("/metrics"), timeout=5).status_code == 404
    m = metrics(g, f"http://127.0.0.1:{port}")
    assert value(m, "grantry_db_up") == 1
    off = grantry_factory({"GRANTRY_METRICS__ENABLED": "false"})
    assert off.http.get(off.url("/metrics"), timeout=5).status_code == 404


def test_json_logs_carry_the_request_id_and_never_a_secret(grantry_factory):
    g = grantry_factory({"GRANTRY_LOG__FORMAT": "json", "GRANTRY_LOG": "info"})
    integ = g.new_integration()
    resp = g.token_request({
        "grant_type": "refresh_token", "client_id": integ.client_id,
        "client_secret": integ.client_secret, "refresh_token": integ.refresh_token,
    }, headers={"X-Request-Id": "lb-4711"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "lb-4711", "the caller's id comes back"
    token = resp.json()["access_token"]
    plain = g.rest("GET", "/databases", token)
    generated = plain.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated), generated

    _, err = g.server_output()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    parsed = [json.loads(ln) for ln in lines]  # every line is one JSON object
    ids = {p.get("span", {}).get("request_id") for p in parsed}
    assert "lb-4711" in ids and generated in ids, ids
    for secret in (integ.client_secret, integ.refresh_token, token):
        assert secret not in err


def test_pods_table_and_metadata(grantry_factory):
    g = grantry_factory({"GRANTRY_POD__ID": "us-1", "GRANTRY_POD__NAME": "US 1"})
    # `[[pods]]` is a table, so it comes from a file.
    pods = g.workdir / "pods.toml"
    pods.write_text(
        '[pod]\nid = "us-1"\nname = "US 1"\n\n'
        '[[pods]]\nid = "eu-1"\nname = "EU 1"\nurl = "https://api-eu-1.example.com"\n'
    )
    g.stop()
    g.extra_args = ["--config", str(pods)]
    g.start()
    body = g.http.get(g.url("/pods"), timeout=5).json()
    assert body == {"pod": "us-1", "pods": [
        {"id": "us-1", "name": "US 1", "url": g.base_url},
        {"id": "eu-1", "name": "EU 1", "url": "https://api-eu-1.example.com"},
    ]}
    meta = g.http.get(g.url("/.well-known/oauth-authorization-server"), timeout=5).json()
    assert meta["pod"] == {"id": "us-1", "name": "US 1"}
    assert meta["pods_endpoint"] == g.base_url + "/pods"
    # A credential of eu-1 is refused naming the pod and its URL.
    resp = g.rest("GET", "/databases", "gat_eu-1_" + "B" * 43)
    assert resp.status_code == 401
    assert "pod eu-1 (EU 1) at https://api-eu-1.example.com" in resp.json()["meta"]["generalErrors"][0]
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def _raw_request(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    return s


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_sigterm_finishes_the_request_being_served_and_loses_nothing(grantry: Grantry):
    integ = grantry.new_integration()
    body = (f"grant_type=refresh_token&client_id={integ.client_id}"
            f"&client_secret={integ.client_secret}&refresh_token={integ.refresh_token}").encode()
    port = int(grantry.base_url.rsplit(":", 1)[1])
    # A request whose body is still on its way when the signal arrives.
    s = _raw_request(port, (
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:10])
    time.sleep(0.3)
    grantry.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # No longer accepting: a new connection is refused.
    refused = False
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            refused = True
            break
    assert refused, "the listener is closed once SIGTERM arrives"
    assert grantry.is_running(), "it waits for the request being served"
    s.sendall(body[10:])
    answer = _read_response(s)
    s.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    token = json.loads(payload)["access_token"]
    assert grantry.proc.wait(timeout=10) == 0
    _, err = grantry.server_output()
    assert "shutting down" in strip_ansi(err) and "stopped" in strip_ansi(err)

    # The answered token was committed before its answer.
    grantry.proc = None
    grantry.start()
    assert grantry.rest("GET", "/databases", token).status_code == 200


def test_sigterm_under_load_loses_no_acknowledged_token(grantry: Grantry):
    grantry.add_api_user("loader", grants=ALL_GRANTS)
    key = grantry.generate_key("loader")
    acknowledged: list[str] = []
    cut: list[str] = []
    stop = threading.Event()

    def load():
        http = requests.Session()
        http.trust_env = False
        while not stop.is_set():
            try:
                r = http.post(grantry.url("/oauth/token"), data={
                    "grant_type": "client_credentials",
                    "client_id": key.key_id, "client_secret": key.secret,
                }, timeout=10)
            except requests.ConnectionError as e:
                # Refused or reset before an answer began: the server never took it on.
                if "Connection refused" not in str(e) and "reset" not in str(e).lower() \
                        and "RemoteDisconnected" not in str(e) and "aborted" not in str(e).lower():
                    cut.append(str(e))
                time.sleep(0.01)
                continue
            assert r.status_code == 200, r.text
            acknowledged.append(r.json()["access_token"])

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    grantry.proc.send_signal(signal.SIGTERM)
    code = grantry.proc.wait(timeout=35)
    stop.set()
    for t in threads:
        t.join()
    assert code == 0
    assert not cut, cut
    assert len(acknowledged) >= 10, len(acknowledged)

    grantry.proc = None
    grantry.start()
    for t in acknowledged:
        assert grantry.rest("GET", "/databases", t).status_code == 200, t


def test_a_stuck_request_is_cut_after_the_drain_timeout(grantry_factory):
    g = grantry_factory({"GRANTRY_HTTP__DRAIN_TIMEOUT": "1s"})
    port = int(g.base_url.rsplit(":", 1)[1])
    s = _raw_request(port, (
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nx"))
    time.sleep(0.3)
    started = time.monotonic()
    g.proc.send_signal(signal.SIGTERM)
    assert g.proc.wait(timeout=10) == 0
    took = time.monotonic() - started
    g.proc = None  # stopped on purpose
    assert took < 3.0, f"exited {took:.1f}s after SIGTERM with http.drain_timeout = 1s"
    s.close()
    _, err = g.server_output()
    assert "http.drain_timeout" in strip_ansi(err)


def _wrong_logins(g: Grantry, forwarded_for: str | None, n: int) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return [g.token_request({
        "grant_type": "client_credentials", "client_id": f"nobody-{i}", "client_secret": WRONG,
    }, headers=headers).status_code for i in range(n)]


def test_a_trusted_proxy_names_the_client_for_the_limits(grantry_factory):
    # Three failures per address per minute, counted per client behind the proxy.
    limits = {"GRANTRY_LIMITS__SOURCE_FAILURES": "3", "GRANTRY_LIMITS__SOURCE_PERIOD": "60s"}
    g = grantry_factory({**limits, "GRANTRY_HTTP__TRUSTED_PROXIES": '["127.0.0.1"]'})
    assert _wrong_logins(g, "203.0.113.7", 5)[-1] == 429
    # Another client behind the same proxy is not held up by the first one's failures; an
    # address the client itself put left of the proxy's entry changes nothing.
    assert _wrong_logins(g, "203.0.113.8", 1) == [401]
    assert _wrong_logins(g, "198.51.100.1, 203.0.113.7", 1) == [429]

    # Without trusted proxies the header is the client's word and is ignored.
    plain = grantry_factory(limits)
    assert _wrong_logins(plain, "203.0.113.7", 5)[-1] == 429
    assert _wrong_logins(plain, "203.0.113.8", 1) == [429]


def test_a_locked_sqlite_database_answers_503_and_recovers(grantry_factory, request):
    """Another process holding SQLite's write lock (a backup tool, a stray `sqlite3` shell):
    a write waits for the lock as long as SQLite's busy timeout allows, then is answered 503
    with Retry-After in its protocol's format and changes nothing; once the lock is gone the
    same request succeeds."""
    import sqlite3

    if request.node.callspec.params.get("grantry_factory") == "postgres":
        pytest.skip("a file lock is SQLite's; PostgreSQL's faults are in test_db_faults.py")
    g = grantry_factory()
    g.add_api_user("locked", grants=ALL_GRANTS)
    key = g.generate_key("locked")
    form = {"grant_type": "client_credentials", "client_id": key.key_id, "client_secret": key.secret}
    assert g.token_request(form).status_code == 200
    holder = sqlite3.connect(g.data_dir / "grantry.db", timeout=1, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        resp = g.http.post(g.url("/oauth/token"), data=form, timeout=60)
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] == "1"
        assert resp.json()["error"] == "temporarily_unavailable"
        assert time.monotonic() - started < 30
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert g.token_request(form).status_code == 200


def test_a_full_sqlite_disk_answers_503_and_loses_nothing(grantry_factory, request, tmp_path):
    """The data folder on a small file system of its own (tmpfs), filled up: writes are
    answered 503 with Retry-After in their protocol's format (never 500), reads of what was
    committed go on, every token acknowledged before is still there, and once space is back
    the same writes succeed, without a restart."""
    import os
    import subprocess

    if request.node.callspec.params.get("grantry_factory") == "postgres":
        pytest.skip("the data folder's file system is SQLite's; PostgreSQL's faults are in test_db_faults.py")
    if os.geteuid() != 0:
        pytest.skip("mounting a file system of its own needs root")
    mnt = tmp_path / "data"  # the data folder of the first server grantry_factory starts
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(mnt)], check=False))
    g = grantry_factory()
    assert g.data_dir == mnt
    g.add_api_user("disk", grants=ALL_GRANTS)
    key = g.generate_key("disk")
    form = {"grant_type": "client_credentials", "client_id": key.key_id, "client_secret": key.secret}

    def issue() -> requests.Response:
        return g.http.post(g.url("/oauth/token"), data=form, timeout=30)

    acknowledged = []
    for _ in range(20):
        r = issue()
        assert r.status_code == 200, r.text
        acknowledged.append(r.json()["access_token"])

    # A token in use: its first use is recorded (a write), later calls only read.
    assert g.rest("GET", "/databases", acknowledged[0]).status_code == 200

    # Full: a filler takes every free byte; writes go on until SQLite needs a page it cannot
    # have, then each is refused with 503.
    filler = mnt / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    refused = None
    for _ in range(3000):
        r = issue()
        if r.status_code == 200:
            acknowledged.append(r.json()["access_token"])
            continue
        refused = r
        break
    assert refused is not None, "the disk never ran full"
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "temporarily_unavailable"
    assert g.rest("GET", "/databases", acknowledged[0]).status_code == 200, "reads go on"
    # A token's first use must be recorded, so it is never answered without that write: 503
    # while it cannot be made, never 401 or 500. It can be made when the WAL, started over by
    # a checkpoint, has room for one small update where a batch of new rows had none.
    first_use = g.rest("GET", "/databases", acknowledged[-1])
    assert first_use.status_code in (200, 503), first_use.text
    if first_use.status_code == 503:
        assert first_use.headers["retry-after"] == "1"
    filler.unlink()
    deadline = time.monotonic() + 10
    while issue().status_code != 200:
        assert time.monotonic() < deadline, "writes did not come back once space was free"
        time.sleep(0.2)

    # Nothing acknowledged was lost, across a restart too.
    g.stop()
    g.start()
    for t in acknowledged:
        assert g.rest("GET", "/databases", t).status_code == 200


def test_a_sqlite_file_system_gone_read_only_answers_503_and_loses_nothing(grantry_factory, request, tmp_path):
    """The data folder on an ext4 file system of its own (a loop device, `errors=remount-ro`)
    that turns read-only under the running server, as ext4 does when it meets an error: every
    write is answered 503 with Retry-After in its protocol's format (never 500) and changes
    nothing, reads of what was committed go on, and once the operator has checked the file
    system and mounted it again, a restarted server has every token acknowledged before."""
    import errno
    import os
    import shutil
    import subprocess

    if request.node.callspec.params.get("grantry_factory") == "postgres":
        pytest.skip("the data folder's file system is SQLite's; PostgreSQL's faults are in test_db_faults.py")
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not os.path.exists("/dev/loop-control"):
        pytest.skip("a file system of its own needs root, mkfs.ext4 and loop devices")
    image = tmp_path / "data.img"
    mnt = tmp_path / "data"  # the data folder of the first server grantry_factory starts
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)

    def mount() -> str:
        subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)], check=True)
        return subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mnt)], check=True,
                              capture_output=True, text=True).stdout.strip()

    device = mount()
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(mnt)], check=False))
    g = grantry_factory()
    assert g.data_dir == mnt
    g.add_api_user("ro", grants=ALL_GRANTS)
    key = g.generate_key("ro")
    form = {"grant_type": "client_credentials", "client_id": key.key_id, "client_secret": key.secret}

    def issue() -> requests.Response:
        return g.http.post(g.url("/oauth/token"), data=form, timeout=30)

    acknowledged = []
    for _ in range(10):
        r = issue()
        assert r.status_code == 200, r.text
        acknowledged.append(r.json()["access_token"])
    used = acknowledged[0]
    assert g.rest("GET", "/databases", used).status_code == 200
    created = g.rest("POST", "/databases", used, json_body={"name": "before"})
    assert created.status_code == 201, created.text

    # ext4 meets an error and turns itself read-only (the kernel's own test hook for it).
    name = os.path.basename(os.path.realpath(device))
    with open(f"/sys/fs/ext4/{name}/trigger_fs_error", "w") as f:
        f.write("grantry read-only test\n")
    with pytest.raises(OSError) as gone:
        (mnt / "probe").write_text("x")
    assert gone.value.errno == errno.EROFS

    refused = issue()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "temporarily_unavailable"
    write = g.rest("POST", "/databases", used, json_body={"name": "after"})
    assert write.status_code == 503, write.text
    assert write.headers["retry-after"] == "1"
    assert g.rest("GET", "/databases", used).status_code == 200, "reads go on"
    assert g.http.get(g.url("/healthz"), timeout=5).status_code == 200

    # The operator stops the server, checks the file system, mounts it again and restarts.
    g.stop()
    subprocess.run(["umount", str(mnt)], check=True)
    fsck = subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, text=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
    mount()
    g.start()
    for t in acknowledged:
        assert g.rest("GET", "/databases", t).status_code == 200
    names = [d["name"] for d in g.rest("GET", "/databases", used).json()["data"]]
    assert "before" in names and "after" not in names
    assert issue().status_code == 200
