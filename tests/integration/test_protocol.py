"""SMTP server protocol: exact reply lines for every command, order error and
limit (brief item 4; SPEC SMTP-02..24, EXT-01..05)."""

import re
import time

import pytest

from ternlib import REPLY_250_QUEUED, make_message

SIZE_LIMIT = 100000
RCPT_LIMIT = 3
HARD_ERROR_LIMIT = 10

# EXT-01: every reply after the greeting carries an enhanced status code.
# Not covered (RFC 2034 §3 and sendmail/Postfix practice): the greeting, the
# HELO/EHLO replies, and the 354 intermediate reply to DATA.
EXT01 = re.compile(r"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3} ")


def ext01_violations(conn):
    bad = []
    for command, reply in conn.transcript:
        if command == "<greeting>" or command.upper().startswith(("EHLO", "HELO")):
            continue
        for line in reply:
            if line.startswith("354"):
                continue
            if not EXT01.match(line):
                bad.append((command[:60], line))
    return bad


class Expect:
    """Collect every mismatch of a session, so one run reports them all."""

    def __init__(self, conn):
        self.conn = conn
        self.errors = []

    def exact(self, command, expected):
        reply = self.conn.cmd(command)
        if reply != expected:
            self.errors.append(f"{command!r}: expected {expected!r}, got {reply!r}")
        return reply

    def match(self, command, pattern):
        reply = self.conn.cmd(command)
        if len(reply) != 1 or not re.match(pattern, reply[0]):
            self.errors.append(f"{command!r}: expected /{pattern}/, got {reply!r}")
        return reply

    def check(self):
        self.errors += [f"no enhanced status code: {c!r} -> {l!r}" for c, l in ext01_violations(self.conn)]
        assert not self.errors, "\n".join(self.errors)


@pytest.fixture(scope="module")
def proto(mres):
    sink = mres.sink(dsn=True)
    tern = mres.tern(
        relayhost=sink.hostport,
        message_size_limit=SIZE_LIMIT,
        smtpd_recipient_limit=RCPT_LIMIT,
        smtpd_hard_error_limit=HARD_ERROR_LIMIT,
        hopcount_limit=25,
    )
    return tern, sink


def session(tern, ehlo=True, **kw):
    c = tern.connect(**kw)
    c.greeting()
    if ehlo:
        c.cmd("EHLO client.example")
    return c


def barrier(tern, sink, tag):
    """Relay one small message and wait until the sink has it."""
    marker = f"X-Barrier: {tag}"
    tern.send(make_message(subject="barrier", headers={"X-Barrier": tag}))
    sink.wait_for(marker.encode())


def test_greeting_and_ehlo(proto):
    tern, _ = proto
    with tern.connect() as c:
        greeting = c.greeting()
        assert len(greeting) == 1 and re.match(r"^220 tern\.test ESMTP", greeting[0]), greeting
        reply = c.cmd("EHLO client.example")
        assert reply[0].startswith("250-tern.test"), reply
        assert reply[-1] == "250 HELP", reply
        assert all(l.startswith("250-") for l in reply[:-1]), reply
        keywords = [l[4:] for l in reply[1:]]
        for kw in ("ENHANCEDSTATUSCODES", "PIPELINING", "8BITMIME", f"SIZE {SIZE_LIMIT}", "DSN"):
            assert kw in keywords, f"{kw} missing from EHLO: {reply}"
        c.cmd("QUIT")


def test_command_replies_and_order_errors(proto):
    tern, sink = proto
    with session(tern) as c:
        e = Expect(c)
        e.exact("mail from: a@example.test", ["250 2.1.0 a@example.test... Sender ok"])
        e.exact("MAIL FROM:<b@example.test>", ["503 5.5.0 Sender already specified"])
        e.exact("RSET", ["250 2.0.0 Reset state"])
        e.exact("RCPT TO:<x@sink.test>", ["503 5.0.0 Need MAIL before RCPT"])
        e.exact("DATA", ["503 5.0.0 Need MAIL command"])
        e.match("MAIL FROM:<>", r"^250 2\.1\.0 ")
        e.exact("DATA", ["503 5.0.0 Need RCPT (recipient)"])
        e.exact("RCPT TO:<x@sink.test>", ["250 2.1.5 <x@sink.test>... Recipient ok"])
        e.exact("FOO bar", ['500 5.5.1 Command unrecognized: "FOO bar"'])
        e.exact("NOOP", ["250 2.0.0 OK"])
        final = c.data(make_message(subject="order", headers={"X-Test": "order-errors"}))
        if not REPLY_250_QUEUED.match(final[0]):
            e.errors.append(f"end of DATA: {final!r}")
        e.exact("QUIT", ["221 2.0.0 tern.test closing connection"])
        e.check()
    (msg,) = sink.wait_for(b"X-Test: order-errors")
    assert msg.mail_from == ""
    assert msg.rcpt_tos == ["x@sink.test"]


def test_size_declared_over_limit(proto):
    tern, _ = proto
    with session(tern) as c:
        r = c.cmd(f"MAIL FROM:<a@example.test> SIZE={SIZE_LIMIT * 2}")
        assert len(r) == 1 and r[0].startswith("552 5.2.3 "), r
        r = c.cmd(f"MAIL FROM:<a@example.test> SIZE={SIZE_LIMIT // 2}")
        assert r[0].startswith("250 2.1.0 "), r
        assert not ext01_violations(c)


