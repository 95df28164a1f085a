"""SMTP AUTH (RFC 4954, issue 9) through real Cyrus SASL 2 in tern-auth:
sasldb and saslauthd behind it, swaks and smtplib in front, the EHLO offer
before and after STARTTLS, every reply code, relaying once authenticated,
the submission and smtps listeners, reject_sender_login_mismatch, a hung
saslauthd that stalls nobody else, idle exchanges that cannot park tern-auth,
and no password in any log."""

import base64
import grp
import hashlib
import hmac
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ternlib import (REPLY_250_QUEUED, TERN, RuleSink, SmtpConn, free_port, make_message,
                     terminate, tool_env, wait_until)

OUTSIDER = "127.0.0.5"
REALM = "tern.test"  # myhostname: Cyrus' realm when smtpd_sasl_local_domain is empty
ALICE_PW = "Alice-pw-9Qx7"
BOB_PW = "Bob-pw-4Lm2"
SHADOW_USER = "ternsasltest"
SHADOW_PW = "Shadow-pw-8Zt3"
SHADOW_GROUP = "ternsaslgroup"
PASSWORDS = (ALICE_PW, BOB_PW, SHADOW_PW, "Wrong-pw-1Aa")
MECHS = "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 ANONYMOUS"  # ANONYMOUS: noanonymous must hide it
TEMPFAIL = "454 4.7.0 Temporary authentication failure"
AUTH_OK = "235 2.7.0 Authentication successful"


# ---------------------------------------------------------------- fixtures


def b64(data) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def plain(user: str, password: str, authzid: str = "") -> str:
    return b64(f"{authzid}\0{user}\0{password}")


def make_certificate(d: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tern.test", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    os.chmod(d / "key.pem", 0o600)


def make_sasl_dir(d: Path, lines, users=(), realm: str = REALM) -> Path:
    """d/smtpd.conf with lines, and d/sasldb2 (root:tern, 0640) with users
    in realm (Cyrus' realm is myhostname unless smtpd_sasl_local_domain)."""
    d.mkdir()
    os.chmod(d, 0o755)  # tern-auth runs as mail_owner
    db = d / "sasldb2"
    conf = [f"sasldb_path: {db}"] + list(lines)
    (d / "smtpd.conf").write_text("\n".join(conf) + "\n")
    for user, password in users:
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", realm, user],
                       input=password.encode(), check=True)
    if db.exists():
        shutil.chown(db, "root", "tern")
        os.chmod(db, 0o640)
    return d


def starttls(c: SmtpConn) -> None:
    assert c.cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.sock = ctx.wrap_socket(c.sock, server_hostname="tern.test")
    c.buf = b""


def ehlo_auth(c: SmtpConn):
    """The mechanisms EHLO offers, as a set; None without an AUTH line."""
    for line in c.cmd("EHLO client.test"):
        if line[4:].startswith("AUTH "):
            return set(line[9:].split())
    return None


def session(t, port=None, source=None, tls=False, wrapped=False) -> SmtpConn:
    """A greeted (and EHLO'd) raw session; STARTTLS first when tls."""
    c = SmtpConn(t.host, port or t.port, source=source)
    if wrapped:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock, server_hostname="tern.test")
    assert c.greeting()[0].startswith("220 ")
    c.cmd("EHLO client.test")
    if tls:
        starttls(c)
        c.cmd("EHLO client.test")
    return c


def swaks(t, *args, port=None, timeout=30):
    r = subprocess.run(
        ["swaks", "--server", t.host, "--port", str(port or t.port), "--helo", "client.test",
         "--timeout", "20", *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return r



class _Tree:
    """A directory removed with the module's other resources."""

    def __init__(self, path: Path):
        self.path = path

    def stop(self):
        shutil.rmtree(self.path, ignore_errors=True)


def shared_dir(mres, name: str) -> Path:
    """A directory that mail_owner can search (pytest's own tmp is root-only)."""
    d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=str(mres.base)))
    os.chmod(d, 0o755)
    mres.others.append(_Tree(d))
    return d


