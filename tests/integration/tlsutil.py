"""tlsutil - test certificates made at test time with the openssl CLI, and
small TLS client helpers for the STARTTLS/SMTPS suites.

make_pki(dir) writes (all PEM):
  ca.pem / ca.key            a test CA ("Tern Test CA")
  server.pem / server.key    RSA 2048, CN=mx.example.test, signed by the CA
  ecdsa.pem / ecdsa.key      P-256, CN=mx.example.test, signed by the CA
  dual.pem                   RSA key+cert, then ECDSA key+cert, in one file
  client.pem / client.key    a client certificate signed by the CA
  revoked.pem / revoked.key  a client certificate signed by the CA, revoked
  crl.pem                    the CA's CRL (openssl ca -gencrl) listing revoked
  rogue.pem / rogue.key      a client certificate of another, untrusted CA
  sendmail.pem / sendmail.key  the seed's style: a self-signed 1024-bit RSA
                             certificate (openssl genrsa 1024, req -new,
                             x509 -req -days 1825 -signkey)
Every key file is mode 0600.

issue_server_cert(pki, name, hostnames) adds name.pem / name.key: a server
certificate for any host names (subjectAltName DNS:...), signed by the test
CA or the rogue one.
"""

import os
import struct
import re
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

SERVER_CN = "mx.example.test"


def openssl(*args: str, cwd: Path, stdin: Optional[bytes] = None) -> bytes:
    r = subprocess.run(
        ["openssl", *args], cwd=str(cwd), input=stdin, capture_output=True, timeout=60
    )
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


