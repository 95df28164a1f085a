"""HAProxy's PROXY protocol on smtpd listeners (issue 15; docs/smtpd.md
"Behind HAProxy"): a real HAProxy (Debian haproxy, run here in the
foreground with a private config) sends v1 and v2 headers in front of tern;
the client address it names drives the connect log line, relay permission
(mynetworks) and the Received header.  A forged header from a host not in
smtpd_upstream_proxy_hosts, a malformed header and a silent peer are closed
without a banner and logged; bytes pipelined after the header are SMTP; a
v2 LOCAL health check (option smtpchk) is a session of the proxy itself;
SMTPS (the header before the TLS handshake) works; a listener with the
protocol on and no proxy host refuses everyone."""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from milterutil import start_milter
from peerutil import make_self_signed
from ternlib import SmtpConn, free_port, make_message, terminate, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
FRONT = "127.0.0.2"  # HAProxy's address: the header's destination
CLIENT = "127.0.0.5"  # the only client in mynetworks
OTHER = "127.0.0.6"  # another client behind the proxy
FORGER = "127.0.0.7"  # not a proxy host, talks to tern directly
EARLY = "127.0.0.9"  # an early talker behind the proxy
COUNTED = ("127.0.0.10", "127.0.0.11")  # two clients with one connection each

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"



@pytest.fixture(autouse=True)
def haproxy_installed():
    """scripts/setup.sh installs haproxy: missing, the suite fails, never skips."""
    if not os.path.exists(HAPROXY):
        pytest.fail(f"{HAPROXY} is missing: run scripts/setup.sh (it installs haproxy)")


def haproxy_config(ports, tern) -> str:
    """v1 and v2 frontends to the smtpd listener (v2 health-checked with
    smtpchk: a LOCAL header), a v2 frontend to the SMTPS listener"""
    return f"""
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen v1
    bind {FRONT}:{ports.v1}
    server tern 127.0.0.1:{ports.proxied} send-proxy
listen v2
    bind {FRONT}:{ports.v2}
    option smtpchk EHLO haproxy.test
    server tern 127.0.0.1:{ports.proxied} send-proxy-v2 check inter 3s
listen smtps
    bind {FRONT}:{ports.smtps}
    server tern 127.0.0.1:{ports.tern_smtps} send-proxy-v2
"""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(mres):
    base = Path(tempfile.mkdtemp(prefix="haproxy-", dir=str(mres.base)))
    os.chmod(base, 0o755)
    cert, key = make_self_signed(base, "tern", cn="tern.test")
    sink = mres.sink()
    milter = start_milter(mres)
    ports = SimpleNamespace(v1=free_port(), v2=free_port(), smtps=free_port(),
                            tern_smtps=free_port(), proxied=free_port())
    # smtpd (25) stays plain; submission and smtps take the header
    tern = mres.tern(
        relayhost=sink.hostport,
        mynetworks=f"{CLIENT}/32",
        smtpd_upstream_proxy_hosts="127.0.0.1/32",
        smtpd_upstream_proxy_timeout="2s",
        smtpd_tls_cert_file=str(cert),
        smtpd_tls_key_file=str(key),
        smtps_listen=f"127.0.0.1:{ports.tern_smtps}",
        submission_listen=f"127.0.0.1:{ports.proxied}",
        **{f"{name}.{param}": value
           for name in ("submission", "smtps")
           for param, value in (("smtpd_upstream_proxy_protocol", "haproxy"),
                                ("smtpd_sasl_auth_enable", "no"),
                                ("smtpd_auth_required", "no"))},
        **{"submission.smtpd_tls_security_level": "may", "submission.smtpd_milters": milter.spec,
           "submission.smtpd_greet_pause": "1s",  # not for mynetworks (CLIENT)
           "submission.smtpd_client_connection_count_limit": "1"},  # nor this
    )
    cfg = base / "haproxy.cfg"
    cfg.write_text(haproxy_config(ports, tern))
    log = open(base / "haproxy.log", "w")
    proc = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: all(port_open(p, FRONT) for p in (ports.v1, ports.v2, ports.smtps)), 10,
                   "haproxy to listen")
        yield SimpleNamespace(tern=tern, sink=sink, ports=ports, milter=milter)
    finally:
        terminate(proc)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def via(port: int, source: str, timeout: float = 10.0) -> SmtpConn:
    return SmtpConn(FRONT, port, source=source, timeout=timeout)