@pytest.fixture(scope="module")
def site(mres):
    """The main tern: sasldb users alice and bob, TLS, relay for
    authenticated clients only (mynetworks 127.0.0.1/32), submission with
    reject_sender_login_mismatch, smtps; a sink that defers 'defer' recipients."""
    base = shared_dir(mres, "auth")
    make_certificate(base)
    sasl = make_sasl_dir(
        base / "sasl",
        ["pwcheck_method: auxprop", "auxprop_plugin: sasldb", f"mech_list: {MECHS}"],
        [("alice", ALICE_PW), ("bob", BOB_PW)],
    )
    logins = base / "sender_logins"
    logins.write_text("alice@tern.test alice\nshared@tern.test alice, bob\n@bob.test bob\n")
    os.chmod(logins, 0o644)
    sink = RuleSink(rules=[("defer", "451 4.3.0 try later")])
    mres.sinks.append(sink)
    sink.start()
    sub_port, smtps_port = free_port(), free_port()
    params = {
        "relayhost": sink.hostport,
        "mynetworks": "127.0.0.1/32",
        "smtpd_sasl_auth_enable": "yes",
        "cyrus_sasl_config_path": str(sasl),
        "smtpd_sasl_authenticated_header": "yes",
        "smtpd_tls_cert_file": str(base / "cert.pem"),
        "smtpd_tls_key_file": str(base / "key.pem"),
        "submission_listen": f"127.0.0.1:{sub_port}",
        "smtps_listen": f"127.0.0.1:{smtps_port}",
        "smtpd_sender_login_maps": f"texthash:{logins}",
        "submission.smtpd_sender_restrictions": "reject_sender_login_mismatch",
    }
    tern = mres.tern(**params)
    return SimpleNamespace(tern=tern, sink=sink, sasl=sasl, base=base,
                           submission=sub_port, smtps=smtps_port)


# ---------------------------------------------------------------- the offer


def test_plaintext_mechanisms_are_offered_only_after_starttls(site):
    with session(site.tern) as c:
        assert ehlo_auth(c) == {"CRAM-MD5", "DIGEST-MD5"}
        starttls(c)
        assert ehlo_auth(c) == {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"}


def test_anonymous_and_unknown_mechanisms_are_refused_with_504(site):
    with session(site.tern) as c:
        assert c.cmd("AUTH ANONYMOUS") == ["504 5.3.3 AUTH mechanism ANONYMOUS not available"]
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            "504 5.3.3 AUTH mechanism PLAIN not available"]
        assert c.cmd("AUTH LOGIN") == ["504 5.3.3 AUTH mechanism LOGIN not available"]
        starttls(c)
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH XYZZY") == ["504 5.3.3 AUTH mechanism XYZZY not available"]
        assert c.cmd("AUTH ANONYMOUS") == ["504 5.3.3 AUTH mechanism ANONYMOUS not available"]


def test_auth_without_a_mechanism_or_before_ehlo(site):
    with SmtpConn(site.tern.host, site.tern.port) as c:
        c.greeting()
        assert c.cmd("AUTH CRAM-MD5") == ["503 5.5.1 Error: send EHLO first"]
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH") == ["501 5.5.4 Syntax: AUTH mechanism"]


# ---------------------------------------------------------------- mechanisms


def test_swaks_plain_after_starttls_relays_to_the_sink(site):
    t, sink = site.tern, site.sink
    r = swaks(t, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", ALICE_PW,
              "--li", OUTSIDER, "--from", "alice@tern.test", "--to", "far@remote.test",
              "--h-Subject", "swaks-plain-relay")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"~> AUTH PLAIN {plain('alice', ALICE_PW)}" in r.stdout
    assert f"<~  {AUTH_OK}" in r.stdout
    msg = sink.wait_for(b"Subject: swaks-plain-relay")[0]
    assert msg.rcpt_tos == ["far@remote.test"]
    received = msg.header("Received")
    assert "(Authenticated sender: alice)" in received, received
    assert "with ESMTPSA id" in received, received
    t.wait_log(r"client=unknown\[127\.0\.0\.5\], listener=smtpd, sasl_method=PLAIN, "
               r"sasl_username=alice$")
    t.wait_log(r"AUTH=server, relay=unknown\[127\.0\.0\.5\], authid=alice, mech=PLAIN, tls=yes$")


def test_relay_is_refused_before_auth_and_allowed_after(site):
    t, sink = site.tern, site.sink
    with session(t, source=OUTSIDER, tls=True) as c:
        assert c.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<far@remote.test>") == [
            "554 5.7.1 <far@remote.test>: Relay access denied"]
        assert c.cmd("RSET")[0].startswith("250 ")
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<far@remote.test>") == ["250 2.1.5 <far@remote.test>... Recipient ok"]
        final = c.data(make_message(subject="relay-after-auth", to="far@remote.test"))
        assert REPLY_250_QUEUED.match(final[0]), final
    assert sink.wait_for(b"Subject: relay-after-auth")[0].rcpt_tos == ["far@remote.test"]


