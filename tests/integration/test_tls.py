"""STARTTLS and SMTPS in tern-smtpd, proved with real clients: python's ssl,
openssl s_client, gnutls-cli, sslscan, and hand-made ClientHellos.

Certificates are made at test time (tlsutil.make_pki).  Most tests share one
instance ("main": STARTTLS on smtpd, the submission and smtps listeners, two
workers) or the client certificate instance ("ccert": one worker, so a hung
session and a parallel one are on the same event loop); the rest start a
small instance of their own.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ternlib import TERN, SmtpConn, free_port, make_message, wait_until
from tlsutil import (
    SERVER_CN,
    TlsSmtp,
    client_context,
    make_pki,
    probe_suites,
    read_reply,
    run_client,
    s_client,
)

READY = "220 2.0.0 Ready to start TLS"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(it_base):
    d = Path(tempfile.mkdtemp(prefix="pki-", dir=str(it_base)))
    yield make_pki(d)
    shutil.rmtree(d, ignore_errors=True)  # it_base goes only when it holds no directory


@pytest.fixture(scope="module")
def sink(mres):
    return mres.sink()


@pytest.fixture(scope="module")
def main(mres, pki, sink):
    """STARTTLS on smtpd, plus submission and smtps listeners; 2 workers."""
    t = mres.tern(
        start=False,
        smtpd_tls_cert_file=pki.path("server.pem"),
        smtpd_tls_key_file=pki.path("server.key"),
        submission_listen=f"127.0.0.1:{free_port()}",
        smtps_listen=f"127.0.0.1:{free_port()}",
        smtpd_helo_required="yes",
        relayhost=sink.hostport,
        smtpd_workers="2",
    )
    t.submission_port = int(t.params["submission_listen"].rsplit(":", 1)[1])
    t.smtps_port = int(t.params["smtps_listen"].rsplit(":", 1)[1])
    return t.start()


@pytest.fixture(scope="module")
def ccert(mres, pki, sink):
    """Client certificates: asked for, verified against the CA and its CRL;
    relay_clientcerts lists the good, the revoked and the untrusted one.
    One worker and a 3 s timeout (robustness tests).  The smtps listener
    requires a certificate."""
    table = Path(pki.dir) / "relay_clientcerts"
    table.write_text("".join(f"{pki.fingerprint(c)} ok\n"
                             for c in ("client.pem", "revoked.pem", "rogue.pem")))
    t = mres.tern(
        start=False,
        smtpd_tls_cert_file=pki.path("server.pem"),
        smtpd_tls_key_file=pki.path("server.key"),
        smtpd_tls_ask_ccert="yes",
        smtpd_tls_CAfile=pki.path("ca.pem"),
        smtpd_tls_crl_file=pki.path("crl.pem"),
        relay_clientcerts=f"texthash:{table}",
        mynetworks="127.0.0.1/32",
        relayhost=sink.hostport,
        smtpd_workers="1",
        smtpd_timeout="3s",
        smtps_listen=f"127.0.0.1:{free_port()}",
        **{"smtps.smtpd_tls_req_ccert": "yes"},
    )
    t.smtps_port = int(t.params["smtps_listen"].rsplit(":", 1)[1])
    return t.start()


def tls_params(pki, **extra):
    p = dict(smtpd_tls_cert_file=pki.path("server.pem"), smtpd_tls_key_file=pki.path("server.key"))
    p.update(extra)
    return p


def new_lines(t, since: int):
    return t.log().splitlines()[since:]


def log_len(t) -> int:
    """The maillog's length in lines once every earlier session has ended
    (its disconnect line written), so that what follows is this test's."""
    def settled():
        text = t.log()
        return text.count("connect from unknown[") == 2 * text.count("disconnect from unknown[")
    wait_until(settled, 10, "earlier sessions to end")
    return len(t.log().splitlines())


def disconnect_line(t, since: int, timeout: float = 10.0) -> str:
    """The first 'disconnect from' line after line number since."""
    return wait_until(
        lambda: next((l for l in new_lines(t, since) if "disconnect from" in l), None),
        timeout, "a disconnect line")


def ehlo_keywords(reply):
    return [l[4:].split()[0] for l in reply[1:]]


# ---------------------------------------------------------------- STARTTLS replies


def test_starttls_replies_and_state_reset(main):
    with TlsSmtp(main.host, main.port) as c:
        assert c.reply()[0].startswith("220 ")
        ehlo = c.cmd("EHLO client.example")
        assert "STARTTLS" in ehlo_keywords(ehlo)
        assert c.cmd("STARTTLS now") == ["501 5.5.4 Syntax error (no parameters allowed)"]
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        r = c.cmd("STARTTLS")
        assert r[0].startswith("503 5.5.0"), r
        assert c.cmd("RSET")[0].startswith("250")
        assert c.cmd("STARTTLS") == [READY]
        c.wrap()
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        # RFC 3207 4.2: the EHLO before TLS is forgotten (smtpd_helo_required)
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("503 5.0.0"), "HELO not reset"
        ehlo2 = c.cmd("EHLO client.example")
        assert ehlo2[-1].startswith("250 ")
        assert "STARTTLS" not in ehlo_keywords(ehlo2)
        assert c.cmd("RCPT TO:<x@sink.test>")[0].startswith("503"), "transaction not reset"
        assert c.cmd("STARTTLS")[0] == "503 5.5.1 Error: TLS already active"
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        assert c.cmd("QUIT")[0].startswith("221")


