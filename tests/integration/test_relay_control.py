"""Relay control (brief item 5, SPEC SMTP-18): a client outside mynetworks may
not relay, may send to mydestination, and must qualify its sender."""

import pytest

from ternlib import REPLY_250_QUEUED, make_message

OUTSIDER = "127.0.0.5"


@pytest.fixture(scope="module")
def closed(mres):
    sink = mres.sink()
    tern = mres.tern(relayhost=sink.hostport, mynetworks="127.0.0.1/32")
    return tern, sink


def test_relay_denied_from_outside(closed):
    tern, sink = closed
    with tern.connect(source=OUTSIDER) as c:
        assert c.greeting()[0].startswith("220 ")
        c.cmd("EHLO outsider.example")
        assert c.cmd("MAIL FROM:<out@example.test>")[0].startswith("250 2.1.0 ")
        r = c.cmd("RCPT TO:<x@far.test>")
        assert r == ["554 5.7.1 <x@far.test>: Relay access denied"], r
        r = c.cmd("RCPT TO:<root@tern.test>")
        assert r == ["250 2.1.5 <root@tern.test>... Recipient ok"], r
        final = c.data(make_message(to="x@far.test", headers={"X-Test": "relay-denied"}))
        assert REPLY_250_QUEUED.match(final[0]), final
        c.cmd("QUIT")
    # a message from inside mynetworks is relayed; the outsider's one is not
    tern.send(make_message(headers={"X-Test": "relay-barrier"}))
    sink.wait_for(b"X-Test: relay-barrier")
    assert not sink.matching(b"X-Test: relay-denied"), "relay from outside reached the sink"


def test_relay_denied_for_every_remote_domain(closed):
    tern, _ = closed
    with tern.connect(source=OUTSIDER) as c:
        c.greeting()
        c.cmd("EHLO outsider.example")
        assert c.cmd("MAIL FROM:<out@example.test>")[0].startswith("250 ")
        for rcpt in ("a@sink.test", "b@example.org", "c@tern.test.evil"):
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            assert r == [f"554 5.7.1 <{rcpt}>: Relay access denied"], r


def test_unqualified_sender_from_outside(closed):
    tern, _ = closed
    with tern.connect(source=OUTSIDER) as c:
        c.greeting()
        c.cmd("EHLO outsider.example")
        r = c.cmd("MAIL FROM:<eve>")
        assert len(r) == 1 and r[0].startswith("553 5.5.4 "), r