def test_plain_without_initial_response(site):
    with session(site.tern, source=OUTSIDER, tls=True) as c:
        assert c.cmd("AUTH PLAIN") == ["334 "]
        assert c.cmd(plain("bob", BOB_PW)) == [AUTH_OK]
        assert c.cmd("AUTH PLAIN") == ["503 5.5.0 Already Authenticated"]


def test_empty_initial_response_is_a_response(site):
    # "=" is a zero-length initial response (RFC 4954), which PLAIN refuses
    with session(site.tern, tls=True) as c:
        assert c.cmd("AUTH PLAIN =") == [
            "535 5.7.8 Error: authentication failed: bad protocol / cancel"]
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]


def test_smtplib_login_mechanism(site):
    t = site.tern
    with smtplib.SMTP(t.host, t.port, timeout=20) as s:
        s.ehlo("client.test")
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("client.test")
        s.user, s.password = "alice", ALICE_PW
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert (code, text) == (235, b"2.7.0 Authentication successful")


def test_smtplib_cram_md5_without_tls(site):
    t = site.tern
    with smtplib.SMTP(t.host, t.port, timeout=20) as s:
        s.ehlo("client.test")
        s.user, s.password = "bob", BOB_PW
        code, _ = s.auth("CRAM-MD5", s.auth_cram_md5)
        assert code == 235
        s.mail("bob@bob.test")
        s.rcpt("root@tern.test")
        s.data(make_message(subject="cram-without-tls", to="root@tern.test"))
    t.wait_log(r"client=unknown\[127\.0\.0\.1\], listener=smtpd, sasl_method=CRAM-MD5, "
               r"sasl_username=bob$")


def test_swaks_cram_md5_without_tls(site):
    r = swaks(site.tern, "--auth", "CRAM-MD5", "--auth-user", "alice", "--auth-password", ALICE_PW,
              "--from", "alice@tern.test", "--to", "root@tern.test", "--quit-after", "AUTH")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-> AUTH CRAM-MD5" in r.stdout and f"<-  {AUTH_OK}" in r.stdout


