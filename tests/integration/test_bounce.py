"""Bounces and DSN (RFC 3461/3464): qmgr's failure, delay and success notices.

Every notice goes to a remote address relayed (relayhost) to a RuleSink that
rejects or defers some recipients by name and accepts the rest, so the
notice arrives at the same sink and is parsed part by part with `email`.
"""

import email
import email.policy
import time

from ternlib import RuleSink, make_message, wait_until

SENDER = "alice@example.test"


def rule_sink(res, rules, **kw) -> RuleSink:
    s = RuleSink(rules, **kw)
    res.sinks.append(s)
    return s.start()


def send_dsn(t, rcpts, mail_params="", sender=SENDER, subject="dsn test", body="hello\r\n"):
    """One message over SMTP with DSN parameters; rcpts: [(address, params)]."""
    with t.connect() as c:
        assert c.greeting()[0].startswith("220")
        c.cmd("EHLO client.example")
        r = c.cmd(f"MAIL FROM:<{sender}> {mail_params}".rstrip())
        assert r[0].startswith("250"), r
        for addr, params in rcpts:
            r = c.cmd(f"RCPT TO:<{addr}> {params}".rstrip())
            assert r[0].startswith("250"), r
        final = c.data(make_message(subject=subject, body=body, sender=sender))
        assert final[0].startswith("250"), final
        c.cmd("QUIT")
        return final[0].split()[-1]


def notices(sink, to=SENDER):
    return [m for m in sink.snapshot() if m.mail_from == "" and to in m.rcpt_tos]


def parse(msg):
    return email.message_from_bytes(msg.content, policy=email.policy.default)


def dsn_fields(report_part):
    """message/delivery-status: [per-message fields, per-recipient fields...]."""
    return [dict(block.items()) for block in report_part.get_payload()]


