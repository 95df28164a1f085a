#!/usr/bin/python3
"""bench.py - tern and Postfix side by side on loopback (issue 5).

Run through bench/run.sh (which builds tern in release mode and installs
Postfix first).  Every measure runs tern then Postfix (A B), repeated, so the
machine's drift hits both; the machine's own limits (smtp-source straight
into smtp-sink, durable file creates on the queue disk) are measured in the
same repetitions.  The STARTTLS rows (issue 9) run on a second tern and a
second Postfix with a certificate made at bench time, loaded by
bench/tls_source (smtp-source speaks no TLS).  The result is a markdown
table (median, min-max, the median of the per-repetition tern/Postfix
ratios) on stdout and in bench/results/latest.md.

Everything here is bounded: every wait has a timeout, every process started
is stopped in cleanup() (also on SIGINT/SIGTERM), and only 127.0.0.1 is used.
"""

import argparse
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TERN_BUILD", str(REPO / "build-release")))
os.environ["TERN_BUILD"] = str(BUILD)
sys.path.insert(0, str(REPO / "tests" / "integration"))
from ternlib import TernInstance, descendants, free_port, proc_stat  # noqa: E402
from ternlib import dns_answer_count  # noqa: E402
from ternlib import wait_until as wait_for  # noqa: E402  (raises AssertionError on timeout)

TERN = BUILD / "tools" / "tern"
TERN_SENDMAIL = BUILD / "tools" / "sendmail"
PF_SENDMAIL = Path("/usr/sbin/sendmail")
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
TLS_SOURCE = BUILD / "bench" / "tls_source"  # bench/tls_source.c, built with tern
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
LOCAL_DOMAIN = "bench.local"
FROM = "bench@bench.test"
RELAY_RCPT = "rcpt@sink.test"

CLEANUPS: List[Callable[[], None]] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)


def stop_process(proc: Optional[subprocess.Popen], grace: float) -> None:
    """SIGTERM, then SIGKILL after grace seconds, if proc still runs."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------ sink


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1:port; counts messages from its -c output."""

    def __init__(self, port: int):
        self.port = port
        self.count = 0
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "SmtpSink":
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "1024"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(self._listening, 10, f"smtp-sink on port {self.port}")
        CLEANUPS.append(self.stop)
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.recv(64)
            return True
        except OSError:
            return False

    def _read(self) -> None:
        pat = re.compile(rb"mesg=(\d+)")
        tail = b""
        while self.proc and self.proc.stdout:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            tail = (tail + chunk)[-256:]
            found = pat.findall(tail)
            if found:
                self.count = int(found[-1])

    def wait_count(self, n: int, timeout: float) -> float:
        """Wait until n messages arrived; the monotonic time it was seen."""
        wait_for(lambda: self.count >= n, timeout, f"{n} messages at smtp-sink (have {self.count})",
                 interval=0.01)
        return time.monotonic()

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self.proc = None


def smtp_source(port: int, sessions: int, count: int, rcpt: str, timeout: float) -> float:
    """smtp-source -s S -m M -l 4096 into 127.0.0.1:port; its wall time."""
    t0 = time.monotonic()
    r = run([SMTP_SOURCE, "-s", str(sessions), "-m", str(count), "-l", "4096", "-f", FROM,
             "-t", rcpt, f"127.0.0.1:{port}"], timeout)
    if r.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {r.stderr.decode(errors='replace')[-500:]}")
    return time.monotonic() - t0


# ------------------------------------------------------------------ MTAs


def pss_kib(pids: List[int]) -> int:
    """Total PSS (KiB) of the given processes (smaps_rollup)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


def count_files(root: Path, subdirs) -> int:
    n = 0
    for sub in subdirs:
        for _dirpath, _dirs, files in os.walk(root / sub):
            n += sum(1 for f in files if not f.startswith("."))
    return n


class TlsFiles:
    """A self-signed certificate made at bench time (RSA 2048), one copy per MTA."""

    def __init__(self, base: Path):
        self.dir = base / "tls"
        self.dir.mkdir()
        self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", "2", "-subj", "/CN=bench.test", "-addext",
             "subjectAltName=DNS:bench.test,DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.key), "-out", str(self.cert)], 60, check=True)

    def copy_for(self, d: Path, tag: str) -> Tuple[Path, Path]:
        """cert (0644) and key (0600, root's) in d for one MTA."""
        cert, key = d / f"{tag}-cert.pem", d / f"{tag}-key.pem"
        shutil.copyfile(self.cert, cert)
        os.chmod(cert, 0o644)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.read_bytes())
        os.chmod(key, 0o600)
        return cert, key


def tern_knows(param: str) -> bool:
    """Whether this tern build has the parameter (tern.conf rejects unknown ones)."""
    return run([str(TERN), "conf", "-d", param], 30).returncode == 0


def tern_has_tls() -> bool:
    return all(tern_knows(p) for p in ("smtpd_tls_cert_file", "smtpd_tls_key_file"))


class Tern:
    name = "tern"

    def __init__(self, base: Path, sink_port: int, tls: Optional["TlsFiles"] = None,
                 name: str = "tern", extra: Optional[Dict[str, str]] = None):
        """extra: parameters added to (or replacing) the bench's tern.conf;
        name: the column the rows go to (and the instance directory's prefix)."""
        self.name = name
        self.t = TernInstance(base=base, name="tern-tls" if tls else name.replace(" ", "-"),
                              relayhost=f"[127.0.0.1]:{sink_port}",
                              mydestination=f"{LOCAL_DOMAIN}, tern.test, localhost",
                              home_mailbox="Maildir/", smtpd_client_limit="2100")
        # shipped defaults for scheduling and workers (ternlib tunes them for tests)
        for k in ("queue_run_delay", "minimal_backoff_time", "maximal_backoff_time",
                  "smtpd_workers"):
            self.t.params.pop(k, None)
        # the default submission_listen is 0.0.0.0:587: never bind it here
        for k in ("submission_listen", "smtps_listen"):
            if tern_knows(k):
                self.t.params[k] = ""
        if tls:  # STARTTLS on smtpd_listen
            cert, key = tls.copy_for(self.t.dir, "tern")
            self.t.params["smtpd_tls_cert_file"] = str(cert)
            self.t.params["smtpd_tls_key_file"] = str(key)
        self.t.params.update(extra or {})
        self.t.write_conf()
        self.port = self.t.port
        self.queue = self.t.queue
        CLEANUPS.append(lambda: self.t.cleanup(keep=False))

    def start(self) -> None:
        self.t.start(timeout=20)

    def stop(self) -> None:
        self.t.stop(timeout=20)

    def pids(self) -> List[int]:
        return self.t.pids()

    def queued(self) -> int:
        return count_files(self.queue, ("incoming", "active", "deferred", "maildrop"))

    def in_flight(self) -> int:
        return count_files(self.queue, ("incoming", "active", "maildrop"))

    def sendmail_cmd(self, rcpt: str) -> List[str]:
        return [str(TERN_SENDMAIL), "-C", str(self.t.conf_path), "-f", FROM, rcpt]

    def sendmail_env(self) -> Dict[str, str]:
        return {"PATH": "/usr/bin:/bin"}

    def listings(self) -> Dict[str, List[str]]:
        return {"tern queue list -j": [str(TERN), "-c", str(self.t.etc), "queue", "list", "-j"],
                "tern sendmail -bp": [str(TERN_SENDMAIL), "-C", str(self.t.conf_path), "-bp"]}

    def flush(self) -> None:
        run([str(TERN), "-c", str(self.t.etc), "queue", "flush"], 60, check=True)


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
PF_TLSMGR = "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"


