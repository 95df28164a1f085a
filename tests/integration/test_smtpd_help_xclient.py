"""HELP from a help file (SPEC SMTP-12), ONEX/XUSR (SMTP-17), and Postfix's
XCLIENT and XFORWARD (docs/smtpd.md "HELP", "XCLIENT and XFORWARD")."""

import re

import pytest

from milterutil import start_milter
from ternlib import REPLY_250_QUEUED, make_message, wait_until

PROXY = "127.0.0.3"  # smtpd_authorized_xclient_hosts, not in mynetworks
OUTSIDER = "127.0.0.5"  # neither
SIMULATED = "127.0.0.9"  # in mynetworks: what XCLIENT says the client is
COUNTED = "127.0.0.7"  # what XCLIENT says the client is, under the connection limit
DAVE = "I'm sorry, Dave, I'm afraid I can't do that."
DENIED = "550 5.7.0 Error: insufficient authorization"


def ehlo_words(c):
    return [line[4:].split()[0] for line in c.cmd("EHLO client.test")[1:]]


def tern_version(tern):
    out = tern.tern("version", check=True).stdout
    return re.search(r"(\d+\.\d+[^\s]*)", out).group(1)


@pytest.fixture(scope="module")
def helpful(mres):
    """smtpd with a custom help file, submission with a one-line one"""
    custom = mres.base / "helpfile"
    custom.write_text(
        "#vers\t2\n"
        "smtp\tThis is Example Mail ($v)\n"
        "smtp\tTopics: MAIL RCPT\n"
        "rcpt\tRCPT TO: <recipient>\n"
        "rcpt\t\tOne recipient; $$ is a dollar.\n"
        "# a comment\n"
    )
    return mres.tern(help_file=str(custom))


def test_help_shows_the_files_topics_with_the_version(helpful):
    tern = helpful
    version = tern_version(tern)
    with tern.connect() as c:
        c.greeting()
        assert c.cmd("HELP") == [
            f"214-2.0.0 This is Example Mail ({version})",
            "214-2.0.0 Topics: MAIL RCPT",
            "214 2.0.0 End of HELP info",
        ]
        assert c.cmd("HELP rcpt") == c.cmd("HELP RCPT") == [
            "214-2.0.0 RCPT TO: <recipient>",
            "214-2.0.0 \tOne recipient; $ is a dollar.",
            "214 2.0.0 End of HELP info",
        ]
        assert c.cmd("HELP foo") == ['504 5.3.0 HELP topic "foo" unknown']
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]
        c.cmd("QUIT")
    # a reply of several lines is one answer to one command
    tern.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] noop=1 help=3/4 quit=1 commands=5/6$")


def test_help_with_a_one_line_file_hides_everything(res):
    dave = res.base / "dave"
    dave.write_text(f"smtp\t{DAVE}\n")
    tern = res.tern(help_file=str(dave))
    with tern.connect() as c:
        c.greeting()
        assert c.cmd("HELP") == [f"214-2.0.0 {DAVE}", "214 2.0.0 End of HELP info"]
        assert c.cmd("HELP MAIL") == ['504 5.3.0 HELP topic "mail" unknown']


def test_onex_and_xusr_are_refused_and_the_session_goes_on(helpful):
    tern = helpful
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("ONEX") == ["502 5.5.1 Error: command not implemented"]
        assert c.cmd("XUSR") == ["502 5.5.1 Error: command not implemented"]
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]


@pytest.fixture(scope="module")
def proxied(mres):
    sink = mres.sink()
    tern = mres.tern(
        relayhost=sink.hostport,
        mynetworks=f"127.0.0.1/32 {SIMULATED}/32",
        smtpd_authorized_xclient_hosts=f"{PROXY}/32",
        smtpd_authorized_xforward_hosts="127.0.0.1/32",
        help_file=str(mres.base / "no-such-helpfile"),
    )
    return tern, sink


def test_help_file_missing_gives_502_and_a_warning(proxied):
    tern, _ = proxied
    with tern.connect() as c:
        c.greeting()
        assert c.cmd("HELP") == ["502 5.3.0 HELP not implemented"]
    assert re.search(r"help_file .*no-such-helpfile: No such file", tern.log())