def test_bounce_for_550_is_rfc3464_report_part_by_part(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 <bad@sink.test>: no such user")])
    t = res.tern(relayhost=sink.hostport)
    qid = send_dsn(t, [("bad@sink.test", ""), ("good@sink.test", "")], subject="part by part")
    wait_until(lambda: notices(sink), 20, "the bounce")
    t.wait_queue_empty()
    (bounce,) = notices(sink)
    assert bounce.rcpt_tos == [SENDER]
    msg = parse(bounce)
    assert msg["From"] == "Mail Delivery Subsystem <MAILER-DAEMON@tern.test>"
    assert bounce.header("To") == f"<{SENDER}>"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-generated (failure)"
    assert msg["Message-ID"] and msg["Date"] and msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    human, report, original = msg.get_payload()
    assert human.get_content_type() == "text/plain"
    text = human.get_content()
    assert "could not" in text and "<bad@sink.test>" in text and "550 5.1.1" in text
    assert "good@sink.test" not in text
    assert report.get_content_type() == "message/delivery-status"
    per_msg, *per_rcpt = dsn_fields(report)
    assert per_msg["Reporting-MTA"] == "dns; tern.test"
    assert per_msg["X-Tern-Queue-ID"] == qid
    assert "Arrival-Date" in per_msg
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; bad@sink.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; 127.0.0.1"
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: part by part" in original.get_content()
    assert "hello" not in original.get_content()
    t.wait_log(rf"{qid}: sender non-delivery notification: \w+")
    # the good recipient got the message exactly once, the bad one never
    assert len(sink.matching(b"Subject: part by part")) == 2  # the original + the bounce


def test_ret_full_envid_orcpt_are_reported(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(relayhost=sink.hostport)
    send_dsn(
        t,
        [("bad@sink.test", "NOTIFY=FAILURE ORCPT=rfc822;orig+2Bbad@sink.test")],
        mail_params="RET=FULL ENVID=env-42",
        body="the whole body\r\n",
    )
    wait_until(lambda: notices(sink), 20, "the bounce")
    msg = parse(notices(sink)[0])
    _, report, original = msg.get_payload()
    per_msg, r = dsn_fields(report)
    assert per_msg["Original-Envelope-Id"] == "env-42"
    assert r["Original-Recipient"] == "rfc822; orig+bad@sink.test"
    assert original.get_content_type() == "message/rfc822"
    assert b"the whole body" in notices(sink)[0].content


def test_notify_never_sends_no_bounce(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(relayhost=sink.hostport)
    qid = send_dsn(t, [("bad@sink.test", "NOTIFY=NEVER")])
    t.wait_log(rf"{qid}: removed")
    time.sleep(1)
    assert notices(sink) == []
    assert "notification" not in t.log()


def test_null_sender_failure_goes_to_2bounce_recipient(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(relayhost=sink.hostport, **{"2bounce_notice_recipient": "pm@sink.test"})
    qid = send_dsn(t, [("bad@sink.test", "")], sender="")
    t.wait_log(rf"{qid}: postmaster non-delivery notification: \w+")
    t.wait_queue_empty()
    got = [m for m in sink.snapshot() if "pm@sink.test" in m.rcpt_tos]
    assert len(got) == 1
    assert got[0].mail_from == "double-bounce@tern.test"
    msg = parse(got[0])
    assert msg["Subject"] == "Postmaster Copy: Undelivered Mail"
    # never a notice to the null sender
    assert all(m.rcpt_tos != [""] for m in sink.snapshot())


def test_double_bounce_that_fails_is_dropped(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(relayhost=sink.hostport, **{"2bounce_notice_recipient": "bad-pm@sink.test"})
    send_dsn(t, [("bad@sink.test", "")], sender="")
    t.wait_log(r"undeliverable double-bounce notice discarded")
    t.wait_queue_empty()
    time.sleep(1)
    assert sink.snapshot() == []
    assert len(__import__("re").findall(r"non-delivery notification", t.log())) == 1


def test_expired_message_bounces(res):
    sink = rule_sink(res, [("slow", "451 4.3.0 try again later")])
    t = res.tern(relayhost=sink.hostport, maximal_queue_lifetime="3s", delay_warning_time="0")
    qid = send_dsn(t, [("slow@sink.test", "")])
    t.wait_log(rf"{qid}: to=<slow@sink.test>, .*status=expired", timeout=30)
    wait_until(lambda: notices(sink), 20, "the expiry bounce")
    t.wait_queue_empty()
    _, report, _ = parse(notices(sink)[0]).get_payload()
    _, r = dsn_fields(report)
    assert r["Action"] == "failed"
    assert r["Status"].startswith("4.")
    assert "451 4.3.0" in r["Diagnostic-Code"]


def test_delay_warning_is_sent_once(res):
    sink = rule_sink(res, [("slow", "451 4.3.0 try again later")])
    t = res.tern(relayhost=sink.hostport, delay_warning_time="2s")
    qid = send_dsn(t, [("slow@sink.test", "")])
    t.wait_log(rf"{qid}: sender delay notification: \w+", timeout=30)
    wait_until(lambda: notices(sink), 20, "the delay warning")
    time.sleep(5)  # several more retries
    (warning,) = notices(sink)
    msg = parse(warning)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert msg["Auto-Submitted"] == "auto-generated (delay)"
    _, report, _ = msg.get_payload()
    _, r = dsn_fields(report)
    assert r["Action"] == "delayed"
    assert r["Status"].startswith("4.")
    assert t.queue_files(), "the message stays queued"


def test_delay_warning_needs_notify_delay(res):
    sink = rule_sink(res, [("slow", "451 4.3.0 try again later")])
    t = res.tern(relayhost=sink.hostport, delay_warning_time="1s")
    qid = send_dsn(t, [("slow@sink.test", "NOTIFY=FAILURE")])
    t.wait_log(rf"{qid}: to=<slow@sink.test>.*status=deferred")
    time.sleep(4)
    assert notices(sink) == []


def test_success_notice_when_next_hop_has_no_dsn(res):
    sink = rule_sink(res, [])
    t = res.tern(relayhost=sink.hostport)
    qid = send_dsn(t, [("good@sink.test", "NOTIFY=SUCCESS")], mail_params="ENVID=ok-1")
    t.wait_log(rf"{qid}: sender delivery status notification: \w+")
    wait_until(lambda: notices(sink), 20, "the success notice")
    msg = parse(notices(sink)[0])
    assert msg["Auto-Submitted"] == "auto-generated (success)"
    _, report, _ = msg.get_payload()
    per_msg, r = dsn_fields(report)
    assert per_msg["Original-Envelope-Id"] == "ok-1"
    assert r["Action"] == "relayed"
    assert r["Status"].startswith("2.")


def test_plain_bounce_format_is_one_text_part(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(relayhost=sink.hostport, bounce_format="plain")
    send_dsn(t, [("bad@sink.test", "")], body="plain body\r\n")
    wait_until(lambda: notices(sink), 20, "the bounce")
    msg = parse(notices(sink)[0])
    assert msg["Subject"] == "Returned mail: see transcript for details"
    assert msg.get_content_type() == "text/plain"
    text = msg.get_content()
    assert "The original message was received at" in text
    assert "----- The following addresses had permanent fatal errors -----" in text
    assert "bad@sink.test" in text and "(reason: " in text
    assert "----- Transcript of session follows -----" in text
    assert "----- Original message follows -----" in text
    assert "plain body" in text


def test_bounce_template_file_replaces_texts(res):
    sink = rule_sink(res, [("bad", "550 5.1.1 no such user")])
    t = res.tern(start=False, relayhost=sink.hostport)
    tpl = t.etc / "bounce.cf"
    tpl.write_text(
        "# site texts\n"
        "failure_template = <<EOF\n"
        "Subject: Your mail to us bounced\n"
        "\n"
        "Sorry from $myhostname: it did not work.\n"
        "EOF\n"
    )
    t.conf_edit(bounce_template_file=str(tpl))
    t.start()
    send_dsn(t, [("bad@sink.test", "")])
    wait_until(lambda: notices(sink), 20, "the bounce")
    msg = parse(notices(sink)[0])
    assert msg["Subject"] == "Your mail to us bounced"
    assert "Sorry from tern.test: it did not work." in msg.get_payload()[0].get_content()


def _record(rtype: bytes, data: bytes) -> bytes:
    import struct

    return rtype + struct.pack(">I", len(data)) + data


def test_failed_recipient_left_by_a_crash_is_reported_at_start(res):
    """An F recipient (failed, report not sent) in active/ gets its bounce when
    qmgr starts: a crash between the failure and the report loses nothing."""
    import os
    import pwd
    import shutil

    sink = rule_sink(res, [])
    t = res.tern(relayhost=sink.hostport)
    qid = send_dsn(t, [("good@sink.test", "")], subject="seed")
    t.wait_queue_empty()
    t.stop()
    crashed = qid[:-1] + ("A" if qid[-1] != "A" else "B")
    content = make_message(subject="left by a crash", sender=SENDER)
    data = (
        _record(b"V", b"1")
        + _record(b"T", f"{int(time.time())}.000000".encode())
        + _record(b"S", SENDER.encode())
        + _record(b"A", f"queue_id={crashed}".encode())
        + _record(b"R", b"Flost@sink.test\0lost@sink.test\0\0")
        + _record(b"M", content)
        + _record(b"X", b"")
    )
    path = t.queue / "active" / crashed
    path.write_bytes(data)
    os.chmod(path, 0o600)
    owner = t.params["mail_owner"]
    shutil.chown(path, owner, pwd.getpwnam(owner).pw_gid)
    t.start()
    t.wait_log(rf"{crashed}: sender non-delivery notification: \w+")
    wait_until(lambda: notices(sink), 20, "the recovered bounce")
    t.wait_queue_empty()
    assert b"left by a crash" in notices(sink)[0].content
