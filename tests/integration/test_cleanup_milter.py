"""cleanup's side of milters (issue 12): the content phase after smtpd
hands over its conversations (smtpd_milters) and for mail from the sendmail
command (non_smtpd_milters, run by cleanup's pickup).  A python3-milter
filter (tinymilter.py) changes the message at its end; the sink receives
exactly the changed envelope and content.  The large suite is
test_milter*.py."""

import subprocess

from ternlib import BUILD, REPLY_250_QUEUED, make_message, wait_until
from test_smtpd_milter import TinyMilter

SENDMAIL = BUILD / "tools" / "sendmail"


def start_milter(res, it_base, mode):
    m = TinyMilter(it_base, mode)
    res.others.append(m)
    return m


def headers_seen(m):
    p = m.dir / "headers.log"
    return p.read_text().splitlines() if p.exists() else []


def smtp_instance(res, it_base, mode):
    m = start_milter(res, it_base, mode)
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, smtpd_milters=m.spec)
    return m, sink, tern


def sendmail_instance(res, it_base, mode):
    m = start_milter(res, it_base, mode)
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, non_smtpd_milters=m.spec)
    return m, sink, tern


def sendmail(tern, *args, input=b""):
    r = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), *args], input=input,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def smtp_one_message(c, subject):
    """greeting, EHLO, one message from sender@example.test to
    rcpt@sink.test: the reply to its end"""
    assert c.greeting()[0].startswith("220")
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<sender@example.test>")[0].startswith("250")
    assert c.cmd("RCPT TO:<rcpt@sink.test>")[0].startswith("250")
    return c.data(make_message(subject=subject))


def assert_modified(msg):
    assert sorted(msg.rcpt_tos) == ["added@sink.test", "rcpt@sink.test"]
    assert msg.header("X-Test") == "1"
    assert msg.header("Subject") is None
    assert msg.body() == b"cleaned\r\n"
    assert msg.content.index(b"X-Test: 1\r\n") > msg.content.index(b"\r\nDate: ")


def test_smtp_message_changed_by_the_milter_reaches_the_sink_changed(res, it_base):
    m, sink, tern = smtp_instance(res, it_base, "modify")
    qid = tern.send(make_message(subject="change me", body="original\r\n"))
    (msg,) = sink.wait_count(1)
    assert_modified(msg)
    assert msg.content.startswith(b"Received: from client.example")
    seen = headers_seen(m)
    assert seen[0].startswith("Received: 'from client.example"), seen
    assert "Subject: 'change me'" in seen
    tern.wait_log(rf"{qid}: from=<sender@example\.test>, size=\d+, nrcpt=2 \(queue active\)")


def test_sendmail_message_changed_by_a_non_smtpd_milter(res, it_base):
    m, sink, tern = sendmail_instance(res, it_base, "modify")
    sendmail(tern, "-f", "sender@example.test", "rcpt@sink.test",
             input=b"Subject: change me\n\noriginal\n")
    (msg,) = sink.wait_count(1)
    assert_modified(msg)
    assert msg.mail_from == "sender@example.test"
    assert any(s.startswith("Received: '(from root@localhost)") for s in headers_seen(m))


def test_recipient_added_by_a_milter_is_expanded_by_virtual_alias_maps(res, it_base):
    m = start_milter(res, it_base, "add-alias")
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, smtpd_milters=m.spec,
                    virtual_alias_maps="inline:{{alias@tern.test = x@sink.test, y@sink.test}}")
    qid = tern.send(make_message(subject="alias"))
    (msg,) = sink.wait_count(1)
    assert sorted(msg.rcpt_tos) == ["rcpt@sink.test", "x@sink.test", "y@sink.test"]
    tern.wait_log(rf"{qid}: from=<sender@example\.test>, size=\d+, nrcpt=3 \(queue active\)")


