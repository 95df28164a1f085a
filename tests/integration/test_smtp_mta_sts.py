"""MTA-STS (RFC 8461) in tern-smtp, end to end: a sender tern with
smtp_mta_sts = yes finds the _mta-sts TXT record and the MX in a dnsmasq,
fetches the policy over real HTTPS (mtastsutil) verified by the test CA
(smtp_tls_CAfile), and delivers to receiving terns with STARTTLS at its
smtp_default_port: 127.0.0.1 with a certificate from the test CA for
mx.sts.test and mx.stsbadmx.test only, 127.0.0.2 with a certificate from the
rogue CA for mx.stsrogue.test.

    sts.test         enforce, mx: mx.sts.test          verified, delivered
    stsbadmx.test    enforce, mx: mx.elsewhere.test    MX not in the policy
    stswrong.test    enforce, mx: mx.stswrong.test     certificate lacks the name
    stsrogue.test    enforce, mx: mx.stsrogue.test     certificate from the rogue CA
    ststesting.test  testing, mx: mx.ststesting.test   certificate lacks the name
    nosts.test       no TXT record                     may
"""

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtastsutil import mta_sts_dns_records, start_mta_sts_servers
from tlspolicyutil import (assert_tlsrpt_failed, deliver, receiving_tern, tlsrpt_after_stop,
                           tlsrpt_counts)
from tlsutil import issue_server_cert, make_pki

POLICY_ID = "20240101"
POLICIES = {
    "sts.test": ("enforce", "mx.sts.test"),
    "stsbadmx.test": ("enforce", "mx.elsewhere.test"),
    "stswrong.test": ("enforce", "mx.stswrong.test"),
    "stsrogue.test": ("enforce", "mx.stsrogue.test"),
    "ststesting.test": ("testing", "mx.ststesting.test"),
}
ROGUE_MX = "127.0.0.2"


def policy_text(mode: str, mx: str) -> str:
    return f"version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n"


def dns_records(policy_id: str):
    records = ["--local=/test/"]
    for domain in POLICIES:
        records += mta_sts_dns_records(domain, policy_id)
    for domain in list(POLICIES) + ["nosts.test"]:
        address = ROGUE_MX if domain == "stsrogue.test" else "127.0.0.1"
        records += [f"--mx-host={domain},mx.{domain},10", f"--host-record=mx.{domain},{address}"]
    return records


def start_rogue_mx(mres, pki, port: int, sink):
    """A receiving tern on 127.0.0.2:port whose certificate for
    mx.stsrogue.test comes from the CA nobody trusts."""
    cert, key = issue_server_cert(pki, "rogue-mx", ["mx.stsrogue.test"], ca="rogueca")
    t = receiving_tern(mres, cert, key, sink, start=False)
    t.host, t.port = ROGUE_MX, port
    t.conf_edit(smtpd_listen=f"{ROGUE_MX}:{port}")
    return t.start()


@pytest.fixture(scope="module")
def site(mres, it_base):
    d = Path(tempfile.mkdtemp(prefix="smtp-mta-sts-", dir=str(it_base)))
    pki = make_pki(d / "pki")
    _, https_port, stop_https = start_mta_sts_servers(
        d, {dom: policy_text(*p) for dom, p in POLICIES.items()}, pki)
    dns = mres.dnsmasq(dns_records(POLICY_ID), probe="sts.test")
    sink = mres.sink()
    cert, key = issue_server_cert(pki, "mx", ["mx.sts.test", "mx.stsbadmx.test"])
    mx = receiving_tern(mres, cert, key, sink)
    start_rogue_mx(mres, pki, mx.port, sink)
    sender = mres.tern(name="sender", smtp_mta_sts="yes", smtp_mta_sts_https_port=https_port,
                       smtp_mta_sts_fetch_timeout="5s", smtp_tls_CAfile=pki.path("ca.pem"),
                       dns_servers=f"127.0.0.1:{dns.port}", smtp_default_port=mx.port,
                       smtp_connect_timeout="5s",
                       smtp_connection_cache_time_limit="0")  # each message looks up its policy
    yield SimpleNamespace(sender=sender, mx=mx, sink=sink, dns=dns, stop_https=stop_https)
    stop_https()
    shutil.rmtree(d, ignore_errors=True)


