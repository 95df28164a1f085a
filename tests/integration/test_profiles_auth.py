"""The seed profiles that use TLS and SMTP AUTH, end to end on loopback
(SPEC §31): roaming users with AUTH and STARTTLS (PROF-05, seed 000), the
Slackware howto's TLS + SASL config (PROF-06, 001:111-179) and the
Entourage-compatible SMTPS set-up (PROF-07, 002:48-64).

Each profile's tern.conf is the seed's sendmail.mc translated setting by
setting; the comment on each one is the sendmail line it stands for.  Parts
tern cannot do yet are named in a comment where they would go and not
tested: the access map, blacklist_recipients, relay_based_on_MX, the DNSBLs,
delay_checks, outbound TLS (confCLIENT_CERT), the custom help file,
procmail as the local mailer, the redirect feature, connection rate
throttling.

127.0.0.5 is a roaming client outside mynetworks (127.0.0.1/32); a Sink
stands for the Internet.  The real ports 25, 465 and 587 are never used:
every listener is a free port on 127.0.0.1.  Certificates come from
tlsutil.make_pki, sasldb files from test_auth.make_sasl_dir.
"""

import email.utils
import grp
import os
import re
import subprocess
import time
from types import SimpleNamespace

import pytest

from ternlib import REPLY_250_QUEUED, free_port, make_message, wait_until
from test_auth import (AUTH_OK, b64, cram_md5, ehlo_auth, make_sasl_dir, run_auth_test, session,
                       shared_dir, starttls, swaks)
from test_tls import pki  # noqa: F401  (the module's certificates: a fixture)
from tlsutil import handshake_ok, s_client

ROAMING = "127.0.0.5"  # outside mynetworks
SASLDB_MECHS = ["pwcheck_method: auxprop", "auxprop_plugin: sasldb"]


# ---------------------------------------------------------------- helpers


def auth_login(c, user: str, password: str):
    """AUTH LOGIN in three steps on a raw session; the final reply."""
    assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
    assert c.cmd(b64(user)) == ["334 UGFzc3dvcmQ6"]
    return c.cmd(b64(password))


def relay_one(c, sender: str, rcpt: str, subject: str) -> str:
    """MAIL, RCPT, DATA on an open session; the queue ID."""
    assert c.cmd(f"MAIL FROM:<{sender}>")[0].startswith("250 ")
    assert c.cmd(f"RCPT TO:<{rcpt}>") == [f"250 2.1.5 <{rcpt}>... Recipient ok"]
    final = c.data(make_message(subject=subject, sender=sender, to=rcpt))
    m = REPLY_250_QUEUED.match(final[0])
    assert m, final
    return m.group(1)


def ehlo_keywords(c) -> list:
    """The EHLO keywords (first word of each line after the greeting line)."""
    lines = c.cmd("EHLO roaming.client.test")
    assert lines[-1].startswith("250 "), lines
    return [line[4:].split()[0] for line in lines[1:]]


def listening_ports(t) -> set:
    """The TCP ports on which a process of instance t listens (ss -ltnp)."""
    pids = set(t.pids())
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


def no_certificate_request(port: int, starttls: bool, *args: str) -> str:
    """openssl s_client -msg: the handshake completes, the server sent its
    Certificate and no CertificateRequest; returns the transcript."""
    rc, out = s_client(port, "-msg", *args, starttls=starttls)
    assert handshake_ok(out), out[-3000:]
    assert re.search(r"<<< TLS 1\.\d, Handshake \[length [0-9a-f]+\], Certificate\b", out), \
        out[:3000]
    assert "CertificateRequest" not in out, out[:4000]
    assert "Acceptable client certificate CA names" not in out
    return out


# ---------------------------------------------------------------- PROF-05


ROAMERS = "enchanter.real-time.test"  # enchanter.real-time.com (000:812)
ROAMERS_DOMAIN = "real-time.test"
ROAMER_PW = "Roamer-pw-5Hj1"


