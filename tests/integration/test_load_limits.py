"""Load-average limits (SPEC PERF-05, TH-05; docs/smtpd.md "Load limits"):
smtpd_refuse_load answers new connections 421 4.3.2; queue_defer_load keeps
newly arrived mail queued until the load drops.  load_average_file fakes
the load."""

import time

from ternlib import make_message


def set_load(tern, value):
    (tern.dir / "loadavg").write_text(f"{value} 0.50 0.40 1/200 4242\n")


def test_connections_are_refused_above_smtpd_refuse_load(res):
    tern = res.tern(start=False, smtpd_refuse_load="12",
                    load_average_file="$queue_directory/../loadavg")
    set_load(tern, 1)
    tern.start()
    set_load(tern, 15)
    with tern.connect() as c:
        assert c.read_reply() == ["421 4.3.2 tern.test Too busy, try again later"]
        assert c.wait_closed(5)
    tern.wait_log(r"rejecting connections on daemon MTA: load average: 15$")
    set_load(tern, 12.5)
    with tern.connect() as c:
        assert c.read_reply() == ["421 4.3.2 tern.test Too busy, try again later"]
    set_load(tern, 1)
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220 tern.test ESMTP")
        assert c.cmd("QUIT") == ["221 2.0.0 tern.test closing connection"]
    set_load(tern, 12)  # "above": 12 itself is served
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220 ")


def test_new_mail_waits_above_queue_defer_load(res):
    sink = res.sink()
    tern = res.tern(start=False, relayhost=sink.hostport, queue_defer_load="8",
                    load_average_file=f"{res.base}/la-defer")
    (res.base / "la-defer").write_text("10\n")
    tern.start()
    qid = tern.send(make_message("deferred by load", body="load test\r\n"))
    tern.wait_log(r"qmgr\[\d+\]: deferring delivery: load average 10 > queue_defer_load 8$")
    time.sleep(6)  # more than one incoming scan and several queue runs
    assert not sink.matching(b"load test")
    assert [p.name for p in tern.queue_files()] == [qid]
    (res.base / "la-defer").write_text("1\n")
    sink.wait_for(b"load test", timeout=15)
    tern.wait_log(r"load average 1 <= queue_defer_load 8: delivering new mail again$")
    tern.wait_queue_empty()
