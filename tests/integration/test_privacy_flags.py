"""smtpd_privacy_flags, sendmail's PrivacyOptions (SPEC PRIVACY-01/02,
SMTP-13, SMTP-14, SMTP-20; docs/smtpd.md "Privacy flags"), and EXPN."""

import os
import re

import pytest

from ternlib import REPLY_250_QUEUED, make_message

OUTSIDER = "127.0.0.5"
NOT_ALLOWED = "502 5.7.0 Sorry, we do not allow this operation"
DEMAND = "503 5.0.0 I demand that you introduce yourself first"
VRFY_252 = "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"


def start(res, **params):
    sink = res.sink(dsn=True)
    tern = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32", **params)
    tern.aliases.write_text("staff: root, bob@remote.test, \\carol\nsolo: root\n")
    tern.start()
    return tern, sink


def ehlo_words(c):
    return [line[4:].split()[0] for line in c.cmd("EHLO client.test")[1:]]


def test_default_expn_vrfy_and_mail_without_helo(res):
    tern, _ = start(res)
    with tern.connect() as c:
        c.greeting()
        # SMTP-20: HELO is optional by default
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        c.cmd("RSET")
        assert c.cmd("VRFY root") == ["250 2.1.5 <root@tern.test>"]
        assert c.cmd("VRFY nosuch") == ["550 5.1.1 nosuch... User unknown"]
        assert "EXPN" in ehlo_words(c)
        assert "VERB" not in ehlo_words(c)
        assert c.cmd("EXPN staff") == [
            "250-2.1.5 <root@tern.test>",
            "250-2.1.5 <bob@remote.test>",
            "250 2.1.5 <carol@tern.test>",
        ]
        assert c.cmd("EXPN <Solo@tern.test>") == ["250 2.1.5 <root@tern.test>"]
        assert c.cmd("EXPN root") == ["250 2.1.5 <root@tern.test>"]
        assert c.cmd("EXPN nosuch") == ["550 5.1.1 nosuch... User unknown"]
        assert c.cmd("EXPN") == ["501 5.5.2 Argument required"]
        assert c.cmd("VERB") == [NOT_ALLOWED]
        # ETRN is answered by default, as by sendmail (noetrn: test_etrn.py)
        assert c.cmd("ETRN remote.test") == ["251 2.0.0 OK, no messages waiting for node remote.test"]
    # EXPN is for mynetworks only, and not offered to others
    with tern.connect(source=OUTSIDER) as c:
        c.greeting()
        assert "EXPN" not in ehlo_words(c)
        assert c.cmd("EXPN staff") == [NOT_ALLOWED]


def test_goaway(res):
    tern, _ = start(res, smtpd_privacy_flags="goaway")
    with tern.connect() as c:
        c.greeting()
        assert c.cmd("MAIL FROM:<a@example.test>") == ["503 5.0.0 Polite people say HELO first"]
        assert c.cmd("VRFY root") == [VRFY_252]  # novrfy is checked before needvrfyhelo
        assert c.cmd("EXPN staff") == [NOT_ALLOWED]
        words = ehlo_words(c)
        assert "EXPN" not in words and "VERB" not in words, words
        assert c.cmd("VRFY root") == [VRFY_252]
        assert c.cmd("EXPN staff") == [NOT_ALLOWED]
        assert c.cmd("VERB") == ["502 5.7.0 Verbose unavailable"]
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")


def test_need_helo_flags_and_noexpn_novrfy_singly(res):
    tern, _ = start(res, smtpd_privacy_flags="needvrfyhelo, needexpnhelo")
    with tern.connect() as c:
        c.greeting()
        assert c.cmd("VRFY root") == [DEMAND]
        assert c.cmd("EXPN staff") == [DEMAND]
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")  # not needmailhelo
        c.cmd("RSET")
        c.cmd("HELO client.test")
        assert c.cmd("VRFY root") == ["250 2.1.5 <root@tern.test>"]
        assert c.cmd("EXPN solo") == ["250 2.1.5 <root@tern.test>"]
    tern.conf_edit(smtpd_privacy_flags="noexpn novrfy,NoVerb")
    tern.stop()
    tern.start()
    with tern.connect() as c:
        c.greeting()
        assert "EXPN" not in ehlo_words(c)
        assert c.cmd("EXPN staff") == [NOT_ALLOWED]
        assert c.cmd("VRFY root") == [VRFY_252]
        assert c.cmd("VERB") == ["502 5.7.0 Verbose unavailable"]


def test_disable_expn_command(res):
    tern, _ = start(res, disable_expn_command="yes")
    with tern.connect() as c:
        c.greeting()
        assert "EXPN" not in ehlo_words(c)
        assert c.cmd("EXPN staff") == [NOT_ALLOWED]


def relay_notify(tern, sink, tag):
    with tern.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")
        for n, notify in enumerate(("SUCCESS,FAILURE", "SUCCESS")):
            r = c.cmd(f"RCPT TO:<r{n}@sink.test> NOTIFY={notify}")
            assert r[0].startswith("250 "), r
        assert REPLY_250_QUEUED.match(c.data(make_message(tag, body=f"{tag}\r\n"))[0])
        c.cmd("QUIT")
    (msg,) = sink.wait_for(tag.encode())
    return msg


@pytest.mark.parametrize("flags", ["", "noreceipts"])
def test_noreceipts_drops_notify_success(res, flags):
    tern, sink = start(res, smtpd_privacy_flags=flags)
    msg = relay_notify(tern, sink, f"receipts-{flags or 'default'}")
    notify = {addr: [o for o in opts if o.upper().startswith("NOTIFY=")] for addr, opts in msg.rcpts}
    if flags:
        assert notify == {"r0@sink.test": ["NOTIFY=FAILURE"], "r1@sink.test": ["NOTIFY=NEVER"]}
    else:
        assert notify == {"r0@sink.test": ["NOTIFY=SUCCESS,FAILURE"],
                          "r1@sink.test": ["NOTIFY=SUCCESS"]}


def test_unknown_flag_names_file_and_line(res):
    tern = res.tern(start=False, smtpd_privacy_flags="goaway, noverbs")
    lineno = tern.conf_path.read_text().splitlines().index(
        "smtpd_privacy_flags = goaway, noverbs") + 1
    r = tern.tern("check")
    assert r.returncode != 0
    assert (f"{tern.conf_path}:{lineno}: smtpd_privacy_flags: unknown flag 'noverbs' (known: "
            in r.stdout), r.stdout
    with pytest.raises(AssertionError):
        tern.start(timeout=4)
    tern.wait_log(re.escape(f"{tern.conf_path}:{lineno}: smtpd_privacy_flags: unknown flag "
                            "'noverbs'"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")
def test_restrictmailq_is_restrict_queue_listing(res):
    from test_queue_tools import showq_as_nobody

    tern = res.tern(smtpd_privacy_flags="restrictmailq")
    assert showq_as_nobody(tern) == "You are not permitted to see the queue\n"
    assert tern.tern("queue", "list").returncode == 0  # root still may
