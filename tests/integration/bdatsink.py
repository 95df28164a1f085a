"""A raw SMTP sink that speaks CHUNKING (RFC 3030), which aiosmtpd lacks:
it offers the extensions it is told (PIPELINING, 8BITMIME, CHUNKING,
BINARYMIME), takes DATA and BDAT, and records per transaction the MAIL
line, the RCPT lines, the BDAT commands in order and the content bytes as
they arrived (BDAT: exactly; DATA: dot-unstuffed, without the final dot).
Without PIPELINING it waits 0.3 s after each chunk but the last and notes
a client that sends on before the reply (BdatMessage.early).
"""

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ternlib import SilentServer, free_port


@dataclass
class BdatMessage:
    mail: str
    rcpts: List[str]
    bdat: List[str] = field(default_factory=list)  # "BDAT 262144", "BDAT 10 LAST"
    content: bytes = b""
    via: str = ""  # "BDAT" or "DATA"
    early: bool = False  # without PIPELINING: a BDAT came before the reply to the one before


class _Reader:
    def __init__(self, conn: socket.socket):
        self.conn, self.buf = conn, b""

    def _more(self) -> bool:
        data = self.conn.recv(65536)
        self.buf += data
        return bool(data)

    def line(self) -> Optional[bytes]:
        while b"\r\n" not in self.buf:
            if not self._more():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def pending(self, wait: float) -> bool:
        """Anything more from the client within wait seconds?"""
        if self.buf:
            return True
        self.conn.settimeout(wait)
        try:
            return bool(self.conn.recv(1, socket.MSG_PEEK))
        except socket.timeout:
            return False
        finally:
            self.conn.settimeout(None)

    def exactly(self, n: int) -> Optional[bytes]:
        while len(self.buf) < n:
            if not self._more():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class BdatSink(SilentServer):
    """Start with BdatSink(extensions=(...)); .messages holds what came."""

    def __init__(self, extensions: Tuple[str, ...] = ("PIPELINING", "8BITMIME", "CHUNKING",
                                                       "BINARYMIME")):
        self.extensions = extensions
        self.messages: List[BdatMessage] = []
        self.lock = threading.Lock()
        super().__init__(port=free_port())

    def _accepted(self, conn: socket.socket) -> None:
        threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        try:
            self._talk(conn, _Reader(conn))
        except OSError:
            pass
        finally:
            conn.close()

    def _ehlo(self) -> bytes:
        lines = ["bdat-sink"] + list(self.extensions)
        return b"".join(f"250{'-' if i < len(lines) - 1 else ' '}{t}\r\n".encode()
                        for i, t in enumerate(lines))

    def _talk(self, conn: socket.socket, io: _Reader) -> None:
        conn.sendall(b"220 bdat-sink ESMTP\r\n")
        msg: Optional[BdatMessage] = None
        while True:
            line = io.line()
            if line is None:
                return
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(self._ehlo())
            elif verb == b"MAIL":
                msg = BdatMessage(mail=line.decode(), rcpts=[])
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT" and msg is not None:
                msg.rcpts.append(line.decode())
                conn.sendall(b"250 2.1.5 ok\r\n")
            elif verb == b"BDAT" and msg is not None:
                words = line.decode().split()
                msg.bdat.append(line.decode())
                msg.content += io.exactly(int(words[1])) or b""
                if len(words) > 2 and words[2].upper() == "LAST":
                    msg.via = "BDAT"
                    self._keep(msg)
                    msg = None
                elif "PIPELINING" not in self.extensions and io.pending(0.3):
                    msg.early = True
                conn.sendall(b"250 2.0.0 chunk ok\r\n")
            elif verb == b"DATA" and msg is not None:
                conn.sendall(b"354 go\r\n")
                msg.content, msg.via = self._data(io), "DATA"
                self._keep(msg)
                msg = None
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"503 5.5.1 bad sequence\r\n")

    @staticmethod
    def _data(io: _Reader) -> bytes:
        lines = []
        while True:
            line = io.line()
            if line is None or line == b".":
                return b"".join(l + b"\r\n" for l in lines)
            lines.append(line[1:] if line.startswith(b".") else line)

    def _keep(self, msg: BdatMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def wait_count(self, count: int, timeout: float = 20.0) -> List[BdatMessage]:
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"bdat sink: {len(self.messages)} messages, wanted {count}")
