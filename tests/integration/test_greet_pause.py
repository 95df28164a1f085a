"""GreetPause (SPEC SPAM-05, SMTP-26; docs/smtpd.md "Greet pause"): a client
that talks before the greeting gets 554 and nothing it sends is done; a
polite client waits smtpd_greet_pause for its 220; mynetworks clients never
wait; without the pause the same blast of commands is a normal session."""

import re
import socket
import time

import pytest

from ternlib import wait_until

OUTSIDER = "127.0.0.5"  # not in mynetworks (127.0.0.1/32)

# the seed's smtp-session file (003:2946), fired with `cat smtp-session | nc`
SESSION = [
    "HELO deer-run.test",
    "MAIL FROM:<hal@deer-run.test>",
    "RCPT TO:<hal@sink.test>",
    "DATA",
    "From: hal@deer-run.test",
    "To: hal@sink.test",
    "Subject: testing",
    "",
    "1 2 3",
    ".",
    "QUIT",
]

# 003:3003-3026, with sendmail 8.17's answer to the early HELO
EARLY_TALKER_REPLIES = [
    "554 tern.test ESMTP not accepting messages",
    "554 5.5.0 SMTP protocol error",
    "550 5.0.0 Command rejected",
    "550 5.0.0 Command rejected",
    "550 5.0.0 Command rejected",
    '500 5.5.1 Command unrecognized: "From: hal@deer-run.test"',
    '500 5.5.1 Command unrecognized: "To: hal@sink.test"',
    '500 5.5.1 Command unrecognized: "Subject: testing"',
    '500 5.5.1 Command unrecognized: ""',
    '500 5.5.1 Command unrecognized: "1 2 3"',
    '500 5.5.1 Command unrecognized: "."',
    "221 2.0.0 tern.test closing connection",
]


@pytest.fixture(scope="module")
def paused(mres):
    sink = mres.sink()
    tern = mres.tern(
        relayhost=sink.hostport,
        relay_domains="sink.test",
        mynetworks="127.0.0.1/32",
        smtpd_greet_pause="1s",
    )
    return tern, sink


def session_bytes(eol):
    """The session with eol after each command line.  The message itself
    keeps CRLF: in DATA only CRLF.CRLF ends a message (test_bare_lf.py)."""
    data = SESSION.index("DATA")
    body = SESSION.index(".")
    return ("".join(line + eol for line in SESSION[: data + 1])
            + "".join(line + "\r\n" for line in SESSION[data + 1 : body + 1])
            + "".join(line + eol for line in SESSION[body + 1 :])).encode()


def blast(tern, eol="\r\n", source=OUTSIDER, timeout=10.0, early_lf=False):
    """Send the whole session right after connect, like `cat | nc`; every
    reply line until the server closes.  early_lf: every line ends in LF."""
    with socket.create_connection((tern.host, tern.port), timeout,
                                  source_address=(source, 0)) as s:
        s.sendall(("\n".join(SESSION) + "\n").encode() if early_lf else session_bytes(eol))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").splitlines()


def test_early_talker_gets_554_and_nothing_is_done(paused):
    tern, sink = paused
    replies = blast(tern)
    assert replies == EARLY_TALKER_REPLIES
    tern.wait_log(r"rejecting commands from unknown\[127\.0\.0\.5\] \[127\.0\.0\.5\] due to "
                  r"pre-greeting traffic after 0 seconds$")
    tern.wait_log(r"disconnect from unknown\[127\.0\.0\.5\] helo=0/1 mail=0/1 rcpt=0/1 "
                  r"data=0/1 quit=1 unknown=0/6 commands=1/11$")
    time.sleep(1.5)  # a queue run and more
    assert not sink.matching(b"1 2 3")
    assert not tern.queue_files()
    assert "cleanup" not in "".join(l for l in tern.log().splitlines() if "deer-run" in l)


def test_early_talker_with_bare_lf_lines_gets_the_same(paused):
    tern, sink = paused
    assert blast(tern, early_lf=True) == EARLY_TALKER_REPLIES
    time.sleep(1.5)
    assert not sink.matching(b"1 2 3") and not tern.queue_files()


def test_polite_client_waits_for_the_pause_then_sends_mail(paused):
    tern, sink = paused
    t0 = time.monotonic()
    with tern.connect(source=OUTSIDER) as c:
        greeting = c.greeting()
        waited = time.monotonic() - t0
        assert greeting[0].startswith("220 tern.test ESMTP"), greeting
        assert 0.9 <= waited < 3.0, waited
        assert c.cmd("HELO polite.test") == [
            "250 tern.test Hello [127.0.0.5], pleased to meet you"]
        assert c.cmd("MAIL FROM:<hal@polite.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<polite@sink.test>")[0].startswith("250 ")
        assert re.match(r"^250 2\.0\.0 Ok: queued as \S+$",
                        c.data(b"Subject: polite\r\n\r\nwaited\r\n")[0])
        c.cmd("QUIT")
    sink.wait_for(b"waited")
    assert "pre-greeting" not in "".join(
        l for l in tern.log().splitlines() if "127.0.0.5" in l and "polite" in l)


def test_mynetworks_client_is_not_paused(paused):
    tern, _ = paused
    t0 = time.monotonic()
    with tern.connect(source="127.0.0.1") as c:
        assert c.greeting()[0].startswith("220 ")
        assert time.monotonic() - t0 < 0.5


def test_mynetworks_blast_is_served(paused):
    tern, sink = paused
    replies = blast(tern, source="127.0.0.1")
    assert replies[0].startswith("220 ") and replies[-1].startswith("221 "), replies
    sink.wait_for(b"1 2 3")
    sink.clear()


@pytest.mark.parametrize("eol", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_without_greet_pause_the_blast_is_accepted(res, eol):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, relay_domains="sink.test",
                    mynetworks="127.0.0.1/32")
    replies = blast(tern, eol=eol)
    assert replies[0].startswith("220 tern.test ESMTP"), replies
    assert replies[1] == "250 tern.test Hello [127.0.0.5], pleased to meet you"
    assert replies[2].startswith("250 2.1.0 ") and replies[3].startswith("250 2.1.5 ")
    assert replies[4].startswith("354 ")
    assert re.match(r"^250 2\.0\.0 Ok: queued as \S+$", replies[5]), replies
    assert replies[6:] == ["221 2.0.0 tern.test closing connection"]
    sink.wait_for(b"1 2 3")


def test_bad_greet_pause_stops_smtpd(res):
    tern = res.tern(start=False, smtpd_greet_pause="soon")
    tern.proc = None
    lineno = tern.conf_path.read_text().splitlines().index("smtpd_greet_pause = soon") + 1
    with pytest.raises(AssertionError):
        tern.start(timeout=4)
    tern.wait_log(rf"{re.escape(str(tern.conf_path))}:{lineno}: smtpd_greet_pause = soon: "
                  r"expected a time such as 1500ms or 2s")
