"""milterutil - real milters for tern's milter suites (issue 12).

MilterProcess runs a milter subprocess on a UNIX or TCP socket;
ScriptedMilter is milters/scripted.py (python3-milter, libmilter
underneath) as a subprocess on a UNIX or TCP socket; its behaviour is a JSON
script the test may rewrite between SMTP sessions (the filter reads it again
at each new connection), and every callback it sees is read back with
records() / session().  milter_tern() makes a tern that relays everything to
a recording Sink with smtpd_milters set.
"""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from ternlib import free_port, terminate, wait_until

HERE = Path(__file__).resolve().parent
SCRIPTED = HERE / "milters" / "scripted.py"
PYTHON = "/usr/bin/python3"  # Debian's, where python3-milter lives


def shared_dir(base: Path, name: str) -> Path:
    """A directory tern's services (mail_owner) can search."""
    d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=str(base)))
    os.chmod(d, 0o755)
    return d


def tcp_listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port (read from /proc, so
    that no probe connection reaches the milter)."""
    want = f"0100007F:{port:04X}"
    for table in ("/proc/net/tcp",):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    return False


class MilterProcess:
    """A milter we run as a subprocess in its own directory, listening on
    "unix" (dir/sock) or "inet" (127.0.0.1:PORT).  A subclass gives
    command() and its name; .path / .port and the spec spellings unix_spec,
    local_spec, inet_spec (inet:127.0.0.1:PORT) and inet_at_spec
    (inet:PORT@127.0.0.1) say where it listens; .spec is the one a test
    uses by default."""

    what = "milter"

    def __init__(self, base: Path, kind: str, name: str):
        self.dir = shared_dir(base, name)
        self.kind = kind
        self.path = self.dir / "sock"
        self.port = free_port() if kind == "inet" else 0
        self.stderr_path = self.dir / "stderr.log"
        self.proc: Optional[subprocess.Popen] = None

    def command(self) -> List[str]:
        raise NotImplementedError

    # where it listens
    @property
    def libmilter_socket(self) -> str:
        """The socket in libmilter's own spelling."""
        return f"unix:{self.path}" if self.kind == "unix" else f"inet:{self.port}@127.0.0.1"

    @property
    def unix_spec(self) -> str:
        return f"unix:{self.path}"

    @property
    def local_spec(self) -> str:
        return f"local:{self.path}"

    @property
    def inet_spec(self) -> str:
        return f"inet:127.0.0.1:{self.port}"

    @property
    def inet_at_spec(self) -> str:
        return f"inet:{self.port}@127.0.0.1"

    @property
    def spec(self) -> str:
        return self.unix_spec if self.kind == "unix" else self.inet_spec

    # lifecycle
    def start(self):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err)
        wait_until(self._ready, 15, f"the {self.what} on {self.libmilter_socket}")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.what} exited {self.proc.returncode}:\n{self.stderr()}")
        if self.kind == "unix":
            return self.path.exists()
        return tcp_listening(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
            self._err.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class ScriptedMilter(MilterProcess):
    """milters/scripted.py: its JSON script in dir/script.json (set_script),
    its callbacks in dir/log.jsonl (records, session...)."""

    what = "scripted milter"

    def __init__(self, base: Path, script: Optional[Dict] = None, kind: str = "unix",
                 name: str = "m"):
        super().__init__(base, kind, f"milter-{name}")
        self.script_path = self.dir / "script.json"
        self.log_path = self.dir / "log.jsonl"
        self.set_script(script or {})

    def command(self) -> List[str]:
        return [PYTHON, str(SCRIPTED), self.libmilter_socket, str(self.script_path),
                str(self.log_path)]

    def set_script(self, script: Dict) -> None:
        """The behaviour for the next connection (written atomically)."""
        tmp = self.script_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(script))
        tmp.replace(self.script_path)

    # what it saw
    def records(self) -> List[Dict]:
        try:
            lines = self.log_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def conn_of_port(self, client_port: int) -> Optional[int]:
        """The milter connection whose connect callback names this SMTP client
        port: the latest one (the suite makes enough connections for the
        kernel to hand an ephemeral port out again; the session asking has
        had its greeting, so its connect record is already there)."""
        found = None
        for r in self.records():
            if r.get("cb") == "connect":
                addr = r["args"][2]
                if isinstance(addr, list) and len(addr) >= 2 and addr[1] == client_port:
                    found = r["conn"]
        return found

    def session(self, conn: int) -> List[Dict]:
        """The callback records of one connection, in order (negotiate and
        mod lines left out)."""
        return [r for r in self.records()
                if r.get("conn") == conn and r["cb"] not in ("negotiate", "mod", "exit")]

    def session_of_port(self, client_port: int, timeout: float = 10.0) -> int:
        return wait_until(lambda: self.conn_of_port(client_port), timeout,
                          f"the milter's connect from client port {client_port}")

    def wait_callback(self, conn: int, cb: str, count: int = 1, timeout: float = 15.0):
        """Wait until connection conn logged cb count times; its records."""
        def seen():
            rs = [r for r in self.session(conn) if r["cb"] == cb]
            return rs if len(rs) >= count else None
        return wait_until(seen, timeout, f"{count} {cb} callback(s) on milter connection {conn}")

    def connections(self) -> List[int]:
        return sorted({r["conn"] for r in self.records() if r.get("cb") == "connect"})


def callbacks(records: List[Dict]) -> List[str]:
    return [r["cb"] for r in records]


def collapse(names: List[str]) -> List[str]:
    """Runs of 'header' and 'body' shown once with a count: header*5."""
    out: List[str] = []
    for n in names:
        if out and out[-1].split("*")[0] == n and n in ("header", "body"):
            base, _, k = out[-1].partition("*")
            out[-1] = f"{base}*{int(k or 1) + 1}"
        else:
            out.append(n)
    return out


def start_milter(res, script: Optional[Dict] = None, kind: str = "unix",
                 name: str = "m") -> ScriptedMilter:
    """A running ScriptedMilter cleaned up with res (res or mres)."""
    m = ScriptedMilter(res.base, script, kind=kind, name=name)
    res.others.append(m)
    return m.start()


def milter_tern(res, milters: str, sink=None, **params):
    """A tern relaying everything to sink (a new one when None) with
    smtpd_milters = milters; returns (tern, sink)."""
    if sink is None:
        sink = res.sink(dsn=True)
    tern = res.tern(relayhost=sink.hostport, smtpd_milters=milters, **params)
    return tern, sink


def elapsed(fn, *args, **kw):
    """(fn's result, seconds it took)."""
    t0 = time.monotonic()
    out = fn(*args, **kw)
    return out, time.monotonic() - t0
