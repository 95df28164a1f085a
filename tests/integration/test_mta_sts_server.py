"""The MTA-STS policy server helper (mtastsutil.start_mta_sts_server) the
MTA-STS suites use: real HTTPS on loopback whose certificate for
mta-sts.DOMAIN verifies against the test CA, serving the policy as
text/plain; the DNS records it comes with resolve through a real dnsmasq."""

import http.client
import shutil
import socket
import ssl
import tempfile
from pathlib import Path

import pytest

from mtastsutil import mta_sts_dns_records, start_mta_sts_server
from ternlib import Dnsmasq, dns_answer_count
from tlsutil import make_pki

POLICY = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"


@pytest.fixture(scope="module")
def pki(it_base):
    d = Path(tempfile.mkdtemp(prefix="pki-", dir=str(it_base)))
    yield make_pki(d)
    shutil.rmtree(d, ignore_errors=True)


class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the name mta-sts.DOMAIN at a loopback address and port."""

    def __init__(self, address, port, hostname, ctx):
        super().__init__(hostname, port, context=ctx, timeout=10)
        self.address, self.hostname, self.ctx = address, hostname, ctx

    def connect(self):
        sock = socket.create_connection((self.address, self.port), timeout=10)
        self.sock = self.ctx.wrap_socket(sock, server_hostname=self.hostname)


def fetch(address, port, domain, cafile):
    """GET the policy of domain from address:port, verifying mta-sts.DOMAIN."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    c = PinnedHTTPS(address, port, f"mta-sts.{domain}", ctx)
    try:
        c.request("GET", "/.well-known/mta-sts.txt")
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def test_policy_served_over_https_verified_by_the_test_ca(pki, it_base):
    tmp = Path(tempfile.mkdtemp(prefix="mta-sts-", dir=str(it_base)))
    address, port, stop = start_mta_sts_server(tmp, "example.test", POLICY, pki)
    try:
        assert fetch(address, port, "example.test", pki.path("ca.pem")) == (
            200, "text/plain", POLICY)
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch(address, port, "other.test", pki.path("ca.pem"))  # wrong name
    finally:
        stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dns_records_serve_the_txt_record_and_the_policy_host(it_base):
    tmp = Path(tempfile.mkdtemp(prefix="mta-sts-dns-", dir=str(it_base)))
    records = mta_sts_dns_records("example.test", "20240101")
    dns = Dnsmasq(records + ["--mx-host=example.test,mx.example.test"], tmp).start("example.test")
    try:
        assert dns_answer_count("127.0.0.1", dns.port, "mta-sts.example.test", qtype=1) == 1
        assert dns_answer_count("127.0.0.1", dns.port, "_mta-sts.example.test", qtype=16) == 1
    finally:
        dns.stop()
        shutil.rmtree(tmp, ignore_errors=True)
