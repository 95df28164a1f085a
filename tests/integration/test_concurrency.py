"""Concurrency (brief item 8): a client trickling one byte per second and 200
idle sessions do not slow down a third client's transaction."""

import threading
import time

from ternlib import REPLY_250_QUEUED, SmtpConn, make_message, wait_until


def test_slow_and_idle_clients_do_not_stall_others(res):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)

    stop = threading.Event()
    trickle_result = {}

    def trickler():
        try:
            with tern.connect(timeout=30) as c:
                c.greeting()
                sent = 0
                for ch in b"NOOP " + b"t" * 1000:
                    if stop.is_set() and sent >= 5:  # at least "NOOP "
                        break
                    c.send(bytes([ch]))
                    sent += 1
                    trickle_result["sent"] = sent
                    time.sleep(1)
                c.send(b"\r\n")
                trickle_result["reply"] = c.read_reply(timeout=10)
                trickle_result["sent"] = sent
        except Exception as e:
            trickle_result["error"] = repr(e)

    t = threading.Thread(target=trickler)
    t.start()
    idle = []
    try:
        for i in range(200):
            c = SmtpConn(tern.host, tern.port, timeout=10)
            idle.append(c)
            assert c.greeting()[0].startswith("220 "), f"idle session {i}"
        wait_until(lambda: trickle_result.get("sent", 0) >= 2, 10, "the trickler to be under way")

        with tern.connect() as c:
            c.greeting()
            c.cmd("EHLO quick.example")
            assert c.cmd("MAIL FROM:<q@example.test>")[0].startswith("250 ")
            assert c.cmd("RCPT TO:<q@sink.test>")[0].startswith("250 ")
            assert c.cmd("DATA")[0].startswith("354")
            c.send(make_message(headers={"X-Test": "quick"}) + b".\r\n")
            start = time.monotonic()
            final = c.read_reply(timeout=10)
            elapsed = time.monotonic() - start
            assert REPLY_250_QUEUED.match(final[0]), final
            assert elapsed < 1.0, f"250 after DATA took {elapsed:.2f}s"
            c.cmd("QUIT")
        sink.wait_for(b"X-Test: quick")

        # the idle sessions are all still served
        for i in (0, 99, 199):
            assert idle[i].cmd("NOOP") == ["250 2.0.0 OK"], f"idle session {i}"
    finally:
        stop.set()
        t.join(20)
        for c in idle:
            c.close()
    assert "error" not in trickle_result, trickle_result
    assert trickle_result["reply"] == ["250 2.0.0 OK"], trickle_result
