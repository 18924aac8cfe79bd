"""The standard OAuth 2.0 surface (docs/architecture.md, OAuth 2.0 surface) driven by a real third-party client: Authlib.

Authlib's `OAuth2Session` plays the application (authorization URL with PKCE S256, token
exchange, refresh, introspection, revocation); a plain `requests.Session` plays the user's
browser and signs in and consents through grantry's HTML pages exactly as a browser would
(forms parsed with the standard library's html.parser, cookies kept by the session).
Every test runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import secrets
import uuid
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc6749.errors import MissingCodeException
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from conftest import HTTP_TIMEOUT

# never contacted: the test reads the redirect from the Location header instead of following it
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
SCOPE = "lists:read lists:write"
METADATA_PATH = "/.well-known/oauth-authorization-server"


# ---- a browser: HTML forms, cookies, redirects ---------------------------------------------------

class _Forms(HTMLParser):
    """Collects every <form> with its action, method, named inputs and submit buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                          "fields": {}, "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("name"):
            if a.get("type", "text").lower() == "submit":
                self._form["buttons"].append((a["name"], a.get("value", "")))
            else:
                self._form["fields"][a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "button" and a.get("type", "submit").lower() == "submit":
            self._form["buttons"].append((a.get("name", ""), a.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def only_form(resp: requests.Response, action: str) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.text[:2000])
    assert resp.headers.get("Content-Type", "").startswith("text/html"), resp.headers
    forms = parse_forms(resp.text)
    assert len(forms) == 1, resp.text
    form = forms[0]
    assert form["method"] == "post", form
    assert urlsplit(urljoin(resp.url, form["action"])).path == action, form
    return form


class Browser:
    """The resource owner's user agent: keeps cookies, submits the forms grantry renders."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.trust_env = False

    def close(self) -> None:
        self.http.close()

    def authorize(self, authorization_url: str, username: str, password: str, decision: str = "allow") -> str:
        """Open the authorization URL, sign in, answer the consent page; return the redirect
        (the Location header) back to the application, without following it."""
        # 1. not signed in: the login page
        page = self.http.get(authorization_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        login = only_form(page, "/oauth/authorize/login")
        assert {"username", "password", "query"} <= set(login["fields"]), login
        assert login["fields"]["query"] == urlsplit(authorization_url).query, login
        fields = dict(login["fields"], username=username, password=password)

        # 2. sign in: 303 back to the authorization URL with the session cookie
        signed_in = self.http.post(urljoin(page.url, login["action"]), data=fields, allow_redirects=False,
                                   timeout=HTTP_TIMEOUT)
        assert signed_in.status_code == 303, (signed_in.status_code, signed_in.text[:2000])
        assert "grantry_session" in self.http.cookies, signed_in.headers
        back = urljoin(signed_in.url, signed_in.headers["Location"])
        assert urlsplit(back).path == "/oauth/authorize" and urlsplit(back).query == urlsplit(authorization_url).query

        # 3. the consent page (a browser follows the 303 on its own)
        page = self.http.get(back, allow_redirects=False, timeout=HTTP_TIMEOUT)
        consent = only_form(page, "/oauth/authorize")
        assert {"query", "csrf"} <= set(consent["fields"]), consent
        assert consent["fields"]["csrf"], consent
        assert sorted(consent["buttons"]) == [("decision", "allow"), ("decision", "deny")], consent

        # 4. press the button
        answer = self.http.post(urljoin(page.url, consent["action"]), data=dict(consent["fields"], decision=decision),
                                allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 303, (answer.status_code, answer.text[:2000])
        return answer.headers["Location"]


@pytest.fixture
def browser():
    b = Browser()
    try:
        yield b
    finally:
        b.close()


# ---- the application's side ----------------------------------------------------------------------

@pytest.fixture
def metadata(grantry) -> dict:
    resp = grantry.http.get(grantry.url(METADATA_PATH), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def register_client(grantry, public: bool = False, scopes: tuple[str, ...] = ("lists:read", "lists:write")) -> dict:
    args = ["app", "add", "--org", "default", "--name", f"authlib-{uuid.uuid4().hex[:6]}",
            "--description", "Authlib black-box client", "--redirect-uri", REDIRECT_URI]
    if public:
        args.append("--public")
    for scope in scopes:
        args += ["--scope", scope]
    app = grantry.cli(*args)
    assert app["client_id"]
    assert ("client_secret" in app) is not public, app
    return app


def add_user(grantry, grants: tuple[str, ...] = ("lists:read", "lists:write")) -> tuple[str, str]:
    username = f"ann-{uuid.uuid4().hex[:6]}"
    password = secrets.token_urlsafe(18)
    args = ["user", "add", "--org", "default", "--username", username, "--email", f"{username}@example.com",
            "--kind", "ui", "--password-stdin"]
    for grant in grants:
        args += ["--grant", grant]
    grantry.cli(*args, stdin=password + "\n")
    return username, password


def oauth_session(app: dict, auth_method: str) -> OAuth2Session:
    session = OAuth2Session(
        client_id=app["client_id"],
        client_secret=app.get("client_secret"),
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        default_timeout=HTTP_TIMEOUT,
    )
    session.trust_env = False
    return session


def authorize(session: OAuth2Session, metadata: dict, browser: Browser, user: tuple[str, str],
              decision: str = "allow") -> tuple[str, str, str]:
    """The authorization request with PKCE; returns (redirect location, state, code verifier)."""
    code_verifier = generate_token(48)
    url, state = session.create_authorization_url(metadata["authorization_endpoint"], code_verifier=code_verifier)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"], url
    location = browser.authorize(url, *user, decision=decision)
    assert location.startswith(REDIRECT_URI + "?"), location
    return location, state, code_verifier


def introspect(session: OAuth2Session, metadata: dict, token: str, hint: str | None = None) -> dict:
    resp = session.introspect_token(metadata["introspection_endpoint"], token=token, token_type_hint=hint)
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    return resp.json()


def rest_databases(grantry, access_token: str) -> requests.Response:
    return grantry.rest("GET", "/databases", access_token)


# ---- tests ---------------------------------------------------------------------------------------

def test_metadata_passes_authlib_rfc8414_validation(grantry, metadata, monkeypatch):
    # the issuer is plain http on loopback in tests; Authlib insists on https unless told otherwise
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    AuthorizationServerMetadata(metadata).validate()

    assert metadata["issuer"] == grantry.base_url
    for key, path in [("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                      ("introspection_endpoint", "/oauth/introspect"), ("revocation_endpoint", "/oauth/revoke")]:
        assert metadata[key] == grantry.url(path), (key, metadata)
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                      "none"}
    assert set(SCOPE.split()) <= set(metadata["scopes_supported"])


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client_code_flow(grantry, metadata, browser, auth_method):
    app = register_client(grantry)
    user = add_user(grantry)
    session = oauth_session(app, auth_method)

    location, state, code_verifier = authorize(session, metadata, browser, user)
    assert parse_qs(urlsplit(location).query)["state"] == [state]

    token = session.fetch_token(metadata["token_endpoint"], authorization_response=location, state=state,
                                code_verifier=code_verifier)
    assert token["token_type"].lower() == "bearer"
    assert token["access_token"] and token["refresh_token"]
    assert 0 < token["expires_in"] <= 14400
    assert set(token["scope"].split()) == set(SCOPE.split())

    # the session signs its own requests with the access token
    api = session.get(grantry.url("/rest/databases"))
    assert api.status_code == 200, api.text
    assert session.get(grantry.url("/rest/databases"), withhold_token=True).status_code == 401

    info = introspect(session, metadata, token["access_token"], "access_token")
    assert info["active"] is True, info
    assert info["client_id"] == app["client_id"]
    assert set(info["scope"].split()) == set(SCOPE.split())
    assert info["username"] == user[0]
    assert info["token_type"].lower() == "bearer"
    assert info["iss"] == metadata["issuer"]
    assert info["exp"] > info["iat"]

    # refresh: a working access token again (within 3 hours grantry hands back the same one with
    # its remaining lifetime, see README), and the session keeps the refresh token
    first_refresh = token["refresh_token"]
    refreshed = session.refresh_token(metadata["token_endpoint"])
    assert refreshed["access_token"]
    assert session.token["refresh_token"]
    assert session.get(grantry.url("/rest/databases")).status_code == 200
    assert introspect(session, metadata, session.token["refresh_token"], "refresh_token")["active"] is True
    assert introspect(session, metadata, refreshed["access_token"])["active"] is True

    # revoke the access token: it stops at once, for introspection and the API
    access = refreshed["access_token"]
    revoked = session.revoke_token(metadata["revocation_endpoint"], token=access, token_type_hint="access_token")
    assert revoked.status_code == 200, revoked.text
    assert introspect(session, metadata, access)["active"] is False
    assert rest_databases(grantry, access).status_code == 401

    # revoking an unknown token is not an error (RFC 7009 §2.2)
    assert session.revoke_token(metadata["revocation_endpoint"], token="no-such-token").status_code == 200

    # revoke the refresh token: no more refreshing with it
    refresh = session.token["refresh_token"]
    assert session.revoke_token(metadata["revocation_endpoint"], token=refresh,
                                token_type_hint="refresh_token").status_code == 200
    assert introspect(session, metadata, refresh)["active"] is False
    with pytest.raises(OAuthError) as err:
        session.refresh_token(metadata["token_endpoint"], refresh_token=refresh)
    assert err.value.error == "invalid_grant"
    if first_refresh != refresh:
        assert introspect(session, metadata, first_refresh)["active"] is False
    session.close()


def test_public_client_code_flow(grantry, metadata, browser):
    app = register_client(grantry, public=True)
    user = add_user(grantry)
    session = oauth_session(app, "none")
    assert session.client_secret is None

    location, state, code_verifier = authorize(session, metadata, browser, user)
    token = session.fetch_token(metadata["token_endpoint"], authorization_response=location, state=state,
                                code_verifier=code_verifier)
    assert token["access_token"] and token["refresh_token"]
    assert set(token["scope"].split()) == set(SCOPE.split())
    assert session.get(grantry.url("/rest/databases")).status_code == 200

    refreshed = session.refresh_token(metadata["token_endpoint"])
    access = refreshed["access_token"]
    assert rest_databases(grantry, access).status_code == 200

    # a public client cannot authenticate at the introspection endpoint (metadata says so) ...
    assert "none" not in metadata.get("introspection_endpoint_auth_methods_supported", ["none"])
    # ... but it may revoke with auth method "none"
    revoked = session.revoke_token(metadata["revocation_endpoint"], token=access, token_type_hint="access_token")
    assert revoked.status_code == 200, revoked.text
    assert rest_databases(grantry, access).status_code == 401

    refresh = session.token["refresh_token"]
    assert session.revoke_token(metadata["revocation_endpoint"], token=refresh).status_code == 200
    with pytest.raises(OAuthError) as err:
        session.refresh_token(metadata["token_endpoint"], refresh_token=refresh)
    assert err.value.error == "invalid_grant"
    session.close()


def test_public_client_code_needs_the_code_verifier(grantry, metadata, browser):
    app = register_client(grantry, public=True)
    session = oauth_session(app, "none")
    location, state, code_verifier = authorize(session, metadata, browser, add_user(grantry))
    with pytest.raises(OAuthError) as err:
        session.fetch_token(metadata["token_endpoint"], authorization_response=location, state=state,
                            code_verifier=generate_token(48))
    assert err.value.error == "invalid_grant"
    session.close()


def test_deny_redirects_with_access_denied_and_state(grantry, metadata, browser):
    app = register_client(grantry)
    session = oauth_session(app, "client_secret_basic")
    location, state, _ = authorize(session, metadata, browser, add_user(grantry), decision="deny")

    params = parse_qs(urlsplit(location).query)
    assert params["error"] == ["access_denied"], location
    assert params["state"] == [state], location
    assert "code" not in params, location
    with pytest.raises(MissingCodeException):
        parse_authorization_code_response(location, state=state)
    session.close()


def test_reused_code_is_refused_and_revokes_the_first_tokens(grantry, metadata, browser):
    app = register_client(grantry)
    session = oauth_session(app, "client_secret_basic")
    location, state, code_verifier = authorize(session, metadata, browser, add_user(grantry))

    first = dict(session.fetch_token(metadata["token_endpoint"], authorization_response=location, state=state,
                                     code_verifier=code_verifier))
    assert rest_databases(grantry, first["access_token"]).status_code == 200
    assert introspect(session, metadata, first["access_token"])["active"] is True

    with pytest.raises(OAuthError) as err:
        session.fetch_token(metadata["token_endpoint"], authorization_response=location, state=state,
                            code_verifier=code_verifier)
    assert err.value.error == "invalid_grant"

    # what the first redemption issued is revoked
    assert introspect(session, metadata, first["access_token"])["active"] is False
    assert introspect(session, metadata, first["refresh_token"])["active"] is False
    assert rest_databases(grantry, first["access_token"]).status_code == 401
    with pytest.raises(OAuthError) as err:
        session.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert err.value.error == "invalid_grant"
    session.close()
