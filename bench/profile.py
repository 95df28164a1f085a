#!/usr/bin/python3
"""profile.py - where tern's time goes: perf (cpu-clock samples, call graphs)
and strace -c (syscall counts) on tern's services during one scenario.

    sudo TERN_BUILD=build-release /usr/bin/python3 bench/profile.py relay|drain|local|policy|policy-baseline|milter [N] [--strace] [--sessions=S]

relay: smtp-source -s 20 -m N into tern, relaying to smtp-sink;
policy, policy-baseline: the same into bench.py's "relay with policy"
instances (an outsider client, dnsmasq on loopback; policy: 5 DNS lists,
the access map, sender and recipient checks; baseline: none of them);
milter: relay through smtpd_milters = one bench/bench_milter (bench.py's
milter rows; the milter's own CPU is not sampled);
drain: N messages queued with the sink down, then sink up + flush;
local: smtp-source -s 20 -m N to a Maildir user.
Writes bench/results/profile-SCENARIO.txt (perf report by process and
symbol) or, with --strace, profile-SCENARIO-strace.txt (strace -c per service).  Uses bench.py's classes;
same cleanup rules (every process it starts is stopped, user removed).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SERVICES = ("smtpd", "cleanup", "qmgr", "smtp", "local", "anvil")


def tracers_start(t, work: Path, use_strace: bool):
    """perf record on all services, or (use_strace) strace -c on each: the
    two are not combined, since ptrace stops would dominate perf's samples."""
    pids = {name: t.t.service_pids(name) for name in SERVICES}
    allpids = ",".join(str(p) for ps in pids.values() for p in ps)
    procs = [] if use_strace else [subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g",
                               "-o", str(work / "perf.data"), "-p", allpids],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for name, ps in (pids.items() if use_strace else ()):
        for p in ps:
            procs.append(subprocess.Popen(["strace", "-c", "-f", "-o",
                                           str(work / f"strace-{name}-{p}.txt"), "-p", str(p)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    return procs


def tracers_stop(procs) -> None:
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def report(work: Path, scenario: str, summary: str) -> str:
    out = [f"# profile: {scenario} ({summary})", ""]
    if not (work / "perf.data").exists():
        for f in sorted(work.glob("strace-*.txt")):
            lines = f.read_text().splitlines()
            out += ["", f"## strace -c {f.stem[7:]}"] + lines[:22]
        return "\n".join(out) + "\n"
    r = subprocess.run(["perf", "report", "-i", str(work / "perf.data"), "--stdio",
                        "--no-children", "--sort", "comm,sym", "--percent-limit", "1",
                        "-g", "none"], capture_output=True, text=True, timeout=300)
    out.append("## perf report (cpu-clock, by process and symbol, >= 1%)")
    out += [line for line in r.stdout.splitlines() if line and not line.startswith("#")]
    r = subprocess.run(["perf", "report", "-i", str(work / "perf.data"), "--stdio",
                        "--no-children", "--sort", "comm,dso", "-g", "none"],
                       capture_output=True, text=True, timeout=300)
    out.append("")
    out.append("## perf report by process and object")
    out += [line for line in r.stdout.splitlines() if line and not line.startswith("#")]
    return "\n".join(out) + "\n"


def main() -> int:
    argv = [a for a in sys.argv[1:] if a != "--strace" and not a.startswith("--sessions=")]
    use_strace = "--strace" in sys.argv
    sessions = int(next((a.split("=", 1)[1] for a in sys.argv[1:]
                         if a.startswith("--sessions=")), "20"))
    scenario = argv[0] if argv else "relay"
    n = int(argv[1]) if len(argv) > 1 else 5000
    work = Path(tempfile.mkdtemp(prefix="tern-prof-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    bench.CLEANUPS.append(lambda: __import__("shutil").rmtree(work, ignore_errors=True))
    try:
        sink_port = bench.free_port()
        if scenario.startswith("policy"):
            dns = bench.BenchDns(work).start()
            files = (bench.write_policy_tables(work / "policy-tables")
                     if scenario == "policy" else None)
            t = bench.Tern(work, sink_port, name=f"tern {scenario}",
                           extra=bench.tern_policy_params(dns, files))
            if files:
                bench.run([str(bench.TERN), "-c", str(t.t.etc), "map",
                           f"hash:{files['access']}"], 60, check=True)
        elif scenario == "milter":
            milter = bench.BenchMilter(work / "milter.sock").start()
            t = bench.Tern(work, sink_port, name="tern milter",
                           extra=dict(bench.MILTER_PARAMS, smtpd_milters=milter.spec))
        else:
            t = bench.Tern(work, sink_port)
        user = bench.BenchUser(work) if scenario == "local" else None
        t.start()
        sink = None
        if scenario == "drain":
            bench.fill_queue(t, n, 600)
            sink = bench.SmtpSink(sink_port).start()
        elif scenario in ("relay", "milter") or scenario.startswith("policy"):
            sink = bench.SmtpSink(sink_port).start()
        procs = tracers_start(t, work, use_strace)
        t0 = time.monotonic()
        try:
            if scenario in ("relay", "milter") or scenario.startswith("policy"):
                bench.smtp_source(t.port, sessions, n, bench.RELAY_RCPT, 600)
                sink.wait_count(n, 600)
            elif scenario == "drain":
                t.flush()
                sink.wait_count(n, 600)
            else:
                bench.smtp_source(t.port, 20, n, f"{user.name}@{bench.LOCAL_DOMAIN}", 600)
                bench.wait_for(lambda: user.new_count() >= n, 600, "Maildir deliveries")
            elapsed = time.monotonic() - t0
        finally:
            tracers_stop(procs)
        summary = f"{sessions} sessions, {n} messages in {elapsed:.1f} s = {n / elapsed:.0f} msg/s under {'strace' if use_strace else 'perf'}"
        text = report(work, scenario, summary)
        tag = f"-{sessions}" if sessions != 20 else ""
        out = Path(__file__).resolve().parent / "results" / f"profile-{scenario}{tag}{'-strace' if use_strace else ''}.txt"
        out.write_text(text)
        print(text)
        return 0
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