def digest_md5_response(challenge: bytes, user: str, password: str) -> str:
    """RFC 2831's client response to a server challenge (qop=auth)."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.decode()))
    cnonce, uri, nc = "0a4f113b", "smtp/tern.test", "00000001"
    a1 = hashlib.md5(f"{user}:{fields['realm']}:{password}".encode()).digest()
    a1 += f":{fields['nonce']}:{cnonce}".encode()
    ha1 = hashlib.md5(a1).hexdigest()
    ha2 = hashlib.md5(f"AUTHENTICATE:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{fields['nonce']}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'username="{user}",realm="{fields["realm"]}",nonce="{fields["nonce"]}",'
            f'cnonce="{cnonce}",nc={nc},qop=auth,digest-uri="{uri}",response={resp},'
            f'charset=utf-8')


def test_digest_md5_takes_three_steps(site):
    with session(site.tern) as c:
        first = c.cmd("AUTH DIGEST-MD5")
        assert first[0].startswith("334 ") and len(first[0]) > 20, first
        second = c.cmd(b64(digest_md5_response(base64.b64decode(first[0][4:]), "bob", BOB_PW)))
        assert second[0].startswith("334 "), second
        assert base64.b64decode(second[0][4:]).startswith(b"rspauth=")
        assert c.cmd("") == [AUTH_OK]


# ---------------------------------------------------------------- refusals


def test_wrong_password_is_535_after_a_delay(site):
    t = site.tern
    with session(t, tls=True) as c:
        began = time.monotonic()
        r = c.cmd("AUTH PLAIN " + plain("alice", "Wrong-pw-1Aa"))
        assert r == ["535 5.7.8 Error: authentication failed: authentication failure"]
        assert time.monotonic() - began >= 0.9
        # an unknown user gets the same words: nothing says who exists
        assert c.cmd("AUTH PLAIN " + plain("nosuchuser", "Wrong-pw-1Aa")) == r
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
    t.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: "
               r"authentication failure$")


def test_wrong_login_password_is_logged_with_the_mechanism(site):
    t = site.tern
    with session(t, source=OUTSIDER, tls=True) as c:
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd(b64("bob")) == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64("Wrong-pw-1Aa")) == [
            "535 5.7.8 Error: authentication failed: authentication failure"]
    t.wait_log(r"warning: unknown\[127\.0\.0\.5\]: SASL LOGIN authentication failed: "
               r"authentication failure$")


def test_authzid_other_than_the_login_is_refused(site):
    with session(site.tern, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW, authzid="bob")) == [
            "535 5.7.8 Error: authentication failed: authentication failure"]
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW, authzid="alice")) == [AUTH_OK]


def test_cancel_and_bad_base64(site):
    with session(site.tern, tls=True) as c:
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd("*") == ["501 5.0.0 AUTH aborted"]
        assert c.cmd("AUTH PLAIN AGFs!WNl") == ["501 5.5.4 cannot decode AUTH parameter"]
        assert c.cmd("AUTH PLAIN YQ=") == ["501 5.5.4 cannot decode AUTH parameter"]
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd("bm90 YmFzZTY0") == ["501 5.5.4 cannot decode AUTH parameter"]
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]  # back to commands
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]


def test_auth_inside_a_transaction_is_refused(site):
    with session(site.tern, tls=True) as c:
        assert c.cmd("MAIL FROM:<x@tern.test>")[0].startswith("250 ")
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            "503 5.5.0 AUTH not permitted during a mail transaction"]


def test_overlong_response_line_ends_the_exchange(site):
    with session(site.tern, tls=True) as c:
        assert c.cmd("AUTH PLAIN") == ["334 "]
        assert c.cmd("QUFB" * 1000) == ["500 5.5.6 Authentication Exchange line is too long"]
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]


def test_pipelined_commands_after_plain_wait_for_the_verdict(site):
    with session(site.tern, source=OUTSIDER, tls=True) as c:
        c.send(f"AUTH PLAIN {plain('alice', ALICE_PW)}\r\nMAIL FROM:<alice@tern.test>\r\n"
               "RCPT TO:<far@remote.test>\r\n")
        assert c.read_reply() == [AUTH_OK]
        assert c.read_reply()[0].startswith("250 2.1.0")
        assert c.read_reply() == ["250 2.1.5 <far@remote.test>... Recipient ok"]


# ---------------------------------------------------------------- AUTH= on MAIL


def queue_file_attributes(t, qid: str) -> str:
    r = t.tern("queue", "show", qid)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_mail_auth_parameter_is_kept_only_for_an_authenticated_client(site):
    t = site.tern
    with session(t, tls=True) as c:
        assert c.cmd("MAIL FROM:<x@tern.test> AUTH=nobody+2Bauth@x.test")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<defer1@remote.test>")[0].startswith("250 ")
        anon = REPLY_250_QUEUED.match(c.data(make_message(subject="auth-param-anon"))[0]).group(1)
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<alice@tern.test> AUTH=alice+2Bsub@tern.test")[0].startswith("250")
        assert c.cmd("RCPT TO:<defer2@remote.test>")[0].startswith("250 ")
        authed = REPLY_250_QUEUED.match(c.data(make_message(subject="auth-param"))[0]).group(1)
        assert c.cmd("MAIL FROM:<alice@tern.test> AUTH=<>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<defer3@remote.test>")[0].startswith("250 ")
        empty = REPLY_250_QUEUED.match(c.data(make_message(subject="auth-empty"))[0]).group(1)
    t.wait_log(rf"{authed}: to=<defer2@remote.test>.*status=deferred")
    assert "attribute: auth=alice+sub@tern.test" in queue_file_attributes(t, authed)
    assert "attribute: auth=<>" in queue_file_attributes(t, empty)
    assert "attribute: auth=" not in queue_file_attributes(t, anon)


# ---------------------------------------------------------------- listeners


def test_submission_wants_starttls_then_auth(site):
    t = site.tern
    with session(t, port=site.submission) as c:
        assert ehlo_auth(c) is None  # nothing to offer before STARTTLS here
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            "530 5.7.0 Must issue a STARTTLS command first"]
        assert c.cmd("MAIL FROM:<alice@tern.test>") == [
            "530 5.7.0 Must issue a STARTTLS command first"]
        starttls(c)
        assert ehlo_auth(c) == {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"}
        assert c.cmd("MAIL FROM:<alice@tern.test>") == ["530 5.7.0 Authentication required"]
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<far@remote.test>")[0].startswith("250 ")
        final = c.data(make_message(subject="via-submission", to="far@remote.test"))
        assert REPLY_250_QUEUED.match(final[0]), final
    site.sink.wait_for(b"Subject: via-submission")
    t.wait_log(r"client=unknown\[127\.0\.0\.1\], listener=submission, sasl_method=PLAIN, "
               r"sasl_username=alice$")


def test_sender_login_mismatch_is_refused_on_submission(site):
    t = site.tern
    with session(t, port=site.submission, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
        for sender in ("bob@bob.test", "someone@else.test"):
            assert c.cmd(f"MAIL FROM:<{sender}>") == [
                f"553 5.7.1 <{sender}>: Sender address rejected: not owned by user alice"]
        assert c.cmd("MAIL FROM:<shared@tern.test>")[0].startswith("250 ")
        assert c.cmd("RSET")[0].startswith("250 ")
        assert c.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")
    with session(t, port=site.submission, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain("bob", BOB_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<anything@bob.test>")[0].startswith("250 ")  # @domain key
        assert c.cmd("RSET")[0].startswith("250 ")
        assert c.cmd("MAIL FROM:<alice@tern.test>") == [
            "553 5.7.1 <alice@tern.test>: Sender address rejected: not owned by user bob"]
    t.wait_log(r"NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 "
               r"<alice@tern\.test>: Sender address rejected: not owned by user bob")
    # the smtpd listener has no reject_sender_login_mismatch
    with session(t, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain("bob", BOB_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")


def test_smtps_with_swaks_auth_login(site):
    r = swaks(site.tern, "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "bob",
              "--auth-password", BOB_PW, "--from", "bob@bob.test", "--to", "far@remote.test",
              "--h-Subject", "via-smtps", port=site.smtps)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"<~  {AUTH_OK}" in r.stdout
    site.sink.wait_for(b"Subject: via-smtps")
    site.tern.wait_log(r"listener=smtps, sasl_method=LOGIN, sasl_username=bob$")


# ---------------------------------------------------------------- tools and files


def run_auth_test(t, user, password, *args):
    return subprocess.run([str(TERN), "-c", str(t.etc), "auth-test", *args, user],
                          input=password + "\n", capture_output=True, text=True, timeout=30,
                          env=tool_env())


def test_tern_auth_test_checks_a_password_as_tern_auth_does(site):
    t = site.tern
    ok = run_auth_test(t, "alice", ALICE_PW)
    assert (ok.returncode, ok.stdout) == (0, "ok: authenticated as alice\n"), ok.stderr
    bad = run_auth_test(t, "alice", "Wrong-pw-1Aa", "-l", "submission")
    assert bad.returncode == 1
    assert bad.stdout.startswith("failed: authentication failure"), bad.stdout
    for r in (ok, bad):
        assert not any(p in r.stdout + r.stderr for p in PASSWORDS)


def test_world_readable_sasldb_is_reported(site):
    t, db = site.tern, site.sasl / "sasldb2"
    os.chmod(db, 0o644)
    try:
        r = run_auth_test(t, "alice", ALICE_PW)
        assert r.returncode == 0
        assert f"{db} is readable by every user" in r.stderr, r.stderr
        before = t.log().count("is readable by every user")
        assert t.tern("reload").returncode == 0
        t.wait_log(rf"tern/auth\[\d+\]: warning: {re.escape(str(db))} is readable by every user")
        assert t.log().count("is readable by every user") > before
    finally:
        os.chmod(db, 0o640)
    with session(t, tls=True) as c:  # the reloaded tern-auth still answers
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]


def test_private_auth_socket_belongs_to_mail_owner(site):
    st = (site.tern.queue / "private" / "auth").stat()
    import pwd
    assert pwd.getpwuid(st.st_uid).pw_name == "tern"
    assert st.st_mode & 0o777 == 0o600
    assert site.tern.service_pids("auth"), "tern-auth is not running"
    for pid in site.tern.service_pids("auth"):
        assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam("tern").pw_uid


# ---------------------------------------------------------------- no AUTH, 538


def test_auth_is_not_offered_where_it_is_not_enabled(mres):
    t = mres.tern()
    with session(t) as c:
        assert ehlo_auth(c) is None
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            "503 5.5.1 Error: authentication not enabled"]


# ---------------------------------------------------------------- saslauthd


class Saslauthd:
    """A private saslauthd -a shadow on DIR/mux with a user of its own; DIR is
    0710 root:SHADOW_GROUP, a group given to mail_owner (Debian's
    /run/saslauthd is 0710 root:sasl and the advice is adduser tern sasl)."""

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir()
        subprocess.run(["groupdel", SHADOW_GROUP], capture_output=True)
        subprocess.run(["groupadd", SHADOW_GROUP], check=True)
        subprocess.run(["usermod", "-a", "-G", SHADOW_GROUP, "tern"], check=True)
        os.chown(d, 0, grp.getgrnam(SHADOW_GROUP).gr_gid)
        os.chmod(d, 0o710)
        subprocess.run(["userdel", SHADOW_USER], capture_output=True)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SHADOW_USER], check=True)
        subprocess.run(["chpasswd"], input=f"{SHADOW_USER}:{SHADOW_PW}\n".encode(), check=True)
        self.log = d / "saslauthd.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["saslauthd", "-a", "shadow", "-m", str(d), "-n", "1", "-d"],
            stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its exit signals its whole process group
        deadline = time.monotonic() + 10
        while not (d / "mux").exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)

    def stop(self):
        terminate(self.proc)
        self._log.close()
        subprocess.run(["userdel", SHADOW_USER], capture_output=True)
        subprocess.run(["groupdel", SHADOW_GROUP], capture_output=True)


@pytest.fixture(scope="module")
def shadow(mres, site):
    base = shared_dir(mres, "saslauthd")
    daemon = Saslauthd(base / "run")
    mres.others.append(daemon)
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: saslauthd",
                                         f"saslauthd_path: {base / 'run' / 'mux'}",
                                         "mech_list: PLAIN LOGIN"])
    t = mres.tern(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                  smtpd_tls_cert_file=str(site.base / "cert.pem"),
                  smtpd_tls_key_file=str(site.base / "key.pem"))
    return SimpleNamespace(tern=t, daemon=daemon)


def test_testsaslauthd_checks_the_shadow_user(shadow):
    mux = str(shadow.daemon.dir / "mux")
    ok = subprocess.run(["testsaslauthd", "-u", SHADOW_USER, "-p", SHADOW_PW, "-f", mux],
                        capture_output=True, text=True)
    assert ok.stdout.strip() == '0: OK "Success."', ok.stdout + ok.stderr
    bad = subprocess.run(["testsaslauthd", "-u", SHADOW_USER, "-p", "Wrong-pw-1Aa", "-f", mux],
                         capture_output=True, text=True)
    assert bad.stdout.strip() == '0: NO "authentication failed"', bad.stdout


def test_plain_through_saslauthd_and_shadow(shadow):
    t = shadow.tern
    with session(t, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain(SHADOW_USER, "Wrong-pw-1Aa")) == [
            "535 5.7.8 Error: authentication failed: authentication failure"]
        assert c.cmd("AUTH PLAIN " + plain(SHADOW_USER, SHADOW_PW)) == [AUTH_OK]
        assert c.cmd("MAIL FROM:<x@tern.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<root@tern.test>")[0].startswith("250 ")
        assert REPLY_250_QUEUED.match(c.data(make_message(subject="shadow"))[0])
    t.wait_log(rf"sasl_method=PLAIN, sasl_username={SHADOW_USER}$")
    assert f"auth success: [user={SHADOW_USER}]" in shadow.daemon.log.read_text()


def test_encryption_required_when_nothing_is_offered_before_tls(shadow):
    with session(shadow.tern) as c:
        assert ehlo_auth(c) is None
        assert c.cmd("AUTH PLAIN " + plain(SHADOW_USER, SHADOW_PW)) == [
            "538 5.7.11 Encryption required for requested authentication mechanism"]
        assert c.cmd("AUTH CRAM-MD5") == ["504 5.3.3 AUTH mechanism CRAM-MD5 not available"]
        starttls(c)
        assert ehlo_auth(c) == {"PLAIN", "LOGIN"}


# ---------------------------------------------------------------- a hung saslauthd


class HungServer:
    """A UNIX socket that accepts and never answers (a stuck saslauthd)."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o777)
        self.sock.listen(16)
        self.held = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def hung(mres):
    base = shared_dir(mres, "hung")
    server = HungServer(base / "mux")
    mres.others.append(server)
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: saslauthd",
                                         f"saslauthd_path: {base / 'mux'}",
                                         "auxprop_plugin: sasldb",
                                         "mech_list: PLAIN CRAM-MD5"], [("alice", ALICE_PW)])
    t = mres.tern(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                  smtpd_tls_auth_only="no", auth_time_limit="3s", smtpd_hard_error_limit="3")
    return SimpleNamespace(tern=t, server=server)


