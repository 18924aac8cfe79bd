#!/usr/bin/env python3
"""grantry's side-by-side benchmark (PERFORMANCE.md).

Builds release binaries, starts grantry on a fresh database and a trivial axum floor server,
seeds an organization, an application with account access and an API user with a key, then
drives each scenario with wrk (-t1 -c32, loopback) after a warm-up, measuring requests/s,
p50/p99 and the server's CPU time per request (from /proc/<pid>/stat). Every figure is also
given as a share of the floor measured in the same run. Writes a table to stdout,
bench/results/<date>-<commit>.json and a chart of the floor shares next to it (.svg).

With --live-tokens N, N more live access tokens are then written straight into the database
(one transaction) and every scenario is run again: the JSON gains `scenarios_live_tokens`.
With --peer oidc-provider, panva's oidc-provider (bench/peer/, in-memory store) is driven in
the same run for the scenarios it supports, and grantry's matching figures gain `peer_ratio`
(grantry req/s / peer req/s).
With --database, two more grantry processes are then started on the same database and the
scenarios are run on all three at once (the connections shared among them): the JSON gains
`three_instances`, with the total, each instance's figures and the ratio to one instance.

With --scale, examples/seed first fills the database through grantry's own admin and token code
(10,000 orgs, 100,000 applications with account access, 1,000,000 live tokens by default), then
grantry starts on it: the JSON gains `scale` (what was seeded, how long it took) and its
start-up and memory figures are those of that database.
With --only, only the named scenarios run (and the floor), e.g. for the cost-by-size table.

Usage: bench/run [--database postgres://...] [--duration 10] [--warmup 3] [--connections 32]
                 [--live-tokens 1000000] [--peer oidc-provider] [--issue-rate-cap 40000]
                 [--oauth1-rate-cap 30000]
                 [--scale [--scale-orgs N --scale-apps-per-org N --scale-tokens N]] [--only a,b]
                 [--binaries DIR --commit SHA [--without-limits-config]]
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import html
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = os.path.join(ROOT, "bench", "peer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
FORM = "application/x-www-form-urlencoded"
HOUR_MS = 3600 * 1000
GET_LISTS = "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>"

# PERFORMANCE.md's targets, as shares of the floor measured in the same run.
TARGETS = {
    "rest_get_access_token": 0.50,
    "rest_get_api_key": 0.50,
    "xml_get_lists": 0.50,
    "introspection": 0.60,
    "refresh_in_window": 0.50,
    "issue_client_credentials": 0.25,
    "issue_refresh_after_window": 0.25,
    "rest_get_oauth1": 0.25,
    "xml_session": 0.50,
}
# PERFORMANCE.md's p99 targets in ms: cached scenarios, durable ones, and the REST call under
# a login flood.
P99_TARGETS = {
    **{n: 2.0 for n in ("rest_get_access_token", "rest_get_api_key", "xml_get_lists", "introspection",
                        "refresh_in_window", "xml_session")},
    **{n: 10.0 for n in ("issue_client_credentials", "issue_refresh_after_window", "rest_get_oauth1",
                         "rest_under_login_flood")},
}
# grantry's scenario -> the peer's scenario doing the same work.
PEER_OF = {
    "issue_client_credentials": "peer_client_credentials",
    "introspection": "peer_introspection",
}


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as st:
        return int(re.search(r"VmRSS:\s+(\d+)", st.read()).group(1))


def post(url, form, auth=None):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    if auth:
        req.add_header("Authorization", auth)
    return json.load(urllib.request.urlopen(req))


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


LUA = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
"""

# Every request takes the next line of a file as its body, so that each one presents a
# different credential. The runner uses one wrk thread (-t1); `done` reports how often the
# file ran out and started again (then some credentials were presented twice).
LUA_BODIES = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
local bodies = {bodies}
local path = {path}
local f = nil
wrapped = 0
function request()
  local body = f and f:read("*l")
  if not body then
    if f then
      f:close()
      wrapped = wrapped + 1
    end
    f = assert(io.open(bodies, "r"))
    body = f:read("*l")
  end
  return wrk.format(nil, path, nil, body)
end
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("wrapped") or 0)
  end
  io.write(string.format("bodies wrapped: %d\\n", n))
end
"""


# Every request takes the next line of a file as its Authorization header (an OAuth 1.0a
# signature with a nonce of its own), like LUA_BODIES.
LUA_HEADERS = """
wrk.method = "GET"
local lines = {lines}
local path = {path}
local f = nil
wrapped = 0
function request()
  local line = f and f:read("*l")
  if not line then
    if f then
      f:close()
      wrapped = wrapped + 1
    end
    f = assert(io.open(lines, "r"))
    line = f:read("*l")
  end
  return wrk.format(nil, path, {{["Authorization"] = line}}, nil)
end
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("wrapped") or 0)
  end
  io.write(string.format("bodies wrapped: %d\\n", n))
