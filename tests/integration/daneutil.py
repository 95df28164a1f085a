"""daneutil - DNSSEC-signed zones with TLSA records made at test time, for the
DANE (RFC 7672) tests of tern-smtp.

    from daneutil import Zone, start_dane_dns, tlsa_ee, tlsa_ta

    dns = start_dane_dns(tmp_path, [
        Zone("dane.test", [("@", "MX", "10 mx.dane.test."),
                           ("mx", "A", "127.0.0.1"),
                           (f"_{port}._tcp.mx", "TLSA", tlsa_ee(pki.path("server.pem")))]),
        Zone("bogus.test", [("mx", "A", "127.0.0.1")], mode="bogus"),
        Zone("plain.test", [("mx", "A", "127.0.0.1")], mode="unsigned"),
    ])
    try:
        ... dns_servers = {dns.address} ...
    finally:
        dns.stop()

Each zone gets SOA and NS records (ns.ZONE A 127.0.0.1) and the records
given, as (owner, type, rdata): owner relative to the zone ("@", "mx",
"_25._tcp.mx") or absolute with a final dot.  mode "signed" signs it with
fresh keys (tests/dnssec/make_zone.sh --sign: ldns-keygen ECDSAP256SHA256,
ldns-signzone) and makes its DS a trust anchor: answers are secure (AD);
"bogus" signs it with signatures that expired in 2020 and makes its DS a
trust anchor: every answer is SERVFAIL; "unsigned" serves it unsigned with no
trust anchor: answers are insecure (no AD).  nsd serves the zones on one free
127.0.0.1 port, a validating unbound (val-permissive-mode: no) stubs them to
nsd on another and REFUSES every other name.  A fixture that cannot start
raises: the test fails, never skips.
"""

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

from ternlib import REPO, free_port, terminate
from tlsutil import openssl

MAKE_ZONE = REPO / "tests" / "dnssec" / "make_zone.sh"
ZONE_MODES = ("signed", "bogus", "unsigned")


@dataclass
class Zone:
    name: str                             # "dane.test", no trailing dot
    records: List[Tuple[str, str, str]]   # (owner, type, rdata)
    mode: str = "signed"                  # "signed", "bogus" or "unsigned"


@dataclass
class DaneDns:
    dir: Path             # zones, keys, configs, logs (servers.log, nsd.log, unbound.log)
    port: int             # unbound, the validating resolver
    auth_port: int        # nsd, authoritative, never sets AD
    procs: List[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The resolver as tern's dns_servers wants it: "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for proc in self.procs:
            terminate(proc)
        self.procs = []


def tlsa_rdata(pem: Path, usage: int, selector: int, mtype: int) -> str:
    """The TLSA rdata "usage selector mtype hex" for the certificate in pem:
    selector 0 the whole certificate, 1 its SubjectPublicKeyInfo (DER);
    mtype 0 the bytes themselves, 1 SHA2-256, 2 SHA2-512."""
    cwd = Path(pem).parent
    der = openssl("x509", "-in", str(pem), "-outform", "DER", cwd=cwd)
    if selector == 1:
        pub = openssl("x509", "-in", str(pem), "-noout", "-pubkey", cwd=cwd)
        der = openssl("pkey", "-pubin", "-outform", "DER", cwd=cwd, stdin=pub)
    data = {0: lambda b: b, 1: lambda b: hashlib.sha256(b).digest(),
            2: lambda b: hashlib.sha512(b).digest()}[mtype](der)
    return f"{usage} {selector} {mtype} {data.hex()}"


def tlsa_ee(cert_pem: Path) -> str:
    """DANE-EE: "3 1 1 <sha256 of the server certificate's SPKI>"."""
    return tlsa_rdata(cert_pem, 3, 1, 1)


def tlsa_ta(ca_pem: Path) -> str:
    """DANE-TA: "2 0 1 <sha256 of the CA certificate>"."""
    return tlsa_rdata(ca_pem, 2, 0, 1)


def _zone_text(zone: Zone) -> str:
    z = zone.name
    lines = [f"$ORIGIN {z}.", "$TTL 300",
             f"@ IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 300",
             f"@ IN NS ns.{z}.", "ns IN A 127.0.0.1"]
    lines += [f"{owner} IN {rtype} {rdata}" for owner, rtype, rdata in zone.records]
    return "\n".join(lines) + "\n"


def _make_zone(*args: str) -> None:
    r = subprocess.run([str(MAKE_ZONE), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"make_zone.sh {' '.join(args)}: {r.stderr}")


def _write_zone(d: Path, zone: Zone) -> None:
    if zone.mode not in ZONE_MODES:
        raise ValueError(f"zone {zone.name}: mode {zone.mode!r} is none of {ZONE_MODES}")
    (d / f"{zone.name}.zone").write_text(_zone_text(zone))
    if zone.mode == "signed":
        _make_zone("--sign", str(d), zone.name)
    elif zone.mode == "bogus":
        _make_zone("--sign", str(d), zone.name, "-i", "20190101000000", "-e", "20200101000000")
    else:
        (d / f"{zone.name}.signed").write_text(_zone_text(zone))


def _probe(zones: List[Zone]) -> Tuple[str, str]:
    """A zone whose SOA shows the resolver is up and validating, and the flag."""
    for zone in zones:
        if zone.mode == "signed":
            return zone.name, "ad"
    for zone in zones:
        if zone.mode == "unsigned":
            return zone.name, "qr"
    raise ValueError("start_dane_dns needs a signed or an unsigned zone")


def start_dane_dns(tmpdir: Path, zones: List[Zone]) -> DaneDns:
    """Sign zones, start nsd and a validating unbound; see the module text."""
    d = Path(tmpdir) / "dane-dns"
    d.mkdir(parents=True, exist_ok=True)
    probe_zone, probe_flag = _probe(zones)
    for zone in zones:
        _write_zone(d, zone)
    auth_port = free_port()
    port = free_port()
    while port == auth_port:
        port = free_port()
    names = [zone.name for zone in zones]
    _make_zone("--servers", str(d), str(auth_port), str(port), *names)
    dns = DaneDns(dir=d, port=port, auth_port=auth_port)
    _start_servers(dns, probe_zone, probe_flag)
    return dns


def _start_servers(dns: DaneDns, probe_zone: str, probe_flag: str) -> None:
    """nsd and unbound from the configs in dns.dir, waited for (or stopped,
    and AssertionError)."""
    with open(dns.dir / "servers.log", "ab") as log:
        for argv in (["nsd", "-d", "-c", str(dns.dir / "nsd.conf")],
                     ["unbound", "-d", "-c", str(dns.dir / "unbound.conf")]):
            dns.procs.append(subprocess.Popen(argv, stdout=log, stderr=log,
                                              stdin=subprocess.DEVNULL))
    ready = subprocess.run([str(MAKE_ZONE), "--wait", str(dns.auth_port), str(dns.port),
                            probe_zone, probe_flag], stderr=subprocess.PIPE, text=True)
    if ready.returncode != 0:
        dns.stop()
        raise AssertionError(f"DANE DNS fixture: {ready.stderr} (logs in {dns.dir})")
