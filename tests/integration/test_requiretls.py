"""REQUIRETLS (RFC 8689) and the AUTH= mailbox (RFC 4954 section 5) on the
receiving side, proved in the queue file: REQUIRETLS is offered only under
TLS (STARTTLS or the SMTPS wrapper) and refused without it, the flag, a
"TLS-Required: No" header and the AUTH= mailbox become 'A' records of the
queue file (the messages are held by a HOLD sender access entry so that the
file stays to be read); and `tern tlsrpt` reports the TLS-RPT (RFC 8460)
counts of data_directory/tlsrpt/.
"""

import base64
import datetime
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import pytest

from ternlib import SmtpConn, free_port, make_message, qfile_attrs, wait_until

REALM = "tern.test"
ALICE_PW = "Alice-pw-9Qx7"
HELD = "a@held.test"  # the HOLD entry keeps this sender's mail in hold/
NEEDS_TLS = "530 5.7.10 REQUIRETLS needs a TLS session"


# ---------------------------------------------------------------- helpers


def tls_wrap(c: SmtpConn) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.sock = ctx.wrap_socket(c.sock, server_hostname="tern.test")
    c.buf = b""


def session(t, port=None, tls=False, wrapped=False) -> SmtpConn:
    """A greeted, EHLO'd session; STARTTLS (and EHLO again) when tls."""
    c = SmtpConn(t.host, port or t.port)
    if wrapped:
        tls_wrap(c)
    assert c.greeting()[0].startswith("220 ")
    c.ehlo = c.cmd("EHLO client.test")
    if tls:
        assert c.cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        tls_wrap(c)
        c.ehlo = c.cmd("EHLO client.test")
    return c


def offers_requiretls(ehlo: List[str]) -> bool:
    return any(line[4:] == "REQUIRETLS" for line in ehlo)


def auth_alice(c: SmtpConn) -> None:
    token = base64.b64encode(f"\0alice\0{ALICE_PW}".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {token}") == ["235 2.7.0 Authentication successful"]


def held_attrs(site, c: SmtpConn, mail: str, headers=None) -> Dict[str, str]:
    """MAIL (as given), one recipient, DATA; the held queue file's attributes."""
    assert c.cmd(mail)[0].startswith("250 "), mail
    assert c.cmd("RCPT TO:<far@remote.test>")[0].startswith("250 ")
    reply = c.data(make_message(sender=HELD, headers=headers))
    assert reply[0].startswith("250 "), reply
    qid = reply[0].rsplit(" ", 1)[1]
    path = site.tern.queue / "hold" / qid
    wait_until(path.exists, 10, f"{qid} in hold/")
    return qfile_attrs(path)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site(mres):
    """TLS on smtpd, submission (smtpd_requiretls = no there) and smtps;
    AUTH with alice in a sasldb; mail from held.test is held."""
    base = Path(tempfile.mkdtemp(prefix="requiretls-", dir=str(mres.base)))
    os.chmod(base, 0o755)  # services drop to mail_owner
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tern.test", "-keyout", str(base / "key.pem"), "-out",
         str(base / "cert.pem")],
        check=True, capture_output=True,
    )
    os.chmod(base / "key.pem", 0o600)
    sasl = base / "sasl"
    sasl.mkdir()
    os.chmod(sasl, 0o755)
    db = sasl / "sasldb2"
    (sasl / "smtpd.conf").write_text(
        f"sasldb_path: {db}\npwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN\n")
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", REALM, "alice"],
                   input=ALICE_PW.encode(), check=True)
    shutil.chown(db, "root", "tern")
    os.chmod(db, 0o640)
    senders = base / "senders"
    senders.write_text("held.test HOLD\n")
    os.chmod(senders, 0o644)
    sub_port, smtps_port = free_port(), free_port()
    tern = mres.tern(
        smtpd_tls_cert_file=str(base / "cert.pem"),
        smtpd_tls_key_file=str(base / "key.pem"),
        smtpd_sasl_auth_enable="yes",
        cyrus_sasl_config_path=str(sasl),
        smtpd_sender_restrictions=f"check_sender_access texthash:{senders}",
        submission_listen=f"127.0.0.1:{sub_port}",
        smtps_listen=f"127.0.0.1:{smtps_port}",
        **{"submission.smtpd_requiretls": "no"},
    )
    yield SimpleNamespace(tern=tern, submission=sub_port, smtps=smtps_port)
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- the offer


def test_requiretls_is_offered_only_after_starttls(site):
    with session(site.tern) as c:
        assert not offers_requiretls(c.ehlo)
        assert any(line[4:] == "STARTTLS" for line in c.ehlo)
    with session(site.tern, tls=True) as c:
        assert offers_requiretls(c.ehlo)


