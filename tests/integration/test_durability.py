"""Durability (brief item 6): every message answered 250 survives a kill -9 of
the whole instance and is delivered after a restart."""

import smtplib

from ternlib import proc_stat


def test_queued_mail_survives_kill9(res):
    sink = res.sink(start=False)  # the next hop is down
    tern = res.tern(relayhost=sink.hostport)
    count = 50
    with smtplib.SMTP(tern.host, tern.port, local_hostname="dur.example", timeout=30) as s:
        for i in range(count):
            body = (
                f"From: <d@example.test>\r\nTo: <d@sink.test>\r\nMessage-ID: <dur-{i}@client.example>\r\n"
                f"X-Test: dur-{i}\r\nSubject: durability {i}\r\n\r\nmessage {i}\r\n"
            ).encode()
            s.mail("d@example.test")
            assert s.rcpt("d@sink.test")[0] == 250
            code, resp = s.data(body)
            assert code == 250 and resp.startswith(b"2.0.0 Ok: queued as "), (code, resp)

    pids = tern.pids()
    master = tern.master_pid()
    assert master and master in pids, f"master pid {master} not among {pids}"
    assert len(pids) >= 5, f"expected master and its services, found {pids}"
    tern.kill9()
    assert not any(proc_stat(p) for p in pids), "processes survived SIGKILL"

    tern.start()
    sink.start()
    sink.wait_for(b"X-Test: dur-", timeout=30, count=count)
    got = {m.header("X-Test").strip() for m in sink.matching(b"X-Test: dur-")}
    assert got == {f"dur-{i}" for i in range(count)}
