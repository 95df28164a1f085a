"""Listing and scheduling cost of tern at several queue depths (default
2000 20000 100000): queue files written straight into deferred/ while tern
is stopped, then `tern queue list -j` and `sendmail -bp` timed through showq,
then a flush drained into Postfix's smtp-sink (msg/s).  Linear cost shows as
a constant time per message and a constant drain rate.

    sudo bench/run.sh --quick >/dev/null   # once: builds build-release, installs smtp-sink
    sudo /usr/bin/python3 bench/depth.py [DEPTH ...]
"""
import os, sys, time, subprocess, tempfile, shutil
from pathlib import Path
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))
os.environ["TERN_BUILD"] = str(REPO / "build-release")
import ternlib
ternlib.BUILD = REPO / "build-release"; ternlib.TERN = ternlib.BUILD / "tools" / "tern"
from ternlib import TernInstance, free_port, wait_until
from test_queue_tools import qid_make, qfile_bytes, qid_hash_dir
from bench import SmtpSink
content = ("Subject: deep\r\n\r\n" + "x" * 76 + "\r\n") * 50
content = content.encode()
for depth in [int(a) for a in sys.argv[1:]] or [2000, 20000, 100000]:
    base = Path(tempfile.mkdtemp(dir="/var/tmp")); os.chmod(base, 0o755)
    sport = free_port()
    t = TernInstance(base=base, relayhost=f"[127.0.0.1]:{sport}", name="depth")
    t.start(); t.stop()
    import pwd; pw = pwd.getpwnam("tern")
    later = time.time() + 3600
    now = time.time()
    for i in range(depth):
        qid = qid_make(10**9 + i)
        p = t.queue / "deferred" / qid_hash_dir(qid) / qid
        p.write_bytes(qfile_bytes("s@example.test", [f"r{i}@remote.test"], content, now))
        os.chown(p, pw.pw_uid, pw.pw_gid); os.chmod(p, 0o600); os.utime(p, (later, later))
    t.start()
    t0 = time.time(); r = t.tern("queue", "list", "-j", timeout=600); tl = time.time() - t0
    n = len(r.stdout.splitlines())
    t0 = time.time(); r2 = subprocess.run([str(ternlib.BUILD / "tools" / "sendmail"), "-C", str(t.conf_path), "-bp"], capture_output=True, timeout=600); tm = time.time() - t0
    sink = SmtpSink(sport); sink.start() if hasattr(sink, "start") else None
    t0 = time.time(); t.tern("queue", "flush")
    wait_until(lambda: sink.count >= depth, 60 + depth / 200, "drain")
    td = time.time() - t0
    print(f"depth {depth}: listed {n}; list -j {tl:.3f}s ({tl/depth*1e6:.1f} us/msg), mailq {tm:.3f}s; drain {depth/td:.0f} msg/s", flush=True)
    sink.stop() if hasattr(sink, "stop") else None
    t.stop(); t.cleanup()
    shutil.rmtree(base, ignore_errors=True)