@pytest.fixture(scope="module")
def roamers(mres, pki):  # noqa: F811
    """PROF-05 (seed 000): a site whose roaming users relay with SMTP AUTH,
    over STARTTLS for LOGIN and PLAIN, without TLS for CRAM-MD5."""
    base = shared_dir(mres, "prof05")
    sasl = make_sasl_dir(base / "sasl", SASLDB_MECHS + [
        # define('confAUTH_MECHANISMS', 'LOGIN PLAIN DIGEST-MD5 CRAM-MD5')dn1 (000:548)
        "mech_list: LOGIN PLAIN DIGEST-MD5 CRAM-MD5",
    ], [("roamer", ROAMER_PW)], realm=ROAMERS)
    cw = base / "local-host-names"
    cw.write_text(f"{ROAMERS}\n{ROAMERS_DOMAIN}\nlocalhost\n")
    os.chmod(cw, 0o644)
    vt = base / "virtusertable"
    vt.write_text(f"webmaster@{ROAMERS_DOMAIN} root\n")
    os.chmod(vt, 0o644)
    sink = mres.sink()
    t = mres.tern(
        start=False,
        name="prof05",
        myhostname=ROAMERS,
        mydomain=ROAMERS_DOMAIN,
        mynetworks="127.0.0.1/32",
        relayhost=sink.hostport,
        # MASQUERADE_AS('real-time.com')dnl + FEATURE('masquerade_envelope')dnl
        masquerade_domains=ROAMERS_DOMAIN,
        masquerade_classes="envelope_sender, header_sender, header_recipient",
        local_header_rewrite_clients="permit",  # sendmail masquerades every message
        # FEATURE('virtusertable', 'hash -o /etc/mail/virtusertable')dnl
        virtual_alias_maps=f"optional:hash:{vt}",
        virtual_alias_domains="",
        # FEATURE(use_cw_file)dnl
        mydestination=str(cw),
        # FEATURE('access_db'), FEATURE('blacklist_recipients'),
        # FEATURE('relay_based_on_MX'), FEATURE(dnsbl, ...) x3, FEATURE('delay_checks')
        # (000:57-61, 318-328): the policy engine, not yet
        # define('CERT_DIR', 'MAIL_SETTINGS_DIR/certs') + define('confCACERT_PATH', 'CERT_DIR')
        smtpd_tls_CApath=pki.dir,
        # define('confSERVER_CERT', 'CERT_DIR/sendmail.crt'),
        # define('confSERVER_KEY', 'CERT_DIR/sendmail.key') -- made as in 000:476-479
        smtpd_tls_cert_file=pki.path("sendmail.pem"),
        smtpd_tls_key_file=pki.path("sendmail.key"),
        # ... whose "openssl genrsa ... 1024" key Debian's OpenSSL refuses at level 2
        tls_openssl_security_level="1",
        # define('confCLIENT_CERT'/'confCLIENT_KEY', 'CERT_DIR/sendmail.crt'/.key):
        # outbound TLS, not yet
        # define('confAUTH_OPTIONS', 'p')
        smtpd_sasl_auth_enable="yes",
        cyrus_sasl_config_path=sasl,
        smtpd_tls_auth_only="yes",
        # TRUST_AUTH_MECH('LOGIN PLAIN DIGEST-MD5 CRAM-MD5')dn1 -- the default
        # smtpd_relay_restrictions (permit_sasl_authenticated)
        # define('confPRIVACY_FLAGS', 'goaway')dn1 -- novrfy, need*helo; noexpn,
        # noverb: VERB refused; noetrn: smtpd_disable_etrn_command
        disable_vrfy_command="yes",
        smtpd_disable_etrn_command="yes",
        smtpd_helo_required="yes",
        # define('confSMTP_LOGIN_MSG', '$j server ready at $b')dn1
        smtpd_banner="$myhostname server ready at $b",
        # the custom helpfile (000:822-836): not yet
    )
    r = t.tern("map", f"hash:{vt}")
    assert r.returncode == 0, r.stderr
    t.start()
    return SimpleNamespace(tern=t, sink=sink)


