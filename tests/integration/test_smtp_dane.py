"""DANE (RFC 7672) in tern-smtp, end to end: a sender tern at
smtp_tls_security_level = dane with smtp_dns_support_level = dnssec asks a
validating unbound (daneutil) for the MX, the address and the TLSA records
of signed, bogus and unsigned zones, and delivers to a receiving tern with
STARTTLS on 127.0.0.1 (or to a plaintext sink on 127.0.0.2) at the same
port, the smtp_default_port of the sender.

Every domain X.test has "MX 10 mx.X.test", an A record for mx.X.test and
(most of them) TLSA records at _PORT._tcp.mx.X.test:

    ee.test           3 1 1 of the receiver's key             verified
    ta.test           2 0 1 of the CA (the receiver sends it) verified
    bad.test          3 1 1 of another key                    deferred 4.7.5
    none.test         none                                    may
    only.test         none, dane-only in smtp_tls_policy_maps deferred
    onlyunusable.test 1 1 1, dane-only in the map             deferred
    unusable.test     1 1 1 (PKIX-EE: unusable for SMTP)      encrypt
    unusable2.test    1 1 1, the address is the plain sink    deferred 4.7.4
    tlsabogus.test    TLSA is a CNAME into the bogus zone     TLSA lookup error
    bogus.test        bogus zone: SERVFAIL for everything     MX lookup tempfails
    plain.test        unsigned zone, 3 1 1 of the receiver    may (insecure)
"""

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from daneutil import Zone, start_dane_dns, tlsa_ee, tlsa_rdata, tlsa_ta
from tlspolicyutil import (assert_tlsrpt_failed, chain_cert, deliver, lines_of, receiving_tern,
                           tlsrpt_after_stop, tlsrpt_counts)
from tlsutil import make_pki

DOMAINS = ("ee", "ta", "bad", "none", "only", "onlyunusable", "unusable", "unusable2",
           "tlsabogus", "bogus", "plain")


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
        zone("onlyunusable.test", (tlsa, "TLSA", pkix_ee)),
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
    maps.write_text("only.test dane-only\nonlyunusable.test dane-only\n")
    sender = mres.tern(name="sender", smtp_tls_security_level="dane",
                       smtp_dns_support_level="dnssec", dns_servers=dns.address,
                       smtp_default_port=mx.port, smtp_connect_timeout="5s",
                       smtp_tls_policy_maps=f"texthash:{maps}")
    yield SimpleNamespace(sender=sender, mx=mx, sink=sink, plain=plain)
    dns.stop()
    shutil.rmtree(d, ignore_errors=True)


def delivered(site, domain: str, tag: str, tls: str):
    """u@domain is sent, over TLS with a tls= note that starts with tls, and
    reaches the sink behind the receiver: (queue ID, status line)."""
    qid, line = deliver(site.sender, f"u@{domain}", tag)
    assert "status=sent" in line and f"tls={tls}" in line, line
    site.sink.wait_for(f"X-Test: {tag}".encode())
    return qid, line


def deferred(site, domain: str, tag: str, dsn: str, reason: str) -> str:
    """u@domain is deferred with dsn and a reason that says reason: the line."""
    _, line = deliver(site.sender, f"u@{domain}", tag)
    assert "status=deferred" in line and f"dsn={dsn}" in line, line
    assert reason in line, line
    assert not site.sink.matching(f"X-Test: {tag}".encode())
    return line


def test_matching_dane_ee_record_delivers_over_verified_tls(site):
    _, line = delivered(site, "ee.test", "dane-ee", "TLSv1.3/verified")
    assert f"relay=mx.ee.test[127.0.0.1]:{site.mx.port}" in line
    site.sender.wait_log(r"Verified TLS connection established to mx\.ee\.test\[127\.0\.0\.1\]:"
                         f"{site.mx.port}")


def test_matching_dane_ta_record_delivers_over_verified_tls(site):
    delivered(site, "ta.test", "dane-ta", "TLSv1.3/verified")


def test_mismatching_tlsa_record_defers(site):
    deferred(site, "bad.test", "dane-bad", "4.7.5",
             "certificate verification failed for mx.bad.test[127.0.0.1]")


def test_signed_zone_without_tlsa_falls_back_to_may(site):
    # at level may nothing asks for a name: the certificate is not "verified"
    delivered(site, "none.test", "dane-none", "TLSv1.3/untrusted")


def test_dane_only_without_tlsa_defers(site):
    line = deferred(site, "only.test", "dane-only", "4.7.5", "no usable DANE TLSA records")
    assert "relay=none" in line, line  # no connection was made


def test_dane_only_with_unusable_tlsa_records_defers(site):
    line = deferred(site, "onlyunusable.test", "dane-onlyunusable", "4.7.5",
                    "no usable DANE TLSA records: the 1 TLSA records of mx.onlyunusable.test "
                    "are unusable")
    assert "relay=none" in line, line


def test_unusable_tlsa_records_mean_tls_without_authentication(site):
    qid, _ = delivered(site, "unusable.test", "dane-unusable", "TLSv1.3/untrusted")
    assert any("TLSA records of mx.unusable.test are unusable" in x
               for x in lines_of(site.sender, qid))


def test_unusable_tlsa_records_require_starttls(site):
    deferred(site, "unusable2.test", "dane-unusable2", "4.7.4",
             "TLS is required, but was not offered by host mx.unusable2.test[127.0.0.2]")
    assert not site.plain.matching(b"X-Test: dane-unusable2")


def test_bogus_tlsa_record_defers(site):
    deferred(site, "tlsabogus.test", "dane-tlsabogus", "4.7.5",
             "TLSA lookup error for mx.tlsabogus.test")


def test_bogus_zone_defers_at_the_mx_lookup(site):
    deferred(site, "bogus.test", "dane-bogus", "4.4.3", "relay=none")


def test_unsigned_zone_falls_back_to_may(site):
    delivered(site, "plain.test", "dane-plain", "TLSv1.3/untrusted")


def test_tlsrpt_counts_dane_success_and_failure(site):
    failed = {"bad.test": "validation-failure", "tlsabogus.test": "dnssec-invalid",
              "only.test": "dane-required", "onlyunusable.test": "tlsa-invalid",
              "unusable2.test": "starttls-not-supported"}
    counts = tlsrpt_after_stop(site.sender, ["ee.test"] + list(failed))
    assert tlsrpt_counts(counts["ee.test"], "ee.test", "tlsa")[:2] == (1, 0), counts
    for domain, result in failed.items():
        assert_tlsrpt_failed(counts[domain], domain, "tlsa", result)


def test_dns_support_level_enabled_turns_dane_into_may(site):
    """Without dnssec the mismatching TLSA record of bad.test is not asked for."""
    site.sender.stop()
    site.sender.conf_edit(smtp_dns_support_level="enabled")
    site.sender.start()
    delivered(site, "bad.test", "dane-disabled", "TLSv1.3/untrusted")