CA_CONF = """\
[ ca ]
default_ca = testca

[ testca ]
dir              = {dir}
database         = {dir}/ca-index.txt
serial           = {dir}/ca-serial
crlnumber        = {dir}/ca-crlnumber
certificate      = {dir}/ca.pem
private_key      = {dir}/ca.key
new_certs_dir    = {dir}/ca-new
default_md       = sha256
default_days     = 30
default_crl_days = 30
policy           = anything
unique_subject   = no
copy_extensions  = copy
x509_extensions  = leaf

[ anything ]
commonName       = supplied

[ leaf ]
basicConstraints = CA:FALSE

[ req ]
distinguished_name = dn
prompt             = no

[ dn ]
CN = unused

[ v3_ca ]
basicConstraints     = critical, CA:TRUE
keyUsage             = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_ext ]
basicConstraints = CA:FALSE
keyUsage         = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName   = DNS:mx.example.test

[ client_ext ]
basicConstraints = CA:FALSE
keyUsage         = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def fingerprint(self, cert: str) -> str:
        """SHA-256 fingerprint "AB:CD:..." (upper case) of a certificate file."""
        out = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", cert, cwd=self.dir)
        m = re.search(r"=([0-9A-F:]+)", out.decode())
        assert m, out
        return m.group(1)


def _key(pki: Path, name: str, kind: str) -> None:
    if kind == "rsa2048":
        openssl("genrsa", "-out", f"{name}.key", "2048", cwd=pki)
    elif kind == "ec":
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=pki)
    else:
        raise ValueError(kind)
    os.chmod(pki / f"{name}.key", 0o600)


def _signed(pki: Path, name: str, cn: str, ext: str, kind: str = "rsa2048", ca: str = "ca") -> None:
    """name.key and name.pem: CN=cn signed by ca with extension section ext."""
    _key(pki, name, kind)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr",
            "-config", "ca.cnf", cwd=pki)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "ca.cnf",
            "-extensions", ext, "-out", f"{name}.pem", cwd=pki)


def issue_server_cert(pki: Pki, name: str, hostnames: List[str], ca: str = "ca") -> Tuple[Path, Path]:
    """pki/name.pem and name.key: RSA 2048, CN=hostnames[0], subjectAltName
    DNS: each of hostnames, signed by ca ("ca", or "rogueca" that nobody
    trusts); returns (cert, key)."""
    d = pki.dir
    san = ", ".join(f"DNS:{h}" for h in hostnames)
    (d / f"{name}.ext").write_text(
        "[ ext ]\nbasicConstraints = CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        f"extendedKeyUsage = serverAuth\nsubjectAltName = {san}\n")
    _key(d, name, "rsa2048")
    openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={hostnames[0]}",
            "-out", f"{name}.csr", "-config", "ca.cnf", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "30", "-sha256", "-extfile", f"{name}.ext",
            "-extensions", "ext", "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    (d / "ca-new").mkdir(exist_ok=True)
    (d / "ca-index.txt").write_text("")
    (d / "ca-crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(CA_CONF.format(dir=d))
    # the CA, and another one nobody trusts
    for ca, cn in (("ca", "Tern Test CA"), ("rogueca", "Rogue Test CA")):
        _key(d, ca, "rsa2048")
        openssl("req", "-new", "-x509", "-key", f"{ca}.key", "-subj", f"/CN={cn}", "-days", "30",
                "-sha256", "-config", "ca.cnf", "-extensions", "v3_ca", "-out", f"{ca}.pem", cwd=d)
    _signed(d, "server", SERVER_CN, "server_ext")
    _signed(d, "ecdsa", SERVER_CN, "server_ext", kind="ec")
    _signed(d, "client", "client.example.test", "client_ext")
    _signed(d, "rogue", "rogue.example.test", "client_ext", ca="rogueca")
    # the revoked client: issued and revoked by `openssl ca` so the CRL
    # (openssl ca -gencrl) lists it
    _key(d, "revoked", "rsa2048")
    openssl("req", "-new", "-key", "revoked.key", "-subj", "/CN=revoked.example.test",
            "-out", "revoked.csr", "-config", "ca.cnf", cwd=d)
    (d / "ca-serial").write_text("1000\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-extensions", "client_ext", "-notext",
            "-in", "revoked.csr", "-out", "revoked.pem", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-revoke", "revoked.pem", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem", cwd=d)
    # an RSA and an ECDSA pair in one PEM file (key, then its certificate)
    dual = d / "dual.pem"
    dual.write_bytes(b"".join((d / f).read_bytes()
                              for f in ("server.key", "server.pem", "ecdsa.key", "ecdsa.pem")))
    os.chmod(dual, 0o600)
    # the seed's style: a 1024-bit self-signed certificate
    openssl("genrsa", "-out", "sendmail.key", "1024", cwd=d)
    os.chmod(d / "sendmail.key", 0o600)
    openssl("req", "-new", "-key", "sendmail.key", "-subj", f"/CN={SERVER_CN}",
            "-out", "sendmail.csr", "-config", "ca.cnf", cwd=d)
    openssl("x509", "-req", "-days", "1825", "-in", "sendmail.csr", "-signkey", "sendmail.key",
            "-out", "sendmail.pem", cwd=d)
    return Pki(d)


# ---------------------------------------------------------------- clients


def read_reply(sock, buf: bytearray, timeout: float = 10.0) -> List[str]:
    """One SMTP reply (all its lines) from a plain or TLS socket."""
    sock.settimeout(timeout)
    lines = []
    while True:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; so far {lines!r}")
            buf += chunk
        i = buf.index(b"\n")
        line = bytes(buf[:i]).rstrip(b"\r").decode(errors="replace")
        del buf[: i + 1]
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


class TlsSmtp:
    """A python ssl SMTP client: plaintext until starttls(), or TLS from the
    first byte (smtps=True).  cmd() returns the reply lines."""

    def __init__(self, host: str, port: int, ctx: Optional[ssl.SSLContext] = None,
                 smtps: bool = False, source: Optional[str] = None, timeout: float = 10.0,
                 session: Optional[ssl.SSLSession] = None):
        self.ctx = ctx or client_context()
        self.raw = socket.create_connection((host, port), timeout,
                                            source_address=(source, 0) if source else None)
        self.sock = self.raw
        self.buf = bytearray()
        self.timeout = timeout
        if smtps:
            self.wrap(session)

    def wrap(self, session: Optional[ssl.SSLSession] = None) -> None:
        self.sock = self.ctx.wrap_socket(self.raw, server_hostname=SERVER_CN, session=session)
        self.buf = bytearray()

    def reply(self, timeout: Optional[float] = None) -> List[str]:
        return read_reply(self.sock, self.buf, timeout or self.timeout)

    def cmd(self, line: str) -> List[str]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self, ehlo: str = "client.example") -> List[str]:
        """greeting, EHLO, STARTTLS (220), handshake; returns the EHLO reply."""
        assert self.reply()[0].startswith("220")
        ehlo_reply = self.cmd(f"EHLO {ehlo}")
        r = self.cmd("STARTTLS")
        assert r == ["220 2.0.0 Ready to start TLS"], r
        self.wrap()
        return ehlo_reply

    def close(self) -> None:
        for s in (self.sock, self.raw):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def client_context(minimum=None, maximum=None, ciphers: Optional[str] = None,
                   cert: Optional[Tuple[Path, Path]] = None) -> ssl.SSLContext:
    """A client context that does not verify the server (its CA is made here)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def run_client(argv: List[str], send: bytes = b"", timeout: float = 10.0) -> Tuple[Optional[int], str]:
    """Run a TLS client program with send on its standard input, which stays
    open (so the client ends when the server closes the connection, not at
    the end of its input); after timeout it is killed and rc is None.
    Returns (rc, stdout and stderr as text)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        try:
            p.stdin.write(send)
            p.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            rc: Optional[int] = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        out.seek(0)
        return rc, out.read().decode(errors="replace")


def s_client(port: int, *args: str, starttls: bool = True,
             send: bytes = b"EHLO client.example\r\nQUIT\r\n",
             timeout: float = 10.0) -> Tuple[Optional[int], str]:
    """openssl s_client against 127.0.0.1:port (-starttls smtp unless
    starttls=False); -nocommands so that QUIT goes to the server, whose 221
    and close end s_client."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", SERVER_CN,
            "-nocommands"]
    if starttls:
        argv += ["-starttls", "smtp"]
    return run_client(argv + list(args), send, timeout)