class Postfix:
    """A private Postfix instance: DIR/etc (main.cf, master.cf), DIR/queue, DIR/data.

    With tls: STARTTLS offered (smtpd_tls_security_level = may) with that
    certificate, and tlsmgr running, which hands every smtpd process the same
    session ticket keys (Postfix's defaults otherwise)."""

    name = "Postfix"

    def __init__(self, base: Path, sink_port: int, tls: Optional["TlsFiles"] = None,
                 name: str = "Postfix", extra: Optional[Dict[str, str]] = None,
                 namespace: Optional[Dict[str, Path]] = None, services: str = ""):
        """extra: main.cf parameters added or replaced; namespace: files
        bind-mounted over system ones ({"/etc/resolv.conf": FILE}) in a private
        mount namespace that only this instance's processes see (unshare -m);
        services: master.cf lines added."""
        self.name = name
        self.namespace = namespace or {}
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-", dir=str(base)))
        os.chmod(self.dir, 0o755)
        self.etc, self.queue, self.data = self.dir / "etc", self.dir / "queue", self.dir / "data"
        for d in (self.etc, self.queue, self.data):
            d.mkdir()
            os.chmod(d, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        self.mounts: List[Path] = []
        self.port = free_port()
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.test",
            "mydomain": "test",
            "mydestination": LOCAL_DOMAIN,
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "relayhost": f"[127.0.0.1]:{sink_port}",
            "maillog_file": str(self.dir / "maillog"),
            "default_process_limit": "2100",
            "home_mailbox": "Maildir/",
            "biff": "no",
            "smtputf8_enable": "no",
        }
        master_cf = MASTER_CF.format(port=self.port)
        if tls:
            cert, key = tls.copy_for(self.dir, "postfix")
            main.update({"smtpd_tls_cert_file": str(cert), "smtpd_tls_key_file": str(key),
                         "smtpd_tls_security_level": "may"})
            master_cf += PF_TLSMGR
        master_cf += services
        main.update(extra or {})
        (self.etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.etc / "master.cf").write_text(master_cf)
        r = run([POSTFIX, "-c", str(self.etc), "check"], 60)
        if r.returncode != 0:
            raise RuntimeError(f"postfix check: {r.stderr.decode(errors='replace')}")
        CLEANUPS.append(self.cleanup)

    def master_pid(self) -> Optional[int]:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> List[int]:
        m = self.master_pid()
        if not m or not proc_stat(m):
            return []
        return [m] + descendants(m)

    def start(self) -> None:
        cmd = [POSTFIX, "-c", str(self.etc), "start"]
        if self.namespace:
            # the master (and every process it starts) stays in this namespace
            mounts = " && ".join(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}"
                                 for dst, src in self.namespace.items())
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   f"{mounts} && exec \"$@\"", "sh"] + cmd
        r = run(cmd, 60)
        if r.returncode != 0:
            raise RuntimeError(f"postfix start: {r.stderr.decode(errors='replace')}")

        def ready():
            try:
                with socket.create_connection(("127.0.0.1", self.port), 2) as s:
                    s.settimeout(5)
                    return s.recv(128).startswith(b"220")
            except OSError:
                return False

        wait_for(ready, 20, "Postfix 220 greeting", 0.1)

    def stop(self) -> None:
        pids = self.pids()
        if not pids:
            return
        run([POSTFIX, "-c", str(self.etc), "stop"], 30)
        try:
            wait_for(lambda: not any(proc_stat(p) for p in pids), 20, "Postfix to stop")
        except AssertionError:  # wait_for timed out
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def mount_tmpfs(self, size: str) -> None:
        """The queue on a tmpfs of its own (before start); unmounted by cleanup()."""
        run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
             str(self.queue)], 30, check=True)
        self.mounts.append(self.queue)

    def cleanup(self) -> None:
        self.stop()
        for m in self.mounts:
            if run(["umount", str(m)], 30).returncode != 0:
                run(["umount", "-l", str(m)], 30)
        self.mounts.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def queued(self) -> int:
        return count_files(self.queue, ("maildrop", "incoming", "active", "deferred", "hold"))

    def in_flight(self) -> int:
        return count_files(self.queue, ("maildrop", "incoming", "active"))

    def sendmail_cmd(self, rcpt: str) -> List[str]:
        return [str(PF_SENDMAIL), "-C", str(self.etc), "-f", FROM, rcpt]

    def sendmail_env(self) -> Dict[str, str]:
        return {"PATH": "/usr/bin:/bin:/usr/sbin", "MAIL_CONFIG": str(self.etc)}

    def listings(self) -> Dict[str, List[str]]:
        return {"postqueue -j": [POSTQUEUE, "-c", str(self.etc), "-j"],
                "mailq (postqueue -p)": [POSTQUEUE, "-c", str(self.etc), "-p"]}

    def flush(self) -> None:
        run([POSTQUEUE, "-c", str(self.etc), "-f"], 60, check=True)


# ------------------------------------------------------------------ measures


class Results:
    """values[row][who] = list of per-repetition values (who: tern, Postfix, machine)."""

    def __init__(self):
        self.values: Dict[str, Dict[str, List[float]]] = {}
        self.rows: List[str] = []
        self.notes: List[str] = []

    def add(self, row: str, who: str, v: float) -> None:
        if row not in self.values:
            self.values[row] = {}
            self.rows.append(row)
        self.values[row].setdefault(who, []).append(v)
        log(f"  {row} [{who}] = {v:.4g}")


def wait_drained(mta, timeout: float) -> None:
    wait_for(lambda: mta.queued() == 0, timeout, f"{mta.name} queue to empty", 0.1)


def measure_relay(mta, sink_port: int, sessions: int, count: int, res: Results) -> None:
    sink = SmtpSink(sink_port).start()
    try:
        t0 = time.monotonic()
        accept = smtp_source(mta.port, sessions, count, RELAY_RCPT, timeout=60 + count / 10)
        t_end = sink.wait_count(count, timeout=60 + count / 10)
        res.add(f"relay {sessions} sessions: accepted msg/s", mta.name, count / accept)
        res.add(f"relay {sessions} sessions: end-to-end msg/s", mta.name, count / (t_end - t0))
        wait_drained(mta, 60)
    finally:
        sink.stop()


# ------------------------------------------------------------------ TLS


def offers_starttls(port: int) -> bool:
    """Whether the server on port lists STARTTLS in its EHLO reply."""
    try:
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.settimeout(10)
            read_reply(s)
            s.sendall(b"EHLO bench.test\r\n")
            ok = b"STARTTLS" in read_reply(s).upper()
            s.sendall(b"QUIT\r\n")
            return ok
    except OSError:
        return False


