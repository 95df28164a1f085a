"""tern-smtp's DATA phase for 8-bit and binary content (smtp/smtp_body.c):

- an 8-bit message (BODY=8BITMIME) to a next hop without 8BITMIME (Postfix's
  `smtp-sink -8`) arrives as valid 7-bit MIME whose parts decode to the
  bytes that were sent; to a next hop with 8BITMIME it arrives unchanged;
- smtp_8bit_downgrade = bounce, and a message that cannot be made 7-bit (an
  8-bit header), bounce with 5.6.3; disable_mime_output_conversion = yes
  sends the 8-bit bytes as they are (Postfix's behaviour);
- a BINARYMIME message goes as BODY=BINARYMIME in BDAT chunks to a next hop
  with CHUNKING and BINARYMIME, byte-exact (NULs, bare LFs, dot lines), and
  as converted DATA to one without.  A raw client sends it to tern's smtpd
  with MAIL ... BODY=BINARYMIME in BDAT chunks, end to end.

Transports of every tern here:
    seven.test  smtp-sink -8 (no 8BITMIME), dumping what it gets
    eight.test  aiosmtpd Sink (8BITMIME)
    bdat.test   BdatSink with CHUNKING and BINARYMIME
    lockstep.test  the same without PIPELINING
    nobdat.test BdatSink with 8BITMIME only
    back.test   the aiosmtpd Sink: the senders' domain, so bounces land there
"""

import email
import email.policy
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from bdatsink import BdatSink
from ternlib import SmtpConn, free_port, terminate, wait_until

SMTP_SINK = Path("/usr/sbin/smtp-sink")
SENDER = "s@back.test"

TEXT_8BIT = (b"From: <s@back.test>\r\nTo: <r@seven.test>\r\nSubject: latin-1 text\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\n"
             b"caf\xe9 cr\xe8me br\xfbl\xe9e\r\n.a line that starts with a dot\r\n"
             b"-- \r\nend=of=message \xff\r\n")

MULTI_8BIT = (b"From: <s@back.test>\r\nTo: <r@seven.test>\r\nSubject: multipart\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
              b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
              b"gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\r\n"
              b"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain ascii\r\n"
              b"--b1\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\n\x80\x81\xfe\xff bytes\r\n"
              b"--b1--\r\n")

HEADER_8BIT = (b"From: <s@back.test>\r\nTo: <r@seven.test>\r\nSubject: caf\xe9\r\n\r\n"
               b"body \xe9\r\n")


def write_table(d: Path, name: str, text: str) -> str:
    path = d / name
    path.write_text(text)
    path.chmod(0o644)
    return f"texthash:{path}"


class SmtpSink8:
    """Postfix's smtp-sink without 8BITMIME, one dump file per message."""

    def __init__(self, d: Path):
        self.dir = d / "dumps"
        self.dir.mkdir()
        self.dir.chmod(0o777)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(SMTP_SINK), "-8", "-u", "nobody", "-d", f"{self.dir}/%H%M%S.",
             f"127.0.0.1:{self.port}", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_count(self, n: int):
        return wait_until(lambda: len(self.dumps()) >= n and self.dumps(), 30,
                          f"{n} messages at smtp-sink")

    def dumps(self):
        return sorted(p.read_bytes() for p in self.dir.iterdir() if p.stat().st_size > 0)

    def stop(self):
        terminate(self.proc)


@pytest.fixture(scope="module")
def site(mres, it_base):
    if not SMTP_SINK.exists():
        pytest.fail("smtp-sink (Debian postfix) is not installed: scripts/setup.sh")
    d = Path(tempfile.mkdtemp(prefix="smtp-8bit-", dir=str(it_base)))
    d.chmod(0o755)
    sink8 = SmtpSink8(d)
    sink = mres.sink()
    bdat = BdatSink()
    nobdat = BdatSink(extensions=("PIPELINING", "8BITMIME"))
    lockstep = BdatSink(extensions=("8BITMIME", "CHUNKING", "BINARYMIME"))
    transport = write_table(d, "transport", f"seven.test smtp:[127.0.0.1]:{sink8.port}\n"
                            f"eight.test smtp:[127.0.0.1]:{sink.port}\n"
                            f"back.test smtp:[127.0.0.1]:{sink.port}\n"
                            f"bdat.test smtp:[127.0.0.1]:{bdat.port}\n"
                            f"nobdat.test smtp:[127.0.0.1]:{nobdat.port}\n"
                            f"lockstep.test smtp:[127.0.0.1]:{lockstep.port}\n")
    params = dict(transport_maps=transport)
    yield SimpleNamespace(d=d, sink8=sink8, sink=sink, bdat=bdat, nobdat=nobdat,
                          lockstep=lockstep, params=params,
                          tern=mres.tern(name="eightbit", **params))
    for s in (sink8, bdat, nobdat, lockstep):
        s.stop()
    shutil.rmtree(d, ignore_errors=True)


