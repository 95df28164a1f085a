"""sendmail / terndrop / pickup (issue 3, SPEC CLI-01..21, MSP-01).

Every test drives the real built binaries against a real instance that
relays everything to a Sink (relayhost), so delivery is observable.  The
built sendmail finds its config with -C D/etc/tern.conf (root) or, for the
unprivileged tests, through alternate_config_directories of the built-in
default config (see the `alt_config` fixture).
"""

import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ternlib import BUILD, tool_env, wait_until

SENDMAIL = BUILD / "tools" / "sendmail"
TERNDROP = BUILD / "tools" / "terndrop"
DEFAULT_CONF_DIR = Path("/usr/local/etc/tern")  # TERN_SYSCONFDIR of the build


@pytest.fixture(scope="module")
def relay(mres):
    sink = mres.sink(dsn=True)
    tern = mres.tern(relayhost=sink.hostport)
    return tern, sink


def sm(tern, *args, input=b"", env=None, timeout=60):
    """Run the built sendmail with -C D/etc/tern.conf (as root); the result."""
    cmd = [str(SENDMAIL), "-C", str(tern.conf_path), *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)


def wait_msg(sink, pred, timeout=20):
    return wait_until(lambda: next((m for m in sink.snapshot() if pred(m)), None), timeout,
                      "the message at the sink")


def subject_is(subject):
    return lambda m: (m.header("Subject") or "") == subject


def test_submit_from_stdin_adds_headers(relay):
    tern, sink = relay
    r = sm(tern, "-F", "Ann Example", "u1@remote.test",
           input=b"Subject: plain\n\nhello\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("plain"))
    assert m.rcpt_tos == ["u1@remote.test"]
    assert m.mail_from == "root@tern.test"
    assert re.match(rb"Received: \(from root@localhost\)\r\n\tby tern\.test \(tern [0-9.]+\) id "
                    rb"\w+\r\n\tfor <u1@remote\.test>; ", m.content), m.content[:300]
    assert m.header("From") == "Ann Example <root@tern.test>"
    assert m.header("Message-ID") and m.header("Date")
    assert m.body() == b"hello\r\n"
    assert "X-Authentication-Warning" not in m.content.decode(errors="replace")
    tern.wait_log(r"uid=0 from=<root@tern\.test>")


def test_dot_ends_input_unless_i(relay):
    tern, sink = relay
    r = sm(tern, "u2@remote.test", input=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("dot"))
    assert m.body() == b"before\r\n"
    r = sm(tern, "-oi", "u2@remote.test", input=b"Subject: dot-i\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("dot-i"))
    assert m.body() == b"before\r\n.\r\nafter\r\n"
    r = sm(tern, "-i", "u2@remote.test", input=b"Subject: dot-i2\n\n.\nx\n")
    m = wait_msg(sink, subject_is("dot-i2"))
    assert m.body() == b".\r\nx\r\n"


def test_t_reads_recipients_and_drops_bcc(relay):
    tern, sink = relay
    msg = (b"To: \"Doe, John\" <to1@remote.test>, to2@remote.test (comment)\n"
           b"Cc: group: cc1@remote.test, Cc Two <cc2@remote.test>;\n"
           b"Bcc: hidden@remote.test,\n  hidden2@remote.test\n"
           b"Subject: minus-t\n\nbody\n")
    r = sm(tern, "-t", "-i", input=msg)
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("minus-t"))
    got = set()
    wait_until(lambda: got.update(r for x in sink.snapshot() if x.header("Subject") == "minus-t"
                                  for r in x.rcpt_tos) or len(got) == 6, 20, "6 recipients")
    assert got == {"to1@remote.test", "to2@remote.test", "cc1@remote.test", "cc2@remote.test",
                   "hidden@remote.test", "hidden2@remote.test"}
    for x in sink.snapshot():
        if x.header("Subject") == "minus-t":
            assert b"Bcc:" not in x.content and b"hidden" not in x.content


def test_t_with_arguments_adds_them(relay):
    tern, sink = relay
    r = sm(tern, "-t", "extra@remote.test", input=b"To: t1@remote.test\nSubject: t-args\n\nx\n")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: {r for x in sink.snapshot() if x.header("Subject") == "t-args"
                        for r in x.rcpt_tos} == {"t1@remote.test", "extra@remote.test"}, 20,
               "both recipients")


