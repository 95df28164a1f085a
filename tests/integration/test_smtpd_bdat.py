"""CHUNKING / BDAT (RFC 3030) in tern-smtpd (issue 15): a raw Python client
sends BDAT in many chunkings, pipelined or not; text content reaches a
recording sink as DATA would have delivered it, binary content (BODY=
BINARYMIME: bare CR, bare LF, NUL) is byte-exact in the queue file (held
with a HOLD sender so that nothing touches it); every error gets its RFC
reply and the stream stays in step (the next command is answered)."""

import os
import signal
import socket
import threading
import time

import pytest

from ternlib import REPLY_250_QUEUED, SmtpConn, qfile_attrs, qfile_records, wait_until

LIMIT = 20000


@pytest.fixture(scope="module")
def site(mres):
    sink = mres.sink()
    tern = mres.tern(start=False, relayhost=sink.hostport, message_size_limit=LIMIT)
    senders = tern.etc / "senders"
    senders.write_text("held.test HOLD\n")
    tern.conf_edit(smtpd_sender_restrictions=f"check_sender_access texthash:{senders}")
    tern.start()
    return tern, sink


def opened(tern, sender="a@example.test", rcpt="r@sink.test", body=None):
    """A session after EHLO, MAIL and RCPT (body: MAIL's BODY= value)."""
    c = tern.connect()
    assert c.greeting()[0].startswith("220")
    ehlo = c.cmd("EHLO bdat.example")
    assert "250-CHUNKING" in ehlo and "250-BINARYMIME" in ehlo and ehlo[-1] == "250 HELP", ehlo
    mail = f"MAIL FROM:<{sender}>" + (f" BODY={body}" if body else "")
    assert c.cmd(mail)[0].startswith("250 "), mail
    if rcpt:
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250 ")
    return c


def bdat(c, chunk: bytes, last=False, size=None):
    """One BDAT command and its chunk; the reply."""
    n = len(chunk) if size is None else size
    line = f"BDAT {n}" + (" LAST" if last else "")
    c.send(line.encode() + b"\r\n" + chunk)
    reply = c.read_reply()
    c.transcript.append((f"{line}  [+{len(chunk)} octets]", reply))
    return reply


def message(tag: str, body: bytes = b"line one\r\nline two\r\n") -> bytes:
    return (f"Subject: bdat {tag}\r\nX-Test: {tag}\r\n\r\n").encode() + body


def content_of(tern, qid):
    path = tern.queue / "hold" / qid
    wait_until(path.exists, 10, f"hold/{qid}")
    return b"".join(v for t, v in qfile_records(path) if t == b"M"), qfile_attrs(path)


def assert_in_step(c):
    assert c.cmd("NOOP") == ["250 2.0.0 OK"]


