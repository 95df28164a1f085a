"""ternlib - reusable helpers for the tern integration suites.

TernInstance runs one complete tern (config, queue, log) in a private
directory; Sink is an aiosmtpd server on loopback that records every
envelope; SmtpConn is a raw SMTP client socket that returns full reply lines.
Everything here talks to real processes over loopback only.
"""

import asyncio
import email.parser
import email.policy
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TERN_BUILD", str(REPO / "build")))
TERN = BUILD / "tools" / "tern"

REPLY_250_QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as (\S+)$")


# ---------------------------------------------------------------- utilities


def wait_until(pred: Callable, timeout: float, what: str, interval: float = 0.05):
    """Poll pred() until it returns a true value; return it, or fail with what."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def tool_env(**extra: str) -> Dict[str, str]:
    """A clean environment for running a tern tool: PATH, the sanitizer
    settings of this test run (so an ASan build behaves the same here), and
    extra."""
    env = {"PATH": "/usr/bin:/bin"}
    env.update({k: os.environ[k] for k in SANITIZER_ENV if k in os.environ})
    env.update(extra)
    return env


# Ports for the tests' listeners come from below the kernel's ephemeral range
# (32768-60999), one slice per pytest-xdist worker, handed out in turn: a port
# a test let go of (a stopped sink standing for a dead next hop) is not given
# to another test soon after, in this worker or in another, as the kernel's
# bind(0) would.
PORT_FIRST, PORT_LAST = 10000, 32000


def _port_slice() -> Tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = (PORT_LAST - PORT_FIRST) // count
    return PORT_FIRST + (index % count) * size, size


_port_next = [int.from_bytes(os.urandom(2), "big")]


def free_port(host: str = "127.0.0.1", also: Tuple[str, ...] = ()) -> int:
    """A TCP port that is free on host and on every address in also."""
    first, size = _port_slice()
    for _ in range(size):
        port = first + _port_next[0] % size
        _port_next[0] += 1
        if all(_port_is_free(h, port) for h in (host,) + tuple(also)):
            return port
    raise RuntimeError("no free port found")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def terminate(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM a helper process we started (SIGKILL after timeout) and reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def require_binary(path: Path = TERN) -> None:
    """Fail (not skip) with a clear message when tern is not built."""
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"{path} is missing: build tern first (meson setup build && ninja -C build) "
            f"or point TERN_BUILD at the build directory"
        )


def proc_stat(pid: int) -> Optional[Tuple[str, int]]:
    """(comm, ppid) of a live process, or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rparen = data.rfind(")")
    comm = data[data.find("(") + 1 : rparen]
    fields = data[rparen + 2 :].split()
    if fields[0] == "Z":
        return None
    return comm, int(fields[1])


