"""Per-client connection and rate limits (smtpd_client_*_limit) counted by
tern-anvil for every smtpd worker: the concurrency limit holds across
workers and frees a slot at disconnect, exempt networks are never counted,
the connection, message, recipient and AUTH rates refuse with Postfix's
replies and log lines, pipelined commands keep their order while a command
waits for the anvil, and the limits fail open when tern-anvil is killed or
stops answering (master restarts it)."""

import os
import re
import signal
import ssl
import tempfile
import time
from pathlib import Path

from test_auth import ALICE_PW, make_certificate, make_sasl_dir, plain
from ternlib import SmtpConn, free_port, wait_until

CLIENT = "127.0.0.5"  # limited
EXEMPT = "127.0.0.9"  # in smtpd_client_event_limit_exceptions
REFUSED = f"421 4.7.0 tern.test Error: too many connections from {CLIENT}"


def limited(res, **params):
    """A tern whose only exempt clients are 127.0.0.1 (the readiness probe)
    and EXEMPT; every limit off unless given."""
    base = {
        "smtpd_workers": 2,
        "smtpd_client_event_limit_exceptions": f"127.0.0.1/32 {EXEMPT}/32",
        "smtpd_client_connection_count_limit": 0,
    }
    base.update(params)
    return res.tern(**base)


def greeted(t, source):
    """A connection from source and its first reply line."""
    c = t.connect(source=source)
    return c, c.read_line()


def smtpd_pid_of_connect(t, nth):
    """The pid of the smtpd that logged the nth 'connect from unknown[CLIENT]'."""
    found = re.findall(rf"smtpd\[(\d+)\]: connect from unknown\[{re.escape(CLIENT)}\]", t.log())
    return int(found[nth]) if len(found) > nth else None


def test_connection_count_limit_holds_across_workers_and_frees_at_disconnect(res):
    t = limited(res, smtpd_client_connection_count_limit=2, anvil_status_update_time="2s")
    (a, ra), (b, rb) = greeted(t, CLIENT), greeted(t, CLIENT)
    assert ra.startswith("220 ") and rb.startswith("220 ")
    c, rc = greeted(t, CLIENT)
    assert rc == REFUSED
    assert c.wait_closed(5)
    t.wait_log(r"warning: Connection concurrency limit exceeded: 3 from unknown\[127\.0\.0\.5\] "
               r"for service smtp$")
    extra = [greeted(t, CLIENT) for _ in range(8)]  # never more than two served
    assert all(r == REFUSED for _, r in extra), [r for _, r in extra]
    a.cmd("QUIT")
    a.close()

    def slot_is_free():
        d, rd = greeted(t, CLIENT)
        extra.append((d, rd))
        return rd.startswith("220 ")

    wait_until(slot_is_free, 5, "a free slot after QUIT", interval=0.2)
    for conn in (b, c, *(x for x, _ in extra)):
        conn.close()
    t.wait_log(r"anvil\[\d+\]: statistics: max connection count \d+ for \(smtp:127\.0\.0\.5\) "
               r"at \w{3} [ \d]\d \d\d:\d\d:\d\d$", timeout=10)
    t.wait_log(r"anvil\[\d+\]: statistics: max connection rate \d+/60s for \(smtp:127\.0\.0\.5\)")


def test_concurrency_limit_is_shared_by_workers(res):
    """One session per worker: the second connection can only be served by
    the other worker, which knows of the first only through tern-anvil."""
    t = limited(res, smtpd_client_connection_count_limit=1, smtpd_client_limit=1)
    time.sleep(0.5)  # the readiness probe's session is over in its worker
    a, ra = greeted(t, CLIENT)
    assert ra.startswith("220 ")
    b, rb = greeted(t, CLIENT)
    assert rb == REFUSED
    first, second = smtpd_pid_of_connect(t, 0), smtpd_pid_of_connect(t, 1)
    assert first and second and first != second
    a.close()
    b.close()