def test_starttls_unavailable(res, pki):
    """No certificate: not offered, 454.  A broken key or a key readable by
    others: not offered, 454, and an error in the log."""
    broken = Path(pki.dir) / "broken.key"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n")
    os.chmod(broken, 0o600)
    open_key = Path(pki.dir) / "server-0644.key"
    open_key.write_bytes(pki.path("server.key").read_bytes())
    os.chmod(open_key, 0o644)
    cases = [
        ({}, "454 4.7.0 TLS not available", None),
        (tls_params(pki, smtpd_tls_key_file=broken), "454 4.3.3 TLS not available after start",
         r"listener smtpd: TLS is not available: .*broken\.key"),
        (tls_params(pki, smtpd_tls_key_file=open_key), "454 4.3.3 TLS not available after start",
         r"TLS is not available: .*server-0644\.key: mode 0644.*fix it with: chmod 600 "),
    ]
    for params, reply, logline in cases:
        t = res.tern(**params)
        with SmtpConn(t.host, t.port) as c:
            c.greeting()
            assert "STARTTLS" not in ehlo_keywords(c.cmd("EHLO client.example")), params
            assert c.cmd("STARTTLS") == [reply], params
            # still a working SMTP server in plaintext
            assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        if logline:
            t.wait_log(logline, timeout=5)


# ---------------------------------------------------------------- real clients


def test_openssl_s_client(main):
    rc, out = s_client(main.port)
    assert rc == 0, out[-2000:]
    assert re.search(r"^subject=CN\s*=\s*mx\.example\.test$", out, re.M), out[:2000]
    assert re.search(r"New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384", out), out
    # the EHLO after the handshake: no STARTTLS, and QUIT's 221
    assert "250-PIPELINING" in out and "221 2.0.0" in out, out[-2000:]
    after = out[out.index("New, TLSv1.3"):]
    assert "STARTTLS" not in after


def test_gnutls_cli(main, pki):
    rc, out = run_client(
        ["gnutls-cli", "--starttls-proto=smtp", "--port", str(main.port),
         f"--x509cafile={pki.path('ca.pem')}", f"--verify-hostname={SERVER_CN}", "127.0.0.1"],
        b"EHLO client.example\r\nQUIT\r\n", timeout=15)
    assert "Handshake was completed" in out, out
    assert "The certificate is trusted" in out, out
    assert "221 2.0.0" in out, out
    # tern ends the TLS session with close_notify
    assert "non-properly terminated" not in out, out
    assert rc == 0, out


# ---------------------------------------------------------------- protocols and ciphers

# cipher suites by number: offered in hand-made ClientHellos, so the test does
# not depend on what the local OpenSSL still implements
WEAK_SUITES = {
    "NULL": [0x0001, 0x0002, 0x003B, 0xC010],
    "EXPORT": [0x0003, 0x0006, 0x0008, 0x0014],
    "RC4": [0x0004, 0x0005, 0xC011],
    "3DES": [0x000A, 0x0016, 0xC012],
    "DES": [0x0009, 0x0015],
    "aNULL": [0x0018, 0x0034, 0x003A, 0x00A6, 0xC018],
}
GOOD_SUITE = 0xC02F  # ECDHE-RSA-AES128-GCM-SHA256


def test_old_protocols_refused_by_server(main):
    for port, starttls in ((main.port, True), (main.smtps_port, False)):
        for version in (0x0300, 0x0301, 0x0302):  # SSLv3, TLS 1.0, TLS 1.1
            kind, what = probe_suites(main.host, port, [0xC013, 0x002F, 0x0035], version, starttls)
            assert kind in ("alert", "closed"), (hex(version), kind, what)
        assert probe_suites(main.host, port, [GOOD_SUITE], 0x0303, starttls) == ("hello", GOOD_SUITE)


def test_protocol_versions_python_ssl(main):
    seen = {}
    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
              ssl.TLSVersion.TLSv1_3):
        # SECLEVEL=0: the client would offer TLS 1.0/1.1, so a refusal is the server's
        ctx = client_context(minimum=v, maximum=v, ciphers="DEFAULT@SECLEVEL=0")
        c = TlsSmtp(main.host, main.port, ctx)
        try:
            c.starttls()
            seen[v.name] = c.sock.version()
            assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        except (ssl.SSLError, ConnectionError, EOFError) as e:
            seen[v.name] = f"refused: {e}"
        finally:
            c.close()
    assert seen["TLSv1_2"] == "TLSv1.2" and seen["TLSv1_3"] == "TLSv1.3", seen
    assert seen["TLSv1"].startswith("refused") and seen["TLSv1_1"].startswith("refused"), seen
    # and the server says why
    main.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]: .*unsupported protocol", 5)