def direct(site, source: str = "127.0.0.1", timeout: float = 10.0) -> SmtpConn:
    return SmtpConn("127.0.0.1", site.ports.proxied, source=source, timeout=timeout)


def v2_header(src: str, dst: str, sport: int, dport: int, command: int = 1) -> bytes:
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(block)) + block


def closed_without_banner(c: SmtpConn, timeout: float = 5.0) -> bool:
    """the server closed and sent nothing"""
    return c.wait_closed(timeout) and c.buf == b""


# ---------------------------------------------------------------- through HAProxy


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxied_client_drives_log_relay_and_received(site, version):
    subject = f"through haproxy {version}"
    with via(getattr(site.ports, version), CLIENT) as c:
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        # relay to sink.test: only mynetworks (127.0.0.5) may
        assert c.cmd("RCPT TO:<b@sink.test>")[0].startswith("250")
        assert c.data(make_message(subject=subject))[0].startswith("250")
        client_port = c.sock.getsockname()[1]
        c.cmd("QUIT")
    site.tern.wait_log(rf"connect from unknown\[{CLIENT}\] to listener submission")
    site.tern.wait_log(rf"upstream proxy \[127\.0\.0\.1\]: PROXY {version} for client \[{CLIENT}\]")
    msg = site.sink.wait_for(subject.encode())[0]
    received = msg.header("Received")
    assert f"[{CLIENT}]" in received, received
    assert "127.0.0.1" not in received.split("by ")[0], received
    # the milter's connect: the client's address and port, HAProxy's address
    connect = site.milter.session(site.milter.session_of_port(client_port))[0]
    assert connect["cb"] == "connect" and connect["args"][2] == [CLIENT, client_port], connect
    assert connect["macros"]["{client_addr}"] == CLIENT, connect
    assert connect["macros"]["{daemon_addr}"] == FRONT, connect


def test_relay_is_denied_for_another_client_behind_the_proxy(site):
    with via(site.ports.v1, OTHER) as c:
        assert c.greeting()[0].startswith("220 ")
        c.cmd("EHLO other.example")
        c.cmd("MAIL FROM:<a@example.test>")
        reply = c.cmd("RCPT TO:<b@sink.test>")
        assert reply[0].startswith("554 5.7.1"), reply
    site.tern.wait_log(rf"reject: RCPT from unknown\[{OTHER}\]: 554 5\.7\.1")
    # it waited for the greet pause: the header is no early talk
    assert f"rejecting commands from unknown[{OTHER}]" not in site.tern.log()


def test_smtps_header_comes_before_the_tls_handshake(site):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with via(site.ports.smtps, CLIENT) as c:
        c.sock = ctx.wrap_socket(c.sock, server_hostname="tern.test")
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd("EHLO client.example")[-1].startswith("250 ")
        c.cmd("QUIT")
    site.tern.wait_log(rf"connect from unknown\[{CLIENT}\] to listener smtps")


def test_v2_local_health_check_is_the_proxys_own_session(site):
    site.tern.wait_log(r"upstream proxy \[127\.0\.0\.1\]: PROXY v2 LOCAL: the connection is "
                       r"the proxy's own", timeout=10)
    site.tern.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 .*commands=", timeout=10)


def test_anvil_counts_each_client_behind_the_proxy_not_the_proxy(site):
    first, second = COUNTED
    with via(site.ports.v2, first) as a, via(site.ports.v2, second) as b:
        assert a.greeting()[0].startswith("220 ")
        assert b.greeting()[0].startswith("220 ")  # the proxy's count would be 2
        with via(site.ports.v2, first) as again:
            assert again.greeting() == [
                f"421 4.7.0 tern.test Error: too many connections from {first}"]
    site.tern.wait_log(rf"Connection concurrency limit exceeded: 2 from unknown\[{first}\]")


# ---------------------------------------------------------------- direct peers