def cram_md5(c: SmtpConn, user: str, password: str):
    first = c.cmd("AUTH CRAM-MD5")
    assert first[0].startswith("334 "), first
    digest = hmac.new(password.encode(), base64.b64decode(first[0][4:]), "md5").hexdigest()
    return c.cmd(b64(f"{user} {digest}"))


def test_a_hung_saslauthd_stalls_only_its_own_exchange(hung):
    t = hung.tern
    first = session(t)
    try:
        first.send("AUTH PLAIN " + plain("alice", ALICE_PW) + "\r\n")
        time.sleep(0.5)  # tern-auth is now blocked reading from the hung server
        began = time.monotonic()
        with session(t) as second:
            assert cram_md5(second, "alice", ALICE_PW) == [AUTH_OK]
            assert second.cmd("MAIL FROM:<alice@tern.test>")[0].startswith("250 ")
        with session(t) as third:
            assert third.cmd("NOOP") == ["250 2.0.0 OK"]
        assert time.monotonic() - began < 2.0
        # the stuck check ends at auth_time_limit (3 s): 454, and the session goes on
        assert first.read_reply(timeout=15) == [TEMPFAIL]
        assert first.cmd("NOOP") == ["250 2.0.0 OK"]
    finally:
        first.close()
    t.wait_log(r"tern/auth\[\d+\]: warning: exchange process \d+ stopped: a SASL step took "
               r"longer than auth_time_limit \(3s\)")
    t.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: ")


