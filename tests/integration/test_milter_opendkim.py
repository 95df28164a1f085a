"""Real opendkim signing through tern's milters (issue 12): opendkim in the
foreground on a UNIX socket (smtpd_milters, mail over SMTP) and on TCP
(non_smtpd_milters, mail from the sendmail command); the sink receives a
DKIM-Signature that python3-dkim verifies against the public key
opendkim-genkey wrote (dkim.verify with a dnsfunc that answers the
sel._domainkey.example.test TXT query from DIR/sel.txt: the code path of
the dkimverify tool, without DNS).

The milter sees the message as it will be queued (tern's Received: and the
added Message-ID:/Date: included), so the signature still verifies at the
recipient.
"""

import re
import subprocess
from pathlib import Path

import pytest

from milterutil import MilterProcess, milter_tern
from ternlib import BUILD

dkim = pytest.importorskip("dkim", reason="python3-dkim is part of scripts/setup.sh")

OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"
SENDMAIL = BUILD / "tools" / "sendmail"


class OpenDkim(MilterProcess):
    """opendkim -f -x CONF signing example.test with selector sel."""

    what = "opendkim"

    def __init__(self, base: Path, kind: str):
        super().__init__(base, kind, "opendkim")
        subprocess.run([GENKEY, "-D", str(self.dir), "-d", "example.test", "-s", "sel"],
                       check=True, capture_output=True)
        socket = f"local:{self.path}" if kind == "unix" else self.libmilter_socket
        self.conf = self.dir / "opendkim.conf"
        self.conf.write_text("\n".join([
            f"Socket {socket}",
            "Domain example.test",
            f"KeyFile {self.dir / 'sel.private'}",
            "Selector sel",
            "Mode s",
            "InternalHosts 127.0.0.1",
            "Canonicalization relaxed/simple",
            "SignHeaders From,To,Subject,Date,Message-ID",
            "Syslog no",
            "LogWhy yes",
            "UMask 000",
            "RequireSafeKeys false",  # the test tree lives under /tmp (world-writable)
            f"PidFile {self.dir / 'opendkim.pid'}",
        ]) + "\n")

    def command(self):
        return [OPENDKIM, "-f", "-x", str(self.conf)]

    def txt_record(self) -> bytes:
        """The TXT value of sel._domainkey.example.test from sel.txt."""
        text = (self.dir / "sel.txt").read_text()
        return "".join(re.findall(r'"([^"]*)"', text)).encode()

    def verify(self, message: bytes) -> bool:
        record = self.txt_record()

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            return record if name.rstrip(".") == "sel._domainkey.example.test" else None

        return dkim.verify(message, dnsfunc=dnsfunc)


def start_opendkim(res, kind: str) -> OpenDkim:
    o = OpenDkim(res.base, kind)
    res.others.append(o)
    return o.start()


def signature_tags(message: bytes) -> dict:
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M)
    assert m, head
    value = re.sub(r"\s+", "", m.group(1))
    return dict(kv.split("=", 1) for kv in value.split(";") if "=" in kv)


def assert_signed_and_verified(dk: OpenDkim, message: bytes, how: str) -> None:
    tags = signature_tags(message)
    assert tags["d"] == "example.test" and tags["s"] == "sel", tags
    ok = dk.verify(message)
    # the verification line seen (dkim.verify of python3-dkim 1.1.4):
    #   opendkim via smtpd_milters: dkim.verify: True d=example.test s=sel a=rsa-sha256
    #   opendkim via non_smtpd_milters: dkim.verify: True d=example.test s=sel a=rsa-sha256
    print(f"opendkim via {how}: dkim.verify: {ok} d={tags['d']} s={tags['s']} a={tags['a']}")
    assert ok, message.decode(errors="replace")


def test_opendkim_signs_smtp_mail_and_the_signature_verifies(res):
    dk = start_opendkim(res, "unix")
    tern, sink = milter_tern(res, dk.spec)
    msg = (b"From: Ann <a@example.test>\r\nTo: <far@remote.test>\r\n"
           b"Subject: dkim over smtp\r\n\r\nSigned by opendkim.\r\n.. a dotted line\r\n")
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220")
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<far@remote.test>")[0].startswith("250")
        final = c.data(msg)
        assert final[0].startswith("250 "), final
        c.cmd("QUIT")
    (m,) = sink.wait_for(b"dkim over smtp")
    assert_signed_and_verified(dk, m.content, "smtpd_milters")
    # the client sent no Date: and no Message-ID:; opendkim signed the ones
    # tern added, so it saw the header section as it was queued
    signed = signature_tags(m.content)["h"].lower().split(":")
    assert "date" in signed and "message-id" in signed, signed


def test_opendkim_signs_sendmail_command_mail_and_the_signature_verifies(res):
    dk = start_opendkim(res, "inet")
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, non_smtpd_milters=dk.spec)
    r = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), "-f", "a@example.test",
                        "far@remote.test"],
                       input=b"From: a@example.test\nSubject: dkim via sendmail\n\nhello\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (m,) = sink.wait_for(b"dkim via sendmail")
    assert_signed_and_verified(dk, m.content, "non_smtpd_milters")


def test_a_changed_message_no_longer_verifies(res):
    """The check itself is not vacuous: one byte changed in the body and
    the same verification fails."""
    dk = start_opendkim(res, "unix")
    tern, sink = milter_tern(res, dk.spec)
    qid = tern.send(b"From: <a@example.test>\r\nSubject: dkim tamper\r\n\r\noriginal\r\n",
                    sender="a@example.test", rcpts=("far@remote.test",))
    assert qid
    (m,) = sink.wait_for(b"dkim tamper")
    assert dk.verify(m.content)
    assert not dk.verify(m.content.replace(b"original", b"Original"))