def test_xclient_gives_the_session_another_client(proxied):
    tern, sink = proxied
    with tern.connect(source=PROXY) as c:
        c.greeting()
        words = ehlo_words(c)
        assert "XCLIENT" in words and "XFORWARD" not in words
        # the proxy itself may not relay
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<x@sink.test>")[0].startswith("554 5.7.1 ")
        assert c.cmd("XCLIENT ADDR=127.0.0.1") == ["503 5.5.1 Error: MAIL transaction in progress"]
        c.cmd("RSET")
        assert c.cmd("XCLIENT") == ["501 5.5.4 Syntax: XCLIENT attribute=value..."]
        assert c.cmd("XCLIENT FOO=bar") == ["501 5.5.4 Bad XCLIENT attribute name: FOO"]
        assert c.cmd("XCLIENT ADDR=999.1.1.1") == ["501 5.5.4 Bad ADDR syntax: 999.1.1.1"]
        assert c.cmd("XCLIENT ADDR") == ["501 5.5.4 Error: attribute=value expected"]
        # the new client: a 220 again, then the session as that client
        reply = c.cmd(f"XCLIENT NAME=sim.example ADDR={SIMULATED} PORT=4711 HELO=sim+2Ehelo PROTO=ESMTP")
        assert len(reply) == 1 and reply[0].startswith("220 tern.test ESMTP"), reply
        assert c.cmd("EHLO sim.example")[0] == "250-tern.test Hello sim.example [127.0.0.9], pleased to meet you"
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<x@sink.test>")[0].startswith("250 ")
        final = c.data(make_message(subject="via xclient"))
        assert REPLY_250_QUEUED.match(final[0]), final
        # the simulated client is not an authorized one: no second XCLIENT
        assert c.cmd(f"XCLIENT ADDR={PROXY}") == [DENIED]
    msg = sink.wait_for(b"via xclient")[0]
    received = msg.header("Received")
    assert "sim.example [127.0.0.9]" in received, received
    tern.wait_log(r"connect from sim\.example\[127\.0\.0\.9\]")
    tern.wait_log(r"xclient: unknown\[127\.0\.0\.3\] is now client sim\.example\[127\.0\.0\.9\]")
    tern.wait_log(r"client=sim\.example\[127\.0\.0\.9\]")


def test_xclient_from_an_unauthorized_host_is_refused(proxied):
    tern, _ = proxied
    with tern.connect(source=OUTSIDER) as c:
        c.greeting()
        words = ehlo_words(c)
        assert "XCLIENT" not in words and "XFORWARD" not in words, words
        assert c.cmd(f"XCLIENT ADDR={SIMULATED}") == [DENIED]
        assert c.cmd(f"XFORWARD ADDR={SIMULATED}") == [DENIED]
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]
    tern.wait_log(r"reject: XCLIENT from unknown\[127\.0\.0\.5\]: 550 5\.7\.0")


def test_xforward_sets_received_and_log_for_one_message(proxied):
    tern, sink = proxied
    with tern.connect() as c:
        c.greeting()
        words = ehlo_words(c)
        assert "XFORWARD" in words and "XCLIENT" not in words, words
        assert c.cmd("XFORWARD NAME=spike.example ADDR=192.0.2.7 PORT=2525") == ["250 2.0.0 Ok"]
        assert c.cmd("XFORWARD HELO=fw.example PROTO=ESMTP IDENT=queue123 SOURCE=REMOTE") == [
            "250 2.0.0 Ok"
        ]
        assert c.cmd("XFORWARD LOGIN=x") == ["501 5.5.4 Bad XFORWARD attribute name: LOGIN"]
        # policy still sees the real client (127.0.0.1, in mynetworks): relay ok
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("XFORWARD NAME=late.example") == ["503 5.5.1 Error: MAIL transaction in progress"]
        assert c.cmd("RCPT TO:<x@sink.test>")[0].startswith("250 ")
        assert REPLY_250_QUEUED.match(c.data(make_message(subject="xforward one"))[0])
        # forgotten after the transaction
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<x@sink.test>")[0].startswith("250 ")
        assert REPLY_250_QUEUED.match(c.data(make_message(subject="xforward two"))[0])
    one = sink.wait_for(b"xforward one")[0].header("Received")
    two = sink.wait_for(b"xforward two")[0].header("Received")
    assert "from fw.example (spike.example [192.0.2.7])" in one, one
    assert "with ESMTP" in one, one
    assert "192.0.2.7" not in two and "127.0.0.1" in two, two
    tern.wait_log(r"client=spike\.example\[192\.0\.2\.7\]")
    tern.wait_log(r"xforward from \S+\[127\.0\.0\.1\]: "
                  r"name=spike\.example addr=192\.0\.2\.7 helo=fw\.example ident=queue123")


@pytest.fixture(scope="module")
def counted(mres):
    """XCLIENT under smtpd_client_connection_count_limit = 1, with a milter;
    one worker, so tern-anvil hears connects and disconnects in order"""
    milter = start_milter(mres)
    tern = mres.tern(
        smtpd_workers="1",
        mynetworks="127.0.0.1/32",
        smtpd_authorized_xclient_hosts=f"{PROXY}/32 127.0.0.1/32",
        smtpd_client_connection_count_limit="1",
        smtpd_milters=milter.spec,
    )
    return tern, milter


def too_many(addr):
    return [f"421 4.7.0 tern.test Error: too many connections from {addr}"]


