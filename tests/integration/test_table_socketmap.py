"""socketmap: tables (issue 14, SPEC MAP-05) looked up with `tern map -q`
against a small socketmap server in this file (netstrings, one thread per
connection), over inet (IPv4 and IPv6) and unix: OK, NOTFOUND, TEMP, PERM,
a garbage reply, a server that closes the connection, and one that never
answers (tempfail within the 10 s lookup timeout; that lookup runs in the
background while the others go on, so the suite stays short)."""

import socket
import subprocess
import threading
import time

import pytest

from ternlib import TERN, tool_env

EX_TEMPFAIL = 75
TIMEOUT = 10  # SOCKETMAP_TIMEOUT in lib/table_socketmap.c

ANSWERS = {
    "joe@example.com": b"OK joe@dest.test",
    "missing@example.com": b"NOTFOUND ",
    "temp@example.com": b"TEMP database down",
    "perm@example.com": b"PERM misconfigured",
}


def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def read_netstring(conn) -> bytes:
    head = b""
    while not head.endswith(b":"):
        c = conn.recv(1)
        if not c:
            raise EOFError
        head += c
    n = int(head[:-1])
    data = b""
    while len(data) < n + 1:
        chunk = conn.recv(n + 1 - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data[:-1]


class MapServer:
    """Answers "virtual KEY" from ANSWERS; garbage@, close@ and hang@ keys
    misbehave.  requests: every request received, connections: accepted."""

    def __init__(self, family, address):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(address)
        self.sock.listen(16)
        self.address = self.sock.getsockname()
        self.requests, self.connections = [], 0
        self.hung = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                req = read_netstring(conn)
                self.requests.append(req)
                name, _, key = req.decode().partition(" ")
                if key.startswith("hang@"):
                    self.hung.append(conn)
                    return
                if key.startswith("close@"):
                    break
                if key.startswith("garbage@"):
                    conn.sendall(b"HELLO THERE\r\n")
                    continue
                reply = ANSWERS.get(key, b"NOTFOUND ") if name == "virtual" else b"PERM no map"
                conn.sendall(netstring(reply))
        except (EOFError, OSError):
            pass
        conn.close()

    def close(self):
        self.sock.close()
        for c in self.hung:
            c.close()


def lookup(key, spec):
    start = time.monotonic()
    r = subprocess.run([str(TERN), "map", "-q", key, spec], capture_output=True, text=True,
                       timeout=30, env=tool_env())
    r.elapsed = time.monotonic() - start
    return r


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    path = tmp_path_factory.mktemp("sockmap") / "map.sock"
    made = {
        "inet": MapServer(socket.AF_INET, ("127.0.0.1", 0)),
        "inet6": MapServer(socket.AF_INET6, ("::1", 0)),
        "unix": MapServer(socket.AF_UNIX, str(path)),
    }
    specs = {
        "inet": f"socketmap:inet:127.0.0.1:{made['inet'].address[1]}:virtual",
        "inet6": f"socketmap:inet:[::1]:{made['inet6'].address[1]}:virtual",
        "unix": f"socketmap:unix:{path}:virtual",
    }
    # the never-answering lookup runs while the other tests do
    start = time.monotonic()
    hung = subprocess.Popen([str(TERN), "map", "-q", "hang@example.com", specs["inet"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=tool_env())
    yield made, specs, (hung, start)
    hung.kill()
    for s in made.values():
        s.close()


@pytest.mark.parametrize("kind", ["inet", "inet6", "unix"])
def test_ok_and_notfound(servers, kind):
    made, specs, _ = servers
    r = lookup("JOE@Example.com", specs[kind])
    assert (r.returncode, r.stdout) == (0, "joe@dest.test\n"), r.stderr
    assert b"virtual joe@example.com" in made[kind].requests
    r = lookup("missing@example.com", specs[kind])
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")


@pytest.mark.parametrize("key,why", [("temp@example.com", "TEMP database down"),
                                     ("perm@example.com", "PERM misconfigured"),
                                     ("garbage@example.com", "protocol error"),
                                     ("close@example.com", "closed the connection")])
def test_failures_are_tempfail_never_notfound(servers, key, why):
    _, specs, _ = servers
    for kind in ("inet", "unix"):
        r = lookup(key, specs[kind])
        assert (r.returncode, r.stdout) == (EX_TEMPFAIL, ""), (kind, r.stderr)
        assert why in r.stderr and specs[kind] in r.stderr


def test_no_server_is_tempfail(tmp_path):
    r = lookup("joe@example.com", f"socketmap:unix:{tmp_path}/none.sock:virtual")
    assert r.returncode == EX_TEMPFAIL and "connect to" in r.stderr


@pytest.mark.parametrize("spec", ["socketmap:inet:127.0.0.1:virtual",
                                  "socketmap:inet:::1:25:virtual",
                                  "socketmap:inet:host:99999:virtual",
                                  "socketmap:unix:relative.sock:virtual",
                                  "socketmap:tcp:host:25:virtual",
                                  "socketmap:inet:127.0.0.1:25:"])
def test_bad_specs_are_refused_at_open(spec):
    r = lookup("joe@example.com", spec)
    assert r.returncode == EX_TEMPFAIL
    assert r.stderr.startswith(f"tern map: {spec}: ") and "cannot be read" not in r.stderr


def test_never_answering_server_ends_in_timeout_as_tempfail(servers):
    _, specs, (hung, start) = servers
    out, err = hung.communicate(timeout=TIMEOUT + 5)
    elapsed = time.monotonic() - start
    assert (hung.returncode, out) == (EX_TEMPFAIL, "")
    assert "no answer in time" in err
    assert TIMEOUT - 0.5 <= elapsed <= TIMEOUT + 3
