"""SMTPUTF8 (RFC 6531/6532) end to end, one tern and two aiosmtpd next hops:

    utf8.test            smtp:[127.0.0.1]:U   a sink that offers SMTPUTF8
    plain.test           smtp:[127.0.0.1]:P   a sink that does not
    xn--bcher-kva.test   smtp:[127.0.0.1]:P   bücher.test, keyed in A-label form
    mydestination        tern.test, münchen.test (U-label form in the list)
    two.test             MX 10 mx1 (no SMTPUTF8), MX 20 mx2 (SMTPUTF8), dnsmasq
    last.test            MX 10 mx1, MX 20 mx3 (neither offers SMTPUTF8)
    cache.test           as two.test (a connection cache key of its own)
    dead.test            MX 10 mx1, MX 20 mx4 (nothing listens there)

smtpd advertises SMTPUTF8 and takes UTF-8 addresses only after MAIL ...
SMTPUTF8 (553 5.6.7 without it; malformed UTF-8 553 5.1.7 / 5.1.3 even
with it); the flag is kept in the queue file; tern-smtp passes the message
on as it is to a hop that offers SMTPUTF8, converts an international
domain to A-labels for one that does not, and bounces (5.6.7) a recipient
whose local part is UTF-8 only when no other host of the next hop is left
(a host without SMTPUTF8 is skipped like one that answers 4xx), or when
the hosts after one without SMTPUTF8 are unreachable (naming that one); a
cached connection without SMTPUTF8 is dropped and its address not
connected to again in that delivery; the
bounce, itself SMTPUTF8, reaches the UTF-8 sender.  A UTF-8 alias delivers locally; the maillog stays valid UTF-8.
"""

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from ternlib import (REPLY_250_QUEUED, CountingSink, Sink, free_port, make_message, qfile_attrs,
                     wait_until)

MX1, MX2, MX3, MX4 = "127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"


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
    dns = mres.dnsmasq(["--local=/test/",
                        "--mx-host=two.test,mx1.two.test,10", "--mx-host=two.test,mx2.two.test,20",
                        "--mx-host=last.test,mx1.two.test,10",
                        "--mx-host=cache.test,mx1.two.test,10",
                        "--mx-host=cache.test,mx2.two.test,20",
                        "--mx-host=last.test,mx3.two.test,20",
                        "--mx-host=dead.test,mx1.two.test,10",
                        "--mx-host=dead.test,mx4.two.test,20",
                        f"--host-record=mx1.two.test,{MX1}", f"--host-record=mx2.two.test,{MX2}",
                        f"--host-record=mx3.two.test,{MX3}", f"--host-record=mx4.two.test,{MX4}"],
                       probe="two.test")
    mx_port = free_port(MX1, also=(MX2, MX3, MX4))  # nothing ever listens on MX4
    mx = {MX1: CountingSink(host=MX1, port=mx_port), MX3: mres.sink(host=MX3, port=mx_port),
          MX2: Utf8Sink(host=MX2, port=mx_port)}
    mres.sinks.append(mx[MX1].start())
    mres.sinks.append(mx[MX2].start())
    transport = table(d, "transport", f"utf8.test smtp:[127.0.0.1]:{utf8_sink.port}\n"
                      f"plain.test smtp:[127.0.0.1]:{plain_sink.port}\n"
                      f"xn--bcher-kva.test smtp:[127.0.0.1]:{plain_sink.port}\n")
    senders = table(d, "senders", "hold@utf8.test HOLD\n")
    t = mres.tern(start=False, transport_maps=transport,
                  mydestination="tern.test, localhost, münchen.test",
                  smtpd_sender_restrictions=f"check_sender_access {senders}",
                  dns_servers=f"127.0.0.1:{dns.port}", smtp_default_port=mx_port,
                  smtp_connection_cache_time_limit="30s")
    t.aliases.write_text(f"jösé: {d}/jose.mbox\n", encoding="utf-8")
    t.start()
    yield SimpleNamespace(t=t, utf8=utf8_sink, plain=plain_sink, mx=mx, dir=d)
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


def check_567_bounce(site, to: str, final_recipient: str, host: str = "127.0.0.1"):
    """The bounce at the SMTPUTF8 sink: RFC 6533's global delivery status,
    naming the host (HOST or [HOST]) that lacked SMTPUTF8."""
    bounce = site.utf8.wait_for(f"Final-Recipient: {final_recipient}\r\n".encode())[0]
    assert bounce.mail_from == ""
    assert bounce.rcpt_tos == [to]
    assert "SMTPUTF8" in bounce.mail_options
    assert b"Status: 5.6.7" in bounce.content
    assert f"SMTPUTF8 is required, but was not offered by host {host}".encode() in bounce.content
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


