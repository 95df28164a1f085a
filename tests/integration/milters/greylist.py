"""A toy greylisting milter (SPEC SPAM-06) for test_milter_greylist.py, run
as `/usr/bin/python3 greylist.py DELAY unix:/path` (python3-milter).

At RCPT it looks up the triple (client address, sender, recipient): the
first time, and until DELAY seconds have passed since then, it answers
451 4.7.1 (as milter-greylist does); afterwards it lets the triple through.
Every decision goes to greylist.log next to the socket, one line each:
"TIME tempfail|pass CLIENT SENDER RCPT".
"""

import os
import sys
import threading
import time

import Milter

DELAY = float(sys.argv[1])
LOG = os.path.join(os.path.dirname(sys.argv[2].split(":", 1)[1]), "greylist.log")
FIRST_SEEN = {}
LOCK = threading.Lock()


class Greylist(Milter.Base):
    def connect(self, hostname, family, hostaddr):
        self.client = hostaddr[0] if isinstance(hostaddr, tuple) else str(hostaddr)
        return Milter.CONTINUE

    def envfrom(self, sender, *args):
        self.sender = sender
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        triple = (self.client, self.sender.lower(), to.lower())
        now = time.time()
        with LOCK:
            first = FIRST_SEEN.setdefault(triple, now)
        verdict = "pass" if now - first >= DELAY else "tempfail"
        with open(LOG, "a") as f:
            f.write(f"{now:.3f} {verdict} {' '.join(triple)}\n")
        if verdict == "pass":
            return Milter.CONTINUE
        self.setreply("451", "4.7.1", "Greylisted, please try again later")
        return Milter.TEMPFAIL


if __name__ == "__main__":
    os.umask(0)  # tern-smtpd runs as mail_owner: the socket must be open to it
    Milter.factory = Greylist
    Milter.runmilter("greylist", sys.argv[2], timeout=60)