def test_s_client_tls1_1_refused(main):
    rc, out = s_client(main.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0 and "Cipher is (NONE)" in out, out[-1500:]


def test_weak_suites_refused(main):
    for port, starttls in ((main.port, True), (main.smtps_port, False)):
        for name, suites in WEAK_SUITES.items():
            kind, what = probe_suites(main.host, port, suites, 0x0303, starttls)
            assert kind in ("alert", "closed"), (name, kind, what)
            if kind == "alert":
                assert what == 40, (name, what)  # handshake_failure


def test_protocol_list_and_excluded_ciphers(res, pki):
    """smtpd_tls_protocols as a list, with a hole; smtpd_tls_exclude_ciphers."""
    t = res.tern(**tls_params(
        pki,
        smtpd_tls_protocols="!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3",
        smtpd_tls_exclude_ciphers="AES256, CAMELLIA",
        smtps_listen=f"127.0.0.1:{free_port()}",
        **{"smtps.smtpd_tls_mandatory_protocols": "!TLSv1.2"},
    ))
    smtps = int(t.params["smtps_listen"].rsplit(":", 1)[1])
    # smtpd: TLS 1.2 only
    rc, out = s_client(t.port, "-tls1_3")
    assert rc != 0 and "Cipher is (NONE)" in out, out[-1500:]
    rc, out = s_client(t.port, "-tls1_2")
    assert rc == 0 and "New, TLSv1.2" in out, out[-1500:]
    # excluded here (AES256, CAMELLIA), or by default: CBC with a SHA-1 MAC,
    # RSA key exchange (no forward secrecy)
    for cipher in ("AES256-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                   "ECDHE-RSA-CAMELLIA256-SHA384", "AES128-SHA", "ECDHE-RSA-AES128-SHA",
                   "AES128-GCM-SHA256"):
        rc, out = s_client(t.port, "-tls1_2", "-cipher", cipher)
        assert rc != 0 and "Cipher is (NONE)" in out, (cipher, out[-1500:])
    for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"):
        rc, out = s_client(t.port, "-tls1_2", "-cipher", cipher)
        assert rc == 0 and f"Cipher is {cipher}" in out, (cipher, out[-1500:])
    # smtps: every version but TLS 1.2 (a hole in the middle of the range)
    kind, _ = probe_suites(t.host, smtps, [GOOD_SUITE], 0x0303, starttls=False)
    assert kind in ("alert", "closed"), "TLS 1.2 was excluded by !TLSv1.2"
    rc, out = s_client(smtps, "-tls1_3", starttls=False, send=b"QUIT\r\n")
    assert rc == 0 and "New, TLSv1.3" in out, out[-1500:]


# ---------------------------------------------------------------- client certificates


def test_no_certificate_request_by_default(main):
    rc, out = s_client(main.port, "-msg")
    assert rc == 0, out[-1500:]
    assert "Handshake [length" in out and "ServerHello" in out, out[:3000]
    assert "CertificateRequest" not in out
    assert "No client certificate CA names sent" in out, out


def test_certificate_request_with_ca_names(ccert, pki):
    rc, out = s_client(ccert.port, "-msg")
    assert rc == 0, out[-1500:]
    assert "CertificateRequest" in out, out[:4000]
    m = re.search(r"Acceptable client certificate CA names\n(.*?)\n", out)
    assert m and "Tern Test CA" in m.group(1), out


@pytest.mark.parametrize("who,verify", [("client", "OK"), ("revoked", "FAIL"),
                                        ("rogue", "FAIL"), (None, "NO")])
def test_client_certificate_verification_logged(ccert, pki, who, verify):
    since = log_len(ccert)
    cert = (pki.path(f"{who}.pem"), pki.path(f"{who}.key")) if who else None
    with TlsSmtp(ccert.host, ccert.port, client_context(cert=cert)) as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        c.cmd("QUIT")
    disconnect_line(ccert, since)
    text = "\n".join(new_lines(ccert, since))
    assert re.search(rf"STARTTLS=server, relay=unknown\[127\.0\.0\.1\], version=TLSv1\.3, "
                     rf"verify={verify}, cipher=\S+, bits=\d+/\d+", text), text
    trust = {"OK": "Trusted", "FAIL": "Untrusted", "NO": "Anonymous"}[verify]
    assert f"{trust} TLS connection established from unknown[127.0.0.1]" in text, text
    if who == "revoked":
        assert "reason=certificate revoked" in text, text
    if who == "client":
        assert f"fingerprint=sha256:{pki.fingerprint('client.pem')}, verify=OK" in text, text


def test_req_ccert_refuses_handshake_without_cert(ccert, pki):
    # smtps.smtpd_tls_req_ccert = yes
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError)):
        with TlsSmtp(ccert.host, ccert.smtps_port, smtps=True) as c:
            c.reply()  # TLS 1.3: the refusal arrives after the client's Finished
    for bad in ("revoked", "rogue"):
        with pytest.raises((ssl.SSLError, ConnectionError, EOFError)):
            ctx = client_context(cert=(pki.path(f"{bad}.pem"), pki.path(f"{bad}.key")))
            with TlsSmtp(ccert.host, ccert.smtps_port, ctx, smtps=True) as c:
                c.reply()
    ctx = client_context(cert=(pki.path("client.pem"), pki.path("client.key")))
    with TlsSmtp(ccert.host, ccert.smtps_port, ctx, smtps=True) as c:
        assert c.reply()[0].startswith("220 ")
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
    ccert.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]: .*peer did not return a "
                   r"certificate", 5)


