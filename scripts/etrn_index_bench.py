#!/usr/bin/python3
"""How long qmgr takes to build its ETRN index (docs/queue.md "The ETRN index").

Queues one message of SIZE bytes for a dead next hop, stops tern, copies the
deferred file under COUNT new names, starts tern again and reads qmgr's
"ETRN index built: ... in S s" line.  Meanwhile it sends a message and
times its first delivery attempt (qmgr takes new mail during the build).  Page cache
warm (the copies were just written).  Usage:

    TERN_BUILD=build scripts/etrn_index_bench.py [COUNT [SIZE]]
"""
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests/integration"))
from ternlib import Sink, TernInstance, wait_until  # noqa: E402
from test_etrn import SLOW_RETRY, clone_deferred, queue_deferred  # noqa: E402


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    sink = Sink()
    tern = TernInstance(name="etrn-bench", relayhost=sink.hostport, **SLOW_RETRY)
    try:
        tern.start()
        body = ("x" * 76 + "\r\n") * max(1, size // 78)
        qid = queue_deferred(tern, "u@d.test", "bench\r\n\r\n" + body)
        tern.stop()
        clone_deferred(tern, qid, count - 1)
        before = len(tern.log())
        tern.start()
        started = time.monotonic()
        new = tern.send(b"Subject: during\r\n\r\nx\r\n", rcpts=("v@e.test",))
        tried = re.compile(rf"{new}: to=<v@e\.test>.*status=deferred")
        wait_until(lambda: tried.search(tern.log()[before:]), 600, "the new message tried")
        tried_after = time.monotonic() - started
        rx = re.compile(r"ETRN index built: (\d+) deferred.*?(\d+) files? read in ([\d.]+) s")
        m = wait_until(lambda: rx.search(tern.log()[before:]), 600, "the index built")
        files, secs = int(m.group(2)), float(m.group(3))
        order = "before" if tried.search(tern.log()[before:]).start() < m.start() else "after"
        print(f"{files} files of {size} bytes: built in {secs:.3f} s, "
              f"{secs * 1e6 / files:.1f} us per file; a message sent at start was tried "
              f"{tried_after:.3f} s after start, {order} the build ended")
    finally:
        tern.stop()
        tern.cleanup(keep=False)
        sink.stop()


if __name__ == "__main__":
    main()
