"""sendmail's daemon and queue-run flags (issue 13; SPEC CLI-05, CLI-06,
CLI-07, TH-07, QUEUE-16, OPS-08).

-bd / -q<interval> start tern with the interval as queue_run_delay; -q runs
the queue in the foreground and returns when every selected message had its
attempt, with the daemon running or stopped; -v prints the transcript.
Instances use long back-offs and queue_run_delay so that only the -q under
test can deliver a deferred message.
"""

import base64
import re
import socket
import subprocess

from peerutil import TlsPeer, start_peer, table_dir, write_table
from ternlib import BUILD, SlowRuleSink, attr_encode, proc_cmdline, qmgr_control, wait_until

SENDMAIL = BUILD / "tools" / "sendmail"

SLOW_RETRY = dict(queue_run_delay="1h", minimal_backoff_time="1h", maximal_backoff_time="1h")


def sm(tern, *args, input=b"", timeout=60):
    return subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), *args], input=input,
                          capture_output=True, timeout=timeout)


def queue_deferred(tern, rcpt, subject, sender="a@x.test"):
    """Submit a message while the sink is down; its queue ID once deferred."""
    r = sm(tern, "-f", sender, rcpt, input=f"Subject: {subject}\n\nx\n".encode())
    assert r.returncode == 0, r.stderr
    qid = tern.wait_log(rf"(\w+): to=<{re.escape(rcpt)}>.*status=deferred").group(1)
    # qmgr has recorded the attempt: the file waits in deferred/
    wait_until(lambda: any(p.name == qid and "deferred" in p.parts for p in tern.queue_files()),
               10, f"{qid} in deferred/")
    return qid


def subjects(sink):
    return sorted(m.header("Subject") for m in sink.snapshot())


def test_bd_q1h_starts_the_daemon_with_a_one_hour_queue_run_delay(res):
    tern = res.tern(start=False)
    r = sm(tern, "-bd", "-q1h")
    assert r.returncode == 0, r.stderr
    tern.wait_log(r"starting daemon \([0-9.]+\): SMTP\+queueing@01:00:00")
    wait_until(lambda: tern.service_pids("qmgr"), 10, "qmgr running")
    qmgr = tern.service_pids("qmgr")[0]
    assert "queue_run_delay=3600s" in proc_cmdline(qmgr)
    r = sm(tern, "-bd")
    assert r.returncode == 71
    assert b"already running" in r.stderr
    tern.stop()


def test_q_v_runs_the_queue_in_the_foreground(res):
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY)
    qid = queue_deferred(tern, "u1@remote.test", "fg")
    sink.start()
    r = sm(tern, "-q", "-v")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"Running {tern.queue}/{qid} (sequence 1 of 1)" in out, out
    assert re.search(r"^Connecting to .* via esmtp\.\.\.$", out, re.M), out
    assert re.search(r"^220 ", out, re.M), out  # the server's lines as they came
    assert re.search(r"^>>> EHLO tern\.test$", out, re.M), out
    assert re.search(r"^>>> MAIL From:<a@x\.test> SIZE=\d+", out, re.M), out
    assert re.search(r"^250 ", out, re.M), out
    assert re.search(r"^>>> QUIT$", out, re.M), out
    assert re.search(r"^<u1@remote\.test>\.\.\. Sent \(250 ", out, re.M), out
    assert subjects(sink) == ["fg"]  # there when -q returned


def test_q_with_the_daemon_stopped_delivers_and_exits_0(res):
    """TH-07 / QUEUE-16: queue to a down sink, stop tern, start the sink,
    `sendmail -q; echo $?` prints 0 and the sink has the message."""
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY)
    queue_deferred(tern, "u2@remote.test", "stopped")
    tern.stop()
    sink.start()
    r = sm(tern, "-q")
    assert r.returncode == 0, r.stderr
    assert subjects(sink) == ["stopped"]
    assert tern.master_pid() is None and not tern.pids()  # the temporary instance is gone
    assert not tern.queue_files()
    tern.wait_log(r"starting daemon \([0-9.]+\): queueing@01:00:00")  # no SMTP listener


