"""peerutil - next hops for the tern-smtp client TLS and AUTH suites.

TlsPeer is an aiosmtpd server (a ternlib.Sink) that can offer STARTTLS with a
given certificate, ask for a client certificate, offer AUTH PLAIN and LOGIN
against a dict of users, require AUTH before MAIL, and records per TCP
connection what it saw: the EHLO names, the TLS version, cipher, SNI,
whether the session was resumed, the client certificate, the AUTH login, and
the MAIL FROM argument as sent (AUTH=<...> included).

RawStarttlsPeer is a lockstep SMTP server on a plain socket for what aiosmtpd
cannot do: bytes injected after the 220 reply to STARTTLS (in the same
send), and handshakes that break (garbage instead of a ServerHello) on the
first N connections.

make_self_signed() and server_context() make the certificates and server
contexts; everything listens on loopback only.
"""

import hashlib
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, syntax

from ternlib import SilentServer, Sink, SinkMessage, _SinkHandler, wait_until
from tlsutil import SERVER_CN, make_pki, openssl

# ---------------------------------------------------------------- certificates


def make_self_signed(pki_dir: Path, name: str, cn: str = SERVER_CN) -> Tuple[Path, Path]:
    """pki_dir/name.pem and name.key: a self-signed RSA 2048 certificate for
    cn (also its subjectAltName).  Returns (cert, key)."""
    cert, key = pki_dir / f"{name}.pem", pki_dir / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-sha256",
            "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
            "-keyout", str(key), "-out", str(cert), cwd=pki_dir)
    key.chmod(0o600)
    return cert, key


