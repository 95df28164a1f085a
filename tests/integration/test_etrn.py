"""ETRN (RFC 1985; issue 15, SPEC SMTP-16 / EXT-06).

Mail for d.test and e.test is queued while the next hop (a sink) is down,
with back-offs long enough that only ETRN can start another attempt; after
the sink starts, `ETRN d.test` delivers d.test's mail within seconds and
leaves e.test's deferred.  A client that smtpd_etrn_restrictions refuses,
a listener with ETRN disabled, the other replies of the RFC, and a qmgr
that does not answer (458).  At start qmgr builds its index of deferred/ a
slice at a time (etrn_index_build_rate slows it here): an ETRN meanwhile is
458, new mail flows; a message deferred by tern-local is indexed too.
"""

import os
import re
import shutil
import signal
import time

from ternlib import SmtpConn, free_port, wait_until

SLOW_RETRY = dict(queue_run_delay="1h", minimal_backoff_time="1h", maximal_backoff_time="1h")
ETRN_ONLY_LOCAL = dict(mynetworks="127.0.0.1/32",
                       smtpd_etrn_restrictions="permit_mynetworks, reject")


def queue_deferred(tern, rcpt, subject):
    """Relay one message while the sink is down; its queue ID once deferred."""
    qid = tern.send(f"Subject: {subject}\r\n\r\nx\r\n".encode(), rcpts=(rcpt,),
                    source="127.0.0.1")
    tern.wait_log(rf"{qid}: to=<{re.escape(rcpt)}>.*status=deferred")
    wait_until(lambda: deferred_ids(tern) >= {qid}, 10, f"{qid} in deferred/")
    return qid


def deferred_ids(tern):
    return {p.name for p in tern.queue_files() if "deferred" in p.parts}


def qid_hash_dir(qid):
    """lib/qid.c's qid_hash_dir: the deferred/H a queue ID lives in."""
    h = 5381
    for ch in qid.encode():
        h = (h * 33 + ch) & 0xFFFFFFFF
    return "0123456789abcdef"[h & 15]


def clone_deferred(tern, qid, count):
    """count copies of deferred qid under new IDs (tern stopped; retry time kept)."""
    src = tern.queue / "deferred" / qid_hash_dir(qid) / qid
    owner = src.stat()
    clones = [f"{qid[:7]}{k:05d}" for k in range(count)]  # 12 characters, as qid_valid wants
    for c in clones:
        (tern.queue / "deferred" / qid_hash_dir(c)).mkdir(exist_ok=True)
        dst = tern.queue / "deferred" / qid_hash_dir(c) / c
        shutil.copy2(src, dst)
        os.chown(dst, owner.st_uid, owner.st_gid)
    return clones


def subjects(sink):
    return sorted(m.header("Subject") for m in sink.snapshot())


def etrn(tern, arg, source="127.0.0.1", helo=True):
    with tern.connect(source=source) as c:
        assert c.greeting()[0].startswith("220")
        if helo:
            ehlo = c.cmd("EHLO client.test")
            assert "250-ETRN" in ehlo
        reply = c.cmd(f"ETRN {arg}")[0]
        c.cmd("QUIT")
        return reply


def test_etrn_delivers_only_that_domain_and_refused_clients_move_nothing(res):
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, **SLOW_RETRY, **ETRN_ONLY_LOCAL)
    qid_d = queue_deferred(tern, "u@d.test", "to-d")
    qid_e = queue_deferred(tern, "u@e.test", "to-e")
    sink.start()

    refused = etrn(tern, "d.test", source="127.0.0.2")
    assert refused == "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    tern.wait_log(r"NOQUEUE: reject: ETRN from unknown\[127\.0\.0\.2\]: 554 5\.7\.1")
    time.sleep(1)
    assert sink.snapshot() == [] and deferred_ids(tern) == {qid_d, qid_e}

    assert etrn(tern, "D.test") == "250 2.0.0 Queuing for node d.test started"
    sink.wait_count(1, timeout=10)
    tern.wait_log(rf"{qid_d}: removed")
    assert subjects(sink) == ["to-d"]
    assert deferred_ids(tern) == {qid_e}  # e.test's mail still waits
    assert etrn(tern, "d.test") == "251 2.0.0 OK, no messages waiting for node d.test"

    # "@domain": the domain and its subdomains
    assert etrn(tern, "@test") == "250 2.0.0 Queuing for node @test started"
    sink.wait_count(2, timeout=10)
    assert subjects(sink) == ["to-d", "to-e"]
    tern.wait_queue_empty(10)


def test_etrn_index_is_rebuilt_at_start_and_repeats_are_limited(res):
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, etrn_min_interval="1h", **SLOW_RETRY)
    qid = queue_deferred(tern, "u@d.test", "before-restart")
    tern.stop()
    tern.start()  # qmgr reads deferred/ once to build the index
    assert etrn(tern, "d.test") == "250 2.0.0 Queuing for node d.test started"
    # the sink is still down: the message is deferred again, and indexed again
    tern.wait_log(rf"{qid}: to=<u@d\.test>.*status=deferred.*\n(.*\n)*.*{qid}: to=<u@d\.test>"
                  r".*status=deferred", timeout=15)
    wait_until(lambda: deferred_ids(tern) == {qid}, 10, "deferred again")
    assert etrn(tern, "d.test") == ("458 4.7.1 Unable to queue messages for node d.test: "
                                    "ETRN repeated too soon, try again later")
    sink.start()
    assert etrn(tern, "e.test") == "251 2.0.0 OK, no messages waiting for node e.test"
    assert sink.snapshot() == []