def test_one_chunk_last(site):
    tern, sink = site
    c = opened(tern)
    final = bdat(c, message("one"), last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    assert_in_step(c)
    (msg,) = sink.wait_for(b"X-Test: one")
    assert msg.body() == b"line one\r\nline two\r\n"
    assert msg.header("Received") is not None


def test_many_small_chunks_then_bdat_0_last(site):
    tern, sink = site
    data = message("small", b"a\r\n.\r\n..dots stay\r\nend\r\n")
    c = opened(tern)
    for i in range(len(data)):
        assert bdat(c, data[i : i + 1]) == ["250 2.0.0 1 octets received"]
    assert bdat(c, b"") == ["250 2.0.0 0 octets received"]  # BDAT 0 is legal
    final = bdat(c, b"", last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    (msg,) = sink.wait_for(b"X-Test: small")
    assert msg.body() == b"a\r\n.\r\n..dots stay\r\nend\r\n"  # no dot-unstuffing


def test_pipelined_chunks_answered_in_order(site):
    tern, sink = site
    data = message("piped", b"".join(b"line %04d " % i + b"x" * 60 + b"\r\n" for i in range(150)))
    parts = [data[:7000], data[7000:7001], data[7001:]]
    c = tern.connect()
    c.greeting()
    c.cmd("EHLO pipe.example")
    wire = b"MAIL FROM:<p@example.test>\r\nRCPT TO:<p@sink.test>\r\n"
    for i, p in enumerate(parts):
        wire += f"BDAT {len(p)}{' LAST' if i == len(parts) - 1 else ''}\r\n".encode() + p
    wire += b"NOOP\r\nQUIT\r\n"
    c.send(wire)
    replies = [c.read_reply() for _ in range(7)]
    assert replies[0][0].startswith("250 2.1.0") and replies[1][0].startswith("250 2.1.5")
    assert replies[2] == ["250 2.0.0 7000 octets received"]
    assert replies[3] == ["250 2.0.0 1 octets received"]
    assert REPLY_250_QUEUED.match(replies[4][0]), replies
    assert replies[5] == ["250 2.0.0 OK"] and replies[6][0].startswith("221")
    (msg,) = sink.wait_for(b"X-Test: piped")
    assert msg.body() == data.split(b"\r\n\r\n", 1)[1]


def test_binarymime_is_byte_exact_in_the_queue_file(site):
    tern, _ = site
    body = bytes(range(256)) + b"\rbare CR\nbare LF\x00NUL\r\n\r\r\n\n" + bytes(range(255, -1, -1))
    data = message("binary", body)
    c = opened(tern, sender="bin@held.test", body="BINARYMIME")
    assert bdat(c, data[:100]) == ["250 2.0.0 100 octets received"]
    assert bdat(c, data[100:357]) == ["250 2.0.0 257 octets received"]
    final = bdat(c, data[357:], last=True)
    m = REPLY_250_QUEUED.match(final[0])
    assert m, final
    stored, attrs = content_of(tern, m.group(1))
    assert attrs.get("body") == "BINARYMIME"
    headers, stored_body = stored.split(b"\r\n\r\n", 1)
    assert b"\r\nX-Test: binary\r\n" in headers + b"\r\n"
    assert stored_body == body


def test_text_bdat_normalises_line_ends_like_data(site):
    tern, _ = site
    c = opened(tern, sender="text@held.test")
    data = message("text", b"bare\nLF and bare\rCR and split CR")
    assert bdat(c, data + b"\r")[0].startswith("250 2.0.0")
    final = bdat(c, b"\nlast line", last=True)  # the CRLF spans two chunks
    m = REPLY_250_QUEUED.match(final[0])
    assert m, final
    stored, attrs = content_of(tern, m.group(1))
    assert "body" not in attrs
    assert stored.split(b"\r\n\r\n", 1)[1] == b"bare\r\nLF and bare\r\nCR and split CR\r\nlast line"


def test_data_after_binarymime_is_refused(site):
    tern, _ = site
    c = opened(tern, body="BINARYMIME")
    assert c.cmd("DATA") == ["503 5.5.1 Error: BODY=BINARYMIME needs BDAT, not DATA"]
    assert_in_step(c)


def test_data_and_rcpt_inside_a_bdat_transaction_are_refused(site):
    tern, _ = site
    c = opened(tern)
    assert bdat(c, message("mixed"))[0] == "250 2.0.0 %d octets received" % len(message("mixed"))
    assert c.cmd("DATA") == ["503 5.5.1 Error: DATA in the middle of a BDAT transaction"]
    assert c.cmd("RCPT TO:<x@sink.test>") == [
        "503 5.5.1 Error: RCPT in the middle of a BDAT transaction"]
    assert c.cmd("RSET") == ["250 2.0.0 Reset state"]
    assert_in_step(c)


def test_bdat_without_mail(site):
    tern, _ = site
    c = tern.connect()
    c.greeting()
    c.cmd("EHLO x.example")
    assert bdat(c, b"QUIT\r\n") == ["503 5.5.1 Error: need MAIL command"]
    assert_in_step(c)  # the octets were read, not taken for a command


def test_bdat_without_recipient(site):
    tern, _ = site
    c = opened(tern, rcpt=None)
    assert bdat(c, b"NOOP\r\n") == ["554 5.5.1 Error: no valid recipients"]
    assert bdat(c, b"RSET\r\n", last=True) == [
        "503 5.5.1 Error: BDAT after a failed chunk; send RSET"]
    assert c.cmd("RSET") == ["250 2.0.0 Reset state"]
    assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250 ")


def test_syntax_error_closes(site):
    tern, _ = site
    c = opened(tern)
    assert c.cmd("BDAT 12x") == ["501 5.5.4 Syntax: BDAT <size> [LAST]"]
    assert c.wait_closed(5)


def test_size_limit(site):
    tern, sink = site
    c = opened(tern)
    assert bdat(c, b"x" * 15000)[0].startswith("250 2.0.0 15000")
    reply = bdat(c, b"y" * 6000)  # 21000 > LIMIT: read and dropped
    assert reply[0].startswith("552 5.3.4 "), reply
    assert bdat(c, b"z" * 10, last=True) == [
        "503 5.5.1 Error: BDAT after a failed chunk; send RSET"]
    assert c.cmd("MAIL FROM:<again@example.test>")[0].startswith("250 ")
    assert c.cmd("RCPT TO:<again@sink.test>")[0].startswith("250 ")
    final = bdat(c, message("after-552"), last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    sink.wait_for(b"X-Test: after-552")


def test_huge_chunk_refused_without_reading_forever(site):
    tern, _ = site
    c = opened(tern)
    c.send(b"BDAT 100000000000 LAST\r\n")
    assert c.read_reply()[0].startswith("552 5.3.4 ")
    assert c.wait_closed(5)


def test_rset_mid_transaction_queues_nothing(site):
    tern, sink = site
    c = opened(tern)
    assert bdat(c, message("rset"))[0].startswith("250 2.0.0")
    assert c.cmd("RSET") == ["250 2.0.0 Reset state"]
    assert c.cmd("QUIT")[0].startswith("221")
    time.sleep(1.5)
    assert not sink.matching(b"X-Test: rset")


def test_disconnect_mid_chunk_queues_nothing(site):
    tern, sink = site
    c = opened(tern)
    c.send(b"BDAT 1000 LAST\r\n" + message("cut"))
    time.sleep(0.3)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    tern.wait_log(r"lost connection after BDAT from")
    time.sleep(1)
    assert not sink.matching(b"X-Test: cut")


def test_transcript(site, capsys):
    """A whole session, printed for the issue's closing note (pytest -s)."""
    tern, _ = site
    c = opened(tern)
    bdat(c, b"Subject: transcript\r\n\r\nfirst ")
    bdat(c, b"chunk, then the last\r\n", last=True)
    c.cmd("QUIT")
    with capsys.disabled():
        for line, reply in c.transcript:
            print(f"C: {line}")
            for r in reply:
                print(f"S: {r}")
    assert [r[0][:3] for _, r in c.transcript] == ["220", "250", "250", "250", "250", "250", "221"]


def test_exim_client_delivers_with_bdat(site, it_base):
    """Debian's Exim sends BDAT to a server that offers CHUNKING."""
    from exim_client import EXIM, EximClient

    if not EXIM.exists():
        pytest.fail(f"{EXIM} is missing: scripts/setup.sh (extract_exim) unpacks it")
    tern, sink = site
    exim = EximClient(tern.host, tern.port, it_base)
    body = b"".join(b"exim line %d\n" % i for i in range(1000))  # < LIMIT
    r = exim.send(b"Subject: via exim\nX-Test: exim-bdat\n\n" + body, ["e@sink.test"],
                  "exim@example.test")
    assert r.returncode == 0, r.stderr[-2000:]
    trace = r.stderr.decode(errors="replace")
    assert "CHUNKING" in trace and "BDAT " in trace, trace[-3000:]
    assert " => e@sink.test" in exim.mainlog(), exim.mainlog()
    (msg,) = sink.wait_for(b"X-Test: exim-bdat")
    assert msg.body() == body.replace(b"\n", b"\r\n")
    tern.wait_log(r"disconnect from \S+ ehlo=1 mail=1 rcpt=1 bdat=\d+ quit=1")


def test_milters_see_the_chunked_body(res, it_base):
    """The body goes through cleanup to the milters as with DATA: a milter
    refusing a body word refuses the BDAT LAST; a clean message passes."""
    from test_smtpd_milter import TinyMilter

    m = TinyMilter(it_base, "rcpt-reject")
    res.others.append(m)
    sink = res.sink()
    t = res.tern(smtpd_milters=m.spec, relayhost=sink.hostport)
    c = opened(t, rcpt="fine@example.com")
    assert bdat(c, b"Subject: m\r\n\r\nREJECT")[0].startswith("250 2.0.0")
    assert bdat(c, b"-ME\r\n", last=True) == ["554 5.7.1 bad body"]
    assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
    assert c.cmd("RCPT TO:<fine@example.com>")[0].startswith("250 ")
    final = bdat(c, message("milter-ok"), last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    sink.wait_for(b"X-Test: milter-ok")
    assert not sink.matching(b"REJECT-ME")


def test_forbid_bare_newline_applies_to_text_chunks(res):
    t = res.tern(smtpd_forbid_bare_newline="yes")
    c = opened(t)
    assert bdat(c, b"Subject: bare\r\n\r\nline\n", last=True) == [
        "550 5.5.2 Error: bare <LF> received"]
    assert_in_step(c)


def test_data_timeout_while_reading_a_chunk(res):
    t = res.tern(smtpd_data_timeout="1s", smtpd_timeout="30s")
    c = opened(t)
    c.send(b"BDAT 10 LAST\r\nabc")
    assert c.read_reply(timeout=10) == ["421 4.4.2 tern.test Error: timeout exceeded"]
    t.wait_log(r"timeout after BDAT from")


def test_bdat_after_a_failed_data(site):
    tern, sink = site
    c = opened(tern, rcpt=None)
    assert c.cmd("DATA") == ["503 5.0.0 Need RCPT (recipient)"]
    assert c.cmd("RCPT TO:<after-data@sink.test>")[0].startswith("250 ")
    final = bdat(c, message("after-data"), last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    sink.wait_for(b"X-Test: after-data")


# ------------------------------------------------ BDAT refused before its handler
# Every refusal of a BDAT line goes through smtpd_bdat_refuse: its chunk is
# read and dropped, then the refusal; the chunk's lines are never commands.

SMUGGLED = b"STARTTLS\r\nNOOP\r\n"  # would be answered 220 / 250 if read as commands


def test_bdat_before_starttls_where_tls_is_required(res, tmp_path):
    from test_auth import make_certificate

    make_certificate(tmp_path)
    t = res.tern(smtpd_tls_cert_file=tmp_path / "cert.pem", smtpd_tls_key_file=tmp_path / "key.pem",
                 smtpd_tls_security_level="encrypt")
    c = t.connect()
    assert c.greeting()[0].startswith("220 ")
    assert "250-STARTTLS" in c.cmd("EHLO tls.example")
    c.send(b"BDAT %d LAST\r\n" % len(SMUGGLED) + SMUGGLED + b"RSET\r\n")
    assert c.read_reply() == ["530 5.7.0 Must issue a STARTTLS command first"]
    assert c.read_reply() == ["250 2.0.0 Reset state"]  # the next real command
    assert c.cmd("QUIT")[0].startswith("221 ")


def test_early_talker_bdat_chunk_is_dropped(res):
    t = res.tern(mynetworks="127.0.0.1/32", smtpd_greet_pause="1s")
    c = t.connect(source="127.0.0.5")
    c.send(b"EHLO early.example\r\nBDAT %d LAST\r\n" % len(SMUGGLED) + SMUGGLED +
           b"RSET\r\nQUIT\r\n")
    replies = [c.read_reply()[0] for _ in range(5)]
    assert replies == ["554 tern.test ESMTP not accepting messages",
                       "554 5.5.0 SMTP protocol error",
                       "550 5.0.0 Command rejected",  # BDAT, after its chunk
                       '500 5.5.1 Command unrecognized: "RSET"',
                       "221 2.0.0 tern.test closing connection"], replies
    assert not t.queue_files()


def test_bdat_after_helo_is_refused_and_its_chunk_dropped(site):
    tern, sink = site
    c = tern.connect()
    c.greeting()
    assert c.cmd("HELO plain.example")[0].startswith("250 ")
    assert c.cmd("MAIL FROM:<helo@example.test>")[0].startswith("250 ")
    assert c.cmd("RCPT TO:<helo@sink.test>")[0].startswith("250 ")
    data = message("after-helo", b"QUIT\r\n")
    assert bdat(c, data, last=True) == ["503 5.5.1 Error: BDAT needs EHLO"]
    assert_in_step(c)
    final = c.data(message("helo-data"))  # the transaction is still there, for DATA
    assert REPLY_250_QUEUED.match(final[0]), final
    sink.wait_for(b"X-Test: helo-data")
    assert not sink.matching(b"X-Test: after-helo")


def test_bdat_without_any_hello(site):
    tern, _ = site
    c = tern.connect()
    c.greeting()
    assert bdat(c, b"NOOP\r\n") == ["503 5.5.1 Error: BDAT needs EHLO"]
    assert_in_step(c)


@pytest.mark.parametrize("line", [b"BDAT 6\0 LAST", b"bdat 6 LAST\0",
                                  b"BDAT " + b"0" * 3000 + b"6 LAST",  # over smtpd_line_limit
                                  b"BDAT " + b"0" * 100000 + b"6 LAST"])  # read in pieces
def test_unreadable_bdat_line_closes(site, line):
    tern, _ = site
    c = opened(tern)
    c.send(line + b"\r\nNOOP\r\nNOOP\r\n")
    assert c.read_reply() == ["421 4.5.2 tern.test Error: unreadable BDAT command"]
    assert c.wait_closed(5)


def test_over_long_other_line_is_still_500(site):
    tern, _ = site
    c = opened(tern)
    assert c.cmd("NOOP " + "x" * 3000) == ["500 5.5.2 Line too long"]
    assert c.cmd("X" * 100000) == ["500 5.5.2 Line too long"]
    assert c.cmd("NOOP x\0y")[0].startswith("500 5.5.1 Command unrecognized: ")
    assert_in_step(c)


def test_chunks_flow_while_cleanup_is_slow(res):
    """Cleanup stopped (SIGSTOP) for a second while 64 KiB chunks come one
    at a time: every chunk ends on a flush to cleanup, so flow control
    pauses on a chunk's last octets; reading must go on once cleanup has
    caught up (the next BDAT is answered), and the message is queued."""
    sink = res.sink()
    t = res.tern(relayhost=sink.hostport, message_size_limit=str(64 << 20))
    c = opened(t)
    head = b"Subject: slow\r\nX-Test: slow\r\n\r\n"
    size = 64 * 1024  # CLEANUP_STREAM_CHUNK: smtpd flushes at each chunk's end
    chunk = (b"y" * 510 + b"\r\n") * 128  # lines the sink takes (< 1000 octets)
    first = head + b"h" * (510 - len(head)) + b"\r\n" + chunk[512:]
    assert bdat(c, first) == [f"250 2.0.0 {size} octets received"]
    stopped = t.service_pids("cleanup")
    assert stopped, "no tern-cleanup process"
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(1.0, lambda: [os.kill(p, signal.SIGCONT) for p in stopped])
    resume.start()
    try:
        for i in range(48):  # 3 MiB: far more than cleanup's socket holds
            assert bdat(c, chunk, last=False) == [f"250 2.0.0 {size} octets received"], i
    finally:
        resume.join()
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    final = bdat(c, b"", last=True)
    assert REPLY_250_QUEUED.match(final[0]), final
    (msg,) = sink.wait_for(b"X-Test: slow", timeout=30)
    assert msg.mail_from == "a@example.test", msg.content[:1500]  # the message, not a bounce
    assert msg.body() == first[len(head):] + 48 * chunk



def test_commands_between_chunks_with_milters(res, it_base):
    """Between two chunks cleanup has the milters' sockets: a command that
    would ask the milters (an unknown one) is answered as if they said
    continue, not by asking them (tern-smtpd must not die); the milters see
    the whole body (REJECT-ME in it: refused at the end); RSET ends the
    transaction, and the milters do not see its body in the next message."""
    from test_smtpd_milter import TinyMilter

    m = TinyMilter(it_base, "rcpt-reject")
    res.others.append(m)
    sink = res.sink()
    t = res.tern(smtpd_milters=m.spec, relayhost=sink.hostport, smtpd_workers=1)
    first = b"Subject: m\r\nX-Test: between\r\n\r\nREJECT-ME\r\n"
    ends = ("RSET", "EHLO again.example")  # these end the transaction
    for between in ["XYZZY", "NOOP x\0y", "NOOP", "HELP", "VRFY r@sink.test", *ends, "QUIT"]:
        c = opened(t, rcpt="fine@example.com")
        assert bdat(c, first) == [f"250 2.0.0 {len(first)} octets received"], between
        reply = c.cmd(between)
        if between.startswith(("XYZZY", "NOOP x")):
            assert reply[0].startswith("500 5.5.1 Command unrecognized: "), reply
        else:
            assert reply[-1][:1] in "25" and reply[-1][3] == " ", reply
        if between == "QUIT":
            assert c.wait_closed(5)
            continue
        if between not in ends:
            assert bdat(c, b"more\r\n", last=True) == ["554 5.7.1 bad body"], between
        assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<fine@example.com>")[0].startswith("250 ")
        tag = "after-" + between.split()[0].lower()
        final = bdat(c, message(tag), last=True)
        assert REPLY_250_QUEUED.match(final[0]), (between, final)
        c.close()
        sink.wait_for(f"X-Test: {tag}".encode())
    c = opened(t, rcpt="fine@example.com")  # after the QUIT: the worker serves on
    assert REPLY_250_QUEUED.match(bdat(c, message("after-quit"), last=True)[0])
    sink.wait_for(b"X-Test: after-quit")
    assert not sink.matching(b"REJECT-ME")
    assert "panic" not in t.log(), t.log_tail()


class HeldMaps:
    """A socketmap server (NOTFOUND for everything) whose answers for keys
    "slow..." wait until release(key); asked(key) waits for the question"""

    def __init__(self):
        from test_remote_async import Maps
        from test_table_socketmap import netstring, read_netstring

        held = self

        class _Maps(Maps):
            def _serve(self, conn):
                try:
                    while True:
                        name, _, key = read_netstring(conn).decode().partition(" ")
                        if key.startswith("slow"):
                            held._event("asked", key).set()
                            held._event("release", key).wait(20)
                        conn.sendall(netstring(b"NOTFOUND "))
                except (EOFError, OSError):
                    pass
                conn.close()

        self.lock = threading.Lock()
        self.events = {}
        self.maps = _Maps({})

    def _event(self, kind, key):
        with self.lock:
            return self.events.setdefault((kind, key), threading.Event())

    def asked(self, key, timeout=10):
        assert self._event("asked", key).wait(timeout), f"VRFY of {key} not asked"

    def release(self, key):
        self._event("release", key).set()


def test_a_chunk_paused_by_flow_control_then_a_vrfy_that_waits(res):
    """A chunk ends while cleanup lags (cleanup stopped: flow control
    paused reading); a pipelined VRFY then waits for a remote table, and
    cleanup catches up during that wait: the next chunk must be read.
    Session A finds the chunk (k) at whose end reading pauses; session B
    makes cleanup drain while the VRFY after chunk k waits."""
    held = HeldMaps()
    sink = res.sink()
    t = res.tern(relayhost=sink.hostport, message_size_limit=str(64 << 20),
                 mydestination=f"localhost, {held.maps.spec('mydest')}", proxymap_cache_ttl="0",
                 smtpd_data_timeout="5s")
    size = 64 * 1024  # CLEANUP_STREAM_CHUNK: each chunk ends on a flush to cleanup
    chunk = (b"y" * 510 + b"\r\n") * 128
    head = b"Subject: paused\r\nX-Test: paused-%s\r\n\r\n"
    stopped = t.service_pids("cleanup")
    assert stopped, "no tern-cleanup process"

    def start(tag):
        c = opened(t)
        first = head % tag
        first += b"h" * (size - 2 - len(first)) + b"\r\n"
        assert bdat(c, first) == [f"250 2.0.0 {size} octets received"]
        time.sleep(0.3)  # cleanup takes it all
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        return c

    def chunk_and_vrfy(c, key):
        c.send(b"BDAT %d\r\n" % size + chunk + f"VRFY u@{key}\r\n".encode())

    def cont():
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)

    k = None
    try:
        c = start(b"a")
        for i in range(1, 40):
            chunk_and_vrfy(c, f"slow-a{i}.test")
            try:
                assert c.read_reply(timeout=2) == [f"250 2.0.0 {size} octets received"]
            except socket.timeout:
                k = i - 1  # chunk i is not read: reading paused at the end of chunk k
                break
            held.asked(f"slow-a{i}.test")
            held.release(f"slow-a{i}.test")
            assert c.read_reply()[0].startswith("252"), i
        assert k, "flow control never paused"
        cont()
        assert c.read_reply(timeout=10) == [f"250 2.0.0 {size} octets received"]
        held.release(f"slow-a{k + 1}.test")
        assert c.read_reply()[0].startswith("252")
        assert REPLY_250_QUEUED.match(bdat(c, b"", last=True)[0])
        c.close()

        c = start(b"b")
        for i in range(1, k + 1):
            chunk_and_vrfy(c, f"slow-b{i}.test")
            assert c.read_reply(timeout=5) == [f"250 2.0.0 {size} octets received"], (i, k)
            held.asked(f"slow-b{i}.test")
            if i == k:  # paused now: cleanup catches up while VRFY waits
                cont()
                time.sleep(1)
            held.release(f"slow-b{i}.test")
            assert c.read_reply()[0].startswith("252"), i
        final = bdat(c, b"end\r\n", last=True)  # octets to read: not left paused
        assert REPLY_250_QUEUED.match(final[0]), final
    finally:
        cont()
        for _, key in list(held.events):
            held.release(key)
        held.maps.close()
    sink.wait_for(b"X-Test: paused-b", timeout=30)