end
"""


def lua_headers_script(tmp, name, path, lines_file):
    script = os.path.join(tmp, f"{name}.lua")
    with open(script, "w") as f:
        f.write(LUA_HEADERS.format(lines=json.dumps(lines_file), path=json.dumps(path)))
    return script


def oauth1_encode(s):
    return urllib.parse.quote(s, safe="-._~")


def oauth1_header(method, url, consumer, consumer_secret, token, token_secret, stamp):
    """An `Authorization: OAuth` header signed with HMAC-SHA1 (RFC 5849 §3.4) for a URL without
    a query, with a fresh nonce."""
    params = {
        "oauth_consumer_key": consumer,
        "oauth_token": token,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(stamp),
        "oauth_nonce": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
        "oauth_version": "1.0",
    }
    normalized = "&".join(f"{oauth1_encode(k)}={oauth1_encode(v)}" for k, v in sorted(params.items()))
    base = "&".join(oauth1_encode(x) for x in (method, url, normalized))
    key = f"{oauth1_encode(consumer_secret)}&{oauth1_encode(token_secret)}".encode()
    params["oauth_signature"] = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
    return "OAuth " + ", ".join(f'{k}="{oauth1_encode(v)}"' for k, v in params.items())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def oauth1_credentials(base, cli, app, username, password):
    """Token credentials for `app` acting for UI user `username`, through the three legs of
    RFC 5849 §2 as a client and a browser go through them."""
    rt_url = base + "/oauth1/request_token"
    consumer, secret = app["client_id"], app["client_secret"]
    params = {"oauth_consumer_key": consumer, "oauth_signature_method": "PLAINTEXT",
              "oauth_callback": "oob", "oauth_signature": f"{oauth1_encode(secret)}&"}
    temp = dict(urllib.parse.parse_qsl(urllib.request.urlopen(urllib.request.Request(
        rt_url, data=urllib.parse.urlencode(params).encode(), method="POST")).read().decode()))
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPCookieProcessor())
    query = urllib.parse.urlencode({"oauth_token": temp["oauth_token"]})
    page = opener.open(f"{base}/oauth1/authorize?{query}").read().decode()
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
    form = {"query": query, "csrf": csrf, "username": username, "password": password}
    try:
        opener.open(base + "/oauth1/authorize/login", data=urllib.parse.urlencode(form).encode())
    except urllib.error.HTTPError as e:
        if e.code != 303:
            raise
    page = opener.open(f"{base}/oauth1/authorize?{query}").read().decode()
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
    page = opener.open(base + "/oauth1/authorize", data=urllib.parse.urlencode(
        {"query": query, "csrf": csrf, "decision": "allow"}).encode()).read().decode()
    verifier = re.search(r'<code id="verifier">([^<]*)</code>', page).group(1)
    params = {"oauth_consumer_key": consumer, "oauth_token": temp["oauth_token"], "oauth_verifier": verifier,
              "oauth_signature_method": "PLAINTEXT",
              "oauth_signature": f"{oauth1_encode(secret)}&{oauth1_encode(temp['oauth_token_secret'])}"}
    return dict(urllib.parse.parse_qsl(urllib.request.urlopen(urllib.request.Request(
        base + "/oauth1/access_token", data=urllib.parse.urlencode(params).encode(),
        method="POST")).read().decode()))


# A flood of wrong sign-ins: each request names another made-up user, so neither the account
# lockout nor a cache spares it its argon2id verification.
LUA_LOGIN_FLOOD = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = {cookie}
local n = 0
function request()
  n = n + 1
  local body = {prefix} .. "&username=flood" .. n .. "&password=wrong-password-" .. n
  return wrk.format(nil, "/oauth/authorize/login", nil, body)
end
"""


def login_flood_script(tmp, cookie, prefix):
    path = os.path.join(tmp, "login-flood.lua")
    with open(path, "w") as f:
        f.write(LUA_LOGIN_FLOOD.format(cookie=json.dumps(cookie), prefix=json.dumps(prefix)))
    return path


def set_cookie(headers, name, default=None):
    """The `name=value` of the response's Set-Cookie for `name`."""
    return next((v.split(";")[0] for k, v in headers.items()
                 if k.lower() == "set-cookie" and v.startswith(name + "=")), default)


def login_form(base, query):
    """The sign-in page for `query` as a browser sees it: its pre-session cookie and the
    form's CSRF token."""
    with urllib.request.urlopen(f"{base}/oauth/authorize?{query}") as r:
        cookie = set_cookie(r.headers, "grantry_login", "")
        page = r.read().decode()
    # Binaries from before the form was bound to the browser have neither.
    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    return cookie, html.unescape(csrf.group(1)) if csrf else ""


