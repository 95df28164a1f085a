"""smtpd's policy service client (smtpd/policy_client.c) against a real
policy server: postgrey, greylisting with --delay=2.

The client runs in tests/unit/policy_client_probe, which sends each request
of its stdin through one pool and prints "STATUS ACTION" per request.  The
requests carry what Postfix's smtpd sends at RCPT; postgrey itself needs
request=smtpd_access_policy, client_address, client_name, sender and
recipient (instance tells one message from the next).
"""

import subprocess
import tempfile
from pathlib import Path

import pytest

from ternlib import BUILD, start_postgrey, terminate

PROBE = BUILD / "tests" / "unit" / "policy_client_probe"


def rcpt_request(client="192.0.2.10", sender="alice@example.net",
                 recipient="bob@example.org", instance="a1b2.5f3c9e1d.1", drop=()):
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": client,
        "client_name": "mx.example.net",
        "reverse_client_name": "mx.example.net",
        "helo_name": "mx.example.net",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "queue_id": "",
        "instance": instance,
        "size": "0",
    }
    for name in drop:
        attrs.pop(name)
    return "".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n"


def probe(endpoint, requests, wait=0.0, timeout=10):
    out = subprocess.run(
        [str(PROBE), "-t", str(timeout), "-w", str(wait), endpoint],
        input="".join(requests).encode(), capture_output=True, timeout=60, check=True,
    )
    lines = out.stdout.decode().splitlines()
    assert len(lines) == len(requests), out
    return [(int(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in lines]


@pytest.fixture
def postgrey(it_base):
    tmp = Path(tempfile.mkdtemp(prefix="postgrey-", dir=it_base))
    tmp.chmod(0o755)
    proc, port = start_postgrey(tmp)
    yield f"inet:127.0.0.1:{port}"
    terminate(proc)


def test_postgrey_greylists_a_new_triplet_then_passes_it_after_the_delay(postgrey):
    first, again, later = probe(postgrey, [rcpt_request()] * 3, wait=3)
    assert first[0] == 0 and first[1].startswith("DEFER_IF_PERMIT Greylisted"), first
    # the retry after the delay: passed, with the header on the first pass
    assert again[0] == 0, again
    assert again[1].startswith("PREPEND X-Greylist: delayed") or again[1] == "DUNNO", again
    assert later == (0, "DUNNO")


def test_postgrey_answers_requests_one_after_the_other(postgrey):
    requests = [rcpt_request(recipient=f"user{i}@example.org") for i in range(5)]
    answers = probe(postgrey, requests)
    assert all(status == 0 and action.startswith("DEFER_IF_PERMIT") for status, action in answers)


def test_postgrey_answers_dunno_without_a_sender(postgrey):
    assert probe(postgrey, [rcpt_request(drop=("sender",))]) == [(0, "DUNNO")]


def test_postgrey_stays_silent_on_another_request_type(postgrey):
    request = rcpt_request().replace("request=smtpd_access_policy", "request=other")
    status, action = probe(postgrey, [request], timeout=1)[0]
    assert status == -1 and "no complete reply within 1s" in action
