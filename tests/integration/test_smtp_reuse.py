"""SMTP connection caching in tern-smtp: deliveries to one next hop reuse an
idle connection (fewer TCP connections than messages, each message exactly
once), a cached connection the server has closed is replaced by a fresh one
without deferring or duplicating anything (closed while idle, or found
dead at MAIL: 421 or EOF), the to= line shows conn_use=N for a reused
connection, and an idle connection gets QUIT on expiry, reload and stop."""

import re
import socket
import threading

import pytest

from ternlib import CountingSink, make_message, wait_until


def counting_sink(res, **kw) -> CountingSink:
    sink = CountingSink(**kw)
    res.sinks.append(sink)  # cleaned up with the test's resources
    return sink.start()


def send_batch(tern, tag: str, n: int):
    qids = []
    for i in range(n):
        body = f"{tag}-{i:03d}\r\n"
        qids.append(tern.send(make_message(body=body, subject=f"{tag} {i}")))
    return qids


def assert_exactly_once(sink, tag: str, n: int) -> None:
    for i in range(n):
        needle = f"{tag}-{i:03d}\r\n".encode()
        sink.wait_for(needle, timeout=30)
    tern_msgs = [m for m in sink.snapshot() if tag.encode() in m.content]
    seen = sorted(re.search(rb"%s-\d+" % tag.encode(), m.content).group(0) for m in tern_msgs)
    assert len(seen) == n, f"{len(seen)} messages for {n}: {seen}"
    assert len(set(seen)) == n, f"duplicates: {seen}"


def test_twenty_messages_fewer_connections(res):
    sink = counting_sink(res)
    # at most 4 deliveries at once: 20 messages must share connections
    # however slow the machine (with 20 at once, all may start before any ends)
    tern = res.tern(relayhost=sink.hostport, smtp_connection_cache_time_limit="10s",
                    default_destination_concurrency_limit="4")
    qids = send_batch(tern, "reuse20", 20)
    assert_exactly_once(sink, "reuse20", 20)
    tern.wait_queue_empty()
    assert sink.connections < 20, f"{sink.connections} connections for 20 messages"
    lines = [l for l in tern.log().splitlines() if "to=<" in l and "status=sent" in l]
    assert sum(1 for q in qids for l in lines if f": {q}: " in l) == 20


def test_closed_cached_connection_is_replaced(res):
    sink = counting_sink(res)
    tern = res.tern(relayhost=sink.hostport, smtp_connection_cache_time_limit="60s")
    send_batch(tern, "first", 5)
    assert_exactly_once(sink, "first", 5)
    tern.wait_queue_empty()
    # the server side goes away: the connections tern keeps idle are dead now
    sink.stop()
    sink.start()
    qids = send_batch(tern, "second", 5)
    assert_exactly_once(sink, "second", 5)
    tern.wait_queue_empty()
    log = tern.log()
    for q in qids:
        assert not re.search(rf"{q}: to=<[^>]*>.*status=deferred", log), log[-3000:]
        assert len(re.findall(rf"{q}: to=<[^>]*>.*status=sent", log)) == 1


def test_log_shows_conn_use(res):
    sink = counting_sink(res)
    tern = res.tern(relayhost=sink.hostport, smtp_connection_cache_time_limit="30s")
    first = send_batch(tern, "use1", 1)[0]
    sink.wait_for(b"use1-000\r\n")
    tern.wait_log(rf"{first}: to=<.*status=sent")
    second = send_batch(tern, "use2", 1)[0]
    sink.wait_for(b"use2-000\r\n")
    m = tern.wait_log(rf"{second}: to=<[^\n]*status=sent")
    assert re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, conn_use=2, tls=no, delay=", m.group(0)), m.group(0)
    first_line = tern.wait_log(rf"{first}: to=<[^\n]*").group(0)
    assert "conn_use" not in first_line
    assert sink.connections == 1


class OneShotServer:
    """A raw SMTP server on loopback (lockstep, no extensions) whose first
    connection takes one message and then answers the next MAIL FROM with
    `fail` ("421" + close, or "eof": close without a word); later
    connections take everything (fail "": the first one too).  messages: the DATA contents received."""

    def __init__(self, fail: str):
        self.fail = fail
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.connections = 0
        self.quits = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                first = self.connections == 1
            threading.Thread(target=self.session, args=(conn, first), daemon=True).start()

    def session(self, conn, first: bool):
        f = conn.makefile("rb")
        conn.sendall(b"220 oneshot.test ESMTP\r\n")
        mails = 0
        try:
            for line in f:
                verb = line[:4].upper()
                if verb == b"MAIL":
                    mails += 1
                    if first and mails == 2:
                        if self.fail == "421":
                            conn.sendall(b"421 4.4.2 oneshot.test closing idle connection\r\n")
                        return
                if verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    data = b""
                    for dline in f:
                        if dline == b".\r\n":
                            break
                        data += dline
                    with self.lock:
                        self.messages.append(data)
                    conn.sendall(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    with self.lock:
                        self.quits += 1
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 oneshot.test\r\n")
        finally:
            f.close()
            conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("fail", ["421", "eof"])
def test_dead_cached_connection_falls_back(res, fail):
    server = OneShotServer(fail)
    try:
        tern = res.tern(relayhost=f"[127.0.0.1]:{server.port}",
                        smtp_connection_cache_time_limit="30s")
        first = send_batch(tern, "one", 1)[0]
        tern.wait_log(rf"{first}: to=<[^\n]*status=sent")
        second = send_batch(tern, "two", 1)[0]
        line = tern.wait_log(rf"{second}: to=<[^\n]*status=\w+").group(0)
        assert "status=sent" in line, line
        assert "conn_use" not in line, line  # delivered over the fresh connection
        tern.wait_log(rf"{second}: cached connection unusable")
        with server.lock:
            got = list(server.messages)
        assert [m.count(b"two-000") for m in got] == [0, 1], got
        assert server.connections == 2
        assert "status=deferred" not in tern.log()
    finally:
        server.close()


@pytest.mark.parametrize("how", ["expiry", "reload", "stop"])
def test_idle_connection_gets_quit(res, how):
    server = OneShotServer("")
    try:
        limit = "1s" if how == "expiry" else "60s"
        tern = res.tern(relayhost=f"[127.0.0.1]:{server.port}",
                        smtp_connection_cache_time_limit=limit)
        qid = send_batch(tern, "idle", 1)[0]
        tern.wait_log(rf"{qid}: to=<[^\n]*status=sent")
        assert server.quits == 0
        if how == "reload":
            tern.tern("reload")  # SIGHUP: smtp drains
        elif how == "stop":
            tern.stop()
        wait_until(lambda: server.quits == 1, 10, "QUIT on the idle connection")
        assert server.connections == 1
    finally:
        server.close()
