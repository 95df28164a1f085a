"""STARTTLS in tern-smtp (issue 11) against real next hops on loopback:
opportunistic TLS used and logged, the security levels none / may /
encrypt / verify / secure and the policy map that overrides them, the
plaintext retry after a broken handshake under may (and none under encrypt),
the client certificate, bytes injected after the 220 to STARTTLS, connection
caching that keeps TLS, and session resumption.

The next hops are peerutil.TlsPeer (aiosmtpd) and peerutil.RawStarttlsPeer;
certificates come from tlsutil.make_pki (server.pem: CA-signed for
mx.example.test) and peerutil.make_self_signed; names resolve through a
dnsmasq (mx.example.test and other.example.test are 127.0.0.1).
"""

import pytest

from peerutil import (RawStarttlsPeer, TlsPeer, delivery_line, dsn_field, handshakes, raw_peer,
                      server_context, start_peer, table_dir, tls_dns, tls_field, tls_pki, write_table)
from ternlib import make_message

__all__ = ["tls_dns", "tls_pki"]  # module fixtures used by name

INJECT = b"250-evil\r\n250 injected\r\n"


# ---------------------------------------------------------------- helpers


def tls_peer(res, pki, cert: str = "server", **kw) -> TlsPeer:
    """A TlsPeer presenting pki's cert.pem/cert.key (cert=None: no STARTTLS)."""
    if cert is None:
        return start_peer(res, TlsPeer(**kw))
    return start_peer(res, TlsPeer(pki.path(f"{cert}.pem"), pki.path(f"{cert}.key"), **kw))


def client(res, pki, dns, nexthop: str, **params):
    """The sending tern: relayhost nexthop, the test DNS, the test CA."""
    return res.tern(relayhost=nexthop, dns_servers=f"127.0.0.1:{dns.port}",
                    smtp_tls_CAfile=pki.path("ca.pem"), **params)


def send(t, tag: str) -> str:
    return t.send(make_message(subject=tag, body=f"{tag}\r\n"))


def assert_deferred(t, qid: str, dsn: str, *needles: str) -> str:
    """qid's delivery line says deferred with dsn and every needle; the
    message is still queued."""
    line = delivery_line(t, qid, "deferred")
    assert dsn_field(line) == dsn, line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert t.queue_files(), "the deferred message left the queue"
    return line


# ---------------------------------------------------------------- opportunistic (may)


def test_opportunistic_tls_is_used_and_logged(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki)
    t = client(res, tls_pki, tls_dns, peer.hostport)
    qid = send(t, "may-trusted")
    (msg,) = peer.wait_for(b"Subject: may-trusted")
    assert msg.tls is not None and msg.tls.version == "TLSv1.3"
    assert msg.tls.sni is None  # an IP literal next hop: no SNI
    assert msg.tls.client_cert is None  # none configured
    line = delivery_line(t, qid)
    # CA-signed for mx.example.test, but the next hop is 127.0.0.1: Trusted
    assert tls_field(line) == "TLSv1.3/trusted", line
    assert f"relay=127.0.0.1[127.0.0.1]:{peer.port}" in line
    (hs,) = handshakes(t, peer.port)
    assert hs.group(1, 2, 3, 5) == ("Trusted", "127.0.0.1", "127.0.0.1", "TLSv1.3"), hs.group(0)
    assert hs.group(6) == msg.tls.cipher, hs.group(0)


def test_self_signed_peer_is_delivered_under_may_as_untrusted(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki, "selfsigned")
    t = client(res, tls_pki, tls_dns, f"[mx.example.test]:{peer.port}")
    qid = send(t, "may-selfsigned")
    (msg,) = peer.wait_for(b"Subject: may-selfsigned")
    assert msg.tls is not None
    assert msg.tls.sni == "mx.example.test"
    line = delivery_line(t, qid)
    assert tls_field(line) == "TLSv1.3/untrusted", line
    (hs,) = handshakes(t, peer.port)
    assert hs.group(1, 2, 3) == ("Untrusted", "mx.example.test", "127.0.0.1"), hs.group(0)


def test_level_none_never_sends_starttls(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_tls_security_level="none")
    qid = send(t, "level-none")
    (msg,) = peer.wait_for(b"Subject: level-none")
    assert msg.tls is None
    assert all(c.tls is None for c in peer.conns) and peer.sni_names == []
    assert tls_field(delivery_line(t, qid)) == "no"
    assert handshakes(t) == []


# ---------------------------------------------------------------- verify and secure


def test_verify_with_the_ca_and_a_matching_name_delivers(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki)
    t = client(res, tls_pki, tls_dns, f"[mx.example.test]:{peer.port}",
               smtp_tls_security_level="verify")
    qid = send(t, "verify-ok")
    (msg,) = peer.wait_for(b"Subject: verify-ok")
    assert msg.tls is not None and msg.tls.sni == "mx.example.test"
    assert tls_field(delivery_line(t, qid)) == "TLSv1.3/verified"
    (hs,) = handshakes(t, peer.port)
    assert hs.group(1, 2, 3) == ("Verified", "mx.example.test", "127.0.0.1"), hs.group(0)