def test_prof05_banner_and_goaway(roamers):
    t = roamers.tern
    # the $b in the banner, the 1024-bit key at security level 1: a valid config
    check = t.tern("check")
    assert check.returncode == 0 and "is valid" in check.stdout, check.stdout + check.stderr
    with t.connect(source=ROAMING) as c:
        banner = c.greeting()
        assert len(banner) == 1
        m = re.match(r"^220 (\S+) ESMTP server ready at (.+)$", banner[0])
        assert m, banner
        assert m.group(1) == ROAMERS
        when = email.utils.parsedate_to_datetime(m.group(2))
        assert abs(when.timestamp() - time.time()) < 300, m.group(2)
        assert c.cmd("MAIL FROM:<x@outside.test>") == ["503 5.0.0 Polite people say HELO first"]
        c.cmd("EHLO roaming.client.test")
        assert c.cmd("VRFY root")[0].startswith("252 2.5.2 ")
        for cmd in ("EXPN root", "VERB", "ETRN real-time.test"):
            assert c.cmd(cmd) == ["502 5.7.0 Sorry, we do not allow this operation"], cmd


def test_prof05_without_auth_relaying_is_denied_but_local_mail_is_delivered(roamers):
    t = roamers.tern
    with session(t, source=ROAMING) as c:
        assert c.cmd("MAIL FROM:<someone@outside.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<friend@far.test>") == [
            "554 5.7.1 <friend@far.test>: Relay access denied"]
        assert c.cmd(f"RCPT TO:<webmaster@{ROAMERS_DOMAIN}>")[0].startswith("250 ")
        final = c.data(make_message(subject="prof05-local", to=f"webmaster@{ROAMERS_DOMAIN}",
                                    sender="someone@outside.test"))
        qid = REPLY_250_QUEUED.match(final[0]).group(1)
    # the virtusertable entry, then local delivery
    t.wait_log(rf"{qid}: to=<root@{re.escape(ROAMERS)}>, relay=local, .*status=sent "
               r"\(delivered to mailbox\)")
    box = t.spool / "root"
    wait_until(lambda: box.exists() and b"Subject: prof05-local" in box.read_bytes(), 10,
               "the message in root's mailbox")
    t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.5\]: 554 5\.7\.1 "
               r"<friend@far\.test>: Relay access denied")


def test_prof05_ehlo_offers_digest_and_cram_before_tls_and_login_plain_after(roamers):
    with session(roamers.tern, source=ROAMING) as c:
        lines = c.cmd("EHLO roaming.client.test")
        # the seed's own transcript (000:434): 250-AUTH DIGEST-MD5 CRAM-MD5
        assert [line for line in lines if "AUTH" in line] == ["250-AUTH DIGEST-MD5 CRAM-MD5"]
        assert "250-STARTTLS" in lines
        starttls(c)
        after = ehlo_auth(c)
        assert {"LOGIN", "PLAIN"} <= after, after
        assert after == {"LOGIN", "PLAIN", "DIGEST-MD5", "CRAM-MD5"}


def test_prof05_auth_login_over_starttls_relays(roamers):
    t = roamers.tern
    with session(t, source=ROAMING, tls=True) as c:
        assert auth_login(c, "roamer", ROAMER_PW) == [AUTH_OK]
        relay_one(c, f"roamer@{ROAMERS}", "friend@far.test", "prof05-login")
    msg = roamers.sink.wait_for(b"Subject: prof05-login")[0]
    assert msg.rcpt_tos == ["friend@far.test"]
    # MASQUERADE_AS + masquerade_envelope: the host name goes, in both
    assert msg.mail_from == f"roamer@{ROAMERS_DOMAIN}"
    assert msg.header("From") == f"<roamer@{ROAMERS_DOMAIN}>"
    assert "with ESMTPSA id" in msg.header("Received")
    t.wait_log(r"client=unknown\[127\.0\.0\.5\], listener=smtpd, sasl_method=LOGIN, "
               r"sasl_username=roamer$")


