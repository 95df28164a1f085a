"""tlspolicyutil - what the end-to-end suites of tern-smtp's TLS policies
(test_smtp_dane.py, test_smtp_mta_sts.py, test_smtp_requiretls.py) share:
a receiving tern with STARTTLS, sending one message and reading the one log
line tern-smtp writes for its recipient, and `tern tlsrpt` after a flush.

    mx = receiving_tern(mres, cert, key, sink)    # STARTTLS, relays to sink
    qid = send_tagged(sender, "u@ee.test", "dane-ee")
    line = outcome(sender, qid, "u@ee.test")      # "... status=sent (...)"
    forget(sender, qid)                            # a deferred one: no retries
    qid, line = deliver(sender, "u@ee.test", "dane-ee")  # the three at once
    counts = tlsrpt_after_stop(sender, ["ee.test"])     # stop, read, start
    tlsrpt_counts(counts["ee.test"], "ee.test", "tlsa")  # (success, failure, details)
"""

import re
from pathlib import Path
from typing import Dict, List, Tuple

from ternlib import make_message
from tlsutil import Pki, issue_server_cert

STATUS_LINE = r"{qid}: to=<{rcpt}>, relay=.*, dsn=\S+, status=(?:sent|deferred|bounced) .*$"


def chain_cert(pki: Pki, name: str, hostnames: List[str], ca: str = "ca"):
    """(cert file with the leaf and then the CA, key file): a server
    certificate for hostnames that also sends its CA (DANE-TA(2) records
    with selector 0 need the CA in the chain, RFC 7671 5.2.2)."""
    cert, key = issue_server_cert(pki, name, hostnames, ca=ca)
    chain = Path(pki.dir) / f"{name}-chain.pem"
    chain.write_bytes(cert.read_bytes() + pki.path(f"{ca}.pem").read_bytes())
    return chain, key


def receiving_tern(mres, cert: Path, key: Path, sink, start: bool = True, **params):
    """A tern that offers STARTTLS with cert/key and relays everything (its
    mynetworks is 127.0.0.0/8) to sink.  Not started when start is False:
    its port (.port) is known before it runs."""
    return mres.tern(start=start, name="mx", myhostname="mx.receiver.test",
                     smtpd_tls_cert_file=cert, smtpd_tls_key_file=key,
                     relayhost=sink.hostport, **params)


def send_tagged(tern, rcpt: str, tag: str, sender: str = "sender@example.test") -> str:
    """One message to rcpt with the header X-Test: tag; its queue ID."""
    msg = make_message(to=rcpt, sender=sender, headers={"X-Test": tag})
    return tern.send(msg, sender=sender, rcpts=(rcpt,))


def outcome(tern, qid: str, rcpt: str, timeout: float = 30.0) -> str:
    """The first status line tern-smtp logs for rcpt of message qid."""
    rx = STATUS_LINE.format(qid=re.escape(qid), rcpt=re.escape(rcpt))
    return tern.wait_log(rx, timeout=timeout).group(0)


def deliver(tern, rcpt: str, tag: str):
    """send_tagged, then outcome: (queue ID, status line); a deferred
    message is deleted, not tried again."""
    qid = send_tagged(tern, rcpt, tag)
    line = outcome(tern, qid, rcpt)
    if "status=deferred" in line:
        forget(tern, qid)
    return qid, line


def lines_of(tern, qid: str) -> List[str]:
    """Every maillog line about message qid."""
    return [line for line in tern.log().splitlines() if f"{qid}: " in line]


def forget(tern, qid: str) -> None:
    """Delete a deferred message so that it is not tried again."""
    r = tern.tern("queue", "delete", qid)
    assert r.returncode == 0, r.stderr


def tlsrpt_lines(tern, domain: str) -> List[str]:
    """`tern tlsrpt DOMAIN`: what tern-smtp flushed to the store."""
    r = tern.tern("tlsrpt", domain)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def tlsrpt_after_stop(tern, domains: List[str]) -> Dict[str, List[str]]:
    """Stop tern (tern-smtp adds its counts to the store as it exits; else
    only every 60 s), read `tern tlsrpt DOMAIN` of each domain, start it
    again."""
    tern.stop()
    try:
        return {domain: tlsrpt_lines(tern, domain) for domain in domains}
    finally:
        tern.start()


def tlsrpt_counts(lines: List[str], domain: str, policy_type: str) -> Tuple[int, int, str]:
    """(success, failure, the failure details) of the one line of domain
    and policy_type."""
    (line,) = [x for x in lines if f"  {domain}  {policy_type}  " in x]
    m = re.search(r"  success=(\d+) failure=(\d+)(?: \((.*)\))?$", line)
    assert m, line
    return int(m.group(1)), int(m.group(2)), m.group(3) or ""


def assert_tlsrpt_failed(lines: List[str], domain: str, policy_type: str, result: str) -> None:
    """Only failures were counted for domain, among them result with its MX."""
    success, failure, details = tlsrpt_counts(lines, domain, policy_type)
    assert success == 0 and failure > 0, lines
    assert re.search(rf"(^|, ){result}=\d+ mx=mx\.{re.escape(domain)}", details), lines
