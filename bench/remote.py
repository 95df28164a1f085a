#!/usr/bin/python3
"""remote.py - relay with virtual_alias_maps and an access map on LDAP (issue 14).

"Relay at 20 sessions with virtual_alias_maps and access on LDAP (through the
lookup service) against the same tables as lmdb: report both and Postfix with
proxy:ldap:, same run.  Goal: within 15% of lmdb, and >= 2x Postfix."

Three instances, measured in turn in every repetition (the machine's drift
hits all three):

  tern lmdb      virtual_alias_maps = lmdb:FILE, check_sender_access lmdb:FILE
  tern ldap      the same tables as ldap:/.../virtual.cf and access.cf (tern's
                 services ask tern-proxymap, the lookup service, by default)
  Postfix ldap   proxy:ldap:/.../virtual-pf.cf and access-pf.cf (proxymap)

One throwaway slapd (tests/integration/remoteutil.Slapd) holds the data: N
virtual aliases userI@example.com -> userI@sink.example and a few sender
domains -> REJECT; the bench's client and sender are in no table, so every
message does every lookup.  The load is bench/tls_source -p (plain SMTP, S
sessions, one message per connection, 4 KiB), each message to the next of the
N aliases (-n N): a cache meets every key, each again N messages later.
The classes (Tern, Postfix, SmtpSink, Results) and tls_source() are
bench.py's.  Output: bench/results/remote.md.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402  (also puts tests/integration on sys.path)
import remoteutil  # noqa: E402
from remoteutil import LDAP_SUFFIX, Slapd  # noqa: E402

ROW = "relay with remote tables"
DOMAIN = "example.com"  # the virtual alias domain
TARGET = "sink.example"  # where the aliases point (relayed to smtp-sink)
REJECTED = ("spam1.test", "spam2.test", "spam3.test", "junk.example", "bad.example")
TERN_LMDB, TERN_LDAP, PF_LDAP = "tern lmdb", "tern ldap", "Postfix ldap"
TERN_NOCACHE = "tern ldap, no cache"  # --no-cache: proxymap_cache_ttl = 0


class BenchSlapd(Slapd):
    """remoteutil's Slapd plus misc.schema (mailLocalAddress, mailRoutingAddress:
    sendmail's LDAP routing schema), equality indexes on the keys looked up,
    and cn=Monitor (back_monitor, built into Debian's slapd), which counts the
    searches answered."""

    INDEXES = "index mailLocalAddress,cn eq\n"
    SEARCHES = "cn=Search,cn=Operations,cn=Monitor"

    def prepare(self) -> None:
        if self._prepared:
            return
        schemas = remoteutil.LDAP_SCHEMAS
        remoteutil.LDAP_SCHEMAS = schemas + ("misc",)
        try:
            super().prepare()
        finally:
            remoteutil.LDAP_SCHEMAS = schemas
        with open(self.conf, "a") as f:
            f.write(self.INDEXES)
        B.run(["slapindex", "-q", "-f", str(self.conf)], 120, check=True)
        with open(self.conf, "a") as f:
            f.write("database monitor\n")

    def searches(self) -> int:
        """Searches completed so far (the bench's own count queries included)."""
        r = B.run(["ldapsearch", "-LLL", "-x", "-H", self.url, "-b", self.SEARCHES, "-s",
                   "base", "monitorOpCompleted"], 30, check=True)
        m = re.search(rb"monitorOpCompleted: (\d+)", r.stdout)
        if not m:
            raise RuntimeError(f"no monitorOpCompleted in {self.SEARCHES}")
        return int(m.group(1))


def slapd_version() -> str:
    r = B.run(["/usr/sbin/slapd", "-VV"], 30)
    text = (r.stderr or r.stdout).decode(errors="replace")
    m = re.search(r"slapd ([^ ]+)", text)
    return f"OpenLDAP slapd {m.group(1)}" if m else "slapd ?"


def ldif(n: int) -> str:
    out = [f"dn: ou=people,{LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=access,{LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: access\n"]
    for i in range(n):
        out.append(f"dn: uid=user{i},ou=people,{LDAP_SUFFIX}\n"
                   "objectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\n"
                   f"uid: user{i}\ncn: user{i}\nsn: bench\n"
                   f"mailLocalAddress: user{i}@{DOMAIN}\nmailRoutingAddress: user{i}@{TARGET}\n")
    for d in REJECTED:
        out.append(f"dn: cn={d},ou=access,{LDAP_SUFFIX}\nobjectClass: applicationProcess\n"
                   f"cn: {d}\ndescription: REJECT\n")
    return "\n".join(out)


def cf_text(url: str, table: str) -> str:
    """One .cf for both MTAs (tern reads Postfix's ldap_table(5) format)."""
    if table == "virtual":
        base, filt, attr = f"ou=people,{LDAP_SUFFIX}", "(mailLocalAddress=%s)", "mailRoutingAddress"
    else:
        base, filt, attr = f"ou=access,{LDAP_SUFFIX}", "(cn=%s)", "description"
    return (f"server_host = {url}\nsearch_base = {base}\nquery_filter = {filt}\n"
            f"result_attribute = {attr}\nversion = 3\nbind = no\ntimeout = 10\n")


def write_tables(d: Path, url: str, n: int) -> Dict[str, Path]:
    """virtual.cf, access.cf (tern), virtual-pf.cf, access-pf.cf (Postfix), and
    the same data as text files virtual, access (made into lmdb later)."""
    d.mkdir()
    os.chmod(d, 0o755)
    files: Dict[str, Path] = {}
    for table in ("virtual", "access"):
        for name in (f"{table}.cf", f"{table}-pf.cf"):
            files[name] = d / name
            files[name].write_text(cf_text(url, table))
            os.chmod(files[name], 0o644)
    files["virtual"] = d / "virtual"
    files["virtual"].write_text("".join(f"user{i}@{DOMAIN} user{i}@{TARGET}\n"
                                        for i in range(n)))
    files["access"] = d / "access"
    files["access"].write_text("".join(f"{x} REJECT\n" for x in REJECTED))
    return files


def tern_params(kind: str, files: Dict[str, Path]) -> Dict[str, str]:
    if kind == "lmdb":
        virt, acc = f"lmdb:{files['virtual']}", f"lmdb:{files['access']}"
    else:
        virt, acc = f"ldap:{files['virtual.cf']}", f"ldap:{files['access.cf']}"
    return {"virtual_alias_maps": virt, "virtual_alias_domains": DOMAIN,
            "smtpd_sender_restrictions": f"check_sender_access {acc}"}


def postfix_params(files: Dict[str, Path]) -> Dict[str, str]:
    return {"virtual_alias_maps": f"proxy:ldap:{files['virtual-pf.cf']}",
            "virtual_alias_domains": DOMAIN,
            "smtpd_sender_restrictions":
                f"check_sender_access proxy:ldap:{files['access-pf.cf']}"}


def build_lmdb(tern: B.Tern, files: Dict[str, Path]) -> None:
    for t in ("virtual", "access"):
        r = B.run([str(B.TERN), "-c", str(tern.t.etc), "map", f"lmdb:{files[t]}"], 60)
        if r.returncode != 0:
            raise RuntimeError(f"tern map lmdb:{files[t]}: {r.stderr.decode(errors='replace')}")


def census(mta, sink_port: int) -> Optional[str]:
    """Whether the tables answer through this MTA: a sender in a REJECT domain
    is refused, an unknown address in the alias domain is refused, and a
    known one is accepted and relayed rewritten.  None if so, else why not."""
    sink = B.SmtpSink(sink_port).start()
    try:
        with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
            s.ehlo("census.test")
            s.mail(f"someone@{REJECTED[0]}")  # both MTAs refuse at RCPT (delayed reject)
            code, _ = s.rcpt(f"user7@{DOMAIN}")
            if code < 500:
                return f"MAIL FROM someone@{REJECTED[0]} got {code} at RCPT, not a rejection"
            s.rset()
            s.mail(B.FROM)
            code, _ = s.rcpt(f"nobody@{DOMAIN}")
            if code < 500:
                return f"RCPT TO nobody@{DOMAIN} (in no table) got {code}, not a rejection"
            s.rset()
            s.sendmail(B.FROM, [f"user7@{DOMAIN}"], b"Subject: census\r\n\r\ncensus\r\n")
        sink.wait_count(1, 30)
        B.wait_for(lambda: f"user7@{TARGET}" in B.maillog_of(mta).read_text(errors="replace"),
                   20, f"{mta.name}: user7@{TARGET} in the log")
        B.wait_drained(mta, 30)
        return None
    except (smtplib.SMTPException, OSError, AssertionError, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        sink.stop()


def lookup_path(mta) -> str:
    """How tern ldap's lookups go: the names of its processes say whether a
    tern-proxymap runs."""
    names = set()
    for pid in mta.pids():
        try:
            names.add(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            pass
    if any(n.startswith("tern-proxymap") for n in names):
        return "through tern-proxymap (a tern-proxymap process runs)"
    return "directly from each service: no tern-proxymap process runs in this build"


def send(port: int, sessions: int, count: int, aliases: int, timeout: float) -> Dict[str, str]:
    """bench/tls_source -p (plain SMTP, one message per connection) -s S -m M,
    each message to the next of userI@example.com, I = 0 .. aliases-1."""
    return B.tls_source(port, sessions, count, False, timeout, rcpt=f"user@{DOMAIN}",
                        extra=("-p", "-n", str(aliases)))


def measure(mta, slapd: Slapd, aliases: int, sink_port: int, sessions: int, count: int,
            res: B.Results) -> None:
    sink = B.SmtpSink(sink_port).start()
    timeout = 60 + count / 10
    try:
        ldap0, searches0 = B.cpu_seconds_of(slapd.live_pids()), slapd.searches()
        cpu0 = B.cpu_seconds_of(mta.pids())
        kv = send(mta.port, sessions, count, aliases, timeout)
        t0, accept = float(kv["t_start"]), float(kv["seconds"])
        t_end = sink.wait_count(count, timeout)
        B.wait_drained(mta, 60)
        cpu1, ldap1 = B.cpu_seconds_of(mta.pids()), B.cpu_seconds_of(slapd.live_pids())
        searches = slapd.searches() - searches0 - 1  # less the first count query
    finally:
        sink.stop()
    row = f"{ROW}, {sessions} sessions"
    res.add(f"{row}: accepted msg/s", mta.name, count / accept)
    res.add(f"{row}: end-to-end msg/s", mta.name, count / (t_end - t0))
    res.add(f"{row}: MTA CPU per message, ms", mta.name, 1000 * (cpu1 - cpu0) / count)
    if mta.name != TERN_LMDB:
        res.add(f"{row}: slapd CPU per message, ms", mta.name, 1000 * (ldap1 - ldap0) / count)
        res.add(f"{row}: LDAP searches per message", mta.name, searches / count)


def ratios(a: Optional[List[float]], b: Optional[List[float]]) -> str:
    r = [x / y for x, y in zip(a or [], b or []) if y]
    return B.cell(r) if r else "-"


def render(res: B.Results, meta: List[str], who: List[str]) -> str:
    out = ["# Relay with virtual_alias_maps and an access map on LDAP — bench/remote.py", ""]
    out += meta + ["", f"| measure | {' | '.join(who)} | tern ldap / tern lmdb | "
                   "tern ldap / Postfix ldap | target |", "|---" * (len(who) + 4) + "|"]
    for row in res.rows:
        v = res.values[row]
        cols = " | ".join(B.cell(v.get(w)) for w in who)
        speed = "msg/s" in row
        target = "≥ 0.85 / ≥ 2" if "end-to-end" in row else ""
        r1 = ratios(v.get(TERN_LDAP), v.get(TERN_LMDB)) if speed or "MTA CPU" in row else "-"
        r2 = ratios(v.get(TERN_LDAP), v.get(PF_LDAP))
        out.append(f"| {row} | {cols} | {r1} | {r2} | {target} |")
    out += ["", "LDAP searches per message: slapd's cn=Monitor count of completed searches "
            "over the run, over the messages (tern's cache, if any, shows here).", "",
            "Cells: median (min–max) over the repetitions; a ratio is the median (min–max) "
            "of the per-repetition ratios: > 1 is better for tern ldap in msg/s rows, < 1 in "
            "CPU rows.  The issue's target: tern ldap end-to-end within 15% of tern lmdb "
            "(ratio ≥ 0.85) and ≥ 2× Postfix ldap.  MTA CPU: every process of the instance "
            "(reaped children included: tern-proxymap, Postfix's proxymap) from the start of "
            "the load until the queue is empty, over the messages; slapd's own CPU separately."]
    out += [f"Note: {n}" for n in res.notes]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition, 500 messages")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    ap.add_argument("--messages", type=int, help="messages per run (default 4000, --quick 500)")
    ap.add_argument("--sessions", type=int, default=20, help="parallel sessions (default 20)")
    ap.add_argument("--aliases", type=int, default=1000, help="virtual aliases (default 1000)")
    ap.add_argument("--no-cache", action="store_true",
                    help="a fourth instance: tern ldap with proxymap_cache_ttl = 0")
    ap.add_argument("--out", help="results file (default bench/results/remote.md; --quick: "
                    "remote-quick.md, so a smoke run never replaces the real results)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("remote.py: run as root (Postfix's master, slapd)", file=sys.stderr)
        return 2
    if not B.TLS_SOURCE.exists():
        print(f"remote.py: {B.TLS_SOURCE} missing (built by meson with libssl-dev)",
              file=sys.stderr)
        return 2
    reps = args.reps or (1 if args.quick else 3)
    msgs = args.messages or (500 if args.quick else 4000)
    if args.out is None:
        name = "remote-quick.md" if args.quick else "remote.md"
        args.out = str(B.REPO / "bench" / "results" / name)
    signal.signal(signal.SIGTERM, B.on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    work = Path(tempfile.mkdtemp(prefix="tern-bench-remote-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    B.CLEANUPS.append(lambda: shutil.rmtree(work, ignore_errors=True))
    res = B.Results()
    started, load_before = time.time(), B.loadavg()
    try:
        sink_port = B.free_port()
        slapd = BenchSlapd(work, ldif=ldif(args.aliases), ldapi=False)
        B.CLEANUPS.append(slapd.cleanup)
        slapd.start()
        files = write_tables(work / "tables", slapd.url, args.aliases)
        mtas = [B.Tern(work, sink_port, name=TERN_LMDB, extra=tern_params("lmdb", files)),
                B.Tern(work, sink_port, name=TERN_LDAP, extra=tern_params("ldap", files)),
                B.Postfix(work, sink_port, name=PF_LDAP, extra=postfix_params(files))]
        if args.no_cache:
            extra = dict(tern_params("ldap", files), proxymap_cache_ttl="0")
            mtas.insert(2, B.Tern(work, sink_port, name=TERN_NOCACHE, extra=extra))
        who = [m.name for m in mtas]
        build_lmdb(mtas[0], files)
        for m in list(mtas):
            try:
                m.start()
                why = census(m, sink_port)
            except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as e:
                why = f"did not start: {e}"
            if why:
                why = " ".join(why.split())
                res.notes.append(f"{m.name}: left out, its tables do not answer ({why})")
                B.log(f"{m.name}: left out: {why}")
                m.stop()
                mtas.remove(m)
        for m in mtas:
            if m.name in (TERN_LDAP, TERN_NOCACHE):
                res.notes.append(f"{m.name}'s lookups go {lookup_path(m)}.")
        B.log(f"slapd {slapd.url}; " + ", ".join(f"{m.name} on {m.port}" for m in mtas))
        for rep in range(reps):
            B.log(f"repetition {rep + 1}/{reps}")
            for m in mtas:
                measure(m, slapd, args.aliases, sink_port, args.sessions, msgs, res)
        meta = [
            f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, "
            f"{'--quick, ' if args.quick else ''}{reps} "
            f"repetition(s) ({', '.join(m.name for m in mtas)} in each), "
            f"{(time.time() - started) / 60:.1f} min; {os.cpu_count()} CPUs.",
            f"Versions: {B.versions()}, {slapd_version()}.",
            f"Load: {msgs} msgs of 4 KiB per run, bench/tls_source -p -s {args.sessions} "
            f"(plain SMTP, one message per connection), each message to the next of "
            f"user0..user{args.aliases - 1}@{DOMAIN} (-n {args.aliases}), the virtual aliases "
            f"-> user<i>@{TARGET}; access: {len(REJECTED)} sender domains -> REJECT, the "
            f"sender {B.FROM} in none; virtual_alias_domains = {DOMAIN}.",
            f"Load average (1/5/15 min) before: {load_before}, after: {B.loadavg()}.",
        ]
        text = render(res, meta, who)
        print(text)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        B.log(f"saved {args.out}")
        return 0
    finally:
        B.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        B.log(f"interrupted ({e}); cleaned up")
        sys.exit(130)