def test_repeated_failures_end_the_session_with_421(hung):
    with session(hung.tern) as c:
        assert cram_md5(c, "alice", "Wrong-pw-1Aa")[0].startswith("535 5.7.8 ")
        assert cram_md5(c, "alice", "Wrong-pw-1Aa")[0].startswith("535 5.7.8 ")
        assert cram_md5(c, "alice", "Wrong-pw-1Aa")[0].startswith("535 5.7.8 ")
        assert c.read_reply() == ["421 4.7.0 tern.test Error: too many errors"]
        assert c.wait_closed(5)
    hung.tern.wait_log(r"too many errors after AUTH from unknown\[127\.0\.0\.1\]")


def test_unreachable_tern_auth_is_454(hung):
    t = hung.tern
    sock = t.queue / "private" / "auth"
    moved = sock.with_name("auth.moved")
    os.rename(sock, moved)
    try:
        with session(t) as c:
            assert c.cmd("AUTH CRAM-MD5") == [TEMPFAIL]
    finally:
        os.rename(moved, sock)
    t.wait_log(r"warning: cannot connect to private/auth: .*\(is tern-auth running\?\)")
    t.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL CRAM-MD5 authentication failed: "
               r"tern-auth is not reachable")


# ---------------------------------------------------------------- parked exchanges