def test_ticket_of_one_listener_not_resumed_on_another(ccert):
    """Every listener derives the same ticket keys, but a session of the
    smtpd listener (no client certificate) must not resume on smtps, which
    requires one (the session id context differs)."""
    ctx = client_context()
    with TlsSmtp(ccert.host, ccert.port, ctx) as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        session = c.sock.session
    assert session is not None and session.has_ticket
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|certificate required"):
        with TlsSmtp(ccert.host, ccert.smtps_port, ctx, smtps=True, session=session) as c:
            c.reply()
    # the same session resumes on its own listener
    with TlsSmtp(ccert.host, ccert.port, ctx) as c:
        assert c.reply()[0].startswith("220")
        c.cmd("EHLO client.example")
        assert c.cmd("STARTTLS") == [READY]
        c.wrap(session)
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.sock.session_reused


@pytest.mark.parametrize("who,allowed", [("client", True), (None, False), ("revoked", False),
                                         ("rogue", False)])
def test_relay_by_client_certificate(ccert, pki, sink, who, allowed):
    """relay_clientcerts + the default smtpd_relay_restrictions, from a
    client outside mynetworks (127.0.0.5; mynetworks = 127.0.0.1/32)."""
    cert = (pki.path(f"{who}.pem"), pki.path(f"{who}.key")) if who else None
    subject = f"relay-by-cert-{who}-{time.time()}"
    with TlsSmtp(ccert.host, ccert.port, client_context(cert=cert), source="127.0.0.5") as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        r = c.cmd("RCPT TO:<someone@elsewhere.test>")
        if not allowed:
            assert r[0].startswith(("554 5.7.1 ", "550 5.7.1 ")), r
            assert "Relay access denied" in r[0], r
            return
        assert r[0].startswith("250"), r
        assert c.cmd("DATA")[0].startswith("354")
        c.sock.sendall(make_message(subject=subject, to="someone@elsewhere.test") + b".\r\n")
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued as"), "message refused"
        c.cmd("QUIT")
    sink.wait_for(f"Subject: {subject}\r\n".encode(), timeout=20)


# ---------------------------------------------------------------- SMTPS and submission


def test_smtps_listener(main):
    with TlsSmtp(main.host, main.smtps_port, smtps=True) as c:
        greeting = c.reply()
        assert greeting[0].startswith("220 tern.test ESMTP"), greeting
        assert c.sock.version() == "TLSv1.3"
        ehlo = c.cmd("EHLO client.example")
        assert ehlo[-1].startswith("250 ") and "STARTTLS" not in ehlo_keywords(ehlo)
        assert c.cmd("STARTTLS")[0].startswith("503"), "STARTTLS inside SMTPS"
        assert c.cmd("MAIL FROM:<a@example.test>") == ["530 5.7.0 Authentication required"]
    main.wait_log(r"connect from unknown\[127\.0\.0\.1\] to listener smtps")


def test_smtps_plaintext_client_gets_nothing(main):
    since = log_len(main)
    with socket.create_connection((main.host, main.smtps_port), 5) as s:
        s.sendall(b"EHLO client.example\r\n")
        s.settimeout(5)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        assert b"220" not in got and b"250" not in got, got
    line = disconnect_line(main, since)
    assert "commands=0" in line
    text = "\n".join(new_lines(main, since))
    assert "SSL_accept error from unknown[127.0.0.1]" in text, text


def test_submission_requires_starttls(main):
    with TlsSmtp(main.host, main.submission_port) as c:
        assert c.reply()[0].startswith("220 ")
        ehlo = c.cmd("EHLO client.example")
        assert "STARTTLS" in ehlo_keywords(ehlo)
        assert c.cmd("MAIL FROM:<a@example.test>") == [
            "530 5.7.0 Must issue a STARTTLS command first"]
        assert c.cmd("RCPT TO:<b@example.test>")[0].startswith("530 5.7.0 Must issue a STARTTLS")
        assert c.cmd("STARTTLS") == [READY]
        c.wrap()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.test>") == ["530 5.7.0 Authentication required"]


