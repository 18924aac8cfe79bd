"""Black-box tests of the getting-started flow of account access:
application -> account access (refresh token, e-mailed) -> access token -> XML and REST APIs,
plus the errors an integrator meets along the way, revocation, the audit log and log hygiene.

Every test runs on each backend in conftest.BACKENDS (sqlite and postgres, unless
GRANTRY_TEST_SKIP_POSTGRES=1) against a fresh server.
"""

from __future__ import annotations

import base64
import html
import hashlib
import re
import secrets
import threading
import uuid
from urllib.parse import urlencode

import pytest
import requests

from conftest import ALL_GRANTS, HTTP_TIMEOUT, assert_xml_fault, envelope, strip_ansi, xml_ok

SEED_TOKEN_FIELDS = {"access_token", "token_type", "refresh_token", "expires_in"}
FRESH_EXPIRES_IN = (14398, 14399)  # 4 h minus the current second; one more second of slack


def _assert_rest_envelope(body: dict) -> None:
    assert set(body) >= {"meta", "links", "data"}, body
    assert set(body["meta"]) >= {"attributes", "generalErrors", "fieldErrors"}, body


def _assert_oauth_error(resp, status: int, error: str, description: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == error, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    if description is not None:
        assert body["error_description"] == description, body
    assert "access_token" not in body
    return body


def _bearer_challenge(resp) -> str:
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), (resp.status_code, resp.headers, resp.text)
    return challenge


# ------------------------------------------------------------------------------------------------
# 1. The getting-started flow
# ------------------------------------------------------------------------------------------------

def test_refresh_token_exchange_answers_like_the_seed(grantry):
    integ = grantry.new_integration()

    resp = grantry.exchange(integ)

    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "no-store" in resp.headers.get("Cache-Control", "")
    body = resp.json()
    # the four documented fields; RFC 6749 also allows "scope", and nothing else is expected
    assert SEED_TOKEN_FIELDS <= set(body) <= SEED_TOKEN_FIELDS | {"scope"}, body
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] == integ.refresh_token
    assert type(body["expires_in"]) is int
    assert FRESH_EXPIRES_IN[0] <= body["expires_in"] <= FRESH_EXPIRES_IN[1], body
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 22
    assert body["access_token"] not in (integ.refresh_token, integ.client_secret)
    if "scope" in body:
        assert set(body["scope"].split()) == set(ALL_GRANTS), body


def test_second_exchange_inside_reissue_window_returns_same_access_token(grantry):
    integ = grantry.new_integration()

    first = grantry.exchange(integ)
    second = grantry.exchange(integ)

    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert second.json()["access_token"] == first.json()["access_token"]
    assert second.json()["refresh_token"] == integ.refresh_token
    assert FRESH_EXPIRES_IN[0] - 2 <= second.json()["expires_in"] <= first.json()["expires_in"]
    assert "no-store" in second.headers.get("Cache-Control", "")


