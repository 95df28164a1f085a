"""Operating tern (docs/operations.md): process titles (OPS-04), the version
in the banner only on request (OPS-05), sendmail's PID file (OPS-03)."""

import grp
import os
import pwd
import re
import subprocess
import threading

import pytest

from ternlib import BUILD, TERN, SmtpConn, SilentServer, make_message, wait_until

SENDMAIL = BUILD / "tools" / "sendmail"


def titles(tern):
    """`ps -eo args` lines of this instance's processes."""
    pids = {str(p) for p in tern.pids()}
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line.split(None, 1)[1] for line in out.splitlines()
            if line.split(None, 1)[0] in pids and len(line.split(None, 1)) == 2]


class StallingServer(SilentServer):
    """Greets and answers EHLO, then never answers MAIL: a slow delivery."""

    def _accepted(self, conn):
        def serve():
            conn.sendall(b"220 slow.test ESMTP\r\n")
            f = conn.makefile("rb")
            if f.readline():
                conn.sendall(b"250 slow.test\r\n")
        threading.Thread(target=serve, daemon=True).start()


# ---------------------------------------------------------------- OPS-04


def test_titles_name_the_client_and_the_queue_id(res):
    slow = StallingServer()
    res.others.append(slow)
    tern = res.tern(relayhost=f"[127.0.0.1]:{slow.port}")
    wait_until(lambda: any(t.startswith("tern-master: accepting connections")
                           for t in titles(tern)), 5, "the master's title")
    with SmtpConn(tern.host, tern.port, timeout=5, source="127.0.0.7") as c:
        c.greeting()
        wait_until(lambda: any(re.match(r"tern-smtpd: [1-9]\d* sessions?, last \[127\.0\.0\.7\]$",
                                        t) for t in titles(tern)), 5, "smtpd's title with the IP")
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@client.test>")
        c.cmd("RCPT TO:<secret-rcpt@far.test>")
        reply = c.data(make_message())
        qid = re.search(r"queued as (\w+)", reply[0]).group(1)
        c.cmd("QUIT")
    title = f"tern-smtp: {qid} to 127.0.0.1[127.0.0.1]"
    wait_until(lambda: title in titles(tern), 10, f"'{title}' in ps")
    assert any(re.match(r"tern-qmgr: 1 active, \d+ in flight$", t) for t in titles(tern))
    assert not any("secret-rcpt" in t or "a@client.test" in t for t in titles(tern))


# ---------------------------------------------------------------- OPS-05


def greeting(tern):
    with SmtpConn(tern.host, tern.port, timeout=5) as c:
        line = c.greeting()[0]
        c.cmd("QUIT")
        return line


def test_default_banner_hides_the_version(res):
    tern = res.tern()
    version = tern.tern("version").stdout.split()[-1]
    line = greeting(tern)
    assert line == "220 tern.test ESMTP tern", line
    assert version not in line


def test_banner_shows_the_version_when_asked(res):
    tern = res.tern(smtpd_banner="$myhostname ESMTP $mail_name $mail_version")
    version = tern.tern("version").stdout.split()[-1]
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), version
    assert greeting(tern) == f"220 tern.test ESMTP tern {version}"


# ---------------------------------------------------------------- OPS-03


def test_pid_file_has_the_pid_then_the_command_line(res):
    tern = res.tern()
    lines = (tern.queue / "pid" / "master.pid").read_text().splitlines()
    assert len(lines) == 2, lines
    assert int(lines[0]) == tern.master_pid()
    assert lines[1] == f"tern-master -c {tern.etc} -f", lines
    assert tern.tern("status").returncode == 0
    tern.conf_edit(smtpd_banner="$myhostname ESMTP reloaded")
    assert tern.tern("reload").returncode == 0
    wait_until(lambda: greeting(tern) == "220 tern.test ESMTP reloaded", 5, "the reload")
    assert tern.tern("stop").returncode == 0
    assert not (tern.queue / "pid" / "master.pid").exists()


# ---------------------------------------------------------------- MSP-01


def test_maildrop_is_listed_while_stopped_and_running(res):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)  # master makes the queue layout
    tern.stop()
    r = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), "-f", "cron@host.test",
                        "down@remote.test"], input=b"Subject: while-down\n\nx\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    (qid,) = [p.name for p in (tern.queue / "maildrop").iterdir()]
    for cmd in ([str(TERN), "-c", str(tern.etc), "queue", "list"],
                [str(SENDMAIL), "-C", str(tern.conf_path), "-bp"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out
        assert re.search(rf"^\t\t{re.escape(str(tern.queue))}/maildrop \(1 request\)$",
                         out.stdout, re.M), out.stdout
        assert re.search(rf"^{qid} .*<cron@host\.test>$", out.stdout, re.M), out.stdout
        assert "down@remote.test" in out.stdout
        assert out.stdout.endswith("\t\tTotal requests: 1\n"), out.stdout
    j = tern.tern("queue", "list", "-j").stdout
    assert '"queue_name":"maildrop"' in j.replace(" ", ""), j
    tern.start()
    sink.wait_for(b"Subject: while-down")
    empty = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), "-bp"],
                           capture_output=True, text=True, timeout=30)
    assert "Total requests: 0" in empty.stdout, empty


# ---------------------------------------------------------------- SPAM-10, OPS-06