def send(site, domain: str, tag: str) -> str:
    """Send u@domain: its status line (a deferred message is deleted)."""
    return deliver(site.sender, f"u@{domain}", tag)[1]


def test_enforce_with_matching_mx_delivers_over_verified_tls(site):
    line = send(site, "sts.test", "sts-good")
    assert "status=sent" in line and "tls=TLSv1.3/verified" in line, line
    site.sender.wait_log(rf"mta-sts: sts\.test: policy id {POLICY_ID} mode enforce max_age 86400 "
                         "fetched")
    site.sender.wait_log(r"Verified TLS connection established to mx\.sts\.test\[127\.0\.0\.1\]:"
                         f"{site.mx.port}")
    site.sink.wait_for(b"X-Test: sts-good")


def test_enforce_refuses_an_mx_not_in_the_policy(site):
    line = send(site, "stsbadmx.test", "sts-badmx")
    assert "status=deferred" in line and "dsn=4.7.5" in line and "relay=none" in line, line
    assert "MX host mx.stsbadmx.test is not in the MTA-STS policy of stsbadmx.test" in line, line


def test_enforce_refuses_a_certificate_for_another_name(site):
    line = send(site, "stswrong.test", "sts-wrong")
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "certificate verification failed for mx.stswrong.test[127.0.0.1]" in line, line
    assert not site.sink.matching(b"X-Test: sts-wrong")


def test_enforce_refuses_a_certificate_from_an_untrusted_ca(site):
    line = send(site, "stsrogue.test", "sts-rogue")
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "certificate verification failed for mx.stsrogue.test[127.0.0.2]" in line, line
    assert not site.sink.matching(b"X-Test: sts-rogue")


def test_testing_mode_delivers_and_logs_the_bad_certificate(site):
    line = send(site, "ststesting.test", "sts-testing")
    assert "status=sent" in line and "/verified" not in line, line
    site.sender.wait_log(r"MTA-STS policy of ststesting\.test \(testing\): the certificate of "
                         r"mx\.ststesting\.test\[127\.0\.0\.1\]")
    site.sink.wait_for(b"X-Test: sts-testing")


def test_domain_without_policy_delivers_as_before(site):
    line = send(site, "nosts.test", "sts-none")
    assert "status=sent" in line and "/verified" not in line, line
    site.sink.wait_for(b"X-Test: sts-none")


def test_cached_policy_outlives_its_server(site):
    """The policy server goes away and the TXT record names a new id: the
    fetch fails and the cached policy still rules (RFC 8461 5.1)."""
    site.stop_https()
    site.dns.stop()
    site.dns.args = [a.replace(f"id={POLICY_ID};", "id=20250101;") for a in site.dns.args]
    site.dns.start("sts.test")
    line = send(site, "stsbadmx.test", "sts-cached-badmx")
    assert "status=deferred" in line and "is not in the MTA-STS policy" in line, line
    site.sender.wait_log(r"mta-sts: stsbadmx\.test: policy fetch failed")
    line = send(site, "sts.test", "sts-cached-good")
    assert "status=sent" in line and "tls=TLSv1.3/verified" in line, line
    site.sender.wait_log(r"mta-sts: sts\.test: policy fetch failed")
    site.sink.wait_for(b"X-Test: sts-cached-good")


def test_tlsrpt_counts_sts_success_and_failures(site):
    failed = {"stsbadmx.test": "validation-failure", "stswrong.test": "certificate-host-mismatch",
              "stsrogue.test": "certificate-not-trusted",
              "ststesting.test": "certificate-host-mismatch"}  # reported, not enforced
    counts = tlsrpt_after_stop(site.sender, ["sts.test"] + list(failed))
    assert tlsrpt_counts(counts["sts.test"], "sts.test", "sts")[:2] == (2, 0), counts
    for domain, result in failed.items():
        assert_tlsrpt_failed(counts[domain], domain, "sts", result)
