"""systemd's Type=notify (issue 13): `tern start -D` stays in the foreground,
logs as configured (maillog_file here, nothing on stderr), and sends READY=1
on $NOTIFY_SOCKET only once the SMTP port answers; RELOADING=1 then READY=1
around `tern reload`; STOPPING=1 on `tern stop`.  The test is systemd: it
binds the abstract-namespace datagram socket and reads what master sends."""

import os
import socket
import time

from ternlib import SmtpConn


def notify_socket():
    """A datagram socket in the abstract namespace and its NOTIFY_SOCKET value."""
    name = f"tern-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    return sock, "@" + name


def next_state(sock, timeout=15.0):
    """The next notification as a dict {KEY: VALUE}."""
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


def greeting(tern):
    with SmtpConn(tern.host, tern.port, timeout=2) as c:
        return c.greeting()[0]


def start_notified(tern, where):
    """tern start -D as the unit runs it; returns at once"""
    tern.start(mode="-D", env=dict(os.environ, NOTIFY_SOCKET=where), wait=False)


def test_master_notifies_ready_after_the_port_answers(res):
    sock, where = notify_socket()
    tern = res.tern(start=False)
    try:
        start_notified(tern, where)
        state = next_state(sock)
        # READY=1 comes with the listeners bound and the services started:
        # the first connection after it is greeted, without a retry
        assert state.get("READY") == "1", state
        assert greeting(tern) == "220 tern.test ESMTP tern"
        assert "accepting mail" in state.get("STATUS", ""), state
        assert tern.proc.poll() is None, "tern start -D must stay in the foreground"
        assert tern.master_pid() == tern.proc.pid, "the unit's main process is the master"

        assert tern.tern("reload").returncode == 0
        assert next_state(sock).get("RELOADING") == "1"
        assert next_state(sock).get("READY") == "1"
        assert greeting(tern) == "220 tern.test ESMTP tern"

        tern.stop()
        assert next_state(sock).get("STOPPING") == "1"
    finally:
        sock.close()
    # -D logs as configured: the log file has the master's lines, stderr none
    assert "daemon started" in tern.log()
    assert "terminating" in tern.log()
    assert "daemon started" not in tern.stderr_path.read_text(errors="replace")


def test_master_without_notify_socket_starts_as_before(res):
    tern = res.tern(start=False)
    start_notified(tern, "")
    tern.wait_ready()
    assert greeting(tern) == "220 tern.test ESMTP tern"
    assert "cannot notify" not in tern.log()