def proc_cmdline(pid: int) -> List[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _proc_cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def all_pids() -> List[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> List[int]:
    """Every live process below root (not root itself)."""
    children: Dict[int, List[int]] = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            children.setdefault(st[1], []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def qfile_is_complete(path: Path) -> bool:
    """True when a queue file is a whole record sequence ending in 'X' (lib/qfile.h)."""
    data = path.read_bytes()
    pos, last = 0, None
    while pos < len(data):
        if pos + 5 > len(data):
            return False
        rtype = data[pos : pos + 1]
        (length,) = struct.unpack(">I", data[pos + 1 : pos + 5])
        pos += 5 + length
        if pos > len(data):
            return False
        last = rtype
    return last == b"X"


def qfile_records(path: Path) -> List[Tuple[bytes, bytes]]:
    """The (type, value) records of a queue file (lib/qfile.h), in order."""
    data, pos, records = path.read_bytes(), 0, []
    while pos + 5 <= len(data):
        (length,) = struct.unpack(">I", data[pos + 1 : pos + 5])
        records.append((data[pos : pos + 1], data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return records


def qfile_attrs(path: Path) -> Dict[str, str]:
    """The 'A' records of a queue file (lib/qfile.h), wherever they are."""
    attrs = {}
    for rtype, value in qfile_records(path):
        if rtype == b"A":
            name, _, v = value.decode().partition("=")
            attrs[name] = v
    return attrs


def make_message(
    subject: str = "test",
    body: str = "hello\r\n",
    headers: Optional[Dict[str, str]] = None,
    sender: str = "sender@example.test",
    to: str = "rcpt@sink.test",
) -> bytes:
    """A small RFC 5322 message with CRLF line ends."""
    lines = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def dot_stuff(content: bytes) -> bytes:
    """Dot-stuff CRLF content for the wire (no terminating dot line)."""
    out = []
    for line in content.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


# ---------------------------------------------------------------- raw client


class SmtpConn:
    """A raw SMTP client: exact bytes out, full reply lines in, a transcript."""

    def __init__(
        self,
        host: str,
        port: int,
        source: Optional[str] = None,
        timeout: float = 10.0,
    ):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout, source_address=src)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.transcript: List[Tuple[str, List[str]]] = []  # (command, reply lines)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self, timeout: Optional[float] = None) -> str:
        """One reply line without its line end; EOFError when the peer closed."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def read_reply(self, timeout: Optional[float] = None) -> List[str]:
        """All lines of one (possibly multi-line) reply."""
        lines = []
        while True:
            line = self.read_line(timeout)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def greeting(self) -> List[str]:
        reply = self.read_reply()
        self.transcript.append(("<greeting>", reply))
        return reply

    def cmd(self, line: str, eol: str = "\r\n", timeout: Optional[float] = None) -> List[str]:
        self.send(line + eol)
        reply = self.read_reply(timeout)
        self.transcript.append((line, reply))
        return reply

    def data(self, content: bytes, stuff: bool = True) -> List[str]:
        """DATA, content (dot-stuffed unless stuff=False), CRLF.CRLF; the final reply.
        Content must end with CRLF.  Raises AssertionError when DATA is not 354."""
        reply = self.cmd("DATA")
        assert reply[0].startswith("354"), f"DATA refused: {reply}"
        payload = dot_stuff(content) if stuff else content
        self.send(payload + b".\r\n")
        final = self.read_reply()
        self.transcript.append(("<end of data>", final))
        return final

    def wait_closed(self, timeout: float) -> bool:
        """True when the server closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False


# ---------------------------------------------------------------- sink


@dataclass
class SinkMessage:
    peer: Tuple[str, int]
    local: Tuple[str, int]
    helo: str
    mail_from: str
    mail_options: List[str]
    rcpts: List[Tuple[str, List[str]]]  # (address, options) per RCPT
    content: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def rcpt_tos(self) -> List[str]:
        return [r[0] for r in self.rcpts]

    def headers(self):
        """The header section parsed with compat32 (folded lines kept raw)."""
        return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            self.content, headersonly=True
        )

    def header(self, name: str) -> Optional[str]:
        return self.headers().get(name)

    def body(self) -> bytes:
        idx = self.content.find(b"\r\n\r\n")
        return self.content[idx + 4 :] if idx >= 0 else b""


class _DsnSMTP(SMTP):
    """aiosmtpd's SMTP, also accepting the RFC 3461 parameters (kept in *_options)."""

    DSN_PARAMS = ("NOTIFY", "ORCPT", "RET", "ENVID")

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None:
            for name in self.DSN_PARAMS:
                result.pop(name, None)
        return result


class _SinkHandler:
    def __init__(self, sink: "Sink"):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.sink.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.sink.mail_reply:
            return self.sink.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.rcpt_pairs = []
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.rcpt_reply:
            return self.sink.rcpt_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.rcpt_pairs.append((address, list(rcpt_options)))
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_reply:
            return self.sink.data_reply
        transport = server.transport
        local = transport.get_extra_info("sockname") if transport else ("?", 0)
        msg = SinkMessage(
            peer=session.peer,
            local=local,
            helo=session.host_name or "",
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from,
            mail_options=list(envelope.mail_options),
            rcpts=list(getattr(envelope, "rcpt_pairs", [])),
            content=bytes(envelope.original_content),
        )
        self.sink._record(msg)
        return "250 2.0.0 Ok: sunk"


class Sink:
    """An in-process SMTP server on loopback recording every message.

    rcpt_reply / mail_reply / data_reply: a fixed reply (e.g. "550 5.1.1 no")
    given instead of accepting.  dsn: advertise DSN and accept its parameters.
    stop() and start() may be called repeatedly; the port stays the same.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: Optional[int] = None,
        dsn: bool = False,
        rcpt_reply: Optional[str] = None,
        mail_reply: Optional[str] = None,
        data_reply: Optional[str] = None,
    ):
        self.host = host
        self.port = port or free_port(host)
        self.dsn = dsn
        self.rcpt_reply = rcpt_reply
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.messages: List[SinkMessage] = []
        self._lock = threading.Lock()
        self._controller: Optional[Controller] = None

    # what a subclass may change: the handler, the SMTP class and its arguments
    def _handler(self):
        return _SinkHandler(self)

    def _smtp_class(self):
        return _DsnSMTP if self.dsn else SMTP

    def _smtp_kwargs(self) -> Dict:
        return {}

    # lifecycle
    def start(self) -> "Sink":
        assert self._controller is None, "sink already running"
        sink = self

        class _Ctl(Controller):
            def factory(self):
                return sink._smtp_class()(self.handler, **self.SMTP_kwargs)

        kwargs = {"enable_SMTPUTF8": False, **self._smtp_kwargs()}  # a subclass may offer it
        ctl = _Ctl(
            self._handler(),
            hostname=self.host,
            port=self.port,
            ready_timeout=10.0,
            decode_data=False,
            data_size_limit=64 * 1024 * 1024,
            server_hostname="sink.test",
            loop=asyncio.new_event_loop(),
            **kwargs,
        )
        ctl.start()
        self._controller = ctl
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}"

    # results
    def _record(self, msg: SinkMessage) -> None:
        with self._lock:
            self.messages.append(msg)

    def snapshot(self) -> List[SinkMessage]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def matching(self, needle: bytes) -> List[SinkMessage]:
        return [m for m in self.snapshot() if needle in m.content]

    def wait_for(self, needle: bytes, timeout: float = 20.0, count: int = 1) -> List[SinkMessage]:
        """Wait until at least count messages containing needle arrived; return them."""
        return wait_until(
            lambda: (lambda ms: ms if len(ms) >= count else None)(self.matching(needle)),
            timeout,
            f"{count} message(s) containing {needle!r} at sink {self.host}:{self.port}",
        )

    def wait_count(self, count: int, timeout: float = 20.0) -> List[SinkMessage]:
        return wait_until(
            lambda: (lambda ms: ms if len(ms) >= count else None)(self.snapshot()),
            timeout,
            f"{count} message(s) at sink {self.host}:{self.port}",
        )


# ---------------------------------------------------------------- tern


class TernInstance:
    """One tern in its own directory D: D/etc/tern.conf, D/queue, D/data, D/maillog.

    start() runs `tern -c D/etc start -f` with its output in D/stderr.log and
    waits for the 220 greeting; stop() is `tern stop` with a SIGKILL fallback;
    kill9() kills every process of the instance at once, like a crash.
    """

    LIVE: List["TernInstance"] = []  # for failure reports and emergency cleanup

    def __init__(self, base: Optional[Path] = None, name: str = "tern", **params):
        require_binary()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=str(base) if base else None))
        os.chmod(self.dir, 0o755)  # services drop to mail_owner
        self.etc = self.dir / "etc"
        self.etc.mkdir()
        os.chmod(self.etc, 0o755)
        self.conf_path = self.etc / "tern.conf"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        self.maillog = self.dir / "maillog"
        self.stderr_path = self.dir / "stderr.log"
        # instance-local aliases and mail spool: nothing depends on /etc/aliases
        self.aliases = self.etc / "aliases"
        self.aliases.write_text("")
        os.chmod(self.aliases, 0o644)
        self.spool = self.dir / "mail"
        self.spool.mkdir()
        os.chmod(self.spool, 0o1777)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.mounts: List[Path] = []
        self.params: Dict[str, str] = {
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "maillog_file": str(self.maillog),
            "smtpd_listen": f"{self.host}:{self.port}",
            "submission_listen": "",
            "smtps_listen": "",
            "myhostname": "tern.test",
            "mydomain": "test",
            "mydestination": "tern.test, localhost",
            "mynetworks": "127.0.0.0/8",
            "mail_owner": "tern" if os.geteuid() == 0 else _user_name(),
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtpd_workers": "2",
            "alias_maps": f"texthash:{self.aliases}",
            "mail_spool_directory": str(self.spool),
            # tests that are not about DNS must not depend on this machine's
            # resolver: no client name lookup, no sender domain check (the
            # policy tests turn both on with a dnsmasq of their own)
            "smtpd_peername_lookup": "no",
            "accept_unresolvable_domains": "yes",
        }
        self.params.update({k: str(v) for k, v in params.items()})
        self.write_conf()
        TernInstance.LIVE.append(self)

    # configuration
    def write_conf(self, extra_lines: Optional[List[str]] = None) -> None:
        lines = ["# written by tests/integration/ternlib.py"]
        lines += [f"{k} = {v}" for k, v in self.params.items()]
        lines += extra_lines or []
        self.conf_path.write_text("\n".join(lines) + "\n")

    def conf_edit(self, **params) -> None:
        """Change parameters in tern.conf (takes effect on start or reload)."""
        self.params.update({k: str(v) for k, v in params.items()})
        self.write_conf()

    def mount_tmpfs(self, size: str = "1m") -> None:
        """Put the queue on a small tmpfs (root only); unmounted by cleanup()."""
        self.queue.mkdir(exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.queue)],
            check=True,
        )
        self.mounts.append(self.queue)

    # commands
    def tern(self, *args: str, timeout: float = 30.0, check: bool = False):
        return subprocess.run(
            [str(TERN), "-c", str(self.etc), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    # lifecycle
    def start(self, timeout: float = 10.0, mode: str = "-f", env: Optional[Dict[str, str]] = None,
              wait: bool = True) -> "TernInstance":
        """`tern start MODE` (-f, or -D as systemd runs it) with env; wait:
        until the greeting."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [str(TERN), "-c", str(self.etc), "start", mode],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
            start_new_session=True,
            env=env,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the greeting on smtpd_listen; with no listener at all (a
        null client), until qmgr and cleanup run."""
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"tern start -f exited with {self.proc.returncode}:\n{self.stderr_tail()}"
                )
            if not self.params.get("smtpd_listen", "").strip():
                return bool(self.service_pids("qmgr") and self.service_pids("cleanup"))
            try:
                with SmtpConn(self.host, self.port, timeout=2) as c:
                    return c.read_line().startswith("220")
            except (OSError, EOFError):
                return False

        wait_until(ready, timeout, f"220 greeting on {self.host}:{self.port}", interval=0.1)

    def master_pid(self) -> Optional[int]:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> List[int]:
        """Every live process of this instance."""
        found = set()
        roots = [p for p in (self.master_pid(), self.proc and self.proc.pid) if p]
        for root in roots:
            if proc_stat(root):
                found.add(root)
                found.update(descendants(root))
        needle = str(self.dir)
        for pid in all_pids():
            argv = proc_cmdline(pid)
            if argv and os.path.basename(argv[0]).startswith("tern") and (
                any(needle in a for a in argv) or _proc_cwd(pid).startswith(needle)
            ):  # a service with a process title (OPS-04) runs in queue_directory
                if proc_stat(pid):
                    found.add(pid)
        found.discard(os.getpid())
        return sorted(found)

    def service_pids(self, name: str) -> List[int]:
        """Live processes running tern-NAME for this instance."""
        out = []
        for pid in self.pids():
            argv = proc_cmdline(pid)
            # "tern-smtpd -c DIR" until the service sets its title "tern-smtpd: ..."
            if argv and os.path.basename(argv[0].split(":")[0]) == f"tern-{name}":
                out.append(pid)
        return out

    def kill9(self) -> None:
        """SIGKILL every process of the instance (a crash), then reap.  Waits
        until each killed process is gone from /proc, not only until none is
        found by its command line (an exiting process loses that first)."""
        killed = self.pids()
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        wait_until(
            lambda: not self.pids() and not any(proc_stat(p) for p in killed),
            10,
            "instance processes to die after SIGKILL",
        )

    def stop(self, timeout: float = 10.0) -> None:
        """tern stop; wait for the processes to end; SIGKILL what is left."""
        if self.proc is None and not self.pids():
            return
        # `tern stop` waits until kill(master, 0) fails; master is our child
        # here, so reap it (poll) while waiting or it stays a zombie
        stopper = subprocess.Popen(
            [str(TERN), "-c", str(self.etc), "stop"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()
            if stopper.poll() is not None and not self.pids():
                break
            time.sleep(0.05)
        if stopper.poll() is None:
            stopper.kill()
        self.last_stop_output = stopper.communicate()[0]
        if self.pids():
            self.kill9()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_stderr_file", None) is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def cleanup(self, keep: bool = False) -> None:
        """Stop everything, unmount, and remove the directory unless keep."""
        try:
            self.stop()
        finally:
            for m in reversed(self.mounts):
                r = subprocess.run(["umount", str(m)], capture_output=True)
                if r.returncode != 0:
                    subprocess.run(["umount", "-l", str(m)], capture_output=True)
            self.mounts.clear()
            if self in TernInstance.LIVE:
                TernInstance.LIVE.remove(self)
            if not keep:
                shutil.rmtree(self.dir, ignore_errors=True)

    # logs
    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "SUMMARY: UndefinedBehaviorSanitizer")

    def sanitizer_report(self) -> str:
        """The first sanitizer report any process of this instance printed, or ''."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        for mark in self.SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200): i + 3000]
        return ""

    def stderr_tail(self, n: int = 40) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern: str, timeout: float = 15.0, flags: int = 0) -> re.Match:
        rx = re.compile(pattern, flags | re.M)
        return wait_until(lambda: rx.search(self.log()), timeout, f"maillog line /{pattern}/")

    # queue
    def queue_files(self) -> List[Path]:
        """Message files still in incoming/, active/ and deferred/ (hidden temp files excluded)."""
        out: List[Path] = []
        for sub in ("incoming", "active"):
            d = self.queue / sub
            if d.is_dir():
                out += [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")]
        deferred = self.queue / "deferred"
        if deferred.is_dir():
            for h in deferred.iterdir():
                if h.is_dir():
                    out += [p for p in h.iterdir() if not p.name.startswith(".")]
        return out

    def wait_queue_empty(self, timeout: float = 30.0) -> None:
        wait_until(lambda: not self.queue_files(), timeout, "the queue to drain")

    # clients
    def connect(self, source: Optional[str] = None, timeout: float = 10.0) -> SmtpConn:
        return SmtpConn(self.host, self.port, source=source, timeout=timeout)

    def send(
        self,
        content: bytes,
        sender: str = "sender@example.test",
        rcpts: Tuple[str, ...] = ("rcpt@sink.test",),
        helo: str = "client.example",
        source: Optional[str] = None,
    ) -> str:
        """One message over a raw session; returns the queue ID from the 250 reply."""
        with self.connect(source=source) as c:
            assert c.greeting()[0].startswith("220")
            assert c.cmd(f"EHLO {helo}")[-1].startswith("250 ")
            r = c.cmd(f"MAIL FROM:<{sender}>")
            assert r[0].startswith("250"), f"MAIL: {r}"
            for rcpt in rcpts:
                r = c.cmd(f"RCPT TO:<{rcpt}>")
                assert r[0].startswith("250"), f"RCPT {rcpt}: {r}"
            final = c.data(content)
            m = REPLY_250_QUEUED.match(final[0])
            assert m, f"end of DATA: {final}"
            c.cmd("QUIT")
            return m.group(1)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


class SilentServer:
    """A TCP server on addr:port (0: a free port) that accepts connections
    and never says a word: a peer that hangs (identd, policy service).
    .port, .conns; stop() closes everything.  A subclass that does talk
    overrides _accepted()."""

    def __init__(self, addr: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: List[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self._accepted(c)

    def _accepted(self, conn: socket.socket) -> None:
        """A subclass serves conn here (in the accepting thread: start one)."""

    def stop(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


# ---------------------------------------------------------------- dnsmasq


def dns_query_packet(name: str, qtype: int = 15, qid: int = 0x7E57) -> bytes:
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack(">HH", qtype, 1)


def dns_answer_count(host: str, port: int, name: str, qtype: int = 15) -> int:
    """ANCOUNT of a UDP query, or -1 when there is no answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(dns_query_packet(name, qtype), (host, port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return -1
    return struct.unpack(">H", data[6:8])[0] if len(data) >= 12 else -1


class Dnsmasq:
    """dnsmasq on 127.0.0.1:PORT serving fixed records (no upstream, no hosts file)."""

    def __init__(self, records: List[str], logdir: Path):
        self.port = free_port()
        self.log_path = logdir / "dnsmasq.log"
        self.args = [
            "dnsmasq",
            "--no-daemon",
            "--keep-in-foreground",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--conf-file=/dev/null",
            "--pid-file=",
        ] + records
        self.proc: Optional[subprocess.Popen] = None

    def start(self, probe: str) -> "Dnsmasq":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dnsmasq exited {self.proc.returncode}: {self.log_path.read_text()}"
                )
            return dns_answer_count("127.0.0.1", self.port, probe) > 0

        wait_until(ready, 10, f"dnsmasq on port {self.port} answering {probe}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None


# ---------------------------------------------------------------- DNSSEC
# signed, bogus and unsigned zones behind a validating unbound: daneutil.py
# (start_dane_dns)


# ---------------------------------------------------------------- postgrey

POSTGREY = "/usr/sbin/postgrey"


def start_postgrey(tmpdir: Path, delay: int = 2) -> Tuple[subprocess.Popen, int]:
    """postgrey (a greylisting policy server, scripts/setup.sh installs it) on
    127.0.0.1:PORT with its database in tmpdir/postgrey, in the foreground;
    returns (proc, port) once it accepts connections.  Stop it with
    terminate(proc).

    The command line:
        postgrey --inet=127.0.0.1:PORT --dbdir=DIR --delay=2 --max-age=35
                 --user=nobody --group=nogroup
    As root postgrey drops to --user/--group after binding (default: the
    user postgrey), so DIR belongs to that user and tmpdir must be
    searchable by it (the it_base fixture's directories are 0755).  It
    answers only requests with request=smtpd_access_policy (others get no
    reply at all); a request without client_address, client_name, sender
    or recipient gets DUNNO."""
    import grp
    import pwd

    dbdir = Path(tmpdir) / "postgrey"
    dbdir.mkdir(mode=0o700)
    user_args: List[str] = []
    if os.geteuid() == 0:
        user, group = "nobody", "nogroup"
        os.chown(dbdir, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
        user_args = [f"--user={user}", f"--group={group}"]
    port = free_port()
    log = open(Path(tmpdir) / "postgrey.log", "ab")
    proc = subprocess.Popen(
        [POSTGREY, f"--inet=127.0.0.1:{port}", f"--dbdir={dbdir}", f"--delay={delay}",
         "--max-age=35"] + user_args,
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    log.close()

    def accepting():
        if proc.poll() is not None:
            raise AssertionError(
                f"postgrey exited {proc.returncode}: {(Path(tmpdir) / 'postgrey.log').read_text()}"
            )
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(accepting, 20, f"postgrey on port {port}")
    except BaseException:
        terminate(proc)
        raise
    return proc, port


# ---------------------------------------------------------------- per-recipient sink


class _RuleSinkHandler(_SinkHandler):
    """_SinkHandler answering RCPT per address (RuleSink.rules)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for needle, reply in self.sink.rules:
            if needle in address:
                return reply
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


class RuleSink(Sink):
    """A Sink whose RCPT reply depends on the address: rules is a list of
    (substring, reply), the first match wins ("550 5.1.1 no such user",
    "451 4.3.0 try later"); other recipients are accepted.  rules may be
    changed while the sink runs."""

    def __init__(self, rules=None, **kw):
        super().__init__(**kw)
        self.rules: List[Tuple[str, str]] = list(rules or [])

    def start(self) -> "RuleSink":
        super().start()
        # the controller builds one SMTP per connection from .handler
        self._controller.handler = _RuleSinkHandler(self)
        return self


class SlowRuleSink(RuleSink):
    """A RuleSink that waits delay seconds before answering each DATA (a
    slow next hop, so deliveries stay in flight)."""

    def __init__(self, rules=None, delay: float = 0.1, **kw):
        super().__init__(rules, **kw)
        self.delay = delay

    def start(self) -> "SlowRuleSink":
        super().start()
        self._controller.handler = _SlowRuleSinkHandler(self)
        return self


class _SlowRuleSinkHandler(_RuleSinkHandler):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.sink.delay)
        return await super().handle_DATA(server, session, envelope)


# ---------------------------------------------------------------- attr IPC


def attr_encode(proto: str, pairs=()) -> bytes:
    """One lib/attr message: proto first, then (name, value) pairs in order."""
    body = b""
    for name, value in [("proto", proto)] + list(pairs):
        n = name.encode()
        v = value if isinstance(value, bytes) else str(value).encode()
        body += struct.pack(">H", len(n)) + n + struct.pack(">I", len(v)) + v
    return struct.pack(">I", len(body)) + body


def attr_decode(data: bytes) -> List[Tuple[str, str]]:
    """The (name, value) pairs of one whole lib/attr message."""
    (length,) = struct.unpack(">I", data[:4])
    body, pos, out = data[4 : 4 + length], 0, []
    while pos < len(body):
        (nlen,) = struct.unpack(">H", body[pos : pos + 2])
        name = body[pos + 2 : pos + 2 + nlen].decode()
        pos += 2 + nlen
        (vlen,) = struct.unpack(">I", body[pos : pos + 4])
        out.append((name, body[pos + 4 : pos + 4 + vlen].decode(errors="replace")))
        pos += 4 + vlen
    return out


def attr_request(path: Path, proto: str, pairs=(), timeout: float = 30.0) -> List[Tuple[str, str]]:
    """Send one request on the UNIX socket at path and read one reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(attr_encode(proto, pairs))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError(f"{path} closed the connection without a reply")
            data += chunk
    return attr_decode(data)


def qmgr_control(t: "TernInstance", action: str, *ids: str) -> Dict[str, object]:
    """qmgr.control on private/qmgr: {'status', 'count', 'missing': [...]}."""
    reply = attr_request(
        t.queue / "private" / "qmgr", "qmgr.control", [("action", action)] + [("id", i) for i in ids]
    )
    d = dict(reply)
    return {
        "status": d.get("status"),
        "count": int(d.get("count", "0")),
        "missing": [v for k, v in reply if k == "missing"],
    }


# ---------------------------------------------------------------- connection-counting sink


class _CountingSinkHandler(_SinkHandler):
    """_SinkHandler noting the client address (host, port) of every session."""

    def _note(self, session) -> None:
        with self.sink._lock:
            self.sink.peers.add(tuple(session.peer))

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self._note(session)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_HELO(self, server, session, envelope, hostname):
        self._note(session)
        session.host_name = hostname
        return "250 {}".format(server.hostname)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self._note(session)
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


class CountingSink(Sink):
    """A Sink that also counts the TCP connections its clients made (distinct
    client address:port pairs that said EHLO, HELO or MAIL); the count
    survives stop() / start()."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.peers = set()

    def start(self) -> "CountingSink":
        super().start()
        self._controller.handler = _CountingSinkHandler(self)
        return self

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.peers)
