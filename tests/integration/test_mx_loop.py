"""MX pointing back at this host (SPEC ROUTE-09) through a dnsmasq on
loopback: the best MX being this host (its smtpd address AND port, a
wildcard listener, or a proxy_interfaces address) bounces promptly with
5.4.6 "loops back to myself"; as a backup MX tern delivers only to the more
preferred hosts and defers while they are down; an MX on tern's address
with another port is somebody else."""

import re

import pytest

from ternlib import free_port, make_message, wait_until

PRIMARY, PROXY, WILD = "127.0.0.31", "127.0.0.77", "127.0.0.9"
SENDER = "sender@example.test"


@pytest.fixture(scope="module")
def dns(mres):
    return mres.dnsmasq(
        [
            "--local=/test/",
            "--host-record=self.test,127.0.0.1",
            f"--host-record=primary.test,{PRIMARY}",
            f"--host-record=front.test,{PROXY}",
            f"--host-record=wildmx.test,{WILD}",
            "--mx-host=loop.test,self.test,10",
            "--mx-host=backup.test,primary.test,10",
            "--mx-host=backup.test,self.test,20",
            "--mx-host=noprimary.test,ghost.test,10",  # ghost.test has no address
            "--mx-host=noprimary.test,self.test,20",
            "--mx-host=proxy.test,front.test,10",
            "--mx-host=wild.test,wildmx.test,10",
        ],
        probe="loop.test",
    )


def tern_on(r, dns, port: int, listen: str, bounce_sink, **params):
    """A tern whose smtpd listens on listen (port port), resolving with dns;
    mail for example.test (the bounces) goes to bounce_sink."""
    t = r.tern(start=False, dns_servers=f"127.0.0.1:{dns.port}", smtp_connect_timeout="5s", **params)
    t.port = port
    routes = t.etc / "transport"
    routes.write_text(f"example.test smtp:{bounce_sink.hostport}\n")
    routes.chmod(0o644)
    t.conf_edit(smtpd_listen=listen, transport_maps=f"texthash:{routes}")
    return t.start()


@pytest.fixture(scope="module")
def backup_mx(mres, dns):
    """tern on 127.0.0.1:P with smtp_default_port P, a primary MX sink on
    127.0.0.31:P, proxy_interfaces 127.0.0.77."""
    port = free_port("127.0.0.1", also=(PRIMARY,))
    primary = mres.sink(host=PRIMARY, port=port)
    bounces = mres.sink()
    tern = tern_on(
        mres, dns, port, f"127.0.0.1:{port}", bounces, smtp_default_port=port, proxy_interfaces=PROXY
    )
    return tern, primary, bounces


def bounce_for(sink, rcpt: str):
    return wait_until(
        lambda: next(
            (m for m in sink.snapshot() if m.mail_from == "" and rcpt.encode() in m.content), None
        ),
        20,
        f"a bounce naming {rcpt}",
    )


def test_best_mx_is_this_host_bounces_with_loop_error(backup_mx):
    tern, primary, bounces = backup_mx
    qid = tern.send(make_message(subject="loop"), sender=SENDER, rcpts=("u@loop.test",))
    tern.wait_log(rf"{qid}: MX list for loop\.test cut at preference 10: self\.test is this host")
    tern.wait_log(
        rf"{qid}: to=<u@loop\.test>, relay=none, .*dsn=5\.4\.6, status=bounced "
        rf"\(mail for loop\.test loops back to myself\)",
        timeout=10,
    )
    bounce = bounce_for(bounces, "u@loop.test")
    assert bounce.rcpt_tos == [SENDER]
    assert b"loops back to myself" in bounce.content
    assert not primary.matching(b"Subject: loop")
    # tern never talked to itself about it
    assert not re.search(r"smtpd\[\d+\]: \S+: client=self", tern.log())