def server_context(cert: Path, key: Path, client_ca: Optional[Path] = None) -> ssl.SSLContext:
    """A TLS server context with cert/key; with client_ca it asks for a
    client certificate (optional) and verifies it against client_ca."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(str(client_ca))
    return ctx


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate as "AB:CD:..." (as Pki.fingerprint)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


# ---------------------------------------------------------------- what a peer saw


@dataclass
class TlsSeen:
    """One completed server-side handshake."""

    version: str
    cipher: str
    resumed: bool
    sni: Optional[str]
    client_cert: Optional[bytes]  # DER, when the client sent one
    client_subject: Optional[str]  # its CN (verified certificates only)

    @property
    def client_fingerprint(self) -> Optional[str]:
        return fingerprint(self.client_cert) if self.client_cert else None

    @classmethod
    def of(cls, sslobj) -> "TlsSeen":
        der = sslobj.getpeercert(binary_form=True)
        subject = None
        if der:
            for rdn in (sslobj.getpeercert() or {}).get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        subject = v
        return cls(
            version=sslobj.version(),
            cipher=sslobj.cipher()[0],
            resumed=sslobj.session_reused,
            sni=getattr(sslobj, "tern_sni", None),
            client_cert=der,
            client_subject=subject,
        )


@dataclass
class PeerConn:
    """One TCP connection as a peer saw it."""

    peer: Tuple[str, int]
    ehlo: List[str] = field(default_factory=list)  # EHLO/HELO names in order
    tls: Optional[TlsSeen] = None
    logins: List[Tuple[str, str, bool]] = field(default_factory=list)  # (mechanism, login, ok)
    mail_args: List[str] = field(default_factory=list)  # MAIL FROM arguments as sent


@dataclass
class PeerMessage(SinkMessage):
    """A SinkMessage with the TLS and AUTH state it arrived under."""

    tls: Optional[TlsSeen] = None
    login: Optional[str] = None
    mail_arg: str = ""  # the MAIL FROM argument as sent, e.g. "<a@b> AUTH=<a@b>"

    def mail_param(self, name: str) -> Optional[str]:
        """The value of MAIL parameter name (any case) as sent, or None."""
        for word in self.mail_arg.split()[1:]:
            key, _, value = word.partition("=")
            if key.upper() == name.upper():
                return value
        return None


# ---------------------------------------------------------------- TlsPeer


class _PeerSMTP(SMTP):
    """aiosmtpd's SMTP keeping the raw MAIL argument and accepting the AUTH=
    and DSN parameters (aiosmtpd refuses unknown MAIL parameters with 555)."""

    ACCEPTED_PARAMS = ("AUTH", "NOTIFY", "ORCPT", "RET", "ENVID")

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None:
            for name in self.ACCEPTED_PARAMS:
                result.pop(name, None)
        return result

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str):
        if self.session is not None:
            self.session.tern_mail_arg = (arg or "")[5:].strip() if arg else ""
        return await super().smtp_MAIL(arg)


class _TlsPeerHandler(_SinkHandler):
    def __init__(self, peer: "TlsPeer"):
        super().__init__(peer)
        self.peer = peer

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.peer._conn(session).ehlo.append(hostname)
        session.host_name = hostname
        if not self.peer.users:  # aiosmtpd always lists AUTH; a peer without users has none
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        return responses

    def handle_STARTTLS(self, server, session, envelope):
        sslobj = session.ssl.get("ssl_object") if session.ssl else None
        if sslobj is not None:
            self.peer._conn(session).tls = TlsSeen.of(sslobj)
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        conn = self.peer._conn(session)
        conn.mail_args.append(getattr(session, "tern_mail_arg", ""))
        if self.peer.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server, session, envelope):
        if self.peer.data_reply:
            return self.peer.data_reply
        conn = self.peer._conn(session)
        transport = server.transport
        login = session.auth_data.login.decode() if session.authenticated else None
        msg = PeerMessage(
            peer=session.peer,
            local=transport.get_extra_info("sockname") if transport else ("?", 0),
            helo=session.host_name or "",
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from,
            mail_options=list(envelope.mail_options),
            rcpts=list(getattr(envelope, "rcpt_pairs", [])),
            content=bytes(envelope.original_content),
            tls=conn.tls,
            login=login,
            mail_arg=conn.mail_args[-1] if conn.mail_args else "",
        )
        self.peer._record(msg)
        return "250 2.0.0 Ok: peer-queued"


class TlsPeer(Sink):
    """An aiosmtpd next hop on host:port (a Sink: wait_for, snapshot...).

    cert, key      STARTTLS offered with this certificate (None: no STARTTLS)
    client_ca      ask for a client certificate, verified against this CA
    users          {login: password}: AUTH PLAIN and LOGIN offered (None: no AUTH)
    mechanisms     the AUTH mechanisms offered (of PLAIN, LOGIN)
    auth_require_tls  AUTH offered only after STARTTLS (False: also in plaintext)
    require_auth   MAIL before a successful AUTH gets 530

    Recorded: conns (one PeerConn per TCP connection that said EHLO, in
    order), auth_attempts [(mechanism, login, ok)], sni_names, messages
    (PeerMessage).  users may be changed while the peer runs.
    """

    def __init__(self, cert: Optional[Path] = None, key: Optional[Path] = None,
                 client_ca: Optional[Path] = None, users: Optional[Dict[str, str]] = None,
                 mechanisms: Tuple[str, ...] = ("PLAIN", "LOGIN"),
                 auth_require_tls: bool = True, require_auth: bool = False, **kw):
        super().__init__(**kw)
        self.tls_context = server_context(cert, key, client_ca) if cert else None
        if self.tls_context is not None:
            self.tls_context.sni_callback = self._sni
        self.users = users
        self.mechanisms = tuple(mechanisms)
        self.auth_require_tls = auth_require_tls
        self.require_auth = require_auth
        self._conns: Dict[Tuple[str, int], PeerConn] = {}
        self.auth_attempts: List[Tuple[str, str, bool]] = []
        self.sni_names: List[Optional[str]] = []

    def _handler(self):
        return _TlsPeerHandler(self)

    def _smtp_class(self):
        return _PeerSMTP

    def _smtp_kwargs(self) -> Dict:
        kwargs = dict(
            auth_require_tls=self.auth_require_tls,
            auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in self.mechanisms],
            authenticator=self._authenticate,
        )
        if self.tls_context is not None:
            kwargs["tls_context"] = self.tls_context
        return kwargs

    # recording
    def _sni(self, sslobj, name, ctx):
        sslobj.tern_sni = name
        with self._lock:
            self.sni_names.append(name)
        return None

    def _conn(self, session) -> PeerConn:
        key = tuple(session.peer)
        with self._lock:
            conn = self._conns.get(key)
            if conn is None:
                conn = self._conns[key] = PeerConn(peer=key)
            return conn

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        ok = bool(self.users) and self.users.get(login) == password
        with self._lock:
            self.auth_attempts.append((mechanism, login, ok))
        self._conn(session).logins.append((mechanism, login, ok))
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    @property
    def conns(self) -> List[PeerConn]:
        with self._lock:
            return list(self._conns.values())

    @property
    def handshakes(self) -> int:
        return sum(1 for c in self.conns if c.tls is not None)


# ---------------------------------------------------------------- RawStarttlsPeer


class _LineIO:
    """CRLF lines from a plain or TLS socket, with the unread rest in buf."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self) -> Optional[str]:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


