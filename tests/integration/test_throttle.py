"""Connection throttles for the whole host (docs/smtpd.md, "Connection and
rate limits"): smtpd_connection_rate_throttle (SPEC PERF-04, sendmail's
ConnectionRateThrottle) accepts at most N new connections per second across
all smtpd workers and leaves the rest waiting in the listen queue, none
refused; smtpd_client_limit x smtpd_workers (SPEC PERF-03, sendmail's
MaxDaemonChildren) caps the sessions, and the connection over the cap gets
no greeting until a session closes."""

import selectors
import socket
import time

import pytest

from ternlib import SmtpConn

RATE = 5
CLIENTS = 20


def greeting_times(tern, count, timeout=15.0):
    """Open count connections at once; the seconds from the first connect to
    each one's first reply line, in arrival order, and the lines."""
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    socks = []
    for _ in range(count):
        s = socket.create_connection((tern.host, tern.port), timeout=5)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
        socks.append(s)
    arrivals = []
    deadline = start + timeout
    while len(arrivals) < count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            chunk = key.fileobj.recv(4096)
            key.data.extend(chunk)
            if b"\n" in key.data or not chunk:
                arrivals.append((time.monotonic() - start, bytes(key.data).split(b"\r\n")[0]))
                sel.unregister(key.fileobj)
    for s in socks:
        s.close()
    return arrivals


def most_in_one_second(times):
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


@pytest.mark.parametrize("workers", [1, 2])
def test_rate_throttle_spreads_twenty_connections_over_four_seconds(res, workers):
    tern = res.tern(smtpd_connection_rate_throttle=RATE, smtpd_workers=workers)
    time.sleep(1.5)  # the readiness probe's pause is over
    arrivals = greeting_times(tern, CLIENTS)
    times = [t for t, _ in arrivals]
    print(f"workers={workers} greetings at", " ".join(f"{t:.2f}" for t in times))
    assert len(arrivals) == CLIENTS, f"only {len(arrivals)} greeted: {arrivals}"
    assert all(line.startswith(b"220 tern.test ESMTP") for _, line in arrivals), arrivals
    spread = times[-1] - times[0]
    assert 3.0 <= spread <= 5.0, f"greetings spread over {spread:.2f}s"
    # the schedule allows RATE, the greetings' own jitter one or two more
    assert most_in_one_second(times) <= RATE + 2, times
    tern.wait_log(rf"deferring connections on daemon MTA: {RATE} per second$")
    tern.wait_log(r"accepting connections again for daemon MTA$")


def test_rate_throttle_is_off_by_default(res):
    tern = res.tern()
    arrivals = greeting_times(tern, CLIENTS)
    assert len(arrivals) == CLIENTS
    assert arrivals[-1][0] < 1.5, arrivals
    assert "deferring connections" not in tern.log()


def test_rate_throttle_below_the_worker_count_leaves_a_worker_shut(res):
    tern = res.tern(smtpd_connection_rate_throttle=1, smtpd_workers=2)
    tern.wait_log(r"daemon MTA: smtpd_connection_rate_throttle = 1 is below smtpd_workers = 2: "
                  r"worker 1 does not accept there$")
    time.sleep(1.5)
    times = [t for t, _ in greeting_times(tern, 3)]
    assert len(times) == 3
    assert 1.6 <= times[-1] - times[0] <= 3.0, times


def idle_sessions(tern, count):
    conns = []
    for _ in range(count):
        c = tern.connect()
        assert c.greeting()[0].startswith("220 ")
        conns.append(c)
    return conns


def assert_waits_then_greeted(tern, conns):
    """A connection over the cap: accepted by the kernel, no greeting while
    the sessions stay; greeted once one of them quits."""
    waiting = SmtpConn(tern.host, tern.port, timeout=10)
    with pytest.raises(socket.timeout):
        waiting.read_line(timeout=2.0)
    conns[0].cmd("QUIT")
    conns[0].close()
    assert waiting.read_line(timeout=5.0).startswith("220 tern.test ESMTP")
    assert waiting.cmd("QUIT")[0].startswith("221 ")
    for c in [waiting] + conns[1:]:
        c.close()


def test_fourth_connection_waits_for_a_free_session_at_client_limit_three(res):
    tern = res.tern(smtpd_client_limit=3, smtpd_workers=1)
    time.sleep(0.5)  # the readiness probe's session has ended
    conns = idle_sessions(tern, 3)
    tern.wait_log(r"3 sessions: smtpd_client_limit reached, not accepting for now$")
    assert_waits_then_greeted(tern, conns)


def test_session_cap_is_client_limit_times_workers(res):
    tern = res.tern(smtpd_client_limit=2, smtpd_workers=2)
    time.sleep(0.5)
    conns = idle_sessions(tern, 4)
    assert_waits_then_greeted(tern, conns)
