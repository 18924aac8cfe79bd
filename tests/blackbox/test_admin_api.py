"""Black-box tests of the admin API (`/admin/v1`, docs/admin-api.md) from an integrator's side.

A hand-written `requests` client checks every answer it gets against the schema the server's
own OpenAPI document (`/admin/v1/openapi.json`) gives for that operation and status
(`jsonschema`, Draft 2020-12, `$ref`s resolved inside the document), and drives seed 000/001
(an application, account access for a UI user, its refresh token traded for an access token
that opens the REST API) and seed 002 (an API user's key rotation) through the API only. The
CLI in remote mode (`--server URL --token TOKEN`) runs the README walk-through against a
running server, and the operator token creates an organization.

The one thing done outside the API is the bootstrap every deployment does once: an API user
holding admin:read and admin:write, made with the local CLI.
"""

from __future__ import annotations

import json
import subprocess

import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import GRANTRY_BIN, HTTP_TIMEOUT, _child_env

DOC_URI = "urn:grantry:admin-openapi"


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class AdminClient:
    """The admin API, every answer checked against the document's schema for it."""

    def __init__(self, base_url: str, bearer: str):
        self.base = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["authorization"] = f"Bearer {bearer}"
        doc = requests.get(f"{base_url}/admin/v1/openapi.json", timeout=HTTP_TIMEOUT).json()
        assert doc["openapi"].startswith("3.1"), doc["openapi"]
        self.doc = doc
        self.registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))
        self.checked = 0

    def _template(self, method: str, path: str) -> str:
        """The document's path template that `path` is an instance of."""
        parts = path.split("?")[0].split("/")
        for template, item in self.doc["paths"].items():
            tparts = template.split("/")
            if len(tparts) == len(parts) and all(t.startswith("{") or t == p for t, p in zip(tparts, parts)):
                if method.lower() in item:
                    return template
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def call(self, method: str, path: str, *, json_body=None, headers=None, want: int) -> requests.Response:
        r = self.http.request(method, f"{self.base}{path}", json=json_body, headers=headers or {}, timeout=HTTP_TIMEOUT)
        assert r.status_code == want, (method, path, r.status_code, r.text)
        template = self._template(method, path)
        responses = self.doc["paths"][template][method.lower()]["responses"]
        key = str(want) if str(want) in responses else "default"
        assert key in responses, (method, template, want, list(responses))
        content = responses[key].get("content")
        if content is None:
            assert r.content == b"", r.text
            return r
        media = r.headers["content-type"].split(";")[0]
        assert media in content, (method, template, media, list(content))
        schema_ref = f"{DOC_URI}#/" + _pointer("paths", template, method.lower(), "responses", key, "content", media, "schema")
        validator = Draft202012Validator({"$ref": schema_ref}, registry=self.registry)
        errors = sorted(validator.iter_errors(r.json()), key=str)
        assert not errors, f"{method} {path} {want}: answer does not match the document: {errors[0]}\n{r.text}"
        self.checked += 1
        return r


def _provisioner(grantry) -> str:
    """The bootstrap: an API user with the admin scopes, made with the local CLI; its bearer."""
    grantry.add_api_user("provisioner", grants=["admin:read", "admin:write"])
    return grantry.generate_key("provisioner").bearer


