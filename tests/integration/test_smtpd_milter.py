"""smtpd_milters in tern-smtpd (issue 12): a python3-milter filter
(tinymilter.py) refusing one recipient, tempfailing the connection, hanging;
a milter that is down under default_action tempfail and accept.  The large
suite (content, modifications, opendkim) is test_milter*.py."""

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ternlib import REPLY_250_QUEUED, SmtpConn, free_port, make_message, terminate, wait_until

HERE = Path(__file__).resolve().parent
TEMPFAIL = "451 4.7.1 Service unavailable - try again later"


class TinyMilter:
    """tinymilter.py MODE on a unix socket in its own directory"""

    def __init__(self, base: Path, mode: str):
        self.dir = Path(tempfile.mkdtemp(prefix="milter-", dir=base))
        self.dir.chmod(0o755)
        self.path = self.dir / "m.sock"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "tinymilter.py"), mode, f"unix:{self.path}"],
            stdout=open(self.dir / "out.log", "wb"), stderr=subprocess.STDOUT)
        wait_until(self.path.exists, 10, f"tinymilter {mode} listening")

    @property
    def spec(self) -> str:
        return f"unix:{self.path}"

    def stop(self) -> None:
        terminate(self.proc)


@pytest.fixture
def milter(res, it_base):
    def start(mode: str) -> TinyMilter:
        m = TinyMilter(it_base, mode)
        res.others.append(m)
        return m
    return start


def test_rcpt_refused_by_the_milter_gets_its_reply_and_another_is_accepted(res, milter):
    m = milter("rcpt-reject")
    sink = res.sink()
    t = res.tern(smtpd_milters=m.spec, relayhost=sink.hostport)
    with t.connect() as c:
        c.greeting()
        assert c.cmd("EHLO client.test")[0].startswith("250-")
        assert c.cmd("MAIL FROM:<joe@ok.test> SIZE=100")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<nope@example.com>") == ["550 5.7.1 nope"]
        assert c.cmd("RCPT TO:<fine@example.com>") == ["250 2.1.5 <fine@example.com>... Recipient ok"]
        # the milters went to cleanup for the content and came back: a
        # refusal at the end of the message, then a message that passes
        assert c.data(make_message(body="REJECT-ME\r\n")) == ["554 5.7.1 bad body"]
        assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<fine@example.com>")[0].startswith("250 ")
        reply = c.data(make_message(headers={"X-T": "through-the-milter"}))
        assert REPLY_250_QUEUED.match(reply[0]), reply
    sink.wait_for(b"X-T: through-the-milter")
    assert not sink.matching(b"REJECT-ME")
    t.wait_log(r"NOQUEUE: milter-reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 nope; "
               r"from=<joe@ok\.test> to=<nope@example\.com> proto=ESMTP helo=<client\.test>")


def test_connect_tempfail_answers_every_mail(res, milter):
    m = milter("connect-tempfail")
    t = res.tern(smtpd_milters=m.spec)
    with t.connect() as c:
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd("HELO client.test")[0].startswith("250 ")
        assert c.cmd("MAIL FROM:<joe@ok.test>") == [TEMPFAIL]
        assert c.cmd("MAIL FROM:<joe@ok.test>") == [TEMPFAIL]
    t.wait_log(r"NOQUEUE: milter-reject: MAIL from unknown\[127\.0\.0\.1\]: 451 4\.7\.1 ")


def test_milter_down_tempfails_by_default_and_passes_with_default_action_accept(res, it_base):
    gone = Path(tempfile.mkdtemp(dir=it_base)) / "nobody.sock"
    t = res.tern(smtpd_milters=f"unix:{gone}")
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<joe@ok.test>") == [TEMPFAIL]
    t.wait_log(rf"warning: milter unix:{gone}: .*")
    t.stop()

    sink = res.sink()
    t2 = res.tern(name="accepting", relayhost=sink.hostport,
                  smtpd_milters=f"{{ unix:{gone}, default_action = accept }}")
    with t2.connect() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<bob@example.com>")[0].startswith("250 ")
        reply = c.data(make_message(headers={"X-T": "milter-down-accept"}))
        assert REPLY_250_QUEUED.match(reply[0]), reply
    sink.wait_for(b"X-T: milter-down-accept")


def test_hung_milter_stalls_only_its_own_session(res, milter):
    m = milter("rcpt-sleep")
    sub = free_port()
    t = res.tern(smtpd_workers="1", smtpd_milters=f"{{ {m.spec}, command_timeout = 6s }}",
                 submission_listen=f"127.0.0.1:{sub}", **{
                     "submission.smtpd_milters": "",
                     "submission.smtpd_tls_security_level": "none",
                     "submission.smtpd_auth_required": "no",
                     "submission.smtpd_sasl_auth_enable": "no"})
    hung = t.connect()
    try:
        hung.greeting()
        hung.cmd("EHLO client.test")
        assert hung.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        hung.send("RCPT TO:<slow@example.com>\r\n")
        time.sleep(0.5)
        t0 = time.monotonic()
        # the same worker serves another session through the same milter ...
        with t.connect() as c:
            c.greeting()
            c.cmd("EHLO client.test")
            assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
            assert c.cmd("RCPT TO:<quick@example.com>")[0].startswith("250 ")
        # ... and one on a listener without milters
        with SmtpConn(t.host, sub) as c:
            c.greeting()
            c.cmd("EHLO client.test")
            assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
            assert c.cmd("RCPT TO:<quick@example.com>")[0].startswith("250 ")
        assert time.monotonic() - t0 < 3.0
        # the hung session gets the milter's default_action after its timeout
        assert hung.read_reply(timeout=15) == [TEMPFAIL]
    finally:
        hung.close()
    t.wait_log(r"warning: milter unix:\S+: .*timeout")

