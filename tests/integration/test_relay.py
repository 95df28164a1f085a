"""Relaying to a sink: byte-exact content, added headers, queue ID in the
Received header and the maillog (brief item 1); 200 messages over 20
parallel sessions arrive exactly once (item 2)."""

import collections
import email.utils
import re
import smtplib
import threading
import time

import pytest

from ternlib import REPLY_250_QUEUED


@pytest.fixture(scope="module")
def relay(mres):
    sink = mres.sink()
    tern = mres.tern(relayhost=sink.hostport)
    return tern, sink


# a body that exercises dot-stuffing, white space and 8-bit bytes
TRICKY_BODY = (
    b"first line\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b".leading dot\r\n"
    b"\r\n"
    b"From the start of a line\r\n"
    b"trailing spaces   \r\n"
    b"\ttab indented\r\n"
    b"8-bit: \xc3\xa9\xc3\xa8\xff\r\n"
    + b"x" * 900
    + b"\r\n"
    b"last line\r\n"
)


def unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value)


def relay_one(tern, content: bytes, rcpt: str, helo: str = "client.example"):
    """Send content in one session (BODY=8BITMIME); return the queue ID."""
    with tern.connect() as c:
        assert c.greeting()[0].startswith("220 ")
        c.cmd(f"EHLO {helo}")
        assert c.cmd("MAIL FROM:<sender@example.test> BODY=8BITMIME")[0].startswith("250 ")
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250 ")
        final = c.data(content)
        m = REPLY_250_QUEUED.match(final[0])
        assert m, f"reply after DATA: {final}"
        c.cmd("QUIT")
        return m.group(1)


def check_received(msg, qid: str, helo: str, rcpt: str) -> None:
    assert msg.content.startswith(b"Received: "), msg.content[:200]
    received = unfold(msg.headers().get_all("Received")[0])
    rx = (
        rf"^from {re.escape(helo)} \(unknown \[127\.0\.0\.1\]\) "
        rf"by tern\.test \(tern[^)]*\) with ESMTP id {re.escape(qid)} "
        rf"for <{re.escape(rcpt)}>; (.+)$"
    )
    m = re.match(rx, received)
    assert m, f"Received header does not match:\n{received}"
    when = email.utils.parsedate_to_datetime(m.group(1))
    assert when.tzinfo is not None
    assert abs(when.timestamp() - time.time()) < 300, m.group(1)


def test_relay_adds_headers_and_keeps_body(relay):
    tern, sink = relay
    rcpt = "alice@sink.test"
    marker = "X-Test: relay-added-headers"
    content = (
        b"From: <sender@example.test>\r\nTo: <alice@sink.test>\r\n"
        b"Subject: headers get added\r\n" + marker.encode() + b"\r\n\r\n" + TRICKY_BODY
    )
    qid = relay_one(tern, content, rcpt)
    (msg,) = sink.wait_for(marker.encode())
    assert msg.mail_from == "sender@example.test"
    assert msg.rcpt_tos == [rcpt]
    assert any(o.startswith("SIZE=") for o in msg.mail_options), msg.mail_options

    check_received(msg, qid, "client.example", rcpt)
    assert msg.body() == TRICKY_BODY
    hdrs = msg.headers()
    assert len(hdrs.get_all("Message-ID") or []) == 1, "exactly one Message-ID added"
    assert re.match(r"^\s*<[^<>@\s]+@[^<>\s]+>\s*$", hdrs["Message-ID"]), hdrs["Message-ID"]
    assert len(hdrs.get_all("Date") or []) == 1, "exactly one Date added"
    assert email.utils.parsedate_to_datetime(hdrs["Date"]) is not None
    # the client's own header lines are all there, unchanged and in order
    head = msg.content[: msg.content.find(b"\r\n\r\n") + 2]
    pos = 0
    for line in content[: content.find(b"\r\n\r\n") + 2].split(b"\r\n")[:-1]:
        found = head.find(line + b"\r\n", pos)
        assert found >= 0, f"header line {line!r} missing or reordered"
        pos = found

    tern.wait_log(
        rf"tern/\w+\[\d+\]: {re.escape(qid)}: to=<{re.escape(rcpt)}>, "
        rf"relay=[^,]+, .*status=sent"
    )


def test_relay_keeps_existing_message_id_and_date(relay):
    tern, sink = relay
    rcpt = "bob@sink.test"
    msgid = "<keep-this.1@client.example>"
    date = "Mon, 02 Nov 2026 10:00:00 +0100"
    content = (
        b"From: <sender@example.test>\r\nTo: <bob@sink.test>\r\n"
        b"Subject: keep ids\r\nMessage-ID: " + msgid.encode() + b"\r\n"
        b"Date: " + date.encode() + b"\r\n\r\n" + TRICKY_BODY
    )
    qid = relay_one(tern, content, rcpt, helo="other.example")
    (msg,) = sink.wait_for(msgid.encode())
    check_received(msg, qid, "other.example", rcpt)
    hdrs = msg.headers()
    assert [v.strip() for v in hdrs.get_all("Message-ID")] == [msgid]
    assert [d.strip() for d in hdrs.get_all("Date")] == [date]
    # nothing but the Received header was added: the rest is byte-exact
    first_end = msg.content.find(b"\r\n", 0)
    while msg.content[first_end + 2 : first_end + 3] in (b" ", b"\t"):  # folded Received
        first_end = msg.content.find(b"\r\n", first_end + 2)
    assert msg.content[first_end + 2 :] == content
    tern.wait_log(rf"{re.escape(qid)}: to=<{re.escape(rcpt)}>, relay=[^,]+, .*status=sent")


def test_200_messages_over_20_parallel_sessions(relay):
    tern, sink = relay
    sessions, per_session = 20, 10
    qids, errors = [], []
    lock = threading.Lock()

    def client(n: int) -> None:
        try:
            with smtplib.SMTP(tern.host, tern.port, local_hostname="para.example", timeout=30) as s:
                for i in range(per_session):
                    mid = f"<para-{n}-{i}@client.example>"
                    body = (
                        f"From: <p@example.test>\r\nTo: <p{n}@sink.test>\r\n"
                        f"Message-ID: {mid}\r\nX-Test: para-{n}-{i}\r\nSubject: para\r\n\r\n"
                        f"session {n} message {i}\r\n"
                    ).encode()
                    s.mail("p@example.test")
                    code, _ = s.rcpt(f"p{n}@sink.test")
                    assert code == 250
                    code, resp = s.data(body)
                    assert code == 250, resp
                    m = re.match(r"2\.0\.0 Ok: queued as (\S+)$", resp.decode())
                    assert m, resp
                    with lock:
                        qids.append(m.group(1))
        except Exception as e:  # reported below
            with lock:
                errors.append(f"session {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    total = sessions * per_session
    assert len(qids) == total and len(set(qids)) == total, "every message got its own queue ID"

    sink.wait_for(b"X-Test: para-", timeout=60, count=total)
    tern.wait_queue_empty(30)  # nothing left that could still be delivered again
    seen = collections.Counter(
        re.search(rb"X-Test: (para-\d+-\d+)", m.content).group(1)
        for m in sink.matching(b"X-Test: para-")
    )
    expected = {f"para-{n}-{i}".encode() for n in range(sessions) for i in range(per_session)}
    assert set(seen) == expected
    dups = {k: v for k, v in seen.items() if v != 1}
    assert not dups, f"delivered more than once: {dups}"