def test_smtps_without_certificate(res):
    port = free_port()
    t = res.tern(smtps_listen=f"127.0.0.1:{port}")
    t.wait_log(r"listener smtps: SMTPS needs smtpd_tls_cert_file and smtpd_tls_key_file", 5)
    with socket.create_connection((t.host, port), 5) as s:
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    t.wait_log(r"SMTPS connection from unknown\[127\.0\.0\.1\] closed: TLS is not available", 5)


def test_large_pipelined_message_over_tls(main, sink):
    subject = f"big-over-tls-{time.time()}"
    body = ("y" * 998 + "\r\n") * 5000  # 5 MB
    with TlsSmtp(main.host, main.port) as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        c.sock.sendall(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@sink.test>\r\nDATA\r\n")
        assert [c.reply()[0][:3] for _ in range(3)] == ["250", "250", "354"]
        c.sock.sendall(make_message(subject=subject, body=body) + b".\r\n")
        assert c.reply(timeout=30)[0].startswith("250 2.0.0 Ok: queued as")
        assert c.cmd("QUIT")[0].startswith("221")
    msg = sink.wait_for(f"Subject: {subject}\r\n".encode(), timeout=30)[0]
    assert msg.body() == body.encode()


# ---------------------------------------------------------------- STARTTLS injection


def test_starttls_injection_same_write(main):
    """CVE-2011-0411: commands in the same packet as STARTTLS are discarded."""
    since = log_len(main)
    with TlsSmtp(main.host, main.port) as c:
        assert c.reply()[0].startswith("220")
        c.cmd("EHLO client.example")
        c.sock.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<inject@example.test>\r\n")
        assert c.reply() == [READY]
        assert not c.buf, bytes(c.buf)
        c.wrap()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        r = c.cmd("RCPT TO:<x@sink.test>")
        assert r[0].startswith("503 5.0.0 Need MAIL"), f"injected MAIL executed: {r}"
        c.cmd("QUIT")
    line = disconnect_line(main, since)
    assert "starttls=1" in line and "rset=" not in line and "mail=" not in line, line
    assert "ehlo=2 starttls=1 rcpt=0/1 quit=1" in line, line


def test_starttls_injection_split_write(main):
    """A command sent after the 220 but before the ClientHello is never run:
    it is read as the first TLS record, and the handshake fails."""
    since = log_len(main)
    raw = socket.create_connection((main.host, main.port), 10)
    buf = bytearray()
    read_reply(raw, buf)
    raw.sendall(b"EHLO client.example\r\n")
    read_reply(raw, buf)
    raw.sendall(b"STARTTLS\r\n")
    assert read_reply(raw, buf) == [READY]
    raw.sendall(b"MAIL FROM:<inject@example.test>\r\n")
    time.sleep(0.2)
    executed = None
    try:
        t = client_context().wrap_socket(raw, server_hostname=SERVER_CN)
        t.sendall(b"EHLO client.example\r\n")
        read_reply(t, bytearray())
        t.sendall(b"RCPT TO:<x@sink.test>\r\n")
        executed = read_reply(t, bytearray())
    except (ssl.SSLError, ConnectionError, EOFError):
        pass
    finally:
        raw.close()
    assert executed is None or executed[0].startswith("503"), executed
    line = disconnect_line(main, since)
    assert "mail=" not in line, line
    assert "ehlo=1 starttls=1 commands=2" in line, line
    assert any("SSL_accept error" in l and "wrong version number" in l
               for l in new_lines(main, since)), new_lines(main, since)


# ---------------------------------------------------------------- robustness


def full_transaction(t, subject: str) -> float:
    """One plaintext mail transaction; its duration in seconds."""
    start = time.monotonic()
    t.send(make_message(subject=subject))
    return time.monotonic() - start


def test_bad_handshakes_cost_only_their_session(ccert, sink):
    """One worker: a garbage ClientHello, a client that hangs up during the
    handshake and a half-open handshake; a parallel session meanwhile."""
    since = log_len(ccert)
    idle = TlsSmtp(ccert.host, ccert.port)
    idle.starttls()
    hung = []
    for kind in ("garbage", "hangup", "halfopen"):
        s = socket.create_connection((ccert.host, ccert.port), 10)
        buf = bytearray()
        read_reply(s, buf)
        s.sendall(b"EHLO client.example\r\nSTARTTLS\r\n")
        read_reply(s, buf)
        assert read_reply(s, buf) == [READY]
        if kind == "garbage":
            s.sendall(os.urandom(517))
        elif kind == "hangup":
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20))
            time.sleep(0.05)
            s.close()
            continue
        hung.append((kind, s))
    # a parallel session completes a whole transaction at once
    took = full_transaction(ccert, f"parallel-{time.time()}")
    assert took < 1.5, f"a parallel session took {took:.2f}s"
    # the garbage one is dropped at once; the half-open one at smtpd_timeout
    garbage, half = hung[0][1], hung[1][1]
    garbage.settimeout(2)
    try:
        answer = garbage.recv(4096)
        assert answer == b"" or answer[0] == 0x15, answer  # nothing, or a TLS alert
    except ConnectionResetError:
        pass
    t0 = time.monotonic()
    ccert.wait_log(r"timeout after STARTTLS from unknown\[127\.0\.0\.1\]", timeout=8)
    waited = time.monotonic() - t0
    half.settimeout(3)
    try:
        assert half.recv(4096) == b""
    except ConnectionResetError:
        pass
    for _, s in hung:
        s.close()
    # an idle session inside TLS: 421 at smtpd_timeout, then close_notify
    # (a clean end: recv returns b"" instead of raising SSLEOFError)
    assert idle.reply(timeout=2)[0] == "421 4.4.2 tern.test Error: timeout exceeded"
    idle.sock.settimeout(2)
    assert idle.sock.recv(100) == b""
    idle.close()
    text = "\n".join(new_lines(ccert, since))
    assert len(re.findall(r"SSL_accept error from unknown\[127\.0\.0\.1\]", text)) >= 2, text
    assert waited < 4.5, waited
    # and after all that, another transaction is as quick
    assert full_transaction(ccert, f"after-{time.time()}") < 1.5