@pytest.mark.parametrize("cert, name, reasons", [
    ("selfsigned", "mx.example.test", ("self-signed certificate", "self signed certificate")),
    ("server", "other.example.test", ("hostname mismatch",)),  # CA-signed for mx.example.test
], ids=["self-signed", "other-name"])
def test_verify_defers_a_certificate_that_does_not_verify(res, tls_pki, tls_dns, cert, name,
                                                          reasons):
    peer = tls_peer(res, tls_pki, cert)
    t = client(res, tls_pki, tls_dns, f"[{name}]:{peer.port}", smtp_tls_security_level="verify")
    qid = send(t, f"verify-{cert}")
    line = assert_deferred(
        t, qid, "4.7.5", f"certificate verification failed for {name}[127.0.0.1]:{peer.port}:")
    assert any(r in line for r in reasons), line
    assert peer.snapshot() == []
    assert all(c.mail_args == [] for c in peer.conns), "MAIL sent over an unverified connection"


def test_secure_with_policy_match_delivers_and_a_wrong_match_defers(res, tls_pki, tls_dns):
    good, bad = tls_peer(res, tls_pki), tls_peer(res, tls_pki)
    tables = table_dir(res)
    policy = write_table(tables / "tls_policy", [
        f"[127.0.0.1]:{good.port} secure match=mx.example.test",
        f"[127.0.0.1]:{bad.port} secure match=nomatch.example.test:.nomatch.test",
    ])
    transport = write_table(tables / "transport", [
        f"good.test smtp:[127.0.0.1]:{good.port}",
        f"bad.test smtp:[127.0.0.1]:{bad.port}",
    ])
    t = client(res, tls_pki, tls_dns, "", smtp_tls_policy_maps=policy, transport_maps=transport)
    q_good = t.send(make_message(subject="secure-good", to="u@good.test"), rcpts=("u@good.test",))
    q_bad = t.send(make_message(subject="secure-bad", to="u@bad.test"), rcpts=("u@bad.test",))
    good.wait_for(b"Subject: secure-good")
    assert tls_field(delivery_line(t, q_good)) == "TLSv1.3/verified"
    line = assert_deferred(
        t, q_bad, "4.7.5", f"certificate verification failed for 127.0.0.1[127.0.0.1]:{bad.port}:")
    assert "hostname mismatch" in line, line
    assert bad.snapshot() == []


# ---------------------------------------------------------------- encrypt and the policy map


def test_encrypt_defers_when_starttls_is_not_offered(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki, cert=None)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_tls_security_level="encrypt")
    qid = send(t, "encrypt-none")
    assert_deferred(t, qid, "4.7.4", "TLS is required, but was not offered by host")
    assert peer.conns, "tern never connected"
    assert peer.snapshot() == [] and all(c.mail_args == [] for c in peer.conns)


def test_policy_map_overrides_the_default_level(res, tls_pki, tls_dns):
    listed, unlisted = tls_peer(res, tls_pki), tls_peer(res, tls_pki)
    tables = table_dir(res)
    policy = write_table(tables / f"policy-{listed.port}",
                         [f"[127.0.0.1]:{listed.port} encrypt"])
    transport = write_table(tables / f"transport-{listed.port}", [
        f"listed.test smtp:[127.0.0.1]:{listed.port}",
        f"unlisted.test smtp:[127.0.0.1]:{unlisted.port}",
    ])
    t = client(res, tls_pki, tls_dns, "", smtp_tls_security_level="none",
               smtp_tls_policy_maps=policy, transport_maps=transport)
    q1 = t.send(make_message(subject="pol-listed", to="u@listed.test"), rcpts=("u@listed.test",))
    q2 = t.send(make_message(subject="pol-unlisted", to="u@unlisted.test"),
                rcpts=("u@unlisted.test",))
    (m1,) = listed.wait_for(b"Subject: pol-listed")
    (m2,) = unlisted.wait_for(b"Subject: pol-unlisted")
    assert m1.tls is not None and m2.tls is None
    assert tls_field(delivery_line(t, q1)).startswith("TLSv1.3/")
    assert tls_field(delivery_line(t, q2)) == "no"


@pytest.mark.parametrize("key", ["[mx.example.test]:{port}", "mx.example.test", ".example.test"])
def test_policy_map_keys_nexthop_host_and_parent_domain(res, tls_pki, tls_dns, key):
    peer = tls_peer(res, tls_pki, cert=None)  # no STARTTLS: only encrypt defers
    tables = table_dir(res)
    policy = write_table(tables / f"policy-key-{peer.port}",
                         [f"{key.format(port=peer.port)} encrypt"])
    t = client(res, tls_pki, tls_dns, f"[mx.example.test]:{peer.port}",
               smtp_tls_policy_maps=policy)
    qid = send(t, "policy-key")
    assert_deferred(t, qid, "4.7.4", "TLS is required, but was not offered by host")
    assert peer.snapshot() == []


