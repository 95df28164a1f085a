"""Disk full (brief item 7, SPEC SMTP-22): a full queue filesystem gives a
temporary 452 4.3.1, never loses an accepted message, and leaves no partial
queue file behind."""

import os

import pytest

from ternlib import REPLY_250_QUEUED, make_message, qfile_is_complete, wait_until


def try_send(tern, i: int, body: str):
    """One message; returns ("ok", qid) or ("fail", reply lines)."""
    content = make_message(subject=f"fill {i}", headers={"X-Test": f"full-{i}"}, body=body)
    with tern.connect(timeout=30) as c:
        c.greeting()
        c.cmd("EHLO full.example")
        r = c.cmd("MAIL FROM:<f@example.test>")
        if not r[0].startswith("250"):
            return "fail", r
        r = c.cmd("RCPT TO:<f@sink.test>")
        if not r[0].startswith("250"):
            return "fail", r
        final = c.data(content)
        m = REPLY_250_QUEUED.match(final[0])
        c.cmd("QUIT")
        return ("ok", m.group(1)) if m else ("fail", final)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_full_queue_gives_452_and_loses_nothing(res):
    sink = res.sink(start=False)
    tern = res.tern(start=False, relayhost=sink.hostport)
    tern.mount_tmpfs("1m")
    tern.start()

    filler = tern.queue / "filler"
    filler.write_bytes(b"\0" * (256 * 1024))  # freed later to make room again
    body = ("z" * 98 + "\r\n") * 1000  # about 100 KB
    accepted, failure = [], None
    for i in range(30):
        status, value = try_send(tern, i, body)
        if status == "ok":
            accepted.append(i)
        else:
            failure = value
            break
    assert failure is not None, "30 messages of 100 KB fit in a 1 MB queue?"
    assert len(failure) == 1 and failure[0].startswith("452 4.3.1 "), failure
    assert accepted, "the queue filled before a single message was accepted"

    incoming = tern.queue / "incoming"
    wait_until(
        lambda: not [p for p in incoming.iterdir() if p.name.startswith(".")],
        2,
        "temporary files in incoming/ to be removed after the failure",
    )
    for p in list(incoming.iterdir()) + tern.queue_files():
        try:
            assert qfile_is_complete(p), f"partial queue file {p}"
        except FileNotFoundError:
            pass  # qmgr moved it meanwhile
    corrupt = tern.queue / "corrupt"
    assert not (corrupt.is_dir() and list(corrupt.iterdir())), "queue files went to corrupt/"
    # qmgr may be moving files between incoming/, active/ and deferred/
    wait_until(
        lambda: len(tern.queue_files()) == len(accepted),
        5,
        f"the queue to hold the {len(accepted)} accepted messages "
        f"(it holds {[p.name for p in tern.queue_files()]})",
    )

    filler.unlink()
    sink.start()
    sink.wait_for(b"X-Test: full-", timeout=60, count=len(accepted))
    got = {m.header("X-Test").strip() for m in sink.matching(b"X-Test: full-")}
    assert got == {f"full-{i}" for i in accepted}
    for m in sink.matching(b"X-Test: full-"):
        assert m.body() == body.encode()