def test_seed_flows_through_the_admin_api_only_match_its_openapi_document(grantry):
    api = AdminClient(grantry.base_url, _provisioner(grantry))

    # seed 000/001: an application, a UI user, account access, the refresh token traded
    alice = api.call("POST", "/admin/v1/users", json_body={
        "username": "alice", "email": "alice@example.com", "kind": "ui",
        "grants": ["lists:read", "lists:write", "contacts:read"]}, want=201).json()
    assert alice["kind"] == "ui" and len(alice["password"]) >= 12
    made = api.call("POST", "/admin/v1/applications", headers={"idempotency-key": "crm-1"}, json_body={
        "name": "CRM sync", "scopes": ["lists:read", "lists:write", "contacts:read"]}, want=201).json()
    client_id, client_secret = made["client_id"], made["client_secret"]
    replay = api.call("POST", "/admin/v1/applications", headers={"idempotency-key": "crm-1"}, json_body={
        "name": "CRM sync", "scopes": ["lists:read", "lists:write", "contacts:read"]}, want=201)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["client_id"] == client_id and replay.json()["client_secret"] is None
    access = api.call("POST", "/admin/v1/account-accesses", json_body={
        "client_id": client_id, "username": "alice"}, want=201).json()
    assert access["created_by"] == "admin", access
    token = grantry.token_request({
        "grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
        "refresh_token": access["refresh_token"]})
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    r = grantry.rest("POST", "/databases", access_token, json_body={"name": "Newsletter"})
    assert r.status_code == 201, r.text

    # narrowing the application under If-Match acts on the very next request
    got = api.call("GET", f"/admin/v1/applications/{client_id}", want=200)
    etag = got.headers["etag"]
    api.call("PATCH", f"/admin/v1/applications/{client_id}", headers={"if-match": etag},
             json_body={"scopes": ["contacts:read"]}, want=200)
    stale = api.call("PATCH", f"/admin/v1/applications/{client_id}", headers={"if-match": etag},
                     json_body={"scopes": ["lists:read"]}, want=412).json()
    assert stale["type"].endswith("#problem-stale"), stale
    assert grantry.rest("GET", "/databases", access_token).status_code == 403

    # seed 002: an API user's two keys, rotated without downtime
    api.call("POST", "/admin/v1/users", json_body={
        "username": "etl", "email": "etl@example.com", "kind": "api", "grants": ["lists:read"]}, want=201)
    key1 = api.call("POST", "/admin/v1/users/etl/keys", want=201).json()
    assert key1["slot"] == 1
    assert grantry.rest("GET", "/databases", key1["bearer"]).status_code == 200
    key2 = api.call("POST", "/admin/v1/users/etl/keys", want=201).json()
    assert key2["slot"] == 2 and key2["key_id"] == key1["key_id"]
    full = api.call("POST", "/admin/v1/users/etl/keys", want=409).json()
    assert "two secret keys" in full["detail"], full
    deleted = api.call("DELETE", "/admin/v1/users/etl/keys/1", want=200).json()
    assert deleted["promoted"] is True
    assert grantry.rest("GET", "/databases", key2["bearer"]).status_code == 200
    # the deleted key keeps working for api_keys.delete_grace (5 minutes by default)
    assert grantry.rest("GET", "/databases", key1["bearer"]).status_code == 200
    keys = api.call("GET", "/admin/v1/users/etl/keys", want=200).json()
    assert sorted((k["slot"] is None) for k in keys["keys"]) == [False, True], keys

    # the audit log names the caller and the request of every change, a page at a time
    page = api.call("GET", "/admin/v1/audit?actor=provisioner&limit=3", want=200).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert all(e["detail"].get("request_id") for e in page["items"]), page
    rest = api.call("GET", f"/admin/v1/audit?actor=provisioner&limit=200&cursor={page['next_cursor']}", want=200).json()
    assert rest["next_cursor"] is None
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)

    # refusals are problem details the document describes
    api.call("GET", "/admin/v1/applications/nope", want=404)
    api.call("POST", "/admin/v1/applications", json_body={"name": "x", "scopes": ["bogus"]}, want=422)
    assert api.checked >= 15, api.checked


