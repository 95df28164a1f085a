"""Real remote lookup servers for the issue-14 suites (LDAP, PostgreSQL and
Redis tables, shared rate limits): each is started by the test on a free
loopback port (ternlib.free_port) in its own temporary directory, and
stopped by stop(), which never fails and leaves no process behind.

  Slapd     OpenLDAP slapd, slapd.conf + mdb, suffix dc=example,dc=test,
            rootdn cn=admin,dc=example,dc=test / LDAP_ROOTPW, schemas core,
            cosine, inetorgperson, nis; loaded with slapadd from the test's
            LDIF; ldap://127.0.0.1:PORT and ldapi:// in its directory.
  HungLdap  a TCP listener that accepts and reads, and never answers.
  Postgres  a throwaway cluster (initdb as the `postgres` user: initdb
            refuses root) on 127.0.0.1:PORT and a socket in its directory,
            with a database PG_DB owned by PG_USER / PG_PASSWORD.
  Redis     redis-server on 127.0.0.1:PORT, no persistence.

Every class has start() (returns self), stop(), restart() (same port, same
data), `with` support, and a `startup` attribute: the seconds the last
start() took.  Use them through Resources (res / mres in conftest.py) so a
failing test still stops them:

    ldap = start_remote(res, Slapd(res.base, ldif=PEOPLE))
    ldap.search("(uid=joe)", "mail")

or through the pytest fixtures at the bottom of this file.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from ternlib import all_pids, free_port

LDAP_SUFFIX = "dc=example,dc=test"
LDAP_ROOTDN = "cn=admin,dc=example,dc=test"
LDAP_ROOTPW = "ldap-secret"
LDAP_SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
SLAPD_MODULES = "/usr/lib/ldap"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_OS_USER = "postgres"  # initdb and postgres run as this user
PG_DB = "tern"
PG_USER = "tern"
PG_PASSWORD = "pg-secret"

START_TIMEOUT = 15.0


class _Cleanup:
    """What Resources.close() stops: the server and its directory."""

    def __init__(self, server):
        self.server = server

    def stop(self):
        getattr(self.server, "cleanup", self.server.stop)()


def start_remote(resources, server):
    """Start server and register it with res/mres so it is always stopped
    and its directory removed (stop() alone keeps the data for a restart)."""
    resources.others.append(_Cleanup(server))
    return server.start()


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _pgid(pid: int) -> int:
    """The process group of a live (not zombie) process, or 0."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = data[data.rfind(")") + 2 :].split()
    return 0 if fields[0] == "Z" else int(fields[2])


def _run(argv: Sequence[str], input: Optional[str] = None, env=None, check=True) -> str:
    """Run a client tool; stdout on success, an AssertionError with its stderr otherwise."""
    p = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, timeout=20, env=env
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{argv[0]} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


