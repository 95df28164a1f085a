"""tern-smtp's remote tables (lib/table_proxy.h) from its event loop, served
by a socketmap server written here:
  (a) smtp_sasl_password_maps needing two rounds of lookups (the first key
      not found, the second found): AUTH goes on after each round, promptly;
  (b) smtp_tls_policy_maps is asked in the delivery's scope: its policy is
      applied, and the server down defers the mail with 4.3.0 -- never
      "no policy", never sent;
  (c) smtp_generic_maps with the server down defers the mail with 4.3.0:
      never sent unrewritten."""

import time

from peerutil import delivery_line, dsn_field, tls_dns, tls_pki  # noqa: F401 (fixtures)
from ternlib import free_port, make_message
from test_remote_async import Maps
from test_smtp_auth import ALICE_PW, auth_peer


def assert_deferred(t, qid, dsn, needle):
    line = delivery_line(t, qid, "deferred")
    assert dsn_field(line) == dsn, line
    assert needle in line, line
    assert "status=sent" not in t.log()


def test_sasl_credentials_found_in_the_second_round_authenticate_promptly(res, tls_pki, tls_dns):
    peer = auth_peer(res, tls_pki, require_auth=True, mechanisms=("PLAIN",))
    # the next hop [127.0.0.1]:port is not found: the host 127.0.0.1, asked
    # in a second round, has the password
    maps = Maps({("sasl", "127.0.0.1"): f"OK alice:{ALICE_PW}".encode()})
    t = res.tern(start=False, relayhost=peer.hostport, dns_servers=f"127.0.0.1:{tls_dns.port}",
                 smtp_tls_CAfile=tls_pki.path("ca.pem"), smtp_sasl_auth_enable="yes",
                 smtp_sasl_password_maps=maps.spec("sasl"))
    t.start()
    try:
        start = time.monotonic()
        t.send(make_message(subject="two-rounds"))
        (msg,) = peer.wait_for(b"Subject: two-rounds", timeout=15)
        assert msg.login == "alice"
        assert time.monotonic() - start < 10
        assert ("sasl", peer.hostport) in maps.requests and ("sasl", "127.0.0.1") in maps.requests
    finally:
        maps.close()


def test_a_remote_tls_policy_is_applied(res):
    sink = res.sink()  # no STARTTLS
    maps = Maps({("tlspolicy", sink.hostport): b"OK encrypt"})
    t = res.tern(start=False, relayhost=sink.hostport, smtp_tls_policy_maps=maps.spec("tlspolicy"))
    t.start()
    try:
        qid = t.send(make_message(subject="tls-remote"))
        assert_deferred(t, qid, "4.7.4", "TLS is required, but was not offered by host")
        assert not sink.matching(b"Subject: tls-remote")
    finally:
        maps.close()


def test_a_tls_policy_server_down_defers_with_4_3_0(res):
    sink = res.sink()
    spec = f"socketmap:inet:127.0.0.1:{free_port()}:tlspolicy"  # nothing listens there
    t = res.tern(relayhost=sink.hostport, smtp_tls_policy_maps=spec)
    qid = t.send(make_message(subject="tls-down"))
    assert_deferred(t, qid, "4.3.0", "smtp_tls_policy_maps lookup")
    assert not sink.matching(b"Subject: tls-down")


def test_a_generic_maps_server_down_defers_never_sends_unrewritten(res):
    sink = res.sink()
    spec = f"socketmap:inet:127.0.0.1:{free_port()}:generic"
    t = res.tern(relayhost=sink.hostport, smtp_generic_maps=spec)
    qid = t.send(make_message(subject="generic-down", sender="gen@example.test"),
                 sender="gen@example.test")
    assert_deferred(t, qid, "4.3.0", "smtp_generic_maps lookup failed")
    assert not sink.matching(b"Subject: generic-down")