def test_anvil_counts_the_xclient_client_instead_of_the_filter(counted):
    tern, _ = counted
    for _ in range(3):  # each session gives the filter's count back
        with tern.connect(source=PROXY) as c:
            assert c.greeting()[0].startswith("220 ")
            assert c.cmd(f"XCLIENT ADDR={COUNTED}")[0].startswith("220 ")
            with tern.connect(source=PROXY) as again:  # the filter counts 0 now
                assert again.greeting()[0].startswith("220 ")
                assert again.cmd("QUIT")[0].startswith("221 ")
            with tern.connect(source=COUNTED) as own:  # COUNTED counts 1
                assert own.greeting() == too_many(COUNTED)
            assert c.cmd("QUIT")[0].startswith("221 ")
    tern.wait_log(rf"Connection concurrency limit exceeded: 2 from unknown\[{COUNTED}\]")
    # and XCLIENT as a client already at its limit is refused like its connection
    with tern.connect(source=COUNTED) as own:
        assert own.greeting()[0].startswith("220 ")
        with tern.connect(source=PROXY) as c:
            assert c.greeting()[0].startswith("220 ")
            assert c.cmd(f"XCLIENT ADDR={COUNTED}") == too_many(COUNTED)
            assert c.wait_closed(5)
        assert own.cmd("QUIT")[0].startswith("221 ")
    # a front end in smtpd_client_event_limit_exceptions ($mynetworks) is
    # never counted, the client it names is
    with tern.connect() as c, tern.connect() as c2:
        assert c.greeting()[0].startswith("220 ") and c2.greeting()[0].startswith("220 ")
        assert c.cmd(f"XCLIENT ADDR={COUNTED}")[0].startswith("220 ")
        with tern.connect(source=COUNTED) as own:
            assert own.greeting() == too_many(COUNTED)
        assert c.cmd("QUIT")[0].startswith("221 ")
    with tern.connect(source=COUNTED) as own:  # nothing left counted
        assert own.greeting()[0].startswith("220 ")


def test_xclient_connects_the_milters_again_with_the_new_client(counted):
    tern, milter = counted
    with tern.connect(source=PROXY) as c:
        assert c.greeting()[0].startswith("220 ")
        first = milter.session_of_port(c.sock.getsockname()[1])
        reply = c.cmd(f"XCLIENT NAME=new.example ADDR={COUNTED} PORT=4712 DESTADDR=192.0.2.25 DESTPORT=2525")
        assert reply[0].startswith("220 "), reply
        assert c.cmd("QUIT")[0].startswith("221 ")
    second = milter.session_of_port(4712)
    assert second != first
    old = milter.wait_callback(first, "close")
    assert [r["cb"] for r in milter.session(first)] == ["connect", "close"], old
    connect = milter.session(second)[0]
    assert connect["cb"] == "connect" and connect["args"][2] == [COUNTED, 4712], connect
    assert connect["macros"]["{client_addr}"] == COUNTED, connect
    assert connect["macros"]["{client_name}"] == "new.example", connect
    assert connect["macros"]["{daemon_addr}"] == "192.0.2.25", connect



def test_xclient_unavailable_addresses_are_unknown_and_not_counted(counted):
    """ADDR=[UNAVAILABLE] clients are not counted (they would share one
    "smtp:unknown" count under a limit of 1); DESTADDR=[UNAVAILABLE] without
    DESTPORT makes the server address unknown, as in Postfix"""
    tern, milter = counted
    with tern.connect(source=PROXY) as c:
        assert c.greeting()[0].startswith("220 ")
        reply = c.cmd("XCLIENT NAME=nodest.example ADDR=[UNAVAILABLE] DESTADDR=[UNAVAILABLE]")
        assert reply[0].startswith("220 "), reply
        with tern.connect(source=PROXY) as c2:  # the filter counts 0 now
            assert c2.greeting()[0].startswith("220 ")
            assert c2.cmd("XCLIENT ADDR=[UNAVAILABLE]")[0].startswith("220 ")
            assert c2.cmd("EHLO two.example")[-1].startswith("250 ")
            assert c2.cmd("QUIT")[0].startswith("221 ")
        assert c.cmd("QUIT")[0].startswith("221 ")

    def connect():
        return next((r for r in milter.records() if r.get("cb") == "connect" and
                     r["macros"].get("{client_name}") == "nodest.example"), None)
    record = wait_until(connect, 10, "the milter's connect from nodest.example")
    assert record["macros"].get("{daemon_addr}") == "unknown", record
    assert "too many connections" not in tern.log(), tern.log_tail()

def test_vrfy_knows_aliases_users_and_virtual_addresses(res):
    from test_routing import write_map

    t = res.tern(start=False, mynetworks="127.0.0.1/32")
    t.aliases.write_text("staff: root, bob@remote.test\n")
    t.conf_edit(virtual_alias_maps=write_map(t, "virtual", "joe@virt.test joe@sink.test\n", build=True))
    t.start()
    with t.connect(source=OUTSIDER) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("VRFY Staff") == ["250 2.1.5 <Staff@tern.test>"]
        assert c.cmd("VRFY <root@tern.test>") == ["250 2.1.5 <root@tern.test>"]
        assert c.cmd("VRFY nosuch") == ["550 5.1.1 nosuch... User unknown"]
        assert c.cmd("VRFY joe@virt.test") == ["250 2.1.5 <joe@virt.test>"]
        assert c.cmd("VRFY nobody@virt.test") == [
            "550 5.1.1 <nobody@virt.test>: Recipient address rejected: User unknown in virtual "
            "alias table"
        ]
        assert c.cmd("VRFY x@far.test")[0].startswith("252 2.5.2 ")