def test_requiretls_is_offered_on_the_smtps_wrapper(site):
    with session(site.tern, port=site.smtps, wrapped=True) as c:
        assert offers_requiretls(c.ehlo)


def test_requiretls_without_tls_is_530_and_the_session_goes_on(site):
    with session(site.tern) as c:
        assert c.cmd(f"MAIL FROM:<{HELD}> REQUIRETLS") == [NEEDS_TLS]
        assert c.cmd(f"MAIL FROM:<{HELD}>")[0].startswith("250 ")


def test_requiretls_twice_is_501(site):
    with session(site.tern, tls=True) as c:
        assert c.cmd(f"MAIL FROM:<{HELD}> REQUIRETLS REQUIRETLS") == [
            "501 5.5.4 Duplicate REQUIRETLS parameter"]


def test_requiretls_turned_off_is_an_unknown_parameter(site):
    with session(site.tern, port=site.submission, tls=True) as c:
        assert not offers_requiretls(c.ehlo)
        auth_alice(c)  # submission wants it before MAIL
        assert c.cmd(f"MAIL FROM:<{HELD}> REQUIRETLS") == [
            "555 5.5.4 REQUIRETLS parameter unrecognized"]


# ---------------------------------------------------------------- the queue file


def test_requiretls_under_tls_is_kept_and_tls_required_is_ignored(site):
    with session(site.tern, tls=True) as c:
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}> REQUIRETLS",
                           headers={"TLS-Required": "No"})
    assert attrs["requiretls"] == "yes"
    assert "tls_required_no" not in attrs  # RFC 8689 section 4.1


def test_tls_required_no_header_is_kept_without_requiretls(site):
    with session(site.tern) as c:
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}>", headers={"TLS-Required": " no "})
    assert attrs["tls_required_no"] == "yes"
    assert "requiretls" not in attrs


def test_plain_message_has_neither_flag(site):
    with session(site.tern) as c:
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}>", headers={"TLS-Required": "maybe"})
    assert "tls_required_no" not in attrs and "requiretls" not in attrs


def test_auth_mailbox_of_an_authenticated_client_is_its_auth_parameter(site):
    with session(site.tern, tls=True) as c:
        auth_alice(c)
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}> AUTH=alice+2Bx@held.test")
    assert attrs["auth_mailbox"] == "alice+x@held.test"
    assert attrs["auth"] == "alice+x@held.test"


def test_auth_mailbox_of_an_authenticated_client_defaults_to_its_sender(site):
    with session(site.tern, tls=True) as c:
        auth_alice(c)
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}>")
    assert attrs["auth_mailbox"] == HELD


def test_auth_mailbox_of_an_unauthenticated_client_is_empty(site):
    with session(site.tern) as c:
        attrs = held_attrs(site, c, f"MAIL FROM:<{HELD}> AUTH=boss@held.test")
    assert attrs["auth_mailbox"] == "<>"
    assert "auth" not in attrs


# ---------------------------------------------------------------- tern tlsrpt


def test_tlsrpt_report(res):
    t = res.tern(start=False)
    r = t.tern("tlsrpt")
    assert (r.returncode, r.stdout) == (0, "tern tlsrpt: no TLS-RPT results recorded\n"), r.stderr
    records = [
        ("Example.COM", "sts", "success", "mx1.example.com"),
        ("example.com", "sts", "success", "mx2.example.com"),
        ("example.com", "sts", "certificate-host-mismatch", "mx1.example.com"),
        ("example.com", "sts", "certificate-host-mismatch", "mx1.example.com"),
        ("example.com", "sts", "starttls-not-supported", ""),
        ("b.example", "tlsa", "success", ""),
    ]
    for rec in records:
        r = t.tern("tlsrpt", "--record", *[x for x in rec if x])
        assert r.returncode == 0, r.stderr
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    r = t.tern("tlsrpt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{today}  b.example  tlsa  success=1 failure=0",
        f"{today}  example.com  sts  success=2 failure=3 (certificate-host-mismatch=2 "
        "mx=mx1.example.com, starttls-not-supported=1)",
    ]
    r = t.tern("tlsrpt", "-d", "1", "B.example")
    assert r.stdout.splitlines() == [f"{today}  b.example  tlsa  success=1 failure=0"]
    r = t.tern("tlsrpt", "nowhere.example")
    assert r.stdout == "tern tlsrpt: no TLS-RPT results recorded for nowhere.example\n"
    assert t.tern("tlsrpt", "-d", "0").returncode == 2
    assert t.tern("tlsrpt", "--record", "x.example", "sts", "certificate-revoked").returncode == 2