def test_prof05_cram_md5_without_tls_relays(roamers):
    t = roamers.tern
    with session(t, source=ROAMING) as c:
        assert cram_md5(c, "roamer", ROAMER_PW) == [AUTH_OK]
        relay_one(c, f"roamer@{ROAMERS}", "friend@far.test", "prof05-cram")
    msg = roamers.sink.wait_for(b"Subject: prof05-cram")[0]
    assert msg.rcpt_tos == ["friend@far.test"]
    assert "with ESMTPA id" in msg.header("Received")
    t.wait_log(r"client=unknown\[127\.0\.0\.5\], listener=smtpd, sasl_method=CRAM-MD5, "
               r"sasl_username=roamer$")


# ---------------------------------------------------------------- PROF-06


SLACKWARE = "john.example.test"  # the howto's root@john (001:115)
ALICE_PW = "Alice-pw-2Wn5"


@pytest.fixture(scope="module")
def slackware(mres, pki):  # noqa: F811
    """PROF-06 (001:115-179): sendmail-slackware-tls-sasl.mc.  Only the MTA
    and the SMTPS daemon listen (no_default_msa)."""
    base = shared_dir(mres, "prof06")
    sasl = make_sasl_dir(base / "sasl", SASLDB_MECHS + [
        # define(`confAUTH_MECHANISMS', `LOGIN PLAIN DIGEST-MD5 CRAM-MD5')dnl
        "mech_list: LOGIN PLAIN DIGEST-MD5 CRAM-MD5",
    ], [("alice", ALICE_PW)], realm=SLACKWARE)
    cw = base / "local-host-names"
    cw.write_text(f"{SLACKWARE}\nlocalhost\n")
    os.chmod(cw, 0o644)
    tables = {}
    for name in ("mailertable", "virtusertable"):  # their entries are not in the howto
        (base / name).write_text("# (site entries)\n")
        os.chmod(base / name, 0o644)
        tables[name] = base / name
    sink = mres.sink()
    mta, ssa = free_port(), free_port()
    t = mres.tern(
        start=False,
        name="prof06",
        myhostname=SLACKWARE,
        mydomain="example.test",
        mynetworks="127.0.0.1/32",
        relayhost=sink.hostport,
        # define(`confCACERT_PATH', `/etc/mail/certs/')
        smtpd_tls_CApath=pki.dir,
        # define(`confCACERT', `/etc/mail/certs/CA.cert.pem')
        smtpd_tls_CAfile=pki.path("ca.pem"),
        # define(`confSERVER_CERT', `/etc/mail/certs/smtp.cert.pem')
        smtpd_tls_cert_file=pki.path("server.pem"),
        # define(`confSERVER_KEY', `/etc/mail/certs/smtp.key.pem')
        smtpd_tls_key_file=pki.path("server.key"),
        # define(`confCRL', `/etc/mail/certs/revoke.crl')
        smtpd_tls_crl_file=pki.path("crl.pem"),
        # define(`confPRIVACY_FLAGS', `authwarnings,novrfy,noexpn,restrictqrun')dnl --
        # novrfy; noexpn: EXPN is never done; authwarnings: X-Authentication-Warning
        # for an untrusted -f is always on
        disable_vrfy_command="yes",
        restrict_queue_run="yes",
        # define(`confTO_IDENT', `0')dnl -- tern never asks ident
        # FEATURE(`delay_checks'), FEATURE(`access_db', `hash -T<TMPF> ...'),
        # FEATURE(`blacklist_recipients'), FEATURE(`dnsbl', ...), FEATURE(`enhdnsbl', ...)
        # x3: the policy engine, not yet
        # FEATURE(`use_cw_file') + LOCAL_DOMAIN(`localhost.localdomain')dnl
        mydestination=f"{cw}, localhost.localdomain",
        # FEATURE(`use_ct_file') -- trusted-users names root: the default
        trusted_users="root, $mail_owner",
        # FEATURE(`mailertable',`hash -o /etc/mail/mailertable.db')dnl
        transport_maps=f"optional:hash:{tables['mailertable']}",
        # FEATURE(`virtusertable',`hash -o /etc/mail/virtusertable.db')dnl
        virtual_alias_maps=f"optional:hash:{tables['virtusertable']}",
        # FEATURE(`local_procmail', ...), FEATURE(`redirect'): not yet
        # FEATURE(`always_add_domain')dnl
        append_at_myorigin="yes",
        # FEATURE(`no_default_msa')dnl
        submission_listen="",
        # EXPOSED_USER(`root')dnl -- nothing is masqueraded in this config
        masquerade_exceptions="root",
        # define(`confAUTH_OPTIONS', `A p y')dnl -- p, y; A: nothing to set
        smtpd_sasl_auth_enable="yes",
        cyrus_sasl_config_path=sasl,
        smtpd_tls_auth_only="yes",
        smtpd_sasl_security_options="noanonymous",
        # TRUST_AUTH_MECH(`LOGIN PLAIN DIGEST-MD5 CRAM-MD5')dnl -- the default
        # smtpd_relay_restrictions (permit_sasl_authenticated)
        # DAEMON_OPTIONS(`Port=smtp, Name=MTA')dnl
        smtpd_listen=f"127.0.0.1:{mta}",
        # DAEMON_OPTIONS(`Port=smtps, Name=MSA-SSL, M=E')dnl (+ the `s' it needs, ERR-03)
        smtps_listen=f"127.0.0.1:{ssa}",
        # define(`confMAX_DAEMON_CHILDREN',`1000') (001:200);
        # confCONNECTION_RATE_THROTTLE 100: not yet
        smtpd_client_limit="1000",
        # define(`confTLS_SRV_OPTIONS', `V') (001:202): no client certificate asked for
        smtpd_tls_ask_ccert="no",
    )
    for name, path in tables.items():
        r = t.tern("map", f"hash:{path}")
        assert r.returncode == 0, r.stderr
    t.port = mta
    t.start()
    return SimpleNamespace(tern=t, sink=sink, mta=mta, ssa=ssa)


