"""SMTP AUTH in tern-smtp (issue 11): credentials from
smtp_sasl_password_maps for a smart host, PLAIN and LOGIN after STARTTLS,
no plaintext mechanism without TLS (smtp_sasl_security_options), AUTH=<...>
on MAIL only after a successful AUTH, a 535 that defers (and the retry that
succeeds once the password is fixed), no password in any log, delay notice
or bounce, and a second tern as the TLS+AUTH next hop reached over verified
TLS.

The smart host is peerutil.TlsPeer (aiosmtpd, PLAIN and LOGIN, users in a
dict) or a tern with sasldb (as in test_auth.py); certificates from
tlsutil.make_pki; mx.example.test resolves through a dnsmasq to 127.0.0.1.
"""

import base64
import email
import email.policy
import smtplib
import ssl
import pytest

from peerutil import (TlsPeer, delivery_line, handshakes, start_peer, table_dir, tls_dns,
                      tls_field, tls_pki, write_table)
from test_auth import make_sasl_dir
from ternlib import make_message, wait_until

__all__ = ["tls_dns", "tls_pki"]  # module fixtures used by name

ALICE_PW = "Alice-smtp-pw-7Kq2"
WRONG_PW = "Wrong-smtp-pw-3Jd8"
SENDER = "sender@example.test"


# ---------------------------------------------------------------- helpers


def auth_peer(res, pki, users=None, **kw) -> TlsPeer:
    """A smart host with STARTTLS (server.pem) and AUTH PLAIN LOGIN for alice."""
    users = {"alice": ALICE_PW} if users is None else users
    return start_peer(res, TlsPeer(pki.path("server.pem"), pki.path("server.key"),
                                   users=users, **kw))


def sasl_client(res, pki, dns, nexthop: str, password: str = ALICE_PW, **params):
    """A tern relaying through nexthop with alice:password from a texthash map
    keyed by nexthop; the table's path is t.sasl_map."""
    path = table_dir(res) / "sasl_passwd"
    conf = dict(relayhost=nexthop, dns_servers=f"127.0.0.1:{dns.port}",
                smtp_tls_CAfile=pki.path("ca.pem"), smtp_sasl_auth_enable="yes",
                smtp_sasl_password_maps=write_table(path, [f"{nexthop} alice:{password}"]))
    conf.update(params)
    t = res.tern(start=False, **conf)
    t.sasl_map = path
    return t.start()


def send(t, tag: str, to: str = "rcpt@sink.test") -> str:
    return t.send(make_message(subject=tag, body=f"{tag}\r\n", sender=SENDER, to=to),
                  sender=SENDER, rcpts=(to,))


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def secret_forms(*passwords: str):
    """Every form a password could leak in: itself, base64, a PLAIN response."""
    forms = set()
    for pw in passwords:
        forms |= {pw, b64(pw), b64(pw).rstrip("="), b64(f"\0alice\0{pw}"),
                  b64(f"alice\0alice\0{pw}")}
    return forms


def assert_no_secret(texts, *passwords: str) -> None:
    """texts: {what: text}; no form of any password in any of them."""
    for what, text in texts.items():
        for form in secret_forms(*passwords):
            assert form not in text, f"{form!r} appears in {what}"


def instance_logs(t):
    return {str(t.maillog): t.log(), str(t.stderr_path): t.stderr_path.read_text(errors="replace")}


# ---------------------------------------------------------------- mechanisms


def test_auth_plain_to_a_smart_host_with_credentials_from_the_map(res, tls_pki, tls_dns):
    peer = auth_peer(res, tls_pki, require_auth=True, mechanisms=("PLAIN",))
    t = sasl_client(res, tls_pki, tls_dns, peer.hostport)
    qid = send(t, "auth-plain")
    (msg,) = peer.wait_for(b"Subject: auth-plain")
    assert msg.login == "alice"
    assert msg.tls is not None, "AUTH PLAIN went before STARTTLS"
    assert peer.auth_attempts == [("PLAIN", "alice", True)]
    # RFC 4954 5: AUTH= on MAIL after a successful AUTH; the submission was
    # not authenticated, so the submitter is unknown: <> (docs/smtpd.md)
    assert msg.mail_param("AUTH") == "<>", msg.mail_arg
    line = delivery_line(t, qid)
    assert tls_field(line).startswith("TLSv1.3/"), line
    assert_no_secret(instance_logs(t), ALICE_PW)


@pytest.mark.parametrize("mech_filter, offered", [("login", ("PLAIN", "LOGIN")), ("", ("LOGIN",))],
                         ids=["filtered", "only-offered"])
