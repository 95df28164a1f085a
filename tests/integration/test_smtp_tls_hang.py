"""A TLS handshake that never finishes stalls no other delivery.

tern-smtp runs every delivery on one event loop.  A next hop that answers
STARTTLS with 220 and then never sends its ServerHello keeps one delivery
waiting (until smtp_helo_timeout), while a message to another next hop, sent
after the hung one started, is delivered at once: the handshake runs on the
loop, not in a blocking SSL_connect.  When the timeout comes the hung
delivery is deferred with a reason that names the handshake.
"""

import smtplib
import threading
import time

from ternlib import SilentServer, wait_until


class StarttlsThenSilence(SilentServer):
    """A raw SMTP peer: greets, offers STARTTLS, says 220 to it, then reads
    and ignores whatever comes (a ClientHello) and never answers."""

    def __init__(self):
        self.hello_bytes = 0  # bytes of the ClientHello that arrived
        super().__init__()

    def _line(self, c):
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(1)
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _serve(self, c):
        try:
            c.sendall(b"220 hang.test ESMTP\r\n")
            self._line(c)  # EHLO
            c.sendall(b"250-hang.test\r\n250 STARTTLS\r\n")
            if not self._line(c).upper().startswith(b"STARTTLS"):
                return
            c.sendall(b"220 2.0.0 go ahead\r\n")
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    return
                self.hello_bytes += len(chunk)
        except OSError:
            return

    def _accepted(self, conn):
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()


def send(t, rcpt):
    with smtplib.SMTP(t.host, t.port, timeout=30) as s:
        s.sendmail("a@src.test", [rcpt], f"Subject: to {rcpt}\r\n\r\nhi\r\n".encode())


def test_hung_handshake_stalls_no_other_delivery(mres):
    peer = StarttlsThenSilence()
    sink = mres.sink()
    tern = mres.tern(start=False, smtp_helo_timeout="6s")
    routes = tern.etc / "transport"
    routes.write_text(f"hang.test smtp:[127.0.0.1]:{peer.port}\nok.test smtp:{sink.hostport}\n")
    routes.chmod(0o644)
    tern.conf_edit(transport_maps=f"texthash:{routes}")
    tern.start()
    try:
        send(tern, "u@hang.test")
        wait_until(lambda: peer.hello_bytes > 0, 15, "the ClientHello at the hung peer")
        started = time.monotonic()
        send(tern, "v@ok.test")
        sink.wait_for(b"to v@ok.test", timeout=15)
        assert time.monotonic() - started < 5, "the second delivery waited for the hung handshake"
        assert "status=deferred" not in tern.log(), tern.log()  # the hung one is still waiting
        m = tern.wait_log(r"to=<u@hang\.test>.*status=deferred \((.*)\)", timeout=30)
        assert "timed out while performing the TLS handshake" in m.group(1), m.group(0)
        assert "4.4.2" in m.group(0)
    finally:
        peer.stop()
