#!/usr/bin/env python3
"""grantry's side-by-side benchmark (PERFORMANCE.md).

Builds release binaries, starts grantry on a fresh database and a trivial axum floor server,
seeds an organization, an application with account access and an API user with a key, then
drives each scenario with wrk (-t1 -c32, loopback) after a warm-up, measuring requests/s,
p50/p99 and the server's CPU time per request (from /proc/<pid>/stat). Every figure is also
given as a share of the floor measured in the same run. Writes a table to stdout and
bench/results/<date>-<commit>.json.

Usage: bench/run [--database postgres://...] [--duration 10] [--warmup 3] [--connections 32]
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def post(url, form, auth=None):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    if auth:
        req.add_header("Authorization", auth)
    return json.load(urllib.request.urlopen(req))


LUA = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
"""


def lua_script(tmp, name, method, body=None, headers=None):
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    path = os.path.join(tmp, f"{name}.lua")
    with open(path, "w") as f:
        f.write(LUA.format(method=method, body=json.dumps(body) if body is not None else "nil",
                           headers="\n".join(lines)))
    return path


def unit_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, script, duration, connections, pid):
    """One wrk run: returns rps, p50, p99 (ms), requests, non-2xx count and server CPU s."""
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
        check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    pct = {}
    for k, v in lat.items():
        m = re.match(r"([\d.]+)(\w+)", v)
        pct[k] = unit_ms(m.group(1), m.group(2))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": pct.get("50"),
        "p99_ms": pct.get("99"),
        "requests": reqs,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "cpu_us_per_req": round(cpu * 1e6 / reqs, 1) if reqs else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", help="run grantry on this PostgreSQL server URL (a fresh database is created)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    print("building release binaries ...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "grantry"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "grantry-server", "--example", "floor"],
                   check=True, cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    grantry = os.path.join(target, "release", "grantry")
    floor = os.path.join(target, "release", "examples", "floor")

    tmp = tempfile.mkdtemp(prefix="grantry-bench-")
    procs = []
    dbname = None
    try:
        gport, fport = free_port(), free_port()
        base = f"http://127.0.0.1:{gport}"
        glob = ["--data", os.path.join(tmp, "data")]
        if args.database:
            dbname = f"grantry_bench_{os.getpid()}"
            sh("psql", args.database, "-qc", f"CREATE DATABASE {dbname}")
            u = urllib.parse.urlsplit(args.database)
            glob += ["--database", urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, "", ""))]
        env = dict(os.environ, GRANTRY_LOG="warn")
        start = time.time()
        g = subprocess.Popen([grantry, *glob, "serve", "--listen", f"127.0.0.1:{gport}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.append(g)
        wait_http(base + "/healthz")
        fresh_start_ms = (time.time() - start) * 1000
        f = subprocess.Popen([floor, f"127.0.0.1:{fport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(f)
        wait_http(f"http://127.0.0.1:{fport}/")

        def cli(*a):
            return json.loads(sh(grantry, *glob, "--json", *a))

        print("seeding ...", file=sys.stderr)
        app = cli("app", "add", "--org", "default", "--name", "bench")
        rt = cli("access", "add", "--org", "default", "--client-id", app["client_id"], "--username", "admin",
                 "--by", "admin")["refresh_token"]
        cli("user", "add", "--org", "default", "--username", "bot", "--email", "bot@example.com", "--kind", "api",
            "--grant", "lists:read", "--grant", "contacts:read", "--grant", "events:write")
        key = cli("key", "generate", "--org", "default", "--username", "bot")
        tok = post(base + "/oauth/token", {"grant_type": "refresh_token", "client_id": app["client_id"],
                                            "client_secret": app["client_secret"], "refresh_token": rt})
        at = tok["access_token"]
        req = urllib.request.Request(base + "/rest/databases", data=b'{"name":"bench"}', method="POST",
                                     headers={"Authorization": f"Bearer {at}", "Content-Type": "application/json"})
        db = json.load(urllib.request.urlopen(req))["data"]["id"]

        form = "application/x-www-form-urlencoded"
        scenarios = [
            ("floor", f"http://127.0.0.1:{fport}/", "POST", "a=1&b=2", {"Content-Type": form}),
            ("rest_get_access_token", f"{base}/rest/databases/{db}", "GET", None, {"Authorization": f"Bearer {at}"}),
            ("rest_get_api_key", f"{base}/rest/databases/{db}", "GET", None, {"Authorization": f"Bearer {key['bearer']}"}),
            ("xml_get_lists", f"{base}/XMLAPI", "POST",
             "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>",
             {"Authorization": f"Bearer {at}", "Content-Type": "text/xml"}),
            ("introspection", f"{base}/oauth/introspect", "POST", urllib.parse.urlencode({"token": at}),
             {"Content-Type": form, "Authorization": "Basic " + __import__("base64").b64encode(
                 f"{app['client_id']}:{app['client_secret']}".encode()).decode()}),
            ("refresh_in_window", f"{base}/oauth/token", "POST", urllib.parse.urlencode(
                {"grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": app["client_secret"],
                 "refresh_token": rt}), {"Content-Type": form}),
            ("issue_client_credentials", f"{base}/oauth/token", "POST", urllib.parse.urlencode(
                {"grant_type": "client_credentials", "client_id": key["key_id"], "client_secret": key["secret"]}),
             {"Content-Type": form}),
        ]
        results = {}
        for name, url, method, body, headers in scenarios:
            script = lua_script(tmp, name, method, body, headers)
            pid = f.pid if name == "floor" else g.pid
            run_wrk(url, script, args.warmup, args.connections, pid)
            results[name] = run_wrk(url, script, args.duration, args.connections, pid)
            print(f"  {name}: {results[name]['rps']:.0f} req/s", file=sys.stderr)
        with open(f"/proc/{g.pid}/status") as st:
            rss_kib = int(re.search(r"VmRSS:\s+(\d+)", st.read()).group(1))
    finally:
        for p in procs:
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

    floor_rps = results["floor"]["rps"]
    for r in results.values():
        r["floor_share"] = round(r["rps"] / floor_rps, 3)
    commit = sh("git", "rev-parse", "--short", "HEAD").strip()
    today = datetime.date.today().isoformat()
    report = {
        "date": today,
        "commit": commit,
        "backend": "postgres" if args.database else "sqlite (WAL, synchronous=FULL)",
        "machine": {"cores": os.cpu_count(), "kernel": os.uname().release},
        "load": f"wrk -t1 -c{args.connections} -d{args.duration}s after {args.warmup}s warm-up, loopback",
        "floor_rps": floor_rps,
        "grantry_rss_kib_after_load": rss_kib,
        "fresh_start_to_healthy_ms": round(fresh_start_ms),
        "scenarios": results,
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", f"{today}-{commit}{'-postgres' if args.database else ''}.json")
    with open(out, "w") as fh:
        json.dump(report, fh, indent=2)

    print(f"\n{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}{'floor share':>13}{'non-2xx':>9}")
    for name, r in results.items():
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['cpu_us_per_req'] or 0:>12.1f}{r['floor_share'] * 100:>12.1f}%{r['non_2xx']:>9}")
    print(f"\ngrantry RSS after load: {rss_kib / 1024:.1f} MiB; results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