def test_prof06_only_the_mta_and_smtps_ports_listen(slackware):
    t = slackware.tern
    assert listening_ports(t) == {slackware.mta, slackware.ssa}
    status = t.tern("status").stdout
    assert f"listener smtpd: 127.0.0.1:{slackware.mta}" in status
    assert f"listener smtps: 127.0.0.1:{slackware.ssa}" in status
    assert "listener submission" not in status, status
    with session(t, port=slackware.mta) as c:
        assert "STARTTLS" in ehlo_keywords(c)
    with session(t, port=slackware.ssa, wrapped=True) as c:
        assert "STARTTLS" not in ehlo_keywords(c)


def test_prof06_smtps_wrapper_auth_login_relays(slackware):
    r = swaks(slackware.tern, "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "alice",
              "--auth-password", ALICE_PW, "--li", ROAMING, "--from", f"alice@{SLACKWARE}",
              "--to", "bob@far.test", "--h-Subject", "prof06-smtps", port=slackware.ssa)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"<~  {AUTH_OK}" in r.stdout
    assert slackware.sink.wait_for(b"Subject: prof06-smtps")[0].rcpt_tos == ["bob@far.test"]
    slackware.tern.wait_log(r"client=unknown\[127\.0\.0\.5\], listener=smtps, "
                            r"sasl_method=LOGIN, sasl_username=alice$")


