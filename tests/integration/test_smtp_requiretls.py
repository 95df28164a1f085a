"""REQUIRETLS (RFC 8689) across two terns, end to end: a client gives tern
A a message with MAIL FROM:<...> REQUIRETLS over STARTTLS, A's tern-smtp
relays it to tern B only over TLS verified under a verify policy and only
to a B that offers REQUIRETLS; else the message bounces with 5.7.30 and the
bounce, itself a REQUIRETLS message (qmgr/notice.c), goes back to the
sender's domain, which is B too.  B holds what it receives (HOLD sender
entries for back.test and <>), so that the flag it kept and the bounces are
read from its queue files.  That A's smtpd refuses REQUIRETLS without TLS is
test_requiretls.py's.

A's transport_maps send
    verify.test  to [127.0.0.1]:P  B, verify match=mx.rt.test  delivered
    may.test     to [127.0.0.2]:P  B again, no policy: level may   5.7.30 bounce
    noreq.test   to [127.0.0.1]:Q  B2 (smtpd_requiretls = no), verify  5.7.30 bounce
    back.test    to [127.0.0.1]:P  B, verify (the sender's domain: the bounces)
"""

import email
import email.policy
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from ternlib import dot_stuff, free_port, make_message, qfile_attrs, qfile_records, wait_until
from tlspolicyutil import outcome, receiving_tern
from tlsutil import TlsSmtp, issue_server_cert, make_pki

SENDER = "s@back.test"
MX_NAME = "mx.rt.test"


def write_table(d: Path, name: str, text: str) -> str:
    path = d / name
    path.write_text(text)
    path.chmod(0o644)
    return f"texthash:{path}"


def start_b(mres, d: Path, cert, key, sink, listen, **params):
    """A receiving tern on the addresses of listen (one port) that holds
    mail from back.test and bounces."""
    t = receiving_tern(mres, cert, key, sink, start=False,
                       smtpd_sender_restrictions="check_sender_access "
                       + write_table(d, "senders", "back.test HOLD\n<> HOLD\n"), **params)
    t.port = int(listen[0].rsplit(":", 1)[1])
    t.conf_edit(smtpd_listen=", ".join(listen))
    return t.start()


@pytest.fixture(scope="module")
def site(mres, it_base):
    d = Path(tempfile.mkdtemp(prefix="smtp-requiretls-", dir=str(it_base)))
    d.chmod(0o755)
    pki = make_pki(d / "pki")
    cert, key = issue_server_cert(pki, "mx", [MX_NAME])
    sink = mres.sink()  # what B would relay: nothing, it holds all
    port = free_port("127.0.0.1", also=("127.0.0.2",))
    b = start_b(mres, d, cert, key, sink, [f"127.0.0.1:{port}", f"127.0.0.2:{port}"])
    b2 = start_b(mres, d, cert, key, sink, [f"127.0.0.1:{free_port()}"], smtpd_requiretls="no")
    transport = write_table(d, "transport", f"verify.test smtp:[127.0.0.1]:{b.port}\n"
                            f"may.test smtp:[127.0.0.2]:{b.port}\n"
                            f"noreq.test smtp:[127.0.0.1]:{b2.port}\n"
                            f"back.test smtp:[127.0.0.1]:{b.port}\n")
    policy = write_table(d, "tls_policy", f"[127.0.0.1]:{b.port} verify match={MX_NAME}\n"
                         f"[127.0.0.1]:{b2.port} verify match={MX_NAME}\n")
    a = mres.tern(name="sender", smtpd_tls_cert_file=pki.path("server.pem"),
                  smtpd_tls_key_file=pki.path("server.key"), transport_maps=transport,
                  smtp_tls_policy_maps=policy, smtp_tls_CAfile=pki.path("ca.pem"))
    yield SimpleNamespace(a=a, b=b, b2=b2, sink=sink)
    shutil.rmtree(d, ignore_errors=True)