class _Daemon:
    """A server run in the foreground by Popen: start, stop, kill -9, restart."""

    name = "daemon"

    def __init__(self, base: Optional[Path] = None):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base))
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.pgid = 0  # the process group of the last start (start_new_session)
        self.startup = 0.0
        self.log = self.dir / f"{self.name}.log"

    # subclasses: the argv, the popen keywords, the readiness test
    def argv(self) -> List[str]:
        raise NotImplementedError

    def popen_kw(self) -> Dict:
        return {}

    def ready(self) -> bool:
        return _tcp_accepts(self.port)

    def start(self):
        t0 = time.monotonic()
        self.prepare()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True, **{"cwd": self.dir, **self.popen_kw()}
            )
        self.pgid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.startup = time.monotonic() - t0
        return self

    def prepare(self) -> None:
        """One-time set-up before the first start (database files)."""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop_signal(self) -> int:
        return signal.SIGTERM

    def stop(self, timeout: float = 10.0) -> None:
        """Orderly shutdown (SIGKILL to the whole group after timeout); never raises."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal())
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """kill -9 the server and every process it left (its group, and
        whatever runs in its directory: postgres children call setsid), and
        reap it."""
        if self.proc is None:
            return
        for pid in [self.proc.pid] + self.live_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 5
        while self.live_pids() and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self):
        self.stop()
        return self.start()

    def live_pids(self) -> List[int]:
        """Every live process of the server: in the process group of the
        last start, or with its working directory in ours; [] once stopped."""
        return [p for p in all_pids() if self._owns(p)]

    def _owns(self, pid: int) -> bool:
        if self.pgid and _pgid(pid) == self.pgid:
            return True
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        return (cwd + "/").startswith(f"{self.dir}/") and _pgid(pid) != 0

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Slapd(_Daemon):
    """OpenLDAP slapd with one mdb database loaded from an LDIF.  The suffix
    entry (dc=example,dc=test) is made unless the LDIF has it."""

    name = "slapd"

    def __init__(self, base: Optional[Path] = None, ldif: str = "", ldapi: bool = True):
        super().__init__(base)
        self.ldif = ldif
        self.conf = self.dir / "slapd.conf"
        self.db = self.dir / "db"
        self.url = f"ldap://127.0.0.1:{self.port}"
        sock = self.dir / "ldapi"
        self.ldapi_url = "ldapi://" + urllib.parse.quote(str(sock), safe="") if ldapi else None
        self._prepared = False

    def prepare(self) -> None:
        if self._prepared:
            return
        self.db.mkdir()
        schemas = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in LDAP_SCHEMAS)
        self.conf.write_text(
            f"{schemas}"
            f"pidfile {self.dir}/slapd.pid\n"
            f"modulepath {SLAPD_MODULES}\nmoduleload back_mdb\n"
            f"database mdb\nmaxsize 67108864\nsuffix \"{LDAP_SUFFIX}\"\n"
            f"rootdn \"{LDAP_ROOTDN}\"\nrootpw {LDAP_ROOTPW}\n"
            f"directory {self.db}\n"
            "index objectClass eq\n"
        )
        ldif = self.ldif
        if f"dn: {LDAP_SUFFIX}\n" not in ldif:
            ldif = (
                f"dn: {LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                f"dc: example\no: example\n\n" + ldif
            )
        _run(["slapadd", "-q", "-f", str(self.conf)], input=ldif)
        self._prepared = True

    def argv(self) -> List[str]:
        urls = self.url + (" " + self.ldapi_url if self.ldapi_url else "")
        return ["/usr/sbin/slapd", "-d", "0", "-f", str(self.conf), "-h", urls]

    def ready(self) -> bool:
        if not _tcp_accepts(self.port):
            return False
        return self.ldapi_url is None or (self.dir / "ldapi").exists()

    def _auth(self) -> List[str]:
        return ["-H", self.url, "-x", "-D", LDAP_ROOTDN, "-w", LDAP_ROOTPW]

    def search(self, filt: str, *attrs: str, base: str = LDAP_SUFFIX) -> str:
        """ldapsearch as the rootdn; the LDIF output (no comments)."""
        return _run(["ldapsearch", "-LLL", *self._auth(), "-b", base, filt, *attrs])

    def modify(self, ldif: str) -> None:
        """ldapmodify with changetype records (add / modify / delete)."""
        _run(["ldapmodify", *self._auth()], input=ldif)

    def add(self, ldif: str) -> None:
        _run(["ldapadd", *self._auth()], input=ldif)

    def delete(self, *dns: str) -> None:
        _run(["ldapdelete", *self._auth(), *dns])


class HungLdap:
    """A TCP listener on 127.0.0.1:PORT that accepts, reads and never answers
    (an LDAP server that has hung: timeouts, not refusals)."""

    def __init__(self, base: Optional[Path] = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.connections = 0
        self.received = 0
        self.startup = 0.0
        self._conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        t0 = time.monotonic()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self._thread.start()
        self.startup = time.monotonic() - t0
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.setblocking(False)
                self._conns.append(conn)
                self.connections += 1
            except socket.timeout:
                pass
            except OSError:
                return
            for c in self._conns:
                try:
                    self.received += len(c.recv(65536))
                except (BlockingIOError, OSError):
                    pass

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for c in self._conns:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Postgres(_Daemon):
    """A throwaway PostgreSQL cluster: the superuser `postgres` over the
    socket (trust), PG_USER/PG_PASSWORD over TCP (scram-sha-256)."""

    name = "postgres"

    def __init__(self, base: Optional[Path] = None):
        super().__init__(base)
        self.data = self.dir / "data"
        self.socket_dir = self.dir
        self.dsn = (
            f"host=127.0.0.1 port={self.port} dbname={PG_DB} "
            f"user={PG_USER} password={PG_PASSWORD}"
        )
        self._prepared = False
        self._first_start = False  # after initdb: make the role and database

    def popen_kw(self) -> Dict:
        return {"user": PG_OS_USER, "group": PG_OS_USER}

    def prepare(self) -> None:
        if self._prepared:
            return
        shutil.chown(self.dir, PG_OS_USER, PG_OS_USER)
        p = subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
             "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256"],
            capture_output=True, text=True, timeout=60, **self.popen_kw()
        )
        if p.returncode != 0:
            raise AssertionError(f"initdb failed: {p.stderr.strip()}")
        self._prepared = True
        self._first_start = True

    def argv(self) -> List[str]:
        return [
            str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=40",
        ]

    def start(self):
        if not self.log.exists():
            self.log.touch()
        shutil.chown(self.log, PG_OS_USER, PG_OS_USER)
        super().start()
        if self._first_start:
            self._first_start = False
            self.sql(f"CREATE USER {PG_USER} PASSWORD '{PG_PASSWORD}'")
            self.sql(f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")
        return self

    def ready(self) -> bool:
        p = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port)],
            capture_output=True,
        )
        return p.returncode == 0 and _tcp_accepts(self.port)

    def stop_signal(self) -> int:
        return signal.SIGINT  # "fast" shutdown: no waiting for clients

    def sql(self, query: str, db: str = "postgres", as_user: bool = False) -> List[List[str]]:
        """Run SQL with psql: as the superuser over the socket, or as PG_USER
        over TCP with its password (as_user).  Rows as lists of strings."""
        env = dict(os.environ, PGPASSWORD=PG_PASSWORD, PGCONNECT_TIMEOUT="5")
        if as_user:
            where = ["-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB]
        else:
            where = ["-h", str(self.socket_dir), "-U", "postgres", "-d", db]
        out = _run(
            [str(PG_BIN / "psql"), "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-p", str(self.port), *where, "-c", query],
            env=env,
        )
        return [line.split("\t") for line in out.splitlines()]

    def sql_db(self, query: str) -> List[List[str]]:
        """SQL in PG_DB as the superuser (creating tables for PG_USER, say)."""
        return self.sql(query, db=PG_DB)


class Redis(_Daemon):
    """redis-server with no persistence (no RDB, no AOF)."""

    name = "redis"

    def argv(self) -> List[str]:
        return [
            "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
        ]

    def ready(self) -> bool:
        try:
            return self.cmd("PING") == "PONG"
        except AssertionError:
            return False

    def cmd(self, *args: str) -> str:
        """One command through redis-cli; its reply as text (stripped)."""
        return _run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args]).strip()


# pytest fixtures: a fresh server per test, stopped even when the test fails
@pytest.fixture
def slapd_factory(res):
    """slapd_factory(ldif) -> a running Slapd."""
    return lambda ldif="", **kw: start_remote(res, Slapd(res.base, ldif=ldif, **kw))


@pytest.fixture
def hung_ldap(res):
    return start_remote(res, HungLdap(res.base))


@pytest.fixture
def postgres(res):
    return start_remote(res, Postgres(res.base))


@pytest.fixture
def redis(res):
    return start_remote(res, Redis(res.base))