def test_pass_through_milter_changes_nothing_for_two_messages_in_a_session(res, it_base):
    m, sink, tern = smtp_instance(res, it_base, "pass")
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220")
        c.cmd("EHLO client.example")
        for n in (1, 2):
            assert c.cmd("MAIL FROM:<sender@example.test>")[0].startswith("250")
            assert c.cmd("RCPT TO:<rcpt@sink.test>")[0].startswith("250")
            final = c.data(make_message(subject=f"as is {n}", body="kept\r\n"))
            assert REPLY_250_QUEUED.match(final[0]), final
        c.cmd("QUIT")
    msgs = sink.wait_count(2)
    assert sorted(x.header("Subject") for x in msgs) == ["as is 1", "as is 2"]
    for msg in msgs:
        assert msg.rcpt_tos == ["rcpt@sink.test"]
        assert msg.body() == b"kept\r\n"
        assert "X-Test" not in msg.content.decode()
    assert sum(1 for h in headers_seen(m) if h.startswith("Received: ")) == 2


def test_quarantine_holds_the_message_with_the_reason_in_tern_queue(res, it_base):
    m, sink, tern = smtp_instance(res, it_base, "quarantine")
    qid = tern.send(make_message(subject="quarantined"))
    reason = f"milter {m.spec}: test reason"
    tern.wait_log(rf"{qid}: milter-hold: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: "
                  + reason.replace(".", r"\."))
    wait_until((tern.queue / "hold" / qid).exists, 10, "the file in hold/")
    out = tern.tern("queue").stdout
    assert qid in out and reason in out, out
    assert sink.snapshot() == []


def test_reject_at_end_of_message_gives_the_milter_text_and_queues_nothing(res, it_base):
    m, sink, tern = smtp_instance(res, it_base, "eom-reject")
    with tern.connect() as c:
        final = smtp_one_message(c, "refused")
        assert final == ["550-5.7.1 milter says no", "550 5.7.1 second line"], final
        # the session goes on: the next message still goes through the milter
        assert c.cmd("RSET")[0].startswith("250")
        c.cmd("QUIT")
    tern.wait_log(r"milter-reject: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: "
                  r"550-5\.7\.1 milter says no")
    assert tern.queue_files() == []
    assert list((tern.queue / "hold").iterdir()) == []
    assert sink.snapshot() == []


def test_changes_cleanup_cannot_make_fail_the_milter_and_queue_nothing(res, it_base):
    # an added recipient that is no address; a body replaced beyond
    # message_size_limit (10000, plus 65536 of room cleanup adds for
    # headers): the milter failed, its default_action (tempfail) answers
    for mode, why in (("bad-rcpt", r'\S+: milter unix:\S+: bad address in add recipient: '
                                   r'"<two words@sink\.test>"'),
                      ("big-body", r"milter unix:\S+: protocol error: modifications larger than "
                                   r"75536 bytes")):
        m = start_milter(res, it_base, mode)
        sink = res.sink()
        tern = res.tern(name=mode, relayhost=sink.hostport, smtpd_milters=m.spec,
                        message_size_limit="10000")
        with tern.connect() as c:
            final = smtp_one_message(c, "changed badly")
            assert final == ["451 4.7.1 Service unavailable - try again later"], final
            c.cmd("QUIT")
        tern.wait_log(rf"warning: {why}")
        assert tern.queue_files() == []
        assert sink.snapshot() == []
        tern.stop()


def test_sendmail_reject_bounces_to_the_sender(res, it_base):
    m, sink, tern = sendmail_instance(res, it_base, "eom-reject")
    sendmail(tern, "-f", "sender@sink.test", "rcpt@sink.test",
             input=b"Subject: refused\n\nbody\n")
    (bounce,) = sink.wait_count(1)
    assert bounce.rcpt_tos == ["sender@sink.test"]
    assert b"milter says no" in bounce.content
    tern.wait_log(r"milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]")


def test_sendmail_with_a_milter_down_stays_in_maildrop_until_it_is_back(res, it_base):
    sink = res.sink()
    sock = it_base / f"absent-{id(sink)}.sock"
    tern = res.tern(relayhost=sink.hostport, non_smtpd_milters=f"unix:{sock}")
    sendmail(tern, "rcpt@sink.test", input=b"Subject: later\n\nbody\n")
    tern.wait_log(r"warning: maildrop/\w+: milter: 451 4\.7\.1 Service unavailable - "
                  r"try again later; will retry")
    assert len(list((tern.queue / "maildrop").iterdir())) == 1
    assert tern.queue_files() == []
    tern.stop()
    tern.conf_edit(non_smtpd_milters="")
    tern.start()
    (msg,) = sink.wait_count(1)
    assert msg.header("Subject") == "later"
