"""Self-tests of the next hops in peerutil.py, driven by Python's smtplib and
ssl (no tern): what each peer offers, what it records, and that the
injecting and the broken STARTTLS peers really inject and really break."""

import shutil
import smtplib
import socket
import ssl
import tempfile
from pathlib import Path

import pytest

from peerutil import RawStarttlsPeer, TlsPeer, make_self_signed, server_context
from tlsutil import SERVER_CN, make_pki

INJECT = b"250-evil\r\n250 injected\r\n"


@pytest.fixture(scope="module")
def pki():
    d = Path(tempfile.mkdtemp(prefix="peerutil-pki-"))
    p = make_pki(d / "pki")
    make_self_signed(p.dir, "selfsigned")
    yield p
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def peers():
    made = []
    yield made
    for p in made:
        p.stop()


def verifying_context(pki, cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.path("ca.pem")))
    if cert:
        ctx.load_cert_chain(str(pki.path("client.pem")), str(pki.path("client.key")))
    return ctx


def test_tls_peer_records_tls_sni_client_cert_login_and_mail_arg(pki, peers):
    peer = TlsPeer(pki.path("server.pem"), pki.path("server.key"), client_ca=pki.path("ca.pem"),
                   users={"alice": "Alice-pw"}, require_auth=True)
    peers.append(peer.start())
    with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        s._host = SERVER_CN  # smtplib sends SNI for the name it connected to
        s.starttls(context=verifying_context(pki, cert=True))
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nnone\r\n")
        assert e.value.smtp_code == 530
        s.rset()
        s.login("alice", "Alice-pw")
        s.sendmail("a@example.test", ["b@example.test"], b"Subject: self-1\r\n\r\nbody\r\n",
                   mail_options=["AUTH=<a@example.test>"])
    (msg,) = peer.wait_for(b"Subject: self-1")
    assert msg.mail_arg.startswith("<a@example.test> ")
    assert msg.mail_param("auth") == "<a@example.test>"
    assert msg.login == "alice"
    assert msg.tls.version in ("TLSv1.2", "TLSv1.3") and not msg.tls.resumed
    assert msg.tls.sni == SERVER_CN and peer.sni_names == [SERVER_CN]
    assert msg.tls.client_subject == "client.example.test"
    assert msg.tls.client_fingerprint == pki.fingerprint("client.pem")
    (conn,) = peer.conns
    assert conn.ehlo == ["client.test", "client.test"]
    assert conn.logins == [("PLAIN", "alice", True)]
    assert peer.handshakes == 1


def test_tls_peer_login_mechanism_and_wrong_password(pki, peers):
    peer = TlsPeer(pki.path("server.pem"), pki.path("server.key"), users={"bob": "Bob-pw"},
                   mechanisms=("LOGIN",))
    peers.append(peer.start())
    ctx = verifying_context(pki)
    ctx.check_hostname = False
    with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].split() == ["LOGIN"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("bob", "wrong")
        assert e.value.smtp_code == 535
        s.login("bob", "Bob-pw")
    assert peer.auth_attempts == [("LOGIN", "bob", False), ("LOGIN", "bob", True)]
    assert peer.conns[0].tls.client_cert is None


def test_tls_peer_without_starttls_or_users_offers_neither(peers):
    peer = TlsPeer()
    peers.append(peer.start())
    with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls") and not s.has_extn("auth")
        s.sendmail("a@example.test", ["b@example.test"], b"Subject: plain\r\n\r\nx\r\n")
    (msg,) = peer.wait_for(b"Subject: plain")
    assert msg.tls is None and msg.login is None and msg.mail_param("AUTH") is None


def test_tls_peer_plaintext_auth_when_asked(peers):
    peer = TlsPeer(users={"carol": "Carol-pw"}, auth_require_tls=False)
    peers.append(peer.start())
    with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        s.login("carol", "Carol-pw")
    assert peer.auth_attempts == [("PLAIN", "carol", True)]


def test_tls_peer_sees_a_resumed_session(pki, peers):
    peer = TlsPeer(pki.path("selfsigned.pem"), pki.path("selfsigned.key"))
    peers.append(peer.start())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    session = None
    for _ in range(2):
        with socket.create_connection((peer.host, peer.port), 10) as raw:
            f = raw.makefile("rb")
            f.readline()
            raw.sendall(b"EHLO client.test\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            raw.sendall(b"STARTTLS\r\n")
            assert f.readline().startswith(b"220")
            tls = ctx.wrap_socket(raw, server_hostname=SERVER_CN, session=session)
            tls.sendall(b"EHLO client.test\r\n")
            tf = tls.makefile("rb")
            while not tf.readline().startswith(b"250 "):
                pass
            session = tls.session  # the TLS 1.3 ticket arrived with the reply
            tls.sendall(b"QUIT\r\n")
            tf.readline()
    assert [c.tls.resumed for c in peer.conns] == [False, True]


def test_raw_peer_injects_in_the_same_send_and_delivers_after_tls(pki):
    peer = RawStarttlsPeer(server_context(pki.path("server.pem"), pki.path("server.key")),
                           inject=INJECT)
    try:
        # a naive client sees the injected lines before the handshake
        with socket.create_connection((peer.host, peer.port), 10) as raw:
            raw.recv(1024)
            raw.sendall(b"EHLO naive.test\r\n")
            raw.recv(1024)
            raw.sendall(b"STARTTLS\r\n")
            got = b""
            while INJECT not in got:
                chunk = raw.recv(1024)
                assert chunk, got
                got += chunk
            assert got == b"220 2.0.0 Ready\r\n" + INJECT
        # smtplib drops its buffer at STARTTLS: the delivery works
        ctx = verifying_context(pki)
        with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
            s._host = SERVER_CN
            s.starttls(context=ctx)
            s.sendmail("a@example.test", ["b@example.test"], b"Subject: raw\r\n\r\n.dot\r\n")
        (msg,) = peer.wait_for(b"Subject: raw")
        assert msg.tls and msg.content.endswith(b"\r\n.dot\r\n")
        conn = peer.sessions[-1]
        assert conn.after_tls() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
        assert conn.early_bytes == b""
    finally:
        peer.stop()


def test_raw_peer_breaks_the_first_handshake_only(pki):
    peer = RawStarttlsPeer(server_context(pki.path("server.pem"), pki.path("server.key")),
                           broken=1)
    ctx = verifying_context(pki)
    ctx.check_hostname = False
    try:
        with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
            with pytest.raises((ssl.SSLError, OSError)):
                s.starttls(context=ctx)
        with smtplib.SMTP(peer.host, peer.port, timeout=10) as s:
            s.sendmail("a@example.test", ["b@example.test"], b"Subject: second\r\n\r\nx\r\n")
        (msg,) = peer.wait_for(b"Subject: second")
        assert not msg.tls
        assert "<BROKEN>" in peer.sessions[0].commands
        assert not any(c.upper().startswith("STARTTLS") for c in peer.sessions[1].commands)
    finally:
        peer.stop()
