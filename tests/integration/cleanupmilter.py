"""A python3-milter filter for tests/integration/test_cleanup_milter.py, run
as `/usr/bin/python3 cleanupmilter.py MODE unix:/path`.  At the end of
every message:

  modify      adds "X-Test: 1", deletes Subject:, adds the recipient
              <added@sink.test>, replaces the body with "cleaned"
  quarantine  quarantines the message: "test reason"
  reject      550 5.7.1 "milter says no" (two lines: "5.7.1 milter says no"
              and "5.7.1 second line")
  pass        continues, changes nothing

It writes every header it was sent, one "name: value" per line, to
headers.log next to the socket.
"""

import os
import sys

import Milter

MODE = sys.argv[1]
SOCK = sys.argv[2]
LOG = os.path.join(os.path.dirname(SOCK.split(":", 1)[1]), "headers.log")


class CleanupMilter(Milter.Base):
    def header(self, name, value):
        with open(LOG, "a") as f:
            f.write(f"{name}: {value!r}\n")
        return Milter.CONTINUE

    def eom(self):
        if MODE == "modify":
            self.addheader("X-Test", "1")
            self.chgheader("Subject", 1, "")
            self.addrcpt("<added@sink.test>")
            self.replacebody(b"cleaned\n")
        elif MODE == "quarantine":
            self.quarantine("test reason")
        elif MODE == "reject":
            self.setreply("550", "5.7.1", "milter says no", "second line")
            return Milter.REJECT
        return Milter.CONTINUE


def main():
    os.umask(0)  # tern runs as mail_owner: the socket must be open to it
    Milter.factory = CleanupMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.CHGBODY
                     | Milter.QUARANTINE)
    Milter.runmilter("cleanupmilter", SOCK, timeout=120)


if __name__ == "__main__":
    main()