@pytest.fixture(scope="module")
def parked(mres):
    """Two tern-auth processes, one second to answer a 334, one worker (the
    per-address limit is per worker)."""
    base = shared_dir(mres, "parked")
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: auxprop", "auxprop_plugin: sasldb",
                                         "mech_list: PLAIN LOGIN"], [("alice", ALICE_PW)])
    t = mres.tern(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                  smtpd_tls_auth_only="no", auth_process_limit="2", smtpd_workers="1",
                  smtpd_sasl_response_timeout="1s", smtpd_sasl_exchange_limit="2")
    return SimpleNamespace(tern=t)


def test_idle_auth_exchanges_do_not_lock_out_other_clients(parked):
    t = parked.tern
    idle = [session(t, source=ip) for ip in ("127.0.0.6", "127.0.0.7")]
    try:
        for c in idle:  # both tern-auth processes now wait on these clients
            assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        began = time.monotonic()
        with session(t) as third:
            assert third.cmd("AUTH PLAIN " + plain("alice", ALICE_PW), timeout=10) == [AUTH_OK]
        assert time.monotonic() - began < 2.0
        for ip in ("127.0.0.6", "127.0.0.7"):
            t.wait_log(rf"warning: unknown\[{re.escape(ip)}\]: SASL LOGIN authentication "
                       r"failed: no response to the challenge within "
                       r"smtpd_sasl_response_timeout \(1s\)")
        for c in idle:  # the late answer ends the exchange; the session goes on
            assert c.cmd(b64("alice")) == [TEMPFAIL]
            assert c.cmd("NOOP") == ["250 2.0.0 OK"]
    finally:
        for c in idle:
            c.close()


def test_one_address_gets_at_most_smtpd_sasl_exchange_limit_exchanges(parked):
    t = parked.tern
    src = "127.0.0.8"
    held = [session(t, source=src) for _ in range(2)]
    try:
        for c in held:
            assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        with session(t, source=src) as c:
            assert c.cmd("AUTH LOGIN") == [TEMPFAIL]
            t.wait_log(r"warning: unknown\[127\.0\.0\.8\]: SASL LOGIN authentication failed: "
                       r"too many AUTH exchanges in progress from this address "
                       r"\(smtpd_sasl_exchange_limit\)")
            # the held exchanges expire after 1 s and give their slots back
            for _ in held:
                t.wait_log(r"unknown\[127\.0\.0\.8\]: .*no response to the challenge")
            time.sleep(0.2)
            assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
    finally:
        for c in held:
            c.close()