def console_session(base, org, username, password):
    """Signs in to the console as a browser does (the sign-in page's pre-session cookie and
    CSRF token, then the form) and returns the session cookie, or None on a binary without
    the console."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    try:
        with urllib.request.urlopen(f"{base}/console/sign-in") as r:
            cookie = set_cookie(r.headers, "grantry_console_login", "")
            page = r.read().decode()
    except urllib.error.HTTPError:
        return None
    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    form = urllib.parse.urlencode({"csrf": html.unescape(csrf.group(1)) if csrf else "", "org": org,
                                   "username": username, "password": password}).encode()
    req = urllib.request.Request(f"{base}/console/sign-in", data=form, headers={"Content-Type": FORM,
                                                                               "Cookie": cookie})
    try:
        answer = urllib.request.build_opener(NoRedirect).open(req)
    except urllib.error.HTTPError as e:
        answer = e
    return set_cookie(answer.headers, "grantry_session")


def lua_script(tmp, name, method, body=None, headers=None):
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    path = os.path.join(tmp, f"{name}.lua")
    with open(path, "w") as f:
        f.write(LUA.format(method=method, body=json.dumps(body) if body is not None else "nil",
                           headers="\n".join(lines)))
    return path


def lua_bodies_script(tmp, name, path, bodies_file, content_type=FORM):
    script = os.path.join(tmp, f"{name}.lua")
    with open(script, "w") as f:
        f.write(LUA_BODIES.format(content_type=content_type, bodies=json.dumps(bodies_file),
                                  path=json.dumps(path)))
    return script


def unit_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, script, duration, connections, pid):
    """One wrk run: returns rps, p50, p99 (ms), requests, non-2xx count and server CPU s."""
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
        check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    pct = {}
    for k, v in lat.items():
        m = re.match(r"([\d.]+)(\w+)", v)
        pct[k] = unit_ms(m.group(1), m.group(2))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r = {
        "rps": rps,
        "p50_ms": pct.get("50"),
        "p99_ms": pct.get("99"),
        "requests": reqs,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "cpu_us_per_req": round(cpu * 1e6 / reqs, 1) if reqs else None,
    }
    if errors:
        r["socket_errors"] = sum(int(x) for x in errors.groups())
    wrapped = re.search(r"bodies wrapped: (\d+)", out)
    if wrapped:
        r["bodies_wrapped"] = int(wrapped.group(1))
    return r


# Not spread over instances: a signature covers the host it was made for, and the refresh
# tokens of the after-window scenario are each used once.
NOT_SPREAD = {"floor", "rest_get_oauth1", "issue_refresh_after_window"}


def run_spread(scenarios, instances, args):
    """Each scenario on every instance at once, the connections shared among them (one wrk
    per instance): the total and each instance's figures."""
    out = {}
    for name, url, warm, script, _pid in scenarios:
        if name in NOT_SPREAD:
            continue
        n = len(instances)
        per = max(1, args.connections // n)
        for phase, lua, secs in (("warm", warm, args.warmup), ("run", script, args.duration)):
            got = [None] * n

            def one(i, lua=lua, secs=secs, got=got):
                inst, proc = instances[i]
                got[i] = run_wrk(url.replace(instances[0][0], inst, 1), lua, secs, per, proc.pid)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        out[name] = {
            "rps": round(sum(r["rps"] for r in got), 1),
            "p99_ms": max(r["p99_ms"] or 0 for r in got),
            "non_2xx": sum(r["non_2xx"] for r in got),
            "per_instance": got,
        }
        each = ", ".join(f"{r['rps']:.0f}" for r in got)
        print(f"  {name} on {n} instances: {out[name]['rps']:.0f} req/s in all ({each})", file=sys.stderr)
    return out


class Database:
    """grantry's database reached directly, for seeding in bulk what the CLI makes one at a
    time. SQLite through Python's sqlite3 while grantry runs (WAL: readers are not blocked;
    a writer waits on busy_timeout), PostgreSQL through psql."""

    def __init__(self, sqlite_path=None, pg_url=None):
        self.sqlite_path, self.pg_url = sqlite_path, pg_url

    def _sqlite(self):
        c = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None)
        c.execute("PRAGMA busy_timeout = 60000")
        return c

    def _psql(self, *args, stdin=None):
        return subprocess.run(["psql", self.pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                              input=stdin, check=True, capture_output=True, text=True).stdout

    def checkpoint(self):
        """SQLite: copies the WAL into the database now, not grantry's checkpoint thread
        during the scenarios that follow (bulk seeding leaves a WAL of ~100 MB or more)."""
        if self.pg_url:
            return
        c = self._sqlite()
        try:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            c.close()

    def row(self, sql):
        """The first row of a query whose values are integers."""
        if self.pg_url:
            out = self._psql("-At", "-c", sql).strip()
            if not out:
                return None
            return tuple(int(v) for v in out.splitlines()[0].split("|"))
        c = self._sqlite()
        try:
            return c.execute(sql).fetchone()
        finally:
            c.close()

    def insert_refresh_tokens(self, access_id, scopes, digests, now_ms):
        """Refresh tokens of an account access, as the store's insert_refresh_token writes
        them (no access token yet), in one transaction."""
        if self.pg_url:
            rows = "".join(f"{access_id}\t\\\\x{d.hex()}\t{scopes}\t{now_ms}\n" for d in digests)
            self._psql("-c", "COPY refresh_tokens (access_id, digest, scopes, created_at) FROM STDIN",
                       stdin=rows)
            return
        c = self._sqlite()
        try:
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT INTO refresh_tokens (access_id, digest, scopes, created_at) "
                          "VALUES (?, ?, ?, ?)", ((access_id, d, scopes, now_ms) for d in digests))
            c.execute("COMMIT")
        finally:
            c.close()

    def insert_live_access_tokens(self, n, org_id, user_id, scopes, now_ms):
        """n live access tokens of an API user (random digests, 4 h to live), in one
        transaction."""
        exp = now_ms + 4 * HOUR_MS
        if self.pg_url:
            # gen_random_uuid() is a CSPRNG: two of them make a random 32-byte digest.
            self._psql(stdin=f"""
BEGIN;
INSERT INTO access_tokens (org_id, user_id, app_id, access_id, refresh_id, api_key_id,
                           digest, nonce, scopes, issued_at, expires_at)
SELECT {org_id}, {user_id}, NULL, NULL, NULL, NULL,
       uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()),
       uuid_send(gen_random_uuid()), {scopes}, {now_ms}, {exp}
FROM generate_series(1, {n});
COMMIT;
ANALYZE access_tokens;
""")
            return
        c = self._sqlite()
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO access_tokens (org_id, user_id, app_id, access_id, refresh_id, api_key_id, "
                "digest, nonce, scopes, issued_at, expires_at) "
                "SELECT ?, ?, NULL, NULL, NULL, NULL, randomblob(32), randomblob(16), ?, ?, ? FROM n",
                (n, org_id, user_id, scopes, now_ms, exp))
            c.execute("COMMIT")
        finally:
            c.close()


def new_refresh_tokens(pod, n):
    """n refresh tokens as grantry mints them (`grt_<pod>_` + base64url of 32 random bytes)
    with their SHA-256 digests."""
    out = []
    for _ in range(n):
        t = f"grt_{pod}_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        out.append((t, hashlib.sha256(t.encode()).digest()))
    return out


def write_lines(path, lines):
    with open(path, "w") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def print_table(title, results):
    print(f"\n{title}")
    print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}{'floor share':>13}"
          f"{'target':>8}{'p99 tgt':>9}{'met':>5}{'vs peer':>9}{'non-2xx':>9}")
    for name, r in results.items():
        target = TARGETS.get(name)
        p99 = P99_TARGETS.get(name)
        ratio = r.get("peer_ratio")
        met = r.get("targets_met")
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50_ms'] or 0:>9.2f}{r['p99_ms'] or 0:>9.2f}"
              f"{r['cpu_us_per_req'] or 0:>12.1f}{r['floor_share'] * 100:>12.1f}%"
              f"{f'{target * 100:.0f}%' if target else '':>8}{f'{p99:g} ms' if p99 else '':>9}"
              f"{'' if met is None else ('yes' if met else 'no'):>5}{f'{ratio:.2f}x' if ratio else '':>9}"
              f"{r['non_2xx']:>9}")