# ---------------------------------------------------------------- resumption


def smtps_handshake(t, ctx, session=None):
    """One SMTPS session; (the SSLSession, pid of the worker, resumed?)."""
    since = log_len(t)
    with TlsSmtp(t.host, t.smtps_port, ctx, smtps=True, session=session) as c:
        assert c.reply()[0].startswith("220")
        assert c.cmd("QUIT")[0].startswith("221")
        sess, reused = c.sock.session, c.sock.session_reused
    m = wait_until(lambda: next((re.search(r"tern/smtpd\[(\d+)\]: \w+ TLS connection "
                                           r"established.*?(, resumed)?$", l)
                                 for l in new_lines(t, since)
                                 if "TLS connection established" in l), None), 5, "handshake")
    assert bool(m.group(2)) == reused
    return sess, int(m.group(1)), reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_session_resumption_across_workers(main, version):
    """Tickets made by one worker resume on the other (the workers derive the
    same ticket keys): the issuing worker is stopped (SIGSTOP) while the
    client reconnects, so the other worker must serve it."""
    ctx = client_context(maximum=version)
    session, issuer, resumed = smtps_handshake(main, ctx)
    assert not resumed and session is not None and session.has_ticket
    others = [p for p in main.service_pids("smtpd") if p != issuer]
    assert len(others) == 1, (issuer, main.service_pids("smtpd"))
    os.kill(issuer, signal.SIGSTOP)
    try:
        _, pid, resumed = smtps_handshake(main, ctx, session)
    finally:
        os.kill(issuer, signal.SIGCONT)
    assert pid == others[0] and resumed, (pid, others, resumed)


def test_ticket_secret_hidden_and_tickets_survive_reload(main):
    """The workers' ticket secret is gone from their environment; workers
    started by a reload resume the tickets of the old ones."""
    ctx = client_context()
    session, _, _ = smtps_handshake(main, ctx)
    old = main.service_pids("smtpd")
    for pid in old:
        env = Path(f"/proc/{pid}/environ").read_bytes()
        assert not re.search(rb"[0-9a-f]{64}", env), f"a secret in the environment of {pid}"
        # "PERIOD:HEX" passed, then wiped; the process title may since have
        # taken over the whole original environment area (lib/proctitle.c)
        assert not re.search(rb"TERN_TLS_TICKET_SECRET=[^x\0]", env), env
    assert main.tern("reload").returncode == 0
    new = wait_until(lambda: (lambda p: p if len(p) == 2 and not set(p) & set(old) else None)(
        main.service_pids("smtpd")), 10, "two new smtpd workers")
    _, pid, resumed = smtps_handshake(main, ctx, session)
    assert resumed and pid in new, (pid, new, resumed)


# ---------------------------------------------------------------- logging and headers


def test_log_lines_and_received_header(main, sink):
    since = log_len(main)
    subject = f"over-tls-{time.time()}"
    with TlsSmtp(main.host, main.port) as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<rcpt@sink.test>")[0].startswith("250")
        assert c.cmd("DATA")[0].startswith("354")
        c.sock.sendall(make_message(subject=subject) + b".\r\n")
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued as")
        cipher = c.sock.cipher()[0]
        c.cmd("QUIT")
    text = "\n".join(new_lines(main, since))
    assert re.search(r"tern/smtpd\[\d+\]: Anonymous TLS connection established from "
                     rf"unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher {cipher} \(256/256 bits\)$",
                     text, re.M), text
    assert (f"STARTTLS=server, relay=unknown[127.0.0.1], version=TLSv1.3, verify=NO, "
            f"cipher={cipher}, bits=256/256") in text, text
    msg = sink.wait_for(f"Subject: {subject}\r\n".encode())[0]
    received = msg.header("Received")
    assert f"(version=TLSv1.3 cipher={cipher} bits=256/256 verify=NO)" in received, received
    assert "with ESMTPS id" in received, received