def attr_message(*pairs) -> bytes:
    """One message of tern's IPC format (lib/attr.h)."""
    body = b""
    for name, value in pairs:
        value = value.encode() if isinstance(value, str) else value
        body += len(name).to_bytes(2, "big") + name.encode()
        body += len(value).to_bytes(4, "big") + value
    return len(body).to_bytes(4, "big") + body


class ChattyAuth:
    """A stand-in for tern-auth on private/auth that answers auth.start with
    a challenge, then sends a second reply nobody asked for."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        shutil.chown(path, "tern", "tern")
        os.chmod(path, 0o600)
        self.sock.listen(4)
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        conn.recv(65536)
        reply = ("proto", "auth.reply"), ("status", "continue")
        conn.sendall(attr_message(*reply, ("challenge", "first")))
        time.sleep(0.3)
        conn.sendall(attr_message(*reply, ("challenge", "unasked")))

    def stop(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_a_reply_nobody_asked_for_ends_the_exchange_with_454(parked):
    t = parked.tern
    sock = t.queue / "private" / "auth"
    moved = sock.with_name("auth.moved")
    os.rename(sock, moved)
    try:
        fake = ChattyAuth(sock)
        try:
            with session(t) as c:
                assert c.cmd("AUTH LOGIN") == ["334 " + b64("first")]
                # no response sent: the second reply is unsolicited
                assert c.read_reply(timeout=5) == [TEMPFAIL]
                assert c.cmd("NOOP") == ["250 2.0.0 OK"]
        finally:
            fake.stop()
            os.unlink(sock)
    finally:
        os.rename(moved, sock)
    t.wait_log(r"warning: tern-auth \(private/auth\): sent a reply nobody asked for")
    t.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed: "
               r"no answer from tern-auth")


# ---------------------------------------------------------------- secrets


def test_no_password_in_any_log(site, shadow, hung):
    # one more success and failure of each kind, then every log is searched
    with session(site.tern, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain("alice", "Wrong-pw-1Aa"))[0].startswith("535")
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd(b64("alice")) == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64(ALICE_PW)) == [AUTH_OK]
    with session(shadow.tern, tls=True) as c:
        assert c.cmd("AUTH PLAIN " + plain(SHADOW_USER, SHADOW_PW)) == [AUTH_OK]
    forms = set()
    for pw in PASSWORDS:
        forms |= {pw, b64(pw), b64(pw)[:-2] if b64(pw).endswith("==") else b64(pw)}
        for user in ("alice", "bob", SHADOW_USER, "nosuchuser"):
            forms |= {plain(user, pw), plain(user, pw, authzid="bob"),
                      plain(user, pw, authzid=user)}
    logs = []
    for t in (site.tern, shadow.tern, hung.tern):
        logs += [t.maillog, t.stderr_path]
    logs.append(shadow.daemon.log)
    searched = 0
    for path in logs:
        text = path.read_text(errors="replace")
        searched += len(text)
        for form in forms:
            assert form not in text, f"{form!r} in {path}"
    assert searched > 0 and "SASL PLAIN authentication failed" in site.tern.log()


def test_tern_auth_without_a_mechanism_smtpd_offers(mres):
    """smtpd computed its offer at start; a tern-auth restarted with a
    smaller mech_list answers 'nomech', and the client gets 504 naming the
    mechanism (the name once lived in freed memory: ASan catches a
    regression)."""
    base = shared_dir(mres, "nomech")
    make_certificate(base)
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: auxprop", "auxprop_plugin: sasldb",
                                         "mech_list: PLAIN LOGIN"], [("alice", ALICE_PW)])
    # one worker: its 220 proves it has computed its offer before the
    # config changes (a second worker might still be starting)
    t = mres.tern(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                  smtpd_tls_cert_file=str(base / "cert.pem"),
                  smtpd_tls_key_file=str(base / "key.pem"), smtpd_workers="1")
    (sasl / "smtpd.conf").write_text(f"sasldb_path: {sasl / 'sasldb2'}\n"
                                     "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                     "mech_list: PLAIN\n")
    old = t.service_pids("auth")
    assert old
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: t.service_pids("auth") and not set(t.service_pids("auth")) & set(old),
               15, "tern-auth restarted")
    with session(t, tls=True) as c:
        assert ehlo_auth(c) == {"PLAIN", "LOGIN"}
        assert c.cmd("AUTH LOGIN") == ["504 5.3.3 AUTH mechanism LOGIN not available"]
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [AUTH_OK]
