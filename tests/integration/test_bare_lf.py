"""Bare LF policy (brief item 9, SPEC SMTP-26, DESIGN §9): commands may end in
bare LF; in DATA only CRLF.CRLF ends the message, so "\\n.\\n", "\\n.\\r\\n" and
an SMTP smuggling attempt stay inside one message."""

import re

import pytest

from ternlib import REPLY_250_QUEUED


@pytest.fixture(scope="module")
def lf(mres):
    sink = mres.sink()
    tern = mres.tern(relayhost=sink.hostport)
    return tern, sink


def normalized(content: bytes) -> bytes:
    return content.replace(b"\r\n", b"\n")


def test_commands_with_bare_lf(lf):
    tern, sink = lf
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220 ")
        r = c.cmd("HELO lf.example", eol="\n")
        assert r[0].startswith("250 "), r
        r = c.cmd("MAIL FROM:<a@example.test>", eol="\n")
        assert r == ["250 2.1.0 <a@example.test>... Sender ok"], r
        r = c.cmd("RCPT TO:<lf@sink.test>", eol="\n")
        assert r == ["250 2.1.5 <lf@sink.test>... Recipient ok"], r
        r = c.cmd("DATA", eol="\n")
        assert r[0].startswith("354"), r
        c.send(b"Subject: lf commands\r\nX-Test: lf-commands\r\n\r\nbody\r\n.\r\n")
        final = c.read_reply()
        assert REPLY_250_QUEUED.match(final[0]), final
        assert c.cmd("QUIT", eol="\n") == ["221 2.0.0 tern.test closing connection"]
    (msg,) = sink.wait_for(b"X-Test: lf-commands")
    assert msg.rcpt_tos == ["lf@sink.test"]
    assert msg.body() == b"body\r\n"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n"], ids=["LF.LF", "LF.CRLF"])
def test_bare_lf_dot_does_not_end_data(lf, fake_end):
    tern, sink = lf
    tag = "lf-dot-" + ("lflf" if fake_end == b"\n.\n" else "lfcrlf")
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO lf.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<dot@sink.test>")[0].startswith("250 ")
        assert c.cmd("DATA")[0].startswith("354")
        c.send(
            f"Subject: bare lf dot\r\nX-Test: {tag}\r\n\r\nbefore".encode()
            + fake_end
            + b"after the fake end\r\n.\r\n"
        )
        final = c.read_reply(timeout=10)
        assert REPLY_250_QUEUED.match(final[0]), final
        r = c.cmd("NOOP")
        assert r == ["250 2.0.0 OK"], f"session out of step after DATA: {r}"
    (msg,) = sink.wait_for(tag.encode())
    body = normalized(msg.body())
    assert re.search(rb"before\n\.\r?\nafter the fake end\n$", body), body


def test_smtp_smuggling_is_one_message(lf):
    tern, sink = lf
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO smuggler.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<real@sink.test>")[0].startswith("250 ")
        assert c.cmd("DATA")[0].startswith("354")
        # the smuggling body, then the client's real end of data
        c.send(
            b"Subject: smuggle\r\nX-Test: smuggle-outer\r\n\r\n"
            b"a\r\n\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nevil\r\n.\r\n"
            b"\r\n.\r\n"
        )
        c.send(b"QUIT\r\n")
        replies = []
        while True:
            try:
                r = c.read_reply(timeout=10)
            except EOFError:
                break
            replies.append(r[-1])
            if r[-1].startswith("221"):
                break
    queued = [r for r in replies if REPLY_250_QUEUED.match(r)]
    assert len(queued) == 1, f"expected one message accepted, replies: {replies}"
    assert REPLY_250_QUEUED.match(replies[0]), replies
    assert not [r for r in replies if r.startswith("354")], f"smuggled DATA ran: {replies}"
    (msg,) = sink.wait_for(b"X-Test: smuggle-outer")
    assert msg.rcpt_tos == ["real@sink.test"]
    assert msg.mail_from == "a@example.test"
    body = normalized(msg.body())
    assert body.endswith(b"\n.\nMAIL FROM:<evil@x>\nRCPT TO:<v@y>\nDATA\nevil\n"), body
    tern.wait_queue_empty(15)
    assert not [m for m in sink.snapshot() if "v@y" in m.rcpt_tos or m.mail_from == "evil@x"]
    assert len(sink.matching(b"evil")) == 1