def test_prof06_no_client_certificate_is_requested_and_the_crl_loads(slackware):
    t = slackware.tern
    no_certificate_request(slackware.ssa, starttls=False)
    no_certificate_request(slackware.mta, starttls=True)
    check = t.tern("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "CRL" not in check.stdout, check.stdout
    bad = [line for line in t.log().splitlines()
           if "TLS is not available" in line or "crl" in line.lower()]
    assert not bad, bad


def test_prof06_auth_offer_privacy_and_local_domains(slackware):
    t = slackware.tern
    with session(t, source=ROAMING) as c:
        # AUTH_OPTIONS p: LOGIN and PLAIN only after STARTTLS
        assert ehlo_auth(c) == {"DIGEST-MD5", "CRAM-MD5"}
        assert c.cmd("VRFY root") == [
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"]
        assert c.cmd("EXPN root") == ["502 5.7.0 Sorry, we do not allow this operation"]
        assert c.cmd("MAIL FROM:<someone@outside.test>")[0].startswith("250 ")
        # LOCAL_DOMAIN(`localhost.localdomain') and local-host-names are local ...
        for rcpt in ("root@localhost.localdomain", f"root@{SLACKWARE}"):
            assert c.cmd(f"RCPT TO:<{rcpt}>") == [f"250 2.1.5 <{rcpt}>... Recipient ok"]
        # ... anything else is not for an unauthenticated outsider
        assert c.cmd("RCPT TO:<bob@far.test>") == ["554 5.7.1 <bob@far.test>: Relay access denied"]
        c.cmd("RSET")
        starttls(c)
        assert ehlo_auth(c) == {"LOGIN", "PLAIN", "DIGEST-MD5", "CRAM-MD5"}


# ---------------------------------------------------------------- PROF-07


ENTOURAGE = "ogre.example.test"  # the seed's server "Ogre" (002:15)
MICHELLE_PW = "Michelle-pw-6Rv2"


@pytest.fixture(scope="module")
def entourage(mres, pki):  # noqa: F811
    """PROF-07 (002:48-64): the MTA on "25", SMTPS on "465" for Entourage,
    which cannot STARTTLS; LOGIN allowed; no client certificate asked for."""
    base = shared_dir(mres, "prof07")
    sasl = make_sasl_dir(base / "sasl", SASLDB_MECHS + [
        # "you must have support for the LOGIN authentication mechanism" (002:50),
        # "I only support plain SASL authentication" (002:54)
        "mech_list: PLAIN LOGIN",
    ], [("michelle", MICHELLE_PW)], realm=ENTOURAGE)
    sink = mres.sink()
    mta, ssa, msa = free_port(), free_port(), free_port()
    t = mres.tern(
        start=False,
        name="prof07",
        myhostname=ENTOURAGE,
        mydestination=f"{ENTOURAGE}, localhost",
        mynetworks="127.0.0.1/32",
        relayhost=sink.hostport,
        # DAEMON_OPTIONS(`Port=smtp, Name=MTA')dnl
        smtpd_listen=f"127.0.0.1:{mta}",
        # DAEMON_OPTIONS(`Port=465, Name=SSA, M=Eas')dnl -- s: TLS from the first
        # byte, a: AUTH required (both smtps defaults); E: no ETRN
        smtps_listen=f"127.0.0.1:{ssa}",
        **{"smtps.smtpd_disable_etrn_command": "yes"},
        # (no FEATURE(`no_default_msa'): sendmail keeps its MSA on 587)
        submission_listen=f"127.0.0.1:{msa}",
        # the certificate lines (002:41-45: "my own root-CA"): confSERVER_CERT,
        # confSERVER_KEY, confCACERT
        smtpd_tls_cert_file=pki.path("server.pem"),
        smtpd_tls_key_file=pki.path("server.key"),
        smtpd_tls_CAfile=pki.path("ca.pem"),
        # "Entourage still complains about the requirement for certificate based
        # authentication" (002:63): confTLS_SRV_OPTIONS `V'
        smtpd_tls_ask_ccert="no",
        # SASL compiled in (002:29-33): AUTH on every daemon, Sendmail.conf = smtpd.conf
        smtpd_sasl_auth_enable="yes",
        cyrus_sasl_config_path=sasl,
        # define(`confAUTH_OPTIONS', `A,p,y')dnl -- p: no plaintext mechanism
        # without TLS; y: no anonymous; A: nothing to set (AUTH= is kept only from
        # an authenticated client)
        smtpd_tls_auth_only="yes",
        smtpd_sasl_security_options="noanonymous",
        # define(`confDONT_BLAME_SENDMAIL', `GroupReadableSASLDBFile')dnl -- nothing
        # to set: the sasldb is 0640 root:tern (group of mail_owner), which tern-auth
        # reads without a warning
    )
    t.port = mta
    t.start()
    return SimpleNamespace(tern=t, sink=sink, sasl=sasl, mta=mta, ssa=ssa)


def test_prof07_swaks_tls_on_connect_auth_login_relays(entourage):
    t, sink = entourage.tern, entourage.sink
    r = swaks(t, "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "michelle",
              "--auth-password", MICHELLE_PW, "--li", ROAMING, "--from", f"michelle@{ENTOURAGE}",
              "--to", "friend@far.test", "--h-Subject", "prof07-entourage", port=entourage.ssa)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "~> AUTH LOGIN" in r.stdout
    assert f"<~  {AUTH_OK}" in r.stdout
    msg = sink.wait_for(b"Subject: prof07-entourage")[0]
    assert msg.rcpt_tos == ["friend@far.test"]
    assert "with ESMTPSA id" in msg.header("Received")
    t.wait_log(r"client=unknown\[127\.0\.0\.5\], listener=smtps, sasl_method=LOGIN, "
               r"sasl_username=michelle$")


def test_prof07_no_certificate_request_on_465(entourage):
    out = no_certificate_request(entourage.ssa, starttls=False)
    assert f"220 {ENTOURAGE} ESMTP" in out
    # nor from a client of Entourage's time, which stops at TLS 1.2
    out = no_certificate_request(entourage.ssa, False, "-tls1_2")
    assert re.search(r"Protocol\s*:\s*TLSv1\.2$", out, re.M), out[-2000:]


def test_prof07_smtps_session_needs_auth_and_offers_no_etrn(entourage):
    t = entourage.tern
    with session(t, port=entourage.ssa, source=ROAMING, wrapped=True) as c:
        words = ehlo_keywords(c)
        assert "ETRN" not in words and "STARTTLS" not in words, words
        assert ehlo_auth(c) == {"PLAIN", "LOGIN"}
        assert c.cmd("ETRN far.test") == ["502 5.7.0 Sorry, we do not allow this operation"]
        assert c.cmd(f"MAIL FROM:<michelle@{ENTOURAGE}>") == ["530 5.7.0 Authentication required"]
        assert auth_login(c, "michelle", MICHELLE_PW) == [AUTH_OK]
        relay_one(c, f"michelle@{ENTOURAGE}", "friend@far.test", "prof07-raw")
    entourage.sink.wait_for(b"Subject: prof07-raw")


def test_prof07_no_plaintext_auth_without_tls_on_the_mta_port(entourage):
    # AUTH_OPTIONS p: "prevents people from accidentally trying to use SMTP
    # Authentication over a non-secure channel" (002:60)
    t = entourage.tern
    with session(t, source=ROAMING) as c:
        assert ehlo_auth(c) is None
        assert c.cmd("AUTH LOGIN") == [
            "538 5.7.11 Encryption required for requested authentication mechanism"]
        assert c.cmd(f"MAIL FROM:<michelle@{ENTOURAGE}>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<friend@far.test>") == [
            "554 5.7.1 <friend@far.test>: Relay access denied"]
        c.cmd("RSET")
        starttls(c)
        assert ehlo_auth(c) == {"PLAIN", "LOGIN"}


def test_prof07_group_readable_sasldb_is_used_without_a_warning(entourage):
    # DontBlameSendmail=GroupReadableSASLDBFile: tern's advice (docs/auth.md) is
    # 0640 root:<mail_owner's group>; tern-auth reads it and says nothing
    t, db = entourage.tern, entourage.sasl / "sasldb2"
    st = db.stat()
    assert st.st_mode & 0o777 == 0o640
    assert grp.getgrgid(st.st_gid).gr_name == "tern" == t.params["mail_owner"]
    with session(t, port=entourage.ssa, wrapped=True) as c:  # through tern-auth
        # LOGIN with the user name as initial response, as Outlook-era clients send it
        assert c.cmd("AUTH LOGIN " + b64("michelle")) == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64(MICHELLE_PW)) == [AUTH_OK]
    r = run_auth_test(t, "michelle", MICHELLE_PW)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok: authenticated as michelle\n", "")
    log = t.log()
    assert str(db) not in log, [line for line in log.splitlines() if str(db) in line]
    assert not re.search(r"tern/auth\[\d+\]: warning", log), log
    check = t.tern("check")
    assert check.returncode == 0 and "is valid" in check.stdout, check.stdout + check.stderr
