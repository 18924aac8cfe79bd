"""Black-box tests of grantry's mail (README, "Audit retention and mail security"): the
refresh-token notice is delivered over SMTP with STARTTLS to a real SMTP server (aiosmtpd)
whose certificate, made here by a private CA, grantry verifies against `mail.smtp_ca_file`;
SMTP without TLS stops `grantry serve`; the outbox is private to grantry's user.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import stat
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import _child_env, _free_port


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _make_pki(folder: Path) -> Pki:
    """A private CA and a server certificate it signed for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "grantry test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return pki


@dataclass
class Received:
    tls: bool
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Sink:
    """What the SMTP server received, one entry per message."""

    port: int
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.arrived:
            self.messages.append(Received(session.ssl is not None, envelope.mail_from,
                                          list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


@pytest.fixture
def pki(tmp_path) -> Pki:
    folder = tmp_path / "pki"
    folder.mkdir()
    return _make_pki(folder)


@pytest.fixture
def smtp_sink(pki):
    """An SMTP server on 127.0.0.1 that offers STARTTLS and refuses mail without it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    sink = Sink(_free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=context,
                            require_starttls=True)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def _starttls_env(sink: Sink, ca_file: Path | None) -> dict[str, str]:
    env = {"GRANTRY_MAIL__SMTP_URL": f"smtp://127.0.0.1:{sink.port}?tls=required"}
    if ca_file is not None:
        env["GRANTRY_MAIL__SMTP_CA_FILE"] = str(ca_file)
    return env


def test_the_refresh_token_notice_is_delivered_over_starttls_verified_with_the_ca_file(
        grantry_factory, smtp_sink, pki):
    grantry = grantry_factory(_starttls_env(smtp_sink, pki.ca_file))

    integ = grantry.new_integration(app_name="Mailed sync", by="admin")

    assert grantry.cli_stderr[-1].strip() == "", grantry.cli_stderr[-1]
    (received,) = smtp_sink.wait_for(1)
    assert received.tls, "the message was sent before STARTTLS"
    assert received.rcpt_tos == ["admin@grantry.local"], received.rcpt_tos
    msg = email.message_from_bytes(received.content, policy=email.policy.default)
    assert [a.addr_spec for a in msg["To"].addresses] == ["admin@grantry.local"], msg["To"]
    assert msg["Subject"] == "New account access for Mailed sync in default", msg["Subject"]
    assert integ.refresh_token in msg.get_body(preferencelist=("plain",)).get_content()
    # SMTP replaces the outbox: nothing is written to disk
    assert grantry.outbox() == []


def test_a_server_certificate_that_is_not_trusted_gets_no_mail(grantry_factory, smtp_sink):
    # the same server without mail.smtp_ca_file: its private CA is not trusted, so the
    # certificate is refused, not waved through
    grantry = grantry_factory(_starttls_env(smtp_sink, None))

    grantry.new_integration(by="admin")

    warning = grantry.cli_stderr[-1]
    assert "the account access was added but the e-mail was not sent" in warning, warning
    assert smtp_sink.wait_for(1, timeout=2.0) == []


def _serve(grantry_bin: Path, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [str(grantry_bin), "--data", str(workdir / "data"), "serve", "--listen", "127.0.0.1:0"],
            capture_output=True, text=True, cwd=workdir, env=_child_env(env), timeout=30, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as started:
        pytest.fail(f"grantry serve started with SMTP without TLS:\n{started.stdout}\n{started.stderr}")


@pytest.mark.parametrize("url", [
    "smtp://grantry:s3cr3t-pass@127.0.0.1:2525",
    "smtp://grantry:s3cr3t-pass@127.0.0.1:2525?tls=opportunistic",
])
def test_smtp_without_tls_stops_serve_saying_what_to_write(grantry_bin, tmp_path, url):
    proc = _serve(grantry_bin, tmp_path, {"GRANTRY_MAIL__SMTP_URL": url})

    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert "mail.smtp_url" in proc.stderr, proc.stderr
    for form in ("smtps://", "?tls=required", "?tls=none"):
        assert form in proc.stderr, proc.stderr
    assert "s3cr3t-pass" not in proc.stderr + proc.stdout, "the SMTP password was printed"


def test_a_missing_ca_file_stops_serve_naming_it(grantry_bin, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    proc = _serve(grantry_bin, tmp_path, {"GRANTRY_MAIL__SMTP_URL": "smtp://127.0.0.1:2525?tls=required",
                                          "GRANTRY_MAIL__SMTP_CA_FILE": str(missing)})

    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert f"mail.smtp_ca_file {missing}" in proc.stderr, proc.stderr


def test_the_outbox_and_its_messages_are_private_to_grantrys_user(grantry):
    integ = grantry.new_integration(by="admin")

    folder = grantry.data_dir / "outbox"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
    mails = grantry.outbox()
    assert mails, "no message in the outbox"
    for path, msg in mails:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))
    assert any(integ.refresh_token in m.get_body(preferencelist=("plain",)).get_content() for _, m in mails)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p, _ in mails), "stray files"