def test_concurrent_exchanges_never_mint_two_access_tokens(grantry):
    integ = grantry.new_integration()
    results: list = []
    lock = threading.Lock()

    def worker():
        resp = grantry.token_request({
            "grant_type": "refresh_token",
            "client_id": integ.client_id,
            "client_secret": integ.client_secret,
            "refresh_token": integ.refresh_token,
        })
        with lock:
            results.append((resp.status_code, resp.json()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [status for status, _ in results] == [200] * 8, results
    assert len({body["access_token"] for _, body in results}) == 1, results
    issued = [e for e in grantry.audit() if e["action"] == "access_token.issued"]
    assert len(issued) == 1, issued
    assert issued[0]["target"] == f"application:{integ.client_id}", issued
    assert issued[0]["detail"]["grant_type"] == "refresh_token", issued


def test_client_can_authenticate_with_http_basic(grantry):
    integ = grantry.new_integration()

    resp = grantry.token_request(
        {"grant_type": "refresh_token", "refresh_token": integ.refresh_token},
        auth=(integ.client_id, integ.client_secret),
    )

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] == integ.refresh_token
    assert FRESH_EXPIRES_IN[0] <= body["expires_in"] <= FRESH_EXPIRES_IN[1]
    assert "no-store" in resp.headers.get("Cache-Control", "")
    # same account access, same window: the body form now answers with the same token
    assert grantry.access_token(integ) == body["access_token"]
    assert grantry.rest("GET", "/databases", body["access_token"]).status_code == 200


@pytest.mark.parametrize("encoding", ["raw", "form"])
def test_access_token_opens_xml_api(grantry, encoding):
    """raw: a text/xml body (the documented form); form: the field xml= (what the original clients send)."""
    form = encoding == "form"
    integ = grantry.new_integration()
    token = grantry.access_token(integ)
    # a list to work on (created through the REST API: both APIs share the data)
    created = grantry.rest("POST", "/databases", token, json_body={"name": "Newsletter"})
    assert created.status_code == 201, created.text
    list_id = str(created.json()["data"]["id"])

    def call(inner):
        return grantry.xml(token, envelope(inner), form=form)

    # GetLists
    result = xml_ok(call("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"))
    lists = {el.findtext("ID"): el.findtext("NAME") for el in result.findall("LIST")}
    assert lists.get(list_id) == "Newsletter", lists

    # AddRecipient -> RecipientId
    result = xml_ok(call(
        f"<AddRecipient><LIST_ID>{list_id}</LIST_ID><CREATED_FROM>1</CREATED_FROM>"
        "<COLUMN><NAME>EMAIL</NAME><VALUE>ann@example.com</VALUE></COLUMN>"
        "<COLUMN><NAME>First Name</NAME><VALUE>Ann</VALUE></COLUMN></AddRecipient>"
    ))
    recipient_id = result.findtext("RecipientId")
    assert recipient_id and recipient_id.strip(), result

    # the REST API sees the same contact
    found = grantry.rest("GET", f"/databases/{list_id}/contacts", token, params={"email": "ann@example.com"})
    assert found.status_code == 200, found.text
    assert [str(c["id"]) for c in found.json()["data"]] == [recipient_id]

    # SelectRecipientData
    result = xml_ok(call(
        f"<SelectRecipientData><LIST_ID>{list_id}</LIST_ID><EMAIL>ann@example.com</EMAIL></SelectRecipientData>"
    ))
    assert result.findtext("EMAIL") == "ann@example.com"
    assert result.findtext("RecipientId") == recipient_id
    columns = {c.findtext("NAME"): c.findtext("VALUE") for c in result.findall("./COLUMNS/COLUMN")}
    assert columns.get("First Name") == "Ann", columns

    # UpdateRecipient by OLD_EMAIL: new e-mail address and a column
    result = xml_ok(call(
        f"<UpdateRecipient><LIST_ID>{list_id}</LIST_ID><OLD_EMAIL>ann@example.com</OLD_EMAIL>"
        "<COLUMN><NAME>EMAIL</NAME><VALUE>anna@example.com</VALUE></COLUMN>"
        "<COLUMN><NAME>First Name</NAME><VALUE>Anna</VALUE></COLUMN></UpdateRecipient>"
    ))
    assert result.findtext("RecipientId") == recipient_id

    # UpdateRecipient by RECIPIENT_ID
    xml_ok(call(
        f"<UpdateRecipient><LIST_ID>{list_id}</LIST_ID><RECIPIENT_ID>{recipient_id}</RECIPIENT_ID>"
        "<COLUMN><NAME>City</NAME><VALUE>Oslo</VALUE></COLUMN></UpdateRecipient>"
    ))
    result = xml_ok(call(
        f"<SelectRecipientData><LIST_ID>{list_id}</LIST_ID><EMAIL>anna@example.com</EMAIL></SelectRecipientData>"
    ))
    assert result.findtext("RecipientId") == recipient_id
    columns = {c.findtext("NAME"): c.findtext("VALUE") for c in result.findall("./COLUMNS/COLUMN")}
    assert columns.get("First Name") == "Anna" and columns.get("City") == "Oslo", columns
    old = call(f"<SelectRecipientData><LIST_ID>{list_id}</LIST_ID><EMAIL>ann@example.com</EMAIL></SelectRecipientData>")
    assert_xml_fault(old, 200, "128", "not a member")

    # the errors an integrator meets on the way: a missing field, an unknown list
    no_email = call(f"<SelectRecipientData><LIST_ID>{list_id}</LIST_ID></SelectRecipientData>")
    assert_xml_fault(no_email, 400, "126", "EMAIL")
    no_list = call("<SelectRecipientData><LIST_ID>999999</LIST_ID><EMAIL>anna@example.com</EMAIL></SelectRecipientData>")
    assert_xml_fault(no_list, 200, "134", "list not found")

    # RemoveRecipient
    xml_ok(call(f"<RemoveRecipient><LIST_ID>{list_id}</LIST_ID><EMAIL>anna@example.com</EMAIL></RemoveRecipient>"))
    gone = call(f"<SelectRecipientData><LIST_ID>{list_id}</LIST_ID><EMAIL>anna@example.com</EMAIL></SelectRecipientData>")
    assert_xml_fault(gone, 200, "128", "not a member")
    assert grantry.rest("GET", f"/databases/{list_id}/contacts/{recipient_id}", token).status_code == 404


def test_access_token_opens_rest_api(grantry):
    integ = grantry.new_integration()
    token = grantry.access_token(integ)

    # databases
    created = grantry.rest("POST", "/databases", token, json_body={"name": "Customers"})
    assert created.status_code == 201, created.text
    _assert_rest_envelope(created.json())
    db_id = created.json()["data"]["id"]
    listed = grantry.rest("GET", "/databases", token)
    assert listed.status_code == 200, listed.text
    _assert_rest_envelope(listed.json())
    assert [d["name"] for d in listed.json()["data"] if d["id"] == db_id] == ["Customers"]
    one = grantry.rest("GET", f"/databases/{db_id}", token)
    assert one.status_code == 200 and one.json()["data"]["name"] == "Customers", one.text

    # add a contact
    added = grantry.rest("POST", f"/databases/{db_id}/contacts", token,
                         json_body={"email": "cal@example.com", "columns": {"First Name": "Cal", "City": "Oslo"}})
    assert added.status_code == 201, added.text
    _assert_rest_envelope(added.json())
    contact_id = added.json()["data"]["id"]

    # by id
    got = grantry.rest("GET", f"/databases/{db_id}/contacts/{contact_id}", token)
    assert got.status_code == 200, got.text
    assert got.json()["data"]["email"] == "cal@example.com"
    assert got.json()["data"]["columns"] == {"First Name": "Cal", "City": "Oslo"}

    # by e-mail
    by_email = grantry.rest("GET", f"/databases/{db_id}/contacts", token, params={"email": "cal@example.com"})
    assert by_email.status_code == 200, by_email.text
    assert [c["id"] for c in by_email.json()["data"]] == [contact_id]

    # a page
    page = grantry.rest("GET", f"/databases/{db_id}/contacts", token, params={"page": 1, "pageSize": 10})
    assert page.status_code == 200, page.text
    _assert_rest_envelope(page.json())
    assert contact_id in [c["id"] for c in page.json()["data"]]

    # patch e-mail and one column
    patched = grantry.rest("PATCH", f"/databases/{db_id}/contacts/{contact_id}", token,
                           json_body={"email": "cal.new@example.com", "columns": {"City": "Bergen"}})
    assert patched.status_code == 200, patched.text
    got = grantry.rest("GET", f"/databases/{db_id}/contacts/{contact_id}", token).json()["data"]
    assert got["email"] == "cal.new@example.com"
    assert got["columns"] == {"First Name": "Cal", "City": "Bergen"}
    old = grantry.rest("GET", f"/databases/{db_id}/contacts", token, params={"email": "cal@example.com"})
    assert old.status_code == 200 and old.json()["data"] == [], old.text

    # delete the contact, then the database
    deleted = grantry.rest("DELETE", f"/databases/{db_id}/contacts/{contact_id}", token)
    assert deleted.status_code in (200, 204), deleted.text
    missing = grantry.rest("GET", f"/databases/{db_id}/contacts/{contact_id}", token)
    assert missing.status_code == 404, missing.text
    _assert_rest_envelope(missing.json())
    assert missing.json()["meta"]["generalErrors"], missing.text
    assert grantry.rest("DELETE", f"/databases/{db_id}", token).status_code in (200, 204)
    assert grantry.rest("GET", f"/databases/{db_id}", token).status_code == 404


# ------------------------------------------------------------------------------------------------
# 2. The e-mail with the refresh token
# ------------------------------------------------------------------------------------------------

def _new_mails(grantry, before: set) -> list:
    return [(p, m) for p, m in grantry.outbox() if p not in before]


def _recipients(msg) -> set[str]:
    return {a.addr_spec.lower() for a in msg["To"].addresses} | {
        a.addr_spec.lower() for a in (msg["Cc"].addresses if msg["Cc"] else ())
    }


def test_refresh_token_is_mailed_to_the_adding_admin_who_is_the_principal_admin(grantry):
    # an org whose principal admin's address we know
    org = grantry.cli("org", "create", "--name", "acme", "--admin", "boss", "--email", "boss@acme.example")
    assert org["org"] == "acme" and org["admin"] == "boss"
    before = {p for p, _ in grantry.outbox()}

    integ = grantry.new_integration(org="acme", by="boss", username="rita")

    mails = _new_mails(grantry, before)
    assert len(mails) == 1, [str(p) for p, _ in mails]
    _, msg = mails[0]
    assert _recipients(msg) == {"boss@acme.example"}, msg["To"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert integ.refresh_token in text
    assert integ.client_id in text
    assert integ.client_secret not in msg.as_string()


def test_refresh_token_mail_in_default_org_goes_to_admin(grantry):
    before = {p for p, _ in grantry.outbox()}

    integ = grantry.new_integration(by="admin")

    mails = _new_mails(grantry, before)
    assert len(mails) == 1, [str(p) for p, _ in mails]
    _, msg = mails[0]
    addresses = msg["To"].addresses
    assert len(addresses) == 1, msg["To"]  # the adding admin is the principal admin: one mail, one address
    assert "admin" in (addresses[0].display_name, addresses[0].username), msg["To"]
    assert integ.refresh_token in msg.get_body(preferencelist=("plain",)).get_content()


def test_refresh_token_is_mailed_to_second_org_admin_and_principal_admin(grantry):
    grantry.cli("org", "create", "--name", "acme", "--admin", "boss", "--email", "boss@acme.example")
    grantry.add_ui_user("deputy", org="acme", role="org_admin", email_addr="deputy@acme.example")
    before = {p for p, _ in grantry.outbox()}

    integ = grantry.new_integration(org="acme", by="deputy", username="rita")

    mails = _new_mails(grantry, before)
    assert len(mails) >= 1
    recipients = set().union(*(_recipients(m) for _, m in mails))
    assert recipients == {"deputy@acme.example", "boss@acme.example"}, recipients
    for _, msg in mails:
        assert integ.refresh_token in msg.get_body(preferencelist=("plain",)).get_content()
        assert "rita@example.com" not in _recipients(msg)


def test_only_an_org_admin_can_add_account_access(grantry):
    app = grantry.add_app("crm-sync", scopes=ALL_GRANTS)
    grantry.add_ui_user("bob", grants=ALL_GRANTS)
    grantry.add_ui_user("carol", grants=ALL_GRANTS)
    before = {p for p, _ in grantry.outbox()}

    proc = grantry.cli_run("access", "add", "--org", "default", "--client-id", app["client_id"],
                           "--username", "carol", "--by", "bob")

    assert proc.returncode != 0
    assert proc.stderr.strip(), "the refusal should say why on stderr"
    assert "refresh_token" not in proc.stdout
    assert _new_mails(grantry, before) == []


# never contacted: the sign-in test reads the redirect from the Location header
SIGN_IN_REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"


def _sign_in(grantry, client_id: str, username: str, password: str) -> tuple[requests.Response, str]:
    """Opens the web-server flow's login page for `client_id` in a fresh browser and submits
    `username` and `password`; returns the answer to the sign-in and the authorization query."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": SIGN_IN_REDIRECT_URI,
                       "scope": "lists:read", "state": secrets.token_urlsafe(8), "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(grantry.url(f"/oauth/authorize?{query}"), allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert page.status_code == 200, (page.status_code, page.text[:2000])
    assert re.search(r'<form[^>]*action="/oauth/authorize/login"', page.text), page.text[:2000]
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf, page.text[:2000]
    signed_in = browser.post(grantry.url("/oauth/authorize/login"), allow_redirects=False, timeout=HTTP_TIMEOUT,
                             data={"username": username, "password": password, "query": query,
                                   "csrf": html.unescape(csrf.group(1))})
    browser.close()
    return signed_in, query


def test_org_create_password_is_long_and_signs_the_admin_in(grantry):
    created = grantry.cli("org", "create", "--name", "acme", "--admin", "boss", "--email", "boss@acme.example")

    assert created["org"] == "acme" and created["admin"] == "boss", created
    password = created.get("password")
    assert isinstance(password, str) and len(password) >= 12, created
    assert password.strip() == password and password.isprintable(), created

    # the principal org admin signs in with it on the login page of the web-server flow
    app = grantry.cli("app", "add", "--org", "acme", "--name", "partner", "--description", "Reads your lists",
                      "--redirect-uri", SIGN_IN_REDIRECT_URI, "--scope", "lists:read")
    signed_in, query = _sign_in(grantry, app["client_id"], "boss", password)
    assert signed_in.status_code == 303, (signed_in.status_code, signed_in.text[:2000])
    assert signed_in.headers["Location"] == f"/oauth/authorize?{query}", signed_in.headers
    assert "grantry_session=" in signed_in.headers.get("Set-Cookie", ""), signed_in.headers

    # ... and with nothing else: not a wrong password, not in another organization
    wrong, _ = _sign_in(grantry, app["client_id"], "boss", password[:-1] + ("x" if password[-1] != "x" else "y"))
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text, wrong.text[:2000]
    assert "grantry_session=" not in wrong.headers.get("Set-Cookie", ""), wrong.headers
    other = grantry.cli("app", "add", "--org", "default", "--name", "partner", "--description", "Reads your lists",
                        "--redirect-uri", SIGN_IN_REDIRECT_URI, "--scope", "lists:read")
    elsewhere, _ = _sign_in(grantry, other["client_id"], "boss", password)
    assert elsewhere.status_code == 401, (elsewhere.status_code, elsewhere.text[:2000])

    # a second organization gets a password of its own
    second = grantry.cli("org", "create", "--name", "globex", "--admin", "boss", "--email", "boss@globex.example")
    assert len(second["password"]) >= 12 and second["password"] != password, second


# ------------------------------------------------------------------------------------------------
# 3. Error paths a client hits
# ------------------------------------------------------------------------------------------------

def test_unknown_client_is_invalid_client_with_seed_description(grantry):
    integ = grantry.new_integration()
    unknown = str(uuid.uuid4())

    in_body = grantry.token_request({"grant_type": "refresh_token", "client_id": unknown,
                                     "client_secret": integ.client_secret, "refresh_token": integ.refresh_token})
    _assert_oauth_error(in_body, 401, "invalid_client", f"Unable to find matching client for {unknown}")

    with_basic = grantry.token_request({"grant_type": "refresh_token", "refresh_token": integ.refresh_token},
                                       auth=(unknown, integ.client_secret))
    _assert_oauth_error(with_basic, 401, "invalid_client", f"Unable to find matching client for {unknown}")
    assert with_basic.headers.get("WWW-Authenticate", "").startswith("Basic"), with_basic.headers


def test_wrong_client_secret_is_invalid_client(grantry):
    integ = grantry.new_integration()
    wrong = integ.client_secret[:-4] + ("AAAA" if not integ.client_secret.endswith("AAAA") else "BBBB")

    in_body = grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                                     "client_secret": wrong, "refresh_token": integ.refresh_token})
    _assert_oauth_error(in_body, 401, "invalid_client")

    with_basic = grantry.token_request({"grant_type": "refresh_token", "refresh_token": integ.refresh_token},
                                       auth=(integ.client_id, wrong))
    _assert_oauth_error(with_basic, 401, "invalid_client")
    assert with_basic.headers.get("WWW-Authenticate", "").startswith("Basic"), with_basic.headers

    # nothing was issued by the failures
    assert not [e for e in grantry.audit() if e["action"] == "access_token.issued"]


def test_unknown_refresh_token_is_invalid_grant(grantry):
    integ = grantry.new_integration()
    bogus = integ.refresh_token[:-6] + "xxxxxx"

    resp = grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                                  "client_secret": integ.client_secret, "refresh_token": bogus})

    _assert_oauth_error(resp, 400, "invalid_grant")


def test_refresh_token_of_another_application_is_invalid_grant(grantry):
    mine = grantry.new_integration(app_name="mine")
    theirs = grantry.new_integration(app_name="theirs")

    resp = grantry.token_request({"grant_type": "refresh_token", "client_id": mine.client_id,
                                  "client_secret": mine.client_secret, "refresh_token": theirs.refresh_token})

    _assert_oauth_error(resp, 400, "invalid_grant")
    # and the rightful owner is unaffected
    assert grantry.exchange(theirs).status_code == 200


def test_missing_grant_type_is_invalid_request(grantry):
    integ = grantry.new_integration()

    resp = grantry.token_request({"client_id": integ.client_id, "client_secret": integ.client_secret,
                                  "refresh_token": integ.refresh_token})

    _assert_oauth_error(resp, 400, "invalid_request")


@pytest.mark.parametrize("repeated", ["grant_type", "refresh_token", "client_id"])
def test_duplicated_parameter_is_invalid_request(grantry, repeated):
    integ = grantry.new_integration()
    params = [("grant_type", "refresh_token"), ("client_id", integ.client_id),
              ("client_secret", integ.client_secret), ("refresh_token", integ.refresh_token)]
    params.append((repeated, dict(params)[repeated]))

    resp = grantry.token_request(params)

    body = _assert_oauth_error(resp, 400, "invalid_request")
    assert repeated in body["error_description"], body


def test_unsupported_grant_type(grantry):
    integ = grantry.new_integration()

    resp = grantry.token_request({"grant_type": "password", "client_id": integ.client_id,
                                  "client_secret": integ.client_secret, "username": integ.username,
                                  "password": "x"})

    _assert_oauth_error(resp, 400, "unsupported_grant_type")


def test_json_body_is_invalid_request(grantry):
    integ = grantry.new_integration()

    resp = grantry.token_request(json={"grant_type": "refresh_token", "client_id": integ.client_id,
                                       "client_secret": integ.client_secret, "refresh_token": integ.refresh_token})

    _assert_oauth_error(resp, 400, "invalid_request")


def _assert_both_apis_refuse(grantry, token, expect_invalid_token: bool):
    rest = grantry.rest("GET", "/databases", token)
    assert rest.status_code == 401, rest.text
    challenge = _bearer_challenge(rest)
    _assert_rest_envelope(rest.json())
    assert rest.json()["meta"]["generalErrors"], rest.text
    if expect_invalid_token:
        assert 'error="invalid_token"' in challenge, challenge

    for form in (False, True):
        xml = grantry.xml(token, envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"),
                          form=form)
        challenge = _bearer_challenge(xml)
        if expect_invalid_token:
            assert 'error="invalid_token"' in challenge, challenge
        assert_xml_fault(xml, 401, "145", "session expired or invalid")


def test_request_without_token_gets_401_bearer_challenge(grantry):
    _assert_both_apis_refuse(grantry, None, expect_invalid_token=False)


def test_garbage_token_gets_401_invalid_token(grantry):
    integ = grantry.new_integration()
    real = grantry.access_token(integ)
    _assert_both_apis_refuse(grantry, "garbage", expect_invalid_token=True)
    _assert_both_apis_refuse(grantry, real[:-4] + ("zzzz" if not real.endswith("zzzz") else "yyyy"),
                             expect_invalid_token=True)
    # the refresh token and the client secret are not access tokens
    _assert_both_apis_refuse(grantry, integ.refresh_token, expect_invalid_token=True)
    _assert_both_apis_refuse(grantry, integ.client_secret, expect_invalid_token=True)


def test_revoked_token_gets_401_invalid_token(grantry):
    integ = grantry.new_integration()
    token = grantry.access_token(integ)
    grantry.delete_access(integ.client_id, integ.username)
    grantry.eventually(lambda: _assert_both_apis_refuse(grantry, token, expect_invalid_token=True),
                       "the deleted account access's access token refused")


def test_missing_grant_gets_403_insufficient_scope_naming_it(grantry):
    integ = grantry.new_integration(grants=["lists:read"])  # the app may ask for everything
    exchanged = grantry.exchange(integ)
    assert exchanged.status_code == 200, exchanged.text
    token = exchanged.json()["access_token"]
    if "scope" in exchanged.json():
        assert exchanged.json()["scope"].split() == ["lists:read"]

    listed = grantry.rest("GET", "/databases", token)
    assert listed.status_code == 200, listed.text

    denied = grantry.rest("POST", "/databases/1/contacts", token, json_body={"email": "x@example.com"})
    assert denied.status_code == 403, denied.text
    challenge = _bearer_challenge(denied)
    assert 'error="insufficient_scope"' in challenge, challenge
    assert 'scope="contacts:write"' in challenge, challenge
    _assert_rest_envelope(denied.json())
    assert any("contacts:write" in e for e in denied.json()["meta"]["generalErrors"]), denied.text

    xml = grantry.xml(token, envelope(
        "<AddRecipient><LIST_ID>1</LIST_ID><COLUMN><NAME>EMAIL</NAME><VALUE>x@example.com</VALUE></COLUMN>"
        "</AddRecipient>"))
    assert 'scope="contacts:write"' in _bearer_challenge(xml)
    assert_xml_fault(xml, 403, "146", "contacts:write")


@pytest.mark.parametrize("body, mention", [
    ("<Envelope><Body><GetLists>", "invalid xml request"),
    ("not xml at all", "invalid xml request"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><Envelope><Body><GetLists/></Body></Envelope>',
     "invalid xml request"),
    ("<Envelope><Body><ExportEverything/></Body></Envelope>", "unknown operation ExportEverything"),
], ids=["unclosed", "not-xml", "dtd-entity", "unknown-operation"])
def test_malformed_xml_gets_errorid_51(grantry, body, mention):
    token = grantry.access_token(grantry.new_integration())

    resp = grantry.xml(token, body)

    assert_xml_fault(resp, 400, "51", mention)


# ------------------------------------------------------------------------------------------------
# 4. Deleting account access
# ------------------------------------------------------------------------------------------------

def test_deleting_account_access_revokes_refresh_and_access_tokens_within_a_second(grantry):
    integ = grantry.new_integration(username="bob")
    bystander = grantry.add_ui_user("carol", grants=ALL_GRANTS)
    other = grantry.add_access(integ.client_id, bystander["username"])
    other_integ = type(integ)("default", integ.client_id, integ.client_secret, "carol", other["refresh_token"])
    token = grantry.access_token(integ)
    other_token = grantry.access_token(other_integ)
    assert grantry.rest("GET", "/databases", token).status_code == 200
    xml_ok(grantry.xml(token, envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>")))

    deleted = grantry.delete_access(integ.client_id, integ.username)
    assert deleted["client_id"] == integ.client_id and deleted["username"] == integ.username

    def cut_off():
        _assert_oauth_error(grantry.exchange(integ), 400, "invalid_grant")
        rest = grantry.rest("GET", "/databases", token)
        assert rest.status_code == 401, rest.text
        assert 'error="invalid_token"' in _bearer_challenge(rest)
        xml = grantry.xml(token, envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"))
        assert xml.status_code == 401, xml.text
        assert 'error="invalid_token"' in _bearer_challenge(xml)
        xml_form = grantry.xml(token, envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"),
                               form=True)
        assert xml_form.status_code == 401, xml_form.text

    # within the one-second bound, the refresh token and its access token stop on every API
    grantry.eventually(cut_off, "the deleted account access's refresh and access tokens refused")

    # another user's access to the same application keeps working
    assert grantry.rest("GET", "/databases", other_token).status_code == 200
    assert grantry.access_token(other_integ) == other_token

    # deleting it again is an error, not a silent success
    again = grantry.cli_run("access", "delete", "--org", "default", "--client-id", integ.client_id,
                            "--username", integ.username)
    assert again.returncode != 0, again.stdout


def test_account_access_can_be_added_again_after_delete_with_a_new_refresh_token(grantry):
    integ = grantry.new_integration(username="bob")
    old_token = grantry.access_token(integ)
    grantry.delete_access(integ.client_id, "bob")
    deleted_at = grantry.cli_returned

    again = grantry.add_access(integ.client_id, "bob")

    assert again["refresh_token"] != integ.refresh_token
    renewed = type(integ)("default", integ.client_id, integ.client_secret, "bob", again["refresh_token"])
    new_token = grantry.access_token(renewed)
    assert new_token != old_token
    assert grantry.rest("GET", "/databases", new_token).status_code == 200

    def old_ones_refused():
        assert grantry.rest("GET", "/databases", old_token).status_code == 401
        _assert_oauth_error(grantry.exchange(integ), 400, "invalid_grant")

    # adding the access again does not revive the old tokens
    grantry.eventually(old_ones_refused, "the old refresh and access tokens refused", since=deleted_at)
    assert grantry.rest("GET", "/databases", new_token).status_code == 200


# ------------------------------------------------------------------------------------------------
# 5. The audit log
# ------------------------------------------------------------------------------------------------

def test_audit_log_records_the_credential_lifecycle(grantry):
    integ = grantry.new_integration(username="bob")
    token = grantry.access_token(integ)
    grantry.delete_access(integ.client_id, "bob")

    events = grantry.audit()

    assert isinstance(events, list) and events
    for event in events:
        assert {"id", "at", "actor", "action", "target", "detail"} <= set(event), event
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # every event, in order: what happened, to what, and who did it
    app, access = f"application:{integ.client_id}", f"application:{integ.client_id}/user:bob"
    assert [(e["action"], e["target"], e["actor"]) for e in events] == [
        ("organization.created", "organization:default", "system"),
        ("application.created", app, "cli"),
        ("user.created", "user:bob", "cli"),
        ("account_access.created", access, "cli"),
        ("access_token.issued", app, integ.client_id),
        ("account_access.deleted", access, "cli"),
    ], events
    by_action = {e["action"]: e for e in events}
    assert by_action["account_access.created"]["detail"] == {"by": "admin"}, events
    assert by_action["access_token.issued"]["detail"]["grant_type"] == "refresh_token", events
    assert set(by_action["access_token.issued"]["detail"]["scope"].split()) == set(ALL_GRANTS), events

    dump = str(events)
    for secret in (integ.client_secret, integ.refresh_token, token):
        assert secret not in dump


# ------------------------------------------------------------------------------------------------
# 6. Secrets never logged
# ------------------------------------------------------------------------------------------------

def _assert_no_secret_in(where: str, text: str, secrets: list[str]) -> None:
    for secret in secrets:
        if secret in text:
            line = next(line for line in text.splitlines() if secret in line)
            raise AssertionError(f"a credential ({secret[:14]}...) appears in {where}:\n{strip_ansi(line)[:600]}")


def _full_flow_collecting_secrets(grantry) -> list[str]:
    secrets: list[str] = []
    integ = grantry.new_integration(app_name="crm-sync", username="bob")
    limited = grantry.new_integration(app_name="reporting", username="ro", grants=["lists:read"])
    secrets += [integ.client_secret, integ.refresh_token, limited.client_secret, limited.refresh_token]

    token = grantry.access_token(integ)
    limited_token = grantry.access_token(limited)
    secrets += [token, limited_token]
    basic = grantry.token_request({"grant_type": "refresh_token", "refresh_token": integ.refresh_token},
                                  auth=(integ.client_id, integ.client_secret))
    assert basic.status_code == 200

    db = grantry.rest("POST", "/databases", token, json_body={"name": "Newsletter"}).json()["data"]["id"]
    contact = grantry.rest("POST", f"/databases/{db}/contacts", token,
                           json_body={"email": "a@example.com", "columns": {"First Name": "A"}}).json()["data"]["id"]
    grantry.rest("GET", f"/databases/{db}/contacts/{contact}", token)
    grantry.rest("PATCH", f"/databases/{db}/contacts/{contact}", token, json_body={"columns": {"City": "Oslo"}})
    for form in (False, True):
        grantry.xml(token, envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"),
                    form=form)
        grantry.xml(token, envelope(f"<SelectRecipientData><LIST_ID>{db}</LIST_ID><EMAIL>a@example.com</EMAIL>"
                                    "</SelectRecipientData>"), form=form)
    grantry.rest("POST", f"/databases/{db}/contacts", limited_token, json_body={"email": "b@example.com"})  # 403

    # credentials presented in failing requests must not be logged either
    wrong_secret = integ.client_secret[:-5] + "WRONG"
    wrong_refresh = integ.refresh_token[:-5] + "WRONG"
    wrong_access = token[:-5] + "WRONG"
    secrets += [wrong_secret, wrong_refresh, wrong_access]
    grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                           "client_secret": wrong_secret, "refresh_token": integ.refresh_token})
    grantry.token_request({"grant_type": "refresh_token", "refresh_token": integ.refresh_token},
                          auth=(integ.client_id, wrong_secret))
    grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                           "client_secret": integ.client_secret, "refresh_token": wrong_refresh})
    grantry.token_request({"grant_type": "refresh_token", "client_id": limited.client_id,
                           "client_secret": limited.client_secret, "refresh_token": integ.refresh_token})
    grantry.token_request(json={"grant_type": "refresh_token", "client_id": integ.client_id,
                                "client_secret": integ.client_secret, "refresh_token": integ.refresh_token})
    grantry.rest("GET", "/databases", wrong_access)
    grantry.xml(wrong_access, envelope("<GetLists/>"))

    grantry.delete_access(integ.client_id, "bob")
    grantry.exchange(integ)
    grantry.rest("GET", "/databases", token)
    grantry.xml(token, envelope("<GetLists/>"), form=True)
    grantry.audit()
    return secrets


def test_secrets_never_appear_in_server_output(grantry):
    secrets = _full_flow_collecting_secrets(grantry)
    grantry.stop()  # flush everything the server had to say

    stdout, stderr = grantry.server_output()
    assert "DEBUG" in strip_ansi(stderr), "GRANTRY_LOG=debug should produce debug logs, else this test proves nothing"
    assert grantry.admin_password and grantry.admin_password in stdout
    stdout_without_password = "\n".join(
        line for line in stdout.splitlines() if "One-time admin password (shown once, keep it)" not in line
    )
    assert grantry.admin_password not in stdout_without_password
    assert grantry.admin_password not in stderr

    _assert_no_secret_in("the server's stdout", stdout_without_password, secrets)
    _assert_no_secret_in("the server's stderr", stderr, secrets)
    _assert_no_secret_in("the server's stderr", strip_ansi(stderr), secrets)
    for text in grantry.cli_stderr:  # the CLI's own logs (its stdout carries the secrets by design)
        _assert_no_secret_in("a CLI command's stderr", text, secrets)


def test_credentials_sent_in_the_query_string_are_not_logged(grantry):
    integ = grantry.new_integration()
    token = grantry.access_token(integ)

    # a careless client puts its credentials in the URL; the server must refuse or accept it,
    # but must not write them to its logs
    grantry.http.post(grantry.url("/oauth/token"), params={
        "grant_type": "refresh_token", "client_id": integ.client_id,
        "client_secret": integ.client_secret, "refresh_token": integ.refresh_token}, timeout=10)
    grantry.http.get(grantry.url("/rest/databases"), params={"access_token": token}, timeout=10)
    grantry.stop()

    _, stderr = grantry.server_output()
    _assert_no_secret_in("the server's stderr", strip_ansi(stderr), [integ.client_secret, integ.refresh_token, token])


def test_audit_log_records_failed_authentication(grantry):
    integ = grantry.new_integration()
    before = {e["id"] for e in grantry.audit()}

    grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                           "client_secret": integ.client_secret[:-5] + "WRONG", "refresh_token": integ.refresh_token})
    grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                           "client_secret": integ.client_secret, "refresh_token": integ.refresh_token[:-5] + "WRONG"})

    # Refusals of one credential inside audit.failure_window are one event that counts them.
    new = [e for e in grantry.audit() if e["id"] not in before]
    assert [(e["action"], e["target"], e["actor"], e["detail"], e["count"]) for e in new] == [
        ("authentication.failed", f"application:{integ.client_id}", integ.client_id,
         {"reason": "wrong client_secret"}, 2),
    ], new
    assert new[0]["last_at"] >= new[0]["at"], new

    for _ in range(5):
        grantry.token_request({"grant_type": "refresh_token", "client_id": integ.client_id,
                               "client_secret": "WRONG", "refresh_token": integ.refresh_token})
    new = [e for e in grantry.audit() if e["id"] not in before]
    assert [(e["action"], e["count"]) for e in new] == [("authentication.failed", 7)], new