def submit(t, content: bytes, rcpt: str, sender: str = SENDER, body: str = "8BITMIME") -> str:
    """MAIL FROM:<sender> BODY=body, RCPT TO:<rcpt>, DATA; the queue ID."""
    with SmtpConn(t.host, t.port) as c:
        assert c.greeting()[0].startswith("220")
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd(f"MAIL FROM:<{sender}> BODY={body}")[0].startswith("250")
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250")
        final = c.data(content)
        assert final[0].startswith("250"), final
        c.cmd("QUIT")
        return final[0].rsplit(" ", 1)[1]


def leaves(raw: bytes):
    """(content type, decoded bytes with LF line ends) of every leaf part."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(p.get_content_type(), p.get_payload(decode=True).replace(b"\r\n", b"\n"))
            for p in msg.walk() if not p.is_multipart()]


def dump_of(site, needle: bytes) -> bytes:
    """The smtp-sink dump holding needle (its own X- headers first, without
    the empty line it appends)."""
    def found():
        return [m for m in site.sink8.dumps() if needle in m]
    (dump,) = wait_until(found, 30, f"a message with {needle!r} at smtp-sink")
    assert dump.endswith(b"\n\n")
    return dump[:-1]


@pytest.mark.parametrize("content", [TEXT_8BIT, MULTI_8BIT], ids=["text", "multipart"])
def test_8bit_message_reaches_a_7bit_peer_as_7bit_mime_that_decodes_to_the_same_bytes(site,
                                                                                      content):
    subject = email.message_from_bytes(content)["Subject"].encode()
    submit(site.tern, content, "r@seven.test")
    dump = dump_of(site, b"Subject: " + subject)
    assert all(b < 0x80 for b in dump), "8-bit bytes reached a peer without 8BITMIME"
    assert b"BODY=8BITMIME" not in dump.split(b"\n\n", 1)[0]  # X-Mail-Args
    msg = email.message_from_bytes(dump, policy=email.policy.compat32)
    for part in msg.walk():
        if not part.is_multipart():
            assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64", None)
    sent, got = leaves(content), leaves(dump)
    assert got == sent
    assert any(b >= 0x80 for _, body in got for b in body)  # the 8-bit bytes are back


def test_8bit_message_reaches_an_8bitmime_peer_unchanged(site):
    content = MULTI_8BIT.replace(b"seven.test", b"eight.test").replace(b"Subject: multipart",
                                                                         b"Subject: multipart-8")
    submit(site.tern, content, "r@eight.test")
    (m,) = site.sink.wait_for(b"Subject: multipart-8")
    assert "BODY=8BITMIME" in m.mail_options
    assert m.body() == content.split(b"\r\n\r\n", 1)[1]  # byte for byte


def bounce_of(site, needle: bytes):
    """The bounce (MAIL FROM:<>) at the aiosmtpd sink that quotes needle."""
    def found():
        return [m for m in site.sink.snapshot() if m.mail_from in ("", "<>")
                and needle in m.content]
    (m,) = wait_until(found, 30, f"a bounce quoting {needle!r}")
    return m.content


def test_message_with_an_8bit_header_bounces_5_6_3(site):
    submit(site.tern, HEADER_8BIT, "r@seven.test")
    bounce = bounce_of(site, b"Subject: caf\xe9")
    assert b"Status: 5.6.3" in bounce
    assert not [m for m in site.sink8.dumps() if b"Subject: caf" in m]


def second_tern(site, res, **params):
    return res.tern(name="eightbit2", **{**site.params, **params})


def submit_text(site, res, subject: bytes, **params) -> None:
    """TEXT_8BIT with subject to seven.test through a tern with params."""
    content = TEXT_8BIT.replace(b"latin-1 text", subject)
    submit(second_tern(site, res, **params), content, "r@seven.test")


def test_smtp_8bit_downgrade_bounce_bounces_5_6_3(site, res):
    submit_text(site, res, b"bounce-me", smtp_8bit_downgrade="bounce")
    bounce = bounce_of(site, b"Subject: bounce-me")
    assert b"Status: 5.6.3" in bounce
    assert b"smtp_8bit_downgrade = bounce" in bounce
    assert not [m for m in site.sink8.dumps() if b"bounce-me" in m]


def test_disable_mime_output_conversion_sends_8bit_as_it_is(site, res):
    submit_text(site, res, b"as-it-is", disable_mime_output_conversion="yes")
    dump = dump_of(site, b"Subject: as-it-is")
    assert b"caf\xe9 cr\xe8me" in dump


# ------------------------------------------------------------- BINARYMIME

BINARY_BODY = bytes(range(256)) * 1100 + b"\n.\r\n.dot\nlone LF\rlone CR\x00\r\n"


def binary_message(rcpt: str, subject: str, cte: str = "") -> bytes:
    head = (f"From: <bin@back.test>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            f"Date: Mon, 7 Dec 2026 09:00:00 +0000\r\nMessage-ID: <{subject}@back.test>\r\n"
            f"Content-Type: application/octet-stream\r\n{cte}\r\n").encode()  # cleanup adds none
    return head + BINARY_BODY


def make_binary(t, content: bytes, rcpt: str) -> None:
    """content from bin@back.test, sent to t's smtpd as MAIL ... BODY=
    BINARYMIME in BDAT chunks by a raw client (smtpd stores the octets as
    they are); queued for delivery."""
    with SmtpConn(t.host, t.port) as c:
        assert c.greeting()[0].startswith("220")
        ehlo = c.cmd("EHLO client.example")
        assert "250-CHUNKING" in ehlo and "250-BINARYMIME" in ehlo, ehlo
        assert c.cmd("MAIL FROM:<bin@back.test> BODY=BINARYMIME")[0].startswith("250")
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250")
        step = 100000
        for at in range(0, len(content), step):
            part = content[at : at + step]
            last = " LAST" if at + step >= len(content) else ""
            c.send(f"BDAT {len(part)}{last}\r\n".encode() + part)
            reply = c.read_reply()
            assert reply[0].startswith("250 2.0.0 "), reply
        assert c.cmd("QUIT")[0].startswith("221")


def test_binarymime_goes_in_bdat_chunks_byte_exact(site):
    content = binary_message("r@bdat.test", "binary-bdat", "Content-Transfer-Encoding: binary\r\n")
    make_binary(site.tern, content, "r@bdat.test")
    (m,) = site.bdat.wait_count(1)
    assert m.via == "BDAT"
    assert "BODY=BINARYMIME" in m.mail
    assert len(m.bdat) >= 2 and m.bdat[-1].endswith(" LAST")  # over 256 KiB: two chunks
    assert all(not b.endswith(" LAST") for b in m.bdat[:-1])
    assert m.content.endswith(content)  # after the Received header


def test_binarymime_to_a_peer_without_chunking_goes_as_converted_data(site):
    content = binary_message("r@nobdat.test", "binary-data")
    make_binary(site.tern, content, "r@nobdat.test")
    (m,) = site.nobdat.wait_count(1)
    assert m.via == "DATA" and "BODY=" not in m.mail
    assert all(b < 0x80 for b in m.content)
    assert leaves(m.content)[-1] == ("application/octet-stream",
                                     BINARY_BODY.replace(b"\r\n", b"\n"))


def test_bdat_without_pipelining_waits_for_each_chunk_reply(site):
    content = binary_message("r@lockstep.test", "binary-lockstep")
    make_binary(site.tern, content, "r@lockstep.test")
    (m,) = site.lockstep.wait_count(1)
    assert m.via == "BDAT" and len(m.bdat) >= 2
    assert not m.early
    assert m.content.endswith(content)


def test_generic_maps_rewrite_the_headers_of_bdat_and_converted_copies(site, res):
    maps = write_table(site.d, "generic", "bin@back.test outside@example.test\n")
    t = second_tern(site, res, smtp_generic_maps=maps)
    for rcpt, sink in (("r@bdat.test", site.bdat), ("r@nobdat.test", site.nobdat)):
        before = len(sink.messages)
        content = binary_message(rcpt, "binary-generic")
        make_binary(t, content, rcpt)
        m = sink.wait_count(before + 1)[-1]
        assert "MAIL FROM:<outside@example.test>" in m.mail
        assert b"From: <outside@example.test>\r\n" in m.content
        assert b"bin@back.test" not in m.content
        if sink is site.bdat:  # the header section is a chunk of its own
            head = content.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            rewritten = head.replace(b"bin@back.test", b"outside@example.test")
            body = content[len(head):]
            assert m.bdat[0] == f"BDAT {len(m.content) - len(body)}"  # Received: + head
            assert m.content.endswith(rewritten + body)
        else:
            assert leaves(m.content)[-1][1] == BINARY_BODY.replace(b"\r\n", b"\n")