def test_auth_login(res, tls_pki, tls_dns, mech_filter, offered):
    peer = auth_peer(res, tls_pki, require_auth=True, mechanisms=offered)
    params = {"smtp_sasl_mechanism_filter": mech_filter} if mech_filter else {}
    t = sasl_client(res, tls_pki, tls_dns, peer.hostport, **params)
    qid = send(t, "auth-login")
    (msg,) = peer.wait_for(b"Subject: auth-login")
    assert peer.auth_attempts == [("LOGIN", "alice", True)]
    assert msg.login == "alice" and msg.mail_param("AUTH") == "<>", msg.mail_arg
    delivery_line(t, qid)
    assert_no_secret(instance_logs(t), ALICE_PW)


@pytest.mark.parametrize("options, expect_auth", [("", False), ("noanonymous", True)],
                         ids=["default-noplaintext", "plaintext-allowed"])
def test_plaintext_mechanisms_without_tls(res, tls_pki, tls_dns, options, expect_auth):
    # the peer has no STARTTLS and offers PLAIN in the clear
    peer = start_peer(res, TlsPeer(users={"alice": ALICE_PW}, auth_require_tls=False,
                                   mechanisms=("PLAIN",)))
    params = {"smtp_sasl_security_options": options} if options else {}
    t = sasl_client(res, tls_pki, tls_dns, peer.hostport, **params)
    qid = send(t, "auth-cleartext")
    if expect_auth:
        (msg,) = peer.wait_for(b"Subject: auth-cleartext")
        assert msg.tls is None
        assert tls_field(delivery_line(t, qid)) == "no"
        assert peer.auth_attempts == [("PLAIN", "alice", True)]
        assert msg.mail_param("AUTH") == "<>", msg.mail_arg
    else:
        # credentials exist but no mechanism may carry them in the clear: the
        # mail waits (as Postfix does) rather than going unauthenticated
        m = t.wait_log(rf"{qid}: to=<[^>]*>, .*dsn=4\.7\.0, status=deferred \((.*)\)")
        assert "leave no mechanism" in m.group(1), m.group(0)
        assert peer.auth_attempts == [], "a plaintext mechanism was used without TLS"
        assert not peer.messages, "the mail went without AUTH"


def test_no_auth_param_when_auth_is_off(res, tls_pki, tls_dns):
    peer = auth_peer(res, tls_pki)
    t = sasl_client(res, tls_pki, tls_dns, peer.hostport, smtp_sasl_auth_enable="no")
    qid = send(t, "auth-off")
    (msg,) = peer.wait_for(b"Subject: auth-off")
    assert peer.auth_attempts == [] and msg.login is None
    assert msg.mail_param("AUTH") is None, msg.mail_arg
    delivery_line(t, qid)


def test_auth_param_names_the_authenticated_submitter(res, tls_pki, tls_dns):
    # alice submits to tern with AUTH; tern relays with AUTH=<her sender>
    peer = auth_peer(res, tls_pki, require_auth=True, mechanisms=("PLAIN",))
    sasl = make_sasl_dir(table_dir(res) / "sasl",
                         ["pwcheck_method: auxprop", "auxprop_plugin: sasldb", "mech_list: PLAIN"],
                         [("alice", ALICE_PW)], realm="tern.test")
    t = sasl_client(res, tls_pki, tls_dns, peer.hostport, mynetworks="127.0.0.9/32",
                    smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                    smtpd_tls_cert_file=tls_pki.path("server.pem"),
                    smtpd_tls_key_file=tls_pki.path("server.key"))
    ctx = ssl.create_default_context(cafile=str(tls_pki.path("ca.pem")))
    ctx.check_hostname = False
    with smtplib.SMTP(t.host, t.port, timeout=10) as s:
        s.starttls(context=ctx)
        s.login("alice", ALICE_PW)
        s.sendmail("alice@example.test", ["far@remote.test"],
                   make_message(subject="auth-submitter", sender="alice@example.test",
                                to="far@remote.test"))
    (msg,) = peer.wait_for(b"Subject: auth-submitter")
    assert msg.login == "alice"
    # RFC 4954 5: AUTH=xtext of the mailbox, no angle brackets
    assert msg.mail_param("AUTH") == "alice@example.test", msg.mail_arg
    assert_no_secret(instance_logs(t), ALICE_PW)


# ---------------------------------------------------------------- 535


def notices(sink, to: str = SENDER):
    return [m for m in sink.snapshot() if m.mail_from == "" and to in m.rcpt_tos]


def split_routes(res, tls_pki, tls_dns, password: str, **params):
    """smart.test goes to an AUTH peer (requiring AUTH); everything else,
    notices to the sender included, to a plain sink.  Returns (t, peer, sink)."""
    peer = auth_peer(res, tls_pki, require_auth=True)
    sink = res.sink()
    tables = table_dir(res)
    transport = write_table(tables / "transport", [f"smart.test smtp:{peer.hostport}"])
    path = tables / "sasl_passwd"
    t = res.tern(start=False, relayhost=sink.hostport, transport_maps=transport,
                 dns_servers=f"127.0.0.1:{tls_dns.port}", smtp_tls_CAfile=tls_pki.path("ca.pem"),
                 smtp_sasl_auth_enable="yes",
                 smtp_sasl_password_maps=write_table(path, [f"{peer.hostport} alice:{password}"]),
                 **params)
    t.sasl_map = path
    return t.start(), peer, sink


