"""Black-box tests of the XML API's `Login` sessions (README, "Legacy clients"), with a client
written the way the original SDKs work: it posts the envelope as the form field `xml=`,
appends the SESSION_ENCODING that `Login` answered to the path of every later call, and logs
in again once when a call answers errorid 145.

Everything goes through the CLI (`--json`) and HTTP only, on each backend in
conftest.BACKENDS.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests

from conftest import HTTP_TIMEOUT, assert_xml_fault, envelope, xml_ok

GET_LISTS = envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>")


class SessionExpired(Exception):
    pass


class LegacyClient:
    """An XML API client as the original SDKs are written."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.encoding: str | None = None
        self.logins = 0
        self.http = requests.Session()
        self.http.trust_env = False

    def _post(self, body: str) -> requests.Response:
        path = "/XMLAPI" + (self.encoding or "")
        return self.http.post(self.base_url + path, data={"xml": body}, timeout=HTTP_TIMEOUT)

    def login(self) -> ET.Element:
        self.encoding = None
        resp = self._post(envelope(f"<Login><USERNAME>{self.username}</USERNAME>"
                                   f"<PASSWORD>{self.password}</PASSWORD></Login>"))
        result = xml_ok(resp)
        self.encoding = result.findtext("SESSION_ENCODING")
        assert self.encoding and self.encoding.startswith(";jsessionid="), resp.text
        assert result.findtext("SESSIONID") == self.encoding.removeprefix(";jsessionid="), resp.text
        assert (result.findtext("ORGANIZATION_ID") or "").isdigit(), resp.text
        self.logins += 1
        return result

    def call(self, body: str) -> ET.Element:
        """One call; on errorid 145 logs in again and retries once."""
        if self.encoding is None:
            self.login()
        resp = self._post(body)
        if _errorid(resp) == "145":
            self.login()
            resp = self._post(body)
        return xml_ok(resp)

    def logout(self) -> None:
        xml_ok(self._post(envelope("<Logout/>")))
        self.encoding = None

    @property
    def session_id(self) -> str:
        assert self.encoding
        return self.encoding.removeprefix(";jsessionid=")


def _errorid(resp: requests.Response) -> str | None:
    try:
        root = ET.fromstring(resp.content)
    except ET.ParseError:
        return None
    return root.findtext("./Body/Fault/detail/error/errorid")


def _bot(grantry, username: str = "sdk") -> str:
    grantry.add_api_user(username, grants=["lists:read"])
    return grantry.generate_key(username).secret


def test_sdk_client_logs_in_again_when_its_session_is_ended_elsewhere(grantry):
    secret = _bot(grantry)
    client = LegacyClient(grantry.base_url, "sdk", secret)
    client.call(GET_LISTS)
    client.call(GET_LISTS)
    assert client.logins == 1
    first = client.session_id

    # A second client ends the first one's session (Logout on its id).
    other = LegacyClient(grantry.base_url, "sdk", secret)
    other.encoding = f";jsessionid={first}"
    other.logout()

    # The first client's next call meets 145, logs in once and carries on.
    client.call(GET_LISTS)
    assert client.logins == 2
    assert client.session_id != first

    # The cookie names the session too; Logout ends it for good.
    resp = grantry.http.post(grantry.url("/XMLAPI"), data={"xml": GET_LISTS},
                             cookies={"JSESSIONID": client.session_id}, timeout=HTTP_TIMEOUT)
    xml_ok(resp)
    last = client.session_id
    client.logout()
    resp = grantry.http.post(grantry.url("/XMLAPI;jsessionid=" + last), data={"xml": GET_LISTS},
                             timeout=HTTP_TIMEOUT)
    assert_xml_fault(resp, 401, "145", "Login again")

    actions = [e["action"] for e in grantry.audit()]
    assert actions.count("xml_session.started") == 2, actions
    assert actions.count("xml_session.ended") == 2, actions

    # The session ids never reach the server's logs.
    out, err = grantry.server_output()
    for sid in (first, last):
        assert sid not in out and sid not in err


def test_disabling_the_user_ends_its_sessions_within_a_second(grantry):
    secret = _bot(grantry)
    client = LegacyClient(grantry.base_url, "sdk", secret)
    client.call(GET_LISTS)
    path = "/XMLAPI" + (client.encoding or "")
    grantry.cli("user", "disable", "--org", "default", "--username", "sdk")

    def ended():
        resp = grantry.http.post(grantry.url(path), data={"xml": GET_LISTS}, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 401, resp.text
        return resp

    assert_xml_fault(grantry.eventually(ended, "disabling ends the session"), 401, "145")

    # And the disabled user cannot log in again: the key check may answer from the credential
    # cache, so this too is held to the one-second bound from the CLI command (README,
    # "Credential cache"), not to the moment the session was seen ended.
    def refused():
        resp = grantry.http.post(grantry.url("/XMLAPI"), data={"xml": envelope(
            f"<Login><USERNAME>sdk</USERNAME><PASSWORD>{secret}</PASSWORD></Login>")}, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 401, resp.text
        return resp

    assert_xml_fault(grantry.eventually(refused, "disabling refuses Login"), 401, "140", "disabled")


def test_ui_users_and_wrong_keys_cannot_log_in(grantry):
    secret = _bot(grantry)
    grantry.add_ui_user("alice", grants=["lists:read"])
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    messages = []
    for username, password in [("alice", "whatever-password"), ("sdk", wrong), ("nobody", secret)]:
        resp = grantry.http.post(grantry.url("/XMLAPI"), data={"xml": envelope(
            f"<Login><USERNAME>{username}</USERNAME><PASSWORD>{password}</PASSWORD></Login>")},
            timeout=HTTP_TIMEOUT)
        messages.append(assert_xml_fault(resp, 401, "140", "API user", "UI user's password"))
    assert len(set(messages)) == 1, messages


def test_the_org_cap_refuses_the_next_login(grantry_factory):
    grantry = grantry_factory({"GRANTRY_SESSIONS__MAX_PER_ORG": "2"})
    secret = _bot(grantry)
    clients = [LegacyClient(grantry.base_url, "sdk", secret) for _ in range(2)]
    for c in clients:
        c.login()
    resp = grantry.http.post(grantry.url("/XMLAPI"), data={"xml": envelope(
        f"<Login><USERNAME>sdk</USERNAME><PASSWORD>{secret}</PASSWORD></Login>")}, timeout=HTTP_TIMEOUT)
    assert_xml_fault(resp, 200, "147", "max_per_org", "Logout")
    clients[0].logout()
    LegacyClient(grantry.base_url, "sdk", secret).login()