def check(res, files=None, **params):
    """`tern check` of a tern that is not started; files: name -> (text, mode)."""
    t = res.tern(start=False, **params)
    for name, (text, mode) in (files or {}).items():
        path = t.etc / name
        path.write_text(text)
        os.chmod(path, mode)
    t.conf_edit(**{k: v.replace("@ETC@", str(t.etc)) for k, v in params.items()})
    r = t.tern("check")
    warnings = [line for line in r.stdout.splitlines() if line.startswith("tern: warning: ")]
    return r, warnings, t


def test_default_config_has_no_warning(res):
    r, warnings, _ = check(res)
    assert r.returncode == 0, r.stdout
    assert warnings == [], r.stdout


WARNINGS = {
    "open mynetworks": ({"mynetworks": "127.0.0.0/8, 0.0.0.0/0"}, None,
                        r"tern\.conf:\d+: mynetworks = 0\.0\.0\.0/0: /0 is wider than a /8"),
    "open mynetworks v6": ({"mynetworks": "[2001:db8::]/16"}, None,
                           r"mynetworks = \[2001:db8::\]/16: /16 is wider than a /32"),
    "relay list": ({"smtpd_relay_restrictions": "permit_mynetworks, permit"}, None,
                   r"listener smtpd: open relay: .*reject_unauth_destination"),
    "access RELAY 0/0": ({"smtpd_relay_restrictions":
                          "check_client_access cidr:@ETC@/clients, reject_unauth_destination"},
                         {"clients": ("0.0.0.0/0 OK\n", 0o644)},
                         r"listener smtpd: open relay: .*\(192\.0\.2\.1\) may relay"),
    "world-writable table": ({"transport_maps": "texthash:@ETC@/transport"},
                             {"transport": ("x.test smtp:[192.0.2.9]\n", 0o666)},
                             r"transport_maps: .*/transport is world-writable \(mode 0666\)"),
    "group-writable table": ({"virtual_alias_maps": "texthash:@ETC@/virtual"},
                             {"virtual": ("a@x.test b@y.test\n", 0o664)},
                             None),
    "sasl passwords": ({"smtp_sasl_password_maps": "texthash:@ETC@/sasl_passwd"},
                       {"sasl_passwd": ("[relay.test] user:secret\n", 0o644)},
                       r"smtp_sasl_password_maps: .*/sasl_passwd is readable by every user"),
    "greet pause": ({"smtpd_greet_pause": "2s"}, None,
                    r"listener smtpd: smtpd_greet_pause = 2s with access_maps empty"),
    "auth in the clear": ({"smtpd_listen": "0.0.0.0:2525", "smtpd_sasl_auth_enable": "yes",
                           "smtpd_tls_auth_only": "no"}, None,
                          r"listener smtpd: smtpd_tls_auth_only = no on an Internet-facing"),
}


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_check_warns(res, case):
    params, files, pattern = WARNINGS[case]
    if pattern is None:  # a group other than root's and tern's: nogroup
        pattern = r"virtual_alias_maps: .*/virtual is writable by group \d+"
    r, warnings, t = check(res, files, **params)
    if case == "group-writable table":
        os.chown(t.etc / "virtual", 0, grp.getgrnam("nogroup").gr_gid)
        r = t.tern("check")
        warnings = [w for w in r.stdout.splitlines() if w.startswith("tern: warning: ")]
    assert r.returncode == 0, r.stdout
    assert len(warnings) >= 1 and any(re.search(pattern, w) for w in warnings), r.stdout
    assert all(re.match(r"tern: warning: /\S+(:\d+)?: ", w) for w in warnings), warnings


def test_auth_cleartext_not_warned_where_tls_is_required(res):
    # submission's default smtpd_tls_security_level = encrypt: no AUTH before STARTTLS there
    r, warnings, _ = check(res, smtpd_listen="0.0.0.0:2525", submission_listen="0.0.0.0:2587",
                           smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="no")
    auth = [w for w in warnings if "smtpd_tls_auth_only = no" in w]
    assert len(auth) == 1 and "listener smtpd:" in auth[0], r.stdout


def test_table_and_directory_warned_once(res):
    r, warnings, t = check(res, {"t": ("a@x.test b@y.test\n", 0o666)},
                           canonical_maps="texthash:@ETC@/t", sender_canonical_maps="texthash:@ETC@/t")
    assert len([w for w in warnings if "/t is world-writable" in w]) == 1, r.stdout
    shared = t.etc / "shared"
    shared.mkdir()
    for name in ("a", "b"):
        (shared / name).write_text("a@x.test b@y.test\n")
    os.chmod(shared, 0o777)
    t.conf_edit(canonical_maps=f"texthash:{shared}/a", sender_canonical_maps=f"texthash:{shared}/b")
    r = t.tern("check")
    dirs = [w for w in r.stdout.splitlines() if re.search(r"/shared is world-writable", w)]
    assert len(dirs) == 1, r.stdout


def test_key_not_owned_by_root_warns(res):
    r, warnings, t = check(res, {"client.key": ("not a key\n", 0o600)},
                           smtp_tls_key_file="@ETC@/client.key")
    assert warnings == [], r.stdout
    os.chown(t.etc / "client.key", pwd.getpwnam("nobody").pw_uid, 0)
    r = t.tern("check")
    assert re.search(r"tern: warning: \S+tern\.conf:\d+: smtp_tls_key_file \S+ is owned by uid "
                     r"\d+, not root", r.stdout), r.stdout
    os.chown(t.etc / "client.key", 0, 0)
    os.chmod(t.etc / "client.key", 0o644)
    r = t.tern("check")
    assert "must not be readable by group or others" in r.stdout, r.stdout
