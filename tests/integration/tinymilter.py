"""A tiny scripted milter for tests/integration/test_smtpd_milter.py, run
as `/usr/bin/python3 tinymilter.py MODE unix:/path` (python3-milter):

  rcpt-reject       RCPT of a local part "nope": 550 5.7.1 nope; others go on;
                    a body with "REJECT-ME": 554 5.7.1 bad body at its end;
                    MAIL from a local part "trusted": ACCEPT (the rest of
                    that transaction is not filtered)
  connect-tempfail  every connection: TEMPFAIL (no text of its own)
  rcpt-sleep        RCPT of a local part "slow": sleeps 60s before answering

and for test_cleanup_milter.py, at the end of every message:

  modify            adds "X-Test: 1", deletes Subject:, adds the recipient
                    <added@sink.test>, replaces the body with "cleaned"
  quarantine        quarantines the message: "test reason"
  eom-reject        550 "5.7.1 milter says no" / "5.7.1 second line"
  pass              changes nothing
  add-alias         adds the recipient <alias@tern.test>
  bad-rcpt          adds the recipient "<two words@sink.test>"
  big-body          replaces the body with 200000 bytes
  header-reject     a header "X-Reject": 550 5.7.1 header says no (before
                    the end of message)

Every header it is sent goes to headers.log next to the socket, one
"name: 'value'" per line; every SMFIC_ABORT adds a line "abort" to
events.log.
"""

import os
import sys
import time

import Milter

MODE = sys.argv[1]
HEADERS_LOG = os.path.join(os.path.dirname(sys.argv[2].split(":", 1)[1]), "headers.log")
EVENTS_LOG = os.path.join(os.path.dirname(HEADERS_LOG), "events.log")


class TinyMilter(Milter.Base):
    def connect(self, hostname, family, hostaddr):
        if MODE == "connect-tempfail":
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    def envfrom(self, sender, *args):
        if MODE == "rcpt-reject" and sender.strip("<>").split("@")[0] == "trusted":
            return Milter.ACCEPT
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        local = to.strip("<>").split("@")[0]
        if MODE == "rcpt-reject" and local == "nope":
            self.setreply("550", "5.7.1", "nope")
            return Milter.REJECT
        if MODE == "rcpt-sleep" and local == "slow":
            time.sleep(60)
        return Milter.CONTINUE

    def header(self, name, value):
        with open(HEADERS_LOG, "a") as f:
            f.write(f"{name}: {value!r}\n")
        if MODE == "header-reject" and name.lower() == "x-reject":
            self.setreply("550", "5.7.1", "header says no")
            return Milter.REJECT
        return Milter.CONTINUE

    def body(self, chunk):
        self.seen = getattr(self, "seen", b"") + chunk
        return Milter.CONTINUE

    def eom(self):
        seen, self.seen = getattr(self, "seen", b""), b""
        if MODE == "modify":
            self.addheader("X-Test", "1")
            self.chgheader("Subject", 1, "")
            self.addrcpt("<added@sink.test>")
            self.replacebody(b"cleaned\n")
        elif MODE == "quarantine":
            self.quarantine("test reason")
        elif MODE == "add-alias":
            self.addrcpt("<alias@tern.test>")
        elif MODE == "bad-rcpt":
            self.addrcpt("<two words@sink.test>")
        elif MODE == "big-body":
            for _ in range(4):
                self.replacebody(b"x" * 49999 + b"\n")
        elif MODE == "eom-reject":
            self.setreply("550", "5.7.1", "milter says no", "second line")
            return Milter.REJECT
        if MODE == "rcpt-reject" and b"REJECT-ME" in seen:
            self.setreply("554", "5.7.1", "bad body")
            return Milter.REJECT
        return Milter.CONTINUE

    def abort(self):
        self.seen = b""
        with open(EVENTS_LOG, "a") as f:
            f.write("abort\n")
        return Milter.CONTINUE


def main():
    os.umask(0)  # tern-smtpd runs as mail_owner: the socket must be open to it
    Milter.factory = TinyMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.CHGBODY
                     | Milter.QUARANTINE)
    Milter.runmilter("tinymilter", sys.argv[2], timeout=120)


if __name__ == "__main__":
    main()
