"""Regressions found by the fuzz targets (fuzz/README.md); one test per bug,
named after the target that found it."""

from ternlib import REPLY_250_QUEUED


def test_cleanup_headers_empty_message(mres):
    """fuzz_cleanup_headers: a message with no content at all (DATA, then
    the end dot) made cleanup compute NULL + 0 when copying the (empty) rest
    after the header section; it must be queued with our headers only."""
    sink = mres.sink()
    tern = mres.tern(relayhost=sink.hostport)
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO empty.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<empty@sink.test>")[0].startswith("250 ")
        assert c.cmd("DATA")[0].startswith("354")
        c.send(b".\r\n")
        final = c.read_reply(timeout=10)
        assert REPLY_250_QUEUED.match(final[0]), final
        c.cmd("QUIT")
    (msg,) = sink.wait_count(1)
    assert msg.rcpt_tos == ["empty@sink.test"]
    assert msg.header("Message-ID") is not None
    assert msg.header("Date") is not None
    assert msg.body() == b""