def test_q_selectors_by_recipient_negated_and_queue_id(res):
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY)
    queue_deferred(tern, "x@a.test", "to-a")
    queue_deferred(tern, "y@b.test", "to-b")
    qid_c = queue_deferred(tern, "z@c.test", "to-c")
    sink.start()
    r = sm(tern, "-v", "-qR@a.test")
    assert r.returncode == 0, r.stderr
    assert b"(sequence 1 of 1)" in r.stdout and b"<x@a.test>... Sent (" in r.stdout
    assert subjects(sink) == ["to-a"]
    r = sm(tern, "-v", f"-qI{qid_c}")
    assert r.returncode == 0, r.stderr
    assert b"(sequence 1 of 1)" in r.stdout
    assert subjects(sink) == ["to-a", "to-c"]
    r = sm(tern, "-v", "-q!R@c.test")  # only b.test is left that is not c.test
    assert r.returncode == 0, r.stderr
    assert b"<y@b.test>... Sent (" in r.stdout
    assert subjects(sink) == ["to-a", "to-b", "to-c"]
    r = sm(tern, "-qX")
    assert r.returncode == 64


def test_q_v_hides_the_auth_secret(res):
    password = "Qrun-secret-pw-9Zx4"
    peer = TlsPeer(users={"alice": password}, auth_require_tls=False, mechanisms=("PLAIN",))
    res.sinks.append(peer)
    sasl = write_table(table_dir(res) / "sasl_passwd", [f"{peer.hostport} alice:{password}"])
    tern = res.tern(relayhost=peer.hostport, smtp_sasl_auth_enable="yes",
                    smtp_sasl_password_maps=sasl, smtp_sasl_security_options="noanonymous",
                    **SLOW_RETRY)
    queue_deferred(tern, "u3@remote.test", "auth")
    start_peer(res, peer)
    r = sm(tern, "-q", "-v")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.search(r"^>>> AUTH PLAIN <hidden>$", out, re.M), out
    assert re.search(r"^235 ", out, re.M), out
    assert "<u3@remote.test>... Sent (" in out, out
    assert peer.auth_attempts == [("PLAIN", "alice", True)]
    for form in (password, base64.b64encode(f"\0alice\0{password}".encode()).decode()):
        assert form not in out


def test_v_submission_prints_the_delivery_transcript(res):
    """CLI-05: printf 'Subject: v\\n\\nx\\n' | sendmail -v -f a@x u@sink.test"""
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY)
    r = sm(tern, "-v", "-f", "a@x", "u@sink.test", input=b"Subject: v\n\nx\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.search(r"^>>> EHLO", out, re.M), out
    assert re.search(r"^>>> MAIL From:<a@x> SIZE=", out, re.M), out
    assert re.search(r"Sent \(", out), out
    assert subjects(sink) == ["v"]
    # a local delivery: no dialogue, the recipient's line
    r = sm(tern, "-v", "root", input=b"Subject: local\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^<root@tern\.test>\.\.\. Sent \(", r.stdout.decode(), re.M), r.stdout


def test_concurrent_runs_both_wait_for_their_messages(res):
    """Two `sendmail -q` at once (cron next to an admin): each returns only
    after every message had its attempt, whichever run loaded it."""
    sink = SlowRuleSink([], delay=0.3)
    res.sinks.append(sink)
    tern = res.tern(relayhost=sink.hostport, default_destination_concurrency_limit="1",
                    **SLOW_RETRY)
    for i in range(4):
        queue_deferred(tern, f"c{i}@remote.test", f"both {i}")
    sink.start()
    runs = [subprocess.Popen([str(SENDMAIL), "-C", str(tern.conf_path), "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in runs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert len(sink.snapshot()) == 4  # there when this run returned


def public_run(tern, selector):
    """A wait=yes client of public/qmgr: its socket, request sent."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(tern.queue / "public" / "qmgr"))
    if selector is not None:
        s.sendall(attr_encode("qmgr.flush", [("selector", selector), ("wait", "yes")]))
    return s


def read_to_eof(s):
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_public_clients_cannot_take_private_qmgr_slots(res):
    """public/qmgr has its own QMGR_PUBLIC_CLIENT_LIMIT (32): a user's idle
    or waiting clients cannot starve cleanup's trigger or `tern` control
    requests; a run's client is closed once qmgr.run.done is written."""
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY)
    done = []
    for _ in range(40):  # each run ends at once: done, then qmgr closes its end
        s = public_run(tern, "Rnobody@nowhere.invalid")
        assert b"qmgr.run.done" in read_to_eof(s)
        done.append(s)  # kept open here: the slot is free all the same
    idle = [public_run(tern, None) for _ in range(40)]
    try:
        tern.wait_log(r"public/qmgr: too many clients, connection refused")
        assert qmgr_control(tern, "flush", "ALL")["status"] == "ok"  # private/qmgr
        r = sm(tern, "-f", "a@x.test", "cap@remote.test", input=b"Subject: cap\n\nx\n")
        assert r.returncode == 0, r.stderr
        wait_until(lambda: subjects(sink) == ["cap"], 20, "delivery while public/qmgr is full")
    finally:
        for s in idle + done:
            s.close()
