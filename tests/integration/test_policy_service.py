"""check_policy_service through tern-smtpd: postgrey (Debian's greylisting
policy server) as a real peer, a server that is down, and a server that
hangs -- which must stall only its own session (docs/policy.md)."""

import tempfile
import time
from pathlib import Path

import pytest

from policyutil import INSIDE, envelope, open_session, policy_tern
from ternlib import SilentServer, free_port, make_message, start_postgrey, terminate

HAL = "hal@tern.test"
GREYLISTED = "450 4.7.1 <hal@tern.test>: Recipient address rejected: Greylisted, see "


@pytest.fixture
def postgrey(it_base):
    tmp = Path(tempfile.mkdtemp(prefix="postgrey-", dir=it_base))
    tmp.chmod(0o755)
    proc, port = start_postgrey(tmp, delay=2)
    yield f"inet:127.0.0.1:{port}"
    terminate(proc)


def test_postgrey_greylists_then_accepts_the_retry(res, postgrey):
    p = policy_tern(res, smtpd_recipient_restrictions=f"check_policy_service {postgrey}")
    m, (r,) = envelope(p.tern, "joe@ok.test", [HAL])
    assert r[0].startswith(GREYLISTED), r
    p.tern.wait_log(r"NOQUEUE: reject: RCPT from host\.dialup\.test\[127\.0\.0\.5\]: 450 4\.7\.1 ")
    time.sleep(3)  # postgrey --delay=2
    with open_session(p.tern) as c:
        assert c.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        assert c.cmd(f"RCPT TO:<{HAL}>") == [f"250 2.1.5 <{HAL}>... Recipient ok"]
        assert c.data(make_message(headers={"X-T": "greylisted"}))[0].startswith("250 ")
    (msg,) = p.box.wait_for(b"X-T: greylisted")
    # postgrey's PREPEND for the retry is in the delivered message
    assert msg.header("X-Greylist").startswith("delayed ")


def test_policy_server_down_is_a_temporary_failure(res):
    port = free_port()  # nothing listens there
    p = policy_tern(res, smtpd_recipient_restrictions=f"check_policy_service inet:127.0.0.1:{port}")
    m, (r,) = envelope(p.tern, "joe@ok.test", [HAL])
    assert r == ["451 4.3.5 <hal@tern.test>: Recipient address rejected: Server configuration "
                 "problem"]
    p.tern.wait_log(r"check_policy_service inet:127\.0\.0\.1:\d+")


def test_hung_policy_server_stalls_nobody_else(res):
    hung = SilentServer()  # reads requests, never answers
    res.others.append(hung)
    p = policy_tern(res, smtpd_recipient_restrictions="permit_mynetworks, check_policy_service "
                    f"inet:127.0.0.1:{hung.port}", smtpd_policy_service_timeout="6s")
    a = open_session(p.tern)  # the outsider: its RCPT waits for the hung server
    try:
        assert a.cmd("MAIL FROM:<joe@ok.test>")[0].startswith("250 ")
        a.send(f"RCPT TO:<{HAL}>\r\n")
        time.sleep(0.5)
        # meanwhile a whole transaction from mynetworks, on the same workers
        t0 = time.monotonic()
        m, (r,) = envelope(p.tern, "joe@ok.test", [HAL], source=INSIDE)
        assert r == [f"250 2.1.5 <{HAL}>... Recipient ok"]
        assert time.monotonic() - t0 < 2.0
        # and the waiting session gets the temporary failure after the timeout
        reply = a.read_reply(timeout=15)
        assert reply[0].startswith("451 4.3.5 "), reply
    finally:
        a.close()
