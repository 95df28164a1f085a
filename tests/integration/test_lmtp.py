"""The lmtp transport (RFC 2033) in tern-lmtp, against a real Dovecot LMTP
server on loopback (TCP and a UNIX socket) and against a small scripted
LMTP server: one transaction for several recipients, one reply per
accepted recipient after the final dot deciding that recipient alone
(sent, deferred, bounced), unknown users bounced to the sender, an over
quota user deferred alone, LHLO and no HELO, next hops relative to
queue_directory, connection reuse, and a dead socket deferring."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from ternlib import free_port, make_message, wait_until

NOBODY = pwd.getpwnam("nobody")
USERS = ("alice", "bob", "carol")  # carol's quota is 1 KiB: any real message is over it
BIG_BODY = "".join(f"line {i:04d} of a message too large for carol's quota\r\n" for i in range(100))

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="dovecot and the LMTP sockets need root (mail uid nobody)"
)


# ---------------------------------------------------------------- dovecot


class Dovecot:
    """`dovecot -F -c CONF` with everything in its own directory: LMTP on
    127.0.0.1:PORT and on the UNIX socket DIR/lmtp.sock, users from a
    passwd-file (USERS, mail as nobody), Maildirs in DIR/mail/USER."""

    def __init__(self, base: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-", dir=str(base)))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.socket = self.dir / "lmtp.sock"
        self.mail = self.dir / "mail"
        self.mail.mkdir()
        os.chown(self.mail, NOBODY.pw_uid, NOBODY.pw_gid)
        self.log_path = self.dir / "dovecot.log"
        self.conf = self.dir / "dovecot.conf"
        self.proc: Optional[subprocess.Popen] = None

    def write_conf(self) -> None:
        uid, gid = NOBODY.pw_uid, NOBODY.pw_gid
        users = self.dir / "users"
        users.write_text(
            "".join(
                f"{u}:{{PLAIN}}x:{uid}:{gid}::{self.dir}/home/{u}::"
                + ("userdb_quota_rule=*:storage=1" if u == "carol" else "")
                + "\n"
                for u in USERS
            )
        )
        self.conf.write_text(
            f"""# written by tests/integration/test_lmtp.py
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log_path}
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
auth_username_format = %Ln
mail_location = maildir:{self.mail}/%n
mail_plugins = quota
quota_full_tempfail = yes
plugin {{
  quota = maildir:User quota
}}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
  unix_listener {self.socket} {{
    mode = 0666
  }}
}}
"""
        )

    def start(self) -> "Dovecot":
        self.write_conf()
        self._log = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dovecot exited {self.proc.returncode}: "
                    f"{(self.dir / 'stderr.log').read_text()}"
                )
            if not self.socket.exists():
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    return s.recv(100).startswith(b"220")
            except OSError:
                return False

        wait_until(ready, 20, f"dovecot LMTP on 127.0.0.1:{self.port} and {self.socket}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None
        if os.environ.get("TERN_IT_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self, user: str) -> List[bytes]:
        """The messages in user's Maildir (new/ and cur/)."""
        out = []
        for sub in ("new", "cur"):
            d = self.mail / user / sub
            if d.is_dir():
                out += [p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()]
        return out

    def wait_message(self, user: str, needle: bytes, timeout: float = 20.0) -> bytes:
        return wait_until(
            lambda: next((m for m in self.messages(user) if needle in m), None),
            timeout,
            f"a message with {needle!r} in {user}'s Maildir",
        )


# ---------------------------------------------------------------- a scripted LMTP server


