"""master supervision: `tern reload` takes effect for new sessions without
dropping live ones (brief item 11); a crashed service is restarted and mail
flows again (item 12)."""

import os
import re
import signal

from ternlib import REPLY_250_QUEUED, SmtpConn, make_message, proc_stat, wait_until


def banner(tern):
    try:
        with SmtpConn(tern.host, tern.port, timeout=3) as c:
            line = c.greeting()[0]
            c.cmd("QUIT")
            return line
    except (OSError, EOFError):
        return None


def test_reload_new_banner_old_session_survives(res):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)
    assert banner(tern) == "220 tern.test ESMTP tern"

    old = tern.connect()
    try:
        assert old.greeting()[0].startswith("220 ")
        assert old.cmd("EHLO old.example")[-1].startswith("250 ")
        assert old.cmd("MAIL FROM:<old@example.test>")[0].startswith("250 ")

        tern.conf_edit(smtpd_banner="$myhostname ESMTP reloaded")
        r = tern.tern("reload")
        assert r.returncode == 0, r
        wait_until(
            lambda: banner(tern) == "220 tern.test ESMTP reloaded",
            5,
            "the new banner after tern reload",
            interval=0.2,
        )

        assert old.cmd("RCPT TO:<old@sink.test>")[0].startswith("250 ")
        final = old.data(make_message(headers={"X-Test": "reload-old-session"}))
        assert REPLY_250_QUEUED.match(final[0]), final
        assert old.cmd("QUIT")[0].startswith("221 ")
    finally:
        old.close()
    sink.wait_for(b"X-Test: reload-old-session")
    assert tern.master_pid() and proc_stat(tern.master_pid()), "master died on reload"


def test_crashed_cleanup_is_restarted(res):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, service_restart_delay="1s")
    before = tern.service_pids("cleanup")  # cleanup_workers: one per CPU
    old_pid = before[0]
    os.kill(old_pid, signal.SIGKILL)

    new = wait_until(
        lambda: [p for p in tern.service_pids("cleanup") if p not in before],
        10,
        "a new tern-cleanup process",
        interval=0.1,
    )
    assert len(new) == 1, new
    assert len(tern.service_pids("cleanup")) == len(before)
    qid = tern.send(make_message(headers={"X-Test": "after-cleanup-crash"}))
    sink.wait_for(b"X-Test: after-cleanup-crash")
    tern.wait_log(rf"{qid}: to=<rcpt@sink\.test>, .*status=sent")
    tern.wait_log(r"tern/master\[\d+\]: .*(cleanup.*restart|restart.*cleanup)", timeout=5, flags=re.I)
