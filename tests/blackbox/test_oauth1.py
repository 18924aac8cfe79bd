"""OAuth 1.0a (docs/architecture.md, OAuth 1.0a) driven by a real consumer: requests-oauthlib.

`OAuth1Session` plays the application: it fetches temporary credentials, sends the user to
grantry's authorization page (the web-server flow's sign-in and consent pages, filled in by a
plain `requests.Session` as a browser would), exchanges the verifier for token credentials and
signs calls to the REST, XML and Event APIs with each signature method and each place the
protocol parameters can go (header, query, form body). Every test runs on SQLite and on
PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
)
from requests_oauthlib import OAuth1, OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied

from conftest import EVENTS_PATH, HTTP_TIMEOUT
from test_oauth_clients import add_user, only_form

CALLBACK = "http://127.0.0.1:9/oauth1/callback"


def register(grantry, public: bool = False) -> dict:
    args = ["app", "add", "--org", "default", "--name", f"oauth1-{uuid.uuid4().hex[:6]}",
            "--description", "requests-oauthlib consumer", "--redirect-uri", CALLBACK,
            "--scope", "lists:read", "--scope", "lists:write", "--scope", "contacts:write",
            "--scope", "events:write"]
    if public:
        args.append("--public")
    return grantry.cli(*args)


def consumer(grantry, app: dict, callback: str = CALLBACK, **kw) -> OAuth1Session:
    s = OAuth1Session(app["client_id"], client_secret=app["client_secret"], callback_uri=callback, **kw)
    s.trust_env = False
    return s


def authorize_in_browser(url: str, username: str, password: str, decision: str = "allow") -> requests.Response:
    """Sign in and answer the consent page at `url`; return the last answer, unfollowed."""
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    login = only_form(page, "/oauth1/authorize/login")
    assert login["fields"]["query"] == urlsplit(url).query, login
    signed_in = browser.post(urljoin(page.url, login["action"]),
                             data=dict(login["fields"], username=username, password=password),
                             allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert signed_in.status_code == 303, (signed_in.status_code, signed_in.text[:2000])
    page = browser.get(urljoin(signed_in.url, signed_in.headers["Location"]), allow_redirects=False,
                       timeout=HTTP_TIMEOUT)
    consent = only_form(page, "/oauth1/authorize")
    assert sorted(consent["buttons"]) == [("decision", "allow"), ("decision", "deny")], consent
    return browser.post(urljoin(page.url, consent["action"]), data=dict(consent["fields"], decision=decision),
                        allow_redirects=False, timeout=HTTP_TIMEOUT)


def three_legs(grantry, app: dict, user: tuple[str, str]) -> dict:
    """The whole flow with the callback; returns the token credentials."""
    s = consumer(grantry, app)
    temp = s.fetch_request_token(grantry.url("/oauth1/request_token"))
    assert temp["oauth_callback_confirmed"] == "true", temp
    assert temp["oauth_token"].startswith("grq_"), temp
    answer = authorize_in_browser(s.authorization_url(grantry.url("/oauth1/authorize")), *user)
    assert answer.status_code == 303, answer.text[:2000]
    back = answer.headers["Location"]
    assert back.startswith(CALLBACK + "?"), back
    s.parse_authorization_response(back)
    token = s.fetch_access_token(grantry.url("/oauth1/access_token"))
    assert token["oauth_token"].startswith("goa_"), token
    assert token["oauth_token_secret"], token
    return token


def signer(app: dict, token: dict, method=SIGNATURE_HMAC_SHA1, placement=SIGNATURE_TYPE_AUTH_HEADER) -> OAuth1:
    return OAuth1(app["client_id"], client_secret=app["client_secret"],
                  resource_owner_key=token["oauth_token"], resource_owner_secret=token["oauth_token_secret"],
                  signature_method=method, signature_type=placement)


def test_three_legged_flow_then_signed_calls_with_every_method_and_placement(grantry):
    app = register(grantry)
    user = add_user(grantry, grants=("lists:read", "lists:write", "contacts:write", "events:write"))
    token = three_legs(grantry, app, user)

    created = grantry.http.post(grantry.url("/rest/databases"), json={"name": "oauth1-list"},
                                auth=signer(app, token), timeout=HTTP_TIMEOUT)
    assert created.status_code in (200, 201), created.text
    list_id = created.json()["data"]["id"]

    for method in (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, SIGNATURE_PLAINTEXT):
        for placement in (SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY):
            resp = grantry.http.get(grantry.url("/rest/databases"), params={"page": "1", "x": "a b&c"},
                                    auth=signer(app, token, method, placement), timeout=HTTP_TIMEOUT)
            assert resp.status_code == 200, (method, placement, resp.status_code, resp.text)
            assert list_id in [d["id"] for d in resp.json()["data"]], resp.text

    # the XML API with the signature in the form body next to xml= (form bodies are signed)
    envelope = "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>"
    for placement in (SIGNATURE_TYPE_BODY, SIGNATURE_TYPE_AUTH_HEADER):
        resp = grantry.http.post(grantry.url("/XMLAPI"), data={"xml": envelope},
                                 auth=signer(app, token, placement=placement), timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, (placement, resp.text)
        assert "<SUCCESS>TRUE</SUCCESS>" in resp.text, resp.text

    event = {"event-id": "signup", "event-key": "k-1", "event-params": {"email": "a@example.com"}}
    resp = grantry.http.post(grantry.url(EVENTS_PATH), json=event, auth=signer(app, token),
                             timeout=HTTP_TIMEOUT)
    assert resp.status_code in (200, 201, 202), resp.text
    assert resp.json()["transaction-id"], resp.text

    # the consent created an account access, which the admin sees and can delete
    accesses = grantry.cli("access", "list", "--org", "default")
    rows = accesses if isinstance(accesses, list) else accesses.get("accesses", accesses)
    assert any(a.get("client_id") == app["client_id"] for a in rows), accesses
    grantry.delete_access(app["client_id"], user[0])
    grantry.eventually(
        lambda: grantry.http.get(grantry.url("/rest/databases"), auth=signer(app, token),
                                 timeout=HTTP_TIMEOUT).status_code == 401,
        "token credentials refused after their account access was deleted")


def test_out_of_band_shows_the_verifier_on_the_page(grantry):
    app = register(grantry)
    user = add_user(grantry)
    s = consumer(grantry, app, callback="oob")
    s.fetch_request_token(grantry.url("/oauth1/request_token"))
    answer = authorize_in_browser(s.authorization_url(grantry.url("/oauth1/authorize")), *user)
    assert answer.status_code == 200, answer.text
    verifier = answer.text.split('<code id="verifier">')[1].split("</code>")[0]
    token = s.fetch_access_token(grantry.url("/oauth1/access_token"), verifier=verifier)
    resp = grantry.http.get(grantry.url("/rest/databases"), auth=signer(app, token), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text


def test_temporary_credentials_are_single_use(grantry):
    app = register(grantry)
    user = add_user(grantry)
    s = consumer(grantry, app)
    temp = s.fetch_request_token(grantry.url("/oauth1/request_token"))
    answer = authorize_in_browser(s.authorization_url(grantry.url("/oauth1/authorize")), *user)
    verifier = s.parse_authorization_response(answer.headers["Location"])["oauth_verifier"]
    s.fetch_access_token(grantry.url("/oauth1/access_token"))
    again = OAuth1Session(app["client_id"], client_secret=app["client_secret"],
                          resource_owner_key=temp["oauth_token"], resource_owner_secret=temp["oauth_token_secret"],
                          verifier=verifier)
    again.trust_env = False
    with pytest.raises(TokenRequestDenied) as denied:
        again.fetch_access_token(grantry.url("/oauth1/access_token"))
    assert denied.value.status_code == 401
    assert "token_rejected" in denied.value.response.text


def test_denied_consent_tells_the_callback(grantry):
    app = register(grantry)
    user = add_user(grantry)
    s = consumer(grantry, app)
    s.fetch_request_token(grantry.url("/oauth1/request_token"))
    answer = authorize_in_browser(s.authorization_url(grantry.url("/oauth1/authorize")), *user, decision="deny")
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["oauth_problem"] == ["permission_denied"]


def test_refusals_follow_rfc_5849(grantry):
    app = register(grantry)
    # an unregistered callback: 400
    s = consumer(grantry, app, callback="https://evil.example/cb")
    with pytest.raises(TokenRequestDenied) as e:
        s.fetch_request_token(grantry.url("/oauth1/request_token"))
    assert e.value.status_code == 400 and "parameter_rejected" in e.value.response.text
    # a wrong consumer secret: 401 with the OAuth challenge, and the base string to compare
    wrong = OAuth1Session(app["client_id"], client_secret="not-the-secret", callback_uri=CALLBACK)
    wrong.trust_env = False
    with pytest.raises(TokenRequestDenied) as e:
        wrong.fetch_request_token(grantry.url("/oauth1/request_token"))
    assert e.value.status_code == 401
    assert e.value.response.headers["WWW-Authenticate"] == 'OAuth realm="grantry"'
    body = parse_qs(e.value.response.text)
    assert body["oauth_problem"] == ["signature_invalid"], body
    assert body["oauth_signature_base_string"][0].startswith("POST&http%3A%2F%2F127.0.0.1"), body
    # an unknown consumer key: 401
    unknown = OAuth1Session("no-such-client", client_secret="x", callback_uri=CALLBACK)
    unknown.trust_env = False
    with pytest.raises(TokenRequestDenied) as e:
        unknown.fetch_request_token(grantry.url("/oauth1/request_token"))
    assert e.value.status_code == 401 and "consumer_key_unknown" in e.value.response.text
    # a public application has no secret to sign with
    public = register(grantry, public=True)
    pub = OAuth1Session(public["client_id"], client_secret="", callback_uri=CALLBACK)
    pub.trust_env = False
    with pytest.raises(TokenRequestDenied) as e:
        pub.fetch_request_token(grantry.url("/oauth1/request_token"))
    assert e.value.status_code == 401 and "consumer_key_rejected" in e.value.response.text


def test_replayed_and_stale_requests_are_refused_at_the_apis(grantry):
    app = register(grantry)
    user = add_user(grantry)
    token = three_legs(grantry, app, user)
    # one signed request sent twice: the nonce is spent by the first
    prepared = requests.Request("GET", grantry.url("/rest/databases"), auth=signer(app, token)).prepare()
    first = grantry.http.send(prepared, timeout=HTTP_TIMEOUT)
    assert first.status_code == 200, first.text
    again = grantry.http.send(prepared, timeout=HTTP_TIMEOUT)
    assert again.status_code == 401, again.text
    assert again.headers["WWW-Authenticate"] == 'OAuth realm="grantry"'
    assert "nonce_used" in again.text
    # a timestamp an hour old
    from oauthlib.oauth1 import Client
    client = Client(app["client_id"], client_secret=app["client_secret"], resource_owner_key=token["oauth_token"],
                    resource_owner_secret=token["oauth_token_secret"], timestamp=str(int(time.time()) - 3600))
    uri, headers, _ = client.sign(grantry.url("/rest/databases"))
    stale = grantry.http.get(uri, headers=headers, timeout=HTTP_TIMEOUT)
    assert stale.status_code == 401 and "timestamp_refused" in stale.text, stale.text
    # a duplicated protocol parameter: 400
    client = Client(app["client_id"], client_secret=app["client_secret"], resource_owner_key=token["oauth_token"],
                    resource_owner_secret=token["oauth_token_secret"])
    uri, headers, _ = client.sign(grantry.url("/rest/databases"))
    dup = grantry.http.get(uri + "?oauth_nonce=again", headers=headers, timeout=HTTP_TIMEOUT)
    assert dup.status_code == 400, dup.text
    assert dup.headers["WWW-Authenticate"] == 'OAuth realm="grantry"', dup.headers
    assert "oauth_nonce was sent more than once" in dup.text, dup.text