@dataclass
class RawConn:
    """One connection to a RawStarttlsPeer: the commands in order, with
    "<TLS>" where a handshake completed and "<BROKEN>" where one was broken."""

    index: int
    commands: List[str] = field(default_factory=list)
    tls_version: Optional[str] = None
    tls_error: Optional[str] = None
    early_bytes: bytes = b""  # what the client sent after STARTTLS before the handshake

    def after_tls(self) -> List[str]:
        """The commands after the handshake (verbs only)."""
        if "<TLS>" not in self.commands:
            return []
        rest = self.commands[self.commands.index("<TLS>") + 1:]
        return [c.split(" ", 1)[0].upper() for c in rest]


@dataclass
class RawMessage:
    mail_from: str
    rcpts: List[str]
    content: bytes
    tls: bool


class RawStarttlsPeer(SilentServer):
    """A lockstep SMTP server on 127.0.0.1:port (a thread per connection).

    ctx          the server TLS context used after STARTTLS
    inject       bytes sent right after "220 2.0.0 Ready" in the same send
                 (response injection, e.g. b"250-evil\\r\\n250 injected\\r\\n")
    broken       the first `broken` connections get garbage instead of a
                 ServerHello after the 220, then the connection is closed
    The final DATA reply is FINAL_REPLY.  Recorded: sessions (RawConn, one
    per connection), messages.
    """

    FINAL_REPLY = "250 2.0.0 Ok: raw-queued"

    def __init__(self, ctx: ssl.SSLContext, inject: bytes = b"", broken: int = 0,
                 offer_starttls: bool = True):
        self.ctx = ctx
        self.inject = inject
        self.broken = broken
        self.offer_starttls = offer_starttls
        self.sessions: List[RawConn] = []
        self.messages: List[RawMessage] = []
        self.lock = threading.Lock()
        self.host = "127.0.0.1"
        super().__init__(self.host)

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}"

    def _accepted(self, conn: socket.socket) -> None:
        with self.lock:
            rec = RawConn(index=len(self.sessions))
            self.sessions.append(rec)
        threading.Thread(target=self._session_guarded, args=(conn, rec), daemon=True).start()

    def _session_guarded(self, conn: socket.socket, rec: RawConn) -> None:
        conn.settimeout(30)
        try:
            self._session(conn, rec)
        except (OSError, ssl.SSLError) as e:
            rec.commands.append(f"<ERROR {e}>")
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _ehlo_reply(self, tls: bool) -> bytes:
        ext = ["8BITMIME"] + (["STARTTLS"] if self.offer_starttls and not tls else [])
        lines = ["raw.test"] + ext
        out = [f"250-{l}" for l in lines[:-1]] + [f"250 {lines[-1]}"]
        return ("\r\n".join(out) + "\r\n").encode()

    def _starttls(self, conn: socket.socket, io: _LineIO, rec: RawConn):
        """The 220 (with the injection), then the handshake: a new _LineIO
        over TLS, or None when the handshake is broken or fails."""
        rec.early_bytes = io.buf
        if rec.index < self.broken:
            io.send(b"220 2.0.0 Ready\r\n")
            conn.recv(65536)  # the ClientHello
            io.send(b"this is not TLS at all\r\n" * 4)
            rec.commands.append("<BROKEN>")
            return None
        io.send(b"220 2.0.0 Ready\r\n" + self.inject)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            rec.tls_error = str(e)
            rec.commands.append("<TLS FAILED>")
            return None
        rec.tls_version = tls.version()
        rec.commands.append("<TLS>")
        return _LineIO(tls)

    def _session(self, conn: socket.socket, rec: RawConn) -> None:
        io = _LineIO(conn)
        io.send(b"220 raw.test ESMTP\r\n")
        tls, mail, rcpts = False, None, []
        while True:
            line = io.line()
            if line is None:
                return
            rec.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                io.send(self._ehlo_reply(tls))
            elif verb == "STARTTLS" and self.offer_starttls and not tls:
                io = self._starttls(conn, io, rec)
                if io is None:
                    return
                tls, mail, rcpts = True, None, []
            elif verb == "MAIL":
                mail, rcpts = line[10:].strip(), []
                io.send(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                rcpts.append(line[8:].strip())
                io.send(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                io.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self._data(io, mail, rcpts, tls)
                io.send(f"{self.FINAL_REPLY}\r\n".encode())
            elif verb in ("RSET", "NOOP"):
                io.send(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                io.send(b"221 2.0.0 Bye\r\n")
                return
            else:
                io.send(b"502 5.5.2 Error: command not recognized\r\n")

    def _data(self, io: _LineIO, mail, rcpts, tls: bool) -> None:
        lines = []
        while True:
            line = io.line()
            if line is None or line == ".":
                break
            lines.append(line[1:] if line.startswith(".") else line)
        content = ("\r\n".join(lines) + "\r\n").encode()
        with self.lock:
            self.messages.append(RawMessage(mail or "", list(rcpts), content, tls))

    def wait_for(self, needle: bytes, timeout: float = 20.0) -> List[RawMessage]:
        def found():
            with self.lock:
                return [m for m in self.messages if needle in m.content]
        return wait_until(found, timeout, f"a message containing {needle!r} at {self.hostport}")


# ---------------------------------------------------------------- shared by the suites

TEST_DOMAIN_RECORDS = [
    # authoritative for .test (no upstream): unknown names are NXDOMAIN
    "--local=/test/",
    "--host-record=mx.example.test,127.0.0.1",
    "--host-record=other.example.test,127.0.0.1",
    "--mx-host=example.test,mx.example.test,10",
]

HANDSHAKE = re.compile(
    r"^.*\b(Verified|Trusted|Untrusted|Anonymous) TLS connection established to "
    r"(\S+)\[([^\]]+)\]:(\d+): (TLSv1\.[0-3]) with cipher (\S+) \((\d+)/(\d+) bits\)(.*)$",
    re.M,
)


@pytest.fixture(scope="module")
def tls_pki(it_base):
    """tlsutil.make_pki plus selfsigned.pem/.key (CN and SAN mx.example.test)."""
    d = Path(tempfile.mkdtemp(prefix="pki-", dir=str(it_base)))
    pki = make_pki(d)
    make_self_signed(pki.dir, "selfsigned")
    yield pki
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_dns(mres):
    """dnsmasq: mx.example.test and other.example.test are 127.0.0.1."""
    return mres.dnsmasq(TEST_DOMAIN_RECORDS, probe="example.test")


def start_peer(res, peer):
    """Start a TlsPeer or ternlib sink and stop it with res's resources."""
    res.sinks.append(peer)
    return peer.start()


def raw_peer(res, *args, **kw) -> RawStarttlsPeer:
    """A RawStarttlsPeer stopped with res's resources."""
    peer = RawStarttlsPeer(*args, **kw)
    res.others.append(peer)
    return peer


def delivery_line(t, qid: str, status: str = "sent", timeout: float = 30.0) -> str:
    """The first per-recipient line of qid with status (sent, deferred...)."""
    return t.wait_log(rf"^.*{re.escape(qid)}: to=<[^>\n]*>, [^\n]*status={status} [^\n]*$",
                      timeout).group(0)


def tls_field(line: str) -> str:
    """The tls= value of a delivery line (TLSv1.3/verified, no...)."""
    m = re.search(r", tls=([^,\s]+),", line)
    assert m, f"no tls= field in {line!r}"
    return m.group(1)


def dsn_field(line: str) -> str:
    m = re.search(r", dsn=(\d\.\d+\.\d+),", line)
    assert m, f"no dsn= field in {line!r}"
    return m.group(1)


def handshakes(t, port: Optional[int] = None) -> List[re.Match]:
    """tern's handshake log lines (to port when given)."""
    return [m for m in HANDSHAKE.finditer(t.log()) if port is None or int(m.group(4)) == port]


class _Tree:
    """A directory removed with a test's other resources."""

    def __init__(self, path: Path):
        self.path = path

    def stop(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def table_dir(res) -> Path:
    """A fresh directory mail_owner can read, removed with res's resources."""
    d = Path(tempfile.mkdtemp(prefix="tables-", dir=str(res.base)))
    os.chmod(d, 0o755)
    res.others.append(_Tree(d))
    return d


def write_table(path: Path, lines: List[str]) -> str:
    """A texthash table readable by mail_owner; returns "texthash:PATH"."""
    path.write_text("".join(l + "\n" for l in lines))
    os.chmod(path, 0o644)
    return f"texthash:{path}"