def test_backup_mx_delivers_to_the_primary(backup_mx):
    tern, primary, bounces = backup_mx
    qid = tern.send(make_message(subject="backup-up"), sender=SENDER, rcpts=("u@backup.test",))
    (msg,) = primary.wait_for(b"Subject: backup-up")
    assert msg.rcpt_tos == ["u@backup.test"]
    tern.wait_log(rf"{qid}: MX list for backup\.test cut at preference 20: self\.test is this host")
    tern.wait_log(rf"{qid}: to=<u@backup\.test>, relay=primary\.test\[{PRIMARY}\]:\d+, .*status=sent")


def test_backup_mx_with_primary_down_defers_not_loops(backup_mx):
    tern, primary, bounces = backup_mx
    primary.stop()
    try:
        qid = tern.send(make_message(subject="backup-down"), sender=SENDER, rcpts=("u@backup.test",))
        m = tern.wait_log(rf"{qid}: to=<u@backup\.test>, relay=none, .*dsn=(\S+), status=(\w+) \((.*)\)")
        assert m.group(2) == "deferred", m.group(0)
        assert f"connect to primary.test[{PRIMARY}]" in m.group(3)
        assert "self.test[" not in tern.log(), "tried to deliver to itself"
        assert not any(b"u@backup.test" in b.content for b in bounces.snapshot())
    finally:
        primary.start()
    # and once the primary is back, the retry gets there
    primary.wait_for(b"Subject: backup-down", timeout=30)
    tern.wait_log(rf"{qid}: removed")


def test_unreachable_primary_without_address_defers(backup_mx):
    tern, primary, bounces = backup_mx
    qid = tern.send(make_message(subject="noprimary"), sender=SENDER, rcpts=("u@noprimary.test",))
    tern.wait_log(
        rf"{qid}: to=<u@noprimary\.test>, relay=none, .*dsn=4\.4\.4, status=deferred "
        rf"\(unable to find primary relay for noprimary\.test\)"
    )
    assert tern.tern("queue", "delete", qid).returncode == 0


def test_mx_on_a_proxy_interfaces_address_is_a_loop(backup_mx):
    tern, primary, bounces = backup_mx
    qid = tern.send(make_message(subject="proxy"), sender=SENDER, rcpts=("u@proxy.test",))
    tern.wait_log(rf"{qid}: MX list for proxy\.test cut at preference 10: front\.test is this host")
    tern.wait_log(rf"{qid}: to=<u@proxy\.test>, relay=none, .*dsn=5\.4\.6, status=bounced")
    bounce_for(bounces, "u@proxy.test")


def test_wildcard_listener_covers_every_loopback_address(res, dns):
    bounces = res.sink()
    port = free_port("0.0.0.0")
    tern = tern_on(res, dns, port, f"0.0.0.0:{port}", bounces, smtp_default_port=port)
    qid = tern.send(make_message(subject="wild"), sender=SENDER, rcpts=("u@wild.test",))
    tern.wait_log(rf"{qid}: MX list for wild\.test cut at preference 10: wildmx\.test is this host")
    tern.wait_log(rf"{qid}: to=<u@wild\.test>, relay=none, .*dsn=5\.4\.6, status=bounced")


def test_mx_on_our_address_with_another_port_is_not_a_loop(res, dns):
    """tests run tern and sinks on one 127.0.0.1: only the port tells them apart"""
    bounces = res.sink()
    sink = res.sink(host="127.0.0.1")
    port = free_port()
    tern = tern_on(res, dns, port, f"127.0.0.1:{port}", bounces, smtp_default_port=sink.port)
    qid = tern.send(make_message(subject="other-port"), sender=SENDER, rcpts=("u@loop.test",))
    (msg,) = sink.wait_for(b"Subject: other-port")
    assert msg.rcpt_tos == ["u@loop.test"]
    tern.wait_log(rf"{qid}: to=<u@loop\.test>, relay=self\.test\[127\.0\.0\.1\]:{sink.port}, .*status=sent")
    assert "MX list for" not in tern.log()