def _remote(grantry, token: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI in remote mode: no --data and no --database, only the server's URL."""
    proc = subprocess.run(
        [str(GRANTRY_BIN), "--server", grantry.base_url, "--token", token, "--json", *args],
        capture_output=True, text=True, cwd=grantry.workdir, env=_child_env(), timeout=60)
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def test_the_cli_in_remote_mode_runs_the_readme_walk_through(grantry):
    token = _provisioner(grantry)
    app = json.loads(_remote(grantry, token, "app", "add", "--org", "default", "--name", "CRM sync",
                             "--description", "Nightly contact sync").stdout)
    local = grantry.add_app("Local twin")
    assert set(app) == set(local), (app, local)
    access = json.loads(_remote(grantry, token, "access", "add", "--org", "default", "--client-id", app["client_id"],
                                "--username", "admin", "--by", "admin").stdout)
    assert access["refresh_token"].startswith("grt_"), access
    mailed = [m.get_body(("plain",)).get_content() for _, m in grantry.outbox()]
    assert any(access["refresh_token"] in body for body in mailed), "the server mailed the refresh token"
    token_answer = grantry.token_request({
        "grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "refresh_token": access["refresh_token"]})
    assert token_answer.status_code == 200, token_answer.text
    access_token = token_answer.json()["access_token"]
    assert grantry.rest("POST", "/databases", access_token, json_body={"name": "Newsletter"}).status_code == 201
    listed = json.loads(_remote(grantry, token, "access", "list", "--org", "default").stdout)
    assert [a["client_id"] for a in listed] == [app["client_id"]]
    assert listed == grantry.cli("access", "list", "--org", "default")

    _remote(grantry, token, "access", "delete", "--org", "default", "--client-id", app["client_id"], "--username", "admin")
    assert grantry.rest("GET", "/databases", access_token).status_code == 401
    events = json.loads(_remote(grantry, token, "audit", "--org", "default").stdout)
    local_events = grantry.audit()
    assert [e["id"] for e in events] == [e["id"] for e in local_events]
    assert {"application.created", "account_access.created", "account_access.deleted"} <= {e["action"] for e in events}

    # API users and keys, the same commands as locally
    added = json.loads(_remote(grantry, token, "user", "add", "--org", "default", "--username", "etl",
                               "--email", "etl@example.com", "--kind", "api", "--grant", "lists:read").stdout)
    assert added["kind"] == "api" and added["key_id"]
    held = json.loads(_remote(grantry, token, "user", "grant", "--org", "default", "--username", "etl",
                              "--grant", "contacts:read").stdout)
    assert held["grants"] == ["lists:read", "contacts:read"]
    key = json.loads(_remote(grantry, token, "key", "generate", "--org", "default", "--username", "etl").stdout)
    assert key["slot"] == 1
    assert grantry.rest("GET", "/databases", key["bearer"]).status_code == 200
    _remote(grantry, token, "user", "disable", "--org", "default", "--username", "etl")
    assert grantry.rest("GET", "/databases", key["bearer"]).status_code == 401

    # refusals in the server's words, nothing made
    wrong_org = _remote(grantry, token, "app", "add", "--org", "other", "--name", "x", check=False)
    assert wrong_org.returncode == 1 and "belongs to organization" in wrong_org.stderr, wrong_org.stderr
    bad = _remote(grantry, "gsk_bogus", "app", "add", "--org", "default", "--name", "x", check=False)
    assert bad.returncode == 1 and "error" in bad.stderr, bad.stderr
    reader = grantry.add_api_user("reader", grants=["admin:read"])
    assert reader["kind"] == "api"
    read_token = grantry.generate_key("reader").bearer
    refused = _remote(grantry, read_token, "app", "add", "--org", "default", "--name", "x", check=False)
    assert refused.returncode == 1 and "admin:write" in refused.stderr, refused.stderr
    apps = requests.get(f"{grantry.base_url}/admin/v1/applications", headers={"authorization": f"Bearer {token}"},
                        timeout=HTTP_TIMEOUT).json()
    assert sorted(a["name"] for a in apps["items"]) == ["CRM sync", "Local twin"], apps


def test_the_operator_token_creates_organizations(grantry_factory, tmp_path):
    where = tmp_path / "operator"
    where.mkdir()
    minted = subprocess.run([str(GRANTRY_BIN), "--json", "operator-token"], capture_output=True, text=True,
                            cwd=where, env=_child_env(), timeout=60)
    assert minted.returncode == 0, minted.stderr
    assert list(where.iterdir()) == [], "minting a token makes no data folder and no key file"
    op = json.loads(minted.stdout)
    assert op["token"].startswith("gop_") and len(op["sha256"]) == 64
    grantry = grantry_factory(env={"GRANTRY_ADMIN__OPERATOR_TOKEN_SHA256": op["sha256"]})
    made = json.loads(_remote(grantry, op["token"], "org", "create", "--name", "acme", "--admin", "alice",
                              "--email", "alice@acme.example.com").stdout)
    assert made["org"] == "acme" and made["admin"] == "alice" and len(made["password"]) >= 12
    assert grantry.cli("audit", "--org", "acme")[0]["actor"] == "operator"
    # an org admin's credential does not create organizations
    token = _provisioner(grantry)
    refused = _remote(grantry, token, "org", "create", "--name", "beta", "--admin", "bob",
                      "--email", "bob@beta.example.com", check=False)
    assert refused.returncode == 1 and "operator token" in refused.stderr, refused.stderr
    r = requests.post(f"{grantry.base_url}/admin/v1/orgs", json={"name": "beta", "admin": "b", "email": "b@x.example.com"},
                      headers={"authorization": "Bearer nope"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
