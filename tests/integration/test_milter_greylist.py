"""SPEC SPAM-06: greylisting through a milter, with tern on both sides.

Instance B has a toy greylisting milter (milters/greylist.py): the first
(client, sender, recipient) triple gets 451 4.7.1 at RCPT, the same triple
passes once 5 seconds have gone by.  Instance A relays to B: it must take
the 451 as a deferral and retry until B takes the message, which then
reaches the sink behind B.
"""

import subprocess
import tempfile
import time
from pathlib import Path

from ternlib import make_message, terminate, wait_until

HERE = Path(__file__).resolve().parent
DELAY = 5


class GreylistMilter:
    def __init__(self, base: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="greylist-", dir=base))
        self.dir.chmod(0o755)
        self.path = self.dir / "g.sock"
        self.log = self.dir / "greylist.log"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "milters" / "greylist.py"), str(DELAY),
             f"unix:{self.path}"],
            stdout=open(self.dir / "out.log", "wb"), stderr=subprocess.STDOUT)
        wait_until(self.path.exists, 10, "greylist milter listening")

    def decisions(self):
        try:
            return [line.split() for line in self.log.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        terminate(self.proc)


def test_greylisted_mail_is_retried_and_delivered(res, it_base):
    milter = GreylistMilter(it_base)
    res.others.append(milter)
    sink = res.sink()
    b = res.tern(name="greylisting", myhostname="b.test", relayhost=sink.hostport,
                 smtpd_milters=f"unix:{milter.path}")
    a = res.tern(name="sender", relayhost=f"[127.0.0.1]:{b.port}")
    started = time.time()
    qid = a.send(make_message(headers={"X-Test": "greylisted"}), rcpts=("grey@sink.test",))

    # B's answer to A's first try is the milter's 451, and A defers
    a.wait_log(rf"{qid}: to=<grey@sink\.test>, relay=\S+, .*status=deferred \(.*451 4\.7\.1 "
               r"Greylisted, please try again later", timeout=20)
    b.wait_log(r"milter-reject: RCPT from \S+\[127\.0\.0\.1\]: 451 4\.7\.1 Greylisted, please "
               r"try again later; from=<sender@example\.test> to=<grey@sink\.test>")
    # A's queue retry gets it through once the greylist delay is over
    sink.wait_for(b"X-Test: greylisted", timeout=30)
    assert time.time() - started >= DELAY
    a.wait_log(rf"{qid}: to=<grey@sink\.test>, relay=\S+, .*status=sent")
    verdicts = [d[1] for d in milter.decisions() if d[4] == "<grey@sink.test>"]
    assert verdicts[0] == "tempfail" and verdicts[-1] == "pass", milter.decisions()
    assert len(sink.matching(b"X-Test: greylisted")) == 1
