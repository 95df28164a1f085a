"""RFC 1413 ident lookups (SPEC SMTP-25): off by default; when on, the
greeting waits at most smtpd_ident_timeout, and the user shows in the HELO
reply and the Received: header."""

import time

from ternlib import SilentServer, SmtpConn, make_message


class FakeIdentd(SilentServer):
    """Port 113 of one loopback address, answering USERID user."""

    def __init__(self, addr: str, user: str):
        self.user = user
        self.queries = []
        super().__init__(addr, 113)

    def _accepted(self, c):
        q = c.recv(1000).decode().strip()
        self.queries.append(q)
        c.sendall(f"{q} : USERID : UNIX : {self.user}\r\n".encode())
        c.close()


def greet(t, source):
    c = SmtpConn(t.host, t.port, source=source, timeout=15)
    t0 = time.monotonic()
    g = c.greeting()
    return c, g, time.monotonic() - t0


def test_ident_user_in_helo_reply_and_received_header(res):
    identd = FakeIdentd("127.0.0.5", user="alice")
    res.others.append(identd)
    t = res.tern(smtpd_ident_lookup="yes", smtpd_ident_timeout="5s")
    c, g, _ = greet(t, "127.0.0.5")
    try:
        assert g[0].startswith("220 ")
        assert c.cmd("HELO spoof.example.com") == [
            "250 tern.test Hello IDENT:alice@[127.0.0.5], pleased to meet you"
        ]
        assert c.cmd("MAIL FROM:<a@example.com>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<root@tern.test>")[0].startswith("250 ")
        assert c.data(make_message(headers={"X-T": "ident"}))[0].startswith("250 ")
    finally:
        c.close()
    # the query names the client's port, then ours
    (q,) = identd.queries
    cport, sport = (int(x) for x in q.split(","))
    assert sport == t.port
    t.wait_log(r"ident: unknown\[127\.0\.0\.5\] is alice")
    box = t.spool / "root"
    deadline = time.time() + 20
    while time.time() < deadline and not (box.exists() and b"X-T: ident" in box.read_bytes()):
        time.sleep(0.2)
    assert b"Received: from spoof.example.com (IDENT:alice@unknown [127.0.0.5])" in box.read_bytes()


def test_silent_identd_delays_the_greeting_by_the_timeout_only(res):
    identd = SilentServer("127.0.0.6", 113)  # accepts, never answers
    res.others.append(identd)
    t = res.tern(smtpd_ident_lookup="yes", smtpd_ident_timeout="2s")
    c, g, took = greet(t, "127.0.0.6")
    try:
        assert g[0].startswith("220 ")
        assert 1.5 <= took <= 3.0, took
        assert c.cmd("HELO x.example") == ["250 tern.test Hello [127.0.0.6], pleased to meet you"]
    finally:
        c.close()


def test_ident_is_off_by_default(res):
    identd = FakeIdentd("127.0.0.7", user="bob")
    res.others.append(identd)
    t = res.tern()
    c, g, took = greet(t, "127.0.0.7")
    try:
        assert g[0].startswith("220 ") and took < 1.0
        assert c.cmd("HELO x.example") == ["250 tern.test Hello [127.0.0.7], pleased to meet you"]
    finally:
        c.close()
    time.sleep(0.5)
    assert not identd.conns