def test_exempt_client_is_never_limited(res):
    t = limited(res, smtpd_client_connection_count_limit=1, smtpd_client_connection_rate_limit=1,
                smtpd_client_message_rate_limit=1)
    conns = [greeted(t, EXEMPT) for _ in range(4)]
    assert all(r.startswith("220 ") for _, r in conns)
    c = conns[0][0]
    c.cmd("EHLO client.example")
    for _ in range(3):
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        c.cmd("RSET")
    for conn, _ in conns:
        conn.close()
    a, ra = greeted(t, CLIENT)
    b, rb = greeted(t, CLIENT)
    assert ra.startswith("220 ") and rb == REFUSED
    a.close()
    b.close()


def test_fourth_connection_in_the_time_unit_is_refused(res):
    t = limited(res, smtpd_client_connection_rate_limit=3)
    for _ in range(3):
        with t.connect(source=CLIENT) as c:
            assert c.read_line().startswith("220 ")
            c.cmd("QUIT")
    with t.connect(source=CLIENT) as c:
        assert c.read_line() == REFUSED
        assert c.wait_closed(5)
    t.wait_log(r"warning: Connection rate limit exceeded: 4 from unknown\[127\.0\.0\.5\] "
               r"for service smtp$")
    with t.connect(source=EXEMPT) as c:
        assert c.read_line().startswith("220 ")


def test_third_mail_in_the_time_unit_gets_450_and_pipelining_keeps_order(res):
    t = limited(res, smtpd_client_message_rate_limit=2)
    with t.connect(source=CLIENT) as c:
        c.read_line()
        c.cmd("EHLO client.example")
        c.send("MAIL FROM:<a@example.test>\r\nRSET\r\nMAIL FROM:<b@example.test>\r\nRSET\r\n"
               "MAIL FROM:<c@example.test>\r\nNOOP\r\nRCPT TO:<r@sink.test>\r\n")
        replies = [c.read_line() for _ in range(7)]
    assert replies[0].startswith("250 2.1.0")
    assert replies[1] == "250 2.0.0 Reset state"
    assert replies[2].startswith("250 2.1.0")
    assert replies[3] == "250 2.0.0 Reset state"
    assert replies[4] == f"450 4.7.1 Error: too much mail from {CLIENT}"
    assert replies[5] == "250 2.0.0 OK"
    assert replies[6].startswith("503 ")  # no transaction: the MAIL was refused
    t.wait_log(r"warning: Message delivery request rate limit exceeded: 3 from "
               r"unknown\[127\.0\.0\.5\] for service smtp$")
    with t.connect(source=CLIENT) as c:  # the rate is per client, not per session
        c.read_line()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<d@example.test>")[0].startswith("450 4.7.1")


def test_third_recipient_in_the_time_unit_gets_450(res):
    t = limited(res, smtpd_client_recipient_rate_limit=2)
    with t.connect(source=CLIENT) as c:
        c.read_line()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<r1@sink.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<r2@sink.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<r3@sink.test>") == [
            f"450 4.7.1 Error: too many recipients from {CLIENT}"]
        assert c.cmd("RSET")[0].startswith("250 ")
    t.wait_log(r"warning: Recipient address rate limit exceeded: 3 from "
               r"unknown\[127\.0\.0\.5\] for service smtp$")


