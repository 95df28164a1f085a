"""DANE (RFC 7672) in tern-smtp, end to end: a sender tern at
smtp_tls_security_level = dane with smtp_dns_support_level = dnssec asks a
validating unbound (daneutil) for the MX, the address and the TLSA records
of signed, bogus and unsigned zones, and delivers to a receiving tern with
STARTTLS on 127.0.0.1 (or to a plaintext sink on 127.0.0.2) at the same
port, the smtp_default_port of the sender.

Every domain X.test has "MX 10 mx.X.test", an A record for mx.X.test and
(most of them) TLSA records at _PORT._tcp.mx.X.test:

    ee.test        3 1 1 of the receiver's key            verified
    ta.test        2 0 1 of the CA (the receiver sends it) verified
    bad.test       3 1 1 of another key                    deferred 4.7.5
    none.test      none                                    may
    only.test      none, dane-only in smtp_tls_policy_maps deferred
    unusable.test  1 1 1 (PKIX-EE: unusable for SMTP)      encrypt
    unusable2.test 1 1 1, the address is the plain sink    deferred 4.7.4
    tlsabogus.test TLSA is a CNAME into the bogus zone     TLSA lookup error
    bogus.test     bogus zone: SERVFAIL for everything     MX lookup tempfails
    plain.test     unsigned zone, 3 1 1 of the receiver    may (insecure)
"""

import shutil
import tempfile
from pathlib import Path

import pytest

from daneutil import Zone, start_dane_dns, tlsa_ee, tlsa_rdata, tlsa_ta
from tlspolicyutil import (chain_cert, forget, lines_of, outcome, receiving_tern, send_tagged,
                           tlsrpt_lines)
from tlsutil import make_pki

DOMAINS = ("ee", "ta", "bad", "none", "only", "unusable", "unusable2", "tlsabogus", "bogus",
           "plain")


def _zones(pki, port: int, mx_pem: Path):
    ee, ta, other = tlsa_ee(mx_pem), tlsa_ta(pki.path("ca.pem")), tlsa_ee(pki.path("server.pem"))
    pkix_ee = tlsa_rdata(mx_pem, 1, 1, 1)
    tlsa = f"_{port}._tcp.mx"

    def zone(name, *extra, address="127.0.0.1", mode="signed"):
        records = [("@", "MX", f"10 mx.{name}."), ("mx", "A", address)] + list(extra)
        return Zone(name, records, mode=mode)

    return [
        zone("ee.test", (tlsa, "TLSA", ee)),
        zone("ta.test", (tlsa, "TLSA", ta)),
        zone("bad.test", (tlsa, "TLSA", other)),
        zone("none.test"),
        zone("only.test"),
        zone("unusable.test", (tlsa, "TLSA", pkix_ee)),
        zone("unusable2.test", (tlsa, "TLSA", pkix_ee), address="127.0.0.2"),
        zone("tlsabogus.test", (tlsa, "CNAME", f"{tlsa}.bogus.test.")),
        zone("bogus.test", (tlsa, "TLSA", ee), mode="bogus"),
        zone("plain.test", (tlsa, "TLSA", ee), mode="unsigned"),
    ]


@pytest.fixture(scope="module")
def site(mres, it_base):
    d = Path(tempfile.mkdtemp(prefix="smtp-dane-", dir=str(it_base)))
    pki = make_pki(d / "pki")
    cert, key = chain_cert(pki, "mx", [f"mx.{n}.test" for n in DOMAINS])
    sink = mres.sink()
    mx = receiving_tern(mres, cert, key, sink, start=False)
    plain = mres.sink(host="127.0.0.2", port=mx.port)  # no STARTTLS
    dns = start_dane_dns(d, _zones(pki, mx.port, pki.path("mx.pem")))
    mx.start()
    maps = d / "tls_policy"
    maps.write_text("only.test dane-only\n")
    sender = mres.tern(name="sender", smtp_tls_security_level="dane",
                       smtp_dns_support_level="dnssec", dns_servers=dns.address,
                       smtp_default_port=mx.port, smtp_connect_timeout="5s",
                       smtp_tls_policy_maps=f"texthash:{maps}")
    yield sender, mx, sink, plain
    dns.stop()
    shutil.rmtree(d, ignore_errors=True)


def deliver(site, domain: str, tag: str):
    """Send u@domain: (queue ID, status line); a deferred message is deleted."""
    sender = site[0]
    rcpt = f"u@{domain}"
    qid = send_tagged(sender, rcpt, tag)
    line = outcome(sender, qid, rcpt)
    if "status=deferred" in line:
        forget(sender, qid)
    return qid, line


