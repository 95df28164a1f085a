"""MX resolution through a dnsmasq on loopback (brief item 3): lowest
preference first, the next MX when the first does not answer, and the A
record of a domain without MX."""

import pytest

from ternlib import free_port, make_message

MX1, MX2, A_HOST = "127.0.0.21", "127.0.0.22", "127.0.0.23"


@pytest.fixture(scope="module")
def mx_setup(mres):
    dns = mres.dnsmasq(
        [
            # authoritative for .test: without it dnsmasq answers REFUSED (no
            # upstream) for the MX query of a.test instead of "no such record"
            "--local=/test/",
            "--mx-host=mx.test,mx1.mx.test,10",
            "--mx-host=mx.test,mx2.mx.test,20",
            f"--host-record=mx1.mx.test,{MX1}",
            f"--host-record=mx2.mx.test,{MX2}",
            f"--host-record=a.test,{A_HOST}",
        ],
        probe="mx.test",
    )
    port = free_port(MX1, also=(MX2, A_HOST))
    sinks = {ip: mres.sink(host=ip, port=port) for ip in (MX1, MX2, A_HOST)}
    tern = mres.tern(
        dns_servers=f"127.0.0.1:{dns.port}",
        smtp_default_port=port,
        smtp_connect_timeout="5s",
    )
    return tern, sinks


def test_mx_lowest_preference_first(mx_setup):
    tern, sinks = mx_setup
    qid = tern.send(make_message(to="u@mx.test", headers={"X-Test": "mx-first"}), rcpts=("u@mx.test",))
    (msg,) = sinks[MX1].wait_for(b"X-Test: mx-first", timeout=20)
    assert msg.rcpt_tos == ["u@mx.test"]
    assert not sinks[MX2].matching(b"X-Test: mx-first")
    tern.wait_log(rf"{qid}: to=<u@mx\.test>, relay=mx1\.mx\.test\[127\.0\.0\.21\]:\d+, .*status=sent")


def test_mx_falls_back_to_second(mx_setup):
    tern, sinks = mx_setup
    sinks[MX1].stop()
    try:
        tern.send(make_message(to="u@mx.test", headers={"X-Test": "mx-second"}), rcpts=("u@mx.test",))
        (msg,) = sinks[MX2].wait_for(b"X-Test: mx-second", timeout=30)
        assert msg.rcpt_tos == ["u@mx.test"]
    finally:
        sinks[MX1].start()
    assert not sinks[MX1].matching(b"X-Test: mx-second")


def test_a_record_without_mx(mx_setup):
    tern, sinks = mx_setup
    tern.send(make_message(to="v@a.test", headers={"X-Test": "a-only"}), rcpts=("v@a.test",))
    (msg,) = sinks[A_HOST].wait_for(b"X-Test: a-only", timeout=20)
    assert msg.rcpt_tos == ["v@a.test"]