class ScriptedLmtp:
    """A tiny LMTP server (TCP on 127.0.0.1, or a UNIX socket at path)
    answering RCPT per address (rcpt_rules) and, after the final dot, one
    reply per accepted recipient (data_rules; default 250).  Rules are
    (substring, reply) lists, the first match wins.  Records every command
    line and every transaction."""

    def __init__(self, path: Optional[Path] = None):
        self.path = path
        self.port = 0 if path else free_port()
        self.rcpt_rules: List[Tuple[str, str]] = []
        self.data_rules: List[Tuple[str, str]] = []
        self.commands: List[str] = []
        self.transactions: List[Dict] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = False

    def start(self) -> "ScriptedLmtp":
        if self.path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(self.path))
            os.chmod(self.path, 0o666)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _rule(rules, address: str, default: str) -> str:
        return next((reply for needle, reply in rules if needle in address), default)

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")

        def say(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        try:
            say("220 scripted LMTP ready")
            mail, rcpts = None, []
            while True:
                raw = f.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                with self._lock:
                    self.commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                if verb == "LHLO":
                    say("250-scripted")
                    say("250-PIPELINING")
                    say("250 ENHANCEDSTATUSCODES")
                elif verb == "MAIL":
                    mail, rcpts = line[10:].split(">")[0].lstrip("<"), []
                    say("250 2.1.0 ok")
                elif verb == "RCPT":
                    addr = re.search(r"<([^>]*)>", line).group(1)
                    reply = self._rule(self.rcpt_rules, addr, "250 2.1.5 ok")
                    if reply.startswith("2"):
                        rcpts.append(addr)
                    say(reply)
                elif verb == "DATA":
                    say("354 go ahead")
                    data = b""
                    while True:
                        chunk = f.readline()
                        if not chunk or chunk == b".\r\n":
                            break
                        data += chunk
                    with self._lock:
                        self.transactions.append({"mail": mail, "rcpts": list(rcpts), "data": data})
                    for addr in rcpts:  # RFC 2033 4.2: one reply each, in RCPT order
                        say(self._rule(self.data_rules, addr, f"250 2.0.0 <{addr}> delivered"))
                elif verb == "RSET":
                    mail, rcpts = None, []
                    say("250 2.0.0 ok")
                elif verb == "QUIT":
                    say("221 2.0.0 bye")
                    return
                else:
                    say("500 5.5.1 what?")
        except OSError:
            pass
        finally:
            conn.close()


# ---------------------------------------------------------------- fixtures


def write_routes(tern, text: str) -> str:
    path = tern.etc / "transport"
    path.write_text(text)
    path.chmod(0o644)
    return f"texthash:{path}"


@pytest.fixture(scope="module")
def dovecot(mres, it_base):
    d = Dovecot(it_base)
    mres.others.append(d)
    return d.start()


@pytest.fixture(scope="module")
def lmtp_setup(mres, dovecot):
    """A tern routing inet.test to Dovecot over TCP and unix.test over its
    UNIX socket; everything else (the bounces) to a sink."""
    sink = mres.sink()
    tern = mres.tern(start=False, relayhost=sink.hostport)
    routes = write_routes(
        tern,
        f"inet.test lmtp:[127.0.0.1]:{dovecot.port}\n"
        f"unix.test lmtp:unix:{dovecot.socket}\n",
    )
    tern.conf_edit(transport_maps=routes)
    tern.start()
    return tern, dovecot, sink


def to_line(qid: str, rcpt: str) -> str:
    return rf"{qid}: to=<{re.escape(rcpt)}>, relay=(\S+), .*dsn=(\S+), status=(\w+) \((.*)\)$"


def bounces_to(sink, sender: str) -> list:
    return [m for m in sink.snapshot() if m.mail_from == "" and sender in m.rcpt_tos]


# ---------------------------------------------------------------- Dovecot


def test_dovecot_two_known_users_delivered_unknown_one_bounced(lmtp_setup):
    tern, dovecot, sink = lmtp_setup
    sender = "two-known@example.test"
    rcpts = ("alice@inet.test", "nosuch@inet.test", "bob@inet.test")
    msg = make_message(subject="lmtp-inet", body="to dovecot over TCP\r\n", to="team@inet.test")
    qid = tern.send(msg, sender=sender, rcpts=rcpts)
    lmtp_ids = set()
    for user in ("alice", "bob"):
        got = dovecot.wait_message(user, b"Subject: lmtp-inet")
        assert b"to dovecot over TCP" in got
        assert got.startswith(f"Return-Path: <{sender}>".encode())
        lmtp_ids.add(re.search(rb"with LMTP\s+id (\S+)", got).group(1))
    relay = rf"127\.0\.0\.1\[127\.0\.0\.1\]:{dovecot.port}"
    for user in ("alice", "bob"):
        m = tern.wait_log(to_line(qid, f"{user}@inet.test"))
        assert re.fullmatch(relay, m.group(1)) and m.group(3) == "sent", m.group(0)
        assert m.group(2) == "2.0.0" and f"<{user}@inet.test>" in m.group(4) and "Saved" in m.group(4)
    m = tern.wait_log(to_line(qid, "nosuch@inet.test"))
    assert m.group(2) == "5.1.1" and m.group(3) == "bounced", m.group(0)
    assert "550 5.1.1" in m.group(4) and "in reply to RCPT TO command" in m.group(4)
    # exactly that recipient is reported to the sender
    (bounce,) = wait_until(lambda: bounces_to(sink, sender), 20, "the bounce to the sender")
    assert b"Final-Recipient: rfc822; nosuch@inet.test" in bounce.content
    assert b"rfc822; alice@inet.test" not in bounce.content
    assert b"rfc822; bob@inet.test" not in bounce.content
    # all three went in one LMTP session (Dovecot's Received: id), one copy each
    assert len(lmtp_ids) == 1, lmtp_ids
    assert len(dovecot.messages("alice")) == 1 and len(dovecot.messages("bob")) == 1
    tern.wait_log(rf"{qid}: removed")


def test_dovecot_over_unix_socket(lmtp_setup):
    tern, dovecot, sink = lmtp_setup
    msg = make_message(subject="lmtp-unix", body="to dovecot over a UNIX socket\r\n")
    qid = tern.send(msg, rcpts=("alice@unix.test", "bob@unix.test"))
    for user in ("alice", "bob"):
        assert b"over a UNIX socket" in dovecot.wait_message(user, b"Subject: lmtp-unix")
        m = tern.wait_log(to_line(qid, f"{user}@unix.test"))
        assert m.group(1) == str(dovecot.socket), m.group(0)
        assert m.group(3) == "sent", m.group(0)
    tern.wait_log(rf"{qid}: removed")


def test_dovecot_over_quota_recipient_alone_is_deferred(lmtp_setup):
    tern, dovecot, sink = lmtp_setup
    sender = "quota@example.test"
    msg = make_message(subject="lmtp-quota", body=BIG_BODY)
    qid = tern.send(msg, sender=sender, rcpts=("carol@inet.test", "alice@inet.test"))
    assert b"lmtp-quota" in dovecot.wait_message("alice", b"Subject: lmtp-quota")
    m = tern.wait_log(to_line(qid, "carol@inet.test"))
    assert m.group(2) == "4.2.2" and m.group(3) == "deferred", m.group(0)
    assert "Quota exceeded" in m.group(4) and "in reply to end of DATA command" in m.group(4)
    m = tern.wait_log(to_line(qid, "alice@inet.test"))
    assert m.group(3) == "sent", m.group(0)
    assert not dovecot.messages("carol")
    assert any(p.name == qid for p in tern.queue_files()), "carol's copy stays queued"
    time.sleep(1)
    assert not bounces_to(sink, sender), "a deferral is no bounce"
    assert tern.tern("queue", "delete", qid).returncode == 0
    # the retry went to carol alone: alice got exactly one copy
    assert len([x for x in dovecot.messages("alice") if b"lmtp-quota" in x]) == 1


# ---------------------------------------------------------------- scripted server


@pytest.fixture
def scripted(res):
    """A tern routing s.test to a scripted LMTP server over TCP."""
    server = ScriptedLmtp().start()
    res.others.append(server)
    sink = res.sink()
    tern = res.tern(start=False, relayhost=sink.hostport, smtp_connection_cache_time_limit="10s")
    tern.conf_edit(transport_maps=write_routes(tern, f"s.test lmtp:[127.0.0.1]:{server.port}\n"))
    tern.start()
    return tern, server, sink


def test_each_reply_after_the_dot_decides_its_own_recipient(scripted):
    tern, server, sink = scripted
    server.rcpt_rules = [("norcpt", "550 5.1.1 no such user here")]
    server.data_rules = [
        ("tmp", "452 4.2.2 <tmp@s.test> mailbox full"),
        ("bad", "554 5.6.0 <bad@s.test> content refused"),
    ]
    sender = "order@example.test"
    rcpts = ("ok1@s.test", "norcpt@s.test", "tmp@s.test", "bad@s.test", "ok2@s.test")
    qid = tern.send(make_message(subject="lmtp-order"), sender=sender, rcpts=rcpts)
    expect = {
        "ok1@s.test": ("2.0.0", "sent", "250 2.0.0 <ok1@s.test> delivered"),
        "norcpt@s.test": ("5.1.1", "bounced", "in reply to RCPT TO command"),
        "tmp@s.test": ("4.2.2", "deferred", "mailbox full (in reply to end of DATA command)"),
        "bad@s.test": ("5.6.0", "bounced", "content refused (in reply to end of DATA command)"),
        "ok2@s.test": ("2.0.0", "sent", "250 2.0.0 <ok2@s.test> delivered"),
    }
    for rcpt, (dsn, status, text) in expect.items():
        m = tern.wait_log(to_line(qid, rcpt))
        assert (m.group(2), m.group(3)) == (dsn, status), m.group(0)
        assert text in m.group(4), m.group(0)
    first = server.transactions[0]
    assert first["mail"] == sender
    assert first["rcpts"] == ["ok1@s.test", "tmp@s.test", "bad@s.test", "ok2@s.test"]
    assert any(c.startswith("LHLO ") for c in server.commands)
    assert not any(c.split(" ")[0] in ("EHLO", "HELO") for c in server.commands)
    (bounce,) = wait_until(lambda: bounces_to(sink, sender), 20, "the bounce to the sender")
    assert b"Final-Recipient: rfc822; norcpt@s.test" in bounce.content
    assert b"Final-Recipient: rfc822; bad@s.test" in bounce.content
    assert b"rfc822; tmp@s.test" not in bounce.content
    assert b"rfc822; ok1@s.test" not in bounce.content
    # the retry carries the deferred recipient only
    server.data_rules = []
    tern.wait_log(to_line(qid, "tmp@s.test").replace(r"dsn=(\S+), status=(\w+)", r"dsn=(2\.0\.0), status=(sent)"))
    assert server.transactions[-1]["rcpts"] == ["tmp@s.test"]
    tern.wait_log(rf"{qid}: removed")


def test_lhlo_refused_is_not_retried_with_helo(scripted):
    tern, server, sink = scripted

    def refuse_lhlo(conn):
        f = conn.makefile("rwb")
        f.write(b"220 picky\r\n")
        f.flush()
        line = f.readline().decode().strip()
        with server._lock:
            server.commands.append(line)
        f.write(b"451 4.3.0 not now\r\n")
        f.flush()
        f.readline()
        conn.close()

    server._serve = refuse_lhlo
    qid = tern.send(make_message(subject="lmtp-lhlo"), rcpts=("u@s.test",))
    m = tern.wait_log(to_line(qid, "u@s.test"))
    assert m.group(3) == "deferred" and "in reply to LHLO command" in m.group(4), m.group(0)
    assert server.commands[0].startswith("LHLO ")
    assert not any(c.startswith(("HELO", "EHLO")) for c in server.commands)
    assert tern.tern("queue", "delete", qid).returncode == 0


def test_connection_is_reused_for_the_next_message(scripted):
    tern, server, sink = scripted
    q1 = tern.send(make_message(subject="reuse-1"), rcpts=("a@s.test",))
    tern.wait_log(rf"{q1}: to=<a@s\.test>, .*status=sent")
    q2 = tern.send(make_message(subject="reuse-2"), rcpts=("b@s.test",))
    tern.wait_log(rf"{q2}: to=<b@s\.test>, .*conn_use=2, .*status=sent")
    assert server.connections == 1
    assert len(server.transactions) == 2


def test_unix_socket_relative_to_queue_directory(res):
    """lmtp:unix:private/NAME is found from queue_directory, Postfix's way
    (it keeps working with service_chroot); the log says relay=private/NAME."""
    sink = res.sink()
    tern = res.tern(start=False, relayhost=sink.hostport)
    tern.conf_edit(transport_maps=write_routes(tern, "rel.test lmtp:unix:private/test-lmtp\n"))
    tern.start()
    server = ScriptedLmtp(path=tern.queue / "private" / "test-lmtp").start()
    res.others.append(server)
    qid = tern.send(make_message(subject="lmtp-relative"), rcpts=("u@rel.test",))
    m = tern.wait_log(to_line(qid, "u@rel.test"))
    assert m.group(1) == "private/test-lmtp" and m.group(3) == "sent", m.group(0)
    assert b"lmtp-relative" in server.transactions[0]["data"]


def test_dead_unix_socket_defers(res, tmp_path):
    sink = res.sink()
    tern = res.tern(start=False, relayhost=sink.hostport)
    dead = tern.dir / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(dead))  # a socket file nobody listens on: connection refused
    os.chmod(dead, 0o666)
    tern.conf_edit(
        transport_maps=write_routes(
            tern, f"dead.test lmtp:unix:{dead}\nmissing.test lmtp:unix:{tern.dir}/nothing.sock\n"
        )
    )
    tern.start()
    sender = "dead@example.test"
    qid = tern.send(make_message(subject="lmtp-dead"), sender=sender, rcpts=("u@dead.test",))
    m = tern.wait_log(to_line(qid, "u@dead.test"))
    assert m.group(1) == "none" and (m.group(2), m.group(3)) == ("4.4.1", "deferred"), m.group(0)
    assert m.group(4) == f"connect to {dead}: Connection refused"
    qid2 = tern.send(make_message(subject="lmtp-missing"), sender=sender, rcpts=("u@missing.test",))
    m = tern.wait_log(to_line(qid2, "u@missing.test"))
    assert m.group(3) == "deferred" and "No such file or directory" in m.group(4), m.group(0)
    assert {p.name for p in tern.queue_files()} >= {qid, qid2}
    assert not bounces_to(sink, sender)