def test_535_defers_and_the_retry_succeeds_after_the_password_is_fixed(res, tls_pki, tls_dns):
    t, peer, sink = split_routes(res, tls_pki, tls_dns, WRONG_PW, delay_warning_time="2s")
    qid = send(t, "auth-535", to="u@smart.test")
    line = delivery_line(t, qid, "deferred")
    assert "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535" in line, line
    assert peer.auth_attempts and all(a[1:] == ("alice", False) for a in peer.auth_attempts)
    assert peer.snapshot() == []
    # the delay notice says why, without the password
    wait_until(lambda: notices(sink), 30, "the delay notice")
    notice = notices(sink)[0]
    assert b"535" in notice.content, notice.content.decode(errors="replace")
    assert_no_secret({"the delay notice": notice.content.decode(errors="replace")}, WRONG_PW)
    # fixed: the table is read again on reload, the queue run delivers
    write_table(t.sasl_map, [f"{peer.hostport} alice:{ALICE_PW}"])
    r = t.tern("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    r = t.tern("queue", "flush")
    assert r.returncode == 0, r.stdout + r.stderr
    (msg,) = peer.wait_for(b"Subject: auth-535", timeout=30)
    assert msg.login == "alice"
    delivery_line(t, qid, "sent")
    t.wait_queue_empty()
    assert_no_secret(instance_logs(t), WRONG_PW, ALICE_PW)


def test_expired_535_bounce_holds_no_password(res, tls_pki, tls_dns):
    t, peer, sink = split_routes(res, tls_pki, tls_dns, WRONG_PW, maximal_queue_lifetime="3s",
                                 delay_warning_time="0")
    qid = send(t, "auth-expire", to="u@smart.test")
    t.wait_log(rf"{qid}: to=<u@smart\.test>, .*status=expired", timeout=40)
    wait_until(lambda: notices(sink), 20, "the bounce")
    bounce = notices(sink)[0]
    text = bounce.content.decode(errors="replace")
    assert "535" in text, text
    parsed = email.message_from_bytes(bounce.content, policy=email.policy.default)
    assert parsed["Subject"] == "Undelivered Mail Returned to Sender"
    assert_no_secret({"the bounce": text}, WRONG_PW)
    assert_no_secret(instance_logs(t), WRONG_PW)
    assert peer.snapshot() == []


# ---------------------------------------------------------------- tern to tern


@pytest.fixture
def sasl_tern(res, tls_pki):
    """A second tern as the next hop: STARTTLS with server.pem (CA-signed for
    mx.example.test), sasldb with alice, relaying for authenticated clients
    only (127.0.0.1 is outside mynetworks) to a sink."""
    sasl = make_sasl_dir(table_dir(res) / "sasl",
                         ["pwcheck_method: auxprop", "auxprop_plugin: sasldb",
                          "mech_list: PLAIN"],
                         [("alice", ALICE_PW)], realm="mx.example.test")
    sink = res.sink()
    hop = res.tern(name="hop", myhostname="mx.example.test", mydestination="mx.example.test",
                   mynetworks="127.0.0.9/32", relayhost=sink.hostport,
                   smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                   smtpd_sasl_authenticated_header="yes",
                   smtpd_tls_cert_file=tls_pki.path("server.pem"),
                   smtpd_tls_key_file=tls_pki.path("server.key"))
    hop.sink = sink
    return hop


def test_tern_to_tern_over_verified_tls_with_auth(res, tls_pki, tls_dns, sasl_tern):
    hop = sasl_tern
    nexthop = f"[mx.example.test]:{hop.port}"
    t = sasl_client(res, tls_pki, tls_dns, nexthop, smtp_tls_security_level="verify")
    qid = send(t, "tern-to-tern", to="far@remote.test")
    (msg,) = hop.sink.wait_for(b"Subject: tern-to-tern", timeout=30)
    assert msg.rcpt_tos == ["far@remote.test"]
    received = msg.header("Received")  # the hop's, the newest
    assert "(Authenticated sender: alice)" in received, received
    assert "ESMTPSA" in received, received
    line = delivery_line(t, qid)
    assert tls_field(line) == "TLSv1.3/verified", line
    assert f"relay=mx.example.test[127.0.0.1]:{hop.port}" in line, line
    (hs,) = handshakes(t, hop.port)
    assert hs.group(1, 2) == ("Verified", "mx.example.test"), hs.group(0)
    hop.wait_log(r"sasl_method=PLAIN, sasl_username=alice$")
    assert_no_secret(instance_logs(t), ALICE_PW)
    assert_no_secret(instance_logs(hop), ALICE_PW)
