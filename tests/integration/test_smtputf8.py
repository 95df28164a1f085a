"""SMTPUTF8 (RFC 6531/6532) end to end, one tern and two aiosmtpd next hops:

    utf8.test            smtp:[127.0.0.1]:U   a sink that offers SMTPUTF8
    plain.test           smtp:[127.0.0.1]:P   a sink that does not
    xn--bcher-kva.test   smtp:[127.0.0.1]:P   bücher.test, keyed in A-label form
    mydestination        tern.test, münchen.test (U-label form in the list)

smtpd advertises SMTPUTF8 and takes UTF-8 addresses only after MAIL ...
SMTPUTF8 (553 5.6.7 without it; malformed UTF-8 553 5.1.7 / 5.1.3 even
with it); the flag is kept in the queue file; tern-smtp passes the message
on as it is to a hop that offers SMTPUTF8, converts an international
domain to A-labels for one that does not, and bounces (5.6.7) a recipient
whose local part is UTF-8; the bounce, itself SMTPUTF8, reaches the UTF-8
sender.  A UTF-8 alias delivers locally; the maillog stays valid UTF-8.
"""

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from ternlib import REPLY_250_QUEUED, Sink, make_message, qfile_attrs, wait_until


class Utf8Sink(Sink):
    """A sink that offers SMTPUTF8 (aiosmtpd's enable_SMTPUTF8)."""

    def _smtp_kwargs(self):
        return {"enable_SMTPUTF8": True}


def table(d: Path, name: str, text: str) -> str:
    path = d / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return f"texthash:{path}"


@pytest.fixture(scope="module")
def site(mres, it_base):
    d = Path(tempfile.mkdtemp(prefix="smtputf8-", dir=str(it_base)))
    d.chmod(0o1777)
    utf8_sink = Utf8Sink()
    mres.sinks.append(utf8_sink.start())
    plain_sink = mres.sink()
    transport = table(d, "transport", f"utf8.test smtp:[127.0.0.1]:{utf8_sink.port}\n"
                      f"plain.test smtp:[127.0.0.1]:{plain_sink.port}\n"
                      f"xn--bcher-kva.test smtp:[127.0.0.1]:{plain_sink.port}\n")
    senders = table(d, "senders", "hold@utf8.test HOLD\n")
    t = mres.tern(start=False, transport_maps=transport,
                  mydestination="tern.test, localhost, münchen.test",
                  smtpd_sender_restrictions=f"check_sender_access {senders}")
    t.aliases.write_text(f"jösé: {d}/jose.mbox\n", encoding="utf-8")
    t.start()
    yield SimpleNamespace(t=t, utf8=utf8_sink, plain=plain_sink, dir=d)
    shutil.rmtree(d, ignore_errors=True)


def submit(t, sender: str, rcpts, subject: str, params: str = " SMTPUTF8") -> str:
    """One message with MAIL FROM:<sender>params; the queue ID."""
    content = make_message(subject=subject, sender=sender, to=rcpts[0],
                           body="Grüße aus München\r\n")
    with t.connect() as c:
        c.greeting()
        assert "250-SMTPUTF8" in c.cmd("EHLO client.example")
        r = c.cmd(f"MAIL FROM:<{sender}>{params}")
        assert r[0].startswith("250 2.1.0"), r
        for rcpt in rcpts:
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            assert r[0].startswith("250 2.1.5"), r
        final = c.data(content)
        c.cmd("QUIT")
    m = REPLY_250_QUEUED.match(final[0])
    assert m, final
    return m.group(1)