# ---------------------------------------------------------------- keys


def test_key_root_only_and_smtpd_runs_as_mail_owner(main, pki):
    st = os.stat(pki.path("server.key"))
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    uid = pwd.getpwnam(main.params["mail_owner"]).pw_uid
    assert uid != 0
    pids = main.service_pids("smtpd")
    assert len(pids) == 2, pids
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        assert uids == [str(uid)] * 4, (pid, uids)
    rc, out = s_client(main.port)
    assert rc == 0 and "New, TLSv1.3" in out


def test_seed_1024_bit_key(res, pki):
    seed = dict(smtpd_tls_cert_file=pki.path("sendmail.pem"),
                smtpd_tls_key_file=pki.path("sendmail.key"))
    t = res.tern(**seed)
    t.wait_log(r"TLS is not available: .*sendmail\.pem: the key is too small for OpenSSL "
               r"security level 2.*tls_openssl_security_level = 1", 5)
    with SmtpConn(t.host, t.port) as c:
        c.greeting()
        assert "STARTTLS" not in ehlo_keywords(c.cmd("EHLO client.example"))
    t1 = res.tern(tls_openssl_security_level="1", **seed)
    rc, out = s_client(t1.port, "-cipher", "DEFAULT@SECLEVEL=1")
    assert rc == 0, out[-1500:]
    assert "Server public key is 1024 bit" in out
    assert re.search(r"^subject=CN\s*=\s*mx\.example\.test$", out, re.M)


def test_rsa_and_ecdsa_pairs_in_one_file(res, pki):
    t = res.tern(smtpd_tls_cert_file=pki.path("dual.pem"))
    for args, key in (
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "256 bit"),
        (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "2048 bit"),
        (["-tls1_3", "-sigalgs", "ECDSA+SHA256"], "256 bit"),
        (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "2048 bit"),
    ):
        rc, out = s_client(t.port, *args)
        assert rc == 0, (args, out[-1500:])
        assert f"Server public key is {key}" in out, (args, out[:3000])


# ---------------------------------------------------------------- scanner


def sslscan(port: int, starttls: bool, out: Path) -> ET.Element:
    argv = ["sslscan", "--no-colour", f"--xml={out}"]
    if starttls:
        argv.append("--starttls-smtp")
    rc, text = run_client(argv + [f"127.0.0.1:{port}"], timeout=60)
    assert rc == 0, text
    return ET.parse(out).getroot().find("ssltest")


@pytest.mark.parametrize("listener", ["starttls", "smtps"])
def test_sslscan(main, pki, listener):
    port = main.port if listener == "starttls" else main.smtps_port
    scan = sslscan(port, listener == "starttls", Path(pki.dir) / f"sslscan-{listener}.xml")
    protocols = {f"{p.get('type')}{p.get('version')}": p.get("enabled")
                 for p in scan.iter("protocol")}
    assert protocols == {"ssl2": "0", "ssl3": "0", "tls1.0": "0", "tls1.1": "0",
                         "tls1.2": "1", "tls1.3": "1"}, protocols
    ciphers = [c.get("cipher") for c in scan.iter("cipher")]
    assert "TLS_AES_256_GCM_SHA384" in ciphers and "ECDHE-RSA-AES256-GCM-SHA384" in ciphers
    weak = [c for c in ciphers
            if re.search(r"NULL|EXP|RC4|DES|ADH|AECDH|anon|MD5|PSK|SRP", c)]
    assert not weak, weak
    assert all(c.get("sslversion") in ("TLSv1.2", "TLSv1.3") for c in scan.iter("cipher"))
    assert all(c.get("strength") in ("strong", "acceptable") for c in scan.iter("cipher"))
    for hb in scan.iter("heartbleed"):
        assert hb.get("vulnerable") == "0", hb.attrib
    assert len(list(scan.iter("heartbleed"))) == 2
    reneg = scan.find("renegotiation")
    assert reneg is not None and reneg.get("supported") == "0", reneg.attrib
    comp = scan.find("compression")
    assert comp is None or comp.get("supported") == "0"
    cert = scan.find("certificates/certificate")
    assert cert.findtext("subject") == SERVER_CN
    assert cert.find("pk").get("bits") == "2048"


# ---------------------------------------------------------------- tern check