# ---------------------------------------------------------------- broken handshakes


def test_may_retries_in_plaintext_after_a_failed_handshake(res, tls_pki, tls_dns):
    ctx = server_context(tls_pki.path("server.pem"), tls_pki.path("server.key"))
    peer = raw_peer(res, ctx, broken=1)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_connection_cache_time_limit="0")
    qid = send(t, "fallback")
    (msg,) = peer.wait_for(b"Subject: fallback")
    assert not msg.tls
    line = delivery_line(t, qid)
    assert tls_field(line) == "no", line
    t.wait_log(rf"{qid}: TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:{peer.port} failed "
               r"\([^\n]+\); trying again without TLS$")
    assert len(peer.sessions) == 2, [c.commands for c in peer.sessions]
    first, second = peer.sessions
    assert "<BROKEN>" in first.commands
    assert not any(c.upper().startswith("STARTTLS") for c in second.commands), second.commands
    assert "deferred" not in t.log()


def test_encrypt_never_retries_in_plaintext(res, tls_pki, tls_dns):
    ctx = server_context(tls_pki.path("server.pem"), tls_pki.path("server.key"))
    peer = raw_peer(res, ctx, broken=100)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_tls_security_level="encrypt")
    qid = send(t, "no-fallback")
    delivery_line(t, qid, "deferred")
    assert peer.messages == []
    for conn in peer.sessions:  # every connection tried TLS and sent no mail
        assert any(c.upper().startswith("STARTTLS") for c in conn.commands), conn.commands
        assert not any(c.upper().startswith("MAIL") for c in conn.commands), conn.commands
    assert "trying again without TLS" not in t.log()


def test_injected_bytes_after_the_220_are_discarded(res, tls_pki, tls_dns):
    ctx = server_context(tls_pki.path("server.pem"), tls_pki.path("server.key"))
    peer = raw_peer(res, ctx, inject=INJECT)
    t = client(res, tls_pki, tls_dns, peer.hostport)
    qid = send(t, "inject")
    (msg,) = peer.wait_for(b"Subject: inject")
    assert msg.tls
    line = delivery_line(t, qid)
    # the final reply is the server's real one, not a reply shifted by the injection
    assert RawStarttlsPeer.FINAL_REPLY in line, line
    assert tls_field(line).startswith("TLSv1.3/"), line
    (conn,) = peer.sessions
    assert conn.early_bytes == b"", "the client pipelined after STARTTLS"
    assert conn.after_tls()[:4] == ["EHLO", "MAIL", "RCPT", "DATA"], conn.commands
    assert "evil" not in t.log() and "injected" not in t.log()


# ---------------------------------------------------------------- certificates, reuse, resumption


def test_client_certificate_is_presented_when_asked(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki, client_ca=tls_pki.path("ca.pem"))
    t = client(res, tls_pki, tls_dns, peer.hostport,
               smtp_tls_cert_file=tls_pki.path("client.pem"),
               smtp_tls_key_file=tls_pki.path("client.key"))
    qid = send(t, "client-cert")
    (msg,) = peer.wait_for(b"Subject: client-cert")
    assert msg.tls.client_fingerprint == tls_pki.fingerprint("client.pem")
    assert msg.tls.client_subject == "client.example.test"
    assert tls_field(delivery_line(t, qid)).startswith("TLSv1.3/")


def test_cached_connection_keeps_its_tls(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_connection_cache_time_limit="30s")
    q1 = send(t, "cache-1")
    peer.wait_for(b"Subject: cache-1")
    l1 = delivery_line(t, q1)
    q2 = send(t, "cache-2")
    peer.wait_for(b"Subject: cache-2")
    l2 = delivery_line(t, q2)
    assert "conn_use=2" in l2, l2
    assert tls_field(l1) == tls_field(l2) == "TLSv1.3/trusted", (l1, l2)
    assert len(peer.conns) == 1 and peer.handshakes == 1
    assert all(m.tls is not None for m in peer.snapshot())
    assert len(handshakes(t, peer.port)) == 1


def test_tls_session_is_resumed_on_a_new_connection(res, tls_pki, tls_dns):
    peer = tls_peer(res, tls_pki)
    t = client(res, tls_pki, tls_dns, peer.hostport, smtp_connection_cache_time_limit="0")
    for tag in ("resume-1", "resume-2"):
        qid = send(t, tag)
        peer.wait_for(f"Subject: {tag}".encode())
        delivery_line(t, qid)
    assert [c.tls.resumed for c in peer.conns] == [False, True], peer.conns