def test_utf8_addresses_refused_without_smtputf8_and_malformed_always(site):
    t = site.t
    with t.connect() as c:
        c.greeting()
        ehlo = c.cmd("EHLO client.example")
        assert "250-SMTPUTF8" in ehlo
        assert c.cmd("MAIL FROM:<jösé@utf8.test>") == [
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address"]
        assert c.cmd("MAIL FROM:<s@utf8.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<jösé@utf8.test>") == [
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address"]
        assert c.cmd("RSET")[0].startswith("250 ")
        c.send(b"MAIL FROM:<s\xc0\xafx@utf8.test> SMTPUTF8\r\n")  # overlong '/'
        assert c.read_reply() == ["553 5.1.7 Malformed UTF-8 in sender address"]
        assert c.cmd("MAIL FROM:<s@utf8.test> SMTPUTF8")[0].startswith("250 ")
        c.send(b"RCPT TO:<a\x80b@utf8.test>\r\n")  # a lone continuation byte
        assert c.read_reply() == ["553 5.1.3 Malformed UTF-8 in recipient address"]
        assert c.cmd("RCPT TO:<a@xn--.utf8.test>")[0].startswith("250 ")  # ASCII: as it is
        assert c.cmd("RCPT TO:<a@\u0301x.test>")[0].startswith(
            "553 5.1.3 Invalid international domain name")
        assert c.cmd("RCPT TO:<jösé@utf8.test>") == ["250 2.1.5 <jösé@utf8.test>... Recipient ok"]
        assert c.cmd("RSET")[0].startswith("250 ")
        assert c.cmd("MAIL FROM:<s@utf8.test> SMTPUTF8=yes")[0].startswith("501 5.5.4")
    log = t.wait_log(r"NOQUEUE: reject: RCPT .*to=<a\\x80b@utf8\.test>").group(0)
    assert "Malformed UTF-8" in log


def test_flag_kept_in_queue_file(site):
    qid = submit(site.t, "hold@utf8.test", ["ascii@utf8.test"], "held")
    path = wait_until(lambda: next(iter(site.t.queue.glob(f"hold/{qid}*")), None), 10,
                      "the held queue file")
    assert qfile_attrs(path).get("smtputf8") == "yes"


def test_smtputf8_next_hop_gets_the_addresses_as_they_are(site):
    submit(site.t, "sénder@utf8.test", ["jösé@utf8.test", "ascii@utf8.test"], "to-utf8")
    msg = site.utf8.wait_for(b"Subject: to-utf8")[0]
    assert msg.mail_from == "sénder@utf8.test"
    assert "SMTPUTF8" in msg.mail_options
    assert msg.rcpt_tos == ["jösé@utf8.test", "ascii@utf8.test"]
    assert "Grüße".encode() in msg.content
    # the flag alone (ASCII addresses) still asks the next hop for SMTPUTF8
    submit(site.t, "s@utf8.test", ["ascii@utf8.test"], "flag-only")
    assert "SMTPUTF8" in site.utf8.wait_for(b"Subject: flag-only")[0].mail_options


def check_567_bounce(site, to: str, final_recipient: str):
    """The bounce at the SMTPUTF8 sink: RFC 6533's global delivery status."""
    bounce = site.utf8.wait_for(f"Final-Recipient: {final_recipient}\r\n".encode())[0]
    assert bounce.mail_from == ""
    assert bounce.rcpt_tos == [to]
    assert "SMTPUTF8" in bounce.mail_options
    assert b"Status: 5.6.7" in bounce.content
    assert b"SMTPUTF8 is required, but was not offered by host" in bounce.content
    assert b"Content-Type: message/global-delivery-status" in bounce.content
    assert b"report-type=global-delivery-status" in bounce.content
    bounce.content.decode("utf-8")  # valid UTF-8 throughout


def test_plain_next_hop_gets_a_labels_or_a_567_bounce(site):
    t = site.t
    qid = submit(t, "s@utf8.test", ["user@bücher.test", "jösé@plain.test"], "to-plain")
    msg = site.plain.wait_for(b"Subject: to-plain")[0]
    assert msg.rcpt_tos == ["user@xn--bcher-kva.test"]  # and no RCPT for the other
    assert msg.mail_from == "s@utf8.test"
    assert "SMTPUTF8" not in msg.mail_options
    line = t.wait_log(rf"{qid}: to=<jösé@plain\.test>.*dsn=5\.6\.7, status=bounced .*").group(0)
    assert "SMTPUTF8 is required, but was not offered by host" in line
    check_567_bounce(site, "s@utf8.test", "utf-8; jösé@plain.test")
    # a UTF-8 sender cannot be written in ASCII: every recipient bounces
    qid = submit(t, "sénder@utf8.test", ["ascii@plain.test"], "sender-utf8")
    t.wait_log(rf"{qid}: to=<ascii@plain\.test>.*dsn=5\.6\.7, status=bounced")
    check_567_bounce(site, "sénder@utf8.test", "rfc822; ascii@plain.test")
    assert not site.plain.matching(b"Subject: sender-utf8")


def test_utf8_alias_delivers_locally(site):
    t = site.t
    qid = submit(t, "sénder@utf8.test", ["jösé@MÜNCHEN.test"], "alias")
    t.wait_log(rf"{qid}: to=<jösé@MÜNCHEN\.test>, relay=local, .*status=sent "
               r"\(delivered to file: .*jose\.mbox\)")
    mbox = site.dir / "jose.mbox"
    wait_until(lambda: mbox.exists() and b"Subject: alias" in mbox.read_bytes(), 10, "the mbox")


def test_maillog_is_valid_utf8(site):
    text = site.t.maillog.read_bytes().decode("utf-8")  # raises on any invalid byte
    assert "from=<sénder@utf8.test>" in text
    assert "\\x80" in text and "\x80" not in text
    assert os.path.getsize(site.t.maillog) > 0
