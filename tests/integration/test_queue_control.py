"""Queue control in qmgr: qmgr.control (delete, hold, release, requeue, flush)
on private/qmgr and qmgr.flush on public/qmgr, each safe while qmgr runs.

The load tests send 100 messages to a slow sink (deliveries in flight while
the command arrives) and count Message-IDs at the sink: nothing is lost
(except what was deleted) and nothing is delivered twice.
"""

import collections
import os
import re
import time

from ternlib import (
    RuleSink,
    SlowRuleSink,
    attr_request,
    make_message,
    qmgr_control,
    wait_until,
)

LOAD = 100


def add_sink(res, sink):
    res.sinks.append(sink)
    return sink.start()


def send_many(t, n, tag):
    ids = []
    for i in range(n):
        ids.append(t.send(make_message(subject=f"{tag} {i}"), rcpts=(f"r{i}@sink.test",)))
    return ids


def message_ids(sink, tag):
    return collections.Counter(
        m.header("Message-ID") for m in sink.snapshot() if f"Subject: {tag} ".encode() in m.content
    )


def held(t):
    d = t.queue / "hold"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def deferred_one(res):
    sink = add_sink(res, RuleSink([("r0@", "451 4.3.0 try again later")]))
    t = res.tern(relayhost=sink.hostport)
    qid = t.send(make_message(subject="one 0"), rcpts=("r0@sink.test",))
    t.wait_log(rf"{qid}: to=<r0@sink.test>.*status=deferred")
    return sink, t, qid


def test_hold_keeps_a_message_until_release(res):
    sink, t, qid = deferred_one(res)
    r = qmgr_control(t, "hold", qid)
    assert r["status"] == "ok" and r["count"] == 1
    wait_until(lambda: held(t) == [qid], 10, "the message in hold/")
    sink.rules = []  # the next hop would accept now
    time.sleep(3)  # several queue runs
    assert sink.snapshot() == [] and held(t) == [qid]
    assert qmgr_control(t, "release", qid)["count"] == 1
    sink.wait_for(b"Subject: one 0")
    t.wait_queue_empty()
    assert held(t) == []
    assert len(sink.snapshot()) == 1
    t.wait_log(rf"{qid}: released from hold")


def test_delete_removes_a_deferred_message(res):
    sink, t, qid = deferred_one(res)
    r = qmgr_control(t, "delete", qid, "AAAAAAAAAAAA")
    assert r["count"] == 1 and r["missing"] == ["AAAAAAAAAAAA"]
    t.wait_queue_empty()
    t.wait_log(rf"{qid}: removed \(deleted by administrator\)")
    assert not list((t.queue / "defer").rglob(qid))
    sink.rules = []
    time.sleep(2)
    assert sink.snapshot() == []


def test_requeue_resubmits_as_a_new_message(res):
    sink, t, qid = deferred_one(res)
    assert qmgr_control(t, "requeue", qid)["count"] == 1
    m = t.wait_log(rf"{qid}: requeued as (\w+)")
    new = m.group(1)
    assert new != qid
    sink.rules = []
    assert qmgr_control(t, "flush", "ALL")["status"] == "ok"
    sink.wait_for(b"Subject: one 0")
    t.wait_queue_empty()
    assert len(sink.snapshot()) == 1
    assert f"id {new}".encode() in sink.snapshot()[0].content


def test_public_flush_with_selector_and_restriction(res):
    sink, t, qid = deferred_one(res)
    t.conf_edit(minimal_backoff_time="1h", maximal_backoff_time="1h")
    t.tern("reload")
    time.sleep(2)
    sink.rules = []
    public = t.queue / "public" / "qmgr"
    reply = dict(attr_request(public, "qmgr.flush", [("selector", "Rnobody@")]))
    assert reply["status"] == "ok" and reply["count"] == "0"
    reply = dict(attr_request(public, "qmgr.flush", [("selector", "Rr0@sink")]))
    assert reply["status"] == "ok"
    sink.wait_for(b"Subject: one 0")
    reply = dict(attr_request(public, "qmgr.flush", [("selector", "bogus")]))
    assert reply["status"] == "error"


