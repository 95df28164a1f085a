"""smtpd's remote tables (lib/table_proxy.h) beyond the access checks of
test_remote_async.py:
  (a) relay_clientcerts on a socketmap server: a listed certificate relays;
      the server down is 451 4.3.0 at RCPT, never "Relay access denied";
  (b) a lookup not answered yet is no failure: a session whose access
      checks wait for the server logs no warning; the server down logs each
      failure once (the evaluation's final pass);
  (c) VRFY and EXPN outside a transaction forget their answers: many
      VRFYs of distinct domains keep the session's scope small."""

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from ternlib import free_port
from test_remote_async import Maps
from tlsutil import TlsSmtp, client_context, make_pki

OUTSIDE = "127.0.0.5"  # not in mynetworks


@pytest.fixture(scope="module")
def pki(it_base):
    d = Path(tempfile.mkdtemp(prefix="pki-", dir=str(it_base)))
    yield make_pki(d)
    shutil.rmtree(d, ignore_errors=True)


def ccert_tern(res, pki, clientcerts):
    return res.tern(smtpd_tls_cert_file=pki.path("server.pem"),
                    smtpd_tls_key_file=pki.path("server.key"), smtpd_tls_ask_ccert="yes",
                    smtpd_tls_CAfile=pki.path("ca.pem"), relay_clientcerts=clientcerts,
                    mynetworks="127.0.0.1/32", proxymap_lookup_timeout="2s")


def relay_with_certificate(t, pki):
    cert = (pki.path("client.pem"), pki.path("client.key"))
    with TlsSmtp(t.host, t.port, client_context(cert=cert), source=OUTSIDE) as c:
        c.starttls()
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        return c.cmd("RCPT TO:<someone@elsewhere.test>")[0]


def test_a_remote_relay_clientcerts_lists_the_certificate(res, pki):
    maps = Maps({("certs", pki.fingerprint("client.pem").lower()): b"OK ok"})
    try:
        t = ccert_tern(res, pki, maps.spec("certs"))
        reply = relay_with_certificate(t, pki)
        assert reply.startswith("250"), (reply, maps.requests)
        assert ("certs", pki.fingerprint("client.pem").lower()) in maps.requests
    finally:
        maps.close()


def test_relay_clientcerts_down_is_a_temporary_failure(res, pki):
    t = ccert_tern(res, pki, f"socketmap:inet:127.0.0.1:{free_port()}:certs")
    reply = relay_with_certificate(t, pki)
    assert reply.startswith("451 4.3.0"), reply
    assert "Relay access denied" not in t.log()


def access_tern(res, spec):
    return res.tern(mynetworks="127.0.0.1/32", relay_domains="example.net",
                    access_maps=f"{spec}:access",
                    smtpd_client_restrictions=f"check_client_access {spec}:client",
                    smtpd_sender_restrictions=f"check_sender_access {spec}:sender",
                    smtpd_recipient_restrictions=f"check_recipient_access {spec}:rcpt, "
                    "reject_unauth_destination",
                    proxymap_lookup_timeout="2s")


def session(t):
    with t.connect(source=OUTSIDE) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        mail = c.cmd("MAIL FROM:<a@example.test>")[0]
        rcpt = c.cmd("RCPT TO:<b@example.net>")[0]
        c.cmd("QUIT")
    return mail, rcpt


def warnings(t):
    """smtpd's warnings, but for the start-up probe's session (127.0.0.1)"""
    return [line for line in t.log().splitlines()
            if "tern/smtpd[" in line and "warning:" in line and "127.0.0.1" not in line]


def test_a_lookup_not_answered_yet_is_not_logged_as_a_failure(res):
    maps = Maps({})
    try:
        t = access_tern(res, f"socketmap:inet:127.0.0.1:{maps.port}")
        mail, rcpt = session(t)
        assert mail.startswith("250") and rcpt.startswith("250"), (mail, rcpt)
        assert {n for n, _ in maps.requests} >= {"access", "client", "sender", "rcpt"}
        t.wait_log(r"disconnect from unknown\[127\.0\.0\.5\]")
        assert warnings(t) == []
    finally:
        maps.close()


def test_a_failed_lookup_is_logged_once(res):
    t = access_tern(res, f"socketmap:inet:127.0.0.1:{free_port()}")
    mail, rcpt = session(t)
    # smtpd_delay_reject: the client restrictions fail at RCPT (451), and
    # the greet pause's GreetPause: lookup at the connection
    assert rcpt.startswith("451 4.3.0"), (mail, rcpt)
    t.wait_log(r"disconnect from unknown\[127\.0\.0\.5\]")
    found = warnings(t)
    assert len(found) == 2, found
    assert "GreetPause: lookup failed for 127.0.0.5" in found[0], found
    assert "access_maps: the access table cannot be read" in found[1], found


def mydestination_tern(res, maps):
    """mydestination on the socketmap server; tern-proxymap caches nothing,
    so every question smtpd's scope does not hold reaches the server"""
    return res.tern(mydestination=f"localhost, {maps.spec('mydest')}", proxymap_cache_ttl="0",
                    mynetworks="127.0.0.1/32")


@contextmanager
def greeted(t):
    with t.connect(source="127.0.0.1", timeout=60) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        yield c


def vrfy_all(c, domains):
    for domain in domains:
        assert c.cmd(f"VRFY u@{domain}")[0].startswith("252"), domain


def test_vrfy_outside_a_transaction_forgets_its_answers(res):
    maps = Maps({})
    try:
        t = mydestination_tern(res, maps)
        start = time.monotonic()
        with greeted(t) as c:
            vrfy_all(c, [f"d{i}.test" for i in range(300)] + ["d0.test"])
            assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
            assert c.cmd("RCPT TO:<b@elsewhere.test>")[0].startswith("250")
            c.cmd("QUIT")
        assert time.monotonic() - start < 20
        # d0.test asked again: the scope forgot it (tern-proxymap caches nothing)
        assert maps.requests.count(("mydest", "d0.test")) == 2, maps.requests[:5]
    finally:
        maps.close()


def test_a_full_scope_is_emptied_within_a_transaction(res):
    """VRFY after MAIL keeps the transaction's answers, up to
    SMTPD_TABLES_MAX_ANSWERS (1000): then the scope is emptied."""
    maps = Maps({})
    try:
        t = mydestination_tern(res, maps)
        with greeted(t) as c:
            assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
            vrfy_all(c, [f"d{i}.test" for i in range(1010)] + ["d1009.test", "d0.test"])
            assert c.cmd("RCPT TO:<b@elsewhere.test>")[0].startswith("250")
            c.cmd("QUIT")
        assert maps.requests.count(("mydest", "d1009.test")) == 1, "kept after the reset"
        assert maps.requests.count(("mydest", "d0.test")) == 2, "forgotten at the reset"
    finally:
        maps.close()