def handshake_ok(out: str) -> bool:
    """s_client's output shows a completed handshake with a real cipher."""
    m = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M) or re.search(
        r"Cipher is (\S+)", out)
    return bool(m) and m.group(1) not in ("0000", "(NONE)")


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- raw ClientHello


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


def client_hello(suites: List[int], version: int = 0x0303) -> bytes:
    """One TLS record holding a ClientHello (no supported_versions extension,
    so version is the highest the client claims) offering exactly suites.
    Built by hand so that the offer does not depend on what the local
    OpenSSL still implements (EXPORT, SSLv3, NULL...)."""
    cs = b"".join(_u16(c) for c in suites)
    groups = b"".join(_u16(g) for g in (0x001D, 0x0017, 0x0018))
    sigalgs = b"".join(_u16(a) for a in (0x0804, 0x0401, 0x0403, 0x0501, 0x0201, 0x0203))
    exts = b""
    exts += _u16(0x000A) + _u16(len(groups) + 2) + _u16(len(groups)) + groups
    exts += _u16(0x000B) + _u16(2) + b"\x01\x00"
    if version >= 0x0303:
        exts += _u16(0x000D) + _u16(len(sigalgs) + 2) + _u16(len(sigalgs)) + sigalgs
    body = _u16(version) + os.urandom(32) + b"\x00" + _u16(len(cs)) + cs + b"\x01\x00"
    body += _u16(len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + _u16(0x0301 if version >= 0x0301 else version) + _u16(len(hs)) + hs


def _recv_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def hello_answer(sock, timeout: float = 5.0) -> Tuple[str, Optional[int]]:
    """What the server answers a ClientHello with: ("hello", cipher suite),
    ("alert", alert description) or ("closed", None)."""
    sock.settimeout(timeout)
    try:
        head = _recv_exact(sock, 5)
    except (ConnectionResetError, BrokenPipeError):
        return ("closed", None)
    if len(head) < 5:
        return ("closed", None)
    body = _recv_exact(sock, struct.unpack(">H", head[3:5])[0])
    if head[0] == 0x15 and len(body) >= 2:
        return ("alert", body[1])
    if head[0] == 0x16 and len(body) > 40 and body[0] == 2:
        sid_len = body[38]
        return ("hello", struct.unpack(">H", body[39 + sid_len: 41 + sid_len])[0])
    return ("other", head[0])


def probe_suites(host: str, port: int, suites: List[int], version: int = 0x0303,
                 starttls: bool = True) -> Tuple[str, Optional[int]]:
    """Connect, STARTTLS (unless SMTPS), send a hand-made ClientHello."""
    with socket.create_connection((host, port), 10) as s:
        if starttls:
            buf = bytearray()
            assert read_reply(s, buf)[0].startswith("220")
            s.sendall(b"EHLO probe.example\r\n")
            read_reply(s, buf)
            s.sendall(b"STARTTLS\r\n")
            r = read_reply(s, buf)
            assert r == ["220 2.0.0 Ready to start TLS"], r
        s.sendall(client_hello(suites, version))
        return hello_answer(s)