def test_tern_check_certificates_and_keys(res, pki, tmp_path):
    """tern check loads each TLS listener's files as smtpd does: a readable
    key, a key of another certificate, a too small key and an unreadable CRL
    are problems; a self-signed chain is a warning only."""
    t = res.tern(start=False, **tls_params(pki, smtps_listen=f"127.0.0.1:{free_port()}",
                                           smtpd_tls_CAfile=pki.path("ca.pem")))
    r = t.tern("check")
    assert r.returncode == 0, r.stdout + r.stderr
    # a chain that verifies against smtpd_tls_CAfile; the test certificates
    # live 30 days, so their expiry is near enough to be pointed out
    assert "does not verify" not in r.stdout, r.stdout
    assert "warning: listener smtpd: smtpd_tls_cert_file" in r.stdout
    assert "the certificate expires on" in r.stdout, r.stdout

    loose = tmp_path / "loose.key"
    loose.write_bytes(pki.path("server.key").read_bytes())
    os.chmod(loose, 0o644)
    t.conf_edit(smtpd_tls_key_file=str(loose))
    r = t.tern("check")
    assert r.returncode == 1
    assert f"mode 0644: a private key must not be readable by group or others; " \
           f"fix it with: chmod 600 {loose}" in r.stdout, r.stdout

    t.conf_edit(smtpd_tls_key_file=pki.path("ecdsa.key"))
    r = t.tern("check")
    assert r.returncode == 1 and "does not match the certificate" in r.stdout, r.stdout

    # a certificate file with its own key follows the key's rule
    both = tmp_path / "both.pem"
    both.write_bytes(pki.path("server.key").read_bytes() + pki.path("server.pem").read_bytes())
    os.chmod(both, 0o644)
    t.conf_edit(smtpd_tls_cert_file=str(both), smtpd_tls_key_file=pki.path("server.key"))
    r = t.tern("check")
    assert r.returncode == 1
    assert f"smtpd_tls_cert_file {both}: mode 0644" in r.stdout, r.stdout

    # an encrypted key is refused with a hint, never a passphrase prompt
    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", pki.path("server.key"), "-aes128", "-passout",
                    "pass:secret", "-out", str(enc)], check=True, capture_output=True)
    os.chmod(enc, 0o600)
    t.conf_edit(smtpd_tls_cert_file=pki.path("server.pem"), smtpd_tls_key_file=str(enc))
    r = subprocess.run([str(TERN), "-c", str(t.etc), "check"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "the private key is encrypted with a passphrase" in r.stdout, r.stdout

    t.conf_edit(smtpd_tls_cert_file=pki.path("sendmail.pem"),
                smtpd_tls_key_file=pki.path("sendmail.key"))
    r = t.tern("check")
    assert r.returncode == 1 and "tls_openssl_security_level = 1" in r.stdout, r.stdout
    t.conf_edit(tls_openssl_security_level="1")
    r = t.tern("check")
    assert r.returncode == 0, r.stdout
    assert "warning: listener smtpd: smtpd_tls_cert_file" in r.stdout
    assert "the certificate chain does not verify" in r.stdout, r.stdout

    t.conf_edit(smtpd_tls_crl_file=str(tmp_path / "missing.crl"))
    r = t.tern("check")
    assert r.returncode == 1 and "smtpd_tls_crl_file" in r.stdout, r.stdout


def test_tern_check_sasl(res, tmp_path):
    """A listener with AUTH whose SASL application offers no mechanism is a
    problem; a world-readable sasldb a warning."""
    sasl = tmp_path / "sasl"
    sasl.mkdir()
    db = sasl / "sasldb2"
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", "tern.test", "alice"],
                   input=b"secret-alice", check=True)
    os.chmod(db, 0o644)
    conf = sasl / "smtpd.conf"
    conf.write_text(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {db}\n"
                    "mech_list: PLAIN LOGIN\n")
    t = res.tern(start=False, cyrus_sasl_config_path=str(sasl), smtpd_sasl_auth_enable="yes")
    r = t.tern("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warning: {db} is readable by every user" in r.stdout, r.stdout
    conf.write_text("mech_list: NO-SUCH-MECH\n")
    r = t.tern("check")
    assert r.returncode == 1
    assert "listener smtpd: SMTP AUTH is enabled, but the SASL application smtpd offers no " \
           "mechanism" in r.stdout, r.stdout


def test_listeners_are_named_in_status_and_logs(main):
    r = main.tern("status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"listener smtpd: 127.0.0.1:{main.port}\n" in r.stdout, r.stdout
    assert f"listener submission: 127.0.0.1:{main.submission_port}\n" in r.stdout, r.stdout
    assert f"listener smtps: 127.0.0.1:{main.smtps_port}\n" in r.stdout, r.stdout
    with SmtpConn(main.host, main.submission_port) as c:
        assert c.greeting()[0].startswith("220 ")
        c.cmd("QUIT")
    main.wait_log(r"connect from unknown\[127\.0\.0\.1\] to listener submission$")
