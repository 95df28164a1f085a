"""Rates shared in Redis (anvil_backend = redis:HOST:PORT): two tern
instances, each with its own tern-anvil, pointing at one Redis share one
connection and message budget per client, where without a backend each
counts alone; with Redis stopped or killed, sessions are answered from the
local counts at once and mail keeps flowing, one line says so, and the
sharing comes back with Redis."""

import os
import signal
import time

from remoteutil import redis  # noqa: F401 (fixture)
from ternlib import make_message, wait_until

UNIT = 3600  # the window is aligned on the epoch: a long one is never crossed mid-test
REFUSED = "421 4.7.0 tern.test Error: too many connections from {}"


def two_terns(res, backend=None, **params):
    """Two instances whose only exempt client is 127.0.0.1 (the readiness
    probe), both counting in backend when it is set."""
    base = {
        "smtpd_workers": 1,
        "smtpd_client_event_limit_exceptions": "127.0.0.1/32",
        "smtpd_client_connection_count_limit": 0,
        "anvil_rate_time_unit": f"{UNIT}s",
    }
    if backend:
        base["anvil_backend"] = backend
    base.update(params)
    if UNIT - time.time() % UNIT < 10:  # let the window turn before the test, not during it
        time.sleep(UNIT - time.time() % UNIT + 0.1)
    terns = (res.tern(name="a", **base), res.tern(name="b", **base))
    if backend:
        for t in terns:
            t.wait_log(r"anvil\[\d+\]: anvil: redis \S+ connected: rates are shared")
    return terns


def greeting(t, source):
    """The first reply line of a new connection from source (closed after)."""
    with t.connect(source=source) as c:
        return c.read_line()


def test_two_instances_share_one_connection_rate_in_redis(res, redis):
    a, b = two_terns(res, f"redis:127.0.0.1:{redis.port}", smtpd_client_connection_rate_limit=4)
    client = "127.0.0.5"
    assert [greeting(t, client)[:4] for t in (a, b, a, b)] == ["220 "] * 4
    assert greeting(a, client) == REFUSED.format(client)
    assert greeting(b, client) == REFUSED.format(client)
    window = int(time.time()) // UNIT
    assert redis.cmd("GET", f"tern:anvil:connection:smtp:{client}:{window}") == "6"
    ttl = int(redis.cmd("TTL", f"tern:anvil:connection:smtp:{client}:{window}"))
    assert 0 < ttl <= 2 * UNIT
    a.wait_log(r"warning: Connection rate limit exceeded: 5 from unknown\[127\.0\.0\.5\]")


def test_without_a_backend_each_instance_counts_alone(res):
    a, b = two_terns(res, None, smtpd_client_connection_rate_limit=4)
    client = "127.0.0.5"
    assert [greeting(t, client)[:4] for t in (a, b) * 4] == ["220 "] * 8
    assert greeting(a, client) == REFUSED.format(client)
    assert greeting(b, client) == REFUSED.format(client)


def test_message_rate_is_shared(res, redis):
    a, b = two_terns(res, f"redis:127.0.0.1:{redis.port}", smtpd_client_message_rate_limit=2)
    client = "127.0.0.6"
    a.send(make_message(), source=client)
    b.send(make_message(), source=client)
    with a.connect(source=client) as c:
        c.read_line()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<s@example.test>") == [
            f"450 4.7.1 Error: too much mail from {client}"]


def test_mail_flows_when_redis_hangs_or_dies_and_sharing_comes_back(res, redis):
    backend = f"redis:127.0.0.1:{redis.port}"
    a, b = two_terns(res, backend, smtpd_client_connection_rate_limit=4)
    down = (rf"warning: anvil: redis 127\.0\.0\.1:{redis.port} unavailable \((.*)\): "
            r"counting locally$")

    os.kill(redis.pid, signal.SIGSTOP)  # accepts, never answers
    started = time.monotonic()
    assert greeting(a, "127.0.0.7").startswith("220 ")
    assert time.monotonic() - started < 1.0  # the 200 ms deadline, not smtpd's 2 s
    assert "no reply within 1s" in a.wait_log(down, timeout=5).group(1)

    redis.kill()  # SIGKILL ends it stopped as it is
    b.wait_log(down, timeout=5)
    client = "127.0.0.8"  # counted locally: four on each instance
    for t in (a, b):
        for _ in range(3):
            assert greeting(t, client).startswith("220 ")
        assert t.send(make_message(), source=client)
        assert greeting(t, client) == REFUSED.format(client)
    for t in (a, b):  # logged once, not per request nor per reconnect
        assert t.log().count("counting locally") == 1

    redis.start()
    for t in (a, b):
        t.wait_log(r"anvil: redis \S+ available again: rates are shared", timeout=10)
    client = "127.0.0.9"
    assert [greeting(t, client)[:4] for t in (a, b, a, b)] == ["220 "] * 4
    assert greeting(b, client) == REFUSED.format(client)