SKIP_LOG = r"SMTPUTF8 is required, but was not offered by host mx1\.two\.test\[127\.0\.0\.41\]"


def test_host_without_smtputf8_is_skipped_for_the_next_mx(site):
    """MX 10 lacks SMTPUTF8: not a bounce but "this host cannot", the
    message (every recipient) goes to MX 20, which offers it."""
    t = site.t
    qid = submit(t, "s@utf8.test", ["jösé@two.test", "ascii@two.test"], "mx-skip")
    msg = site.mx[MX2].wait_for(b"Subject: mx-skip")[0]
    assert msg.rcpt_tos == ["jösé@two.test", "ascii@two.test"]
    assert "SMTPUTF8" in msg.mail_options
    t.wait_log(rf"{qid}: {SKIP_LOG}; trying another host")
    t.wait_log(rf"{qid}: to=<jösé@two\.test>, relay=mx2\.two\.test\[127\.0\.0\.42\].*status=sent")
    assert not site.mx[MX1].matching(b"Subject: mx-skip")
    assert not site.utf8.matching(b"Final-Recipient: utf-8; j\xc3\xb6s\xc3\xa9@two.test")


def test_cached_connection_without_smtputf8_is_not_the_last_word(site):
    """An ASCII message leaves an idle connection to MX 10 in the cache; the
    UTF-8 message after it takes that connection, drops it, resolves again,
    skips MX 10 (known to lack SMTPUTF8: no second connection there) and
    ends at MX 20."""
    t = site.t
    before = site.mx[MX1].connections
    submit(t, "s@utf8.test", ["ascii@cache.test"], "mx-cache-ascii", params="")
    site.mx[MX1].wait_for(b"Subject: mx-cache-ascii")
    qid = submit(t, "s@utf8.test", ["jösé@cache.test"], "mx-cache-utf8")
    msg = site.mx[MX2].wait_for(b"Subject: mx-cache-utf8")[0]
    assert msg.rcpt_tos == ["jösé@cache.test"]
    t.wait_log(rf"{qid}: {SKIP_LOG} on a cached connection; connecting again")
    t.wait_log(rf"{qid}: skipping mx1\.two\.test: SMTPUTF8 was not offered there")
    t.wait_log(rf"{qid}: to=<jösé@cache\.test>, relay=mx2\.two\.test\[127\.0\.0\.42\].*status=sent")
    assert not site.mx[MX1].matching(b"Subject: mx-cache-utf8")
    assert site.mx[MX1].connections - before == 1  # the ASCII message's, taken from the cache


def test_utf8_recipient_bounces_when_the_mx_after_the_one_without_smtputf8_is_down(site):
    """MX 10 lacks SMTPUTF8, MX 20 refuses the connection: the UTF-8
    recipient bounces 5.6.7 naming MX 10 in the first attempt (as Postfix
    does), not a deferral for "connection refused"; the ASCII one is
    deferred (it was not delivered)."""
    t = site.t
    qid = submit(t, "s@utf8.test", ["jösé@dead.test", "ascii@dead.test"], "mx-dead")
    line = t.wait_log(rf"{qid}: to=<jösé@dead\.test>, .*dsn=5\.6\.7, status=bounced .*").group(0)
    assert "not offered by host mx1.two.test[127.0.0.41]" in line
    line = t.wait_log(rf"{qid}: to=<ascii@dead\.test>, .*status=deferred .*").group(0)
    assert "dsn=4.4.1" in line and "mx4.two.test[127.0.0.44]" in line
    check_567_bounce(site, "s@utf8.test", "utf-8; jösé@dead.test", "mx1.two.test[127.0.0.41]")
    assert not site.mx[MX1].matching(b"Subject: mx-dead")


def test_last_host_without_smtputf8_bounces_naming_it(site):
    """Neither MX offers SMTPUTF8: the UTF-8 recipient bounces at the last
    one, named in the log and the DSN; the ASCII one is delivered there."""
    t = site.t
    qid = submit(t, "s@utf8.test", ["jösé@last.test", "ascii@last.test"], "mx-last")
    msg = site.mx[MX3].wait_for(b"Subject: mx-last")[0]
    assert msg.rcpt_tos == ["ascii@last.test"]
    t.wait_log(rf"{qid}: {SKIP_LOG}; trying another host")
    line = t.wait_log(rf"{qid}: to=<jösé@last\.test>, .*dsn=5\.6\.7, status=bounced .*").group(0)
    assert "not offered by host mx3.two.test[127.0.0.43]" in line
    check_567_bounce(site, "s@utf8.test", "utf-8; jösé@last.test", "mx3.two.test[127.0.0.43]")
    assert not site.mx[MX1].matching(b"Subject: mx-last")


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