def tls_source(port: int, sessions: int, count: int, resume: bool, timeout: float,
               rcpt: str = RELAY_RCPT, extra: Tuple[str, ...] = ()) -> Dict[str, str]:
    """bench/tls_source -s S -m M (-r) and the extra options: its key=value summary,
    plus "t_start", the monotonic time at which its timed part began (after a
    priming session)."""
    cmd = [str(TLS_SOURCE), "-q", "-w", "30", "-s", str(sessions), "-m", str(count),
           "-l", "4096", "-f", FROM, "-t", rcpt] + (["-r"] if resume else []) + list(extra)
    proc = subprocess.Popen(cmd + [f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    t_start = time.monotonic()
    try:
        first = proc.stdout.readline()  # "start"; tls_source gives up on no progress (-w)
        if first.strip() == b"start":
            t_start = time.monotonic()
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if proc.returncode != 0:
        raise RuntimeError(f"tls_source failed ({proc.returncode}): "
                           f"{(first + out + err).decode(errors='replace')[-500:]}")
    kv = dict(f.split("=", 1) for f in out.decode().split() if "=" in f)
    kv["t_start"] = str(t_start)
    return kv


class TlsStats:
    """Per MTA and mode: handshakes, resumed ones, the client's CPU share."""

    def __init__(self):
        self.hs: Dict[str, List[int]] = {}  # "tern resumed" -> [handshakes, resumed]
        self.cpu: Dict[str, float] = {}  # "tern full, 100 sessions" -> max cpu_s/seconds
        self.tls = ""

    def add(self, who: str, mode: str, sessions: int, kv: Dict[str, str]) -> None:
        h = self.hs.setdefault(f"{who} {mode}", [0, 0])
        h[0] += int(kv["handshakes"])
        h[1] += int(kv["resumed"])
        key = f"{who}, {mode}, {sessions} sessions"
        share = float(kv["cpu_s"]) / max(float(kv["seconds"]), 1e-9)
        self.cpu[key] = max(self.cpu.get(key, 0.0), share)
        self.tls = kv.get("tls", self.tls)

    def notes(self) -> List[str]:
        out = []
        if self.hs:
            out.append("TLS handshakes resumed (SSL_session_reused, all repetitions): " + "; ".join(
                f"{k}: {r} of {h}" for k, (h, r) in sorted(self.hs.items())) + ".")
        if self.cpu:
            k, v = max(self.cpu.items(), key=lambda kv: kv[1])
            out.append(f"tls_source (one thread) used at most {v * 100:.0f}% of one CPU ({k}); "
                       f"negotiated: {self.tls}.")
        return out


def measure_tls_relay(mta, sink_port: int, sessions: int, count: int, resume: bool,
                      res: Results, stats: TlsStats) -> None:
    """tls_source (STARTTLS, full or resumed handshakes) into the MTA, relayed to the sink."""
    mode = "resumed" if resume else "full"
    sink = SmtpSink(sink_port).start()
    try:
        kv = tls_source(mta.port, sessions, count, resume, timeout=90 + count / 10)
        t_end = sink.wait_count(count, timeout=60 + count / 10)
        row = f"relay with STARTTLS, {sessions} sessions, {mode} handshakes"
        res.add(f"{row}: accepted msg/s", mta.name, count / float(kv["seconds"]))
        res.add(f"{row}: end-to-end msg/s", mta.name, count / (t_end - float(kv["t_start"])))
        stats.add(mta.name, mode, sessions, kv)
        wait_drained(mta, 60)
    finally:
        sink.stop()


def hold_tls_sessions(port: int, n: int) -> subprocess.Popen:
    """tls_source -I n: n sessions after STARTTLS and EHLO, idle until terminated."""
    proc = subprocess.Popen([str(TLS_SOURCE), "-q", "-w", "60", "-s", "50", "-I", str(n),
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    CLEANUPS.append(stop)
    line = proc.stdout.readline()  # "idle N" once all are open; exits if stuck (-w)
    if line.split() != [b"idle", str(n).encode()]:
        stop()
        raise RuntimeError(f"tls_source -I {n}: {line!r} "
                           f"{proc.stderr.read().decode(errors='replace')[-500:]}")
    proc.stop = stop  # type: ignore[attr-defined]
    return proc


def measure_machine_relay(sink_port: int, sessions: int, count: int, res: Results) -> None:
    sink = SmtpSink(sink_port).start()
    try:
        t0 = time.monotonic()
        smtp_source(sink_port, sessions, count, RELAY_RCPT, timeout=60 + count / 10)
        t_end = sink.wait_count(count, timeout=30)
        res.add(f"machine: smtp-source -> smtp-sink, {sessions} sessions, msg/s", "machine",
                count / (t_end - t0))
    finally:
        sink.stop()


def measure_fsync(d: Path, threads: int, seconds: float, res: Results) -> None:
    """Durable creates per second: write 4 KiB, fsync, close, rename, fsync dir."""
    d.mkdir(exist_ok=True)
    data = os.urandom(4096)
    counts = [0] * threads
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        n = 0
        try:
            while time.monotonic() < stop_at:
                tmp, final = d / f".tmp.{i}.{n}", d / f"f.{i}.{n}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, data)
                os.fsync(fd)
                os.close(fd)
                os.rename(tmp, final)
                os.fsync(dfd)
                n += 1
        finally:
            os.close(dfd)
        counts[i] = n

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(seconds + 30)
    elapsed = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    res.add(f"machine: durable file creates/s, {threads} thread(s)", "machine",
            sum(counts) / elapsed)


def measure_unlink(d: Path, files: int, res: Results) -> None:
    """Milliseconds per unlink of a 4 KiB file (written and synced first): what
    removing a delivered message costs on the queue disk.  Both MTAs' queue
    managers unlink in their one event loop (the queue file, and the defer log
    of a deferred message), so when other I/O on a shared disk stretches an
    unlink from ~0.08 ms to ~2.5 ms, that alone caps a drain near 200 msg/s."""
    d.mkdir(exist_ok=True)
    data = os.urandom(4096)
    for i in range(files):
        (d / f"f{i}").write_bytes(data)
    os.sync()
    t0 = time.monotonic()
    for i in range(files):
        os.unlink(d / f"f{i}")
    res.add("machine: unlink of a 4 KiB file on the queue disk, ms", "machine",
            1000 * (time.monotonic() - t0) / files)
    shutil.rmtree(d, ignore_errors=True)


def measure_submission(mta, sink_port: int, per_caller: int, res: Results,
                       callers: int = 8) -> None:
    msg = make_body("submission")
    sink = SmtpSink(sink_port).start()
    errors: List[str] = []

    def caller() -> None:
        for _ in range(per_caller):
            r = subprocess.run(mta.sendmail_cmd(RELAY_RCPT), input=msg, capture_output=True,
                               timeout=60, env=mta.sendmail_env())
            if r.returncode != 0:
                errors.append(r.stderr.decode(errors="replace")[-300:])
                return

    try:
        t0 = time.monotonic()
        ths = [threading.Thread(target=caller) for _ in range(callers)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(60 + per_caller * 5)
        elapsed = time.monotonic() - t0
        if errors:
            raise RuntimeError(f"{mta.name} sendmail failed: {errors[0]}")
        n = callers * per_caller
        res.add(f"local submission, {callers} parallel sendmail: msg/s", mta.name, n / elapsed)
        sink.wait_count(n, timeout=60 + n / 10)
        wait_drained(mta, 60)
    finally:
        sink.stop()


def make_body(tag: str) -> bytes:
    line = "x" * 70 + "\n"
    return (f"From: {FROM}\nTo: {RELAY_RCPT}\nSubject: bench {tag}\n\n" + line * 56).encode()


class BenchUser:
    """A real user with a home directory, for Maildir delivery; removed by remove()."""

    def __init__(self, base: Path):
        self.name = f"tbench{os.getpid() % 100000}"
        self.home = base / f"home-{self.name}"
        run(["useradd", "-m", "-d", str(self.home), "-s", "/usr/sbin/nologin", self.name], 30,
            check=True)
        CLEANUPS.append(self.remove)

    def new_count(self) -> int:
        try:
            return sum(1 for _ in os.scandir(self.home / "Maildir" / "new"))
        except OSError:
            return 0

    def empty(self) -> None:
        shutil.rmtree(self.home / "Maildir", ignore_errors=True)

    def remove(self) -> None:
        run(["userdel", "-r", "-f", self.name], 30)


def measure_local(mta, user: BenchUser, count: int, res: Results) -> None:
    user.empty()
    t0 = time.monotonic()
    smtp_source(mta.port, 20, count, f"{user.name}@{LOCAL_DOMAIN}", timeout=60 + count / 10)
    wait_for(lambda: user.new_count() >= count, 60 + count / 10,
             f"{count} messages in {mta.name}'s Maildir", 0.01)
    res.add("local delivery into Maildir (SMTP in, 20 sessions): msg/s", mta.name,
            count / (time.monotonic() - t0))
    wait_drained(mta, 60)
    user.empty()


def hold_sessions(port: int, n: int) -> List[socket.socket]:
    """n SMTP sessions that got the greeting and an EHLO reply, then stay idle."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), 10)
            s.settimeout(20)
            socks.append(s)
            read_reply(s)
            s.sendall(b"EHLO bench.test\r\n")
            read_reply(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def read_reply(s: socket.socket) -> bytes:
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed while reading a reply")
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return buf


def measure_memory(mta, counts: List[int], res: Results, tls: bool = False) -> None:
    """PSS of all the MTA's processes: fresh and idle, then holding N idle
    sessions (with tls: sessions that did STARTTLS, the handshake and EHLO
    again)."""
    what, idle_label = (("idle STARTTLS sessions", "memory (TLS instance): PSS idle, KiB "
                         "(all processes)") if tls else
                        ("idle sessions", "memory: PSS idle, KiB (all processes)"))
    per = "idle session after STARTTLS" if tls else "idle session"
    mta.stop()
    mta.start()
    time.sleep(1.0)
    idle = pss_kib(mta.pids())
    res.add(idle_label, mta.name, idle)
    for n in counts:
        if tls:
            proc = hold_tls_sessions(mta.port, n)
            release = proc.stop  # type: ignore[attr-defined]
        else:
            socks = hold_sessions(mta.port, n)
            release = lambda socks=socks: [s.close() for s in socks]
        try:
            time.sleep(1.0)
            held = pss_kib(mta.pids())
            res.add(f"memory: PSS holding {n} {what}, KiB", mta.name, held)
            res.add(f"memory: PSS per {per} ({n}), KiB", mta.name, (held - idle) / n)
        finally:
            release()
        time.sleep(0.5)
    # Postfix keeps idle smtpd processes for max_idle (100 s): restart both
    # the same way so later measures start from the same state
    mta.stop()
    mta.start()


def time_listing(mta, depth_label: str, res: Results) -> None:
    """Time each listing command; rows pair tern's and Postfix's by kind (json/mailq)."""
    for label, cmd in mta.listings().items():
        kind = "json" if " -j" in label else "mailq"
        t0 = time.monotonic()
        r = run(cmd, 120, env=mta.sendmail_env())
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{label} failed: {r.stderr.decode(errors='replace')[-300:]}")
        res.add(f"deep queue: listing {depth_label} queued ({kind}), s", mta.name, dt)


def fill_queue(mta, count: int, timeout: float) -> float:
    t = smtp_source(mta.port, 20, count, RELAY_RCPT, timeout)
    wait_for(lambda: mta.in_flight() == 0, timeout, f"{mta.name}: all queued mail deferred", 0.2)
    return t


def measure_deep(mta, sink_port: int, depth: int, res: Results) -> None:
    """depth messages queued while the sink is down; list at depth/10 and depth;
    then sink up, flush, time to drain."""
    first = max(1, depth // 10)
    timeout = 120 + depth / 20
    fill_queue(mta, first, timeout)
    time_listing(mta, f"{first}", res)
    fill_queue(mta, depth - first, timeout)
    have = mta.queued()
    if have != depth:
        res.notes.append(f"{mta.name}: deep queue held {have} messages, expected {depth}")
    time_listing(mta, f"{depth}", res)
    sink = SmtpSink(sink_port).start()
    try:
        t0 = time.monotonic()
        mta.flush()
        t_end = sink.wait_count(have, timeout=timeout)
        res.add(f"deep queue: drain {depth} after flush, msg/s", mta.name, have / (t_end - t0))
        wait_drained(mta, 120)
    finally:
        sink.stop()


# ------------------------------------------------------------------ policy

# "relay with policy" rows: the same relay as above, from an outsider (not in
# mynetworks, so the restriction lists run), into an instance with 5 DNS lists
# and a sendmail access map and into the same instance without them; the
# ratio policy/baseline is what the target is about (≥ 0.9).
POLICY_ROW = "relay with policy"
POLICY_SESSIONS = (20, 100)
BL_ZONES = [f"bl{i}.test" for i in range(1, 6)]
POLICY_CLIENT = "127.0.0.1"  # smtp-source cannot bind a source address
POLICY_CLIENT_NAME = "client.bench.test"  # its PTR, and the name's A record
POLICY_MYNETWORKS = "127.0.0.2/32"  # so 127.0.0.1 is an outsider
RELAY_DOMAIN = RELAY_RCPT.split("@", 1)[1]  # sink.test: relay_domains
SENDER_DOMAIN = FROM.split("@", 1)[1]  # bench.test: has an MX record
# the one client address stands for many clients: both MTAs' default of 50
# concurrent connections per client (anvil) would refuse 100 sessions with a 421
POLICY_CONN_LIMIT = "1000"


def free_dns_address() -> Optional[str]:
    """A loopback address 127.53.X.Y whose port 53 (UDP and TCP) is free, or None."""
    rnd = random.Random(os.getpid())
    for _ in range(20):
        addr = f"127.53.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as so:
                    so.bind((addr, 53))
            return addr
        except OSError:
            continue
    return None


class BenchDns:
    """dnsmasq with the policy rows' zones, no upstream, no hosts file.

    Port 53 of a free loopback address (127.53.X.Y) when one can be bound:
    glibc's resolv.conf takes no port, and that is how the Postfix instances
    (their own resolv.conf in a private mount namespace) reach it; otherwise
    127.0.0.1 on a free port, tern only.  answered() is dnsmasq's own
    "queries answered locally" counter (SIGUSR1 writes it to the log): the
    timed runs log no queries; census runs (log_queries) log each one."""

    def __init__(self, work: Path):
        self.dir = work / "dns"
        self.dir.mkdir()
        os.chmod(self.dir, 0o755)
        addr = free_dns_address()
        self.port53 = addr is not None
        self.addr = addr or "127.0.0.1"
        self.port = 53 if addr else free_port()
        self.log = self.dir / "dnsmasq.log"
        self.proc: Optional[subprocess.Popen] = None
        # for the Postfix instances' namespace: this server, and no /etc/hosts
        # entry for 127.0.0.1, so its client name comes from DNS as tern's does
        self.resolv_conf = self.dir / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {self.addr}\noptions attempts:2 timeout:5\n")
        self.hosts = self.dir / "hosts"
        self.hosts.write_text("# bench: no entries (the client's name comes from DNS)\n")
        for f in (self.resolv_conf, self.hosts):
            os.chmod(f, 0o644)
        CLEANUPS.append(self.stop)

    @property
    def server(self) -> str:
        return f"{self.addr}:{self.port}"

    @staticmethod
    def records() -> List[str]:
        return [
            # authoritative NXDOMAIN/NODATA for everything not listed (no upstream)
            "--local=/test/",
            "--local=/127.in-addr.arpa/",
            # PTR 1.0.0.127.in-addr.arpa and A: the client's name is forward-confirmed
            f"--host-record={POLICY_CLIENT_NAME},{POLICY_CLIENT}",
            # the sender's domain exists (accept_unresolvable_domains = no)
            f"--mx-host={SENDER_DOMAIN},mx.{SENDER_DOMAIN},10",
            f"--host-record=mx.{SENDER_DOMAIN},127.0.0.9",
            # one list lists somebody else; the client is listed nowhere
            "--address=/2.0.0.127.bl3.test/127.0.0.2",
            "--txt-record=2.0.0.127.bl3.test,listed by bl3.test",
        ]

    def start(self, log_queries: bool = False) -> "BenchDns":
        self.stop()
        self.log.write_bytes(b"")
        args = ["dnsmasq", "--keep-in-foreground", f"--port={self.port}",
                f"--listen-address={self.addr}", "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--user=root", "--conf-file=/dev/null", "--pid-file=",
                f"--log-facility={self.log}"] + (["--log-queries"] if log_queries else [])
        self.proc = subprocess.Popen(args + self.records(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-500:]}")
            return dns_answer_count(self.addr, self.port, POLICY_CLIENT_NAME, 1) > 0

        wait_for(ready, 10, f"dnsmasq on {self.server}", 0.05)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self.proc = None

    def _counters(self) -> List[int]:
        return [int(n) for n in re.findall(r"queries answered locally (\d+)",
                                           self.log.read_text(errors="replace"))]

    def answered(self) -> int:
        """Queries dnsmasq has answered since it started."""
        seen = len(self._counters())
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_for(lambda: len(self._counters()) > seen, 10, "dnsmasq statistics", 0.02)
        return self._counters()[-1]

    def cpu_seconds(self) -> float:
        """dnsmasq's CPU time (user + system) so far."""
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def census(self, since: int) -> Dict[str, int]:
        """Queries logged after byte offset since, by kind."""
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        out: Dict[str, int] = {}
        for qtype, name in re.findall(r"query\[(\w+)\] (\S+) from", text):
            if name.endswith(".in-addr.arpa"):
                kind = "client address"
            elif name == POLICY_CLIENT_NAME:
                kind = "client name"
            elif any(name.endswith("." + z) for z in BL_ZONES):
                kind = "DNS lists"
            elif name == SENDER_DOMAIN:
                kind = "sender domain"
            else:
                kind = name
            key = f"{qtype} {kind}"
            out[key] = out.get(key, 0) + 1
        return out


def write_policy_tables(d: Path) -> Dict[str, Path]:
    """The policy instances' tables, in d (readable by the MTAs' users):

    access: a sendmail access file of ~1,000 lines (Connect:, From:, To:,
    Spam: FRIEND, untagged), nothing of which matches the bench's traffic
    (client 127.0.0.1 = client.bench.test, sender bench@bench.test,
    recipient rcpt@sink.test); pf-client, pf-sender, pf-rcpt: the same
    entries as Postfix access tables (Postfix has no sendmail access_maps and
    no Spam: FRIEND; RELAY becomes OK, ERROR:... a numeric reply); cidr: a
    short check_client_access table for both."""
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o755)
    sm: List[str] = ["# sendmail access file (generated by bench/bench.py)"]
    pf: Dict[str, List[str]] = {"client": [], "sender": [], "rcpt": []}

    def add(tag: str, key: str, sm_value: str, pf_value: Optional[str], pf_kinds=()) -> None:
        sm.append(f"{tag}{key}\t{sm_value}")
        for k in pf_kinds:
            pf[k].append(f"{key}\t{pf_value}")

    for i in range(150):
        add("Connect:", f"198.51.100.{i + 1}", "REJECT", "REJECT", ["client"])
    for i in range(100):
        add("Connect:", f"10.{i}", "REJECT", "REJECT", ["client"])
    for i in range(50):
        add("Connect:", f"dialup{i}.isp{i % 7}.example", "REJECT", "REJECT", ["client"])
    for i in range(20):
        add("Connect:", f"192.0.2.{i + 1}", "RELAY", "OK", ["client"])
    for i in range(30):
        add("Connect:", f"203.0.113.{i + 1}", f'ERROR:"550 Host 203.0.113.{i + 1} is blocked"',
            f"550 Host 203.0.113.{i + 1} is blocked", ["client"])
    for i in range(150):
        add("From:", f"spammer{i}.example", "REJECT", "REJECT", ["sender"])
    for i in range(50):
        add("From:", f"user{i}@bulk{i % 10}.example", "DISCARD", "DISCARD", ["sender"])
    for i in range(50):
        add("From:", f"friend{i}@partner{i % 5}.example", "OK", "OK", ["sender"])
    for i in range(50):
        text = f"We do not accept mail from promo{i}.example"
        add("From:", f"promo{i}.example", f'ERROR:"550 {text}"', f"550 {text}", ["sender"])
    for i in range(100):
        add("To:", f"partner{i}.example", "RELAY", "OK", ["rcpt"])
    for i in range(100):
        add("To:", f"oldstaff{i}@corp.example", "ERROR:5.1.1:550 User unknown",
            "550 5.1.1 User unknown", ["rcpt"])
    for i in range(75):
        add("Spam:", f"abuse@cust{i}.example", "FRIEND", None)
        add("Spam:", f"postmaster@cust{i}.example", "FRIEND", None)
    for i in range(50):  # untagged: Connect: and From: (sendmail), client and sender (Postfix)
        add("", f"spam{i}.example", "REJECT", "REJECT", ["client", "sender"])
    files = {"access": d / "access", "cidr": d / "clients.cidr"}
    files["access"].write_text("\n".join(sm) + "\n")
    for k, lines in pf.items():
        files[f"pf-{k}"] = d / f"pf-{k}"
        files[f"pf-{k}"].write_text("\n".join(lines) + "\n")
    files["cidr"].write_text("# check_client_access cidr table\n"
                             "192.0.2.0/24\tOK\n"
                             "198.51.100.0/24\tREJECT\n"
                             "203.0.113.128/25\tREJECT Go away\n"
                             "10.0.0.0/8\tDUNNO\n"
                             "100.64.0.0/10\tREJECT Carrier-grade NAT\n")
    for f in files.values():
        os.chmod(f, 0o644)
    return files


def policy_lines(files: Dict[str, Path]) -> int:
    return sum(1 for line in files["access"].read_text().splitlines()
               if line and not line.startswith("#"))


def tern_policy_params(dns: BenchDns, files: Optional[Dict[str, Path]]) -> Dict[str, str]:
    """tern.conf for the policy rows: with files, the restriction lists and the
    access map (the "policy" instance); without, none (the "baseline")."""
    p = {"mynetworks": POLICY_MYNETWORKS, "relay_domains": RELAY_DOMAIN,
         "dns_servers": dns.server, "smtpd_peername_lookup": "yes",
         "accept_unresolvable_domains": "yes",
         "smtpd_client_connection_count_limit": POLICY_CONN_LIMIT}
    if files:
        p.update({
            "accept_unresolvable_domains": "no",
            "access_maps": f"hash:{files['access']}",
            "smtpd_client_restrictions": ", ".join(
                [f"check_client_access cidr:{files['cidr']}"]
                + [f"reject_rbl_client {z}" for z in BL_ZONES]),
            "smtpd_sender_restrictions": "reject_non_fqdn_sender, reject_unknown_sender_domain",
            "smtpd_recipient_restrictions": "reject_non_fqdn_recipient",
        })
    return p


def postfix_policy_params(files: Optional[Dict[str, Path]]) -> Dict[str, str]:
    p = {"mynetworks": POLICY_MYNETWORKS, "relay_domains": RELAY_DOMAIN,
         "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
         "smtpd_client_connection_count_limit": POLICY_CONN_LIMIT}
    if files:
        p.update({
            "smtpd_client_restrictions": ", ".join(
                [f"check_client_access cidr:{files['cidr']}",
                 f"check_client_access hash:{files['pf-client']}"]
                + [f"reject_rbl_client {z}" for z in BL_ZONES]),
            "smtpd_sender_restrictions": f"check_sender_access hash:{files['pf-sender']}, "
                                         "reject_non_fqdn_sender, reject_unknown_sender_domain",
            "smtpd_recipient_restrictions": f"check_recipient_access hash:{files['pf-rcpt']}, "
                                            "reject_non_fqdn_recipient",
        })
    return p


def make_policy_mtas(work: Path, sink_port: int, dns: BenchDns,
                     res: Results) -> List[Tuple[object, object]]:
    """(baseline, policy) pairs: tern's, and Postfix's when it can reach the DNS."""
    files = write_policy_tables(work / "policy-tables")
    pairs: List[Tuple[object, object]] = []
    tb = Tern(work, sink_port, name="tern baseline", extra=tern_policy_params(dns, None))
    tp = Tern(work, sink_port, name="tern policy", extra=tern_policy_params(dns, files))
    r = run([str(TERN), "-c", str(tp.t.etc), "map", f"hash:{files['access']}"], 60)
    if r.returncode != 0:
        raise RuntimeError(f"tern map hash:{files['access']}: {r.stderr.decode(errors='replace')}")
    pairs.append((tb, tp))
    res.notes.append(
        "Policy rows, tern: both instances have mynetworks = "
        f"{POLICY_MYNETWORKS} (the client {POLICY_CLIENT} is an outsider), relay_domains = "
        f"{RELAY_DOMAIN}, dns_servers = {dns.server}, smtpd_peername_lookup = yes (PTR and "
        "forward confirmation of the client, before the greeting); the baseline has no "
        "restriction lists, no access_maps and accept_unresolvable_domains = yes; the policy "
        f"instance has access_maps = hash:access ({policy_lines(files)} lines: Connect:, From:, "
        "To:, Spam: FRIEND, untagged; none matches), smtpd_client_restrictions = "
        "check_client_access cidr:clients.cidr (5 lines), reject_rbl_client bl1.test ... "
        "bl5.test; smtpd_sender_restrictions = reject_non_fqdn_sender, "
        "reject_unknown_sender_domain; smtpd_recipient_restrictions = "
        "reject_non_fqdn_recipient; accept_unresolvable_domains = no (the default).")
    if not dns.port53:
        res.notes.append("Postfix is left out of the policy rows: no loopback address with a free "
                         "port 53 for the DNS server (Postfix uses the system resolver, whose "
                         "resolv.conf takes no port).")
        return pairs
    ns = {"/etc/resolv.conf": dns.resolv_conf, "/etc/hosts": dns.hosts}
    pb = Postfix(work, sink_port, name="Postfix baseline", extra=postfix_policy_params(None),
                 namespace=ns)
    pp = Postfix(work, sink_port, name="Postfix policy", extra=postfix_policy_params(files),
                 namespace=ns)
    for k in ("pf-client", "pf-sender", "pf-rcpt"):
        r = run(["/usr/sbin/postmap", "-c", str(pp.etc), f"hash:{files[k]}"], 60)
        if r.returncode != 0:
            raise RuntimeError(f"postmap hash:{files[k]}: {r.stderr.decode(errors='replace')}")
    pairs.append((pb, pp))
    res.notes.append(
        "Policy rows, Postfix: the same mynetworks and relay_domains, smtpd_relay_restrictions = "
        "permit_mynetworks, reject_unauth_destination; its resolver is the system's (glibc), "
        "so each instance runs in a private mount namespace (unshare -m) where "
        f"/etc/resolv.conf says nameserver {dns.addr} and /etc/hosts is empty (the system "
        "files are untouched); the policy instance has the same cidr table, the access file's "
        "entries as check_client_access, check_sender_access and check_recipient_access "
        "hash: tables (postmap; no Spam: FRIEND), the same 5 reject_rbl_client and the same "
        "sender and recipient restrictions; the baseline has no restriction lists (Postfix "
        "has no accept_unresolvable_domains: reject_unknown_sender_domain is that check).")
    return pairs


def measure_policy_relay(mta, sink_port: int, sessions: int, count: int, dns: BenchDns,
                         res: Results) -> None:
    """measure_relay's rows under POLICY_ROW, and the DNS queries answered per message."""
    row = f"{POLICY_ROW}, {sessions} sessions"
    q0 = dns.answered()
    sink = SmtpSink(sink_port).start()
    try:
        t0, cpu0 = time.monotonic(), dns.cpu_seconds()
        accept = smtp_source(mta.port, sessions, count, RELAY_RCPT, timeout=60 + count / 10)
        cpu1 = dns.cpu_seconds()
        t_end = sink.wait_count(count, timeout=60 + count / 10)
        res.add(f"{row}: accepted msg/s", mta.name, count / accept)
        res.add(f"{row}: end-to-end msg/s", mta.name, count / (t_end - t0))
        wait_drained(mta, 60)
    finally:
        sink.stop()
    res.add(f"{row}: DNS queries answered per message", mta.name, (dns.answered() - q0) / count)
    res.add(f"{row}: dnsmasq CPU while accepting, % of one CPU", mta.name,
            100 * (cpu1 - cpu0) / accept)


def policy_census(pairs, sink_port: int, count: int, dns: BenchDns, res: Results) -> None:
    """Untimed: count messages through every policy-row instance, one session,
    with dnsmasq logging each query; the note says which queries a message costs.
    smtp-source fails on any refusal, so this also checks that the lists let the
    bench's mail through."""
    dns.start(log_queries=True)
    try:
        parts = []
        for pair in pairs:
            for mta in pair:
                since = dns.log_size()
                sink = SmtpSink(sink_port).start()
                try:
                    smtp_source(mta.port, 1, count, RELAY_RCPT, timeout=60 + count)
                    sink.wait_count(count, timeout=60)
                    wait_drained(mta, 60)
                finally:
                    sink.stop()
                time.sleep(0.2)  # dnsmasq's last log lines
                c = dns.census(since)
                total = sum(c.values()) / count
                detail = ", ".join(f"{n / count:.3g} {k}" for k, n in sorted(c.items()))
                parts.append(f"{mta.name}: {total:.3g} ({detail or 'none'})")
        res.notes.append(f"DNS queries per message by kind ({count} messages, 1 session, "
                         "dnsmasq --log-queries, untimed): " + "; ".join(parts) + ".")
    finally:
        dns.start(log_queries=False)


def measure_policy(pairs, sink_port: int, msgs: int, dns: BenchDns, res: Results) -> None:
    """One repetition of the policy rows: baseline then policy, for each MTA."""
    for s in POLICY_SESSIONS:
        for base, pol in pairs:
            measure_policy_relay(base, sink_port, s, msgs, dns, res)
            measure_policy_relay(pol, sink_port, s, msgs, dns, res)


def render_policy(res: Results) -> List[str]:
    rows = [r for r in res.rows if r.startswith(POLICY_ROW)]
    if not rows:
        return []
    out = ["", "## Relay with policy: 5 DNS lists and a sendmail access map, against the same "
           "instance without them", "",
           "| measure | tern baseline | tern policy | tern policy/baseline | Postfix baseline | "
           "Postfix policy | Postfix policy/baseline | target |",
           "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        v = res.values[row]
        cells = []
        for who in ("tern", "Postfix"):
            b, p = v.get(f"{who} baseline"), v.get(f"{who} policy")
            ratio = "-"
            if b and p and "msg/s" in row:
                ratios = [y / x for x, y in zip(b, p) if x]
                if ratios:
                    ratio = cell(ratios)
            cells += [cell(b), cell(p), ratio]
        target = "tern ≥ 0.9" if "msg/s" in row else ""
        out.append(f"| {row} | " + " | ".join(cells) + f" | {target} |")
    out.append("")
    out.append("The ratio is policy/baseline per repetition (baseline and policy run one after "
               "the other in each repetition): 1 means the lists cost nothing; the issue's "
               "target is within 10% (≥ 0.9) at 20 and 100 sessions.")
    return out


# ------------------------------------------------------------------ STARTTLS drain

# "deep-queue drain to a STARTTLS next hop" rows (issue 11): N messages queued
# while the next hops are down, then the sink (bench/tls_sink) comes up, the
# queue is flushed, and the drain is timed until the sink has all N.  Each
# destination domain is its own next hop, a loopback address of its own, so
# the MTAs keep one set of connections and one TLS session per next hop.
TLSDRAIN_ROW = "drain to STARTTLS"
TLSDRAIN_HOPS = 5
TLS_SINK = BUILD / "bench" / "tls_sink"  # bench/tls_sink.c, built with tern
TLSDRAIN_CONCURRENCY = "20"  # per destination, both MTAs (their default)
PF_NO_REUSE = "Postfix, no TLS connection reuse"
PF_TLSPROXY = "tlsproxy  unix  -       -       n       -       0       tlsproxy\n"


def tlsdrain_domains() -> List[str]:
    return [f"d{i + 1}.drain.test" for i in range(TLSDRAIN_HOPS)]


def tlsdrain_hop(i: int) -> str:
    """The next hop of the i-th domain: 127.0.0.2, 127.0.0.3, ..."""
    return f"127.0.0.{i + 2}"


class TlsSink(SmtpSink):
    """bench/tls_sink on every next hop's address (same port); summary() has its
    counters (messages, tls_messages, connections, handshakes, resumed, cpu_s)
    once stopped."""

    def __init__(self, port: int, tls: TlsFiles, errors: Path):
        super().__init__(port)
        self.tls, self.errors = tls, errors
        self.summary: Dict[str, float] = {}
        self.reader: Optional[threading.Thread] = None

    def start(self) -> "TlsSink":
        addrs = [f"{tlsdrain_hop(i)}:{self.port}" for i in range(TLSDRAIN_HOPS)]
        with open(self.errors, "ab") as err:
            self.proc = subprocess.Popen(
                [str(TLS_SINK), "-c", str(self.tls.cert), "-k", str(self.tls.key)] + addrs,
                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        CLEANUPS.append(self.stop)
        wait_for(self._listening, 10, f"tls_sink on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"tls_sink exited {self.proc.returncode}: "
                               f"{self.errors.read_text(errors='replace')[-300:]}")
        try:
            with socket.create_connection((tlsdrain_hop(0), self.port), 1) as s:
                s.recv(64)
            return True
        except OSError:
            return False

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(b"mesg="):
                self.count = int(line[5:])
            elif line.startswith(b"messages="):
                self.summary = {k: float(v) for k, v in
                                (f.split("=", 1) for f in line.decode().split())}

    def stop(self) -> None:
        super().stop()
        if self.reader:
            self.reader.join(5)
            self.reader = None


def tlsdrain_transport(d: Path, sink_port: int) -> Path:
    """transport_maps (texthash, the same file for both MTAs): domain i to
    smtp:[127.0.0.(i+2)]:sink_port."""
    f = d / "tlsdrain-transport"
    f.write_text("".join(f"{dom}\tsmtp:[{tlsdrain_hop(i)}]:{sink_port}\n"
                         for i, dom in enumerate(tlsdrain_domains())))
    os.chmod(f, 0o644)
    return f


def make_tlsdrain_mtas(work: Path, sink_port: int, quick: bool, tmpfs: bool,
                       res: Results) -> List:
    """tern, Postfix with TLS connection reuse and (not in --quick) Postfix
    without it, each its own instance routing the drain domains to the sink;
    tmpfs: each queue on a tmpfs of its own."""
    transport = tlsdrain_transport(work, sink_port)
    common = {"transport_maps": f"texthash:{transport}",
              "default_destination_concurrency_limit": TLSDRAIN_CONCURRENCY,
              "smtp_tls_security_level": "may", "smtp_tls_loglevel": "1"}
    tern = Tern(work, sink_port, name="tern", extra=dict(common))
    pf = {**common, "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache"}
    services = PF_TLSMGR + PF_TLSPROXY
    mtas = [tern, Postfix(work, sink_port, extra={**pf, "smtp_tls_connection_reuse": "yes"},
                          services=services)]
    if not quick:
        mtas.append(Postfix(work, sink_port, name=PF_NO_REUSE,
                            extra={**pf, "smtp_tls_connection_reuse": "no"}, services=services))
    if tmpfs:
        for m in mtas:
            (m.t if isinstance(m, Tern) else m).mount_tmpfs("2g")
        res.notes.append("STARTTLS drain: --tlsdrain-tmpfs: every instance's queue is on a "
                         "tmpfs of its own (no disk: what is left is CPU and protocol).")
    res.notes.append(
        f"STARTTLS drain: {TLSDRAIN_HOPS} destination domains (d1..d{TLSDRAIN_HOPS}.drain.test), "
        "each routed by transport_maps (texthash, one file for both MTAs) to its own next hop "
        f"smtp:[127.0.0.2..{1 + TLSDRAIN_HOPS}]:PORT, all served by one bench/tls_sink (a new "
        "one per drain, so no TLS session survives from an earlier drain); both MTAs: "
        f"default_destination_concurrency_limit = {TLSDRAIN_CONCURRENCY}, "
        "smtp_tls_security_level = may, smtp_tls_loglevel = 1, their connection caches "
        "as shipped (tern: smtp_connection_cache_time_limit = 2s, "
        "smtp_connection_reuse_count_limit = 100, in-process TLS session cache; "
        "Postfix: smtp_connection_cache_on_demand = yes, smtp_connection_cache_time_limit = "
        "2s, no reuse count limit); Postfix also smtp_tls_session_cache_database = btree "
        "(through tlsmgr) and smtp_tls_connection_reuse = yes (the SMTP client hands TLS to "
        f"tlsproxy so TLS connections can be cached; the default is no: \"{PF_NO_REUSE}\" "
        "has the default, every message on a new connection).")
    return mtas


def cpu_seconds_of(pids: List[int]) -> float:
    """CPU time of the processes and of every child they reaped (utime, stime,
    cutime, cstime): the difference across a run counts processes that came
    and went in it."""
    ticks = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in f[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def maillog_of(mta) -> Path:
    return mta.t.maillog if isinstance(mta, Tern) else mta.dir / "maillog"


def read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def fill_tlsdrain(mta, count: int) -> int:
    """count messages queued and deferred (the next hops are down), spread over
    the drain domains; the number queued."""
    doms = tlsdrain_domains()
    timeout = 120 + count / 20
    for i, dom in enumerate(doms):
        n = count // len(doms) + (1 if i < count % len(doms) else 0)
        smtp_source(mta.port, 20, n, f"rcpt@{dom}", timeout)
    wait_for(lambda: mta.in_flight() == 0, timeout, f"{mta.name}: all queued mail deferred", 0.2)
    return mta.queued()


class TlsLogCount:
    """The TLS lines an MTA logged during a drain (smtp_tls_loglevel = 1)."""

    def __init__(self, text: str):
        est = [ln for ln in text.splitlines() if "TLS connection established to" in ln]
        # with smtp_tls_connection_reuse, Postfix's tlsproxy does the handshake
        # and logs it, and the smtp process logs the same connection again
        proxied = [ln for ln in est if "/tlsproxy[" in ln]
        self.handshakes = len(proxied or est)
        self.resumed = sum(1 for ln in est if ln.rstrip().endswith("(resumed)"))  # tern's mark
        self.reused = text.count("TLS connection reused to")  # Postfix's tlsproxy reuse
        self.sent = text.count("status=sent")


def measure_tlsdrain(mta, sink_port: int, tls: TlsFiles, count: int, work: Path,
                     res: Results, totals: Dict[str, List[int]]) -> None:
    """Fill (next hops down), then sink up, flush, time until the sink has them all."""
    have = fill_tlsdrain(mta, count)
    if have != count:
        res.notes.append(f"{mta.name}: the STARTTLS drain queue held {have} messages, "
                         f"expected {count}")
    maillog = maillog_of(mta)
    since = file_size(maillog)
    sink = TlsSink(sink_port, tls, work / "tls_sink.err").start()
    timeout = 120 + have / 20
    try:
        cpu0 = cpu_seconds_of(mta.pids())
        t0 = time.monotonic()
        mta.flush()
        t_end = sink.wait_count(have, timeout=timeout)
        wait_drained(mta, timeout)
        cpu1 = cpu_seconds_of(mta.pids())
    finally:
        sink.stop()
    # the last delivery lines may still be on their way to the log
    try:
        wait_for(lambda: TlsLogCount(read_from(maillog, since)).sent >= have, 20,
                 f"{mta.name}: {have} status=sent lines", 0.2)
    except AssertionError:
        res.notes.append(f"{mta.name}: fewer than {have} status=sent lines in a drain's log")
    logged = TlsLogCount(read_from(maillog, since))
    s = sink.summary
    row = f"{TLSDRAIN_ROW}: {count} queued"
    res.add(f"{row}, drain msg/s", mta.name, have / (t_end - t0))
    res.add(f"{row}, TLS handshakes per message (MTA log)", mta.name, logged.handshakes / have)
    if s:
        full = s["handshakes"] - s["resumed"]
        res.add(f"{row}, full handshakes per message (sink)", mta.name, full / have)
        res.add(f"{row}, resumed handshakes per message (sink)", mta.name, s["resumed"] / have)
        res.add(f"{row}, connections per message (sink)", mta.name, s["connections"] / have)
        res.add(f"{row}, delivered over TLS, %", mta.name, 100 * s["tls_messages"] / have)
        res.add(f"{row}, sink CPU, % of one CPU", mta.name,
                100 * s["cpu_s"] / max(t_end - t0, 1e-9))
    res.add(f"{row}, MTA CPU per message, ms", mta.name, 1000 * (cpu1 - cpu0) / have)
    t = totals.setdefault(mta.name, [0] * 7)
    for k, v in enumerate([have, logged.handshakes, logged.resumed, logged.reused,
                           int(s.get("handshakes", 0)), int(s.get("resumed", 0)),
                           int(s.get("connections", 0))]):
        t[k] += v


def tlsdrain_notes(totals: Dict[str, List[int]]) -> List[str]:
    if not totals:
        return []
    parts = []
    for who, (msgs, hs, res_l, reused, s_hs, s_res, conns) in totals.items():
        parts.append(f"{who}: {msgs} messages, {hs} handshakes logged ({res_l} marked resumed"
                     f"{f', {reused} TLS connections reused' if reused else ''}); the sink saw "
                     f"{conns} connections, {s_hs} handshakes, {s_res} of them resumed")
    return ["STARTTLS drain, all repetitions: " + "; ".join(parts) + "."]


def render_tlsdrain(res: Results) -> List[str]:
    rows = [r for r in res.rows if r.startswith(TLSDRAIN_ROW)]
    if not rows:
        return []
    whos = [w for w in ("tern", "Postfix", PF_NO_REUSE)
            if any(w in res.values[r] for r in rows)]
    pfs = [w for w in whos if w != "tern"]
    head = ["measure"] + whos + [f"tern/{w}" for w in pfs] + ["target"]
    out = ["", "## Deep-queue drain to a STARTTLS next hop", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        v = res.values[row]
        cells = [cell(v.get(w)) for w in whos]
        for w in pfs:
            a, b = v.get("tern"), v.get(w)
            ratios = [x / y for x, y in zip(a or [], b or []) if y]
            cells.append(cell(ratios) if ratios and ("msg/s" in row or "CPU per" in row)
                         else "-")
        target = "ratio ≥ 2 (Postfix)" if row.endswith("drain msg/s") else ""
        if "handshakes per message (MTA log)" in row:
            target = "far below 1"
        out.append(f"| {row} | " + " | ".join(cells) + f" | {target} |")
    out.append("")
    out.append("Handshakes per message: TLS handshakes the MTA logged (`... TLS connection "
               "established to ...`) over the messages drained; the sink's own count splits "
               "them into full and resumed (SSL_session_reused).  Connections per message "
               "shows the connection cache.  MTA CPU: every process of the instance, reaped "
               "children included, from the flush until the queue was empty.")
    return out


# ------------------------------------------------------------------ milter

# "relay at 20 sessions through one pass-through milter, tern vs Postfix with
# the same milter" (issue 12): each MTA relays to the sink through
# smtpd_milters = unix:SOCKET, one bench/bench_milter per MTA (libmilter, a
# thread per connection), against the same MTA without a milter in the same
# repetition.
MILTER_ROW = "relay through one milter"
MILTER_SESSIONS = 20
BENCH_MILTER = BUILD / "bench" / "bench_milter"  # bench/bench_milter.c, built with tern
MILTER_PARAMS = {"milter_default_action": "tempfail", "milter_protocol": "6"}


class BenchMilter:
    """bench/bench_milter on unix:SOCKET; report() is its counters (SIGUSR1)."""

    def __init__(self, sock: Path):
        self.sock = sock
        self.spec = f"unix:{sock}"
        self.lines: List[str] = []
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "BenchMilter":
        self.proc = subprocess.Popen([str(BENCH_MILTER), self.spec], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: any(ln.startswith("listening") for ln in self.lines), 10,
                 f"bench_milter on {self.spec}")
        CLEANUPS.append(self.stop)
        return self

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").strip())

    def report(self) -> Dict[str, float]:
        """The counters now: messages (end of message callbacks), cpu_s, ..."""
        n = len(self.lines)
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: len(self.lines) > n, 10, "bench_milter's report", 0.01)
        return {k: float(v) for k, v in (kv.split("=", 1) for kv in self.lines[n].split())}

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None


def make_milter_mtas(work: Path, sink_port: int, res: Results) -> List[Tuple]:
    """(MTA without a milter, MTA with one, its BenchMilter) for tern and
    Postfix, configured as the plain rows."""
    triples: List[Tuple] = []
    for who in ("tern", "Postfix"):
        milter = BenchMilter(work / f"milter-{who.lower()}.sock").start()
        extra = dict(MILTER_PARAMS, smtpd_milters=milter.spec)
        cls = Tern if who == "tern" else Postfix
        triples.append((cls(work, sink_port), cls(work, sink_port, extra=extra), milter))
    res.notes.append(
        f"Milter rows: {MILTER_SESSIONS} sessions, smtp-source (one message per connection) "
        "relayed to smtp-sink, each MTA as in the plain rows plus smtpd_milters = unix:SOCKET, "
        "milter_default_action = tempfail, milter_protocol = 6; one bench/bench_milter "
        "(libmilter, a thread per connection, backlog 256) per MTA, callbacks connect, helo, "
        "envfrom, envrcpt, header, eoh, body, eom, abort, close, all CONTINUE, no "
        "modifications.  The \"no milter\" rows are a second instance of the same MTA without "
        "smtpd_milters, measured just before.  CPU per message: every process of the "
        "instance, reaped children included, from the start of smtp-source until the queue "
        "was empty; the milter's own CPU separately.")
    return triples


def measure_milter_relay(mta, sink_port: int, count: int, label: str, res: Results,
                         milter: Optional[BenchMilter] = None) -> float:
    """measure_relay at MILTER_SESSIONS under MILTER_ROW, with the MTA's CPU per
    message (and the milter's, which must have seen every message); the
    end-to-end msg/s."""
    row = f"{MILTER_ROW}, {MILTER_SESSIONS} sessions, {label}"
    m0 = milter.report() if milter else {}
    sink = SmtpSink(sink_port).start()
    timeout = 60 + count / 10
    try:
        cpu0, t0 = cpu_seconds_of(mta.pids()), time.monotonic()
        accept = smtp_source(mta.port, MILTER_SESSIONS, count, RELAY_RCPT, timeout)
        t_end = sink.wait_count(count, timeout)
        wait_drained(mta, 60)
        cpu1 = cpu_seconds_of(mta.pids())
    finally:
        sink.stop()
    e2e = count / (t_end - t0)
    res.add(f"{row}: accepted msg/s", mta.name, count / accept)
    res.add(f"{row}: end-to-end msg/s", mta.name, e2e)
    res.add(f"{row}: MTA CPU per message, ms", mta.name, 1000 * (cpu1 - cpu0) / count)
    if milter:
        m1 = milter.report()
        seen = m1["messages"] - m0["messages"]
        if seen != count:
            raise RuntimeError(f"{mta.name}: the milter saw {seen:.0f} of {count} messages")
        res.add(f"{row}: milter CPU per message, ms", mta.name,
                1000 * (m1["cpu_s"] - m0["cpu_s"]) / count)
    return e2e


def measure_milter(triples, sink_port: int, msgs: int, res: Results) -> None:
    """One repetition: for each MTA, without then with the milter."""
    for plain, filtered, milter in triples:
        base = measure_milter_relay(plain, sink_port, msgs, "no milter", res)
        with_milter = measure_milter_relay(filtered, sink_port, msgs, "one milter", res, milter)
        res.add(f"{MILTER_ROW}, {MILTER_SESSIONS} sessions: end-to-end with milter / without",
                plain.name, with_milter / base)


def render_milter(res: Results) -> List[str]:
    rows = [r for r in res.rows if r.startswith(MILTER_ROW)]
    if not rows:
        return []
    out = ["", f"## Relay at {MILTER_SESSIONS} sessions through one pass-through milter", "",
           "| measure | tern | Postfix | tern/Postfix | target |", "|---|---|---|---|---|"]
    for row in rows:
        v = res.values[row]
        a, b = v.get("tern"), v.get("Postfix")
        ratios = [x / y for x, y in zip(a or [], b or []) if y]
        ratio = cell(ratios) if ratios and ("msg/s" in row or "CPU per" in row) else "-"
        target = "ratio ≥ 2" if "one milter: end-to-end" in row else ""
        out.append(f"| {row} | {cell(a)} | {cell(b)} | {ratio} | {target} |")
    out.append("")
    out.append("tern/Postfix per repetition: > 1 is better for tern in msg/s rows, < 1 in CPU "
               "rows.  The issue's target: tern ≥ 2× Postfix end-to-end through the milter.")
    return out


# ------------------------------------------------------------------ report

# row prefix -> (better: "high"|"low", target text)
TARGETS = [
    ("relay 1 sessions: end", "high", "-"),
    ("relay 20 sessions: end", "high", "ratio ≥ 2"),
    ("relay 100 sessions: end", "high", "ratio ≥ 2"),
    ("memory: PSS per idle session", "low", "≤ 64 KiB"),
    ("deep queue: drain", "high", "ratio ≥ 2"),
    ("local submission", "high", "ratio ≥ 1"),
    ("local delivery", "high", "ratio ≥ 1"),
]


def target_of(row: str, depth: int) -> str:
    if row.startswith(f"deep queue: listing {depth} "):
        return "tern < 1 s"
    if row.startswith("relay with STARTTLS, "):
        if "end-to-end" in row and not row.startswith("relay with STARTTLS, 1 "):
            return "ratio ≥ 2"
        return "-" if "end-to-end" in row else ""
    for prefix, _better, text in TARGETS:
        if row.startswith(prefix):
            return text
    return ""


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def cell(vals: Optional[List[float]]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt(vals[0])
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"


def render(res: Results, meta: List[str], depth: int) -> str:
    out = ["# tern vs Postfix — bench/run.sh", ""] + meta + [""]
    rows = [r for r in res.rows if not r.startswith((POLICY_ROW, TLSDRAIN_ROW, MILTER_ROW))]
    if rows:
        out.append("| measure | tern | Postfix | tern/Postfix | target |")
        out.append("|---|---|---|---|---|")
    machine = []
    for row in rows:
        v = res.values[row]
        if "machine" in v:
            machine.append(f"| {row} | {cell(v['machine'])} | | | |")
            continue
        a, b = v.get("tern"), v.get("Postfix")
        ratio = "-"
        if a and b:
            ratios = [x / y for x, y in zip(a, b) if y]
            if ratios:
                ratio = cell(ratios)
        out.append(f"| {row} | {cell(a)} | {cell(b)} | {ratio} | {target_of(row, depth)} |")
    out += machine
    out += render_policy(res)
    out += render_tlsdrain(res)
    out += render_milter(res)
    out.append("")
    out.append("Cells: median (min–max) over the repetitions; the ratio column is the median of "
               "the per-repetition ratios (min–max).")
    out.append("Durability as shipped: tern fsyncs the queue file, renames it and fsyncs the "
               "directory before the 250; Postfix fsyncs the queue file, no directory fsync.")
    out += [f"Note: {n}" for n in res.notes]
    return "\n".join(out) + "\n"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_pressure() -> str:
    """The share of the last minute some task waited for a CPU (PSI), e.g. "43%"."""
    try:
        m = re.search(r"^some .*avg60=([\d.]+)", Path("/proc/pressure/cpu").read_text(), re.M)
    except OSError:
        return "-"
    return f"{float(m.group(1)):.0f}%" if m else "-"


def versions() -> str:
    r = run(["/usr/sbin/postconf", "-d", "-h", "mail_version"], 30)
    pf = r.stdout.decode().strip()
    t = run([str(TERN), "version"], 30).stdout.decode().strip()
    return f"{t or 'tern ?'} ({BUILD.name}), Postfix {pf}"


def measure_plain(mtas, user: "BenchUser", work: Path, sink_port: int, msgs: int,
                  fsync_secs: float, sub_per_caller: int, local_count: int, sessions: List[int],
                  depth: int, res: Results) -> None:
    """One repetition of every row without TLS (tern then Postfix in each)."""
    for s in (1, 20, 100):
        measure_machine_relay(sink_port, s, msgs, res)
        for m in mtas:
            measure_relay(m, sink_port, s, msgs, res)
    for th in (1, 8):
        measure_fsync(work / "fsync", th, fsync_secs, res)
    for m in mtas:
        measure_submission(m, sink_port, sub_per_caller, res)
    for m in mtas:
        measure_local(m, user, local_count, res)
    for m in mtas:
        measure_memory(m, sessions, res)
    for m in mtas:
        measure_deep(m, sink_port, depth, res)


# ------------------------------------------------------------------ main


def cleanup() -> None:
    while CLEANUPS:
        fn = CLEANUPS.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning up the rest
            log(f"cleanup: {e}")


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition, tiny counts")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    ap.add_argument("--messages", type=int, help="messages per relay run (default 2000)")
    ap.add_argument("--depth", type=int, help="deep queue depth (default 20000)")
    ap.add_argument("--sessions", help="idle session counts, comma-separated (default 200,2000)")
    ap.add_argument("--tls-sessions",
                    help="idle STARTTLS session counts, comma-separated (default 200,2000)")
    ap.add_argument("--tlsdrain", type=int,
                    help="messages queued for the STARTTLS drain (default 20000, --quick 200)")
    ap.add_argument("--tlsdrain-tmpfs", action="store_true",
                    help="the STARTTLS drain's queues on tmpfs (CPU and protocol only)")
    ap.add_argument("--only", choices=("plain", "tls", "policy", "tlsdrain", "milter"),
                    help="only the rows without TLS, only the STARTTLS rows, only the "
                    "relay with policy rows (5 DNS lists and an access map, against none), "
                    "only the deep-queue drain to a STARTTLS next hop, or only the relay "
                    "through one pass-through milter")
    ap.add_argument("--out", default=None,
                    help="results file (default bench/results/latest.md; --quick: quick.md; "
                    "--only X: X.md)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench.py: run as root (Postfix's master, useradd, Maildir delivery)", file=sys.stderr)
        return 2
    q = args.quick
    if args.out is None:  # a smoke run or a partial one never replaces the real results
        name = "quick.md" if q else f"{args.only}.md" if args.only else "latest.md"
        args.out = str(REPO / "bench" / "results" / name)
    reps = args.reps or (1 if q else 3)
    msgs = args.messages or (100 if q else 2000)
    depth = args.depth or (200 if q else 20000)
    sub_per_caller = 5 if q else 50
    local_count = 50 if q else 1000
    sessions = [20] if q else [200, 2000]
    if args.sessions:
        sessions = [int(x) for x in args.sessions.split(",")]
    tls_msgs = args.messages or (40 if q else 2000)
    tls_sessions = [20] if q else [200, 2000]
    if args.tls_sessions:
        tls_sessions = [int(x) for x in args.tls_sessions.split(",")]
    do_plain, do_tls = args.only in (None, "plain"), args.only in (None, "tls")
    do_policy = args.only in (None, "policy")
    do_tlsdrain = args.only in (None, "tlsdrain")
    do_milter = args.only in (None, "milter")
    tlsdrain_msgs = args.tlsdrain or (200 if q else 20000)
    census_msgs = 5 if q else 20
    for need, prog, dev in ((do_tls, TLS_SOURCE, "libssl-dev"),
                            (do_tlsdrain, TLS_SINK, "libssl-dev"),
                            (do_milter, BENCH_MILTER, "libmilter-dev")):
        if need and not prog.exists():
            print(f"bench.py: {prog} missing (built by meson with {dev})", file=sys.stderr)
            return 2
    fsync_secs = 0.5 if q else 2.0

    signal.signal(signal.SIGTERM, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    work = Path(tempfile.mkdtemp(prefix="tern-bench-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    CLEANUPS.append(lambda: shutil.rmtree(work, ignore_errors=True))
    res = Results()
    started = time.time()
    load_before, pressure_before = loadavg(), cpu_pressure()
    try:
        sink_port = free_port()
        mtas: List = []
        user = None
        if do_plain:
            user = BenchUser(work)
            mtas = [Tern(work, sink_port), Postfix(work, sink_port)]
            for m in mtas:
                m.start()
            log(f"work dir {work}; tern on {mtas[0].port}, Postfix on {mtas[1].port}, "
                f"sink {sink_port}")
        tls_mtas: List = []
        stats = TlsStats()
        if do_tls:
            # separate instances with STARTTLS, so the rows above keep their configuration
            tls = TlsFiles(work)
            if tern_has_tls():
                tls_mtas.append(Tern(work, sink_port, tls=tls))
            else:
                res.notes.append("tern: this build has no smtpd_tls_cert_file parameter (no TLS "
                                 "server yet): its STARTTLS rows are left empty.")
            tls_mtas.append(Postfix(work, sink_port, tls=tls))
            for m in list(tls_mtas):
                m.start()
                if not offers_starttls(m.port):
                    res.notes.append(f"{m.name}: EHLO lists no STARTTLS: its STARTTLS rows are "
                                     "left empty.")
                    m.stop()
                    tls_mtas.remove(m)
            log("STARTTLS instances: " + ", ".join(f"{m.name} on {m.port}" for m in tls_mtas))
        policy_pairs: List = []
        dns = None
        if do_policy:
            # four more instances (baseline and policy, tern and Postfix) and their DNS
            dns = BenchDns(work).start()
            policy_pairs = make_policy_mtas(work, sink_port, dns, res)
            for pair in policy_pairs:
                for m in pair:
                    m.start()
            log(f"policy instances (DNS {dns.server}): " + ", ".join(
                f"{m.name} on {m.port}" for pair in policy_pairs for m in pair))
            policy_census(policy_pairs, sink_port, census_msgs, dns, res)
        drain_mtas: List = []
        drain_totals: Dict[str, List[int]] = {}
        if do_tlsdrain:
            drain_tls = TlsFiles(work) if not do_tls else tls
            drain_mtas = make_tlsdrain_mtas(work, sink_port, q, args.tlsdrain_tmpfs, res)
            for m in drain_mtas:
                m.start()
            log("STARTTLS drain instances: " + ", ".join(f"{m.name} on {m.port}"
                                                         for m in drain_mtas))
        milter_triples: List = []
        if do_milter:
            milter_triples = make_milter_mtas(work, sink_port, res)
            for triple in milter_triples:
                for m in triple[:2]:
                    m.start()
            log("milter instances: " + ", ".join(
                f"{m.name} on {m.port}" for t in milter_triples for m in t[:2]))
        for rep in range(reps):
            log(f"repetition {rep + 1}/{reps}")
            if do_plain:
                measure_plain(mtas, user, work, sink_port, msgs, fsync_secs, sub_per_caller,
                              local_count, sessions, depth, res)
            if do_tls:
                for s in (1, 20, 100):
                    # one session with full handshakes runs at ~25 msg/s (see README)
                    n = max(10, tls_msgs // 4) if s == 1 else tls_msgs
                    for resume in (False, True):
                        for m in tls_mtas:
                            measure_tls_relay(m, sink_port, s, n, resume, res, stats)
                for m in tls_mtas:
                    measure_memory(m, tls_sessions, res, tls=True)
            if do_policy:
                measure_policy(policy_pairs, sink_port, msgs, dns, res)
            if drain_mtas and not args.tlsdrain_tmpfs:  # the queues' disk, not tmpfs
                measure_unlink(work / "unlink", 200 if q else 1000, res)
            for m in drain_mtas:
                measure_tlsdrain(m, sink_port, drain_tls, tlsdrain_msgs, work, res, drain_totals)
            if do_milter:
                measure_milter(milter_triples, sink_port, msgs, res)
        res.notes += stats.notes()
        res.notes += tlsdrain_notes(drain_totals)
        only = f", --only {args.only}" if args.only else ""
        meta = [
            f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, "
            f"{'--quick' if q else 'full'}{only}, {reps} repetition(s) A B (tern, Postfix), "
            f"{(time.time() - started) / 60:.1f} min; {platform.node()}, {os.cpu_count()} CPUs, "
            f"{platform.release()}.",
            f"Versions: {versions()}.",
            "Counts: " + "; ".join(
                ([f"relay {msgs} msgs of 4 KiB per run; sendmail 8 × {sub_per_caller}; "
                  f"Maildir {local_count}; idle sessions {', '.join(map(str, sessions))}; "
                  f"deep queue {depth}"] if do_plain else [])
                + ([f"STARTTLS: relay {tls_msgs} msgs of 4 KiB per run (1 session: "
                    f"{max(10, tls_msgs // 4)}; bench/tls_source, "
                    f"RSA 2048 self-signed certificate), idle sessions "
                    f"{', '.join(map(str, tls_sessions))}"] if do_tls else [])
                + ([f"relay with policy: {msgs} msgs of 4 KiB per run at "
                    f"{' and '.join(map(str, POLICY_SESSIONS))} sessions, smtp-source from "
                    f"{POLICY_CLIENT} (outside mynetworks = {POLICY_MYNETWORKS}), dnsmasq on "
                    f"{dns.server if dns else '-'}"] if do_policy else [])
                + ([f"STARTTLS drain: {tlsdrain_msgs} msgs of 4 KiB queued (1 recipient each, "
                    f"{TLSDRAIN_HOPS} domains and next hops), bench/tls_sink, RSA 2048 "
                    "self-signed certificate"] if do_tlsdrain else [])
                + ([f"relay through one milter: {msgs} msgs of 4 KiB per run at "
                    f"{MILTER_SESSIONS} sessions, bench/bench_milter"] if do_milter else [])) + ".",
            f"Load average (1/5/15 min) before: {load_before}, after: {loadavg()}; CPU "
            f"pressure (some task waiting for a CPU, last minute) before: {pressure_before}, "
            f"after: {cpu_pressure()}.",
        ]
        text = render(res, meta, depth)
        print(text)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        log(f"saved {args.out}")
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaned up")
        sys.exit(130)