def test_etrn_replies_and_a_listener_without_etrn(res):
    sub = free_port()
    tern = res.tern(**{"submission_listen": f"127.0.0.1:{sub}",
                       "submission.smtpd_disable_etrn_command": "yes",
                       "submission.smtpd_tls_security_level": "none",
                       "submission.smtpd_sasl_auth_enable": "no",
                       "submission.smtpd_auth_required": "no"})
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220")
        assert c.cmd("ETRN d.test")[0].startswith("503 5.5.1 ")
        assert "250-ETRN" in c.cmd("EHLO client.test")
        assert c.cmd("ETRN #queue")[0] == ("459 4.3.0 Node #queue not allowed: named queues "
                                           "are not supported")
        assert c.cmd("ETRN bad..domain")[0].startswith("501 5.5.4 Syntax: ETRN")
        assert c.cmd("ETRN")[0].startswith("501 5.5.4 ")
        assert c.cmd("ETRN none.test")[0] == ("251 2.0.0 OK, no messages waiting for node "
                                              "none.test")
        assert c.cmd("MAIL FROM:<a@x.test>")[0].startswith("250")
        assert c.cmd("ETRN d.test")[0] == "503 5.5.1 Error: MAIL transaction in progress"
        assert c.cmd("RSET")[0].startswith("250")
        # pipelined behind ETRN: answered in order once qmgr has answered
        c.send("ETRN none.test\r\nNOOP\r\n")
        assert c.read_reply()[0].startswith("251 ")
        assert c.read_reply()[0].startswith("250 ")
    # sendmail's M=E: refused on that listener, not offered
    with SmtpConn("127.0.0.1", sub) as c:
        assert c.greeting()[0].startswith("220")
        assert "250-ETRN" not in c.cmd("EHLO client.test")
        assert c.cmd("ETRN d.test")[0] == "502 5.7.0 Sorry, we do not allow this operation"


def test_noetrn_privacy_flag_refuses_etrn(res):
    tern = res.tern(smtpd_privacy_flags="noetrn")
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220")
        assert "250-ETRN" not in c.cmd("EHLO client.test")
        assert c.cmd("ETRN d.test")[0] == "502 5.7.0 Sorry, we do not allow this operation"


def test_etrn_while_qmgr_does_not_answer_is_a_temporary_failure(res):
    """qmgr stopped (SIGSTOP): after SMTPD_ETRN_TIMEOUT (10 s) the client gets
    458, and the session goes on."""
    tern = res.tern()
    qmgr = tern.service_pids("qmgr")[0]
    os.kill(qmgr, signal.SIGSTOP)
    try:
        with tern.connect(timeout=30) as c:
            assert c.greeting()[0].startswith("220")
            c.cmd("EHLO client.test")
            started = time.monotonic()
            assert c.cmd("ETRN d.test")[0] == "458 4.3.0 Unable to queue messages for node d.test"
            assert time.monotonic() - started >= 9
            assert c.cmd("NOOP")[0].startswith("250 ")
    finally:
        os.kill(qmgr, signal.SIGCONT)
    tern.wait_log(r"ETRN: tern-qmgr \(private/qmgr\): no answer in time")


def test_etrn_while_the_index_is_built_is_458_and_new_mail_still_flows(res):
    """12 deferred files read at 2 a second: the build takes about 6 s."""
    sink = res.sink(start=False)
    tern = res.tern(relayhost=sink.hostport, etrn_index_build_rate="2", **SLOW_RETRY)
    qid = queue_deferred(tern, "u@d.test", "cloned")
    tern.stop()
    clone_deferred(tern, qid, 11)
    log_before = len(tern.log())
    tern.start()
    assert etrn(tern, "d.test") == ("458 4.3.0 Unable to queue messages for node d.test: the "
                                    "queue index is being built, try again later")
    tern.wait_log(r"ETRN d\.test: refused, the ETRN index of deferred/ is still being built")
    # qmgr takes, tries and defers new mail while it reads deferred/
    new = queue_deferred(tern, "u@e.test", "during-build")
    assert "ETRN index built" not in tern.log()[log_before:]
    built = wait_until(lambda: re.search(r"ETRN index built: (\d+) deferred messages? for (\d+) "
                                         r"domains?, (\d+) files? read",
                                         tern.log()[log_before:]), 15, "the index built")
    assert built.group(1, 2) == ("13", "2")
    sink.start()
    assert etrn(tern, "d.test") == "250 2.0.0 Queuing for node d.test started"
    sink.wait_count(12, timeout=20)
    assert set(subjects(sink)) == {"cloned"}
    wait_until(lambda: deferred_ids(tern) == {new}, 10, "only e.test's mail left")


def test_etrn_finds_mail_deferred_by_local_delivery(res, it_base):
    """A pipe alias that fails with EX_TEMPFAIL (75) while a flag file exists."""
    flag = it_base / f"tempfail-{os.getpid()}-{time.monotonic_ns()}"
    flag.write_text("")
    script = it_base / f"{flag.name}.sh"
    script.write_text(f"#!/bin/sh\ncat >/dev/null\n[ -e {flag} ] && exit 75\nexit 0\n")
    os.chmod(script, 0o755)
    tern = res.tern(start=False, **SLOW_RETRY)
    tern.aliases.write_text(f'prog: "|{script}"\n')
    tern.start()
    qid = tern.send(b"Subject: local\r\n\r\nx\r\n", rcpts=("prog@tern.test",))
    tern.wait_log(rf"{qid}: to=<prog@tern\.test>.*relay=local.*status=deferred")
    wait_until(lambda: deferred_ids(tern) == {qid}, 10, f"{qid} in deferred/")
    flag.unlink()
    assert etrn(tern, "tern.test") == "250 2.0.0 Queuing for node tern.test started"
    tern.wait_log(rf"{qid}: to=<prog@tern\.test>.*relay=local.*status=sent")
    tern.wait_queue_empty(10)