def test_public_flush_refused_when_restricted(res):
    t = res.tern(restrict_queue_run="yes")
    public = t.queue / "public" / "qmgr"
    if os.geteuid() == 0:
        # as nobody: a forked child drops to nobody and asks (nobody is not
        # in group terndrop here, so let it through public/ for this test)
        mode = os.stat(t.queue / "public").st_mode & 0o7777
        os.chmod(t.queue / "public", 0o711)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.setgid(65534)
                os.setuid(65534)
                reply = dict(attr_request(public, "qmgr.flush"))
                os.write(w, reply.get("status", "").encode())
            finally:
                os._exit(0)
        os.close(w)
        status = os.read(r, 100).decode()
        os.waitpid(pid, 0)
        os.chmod(t.queue / "public", mode)
        assert status == "denied"
    reply = dict(attr_request(public, "qmgr.flush"))
    assert reply["status"] == "ok"


def slow_instance(res, delay=0.05):
    sink = add_sink(res, SlowRuleSink([], delay=delay))
    t = res.tern(relayhost=sink.hostport, default_destination_concurrency_limit="4")
    return sink, t


def test_hold_all_and_release_all_under_load(res):
    sink, t = slow_instance(res)
    send_many(t, LOAD, "hold")
    r = qmgr_control(t, "hold", "ALL")
    assert r["status"] == "ok"
    wait_until(lambda: not t.queue_files(), 30, "every message delivered or held")
    delivered_before = sum(message_ids(sink, "hold").values())
    assert delivered_before + len(held(t)) == LOAD
    time.sleep(2)
    assert sum(message_ids(sink, "hold").values()) == delivered_before
    assert qmgr_control(t, "release", "ALL")["status"] == "ok"
    wait_until(lambda: len(message_ids(sink, "hold")) == LOAD, 60, "every message delivered")
    t.wait_queue_empty()
    ids = message_ids(sink, "hold")
    assert len(ids) == LOAD and set(ids.values()) == {1}, "a message was duplicated or lost"


def test_requeue_all_under_load(res):
    sink, t = slow_instance(res)
    send_many(t, LOAD, "requeue")
    r = qmgr_control(t, "requeue", "ALL")
    assert r["status"] == "ok"
    wait_until(lambda: len(message_ids(sink, "requeue")) == LOAD, 60, "every message delivered")
    t.wait_queue_empty()
    time.sleep(1)
    ids = message_ids(sink, "requeue")
    assert len(ids) == LOAD and set(ids.values()) == {1}, "a message was duplicated or lost"
    assert re.search(r"requeued as \w+", t.log())


def test_delete_all_under_load(res):
    sink, t = slow_instance(res)
    send_many(t, LOAD, "delete")
    r = qmgr_control(t, "delete", "ALL")
    assert r["status"] == "ok"
    t.wait_queue_empty()
    time.sleep(1)
    ids = message_ids(sink, "delete")
    deleted = len(re.findall(r"removed \(deleted by administrator\)", t.log()))
    assert set(ids.values()) <= {1}, "a message was delivered twice"
    assert len(ids) + deleted == LOAD
    assert deleted > 0


def test_flush_all_when_next_hop_returns(res):
    sink = add_sink(res, RuleSink([]))
    t = res.tern(
        relayhost=sink.hostport, minimal_backoff_time="1h", maximal_backoff_time="1h"
    )
    sink.stop()
    ids = send_many(t, 10, "flush")
    for qid in ids:
        t.wait_log(rf"{qid}: to=<.*status=deferred")
    wait_until(lambda: len(list((t.queue / "deferred").rglob("*"))) >= 10, 10, "deferred files")
    sink.start()
    r = qmgr_control(t, "flush", "ALL")
    assert r["status"] == "ok"
    wait_until(lambda: len(message_ids(sink, "flush")) == 10, 30, "flushed messages")
    assert set(message_ids(sink, "flush").values()) == {1}