def svg_chart(report, title):
    """Floor shares per scenario as horizontal bars, PERFORMANCE.md's target as a mark."""
    base = report["scenarios"]
    live = report.get("scenarios_live_tokens") or {}
    names = [n for n in base if n != "floor"]
    rows = []  # (label, share, kind, target)
    for n in names:
        rows.append((n, base[n]["floor_share"], "peer" if n.startswith("peer_") else "base", TARGETS.get(n)))
        if n in live:
            rows.append((f"with {report['live_tokens']:,} live tokens", live[n]["floor_share"], "live",
                         TARGETS.get(n)))
    left, bar_w, right, top, row_h, gap = 250, 460, 70, 64, 18, 8
    # The axis ends at the next tenth above the largest bar or target.
    scale_max = (int(max([r[1] for r in rows] + [r[3] or 0 for r in rows] + [0.1]) * 10) + 1) / 10
    width = left + bar_w + right
    groups = sum(1 for r in rows if r[2] != "live")
    height = top + len(rows) * row_h + groups * gap + 50
    x = lambda share: left + bar_w * share / scale_max  # noqa: E731
    colors = {"base": "#2f6db5", "live": "#8fb3e0", "peer": "#9a9a9a"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="10" y="38" fill="#444">requests/s as a share of the HTTP floor '
           f'({report["floor_rps"]:,.0f} req/s) measured in the same run; '
           f'<tspan fill="#c0392b">|</tspan> target (PERFORMANCE.md)</text>']
    bottom = height - 40
    step = 0.1 if scale_max <= 1.0 else 0.25
    for i in range(int(scale_max / step + 1e-9) + 1):
        t = i * step
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="middle" fill="#666">{t * 100:.0f} %</text>')
    y = top
    for label, share, kind, target in rows:
        if kind != "live":
            y += gap
        shade = "#555" if kind == "live" else "#000"
        out.append(f'<text x="{left - 8}" y="{y + row_h - 5}" text-anchor="end" fill="{shade}">'
                   f'{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{max(x(share) - left, 0.5):.1f}" height="{row_h - 4}" '
                   f'fill="{colors[kind]}"/>')
        out.append(f'<text x="{x(max(share, target or 0)) + 5:.1f}" y="{y + row_h - 5}" fill="#222">'
                   f'{share * 100:.1f} %</text>')
        if target:
            out.append(f'<line x1="{x(target):.1f}" y1="{y}" x2="{x(target):.1f}" y2="{y + row_h}" '
                       f'stroke="#c0392b" stroke-width="3"/>')
        y += row_h
    legend = [("grantry", "base")]
    if live:
        legend.append((f"grantry, {report['live_tokens']:,} more live tokens in the store", "live"))
    if any(r[2] == "peer" for r in rows):
        legend.append(("peer (oidc-provider, in-memory)", "peer"))
    lx = 10
    for text, kind in legend:
        out.append(f'<rect x="{lx}" y="{height - 18}" width="12" height="12" fill="{colors[kind]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 8}">{escape(text)}</text>')
        lx += 30 + 7 * len(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", help="run grantry on this PostgreSQL server URL (a fresh database is created)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--live-tokens", type=int, default=0, metavar="N",
                    help="then add N live access tokens to the store and run every scenario again")
    ap.add_argument("--peer", choices=["oidc-provider"],
                    help="also drive this peer (bench/peer/) for the scenarios it supports")
    ap.add_argument("--issue-rate-cap", type=int, default=40000, metavar="RPS",
                    help="refresh tokens seeded for issue_refresh_after_window: this many per second "
                         "of warm-up and of run (default %(default)s)")
    ap.add_argument("--oauth1-rate-cap", type=int, default=30000, metavar="RPS",
                    help="signed requests made for rest_get_oauth1 (one nonce each): this many per second "
                         "of warm-up and of run (default %(default)s); a run faster than this re-sends "
                         "nonces, which are refused")
    ap.add_argument("--binaries", metavar="DIR",
                    help="run the grantry and examples/floor binaries in DIR (a target/release folder) "
                         "instead of building this checkout, e.g. an earlier commit's for a side-by-side run")
    ap.add_argument("--commit", help="the commit --binaries were built from, for the report's name")
    ap.add_argument("--without-limits-config", action="store_true",
                    help="for binaries that predate [limits]: do not lift the per-address limit for the "
                         "login flood")
    ap.add_argument("--only", metavar="NAMES",
                    help="run only these scenarios (comma-separated names; the floor always runs)")
    ap.add_argument("--scale", action="store_true",
                    help="before the first start, seed 10,000 orgs with 10 applications and account "
                         "accesses each and 1,000,000 live tokens in all (examples/seed), then measure "
                         "start-up, memory and every scenario on that database")
    ap.add_argument("--scale-orgs", type=int, default=10_000, metavar="N")
    ap.add_argument("--scale-apps-per-org", type=int, default=10, metavar="N")
    ap.add_argument("--scale-tokens", type=int, default=1_000_000, metavar="N")
    args = ap.parse_args()
    only = set(filter(None, (args.only or "").split(",")))
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if args.database and not shutil.which("psql"):
        raise SystemExit("--database needs psql: apt-get install postgresql-client")
    if args.peer:
        if not shutil.which("node"):
            raise SystemExit("--peer oidc-provider needs Node.js")
        if not os.path.isdir(os.path.join(PEER_DIR, "node_modules", "oidc-provider")):
            raise SystemExit("bench/peer/node_modules is missing: (cd bench/peer && npm ci)")

    if args.binaries:
        release = os.path.abspath(args.binaries)
    else:
        print("building release binaries ...", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "grantry"], check=True, cwd=ROOT)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "grantry-server", "--example", "floor",
                        "--example", "seed"], check=True, cwd=ROOT)
        release = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
    grantry = os.path.join(release, "grantry")
    floor = os.path.join(release, "examples", "floor")
    seeder = os.path.join(release, "examples", "seed")
    if args.scale and not os.path.exists(seeder):
        raise SystemExit(f"--scale needs {seeder}: cargo build --release -p grantry-server --example seed")

    tmp = tempfile.mkdtemp(prefix="grantry-bench-")
    procs = []
    dbname = None
    extra = {}
    results_live = {}
    try:
        gport, fport = free_port(), free_port()
        base = f"http://127.0.0.1:{gport}"
        data_dir = os.path.join(tmp, "data")
        glob = ["--data", data_dir]
        if args.database:
            dbname = f"grantry_bench_{os.getpid()}"
            sh("psql", args.database, "-qc", f"CREATE DATABASE {dbname}")
            u = urllib.parse.urlsplit(args.database)
            db_url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, ""))
            glob += ["--database", db_url]
            database = Database(pg_url=db_url)
        else:
            # The embedded database's file (crates/grantry/src/config/).
            database = Database(sqlite_path=os.path.join(data_dir, "grantry.db"))
        # The flood comes from one address; a real one would come from many, so the per-address
        # limit is lifted for it to reach argon2id at all (README, Security).
        env = dict(os.environ, GRANTRY_LOG="warn")
        if not args.without_limits_config:
            env["GRANTRY_LIMITS__SOURCE_FAILURES"] = "1000000000"
        if args.scale:
            # The data through grantry's own admin and token code, before grantry first starts
            # on it (docs/benchmarks/README.md, "Scale of data").
            print(f"seeding {args.scale_orgs:,} orgs ...", file=sys.stderr)
            url = db_url if args.database else "sqlite://" + database.sqlite_path
            os.makedirs(data_dir, exist_ok=True)
            t0 = time.time()
            subprocess.run([seeder, "--database", url, "--orgs", str(args.scale_orgs),
                            "--apps-per-org", str(args.scale_apps_per_org), "--tokens", str(args.scale_tokens)],
                           check=True)
            database.checkpoint()
            extra["scale"] = {
                "orgs": args.scale_orgs,
                "applications": args.scale_orgs * args.scale_apps_per_org,
                "account_accesses": args.scale_orgs * args.scale_apps_per_org,
                "live_tokens": max(args.scale_tokens, args.scale_orgs * args.scale_apps_per_org),
                "seed_s": round(time.time() - t0, 1),
            }
            if not args.database:
                extra["scale"]["database_mib"] = round(sum(
                    os.path.getsize(os.path.join(data_dir, n)) for n in os.listdir(data_dir)) / 2**20)
        start = time.time()
        g = subprocess.Popen([grantry, *glob, "serve", "--listen", f"127.0.0.1:{gport}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.append(g)
        wait_http(base + "/healthz")
        fresh_start_ms = (time.time() - start) * 1000
        extra["grantry_rss_kib_idle"] = rss_kib(g.pid)
        f = subprocess.Popen([floor, f"127.0.0.1:{fport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(f)
        wait_http(f"http://127.0.0.1:{fport}/")

        def cli(*a):
            return json.loads(sh(grantry, *glob, "--json", *a))

        print("seeding ...", file=sys.stderr)
        if args.scale:
            # grantry makes the first org only on an empty database.
            cli("org", "create", "--name", "default", "--admin", "admin", "--email", "admin@example.com")
        app = cli("app", "add", "--org", "default", "--name", "bench")
        rt = cli("access", "add", "--org", "default", "--client-id", app["client_id"], "--username", "admin",
                 "--by", "admin")["refresh_token"]
        cli("user", "add", "--org", "default", "--username", "bot", "--email", "bot@example.com", "--kind", "api",
            "--grant", "lists:read", "--grant", "contacts:read", "--grant", "events:write")
        key = cli("key", "generate", "--org", "default", "--username", "bot")
        web = cli("app", "add", "--org", "default", "--name", "bench-web", "--redirect-uri",
                  "https://bench.example/cb")
        login_query = urllib.parse.urlencode({"response_type": "code", "client_id": web["client_id"],
                                              "redirect_uri": "https://bench.example/cb"})
        login_cookie, login_csrf = login_form(base, login_query)
        flood_prefix = urllib.parse.urlencode({"query": login_query, "csrf": login_csrf})
        # OAuth 1.0a: a UI user who authorizes the bench application through the three legs.
        o1_password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        subprocess.run([grantry, *glob, "--json", "user", "add", "--org", "default", "--username", "ann",
                        "--email", "ann@example.com", "--kind", "ui", "--grant", "lists:read", "--password-stdin"],
                       input=o1_password + "\n", text=True, check=True, capture_output=True)
        try:
            o1 = oauth1_credentials(base, cli, app, "ann", o1_password)
        except (urllib.error.URLError, AttributeError, KeyError) as e:
            print(f"  no OAuth 1.0a on this binary ({e}): rest_get_oauth1 skipped", file=sys.stderr)
            o1 = None
        # The console's main page (applications and account access) for a signed-in org admin,
        # in an org of its own with five applications and their account accesses (the default
        # org's bench application gets the refresh tokens seeded below, hundreds of thousands
        # under one account access, which no real one has).
        console_password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        cli("org", "create", "--name", "console", "--admin", "boss", "--email", "boss@example.com")
        subprocess.run([grantry, *glob, "--json", "user", "add", "--org", "console", "--username", "opal",
                        "--email", "opal@example.com", "--kind", "ui", "--role", "org_admin",
                        "--password-stdin"], input=console_password + "\n", text=True, check=True,
                       capture_output=True)
        for i in range(5):
            crm = cli("app", "add", "--org", "console", "--name", f"crm-{i}", "--redirect-uri",
                      f"https://crm{i}.example/cb")
            cli("access", "add", "--org", "console", "--client-id", crm["client_id"], "--username", "opal",
                "--by", "opal")
        console_cookie = console_session(base, "console", "opal", console_password)
        if console_cookie is None:
            print("  no console sign-in on this binary: console_settings skipped", file=sys.stderr)
        # An XML API session of the API user (the legacy Login).
        login = (f"<Envelope><Body><Login><USERNAME>bot</USERNAME><PASSWORD>{key['secret']}</PASSWORD>"
                 "</Login></Body></Envelope>")
        try:
            answer = urllib.request.urlopen(urllib.request.Request(
                base + "/XMLAPI", data=login.encode(), headers={"Content-Type": "text/xml"})).read().decode()
        except urllib.error.HTTPError as e:
            answer = e.read().decode(errors="replace")
        found = re.search(r"<SESSIONID>([^<]+)</SESSIONID>", answer)
        session = found.group(1) if found else None
        if session is None:
            print("  no XML API sessions on this binary: xml_session skipped", file=sys.stderr)
        tok = post(base + "/oauth/token", {"grant_type": "refresh_token", "client_id": app["client_id"],
                                            "client_secret": app["client_secret"], "refresh_token": rt})
        at = tok["access_token"]
        req = urllib.request.Request(base + "/rest/databases", data=b'{"name":"bench"}', method="POST",
                                     headers={"Authorization": f"Bearer {at}", "Content-Type": "application/json"})
        db = json.load(urllib.request.urlopen(req))["data"]["id"]

        # What the bulk seeding needs: the pod (from a minted token), the account access of the
        # bench application and the API user.
        pod = rt.split("_")[1]
        cid = app["client_id"].replace("'", "''")
        access_id, access_scopes = database.row(
            "SELECT a.id, a.scopes FROM account_accesses a JOIN applications p ON p.id = a.app_id "
            f"WHERE p.client_id = '{cid}' AND a.revoked_at IS NULL")
        bot_id, bot_org, bot_grants = database.row(
            "SELECT u.id, u.org_id, u.grants FROM users u JOIN orgs o ON o.id = u.org_id "
            "WHERE o.name = 'default' AND u.username = 'bot'")
        refresh_form = {"grant_type": "refresh_token", "client_id": app["client_id"],
                        "client_secret": app["client_secret"]}

        def seed_after_window(phase):
            """Refresh tokens without any access token (as if the last one were older than the
            window), one per request: separate files for the warm-up and the run. Returns the
            two body files."""
            t0 = time.time()
            counts = {"warmup": args.issue_rate_cap * args.warmup, "run": args.issue_rate_cap * args.duration}
            tokens = new_refresh_tokens(pod, counts["warmup"] + counts["run"] + 1)
            database.insert_refresh_tokens(access_id, access_scopes, (d for _, d in tokens),
                                           int(time.time() * 1000))
            database.checkpoint()
            # By hand, one of them: a new access token, then the same one inside the window.
            check = tokens.pop()[0]
            first = post(base + "/oauth/token", {**refresh_form, "refresh_token": check})
            again = post(base + "/oauth/token", {**refresh_form, "refresh_token": check})
            if not first.get("access_token") or first["access_token"] != again["access_token"]:
                raise SystemExit(f"a seeded refresh token did not issue as expected: {first} / {again}")
            prefix = urllib.parse.urlencode(refresh_form) + "&refresh_token="
            files = {}
            for part, n in counts.items():
                files[part] = os.path.join(tmp, f"after-window-{phase}-{part}.txt")
                write_lines(files[part], (prefix + t for t, _ in tokens[:n]))
                del tokens[:n]
            print(f"  seeded {sum(counts.values()):,} refresh tokens in {time.time() - t0:.1f}s", file=sys.stderr)
            return files

        def grantry_scenarios(phase):
            """(name, url, warm-up script, run script, pid) of the floor and grantry's scenarios."""
            def plain(name, url, method, body, headers, pid):
                s = lua_script(tmp, f"{phase}-{name}", method, body, headers)
                return name, url, s, s, pid

            files = seed_after_window(phase)
            token_url = f"{base}/oauth/token"
            # Signed REST calls, one nonce each: a header per request, made before the run
            # (their timestamps stay well inside the window).
            o1_path = f"/rest/databases/{db}"
            o1_url = base + o1_path
            o1_files = {}
            stamp = int(time.time())
            for part, n in ({} if o1 is None else {"warmup": args.oauth1_rate_cap * args.warmup,
                            "run": args.oauth1_rate_cap * args.duration}).items():
                o1_files[part] = os.path.join(tmp, f"oauth1-{phase}-{part}.txt")
                write_lines(o1_files[part], (oauth1_header("GET", o1_url, app["client_id"], app["client_secret"],
                                                           o1["oauth_token"], o1["oauth_token_secret"], stamp)
                                             for _ in range(n)))
            scenarios = [
                plain("floor", f"http://127.0.0.1:{fport}/", "POST", "a=1&b=2", {"Content-Type": FORM}, f.pid),
                plain("rest_get_access_token", f"{base}/rest/databases/{db}", "GET", None,
                      {"Authorization": f"Bearer {at}"}, g.pid),
                plain("rest_get_api_key", f"{base}/rest/databases/{db}", "GET", None,
                      {"Authorization": f"Bearer {key['bearer']}"}, g.pid),
                plain("xml_get_lists", f"{base}/XMLAPI", "POST", GET_LISTS,
                      {"Authorization": f"Bearer {at}", "Content-Type": "text/xml"}, g.pid),
                plain("introspection", f"{base}/oauth/introspect", "POST", urllib.parse.urlencode({"token": at}),
                      {"Content-Type": FORM, "Authorization": basic(app["client_id"], app["client_secret"])}, g.pid),
                plain("refresh_in_window", token_url, "POST", urllib.parse.urlencode({**refresh_form, "refresh_token": rt}),
                      {"Content-Type": FORM}, g.pid),
                plain("issue_client_credentials", token_url, "POST", urllib.parse.urlencode(
                    {"grant_type": "client_credentials", "client_id": key["key_id"], "client_secret": key["secret"]}),
                    {"Content-Type": FORM}, g.pid),
                ("issue_refresh_after_window", token_url,
                 lua_bodies_script(tmp, f"{phase}-after-window-warmup", "/oauth/token", files["warmup"]),
                 lua_bodies_script(tmp, f"{phase}-after-window-run", "/oauth/token", files["run"]), g.pid),
            ]
            if o1 is not None:
                scenarios.append(("rest_get_oauth1", o1_url,
                                  lua_headers_script(tmp, f"{phase}-oauth1-warmup", o1_path, o1_files["warmup"]),
                                  lua_headers_script(tmp, f"{phase}-oauth1-run", o1_path, o1_files["run"]), g.pid))
            if console_cookie is not None:
                scenarios.append(plain("console_settings", f"{base}/console/settings", "GET", None,
                                       {"Cookie": console_cookie}, g.pid))
            if session is not None:
                scenarios.append(plain("xml_session", f"{base}/XMLAPI;jsessionid={session}", "POST", GET_LISTS,
                                       {"Content-Type": "text/xml"}, g.pid))
            return scenarios

        def rest_under_login_flood():
            """The API-key REST call while 8 connections flood the sign-in page with wrong
            passwords; the flood's own figures are kept beside it."""
            flood = login_flood_script(tmp, login_cookie, flood_prefix)
            rest = lua_script(tmp, "flood-rest", "GET", None, {"Authorization": f"Bearer {key['bearer']}"})
            total = args.warmup + args.duration + 2
            wrk = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{total}s", "--latency", "-s", flood, base],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                time.sleep(1)
                run_wrk(f"{base}/rest/databases/{db}", rest, args.warmup, args.connections, g.pid)
                r = run_wrk(f"{base}/rest/databases/{db}", rest, args.duration, args.connections, g.pid)
            finally:
                out, _ = wrk.communicate(timeout=total + 60)
            logins = re.search(r"Requests/sec:\s+([\d.]+)", out)
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            r["flood_logins_per_s"] = float(logins.group(1)) if logins else None
            r["flood_non_2xx"] = int(bad.group(1)) if bad else 0
            print(f"  rest_under_login_flood: {r['rps']:.0f} req/s, p99 {r['p99_ms']} ms, "
                  f"{r['flood_logins_per_s']} wrong sign-ins/s", file=sys.stderr)
            return r

        def run_all(scenarios):
            results = {}
            for name, url, warm, script, pid in scenarios:
                if only and name != "floor" and name not in only:
                    continue
                run_wrk(url, warm, args.warmup, args.connections, pid)
                results[name] = run_wrk(url, script, args.duration, args.connections, pid)
                r = results[name]
                note = f", {r['non_2xx']} non-2xx" if r["non_2xx"] else ""
                if r.get("bodies_wrapped"):
                    cap = "--oauth1-rate-cap" if name == "rest_get_oauth1" else "--issue-rate-cap"
                    note += f", token file ran out {r['bodies_wrapped']}x: raise {cap}"
                print(f"  {name}: {r['rps']:.0f} req/s{note}", file=sys.stderr)
            return results

        print("running the scenarios ...", file=sys.stderr)
        results = run_all(grantry_scenarios("base"))
        if not only or "rest_under_login_flood" in only:
            results["rest_under_login_flood"] = rest_under_login_flood()
        extra["grantry_rss_kib_after_load"] = rss_kib(g.pid)

        if args.database:
            # README, "Running in production": several instances of a pod on one database.
            print("three instances on the one database ...", file=sys.stderr)
            instances = [(base, g)]
            for _ in range(2):
                port = free_port()
                p = subprocess.Popen([grantry, *glob, "serve", "--listen", f"127.0.0.1:{port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                procs.append(p)
                wait_http(f"http://127.0.0.1:{port}/healthz")
                instances.append((f"http://127.0.0.1:{port}", p))
            extra["three_instances"] = run_spread(grantry_scenarios("three"), instances, args)

        if args.peer:
            print(f"running the peer ({args.peer}) ...", file=sys.stderr)
            pport = free_port()
            peer_url = f"http://127.0.0.1:{pport}"
            peer_id, peer_secret = "bench", base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
            p = subprocess.Popen(["node", os.path.join(PEER_DIR, "server.mjs"), str(pport), peer_id, peer_secret],
                                 cwd=PEER_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_http(peer_url + "/.well-known/openid-configuration")
            cc = {"grant_type": "client_credentials", "client_id": peer_id, "client_secret": peer_secret,
                  "scope": "api"}
            peer_at = post(peer_url + "/token", cc)["access_token"]
            check = post(peer_url + "/token/introspection", {"token": peer_at}, basic(peer_id, peer_secret))
            if not check.get("active"):
                raise SystemExit(f"the peer's introspection did not answer active: {check}")
            peer = []
            for name, path, body, headers in [
                ("peer_client_credentials", "/token", urllib.parse.urlencode(cc), {"Content-Type": FORM}),
                ("peer_introspection", "/token/introspection", urllib.parse.urlencode({"token": peer_at}),
                 {"Content-Type": FORM, "Authorization": basic(peer_id, peer_secret)}),
            ]:
                s = lua_script(tmp, name, "POST", body, headers)
                peer.append((name, peer_url + path, s, s, p.pid))
            results.update(run_all(peer))
            extra["peer"] = {
                "name": "oidc-provider",
                "version": json.load(open(os.path.join(PEER_DIR, "node_modules", "oidc-provider",
                                                       "package.json")))["version"],
                "node": sh("node", "--version").strip(),
                "store": "in-memory (default adapter)",
                "rss_kib_after_load": rss_kib(p.pid),
            }
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)

        if args.live_tokens:
            print(f"adding {args.live_tokens:,} live access tokens ...", file=sys.stderr)
            t0 = time.time()
            database.insert_live_access_tokens(args.live_tokens, bot_org, bot_id, bot_grants,
                                               int(time.time() * 1000))
            database.checkpoint()
            extra["live_tokens_insert_s"] = round(time.time() - t0, 1)
            print(f"  in {extra['live_tokens_insert_s']}s", file=sys.stderr)
            print("running the scenarios again ...", file=sys.stderr)
            results_live = run_all(grantry_scenarios("live"))
            extra["grantry_rss_kib_after_load_live_tokens"] = rss_kib(g.pid)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if dbname:
            subprocess.run(["psql", args.database, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    def shares(res):
        floor_rps = res["floor"]["rps"]
        for name, r in res.items():
            r["floor_share"] = round(r["rps"] / floor_rps, 3)
            if name in TARGETS:
                r["target_floor_share"] = TARGETS[name]
            if name in P99_TARGETS:
                r["target_p99_ms"] = P99_TARGETS[name]
            if name in TARGETS or name in P99_TARGETS:
                # A run answered with errors (a token file that wrapped) meets nothing.
                r["targets_met"] = (r["floor_share"] >= TARGETS.get(name, 0)
                                    and (r["p99_ms"] or 0) <= P99_TARGETS.get(name, float("inf"))
                                    and not r.get("non_2xx"))
            peer = results.get(PEER_OF.get(name))
            if peer:
                r["peer_ratio"] = round(r["rps"] / peer["rps"], 2)
        return floor_rps

    floor_rps = shares(results)
    commit = args.commit or sh("git", "rev-parse", "--short", "HEAD").strip()
    today = datetime.date.today().isoformat()
    backend = "postgres" if args.database else "sqlite (WAL, synchronous=FULL)"
    suffix = ("-postgres" if args.database else "") + ("-scale" if args.scale else "")
    if args.live_tokens and only:
        suffix += f"-live{args.live_tokens}"
    stem = os.path.join(ROOT, "bench", "results", f"{today}-{commit}{suffix}")
    n = 2
    while os.path.exists(stem + ".json"):
        stem = re.sub(r"(-run\d+)?$", f"-run{n}", stem, count=1)
        n += 1
    report = {
        "date": today,
        "commit": commit,
        "backend": backend,
        "machine": {"cores": os.cpu_count(), "kernel": os.uname().release},
        "load": f"wrk -t1 -c{args.connections} -d{args.duration}s after {args.warmup}s warm-up, loopback",
        "floor_rps": floor_rps,
        "grantry_rss_kib_after_load": extra["grantry_rss_kib_after_load"],
        "grantry_rss_kib_idle": extra["grantry_rss_kib_idle"],
        "fresh_start_to_healthy_ms": round(fresh_start_ms),
        "issue_rate_cap": args.issue_rate_cap,
        "oauth1_rate_cap": args.oauth1_rate_cap,
        "binaries": "built from this checkout" if not args.binaries else release,
        "scenarios": results,
    }
    if "peer" in extra:
        report["peer"] = extra["peer"]
    if "scale" in extra:
        report["scale"] = extra["scale"]
    if only:
        report["only"] = sorted(only)
    if "three_instances" in extra:
        three = extra["three_instances"]
        for name, r in three.items():
            one = results.get(name)
            if one:
                r["vs_one_instance"] = round(r["rps"] / one["rps"], 2)
        report["three_instances"] = {
            "load": f"{args.connections // 3} connections on each of three grantry processes on the one database",
            "scenarios": three,
        }
    if results_live:
        for r in results_live.values():
            r["live_tokens"] = args.live_tokens
        report["live_tokens"] = args.live_tokens
        report["live_tokens_insert_s"] = extra["live_tokens_insert_s"]
        report["floor_rps_live_tokens"] = shares(results_live)
        report["grantry_rss_kib_after_load_live_tokens"] = extra["grantry_rss_kib_after_load_live_tokens"]
        report["scenarios_live_tokens"] = results_live
    report["chart"] = os.path.relpath(stem + ".svg", ROOT)
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".svg", "w") as fh:
        fh.write(svg_chart(report, f"grantry {commit}, {today}, {backend}"))
    with open(stem + ".json", "w") as fh:
        json.dump(report, fh, indent=2)

    print_table(f"{backend}: {args.connections} connections, {args.duration}s per scenario", results)
    if results_live:
        print_table(f"the same with {args.live_tokens:,} more live access tokens in the store", results_live)
    if "three_instances" in report:
        print(f"\nthree instances on one PostgreSQL database ({args.connections // 3} connections each)")
        print(f"{'scenario':<28}{'req/s total':>12}{'per instance':>26}{'p99 ms':>9}{'vs one':>8}")
        for name, r in report["three_instances"]["scenarios"].items():
            each = "/".join(f"{x['rps']:.0f}" for x in r["per_instance"])
            print(f"{name:<28}{r['rps']:>12.0f}{each:>26}{r['p99_ms']:>9.2f}{r.get('vs_one_instance', 0):>7.2f}x")
    print(f"\ngrantry RSS: {extra['grantry_rss_kib_idle'] / 1024:.1f} MiB idle, "
          f"{extra['grantry_rss_kib_after_load'] / 1024:.1f} MiB after load; "
          f"results: {os.path.relpath(stem, ROOT)}.json, chart: {report['chart']}")


if __name__ == "__main__":
    main()