def submit_requiretls(t, rcpt: str, tag: str, params: str = "") -> str:
    """MAIL FROM:<SENDER> REQUIRETLS [params] to t over STARTTLS; the queue ID."""
    with TlsSmtp(t.host, t.port) as c:
        c.starttls()
        assert "250-REQUIRETLS" in c.cmd("EHLO client.example")
        for line in (f"MAIL FROM:<{SENDER}> REQUIRETLS{params}", f"RCPT TO:<{rcpt}>"):
            assert c.cmd(line)[0].startswith("250 "), line
        assert c.cmd("DATA")[0].startswith("354")
        msg = make_message(to=rcpt, sender=SENDER, headers={"X-Test": tag})
        c.sock.sendall(dot_stuff(msg) + b"\r\n.\r\n")
        final = c.reply()
        assert final[0].startswith("250 "), final
        c.cmd("QUIT")
        return final[0].rsplit(" ", 1)[1]


def held(t, tag: str, sender: str = SENDER) -> Path:
    """The queue file of the one message from sender ("" for <>) in t's
    hold/ whose content has the header X-Test: tag."""
    hold, needle = t.queue / "hold", f"X-Test: {tag}".encode()

    def matches(path: Path) -> bool:
        records = qfile_records(path)
        return (b"S", sender.encode()) in records and any(
            rtype == b"M" and needle in value for rtype, value in records)

    def found():
        return [p for p in hold.iterdir() if matches(p)] if hold.is_dir() else []

    (path,) = wait_until(found, 30, f"a held message from <{sender}> with X-Test: {tag}")
    return path


def bounce_for(t, tag: str):
    """The bounce (from <>) of the message with tag that t holds: (the
    parsed message, its queue file attributes)."""
    path = held(t, tag, sender="")
    (content,) = [value for rtype, value in qfile_records(path) if rtype == b"M"]
    return email.message_from_bytes(content, policy=email.policy.default), qfile_attrs(path)


def report_fields(bounce):
    """The per-recipient fields of the bounce's message/delivery-status part."""
    report = bounce.get_payload()[1]
    assert report.get_content_type() == "message/delivery-status"
    return dict(report.get_payload()[1].items())


def assert_bounced_back(site, tag: str) -> None:
    """The 5.7.30 bounce of tag reached B as a REQUIRETLS message with the
    headers only (RFC 8689 section 5, even with RET=FULL)."""
    bounce, attrs = bounce_for(site.b, tag)
    fields = report_fields(bounce)
    assert fields["Status"] == "5.7.30" and fields["Action"] == "failed", fields
    assert bounce.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert attrs.get("requiretls") == "yes", attrs


def test_verified_tls_to_a_requiretls_server_delivers_with_requiretls(site):
    qid = submit_requiretls(site.a, "u@verify.test", "rt-verify")
    line = outcome(site.a, qid, "u@verify.test")
    assert "status=sent" in line and "tls=TLSv1.3/verified" in line, line
    assert qfile_attrs(held(site.b, "rt-verify"))["requiretls"] == "yes"


def test_unverified_tls_bounces_with_5_7_30(site):
    qid = submit_requiretls(site.a, "u@may.test", "rt-may", params=" RET=FULL")
    line = outcome(site.a, qid, "u@may.test")
    assert "status=bounced" in line and "dsn=5.7.30" in line, line
    assert "REQUIRETLS: no verified TLS connection to host 127.0.0.2[127.0.0.2]" in line, line
    assert_bounced_back(site, "rt-may")


def test_server_without_requiretls_bounces_with_5_7_30(site):
    qid = submit_requiretls(site.a, "u@noreq.test", "rt-noreq")
    line = outcome(site.a, qid, "u@noreq.test")
    assert "status=bounced" in line and "dsn=5.7.30" in line, line
    assert "tls=TLSv1.3/verified" in line, line
    assert "REQUIRETLS support required, but not offered by host" in line, line
    assert_bounced_back(site, "rt-noreq")
    assert not (site.b2.queue / "hold").exists() or not list((site.b2.queue / "hold").iterdir())


def test_message_without_requiretls_goes_over_unverified_tls(site):
    """The control: the same route as the 5.7.30 bounce takes plain mail."""
    qid = site.a.send(make_message(to="u@may.test", sender=SENDER, headers={"X-Test": "rt-plain"}),
                      sender=SENDER, rcpts=("u@may.test",))
    line = outcome(site.a, qid, "u@may.test")
    assert "status=sent" in line, line
    assert "requiretls" not in qfile_attrs(held(site.b, "rt-plain"))
