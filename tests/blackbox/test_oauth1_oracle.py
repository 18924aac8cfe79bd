"""OAuth 1.0a signature verification (RFC 5849 §3.4) checked against an oracle: Python's
`oauthlib`.

Hypothesis draws requests to the protected APIs and to the temporary credentials endpoint:
the method and route, extra query and form parameters whose names and values are drawn from
text with reserved characters, spaces, `+`, `%`, `&`, `=`, non-ASCII characters, empty values,
repeated names and names that sort closely; the signature method; where the protocol
parameters go (§3.5: header, query, form body). `oauthlib.oauth1.Client` signs each one with
real token credentials. The property: grantry accepts every request oauthlib signed, and
refuses with 401 and `WWW-Authenticate: OAuth realm="grantry"` (§3.2) a copy with one
character of the signature, or of one signed parameter's value, altered.

Last, nonces (§3.3) are shared by every server on one database: a request accepted by one
instance is refused as a replay by another, also when sent to both at once.

Every test runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, quote, quote_plus, unquote_plus, urlsplit

import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
    Client,
)
from oauthlib.oauth1.rfc5849 import signature as oauth_signature

from conftest import HTTP_TIMEOUT, Grantry, xml_fault, xml_ok
from test_oauth1 import CALLBACK, register, signer, three_legs
from test_oauth_clients import add_user

CHALLENGE = 'OAuth realm="grantry"'
FORM = "application/x-www-form-urlencoded"
GET_LISTS = "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>"

# Every example makes signed requests that fail on purpose: the limits on guessing a client
# secret (docs/architecture.md, limits) would otherwise lock the consumer out mid-test.
NO_LOCKOUT = {"GRANTRY_LIMITS__LOCKOUT_AFTER": "1000000", "GRANTRY_LIMITS__SOURCE_FAILURES": "1000000"}

# ---- what hypothesis draws ---------------------------------------------------------------------

# Characters that §3.6 percent-encodes and that form encoding treats specially, plus
# non-ASCII letters of two, three and four UTF-8 bytes.
SPECIAL = list("!#$&'()*+,/:;=?@[]% ~-._\"<>\\^`{|}\t\r\n") + ["é", "ß", "€", "日", "😀", "\u00a0"]
CHARS = st.one_of(
    st.sampled_from(SPECIAL + list("aAzZ09")),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
)
VALUES = st.text(alphabet=CHARS, max_size=12)
# Names that sort next to one another only once encoded (§3.4.1.3.2 sorts the encoded
# names): "a" < "a%20" < "a%2B" < "a-" < "a." < "a0" < "a_" < "a~" < "ab", and non-ASCII
# (%C3...) before letters; an empty name first; `realm` counts as any other parameter
# outside the header.
CLOSE_NAMES = ["", "a", "A", "a ", "a+", "a%", "a%20", "a-", "a.", "a0", "a_", "a~", "ab", "a=", "a&",
               "aé", "é", "e", "z", "Z", "_", "~", "-", "realm", "OAuth_x", "oauth", "a😀"]
NAMES = st.one_of(st.sampled_from(CLOSE_NAMES), st.text(alphabet=CHARS, min_size=1, max_size=8)).filter(
    # protocol parameters are oauthlib's to add; `xml` is the XML API's envelope field
    lambda n: not n.startswith("oauth_") and n != "xml")


@st.composite
def param_lists(draw, max_size=5):
    """A list of pairs, sometimes with one name repeated with different values (§3.4.1.3.2
    sorts those by value)."""
    pairs = draw(st.lists(st.tuples(NAMES, VALUES), max_size=max_size))
    if draw(st.booleans()):
        name = draw(NAMES)
        pairs += [(name, v) for v in draw(st.lists(VALUES, min_size=2, max_size=3, unique=True))]
    return draw(st.permutations(pairs))


@st.composite
def encodings(draw):
    """How the client serializes a form string: spaces as `+` or `%20`, hex digits in upper or
    lower case (both decode alike, RFC 3986 §2.1 and the W3C form encoding), an empty value
    as `name=` or as a bare `name`."""
    return draw(st.booleans()), draw(st.booleans()), draw(st.booleans())


def form_encode(pairs, encoding) -> str:
    plus, lower, bare = encoding
    quote_fn = quote_plus if plus else quote

    def enc(s: str) -> str:
        out = quote_fn(s, safe="")
        return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), out) if lower else out

    return "&".join(enc(k) if bare and not v else f"{enc(k)}={enc(v)}" for k, v in pairs)


METHODS = st.sampled_from([SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, SIGNATURE_PLAINTEXT])

# ---- the oracle ----------------------------------------------------------------------------------


def oracle_base_string(method: str, uri: str, headers: dict, body) -> str:
    """The signature base string (§3.4.1) of a signed request as oauthlib builds it: query,
    `Authorization` header (without realm) and a form body (only when its Content-Type is
    form-urlencoded, §3.4.1.3.1)."""
    form = {k.lower(): v for k, v in headers.items()}.get("content-type", "").startswith(FORM)
    params = oauth_signature.collect_parameters(uri_query=urlsplit(uri).query, body=body if form else None,
                                                headers=headers, exclude_oauth_signature=True)
    return oauth_signature.signature_base_string(method, oauth_signature.base_string_uri(uri),
                                                 oauth_signature.normalize_parameters(params))


def sign(app: dict, token: dict | None, method: str, uri: str, sig_method: str, placement: str,
         body: str | None = None, content_type: str | None = None, callback: str | None = None):
    """(uri, headers, body) of the request as `oauthlib.oauth1.Client` signs it."""
    client = Client(app["client_id"], client_secret=app["client_secret"],
                    resource_owner_key=token and token["oauth_token"],
                    resource_owner_secret=token and token["oauth_token_secret"],
                    callback_uri=callback, signature_method=sig_method, signature_type=placement)
    headers = {"Content-Type": content_type} if content_type else {}
    uri, headers, body = client.sign(uri, http_method=method, body=body, headers=headers)
    return uri, dict(headers), body


# ---- altering one character ----------------------------------------------------------------------


def _other(s: str, pos: int) -> str:
    """`s` with the character at `pos` (mod its length) replaced by another; "x" if empty."""
    if not s:
        return "x"
    i = pos % len(s)
    return s[:i] + ("B" if s[i] == "A" else "A") + s[i + 1:]


def _alter_segment(form: str, pick, pos: int) -> str | None:
    """`form` (a query or form body) with the value of the segment `pick` chooses (among
    those it accepts by name) altered; None when none is accepted."""
    segments = form.split("&") if form else []
    candidates = [i for i, seg in enumerate(segments) if pick(unquote_plus(seg.split("=", 1)[0]))]
    if not candidates:
        return None
    i = candidates[pos % len(candidates)]
    name, _, value = segments[i].partition("=")
    segments[i] = f"{name}={quote(_other(unquote_plus(value), pos), safe='')}"
    return "&".join(segments)


def alter(uri: str, headers: dict, body, placement: str, pos: int, what: str):
    """A copy of a signed request with one character altered: of `oauth_signature`
    (what="signature"), or of one signed parameter's value (what="param": an extra query or
    form parameter, or `oauth_nonce`). Returns (uri, headers, body) and where the change is,
    or None when there is nothing of that kind to alter."""
    headers = dict(headers)
    base, _, query = uri.partition("?")
    form_body = isinstance(body, str) and headers.get("Content-Type", "").startswith(FORM)
    if what == "signature":
        def pick(n):
            return n == "oauth_signature"
    else:
        def pick(n):
            # `xml` is parsed before the signature is checked; the timestamp must stay a number
            return n == "oauth_nonce" or (not n.startswith("oauth_") and n != "xml")
    places = []
    if placement == SIGNATURE_TYPE_AUTH_HEADER:
        places.append("header")
    if query:
        places.append("query")
    if form_body:
        places.append("body")
    for k in range(len(places)):
        place = places[(pos + k) % len(places)]
        if place == "header":
            name = "oauth_signature" if what == "signature" else "oauth_nonce"
            if what != "signature" and pos % 2 and (query or form_body):
                continue  # alter an extra parameter rather than the nonce, half the time
            m = re.search(name + r'="([^"]*)"', headers["Authorization"])
            changed = quote(_other(unquote_plus(m.group(1)), pos), safe="")
            headers["Authorization"] = headers["Authorization"][:m.start(1)] + changed + \
                headers["Authorization"][m.end(1):]
            return (uri, headers, body), f"{what} in the header"
        if place == "query":
            q = _alter_segment(query, pick, pos)
            if q is not None:
                return (f"{base}?{q}", headers, body), f"{what} in the query"
        if place == "body":
            b = _alter_segment(body, pick, pos)
            if b is not None:
                return (uri, headers, b), f"{what} in the body"
    return None


def send(http: requests.Session, method: str, uri: str, headers: dict, body) -> requests.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return http.request(method, uri, headers=headers, data=data, timeout=HTTP_TIMEOUT)


def assert_refused(resp: requests.Response, problem: str, context: object) -> None:
    """§3.2: a request whose signature does not verify is answered 401 with the OAuth
    challenge."""
    assert resp.status_code == 401, (context, resp.status_code, resp.text)
    assert resp.headers.get("WWW-Authenticate") == CHALLENGE, (context, resp.headers)
    assert problem in resp.text, (context, resp.text)


# ---- 1. the protected APIs -----------------------------------------------------------------------

# (HTTP method, route, what the body is). PUT is not drawn: no route of these APIs takes it.
ROUTES = st.sampled_from([
    ("GET", "/rest/databases", None),
    ("GET", "/rest/databases/{id}", None),
    ("DELETE", "/rest/databases/{id}", None),
    ("POST", "/rest/databases", "json"),
    ("POST", "/XMLAPI", "form"),
])


@st.composite
def api_requests(draw):
    method, route, body_kind = draw(ROUTES)
    placements = [SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY]
    if body_kind == "form":
        placements.insert(0, SIGNATURE_TYPE_BODY)  # §3.5.2: only with a form-encoded body
    return {
        "method": method,
        "route": route,
        "body_kind": body_kind,
        "query": draw(param_lists()),
        "form": draw(param_lists()) if body_kind == "form" else [],
        "encoding": draw(encodings()),
        "sig_method": draw(METHODS),
        "placement": draw(st.sampled_from(placements)),
        "pos": draw(st.integers(min_value=0, max_value=10_000)),
        "tamper": draw(st.sampled_from(["signature", "param", "param"])),
    }


# The parameters of RFC 5849 §3.4.1.1's example request: its query `b5=%3D%253D&a3=a&c%40=&a2=r%20b`
# and its form body `c2&a3=2+q` (a bare name, `+` for a space, one name in both places),
# sent with spaces as `+` and empty values as bare names.
RFC_QUERY = [("b5", "=%3D"), ("a3", "a"), ("c@", ""), ("a2", "r b")]
RFC_FORM = [("c2", ""), ("a3", "2 q")]

# Each example makes HTTP requests to a live server: the health checks on slow or large
# examples do not apply.
EXAMPLES = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}


def test_grantry_verifies_what_oauthlib_signs_at_the_apis(grantry_factory):
    """§3.4 at the REST and XML APIs: the altered copy is sent first and refused; the request
    oauthlib signed is sent next and accepted, so a refused request did not spend its nonce
    (grantry remembers a nonce only once the signature holds). A JSON body is not signed
    (§3.4.1.3.1): the accepted request carries another body than the refused one."""
    grantry = grantry_factory(NO_LOCKOUT)
    app = register(grantry)
    user = add_user(grantry, grants=("lists:read", "lists:write"))
    token = three_legs(grantry, app, user)
    made = grantry.http.post(grantry.url("/rest/databases"), json={"name": "oracle"}, auth=signer(app, token),
                             timeout=HTTP_TIMEOUT)
    assert made.status_code in (200, 201), made.text
    list_id = made.json()["data"]["id"]
    seen = Counter()

    @settings(max_examples=150, **EXAMPLES)
    @given(api_requests())
    @example({"method": "POST", "route": "/XMLAPI", "body_kind": "form", "query": RFC_QUERY, "form": RFC_FORM,
              "encoding": (True, False, True), "sig_method": SIGNATURE_HMAC_SHA1,
              "placement": SIGNATURE_TYPE_AUTH_HEADER, "pos": 1, "tamper": "param"})
    def check(r):
        seen["examples"] += 1
        path = r["route"]
        if path == "/rest/databases/{id}":
            lid = list_id
            if r["method"] == "DELETE":
                fresh = grantry.http.post(grantry.url("/rest/databases"), json={"name": f"d-{uuid.uuid4().hex[:8]}"},
                                          auth=signer(app, token), timeout=HTTP_TIMEOUT)
                assert fresh.status_code in (200, 201), fresh.text
                lid = fresh.json()["data"]["id"]
            path = f"/rest/databases/{lid}"
        query = form_encode(r["query"], r["encoding"])
        uri = grantry.url(path) + (f"?{query}" if query else "")
        body = content_type = None
        if r["body_kind"] == "form":
            # the envelope field next to the drawn ones, wherever the permutation put it
            body = form_encode([("xml", GET_LISTS), *r["form"]], r["encoding"])
            content_type = FORM
        elif r["body_kind"] == "json":
            # §3.4.1.3.1: a body that is not form-encoded is not signed. It is left out of
            # what oauthlib signs, as requests-oauthlib leaves it out: given the body, oauthlib
            # would add oauth_body_hash (see the test below).
            content_type = "application/json"
        signed = sign(app, token, r["method"], uri, r["sig_method"], r["placement"], body, content_type)
        context = {**r, "oauthlib_base_string": oracle_base_string(r["method"], *signed)}

        # PLAINTEXT signs no parameter (§3.4.4): only its signature can be altered
        what = "signature" if r["sig_method"] == SIGNATURE_PLAINTEXT else r["tamper"]
        altered, where = alter(*signed, r["placement"], r["pos"], what) or \
            alter(*signed, r["placement"], r["pos"], "signature")
        seen.update([f"{r['method']} {r['route']}", r["sig_method"], r["placement"], f"altered {where}"])
        drawn = r["query"] + r["form"]
        if any(ord(c) > 127 for k, v in drawn for c in k + v):
            seen["non-ASCII parameters"] += 1
        if len({k for k, _ in drawn}) < len(drawn):
            seen["repeated names"] += 1
        uri, headers, body = altered
        if r["body_kind"] == "json":
            body = json.dumps({"name": f"refused-{uuid.uuid4().hex[:8]}"})
        refused = send(grantry.http, r["method"], uri, headers, body)
        if r["route"] == "/XMLAPI":
            # the XML API's Fault 145 (bad credential), with the OAuth challenge
            assert xml_fault(refused)[0] == "145", (context, refused.text)
            assert_refused(refused, "", context)
        else:
            assert_refused(refused, "signature_invalid", context)
        seen["refused"] += 1

        uri, headers, body = signed
        if r["body_kind"] == "json":
            body = json.dumps({"name": f"sent-{uuid.uuid4().hex[:8]}"})  # any body: it is not signed
        resp = send(grantry.http, r["method"], uri, headers, body)
        if r["route"] == "/XMLAPI":
            xml_ok(resp)
        else:
            assert resp.status_code == (201 if r["method"] == "POST" else 200), (context, resp.status_code,
                                                                                resp.text)
        seen["accepted"] += 1

    check()
    print(f"\n[{grantry.backend}] API requests: {dict(sorted(seen.items()))}")
    assert seen["examples"] >= 100, seen


def test_a_body_hash_added_by_oauthlib_is_refused_as_an_unsupported_parameter(grantry):
    """Given a JSON body, oauthlib adds `oauth_body_hash` (the Request Body Hash extension, not
    part of RFC 5849). grantry knows only the protocol parameters of §2.1, §2.3 and §3.1 and
    refuses any other `oauth_` parameter with 400 (§3.2, unsupported parameter), naming it,
    rather than answering as if the signature were wrong."""
    app = register(grantry)
    user = add_user(grantry, grants=("lists:read", "lists:write"))
    token = three_legs(grantry, app, user)
    body = json.dumps({"name": "hashed"})
    uri, headers, body = sign(app, token, "POST", grantry.url("/rest/databases"), SIGNATURE_HMAC_SHA1,
                              SIGNATURE_TYPE_AUTH_HEADER, body, "application/json")
    assert "oauth_body_hash=" in headers["Authorization"], headers
    resp = send(grantry.http, "POST", uri, headers, body)
    assert resp.status_code == 400, resp.text
    assert "parameter_rejected" in resp.text and "oauth_body_hash" in resp.text, resp.text


# ---- 2. the temporary credentials endpoint --------------------------------------------------------


@st.composite
def request_token_requests(draw):
    return {
        "form": draw(param_lists()),
        "query": draw(param_lists(max_size=3)),
        "encoding": draw(encodings()),
        "sig_method": draw(METHODS),
        "placement": draw(st.sampled_from([SIGNATURE_TYPE_BODY, SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY])),
        "pos": draw(st.integers(min_value=0, max_value=10_000)),
    }


def test_grantry_verifies_what_oauthlib_signs_at_the_request_token_endpoint(grantry_factory):
    """§2.1 with extra parameters in the form body (and the query): grantry accepts the
    request and, for a copy with an altered signature, answers 401 with the very base string
    oauthlib signed (§3.4.1)."""
    grantry = grantry_factory(NO_LOCKOUT)
    app = register(grantry)
    seen = Counter()

    @settings(max_examples=60, **EXAMPLES)
    @given(request_token_requests())
    @example({"form": RFC_FORM, "query": RFC_QUERY, "encoding": (True, False, True),
              "sig_method": SIGNATURE_HMAC_SHA1, "placement": SIGNATURE_TYPE_AUTH_HEADER, "pos": 0})
    def check(r):
        seen.update(["examples", r["sig_method"], r["placement"]])
        query = form_encode(r["query"], r["encoding"])
        uri = grantry.url("/oauth1/request_token") + (f"?{query}" if query else "")
        # a form body even when empty: the endpoint reads form-encoded requests
        body = form_encode(r["form"], r["encoding"])
        signed = sign(app, None, "POST", uri, r["sig_method"], r["placement"], body, FORM, callback=CALLBACK)
        expected = oracle_base_string("POST", *signed)
        context = {**r, "oauthlib_base_string": expected}

        altered, _ = alter(*signed, r["placement"], r["pos"], "signature")
        refused = send(grantry.http, "POST", *altered)
        assert_refused(refused, "signature_invalid", context)
        got = parse_qs(refused.text, keep_blank_values=True).get("oauth_signature_base_string", [""])[0]
        if r["sig_method"] != SIGNATURE_PLAINTEXT:
            assert got == expected, f"base strings differ:\noauthlib: {expected}\ngrantry:  {got}\n{context}"
        seen["refused"] += 1

        resp = send(grantry.http, "POST", *signed)
        assert resp.status_code == 200, (context, resp.status_code, resp.text)
        answer = parse_qs(resp.text)
        assert answer["oauth_callback_confirmed"] == ["true"] and answer["oauth_token"][0].startswith("grq_"), \
            (context, resp.text)
        seen["accepted"] += 1

    check()
    print(f"\n[{grantry.backend}] request_token requests: {dict(sorted(seen.items()))}")
    assert seen["examples"] >= 40, seen


# ---- 3. nonces across instances ------------------------------------------------------------------


def two_servers(grantry_factory, tmp_path) -> tuple[Grantry, Grantry]:
    """Two grantry servers on one store: on PostgreSQL one database, on SQLite one data
    folder; both read the same OAuth 1.0a key file, as docs/architecture.md asks of every
    instance."""
    key_file = tmp_path / "oauth1-shared.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    env = {**NO_LOCKOUT, "GRANTRY_OAUTH1__KEY_FILE": str(key_file)}
    a = grantry_factory(env)
    workdir = tmp_path / "second-instance"
    workdir.mkdir()
    b = Grantry(a.backend, workdir, a.database_url, env=env)
    b.data_dir = a.data_dir  # on SQLite, the same database file
    # the factory stops it and prints its logs if the test fails, as for its own servers
    grantry_factory.servers.append((b, None))
    b.start()
    return a, b


def addressed_to(prepared: requests.PreparedRequest, server: Grantry) -> requests.PreparedRequest:
    """The identical request (same `Host` header, hence the same base string URI, §3.4.1.2)
    delivered to `server`, as a load balancer in front of both would deliver it."""
    copy = prepared.copy()
    parts = urlsplit(prepared.url)
    copy.url = server.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
    return copy


def signed_request(a: Grantry, app: dict, token: dict, placement: str) -> requests.PreparedRequest:
    host = urlsplit(a.base_url).netloc
    return requests.Request("GET", a.url("/rest/databases"), params={"page": "1"}, headers={"Host": host},
                            auth=signer(app, token, placement=placement)).prepare()


def test_a_nonce_used_at_one_instance_is_refused_by_another(grantry_factory, tmp_path):
    """§3.3: the server refuses a nonce already used with the same timestamp and consumer,
    whichever instance on the same database saw it first."""
    a, b = two_servers(grantry_factory, tmp_path)
    app = register(a)
    user = add_user(a, grants=("lists:read", "lists:write"))
    token = three_legs(a, app, user)
    for placement in (SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY):
        prepared = signed_request(a, app, token, placement)
        first = a.http.send(prepared, timeout=HTTP_TIMEOUT)
        assert first.status_code == 200, (placement, first.text)
        again = b.http.send(addressed_to(prepared, b), timeout=HTTP_TIMEOUT)
        assert_refused(again, "nonce_used", placement)
        # and the other way round
        prepared = signed_request(a, app, token, placement)
        first = b.http.send(addressed_to(prepared, b), timeout=HTTP_TIMEOUT)
        assert first.status_code == 200, (placement, first.text)
        again = a.http.send(prepared, timeout=HTTP_TIMEOUT)
        assert_refused(again, "nonce_used", placement)


def test_one_request_sent_sixteen_times_at_once_to_two_instances_is_accepted_once(grantry_factory, tmp_path):
    """§3.3 under concurrency: 16 copies of one signed request, sent at the same moment and
    spread over two instances on one database: exactly one is accepted, the other 15 are
    refused as replays."""
    a, b = two_servers(grantry_factory, tmp_path)
    app = register(a)
    user = add_user(a, grants=("lists:read", "lists:write"))
    token = three_legs(a, app, user)
    for round_ in range(3):
        prepared = signed_request(a, app, token, SIGNATURE_TYPE_AUTH_HEADER)
        copies = [addressed_to(prepared, a if i % 2 == 0 else b) for i in range(16)]
        barrier = threading.Barrier(16)

        def fire(req: requests.PreparedRequest) -> requests.Response:
            with requests.Session() as http:
                http.trust_env = False
                barrier.wait(timeout=30)
                return http.send(req, timeout=HTTP_TIMEOUT)

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(fire, copies))
        statuses = [r.status_code for r in answers]
        assert statuses.count(200) == 1, (round_, statuses, [r.text[:200] for r in answers])
        for r in answers:
            if r.status_code != 200:
                assert_refused(r, "nonce_used", f"round {round_}")