def test_data_over_limit_rejected_and_not_delivered(proto):
    tern, sink = proto
    with session(tern) as c:
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<big@sink.test>")[0].startswith("250 ")
        assert c.cmd("DATA")[0].startswith("354")
        line = b"y" * 78 + b"\r\n"
        content = make_message(subject="too big", headers={"X-Test": "oversize"}, body="")
        content += line * (SIZE_LIMIT * 2 // len(line))
        try:
            c.send(content + b".\r\n")
        except OSError:
            pass  # the server may stop reading after it has answered
        final = c.read_reply(timeout=15)
        c.transcript.append(("<end of data>", final))
        assert len(final) == 1 and re.match(r"^552 5\.\d{1,3}\.\d{1,3} ", final[0]), final
        assert not ext01_violations(c)
    barrier(tern, sink, "after-oversize")
    assert not sink.matching(b"X-Test: oversize"), "an oversized message reached the sink"


def test_recipient_limit(proto):
    tern, _ = proto
    with session(tern) as c:
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        replies = [c.cmd(f"RCPT TO:<r{i}@sink.test>") for i in range(5)]
        for i in range(RCPT_LIMIT):
            assert replies[i] == [f"250 2.1.5 <r{i}@sink.test>... Recipient ok"], replies
        for r in replies[RCPT_LIMIT:]:
            assert len(r) == 1 and r[0].startswith("452 4.5.3 "), replies
        assert not ext01_violations(c)


def test_hard_error_limit_disconnects(proto):
    tern, _ = proto
    with session(tern) as c:
        replies = []
        for i in range(HARD_ERROR_LIMIT + 2):
            try:
                r = c.cmd(f"BOGUS{i}")
            except (EOFError, OSError) as e:
                pytest.fail(f"connection closed without 421 after {replies}: {e!r}")
            replies.append(r)
            if r[0].startswith("421"):
                break
        last = replies[-1]
        assert last[0].startswith("421 4.7.0 "), replies
        assert len(replies) in (HARD_ERROR_LIMIT, HARD_ERROR_LIMIT + 1), replies
        assert all(r[0].startswith("500 5.5.1 ") for r in replies[:-1]), replies
        assert c.wait_closed(5), "connection still open after 421"


def test_idle_timeout(res):
    tern = res.tern(smtpd_timeout="2s")
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO client.example")
        start = time.monotonic()
        reply = c.read_reply(timeout=8)
        elapsed = time.monotonic() - start
        assert len(reply) == 1 and reply[0].startswith("421 4.4.2 "), reply
        assert 1.5 <= elapsed <= 5, f"421 after {elapsed:.1f}s with smtpd_timeout=2s"
        assert c.wait_closed(3)


def test_command_line_too_long(proto):
    tern, _ = proto
    with session(tern) as c:
        r = c.cmd("NOOP " + "x" * 3000)
        assert len(r) == 1 and r[0].startswith("500 5.5.2 "), r
        assert not ext01_violations(c)


def hop_message(hops: int, tag: str) -> bytes:
    received = "".join(
        f"Received: from hop{i}.example (hop{i}.example [192.0.2.{i + 1}])\r\n"
        f"\tby relay{i}.example with ESMTP id H{i}; Mon, 02 Nov 2026 10:00:{i:02d} +0000\r\n"
        for i in range(hops)
    )
    return received.encode() + make_message(subject="hops", headers={"X-Test": tag})


def test_hop_count(proto):
    tern, sink = proto
    with session(tern) as c:
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<hops@sink.test>")[0].startswith("250 ")
        final = c.data(hop_message(26, "hops-26"))
        assert len(final) == 1 and final[0].startswith("554 5.4.6 "), final

        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<hops@sink.test>")[0].startswith("250 ")
        final = c.data(hop_message(24, "hops-24"))
        assert REPLY_250_QUEUED.match(final[0]), final
        assert not ext01_violations(c)
    sink.wait_for(b"X-Test: hops-24")
    assert not sink.matching(b"X-Test: hops-26")


def test_dsn_and_body_parameters(proto):
    tern, sink = proto
    with session(tern) as c:
        r = c.cmd("MAIL FROM:<a@example.test> RET=HDRS ENVID=env-123 BODY=8BITMIME")
        assert r[0].startswith("250 2.1.0 "), r
        # "+2B" is xtext for "+": it must reach the next hop still encoded
        r = c.cmd("RCPT TO:<dsn@sink.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2Bext@y")
        assert r[0].startswith("250 2.1.5 "), r
        final = c.data(make_message(subject="dsn", headers={"X-Test": "dsn-params"}))
        assert REPLY_250_QUEUED.match(final[0]), final
        assert not ext01_violations(c)
    (msg,) = sink.wait_for(b"X-Test: dsn-params")
    ((addr, opts),) = msg.rcpts
    assert addr == "dsn@sink.test"
    opts = [o.upper() for o in opts]
    assert "NOTIFY=SUCCESS,FAILURE" in opts, f"sink saw RCPT options {opts}"
    assert "ORCPT=RFC822;X+2BEXT@Y" in opts, f"sink saw RCPT options {opts}"


def test_unknown_mail_parameter(proto):
    tern, _ = proto
    with session(tern) as c:
        r = c.cmd("MAIL FROM:<a@example.test> FOO=bar")
        assert len(r) == 1 and r[0].startswith("555 5.5.4 "), r
        assert not ext01_violations(c)
