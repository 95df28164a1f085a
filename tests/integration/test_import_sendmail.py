"""`tern import-sendmail` (SPEC OPS-07; docs/migrating.md): the seeds' .mc
files (tests/integration/data/mc/, each naming its seed lines) import,
`tern check` accepts the result, and an instance started from the imported
config does what the .mc configured.

The .mc files name /etc/mail/...; `-m MAILDIR` moves those to a directory
of the test with the tables and certificates they name.  An instance takes
the imported settings, then the harness's own paths and ports on top
(queue, listeners, relayhost -> a sink), like any TernInstance.
"""

import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from ternlib import TERN, free_port, make_message
from tlsutil import make_pki

MC = Path(__file__).resolve().parent / "data" / "mc"
SEEDS = sorted(p.name for p in MC.glob("seed*.mc"))


@pytest.fixture(scope="module")
def maildir(it_base):
    """The /etc/mail of the seeds: tables (built), names files, certificates."""
    d = Path(tempfile.mkdtemp(prefix="etcmail-", dir=str(it_base)))
    d.chmod(0o755)
    (d / "local-host-names").write_text("tern.test\n")
    (d / "relay-domains").write_text("")
    (d / "aliases").write_text("postmaster: root\n")
    texts = {
        "access": "127.0.0.1 RELAY\n",
        "virtusertable": "info@tern.test root\n",
        "mailertable": "",  # filled per test that routes
        "domaintable": "@parallel.com @sysiphus.com\n",
    }
    for name, text in texts.items():
        (d / name).write_text(text)
        build(d, name)
    build(d, "aliases", "-A")
    pki = make_pki(d / "pki")
    certs = d / "certs"
    certs.mkdir()
    # (the seed made a 1024-bit key: tern check refuses those, and says so)
    for src, dst in (("server.pem", "sendmail.crt"), ("server.key", "sendmail.key"),
                     ("server.pem", "smtp.cert.pem"), ("server.key", "smtp.key.pem"),
                     ("ca.pem", "CA.cert.pem"), ("crl.pem", "revoke.crl")):
        shutil.copy(pki.path(src), certs / dst)
    for key in ("sendmail.key", "smtp.key.pem"):
        (certs / key).chmod(0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def build(d: Path, name: str, *flags: str) -> None:
    subprocess.run([str(TERN), "map", *flags, f"hash:{d / name}"], check=True,
                   capture_output=True)


def import_mc(mc: str, maildir: Path, out: Path):
    """Run the import; (settings as written, report text)."""
    p = subprocess.run([str(TERN), "import-sendmail", "-o", str(out), "-m", str(maildir),
                        str(MC / mc)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    report = (out / "import-report.txt").read_text()
    assert p.stderr == report
    settings = {}
    for line in (out / "tern.conf").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" = ")
            settings[name.strip()] = value.strip()
    return settings, report


def instance(res, settings, **harness):
    """A TernInstance with the imported settings under the harness's own."""
    t = res.tern(start=False)
    own = dict(t.params)
    t.params = dict(settings)
    t.params.update(own)
    # the imported mydestination (local-host-names names tern.test) stays
    t.params["mydestination"] = settings.get("mydestination", own["mydestination"])
    t.params["alias_maps"] = settings.get("alias_maps", own["alias_maps"])
    t.params.update({k: str(v) for k, v in harness.items()})
    t.write_conf()
    return t.start()


@pytest.mark.parametrize("mc", SEEDS)
def test_seed_imports_and_tern_check_accepts_it(mc, maildir, tmp_path):
    settings, report = import_mc(mc, maildir, tmp_path / "out")
    assert settings, report
    p = subprocess.run([str(TERN), "-c", str(tmp_path / "out"), "check"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr + report
    # every line of the report names the .mc line it is about, up to the tables
    lines = re.split(r"\n(?:Tables:|DNS list replies)", report)[0].splitlines()[1:]
    for line in (line for line in lines if line.strip()):
        assert line.startswith(f"{MC / mc}:"), line
        assert ": mapped: " in line or ": noted: " in line or ": NOT MAPPED: " in line, line


def test_unknown_feature_is_reported_with_its_line(tmp_path):
    mc = tmp_path / "x.mc"
    mc.write_text("OSTYPE(`linux')dnl\ndnl a comment\nFEATURE(`no_such_thing', `x')dnl\n"
                  "define(`confNO_SUCH_OPTION', `1')dn1\nFEATURE(`promiscuous_relay')dnl\n")
    p = subprocess.run([str(TERN), "import-sendmail", str(mc)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert (f"{mc}:3: NOT MAPPED: FEATURE(`no_such_thing', `x'): unknown FEATURE no_such_thing"
            in p.stderr)
    assert f"{mc}:4: NOT MAPPED: define(`confNO_SUCH_OPTION', `1'): unknown option" in p.stderr
    assert f"{mc}:5: NOT MAPPED: FEATURE(`promiscuous_relay'): promiscuous_relay makes an open relay" in p.stderr
    assert "promiscuous_relay" not in p.stdout.replace("#", "")  # the safe setting: not set
    assert "1 mapped" not in p.stderr.splitlines()[0] and "3 not mapped" in p.stderr.splitlines()[0]


def test_seed000_masquerades_and_greets_as_configured(res, maildir, tmp_path):
    """000: MASQUERADE_AS(real-time.com) + masquerade_envelope; the
    SMTP_LOGIN_MSG banner without the date."""
    settings, _ = import_mc("seed000-real-time.mc", maildir, tmp_path / "out")
    assert settings["masquerade_domains"] == "real-time.com"
    sink = res.sink()
    # the DNS lists are real zones: no outside DNS in tests
    t = instance(res, settings, relayhost=sink.hostport, smtpd_client_restrictions="")
    with t.connect() as c:
        # sendmail and tern both put ESMTP after the first word
        assert c.greeting() == ["220 tern.test ESMTP server ready at"]
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<eve@host.real-time.com>")[0].startswith("250")
        assert c.cmd("RCPT TO:<bob@remote.test>")[0].startswith("250")
        assert c.data(make_message("masq", sender="eve@host.real-time.com",
                                   to="bob@remote.test"))[0].startswith("250")
    msg = sink.wait_for(b"masq")[0]
    assert msg.mail_from == "eve@real-time.com"
    assert "eve@real-time.com" in msg.header("From")


def test_seed001_auth_only_under_tls_and_smtps_is_tls(res, maildir, tmp_path):
    """001: confAUTH_OPTIONS `A p y' (no AUTH before STARTTLS), novrfy, and
    DAEMON_OPTIONS(Port=smtps) a listener that is TLS from the first byte."""
    settings, _ = import_mc("seed001-slackware-tls-sasl.mc", maildir, tmp_path / "out")
    assert settings["smtps_listen"] == "0.0.0.0:465"
    smtps = free_port()
    t = instance(res, settings, smtpd_client_restrictions="", smtps_listen=f"127.0.0.1:{smtps}")
    with t.connect() as c:
        c.greeting()
        ehlo = c.cmd("EHLO client.test")
        assert any("STARTTLS" in line for line in ehlo)
        auth = [line for line in ehlo if line[4:].startswith("AUTH")]
        # p: the plaintext mechanisms only after STARTTLS (docs/auth.md)
        assert not any(m in line.split() for line in auth for m in ("PLAIN", "LOGIN")), auth
        assert c.cmd("AUTH PLAIN AGJvYgBwdw==")[0][:3] in ("504", "538")
        assert c.cmd("VRFY root")[0].startswith("252")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", smtps), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            assert tls.recv(512).startswith(b"220 ")


def test_seed003_external_banner_privacy_and_milter_tempfail(res, maildir, tmp_path):
    """003's external.mc: `mailer ready', noexpn, greet_pause 1000, and its
    milters (F=T) are not running: mail is deferred, never let through."""
    settings, _ = import_mc("seed003-external.mc", maildir, tmp_path / "out")
    assert settings["smtpd_greet_pause"] == "1000ms"
    assert settings["smtpd_refuse_load"] == "20"
    # the pause is not for mynetworks; this machine's load is not the test's
    load = maildir / "loadavg-low"
    load.write_text("0.00 0.00 0.00 1/100 1\n")
    t = instance(res, settings, mynetworks="127.0.0.2/32", load_average_file=load)
    with t.connect() as c:
        greeting = c.greeting()
        assert greeting == ["220 mailer ESMTP ready"]
        c.cmd("EHLO client.test")
        assert c.cmd("EXPN root")[0].startswith("502")
        replies = [c.cmd("MAIL FROM:<a@remote.test>")[0], c.cmd("RCPT TO:<root@tern.test>")[0]]
        assert any(r.startswith("4") for r in replies), replies


def test_seed003_internal_domaintable_mailertable_and_masquerade(res, maildir, tmp_path):
    """003's internal.mc: domaintable parallel.com -> sysiphus.com, the
    mailertable route, MASQUERADE_AS(sysiphus.com) with allmasquerade."""
    sink = res.sink()
    settings, _ = import_mc("seed003-internal.mc", maildir, tmp_path / "out")
    # the imported transport_maps is MAILDIR's mailertable: route to the sink
    assert settings["transport_maps"] == f"optional:hash:{maildir / 'mailertable'}"
    (maildir / "mailertable").write_text(f"sysiphus.com smtp:{sink.hostport}\n")
    build(maildir, "mailertable")
    t = instance(res, settings)
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<alice@host.sysiphus.com>")[0].startswith("250")
        assert c.cmd("RCPT TO:<bob@parallel.com>")[0].startswith("250")
        c.data(make_message("routed", sender="alice@host.sysiphus.com",
                            to="carol@host.sysiphus.com"))
    msg = sink.wait_for(b"routed")[0]
    assert msg.rcpt_tos == ["bob@sysiphus.com"]
    assert msg.mail_from == "alice@sysiphus.com"
    assert "carol@sysiphus.com" in msg.header("To")


def test_seed003_sample_max_hop_and_smart_host(res, maildir, tmp_path):
    """003's sample .mc: confMAX_HOP 50 lets 30 Received: lines through (the
    default 25 would not); SMART_HOST is relayhost (the harness's sink)."""
    settings, _ = import_mc("seed003-sample.mc", maildir, tmp_path / "out")
    assert settings["relayhost"] == "internal.sysiphus.com"
    assert settings["hopcount_limit"] == "50"
    sink = res.sink()
    t = instance(res, settings, relayhost=sink.hostport)
    hops = "".join(f"Received: from h{i}.test by h{i + 1}.test; Mon, 7 Dec 2026 00:00:00 +0000\r\n"
                   for i in range(30))
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@tern.test>")
        c.cmd("RCPT TO:<b@remote.test>")
        reply = c.data((hops + "Subject: hops\r\n\r\nthirty hops\r\n").encode())
        assert reply[0].startswith("250"), reply
    sink.wait_for(b"thirty hops")


def test_seed003_submit_null_client_masquerades(res, maildir, tmp_path):
    """003's submit.mc with FEATURE(msp, internal.sysiphus.com): a null
    client (no listener) whose submissions leave through relayhost,
    masqueraded as sysiphus.com (envelope and headers)."""
    settings, _ = import_mc("seed003-submit.mc", maildir, tmp_path / "out")
    assert settings["relayhost"] == "internal.sysiphus.com"
    assert settings["smtpd_listen"] == settings["submission_listen"] == ""
    sink = res.sink()
    t = instance(res, settings, relayhost=sink.hostport, smtpd_listen="")
    p = subprocess.run([str(TERN.parent / "sendmail"), "-C", str(t.conf_path),
                        "-f", "alice@host.sysiphus.com", "bob@remote.test"],
                       input=make_message("null client", sender="alice@host.sysiphus.com",
                                          to="carol@host.sysiphus.com"),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    msg = sink.wait_for(b"null client")[0]
    assert msg.mail_from == "alice@sysiphus.com"
    assert "carol@sysiphus.com" in msg.header("To")