def test_null_sender_and_dsn_flags(relay):
    tern, sink = relay
    r = sm(tern, "-f", "<>", "-N", "success,failure", "-R", "hdrs", "-V", "env42",
           "n1@remote.test", input=b"Subject: nullsender\n\nx\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("nullsender"))
    assert m.mail_from == ""
    opts = " ".join(m.mail_options).upper()
    assert "RET=HDRS" in opts and "ENVID=ENV42" in opts
    assert any("NOTIFY=SUCCESS,FAILURE" in o.upper() for o in m.rcpts[0][1])


def test_f_by_root_sets_sender_without_warning(relay):
    tern, sink = relay
    r = sm(tern, "-f", "boss@x.test", "f1@remote.test", input=b"Subject: f-root\n\nx\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("f-root"))
    assert m.mail_from == "boss@x.test"
    assert m.header("X-Authentication-Warning") is None


def test_bad_usage_exit_codes(relay):
    tern, _ = relay
    assert sm(tern, "-Z", "a@remote.test").returncode == 64
    r = sm(tern, input=b"Subject: x\n\nx\n")
    assert r.returncode == 64 and b"Recipient names must be specified" in r.stderr
    r = sm(tern, "-t", input=b"Subject: none\n\nx\n")
    assert r.returncode == 64
    r = sm(tern, "-O", "NoSuchOption=1", "a@remote.test")
    assert r.returncode == 64 and b"option NoSuchOption is not supported" in r.stderr
    r = sm(tern, "-bt", "-X")
    assert r.returncode == 64


def test_shell_metacharacters_are_data(relay, tmp_path):
    tern, _ = relay
    target = tmp_path / "pwned"
    r = sm(tern, "-f", "<>", f"a;touch {target}", input=b"x\n")
    assert r.returncode == 65
    r = sm(tern, f"`touch {target}`@remote.test", input=b"x\n")
    time.sleep(0.5)
    assert not target.exists()


def test_bv_prints_routing(relay):
    tern, _ = relay
    r = sm(tern, "-bv", "root", "x@remote.test", "nosuchuser@tern.test")
    out = r.stdout.decode()
    assert "root... deliverable: mailer local, user root" in out
    assert f"x@remote.test... deliverable: mailer smtp, host {tern.params['relayhost']}, " \
           "user x@remote.test" in out
    assert "nosuchuser@tern.test... User unknown" in out
    assert r.returncode == 67


def test_d01_version_and_identity(relay):
    tern, _ = relay
    r = sm(tern, "-d0.1", "-bv", "root")
    out = r.stdout.decode()
    assert re.search(r"^Version \d+\.\d+\.\d+$", out, re.M)
    m = re.search(r"^ Compiled with: (.*)$", out, re.M)
    assert m and "C-ARES" in m.group(1).split()
    # smtpd's TLS and AUTH, and the milter client (sendmail's names; MILT-09)
    for feature in ("STARTTLS", "SASLv2", "MILTER"):
        assert feature in m.group(1).split(), m.group(1)
    assert "(canonical domain name) $j = tern.test" in out
    assert "root... deliverable" in out
    assert r.returncode == 0


def test_bs_smtp_dialogue(relay):
    tern, sink = relay
    dialogue = (b"EHLO client.test\r\nMAIL FROM:<bs@x.test>\r\nRCPT TO:<bs1@remote.test>\r\n"
                b"DATA\r\nSubject: via-bs\r\n\r\n..dotted\r\n.\r\nQUIT\r\n")
    r = sm(tern, "-bs", input=dialogue)
    out = r.stdout.decode()
    assert out.startswith("220 ")
    assert "250-tern.test Hello root@localhost, pleased to meet you" in out
    assert re.search(r"^250 2\.0\.0 Ok: queued as \w+\r$", out, re.M), out
    assert "221 2.0.0" in out
    m = wait_msg(sink, subject_is("via-bs"))
    assert m.mail_from == "bs@x.test" and m.body() == b".dotted\r\n"


def test_mailx_uses_sendmail(relay, tmp_path):
    tern, sink = relay
    if not shutil.which("mail"):
        pytest.fail("bsd-mailx is not installed (scripts/setup.sh installs it)")
    wrapper = tmp_path / "sendmail-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {SENDMAIL} -C {tern.conf_path} \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, HOME=str(tmp_path))
    (tmp_path / ".mailrc").write_text(f"set sendmail={wrapper}\n")
    r = subprocess.run(["mail", "-s", "from-mailx", "mx1@remote.test"], input=b"hi\n",
                       env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("from-mailx"))
    assert m.rcpt_tos == ["mx1@remote.test"] and m.body() == b"hi\r\n"


def test_cron_style_invocation(relay):
    tern, sink = relay
    r = sm(tern, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "cron1@remote.test",
           input=b"Subject: cron\n\n\xc3\xa9t\xc3\xa9\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("cron"))
    assert m.header("From") == "CronDaemon <root@tern.test>"
    assert "BODY=8BITMIME" in " ".join(m.mail_options).upper()


def test_garbage_in_maildrop_is_removed(relay):
    tern, _ = relay
    drop = tern.queue / "maildrop"
    (drop / "ABCDEFabcdef").write_bytes(b"\x00garbage that is no queue file")
    (drop / "not-an-id").write_bytes(b"junk")
    r = sm(tern, "g1@remote.test", input=b"Subject: poke\n\nx\n")  # pokes pickup
    assert r.returncode == 0
    tern.wait_log(r"warning: maildrop/ABCDEFabcdef: .*; removed")
    tern.wait_log(r"warning: maildrop/not-an-id: .*; removed")
    wait_until(lambda: not (drop / "ABCDEFabcdef").exists() and not (drop / "not-an-id").exists(),
               10, "garbage removed")
    assert tern.service_pids("cleanup"), "cleanup must survive garbage"


def test_verbose_shows_the_delivery(relay):
    """-v: a traced queue run of the new message (test_queue_run.py)."""
    tern, sink = relay
    r = sm(tern, "-v", "v1@remote.test", input=b"Subject: verbose\n\nx\n")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    m = re.search(r"^(\w{12}): queued in maildrop$", out, re.M)
    assert m, out
    assert re.search(rf"^Running .*/{m.group(1)} \(sequence 1 of 1\)$", out, re.M), out
    assert re.search(r"^>>> EHLO tern\.test$", out, re.M), out  # never a cached connection
    assert "<v1@remote.test>... Sent (" in out, out
    assert sink.matching(b"Subject: verbose")


def test_submission_while_stopped_is_delivered_after_start(res):
    sink = res.sink()
    tern = res.tern(start=False, relayhost=sink.hostport)
    subprocess.run([str(BUILD / "tools" / "tern"), "-c", str(tern.etc), "check"],
                   capture_output=True)
    # the queue layout is made by master at start: start once, stop, then submit
    tern.start()
    tern.stop()
    r = sm(tern, "down@remote.test", input=b"Subject: while-down\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert len(list((tern.queue / "maildrop").iterdir())) == 1
    tern.start()
    m = wait_msg(sink, subject_is("while-down"))
    assert m.rcpt_tos == ["down@remote.test"]
    wait_until(lambda: not list((tern.queue / "maildrop").iterdir()), 10, "maildrop empty")


# ------------------------------------------------- unprivileged submission


@pytest.fixture
def unpriv(res):
    """An instance whose etc/ is an alternate config dir of the default config,
    and set-gid copies of sendmail+terndrop that user nobody can run."""
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)
    created = not (DEFAULT_CONF_DIR / "tern.conf").exists()
    if not created:
        pytest.fail(f"{DEFAULT_CONF_DIR}/tern.conf exists; this test will not edit it")
    DEFAULT_CONF_DIR.mkdir(parents=True, exist_ok=True)
    (DEFAULT_CONF_DIR / "tern.conf").write_text(f"alternate_config_directories = {tern.etc}\n")
    bindir = tern.dir / "bin"  # pytest's tmp_path is under a 0700 directory
    bindir.mkdir()
    os.chmod(bindir, 0o755)
    shutil.copy(SENDMAIL, bindir / "sendmail")
    shutil.copy(TERNDROP, bindir / "terndrop")
    shutil.chown(bindir / "terndrop", "root", "terndrop")
    os.chmod(bindir / "terndrop", 0o2755)
    os.chmod(tern.conf_path, 0o644)
    try:
        yield tern, sink, bindir
    finally:
        (DEFAULT_CONF_DIR / "tern.conf").unlink()


def run_as_nobody(bindir, tern, *args, input=b""):
    env = tool_env(TERN_CONFIG_DIR=str(tern.etc))
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
           str(bindir / "sendmail"), *args]
    return subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=60)


def test_unprivileged_user_submits_as_himself(unpriv):
    tern, sink, bindir = unpriv
    r = run_as_nobody(bindir, tern, "p1@remote.test", input=b"Subject: from-nobody\n\nx\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("from-nobody"))
    assert m.mail_from == "nobody@tern.test"
    assert m.content.startswith(b"Received: (from nobody@localhost)")
    r = run_as_nobody(bindir, tern, "-f", "boss@x.test", "p2@remote.test",
                      input=b"Subject: nobody-f\n\nx\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("nobody-f"))
    assert m.mail_from == "boss@x.test"
    assert m.header("X-Authentication-Warning") == \
        "tern.test: nobody set sender to boss@x.test using -f"


def test_queue_run_by_a_user_restrict_queue_run_and_stopped(unpriv):
    """CLI-08: a user may run the queue until restrict_queue_run; with tern
    stopped only root can (test_queue_run.py)."""
    tern, sink, bindir = unpriv
    r = run_as_nobody(bindir, tern, "-q")
    assert r.returncode == 0, r.stderr
    tern.stop()
    r = run_as_nobody(bindir, tern, "-q")
    assert r.returncode == 69 and b"the mail system is not running" in r.stderr, r.stderr
    tern.conf_edit(restrict_queue_run="yes")
    tern.start()
    r = run_as_nobody(bindir, tern, "-q")
    assert r.returncode == 77, r.stderr
    assert b"You do not have permission to process the queue" in r.stderr


def test_unlisted_config_dir_refused_for_users(unpriv):
    tern, sink, bindir = unpriv
    (DEFAULT_CONF_DIR / "tern.conf").write_text("alternate_config_directories =\n")
    r = run_as_nobody(bindir, tern, "p3@remote.test", input=b"x\n")
    assert r.returncode == 77
    assert b"not listed in alternate_config_directories" in r.stderr


def test_q_interval_and_option_abbreviation(relay):
    tern, _ = relay
    r = sm(tern, "-q30m")  # would start the daemon (test_queue_run.py): it runs already
    assert r.returncode == 71 and b"already running" in r.stderr
    r = sm(tern, "-O", "QueueDir=/nonexistent", "-bv", "root")
    assert r.returncode == 0
    assert b"Option QueueDir used as abbreviation for QueueDirectory" in r.stderr
    r = sm(tern, "-O", "DeliveryMode=b", "-oem", "-odb", "-Am", "-bv", "root")
    assert r.returncode == 0, r.stderr


def test_q_flush_and_bp_listing(res):
    """-q goes to qmgr's public flush, -bp to showq (both through terndrop)."""
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)
    sink.stop()  # deferrals
    r = sm(tern, "-f", "lister@x.test", "held1@remote.test", input=b"Subject: q1\n\nx\n")
    assert r.returncode == 0, r.stderr
    tern.wait_log(r"to=<held1@remote\.test>.*status=deferred")
    r = sm(tern, "-bp")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "<lister@x.test>" in out and "held1@remote.test" in out
    assert re.search(r"Total requests: 1$", out, re.M), out
    sink.start()
    r = sm(tern, "-v", "-qRheld1")
    assert r.returncode == 0, r.stderr
    assert b"(sequence 1 of 1)" in r.stdout and b"<held1@remote.test>... Sent (" in r.stdout
    assert sink.matching(b"Subject: q1")  # delivered before -q returned


def test_refused_local_submission_is_returned_to_its_author(relay):
    """cleanup refuses a message with too many Received: headers; a local
    submission has no SMTP client to hear it, so the user gets a notice."""
    tern, sink = relay
    hops = "".join(f"Received: from hop{i}.example by hop{i + 1}.example\n" for i in range(30))
    r = sm(tern, "too-many@remote.test",
           input=(hops + "Subject: looping\n\nbody\n").encode())
    assert r.returncode == 0, r.stderr  # accepted into maildrop
    m = tern.wait_log(r"maildrop/(\w+): rejected: 554 5\.4\.6 Too many hops.*; returned to root")
    mbox = tern.spool / "root"
    wait_until(lambda: mbox.exists() and b"Too many hops" in mbox.read_bytes(), 20,
               "the notice in root's mailbox")
    text = mbox.read_bytes()
    assert b"From MAILER-DAEMON " in text
    assert b"Subject: Undelivered Mail Returned to Sender" in text
    assert b"Auto-Submitted: auto-generated (failure)" in text
    assert not (tern.queue / "maildrop" / m.group(1)).exists()
    assert not sink.matching(b"Subject: looping")


def test_abandoned_terndrop_temp_file_is_removed(res):
    """A .tmp.* file older than an hour (a terndrop that died mid-write) is
    cleaned up by pickup; a fresh one (a terndrop still writing) is left."""
    tern = res.tern()
    old = tern.queue / "maildrop" / ".tmp.1xV1ZZ2PX6NM"
    new = tern.queue / "maildrop" / ".tmp.1xV1ZZ2PX6NN"
    for p in (old, new):
        p.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert sm(tern, "-bp").returncode == 0
    r = sm(tern, "x@remote.test", input=b"Subject: poke\n\nx\n")  # pokes pickup
    assert r.returncode == 0, r.stderr
    tern.wait_log(r"maildrop/\.tmp\.1xV1ZZ2PX6NM: left by an interrupted submission; removed")
    assert not old.exists()
    assert new.exists()


def test_null_client_without_any_listener(mres):
    """LSN-04 / PROF-04: smtpd_listen, submission_listen and smtps_listen all
    empty: no process of the instance listens on TCP, no smtpd runs, and
    local submission still reaches the smart host."""
    sink = mres.sink()
    t = mres.tern(smtpd_listen="", submission_listen="", smtps_listen="",
                  relayhost=sink.hostport)
    assert t.service_pids("smtpd") == []
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    pids = set(t.pids())
    listening = [l for l in out.splitlines() if {int(p) for p in re.findall(r"pid=(\d+)", l)} & pids]
    assert listening == [], listening
    r = sm(t, "-f", "cron@tern.test", "ops@central.test",
           input=b"Subject: null-client-cron\n\nfrom cron\n")
    assert r.returncode == 0, r.stderr
    m = wait_msg(sink, subject_is("null-client-cron"))
    assert m.rcpt_tos == ["ops@central.test"]


def test_v_by_a_user_under_restrict_queue_listing_shows_counts_only(unpriv):
    """restrict_queue_listing: the queue run of `sendmail -v` goes on, but a
    user sees no queue ID and no transcript (as mailq shows him nothing)."""
    tern, sink, bindir = unpriv
    tern.stop()
    tern.conf_edit(restrict_queue_listing="yes")
    tern.start()
    r = run_as_nobody(bindir, tern, "-v", "p9@remote.test", input=b"Subject: hidden\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert b"restrict_queue_listing" in r.stderr, r.stderr
    assert b"Running " not in r.stdout and b">>> " not in r.stdout, r.stdout
    assert b"Sent (" not in r.stdout, r.stdout
    wait_msg(sink, lambda m: m.header("Subject") == "hidden")
    tern.wait_log(r"queue run transcript refused \(restrict_queue_listing = yes\)")