def test_limits_fail_open_when_anvil_is_killed_and_master_restarts_it(res):
    # restarted after the 2s a question may take: the first sessions cannot wait for it
    t = limited(res, smtpd_client_connection_count_limit=1, service_restart_delay="8s")
    with t.connect(source=CLIENT) as c:  # a worker connects to tern-anvil
        assert c.read_line().startswith("220 ")
    old = t.service_pids("anvil")
    assert len(old) == 1
    os.kill(old[0], signal.SIGKILL)
    held = []
    for _ in range(3):  # tern-anvil is gone: no connection is refused
        c, r = greeted(t, CLIENT)
        held.append(c)
        assert r.startswith("220 "), r
    wait_until(lambda: t.service_pids("anvil") and t.service_pids("anvil") != old, 20,
               "tern-anvil restarted")
    t.wait_log(r"warning: tern-anvil \(private/anvil\): (closed the connection|connection error); "
               r"connection and rate limits are not applied")
    t.wait_log(r"process tern-anvil pid \d+ killed by signal 9; restarting it")
    for c in held:
        c.close()
    time.sleep(0.5)

    def limit_applies_again():
        a, ra = greeted(t, CLIENT)
        b, rb = greeted(t, CLIENT)
        a.close()
        b.close()
        return ra.startswith("220 ") and rb == REFUSED

    # a worker that timed out asks again only after SMTPD_ANVIL_RETRY_AFTER_TIMEOUT (10s)
    wait_until(limit_applies_again, 30, "the limit to apply again with the new tern-anvil",
               interval=0.5)


def test_limits_fail_open_within_two_seconds_when_anvil_hangs(res):
    t = limited(res, smtpd_client_connection_count_limit=1)
    pid = wait_until(lambda: t.service_pids("anvil"), 15, "tern-anvil to run")[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        a, ra = greeted(t, CLIENT)
        waited = time.monotonic() - start
        b, rb = greeted(t, CLIENT)  # this worker (or the other) no longer asks for now
        assert ra.startswith("220 ") and rb.startswith("220 ")
        assert 1.5 <= waited < 5, waited
        t.wait_log(r"warning: tern-anvil \(private/anvil\): no answer within 2s; connection and "
                   r"rate limits are not applied")
        a.close()
        b.close()
    finally:
        os.kill(pid, signal.SIGCONT)


def test_third_auth_in_the_time_unit_gets_450(res):
    base = Path(tempfile.mkdtemp(prefix="sasl-", dir=str(res.base)))
    os.chmod(base, 0o755)  # tern-auth runs as mail_owner
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: auxprop", "auxprop_plugin: sasldb",
                                         "mech_list: PLAIN"], [("alice", ALICE_PW)])
    t = limited(res, smtpd_client_auth_rate_limit=2, smtpd_sasl_auth_enable="yes",
                smtpd_tls_auth_only="no", cyrus_sasl_config_path=str(sasl))
    with t.connect(source=CLIENT) as c:
        c.read_line()
        assert "250-AUTH PLAIN" in c.cmd("EHLO client.example")
        assert c.cmd("AUTH PLAIN " + plain("alice", "wrong"))[0].startswith("535 5.7.8")
        assert c.cmd("AUTH PLAIN " + plain("alice", "wrong"))[0].startswith("535 5.7.8")
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            f"450 4.7.1 Error: too many AUTH commands from {CLIENT}"]
    t.wait_log(r"warning: AUTH command rate limit exceeded: 3 from unknown\[127\.0\.0\.5\] "
               r"for service smtp$")
    with t.connect(source=EXEMPT) as c:
        c.read_line()
        c.cmd("EHLO client.example")
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == [
            "235 2.7.0 Authentication successful"]


def test_smtps_refusal_comes_after_the_handshake(res):
    base = Path(tempfile.mkdtemp(prefix="tls-", dir=str(res.base)))
    os.chmod(base, 0o755)
    make_certificate(base)
    port = free_port()
    t = limited(res, smtpd_client_connection_count_limit=1, smtps_listen=f"127.0.0.1:{port}",
                smtpd_tls_cert_file=str(base / "cert.pem"),
                smtpd_tls_key_file=str(base / "key.pem"))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns = []
    for _ in range(2):
        c = SmtpConn(t.host, port, source=CLIENT)
        c.sock = ctx.wrap_socket(c.sock, server_hostname="tern.test")
        conns.append((c, c.read_line()))
    assert conns[0][1].startswith("220 ")
    assert conns[1][1] == REFUSED
    assert conns[1][0].wait_closed(5)
    t.wait_log(r"warning: Connection concurrency limit exceeded: 2 from unknown\[127\.0\.0\.5\] "
               r"for service smtps$")
    for c, _ in conns:
        c.close()