def test_forged_header_from_a_host_not_in_the_list_is_closed_unread(site):
    with direct(site, FORGER) as c:
        c.send(b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 25\r\nEHLO forged.example\r\n")
        assert closed_without_banner(c)
    site.tern.wait_log(rf"upstream proxy \[{FORGER}\]: not in smtpd_upstream_proxy_hosts; "
                       r"connection closed \(listener submission\)")
    assert f"connect from unknown[{FORGER}]" not in site.tern.log()


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 025\r\n",  # leading zero
    b"EHLO not.a.proxy\r\n",  # a client that bypasses the balancer
    V2_SIGNATURE + b"\x21\x11\x00\x05\x7f\x00\x00\x05\x00",  # shorter than its addresses
    V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
], ids=["v1-port", "smtp", "v2-short", "v2-version"])
def test_malformed_header_is_closed_without_banner(site, header):
    before = site.tern.log().count("malformed PROXY header")
    with direct(site) as c:
        c.send(header)
        assert closed_without_banner(c)
    wait_until(lambda: site.tern.log().count("malformed PROXY header") > before, 10,
               "the malformed header's log line")
    site.tern.wait_log(r"upstream proxy \[127\.0\.0\.1\]: malformed PROXY header: .+; "
                       r"connection closed \(listener submission\)")


def test_silent_peer_is_closed_after_the_timeout(site):
    start = time.monotonic()
    with direct(site) as c:
        assert closed_without_banner(c, timeout=6)
    assert 1.5 < time.monotonic() - start < 5
    site.tern.wait_log(r"upstream proxy \[127\.0\.0\.1\]: timeout reading the PROXY header; "
                       r"connection closed")


def test_commands_pipelined_after_a_header_in_pieces_are_smtp(site):
    header = v2_header(CLIENT, "127.0.0.1", 41000, site.ports.proxied)
    with direct(site) as c:
        for piece in (header[:5], header[5:17], header[17:]):
            c.send(piece)
            time.sleep(0.1)
        c.send(b"EHLO piped.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@sink.test>\r\n")
        assert c.greeting()[0].startswith("220 ")
        assert c.read_reply()[-1].startswith("250 ")
        assert c.read_reply()[0].startswith("250")
        assert c.read_reply()[0].startswith("250")  # relay: 127.0.0.5 is in mynetworks
        c.cmd("QUIT")
    site.tern.wait_log(rf"connect from unknown\[{CLIENT}\]")


def test_ehlo_sent_with_the_header_before_the_greeting_is_early_talk(site):
    """the greet pause judges the client's bytes after the header, as
    postscreen's pregreet test does; EARLY is not in mynetworks"""
    with direct(site) as c:
        c.send(f"PROXY TCP4 {EARLY} 127.0.0.1 42000 25\r\nEHLO early.example\r\n".encode())
        assert c.greeting() == ["554 tern.test ESMTP not accepting messages"]
        assert c.read_reply() == ["554 5.5.0 SMTP protocol error"]
    site.tern.wait_log(rf"rejecting commands from unknown\[{EARLY}\] \[{EARLY}\] due to "
                       r"pre-greeting traffic")


def test_a_listener_without_the_protocol_takes_the_header_for_a_command(site):
    with site.tern.connect(source=CLIENT) as c:
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd(f"PROXY TCP4 {OTHER} 127.0.0.1 44000 25")[0].startswith("5")
        c.cmd("QUIT")
    site.tern.wait_log(rf"connect from unknown\[{CLIENT}\]$")  # listener smtpd: not named


def test_empty_host_list_refuses_everyone_and_says_so_at_start(mres):
    tern = mres.tern(start=False, smtpd_upstream_proxy_protocol="haproxy")
    tern.start(wait=False)
    tern.wait_log(r"listener smtpd: smtpd_upstream_proxy_protocol = haproxy but "
                  r"smtpd_upstream_proxy_hosts is empty: every connection is refused")
    wait_until(lambda: port_open(tern.port), 10, "the smtpd listener")
    with tern.connect() as c:
        c.send(f"PROXY TCP4 {CLIENT} 127.0.0.1 43000 25\r\n".encode())
        assert closed_without_banner(c)
    tern.wait_log(r"upstream proxy \[127\.0\.0\.1\]: not in smtpd_upstream_proxy_hosts; "
                  r"connection closed \(listener smtpd\)")
