"""mtastsutil - an MTA-STS policy server (RFC 8461 3.3) for the tests: real
HTTPS on loopback with certificates from the test CA (tlsutil).

start_mta_sts_server(tmpdir, domain, policy_text, pki) -> (address, port, stop)
    serves https://mta-sts.DOMAIN/.well-known/mta-sts.txt on 127.0.0.1:PORT
    with a certificate for mta-sts.DOMAIN signed by pki's CA.  The policy is
    the file tmpdir/mta-sts-www/DOMAIN: a test may rewrite it.
start_mta_sts_servers(tmpdir, {domain: policy_text, ...}, pki)
    the same for several domains on one port, with one certificate naming
    every mta-sts.DOMAIN.
mta_sts_dns_records(domain, policy_id, address) -> dnsmasq options
    the _mta-sts TXT record and the A record of mta-sts.DOMAIN, for
    ternlib.Dnsmasq.

The server is this file run as a program (tests/unit/test_smtp_mtasts.c runs
it too):
    python3 mtastsutil.py PORT CERT KEY DOCROOT [NAME=CERT,KEY ...]
It answers GET /.well-known/mta-sts.txt for Host mta-sts.DOMAIN with
DOCROOT/DOMAIN as text/plain; optional files change that: DOMAIN.status (an
HTTP status), DOMAIN.type (a Content-Type), DOMAIN.delay (seconds to wait
before answering).  Anything else is 404.  Each request appends "DOMAIN\\n"
to DOCROOT/requests.log.  NAME=CERT,KEY presents another certificate to
clients that send NAME as SNI.  It prints "ready" once listening.
"""

import http.server
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

WELL_KNOWN = "/.well-known/mta-sts.txt"


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    docroot = Path(".")

    def log_message(self, *args) -> None:
        pass

    def _domain(self) -> str:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        return host[len("mta-sts."):] if host.startswith("mta-sts.") else ""

    def _option(self, domain: str, suffix: str, default: str) -> str:
        f = self.docroot / f"{domain}.{suffix}"
        return f.read_text().strip() if f.exists() else default

    def do_GET(self) -> None:
        domain = self._domain()
        with open(self.docroot / "requests.log", "a") as log:
            log.write(domain + "\n")
        policy = self.docroot / domain
        if self.path != WELL_KNOWN or not domain or "/" in domain or not policy.is_file():
            self.send_error(404)
            return
        time.sleep(float(self._option(domain, "delay", "0")))
        body = policy.read_bytes()
        self.send_response(int(self._option(domain, "status", "200")))
        self.send_header("Content-Type", self._option(domain, "type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(http.server.ThreadingHTTPServer):
    """No tracebacks for clients that hang up mid-handshake (curl's timeout)."""

    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def _context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(argv: List[str]) -> None:
    port, cert, key, docroot = int(argv[0]), argv[1], argv[2], Path(argv[3])
    ctx = _context(cert, key)
    others = {}
    for arg in argv[4:]:
        name, files = arg.split("=", 1)
        others[name] = _context(*files.split(",", 1))

    def sni(sock, name, _ctx):
        if name in others:
            sock.context = others[name]

    ctx.sni_callback = sni
    PolicyHandler.docroot = docroot
    httpd = QuietServer(("127.0.0.1", port), PolicyHandler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print("ready", flush=True)
    httpd.serve_forever()


def start_mta_sts_server(tmpdir: Path, domain: str, policy_text: str,
                         pki) -> Tuple[str, int, Callable[[], None]]:
    """HTTPS for mta-sts.DOMAIN on 127.0.0.1, see the module comment."""
    return start_mta_sts_servers(tmpdir, {domain: policy_text}, pki)


def start_mta_sts_servers(tmpdir: Path, policies: Dict[str, str],
                          pki) -> Tuple[str, int, Callable[[], None]]:
    """One server for several domains: policies maps each DOMAIN to its
    policy text; the certificate names every mta-sts.DOMAIN."""
    from ternlib import free_port, terminate
    from tlsutil import issue_server_cert

    domains = list(policies)
    cert, key = issue_server_cert(pki, f"mta-sts-{domains[0]}",
                                  [f"mta-sts.{d}" for d in domains])
    docroot = Path(tmpdir) / "mta-sts-www"
    docroot.mkdir(parents=True, exist_ok=True)
    for domain, text in policies.items():
        (docroot / domain).write_text(text)
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(cert), str(key),
                             str(docroot)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        terminate(proc)
        raise AssertionError(f"the MTA-STS policy server did not start: {line!r}")
    return "127.0.0.1", port, lambda: terminate(proc)


def mta_sts_dns_records(domain: str, policy_id: str, address: str = "127.0.0.1") -> List[str]:
    """dnsmasq options: "_mta-sts.DOMAIN TXT v=STSv1; id=ID;" and
    "mta-sts.DOMAIN A address"."""
    return [f"--txt-record=_mta-sts.{domain},v=STSv1; id={policy_id};",
            f"--host-record=mta-sts.{domain},{address}"]


if __name__ == "__main__":
    serve(sys.argv[1:])