def test_matching_dane_ee_record_delivers_over_verified_tls(site):
    sender, _, sink, _ = site
    qid, line = deliver(site, "ee.test", "dane-ee")
    assert "status=sent" in line and "tls=TLSv1.3/verified" in line, line
    assert f"relay=mx.ee.test[127.0.0.1]:{site[1].port}" in line
    sender.wait_log(rf"Verified TLS connection established to mx\.ee\.test\[127\.0\.0\.1\]:{site[1].port}")
    sink.wait_for(b"X-Test: dane-ee")


def test_matching_dane_ta_record_delivers_over_verified_tls(site):
    _, _, sink, _ = site
    qid, line = deliver(site, "ta.test", "dane-ta")
    assert "status=sent" in line and "/verified" in line, line
    sink.wait_for(b"X-Test: dane-ta")


def test_mismatching_tlsa_record_defers(site):
    qid, line = deliver(site, "bad.test", "dane-bad")
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "certificate verification failed for mx.bad.test[127.0.0.1]" in line, line
    assert not site[2].matching(b"X-Test: dane-bad")


def test_signed_zone_without_tlsa_falls_back_to_may(site):
    sender, _, sink, _ = site
    qid, line = deliver(site, "none.test", "dane-none")
    assert "status=sent" in line, line
    # at level may nothing asks for a name: the certificate is not "verified"
    assert "tls=TLSv1.3/untrusted" in line or "tls=TLSv1.3/trusted" in line, line
    sink.wait_for(b"X-Test: dane-none")


def test_dane_only_without_tlsa_defers(site):
    qid, line = deliver(site, "only.test", "dane-only")
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "no usable DANE TLSA records" in line, line
    assert "relay=none" in line, line  # no connection was made


def test_unusable_tlsa_records_mean_tls_without_authentication(site):
    sender, _, sink, _ = site
    qid, line = deliver(site, "unusable.test", "dane-unusable")
    assert "status=sent" in line and "tls=TLSv1.3/" in line, line
    assert any("TLSA records of mx.unusable.test are unusable" in x for x in lines_of(sender, qid))
    sink.wait_for(b"X-Test: dane-unusable")


def test_unusable_tlsa_records_require_starttls(site):
    qid, line = deliver(site, "unusable2.test", "dane-unusable2")
    assert "status=deferred" in line and "dsn=4.7.4" in line, line
    assert "TLS is required, but was not offered by host mx.unusable2.test[127.0.0.2]" in line
    assert not site[3].matching(b"X-Test: dane-unusable2")


def test_bogus_tlsa_record_defers(site):
    qid, line = deliver(site, "tlsabogus.test", "dane-tlsabogus")
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "TLSA lookup error for mx.tlsabogus.test" in line, line


def test_bogus_zone_defers_at_the_mx_lookup(site):
    qid, line = deliver(site, "bogus.test", "dane-bogus")
    assert "status=deferred" in line and "relay=none" in line, line
    assert "dsn=4.4.3" in line, line


def test_unsigned_zone_falls_back_to_may(site):
    sender, _, sink, _ = site
    qid, line = deliver(site, "plain.test", "dane-plain")
    assert "status=sent" in line and "/verified" not in line, line
    sink.wait_for(b"X-Test: dane-plain")


def test_tlsrpt_counts_dane_success_and_failure(site):
    sender = site[0]
    sender.stop()  # tern-smtp adds its counts to the store as it exits
    try:
        (ee,) = tlsrpt_lines(sender, "ee.test")
        assert "  ee.test  tlsa  success=" in ee and ee.endswith("failure=0"), ee
        assert "success=0" not in ee
        (bad,) = tlsrpt_lines(sender, "bad.test")
        assert "  bad.test  tlsa  success=0 failure=" in bad, bad
        assert "(validation-failure=" in bad and "mx=mx.bad.test" in bad, bad
        (bogus,) = tlsrpt_lines(sender, "tlsabogus.test")
        assert "  tlsabogus.test  tlsa  success=0 " in bogus and "dnssec-invalid=" in bogus
        (only,) = tlsrpt_lines(sender, "only.test")
        assert "  only.test  tlsa  success=0 " in only and "dane-required=" in only, only
    finally:
        sender.start()


def test_dns_support_level_enabled_turns_dane_into_may(site):
    sender = site[0]
    sender.stop()
    sender.conf_edit(smtp_dns_support_level="enabled")
    sender.start()
    qid, line = deliver(site, "bad.test", "dane-disabled")
    assert "status=sent" in line and "/verified" not in line, line
    site[2].wait_for(b"X-Test: dane-disabled")
