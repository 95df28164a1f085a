"""The DANE DNS fixture (daneutil.start_dane_dns) does what the DANE tests of
tern-smtp rely on: through its validating unbound, the TLSA record of a
signed zone comes with the AD flag and holds the digest of the certificate
made at test time (openssl's own DANE check accepts the certificate with it),
a bogus zone is SERVFAIL, an unsigned zone has no AD, and any other name is
refused at once.  Queries are made with dig (dnsutils), a client apart from
tern's lib/dns.
"""

import subprocess
import time

import pytest

from daneutil import Zone, start_dane_dns, tlsa_ee, tlsa_rdata, tlsa_ta
from ternlib import free_port, terminate
from tlsutil import SERVER_CN, make_pki


@pytest.fixture(scope="module")
def dane(tmp_path_factory):
    d = tmp_path_factory.mktemp("dane-dns")
    pki = make_pki(d / "pki")
    ee, ta = tlsa_ee(pki.path("server.pem")), tlsa_ta(pki.path("ca.pem"))
    dns = start_dane_dns(d, [
        Zone("dane.test", [("@", "MX", "10 mx.dane.test."),
                           ("mx", "A", "127.0.0.1"),
                           ("_25._tcp.mx", "TLSA", ee),
                           ("_25._tcp.mx", "TLSA", ta)]),
        Zone("bogus.test", [("mx", "A", "127.0.0.1"), ("_25._tcp.mx", "TLSA", ee)],
             mode="bogus"),
        Zone("plain.test", [("mx", "A", "127.0.0.1"), ("_25._tcp.mx", "TLSA", ee)],
             mode="unsigned"),
    ])
    yield dns, pki, ee, ta
    dns.stop()


def dig(port: int, name: str, rtype: str):
    """(status, flags, answer rdata lines) of dig's answer from 127.0.0.1:port."""
    out = subprocess.run(["dig", "-p", str(port), "@127.0.0.1", "+adflag", "+noall",
                          "+comments", "+answer", "+tries=1", "+time=5", name, rtype],
                         capture_output=True, text=True, timeout=30).stdout
    status = flags = ""
    answers = []
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; flags:"):
            flags = line.split(";", 3)[2].split(":", 1)[1].split()
        elif line and not line.startswith(";"):
            fields = line.split(None, 4)
            if fields[3] == rtype:
                answers.append(fields[4])
    return status, flags, answers


def tlsa_text(dig_rdata: str) -> str:
    """dig's TLSA rdata ("3 1 1 E3B0C442 98FC...") as daneutil writes it."""
    u, s, m, data = dig_rdata.split(None, 3)
    return f"{u} {s} {m} {''.join(data.split()).lower()}"


def test_signed_tlsa_has_ad_flag_and_the_certificate_digests(dane):
    dns, _, ee, ta = dane
    status, flags, answers = dig(dns.port, "_25._tcp.mx.dane.test", "TLSA")
    assert status == "NOERROR"
    assert "ad" in flags
    assert sorted(tlsa_text(a) for a in answers) == sorted([ee, ta])


def test_signed_mx_and_address_have_ad_flag(dane):
    dns = dane[0]
    for name, rtype, want in (("dane.test", "MX", "10 mx.dane.test."),
                              ("mx.dane.test", "A", "127.0.0.1")):
        status, flags, answers = dig(dns.port, name, rtype)
        assert (status, answers) == ("NOERROR", [want])
        assert "ad" in flags, (name, rtype, flags)


def test_bogus_zone_is_servfail(dane):
    dns = dane[0]
    for name, rtype in (("_25._tcp.mx.bogus.test", "TLSA"), ("mx.bogus.test", "A")):
        status, _, answers = dig(dns.port, name, rtype)
        assert (status, answers) == ("SERVFAIL", [])


def test_bogus_zone_is_served_by_nsd_with_broken_signatures(dane):
    """The SERVFAIL is unbound's verdict, not a missing zone."""
    dns, _, ee, _ = dane
    status, flags, answers = dig(dns.auth_port, "_25._tcp.mx.bogus.test", "TLSA")
    assert (status, [tlsa_text(a) for a in answers]) == ("NOERROR", [ee])
    assert "aa" in flags


def test_unsigned_zone_answers_without_ad_flag(dane):
    dns, _, ee, _ = dane
    status, flags, answers = dig(dns.port, "_25._tcp.mx.plain.test", "TLSA")
    assert (status, [tlsa_text(a) for a in answers]) == ("NOERROR", [ee])
    assert "ad" not in flags


def test_names_outside_the_zones_are_refused_at_once(dane):
    dns = dane[0]
    started = time.monotonic()
    status, _, answers = dig(dns.port, "example.com", "A")
    assert (status, answers) == ("REFUSED", [])
    assert time.monotonic() - started < 3


def test_resolver_address_is_for_dns_servers(dane):
    dns = dane[0]
    assert dns.address == f"127.0.0.1:{dns.port}"


def openssl_dane_verify(pki, rrdata: str) -> str:
    """openssl s_client's verdict on s_server's server.pem with one TLSA record.
    The server sends ca.pem in its chain: a DANE-TA(2) record with selector 0
    matches a certificate the server presents (RFC 7671 5.2.2), so a DANE-TA
    test server must send its CA."""
    port = free_port()
    server = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-naccept",
                               "1", "-cert", str(pki.path("server.pem")),
                               "-key", str(pki.path("server.key")),
                               "-cert_chain", str(pki.path("ca.pem")), "-quiet"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            client = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                                     "-dane_tlsa_domain", SERVER_CN, "-dane_tlsa_rrdata", rrdata,
                                     "-verify_return_error", "-brief"],
                                    input="", capture_output=True, text=True, timeout=30)
            if "connect:errno" not in client.stderr:
                return client.stderr
            time.sleep(0.05)
        raise AssertionError("openssl s_server did not start")
    finally:
        terminate(server)


def test_tlsa_records_match_the_certificate_for_openssl_dane(dane):
    _, pki, ee, ta = dane
    for rrdata in (ee, ta):
        assert "Verification: OK" in openssl_dane_verify(pki, rrdata), rrdata
    other = tlsa_rdata(pki.path("ecdsa.pem"), 3, 1, 1)
    assert "Verification: OK" not in openssl_dane_verify(pki, other)
