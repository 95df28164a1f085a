"""Issue 14 end to end: two tern hosts on one LDAP directory (and, in the
second half, one PostgreSQL database) answer every recipient the same way,
see a change in the directory without a reload once proxymap_cache_ttl has
passed, turn a directory outage into 451 4.3.0 and deferral (never 550, never
an accept), fail over to the second server, and never let an address change
the search (RFC 4515 / SQL quoting).  The last test measures the RCPT round
trip through tern-proxymap with a cold and a warm cache and writes it to
build-results/remote-latency.txt (docs/two-mx.md quotes it).

Both instances read the very same .cf files (one directory, as on two hosts
that mount or copy one /etc/tern), and route every delivery through the
remote transport table, so a delivery at the sink proves a remote lookup."""

import grp
import os
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import ldap
import pytest

from remoteutil import (
    LDAP_ROOTDN,
    LDAP_ROOTPW,
    LDAP_SUFFIX,
    PG_DB,
    PG_PASSWORD,
    PG_USER,
    Postgres,
    Slapd,
    start_remote,
)
from ternlib import attr_decode, attr_encode, free_port, make_message, wait_until

TTL = 2.0  # proxymap_cache_ttl of the two "MX" instances, seconds
# tern-proxymap counts whole seconds: an answer lives from TTL - 1 to TTL + 1 s
CACHE_GONE = TTL + 1.2
OK_SOURCE = "127.0.0.5"
BAD_NET_SOURCE = "127.0.9.1"  # its network 127.0.9 is REJECT in the access table
LATENCY_RCPTS = 200
ROOT = Path(__file__).resolve().parents[2]


def ldif_entries(*entries: str) -> str:
    return "\n".join(e.strip() + "\n" for e in entries)


def keyed_entry(ou: str, key: str, *values: str) -> str:
    """An alias, access or transport entry in the schemas every slapd has
    (core): cn is the key, description the value(s)."""
    lines = "".join(f"description: {v}\n" for v in values)
    return (f"dn: cn={key},ou={ou},{LDAP_SUFFIX}\nobjectClass: organizationalRole\n"
            f"cn: {key}\n{lines}")


def alias_entry(address: str, *targets: str) -> str:
    return keyed_entry("aliases", address, *targets)


def directory_ldif(sink_port: int, later_port: int) -> str:
    ous = [f"dn: ou={ou},{LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n"
           for ou in ("aliases", "people", "access", "transport")]
    people = [
        f"dn: uid={uid},ou=people,{LDAP_SUFFIX}\nobjectClass: inetOrgPerson\n"
        f"uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@virt.test\n"
        for uid in ("ann", "bob")
    ]
    aliases = [
        alias_entry("alias1@virt.test", "joe@sink.test"),
        alias_entry("team@virt.test", "joe@sink.test", "kim@sink.test"),
        alias_entry("later@virt.test", "x@later.test"),
    ] + [alias_entry(f"u{i:03d}@virt.test", "joe@sink.test") for i in range(LATENCY_RCPTS)]
    access = [
        keyed_entry("access", "spammer.test", "REJECT no mail from spammer.test"),
        keyed_entry("access", "127.0.9", "REJECT network refused"),
    ]
    transport = [
        keyed_entry("transport", "sink.test", f"smtp:[127.0.0.1]:{sink_port}"),
        keyed_entry("transport", "later.test", f"smtp:[127.0.0.1]:{later_port}"),
    ]
    return ldif_entries(*ous, *people, *aliases, *access, *transport)


def write_cf(directory: Path, name: str, text: str) -> Path:
    """A .cf file as docs/remote-tables.md asks: root-owned, 0640, group of
    the services (it holds a password)."""
    path = directory / name
    path.write_text(text)
    os.chown(path, 0, _tern_gid())
    path.chmod(0o640)
    return path


def _tern_gid() -> int:
    return grp.getgrnam("tern").gr_gid


def shared_etc(base: Path) -> Path:
    d = Path(tempfile.mkdtemp(prefix="remote-etc-", dir=base))
    d.chmod(0o755)
    return d


def ldap_cf(servers: str, ou: str, filt: str, attr: str, extra: str = "") -> str:
    return (f"server_host = {servers}\nsearch_base = ou={ou},{LDAP_SUFFIX}\n"
            f"query_filter = {filt}\nresult_attribute = {attr}\n"
            f"bind_dn = {LDAP_ROOTDN}\nbind_pw = {LDAP_ROOTPW}\ntimeout = 3\n{extra}")


class Mx:
    """What the LDAP (or PostgreSQL) half of the module shares: the server,
    the sinks, the two instances, the .cf directory."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def rcpt_reply(t, rcpt: str, sender: str = "a@example.test", source: str = OK_SOURCE) -> str:
    """The first line of the reply to RCPT TO:<rcpt> in a fresh session."""
    with t.connect(source=source) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        r = c.cmd(f"MAIL FROM:<{sender}>")
        if not r[0].startswith("250"):
            return r[0]
        return c.cmd(f"RCPT TO:<{rcpt}>", timeout=20)[0]


def send_one(t, rcpt: str, subject: str, sender: str = "a@example.test") -> str:
    return t.send(make_message(subject=subject, sender=sender), sender=sender, rcpts=(rcpt,),
                  source=OK_SOURCE)


def code(reply: str) -> str:
    return reply[:3]


# the recipient cases both hosts must answer alike: (name, source, sender,
# rcpt, expected reply code, addresses delivered at the sink or None)
LDAP_CASES = [
    ("alias", OK_SOURCE, "a@example.test", "alias1@virt.test", "250", ["joe@sink.test"]),
    ("list", OK_SOURCE, "a@example.test", "team@virt.test", "250",
     ["joe@sink.test", "kim@sink.test"]),
    ("user", OK_SOURCE, "a@example.test", "ann@virt.test", "250", ["ann@sink.test"]),
    ("routed", OK_SOURCE, "a@example.test", "direct@sink.test", "250", ["direct@sink.test"]),
    ("unknown", OK_SOURCE, "a@example.test", "nobody@virt.test", "550", None),
    ("sender-domain", OK_SOURCE, "bad@spammer.test", "alias1@virt.test", "5", None),
    ("client-net", BAD_NET_SOURCE, "a@example.test", "alias1@virt.test", "5", None),
    ("wildcard", OK_SOURCE, "a@example.test", "*@virt.test", "550", None),
]


@pytest.fixture(scope="module")
def lmx(mres):
    sink = mres.sink()
    later = mres.sink(start=False)  # the route of later.test: down until a test starts it
    slapd = start_remote(mres, Slapd(mres.base, ldif=directory_ldif(sink.port, later.port)))
    dead = free_port()
    etc = shared_etc(mres.base)
    servers = f"ldap://127.0.0.1:{dead} {slapd.url}"  # failover: the first one is dead
    cfs = {
        "aliases": write_cf(etc, "aliases.cf", ldap_cf(
            servers, "aliases", "(&(objectClass=organizationalRole)(cn=%s))", "description")),
        "users": write_cf(etc, "users.cf", ldap_cf(
            servers, "people", "(&(objectClass=inetOrgPerson)(mail=%s))", "uid",
            "result_format = %s@sink.test\n")),
        "access": write_cf(etc, "access.cf", ldap_cf(servers, "access", "(cn=%s)", "description")),
        "transport": write_cf(etc, "transport.cf", ldap_cf(
            servers, "transport", "(cn=%s)", "description")),
    }
    params = ldap_params(cfs, f"{TTL:.0f}s")
    a = mres.tern(name="mx1", **params)
    b = mres.tern(name="mx2", **params)
    return Mx(slapd=slapd, sink=sink, later=later, a=a, b=b, etc=etc, cfs=cfs, dead=dead,
              servers=servers)


def ldap_params(cfs: Dict[str, Path], ttl: str) -> Dict[str, str]:
    return {
        "virtual_alias_maps": f"ldap:{cfs['aliases']}, ldap:{cfs['users']}",
        "virtual_alias_domains": "virt.test",
        "transport_maps": f"ldap:{cfs['transport']}",
        "smtpd_client_restrictions": f"check_client_access ldap:{cfs['access']}",
        "smtpd_sender_restrictions": f"check_sender_access ldap:{cfs['access']}",
        "proxymap_cache_ttl": ttl,
    }


def delivered_to(sink, subject: str, count: int = 1) -> List[str]:
    msgs = sink.wait_for(f"Subject: {subject}\r\n".encode(), timeout=20, count=count)
    return sorted(r for m in msgs for r in m.rcpt_tos)


def check_cases_alike(mx, cases, tag: str) -> Dict[str, Tuple[str, str]]:
    """Every case on both instances: the same reply code, the expected one,
    and the same deliveries.  Returns {case: (reply a, reply b)}."""
    seen = {}
    for name, source, sender, rcpt, want, deliver in cases:
        ra = rcpt_reply(mx.a, rcpt, sender, source)
        rb = rcpt_reply(mx.b, rcpt, sender, source)
        seen[name] = (ra, rb)
        print(f"{tag} {name:14} mx1: {ra}\n{tag} {'':14} mx2: {rb}")
    for name, source, sender, rcpt, want, deliver in cases:
        ra, rb = seen[name]
        assert ra.startswith(want) and code(ra) == code(rb), f"{name}: {ra!r} / {rb!r}"
    for name, source, sender, rcpt, want, deliver in cases:
        if deliver is None:
            continue
        for t in (mx.a, mx.b):
            subject = f"{tag}-{name}-{t.dir.name}"
            send_one(t, rcpt, subject, sender)
            assert delivered_to(mx.sink, subject) == sorted(deliver), f"{name} via {t.dir.name}"
    return seen


# --- LDAP -----------------------------------------------------------------

def test_ldap_two_hosts_answer_alike_and_deliver_alike(lmx):
    check_cases_alike(lmx, LDAP_CASES, "ldap")


def test_ldap_filter_injection_finds_nothing(lmx):
    # the unescaped filters would match: the test has teeth
    assert "cn: alias1@virt.test" in lmx.slapd.search("(cn=*@virt.test)", "cn")
    assert "uid: ann" in lmx.slapd.search("(&(objectClass=inetOrgPerson)(mail=*))", "uid")
    for rcpt in ("*@virt.test", '"*)(cn=*"@virt.test', '"*)(uid=*"@virt.test',
                 "*)(uid=*@virt.test"):
        for t in (lmx.a, lmx.b):
            r = rcpt_reply(t, rcpt)
            print(f"injection {rcpt}: {r}")
            # 550 user unknown, or 501 when the address is not valid SMTP
            assert code(r) in ("550", "501", "553"), f"{rcpt}: {r}"
    for key in ("*@virt.test", "*)(cn=*@virt.test", "*)(mail=*@virt.test"):
        for cf in ("aliases", "users"):
            q = lmx.a.tern("map", "-q", key, f"ldap:{lmx.cfs[cf]}")
            assert q.returncode == 1 and q.stdout == "", f"{key} in {cf}: {q}"


def test_ldap_failover_to_second_server_host(lmx):
    # every .cf names a dead server first: the cases above already went
    # through the second; here directly, and a dead-only table is a failure
    q = lmx.a.tern("map", "-q", "alias1@virt.test", f"ldap:{lmx.cfs['aliases']}")
    assert q.returncode == 0 and q.stdout.strip() == "joe@sink.test", q
    dead_only = write_cf(lmx.etc, "dead.cf", ldap_cf(
        f"ldap://127.0.0.1:{lmx.dead}", "aliases", "(cn=%s)", "description"))
    q = lmx.a.tern("map", "-q", "alias1@virt.test", f"ldap:{dead_only}")
    assert q.returncode == 75, q


def wait_both(mx, rcpt: str, want: str, timeout: float) -> float:
    """Seconds until both instances answer RCPT to rcpt with want."""
    t0 = time.monotonic()
    wait_until(lambda: all(rcpt_reply(t, rcpt).startswith(want) for t in (mx.a, mx.b)),
               timeout, f"{rcpt} -> {want} on both", interval=0.2)
    return time.monotonic() - t0


def test_ldap_change_takes_effect_on_both_after_ttl_without_reload(lmx):
    assert code(rcpt_reply(lmx.a, "new@virt.test")) == "550"
    assert code(rcpt_reply(lmx.b, "new@virt.test")) == "550"
    lmx.slapd.add(alias_entry("new@virt.test", "newbie@sink.test"))
    took = wait_both(lmx, "new@virt.test", "250", TTL + 5)
    print(f"ldap add visible on both after {took:.2f} s (proxymap_cache_ttl {TTL:.0f} s)")
    # the "not found" just asked was answered from tern-proxymap's cache
    # meanwhile: smtpd went through the lookup service, and no longer than the TTL
    assert TTL - 1.5 <= took <= CACHE_GONE + 1, took
    for t in (lmx.a, lmx.b):
        send_one(t, "new@virt.test", f"new-{t.dir.name}")
        assert delivered_to(lmx.sink, f"new-{t.dir.name}") == ["newbie@sink.test"]
    lmx.slapd.modify(f"dn: cn=new@virt.test,ou=aliases,{LDAP_SUFFIX}\nchangetype: modify\n"
                     "replace: description\ndescription: moved@sink.test\n")
    time.sleep(CACHE_GONE)
    for t in (lmx.a, lmx.b):
        send_one(t, "new@virt.test", f"moved-{t.dir.name}")
        assert delivered_to(lmx.sink, f"moved-{t.dir.name}") == ["moved@sink.test"]
    lmx.slapd.delete(f"cn=new@virt.test,ou=aliases,{LDAP_SUFFIX}")
    took = wait_both(lmx, "new@virt.test", "550", TTL + 5)
    print(f"ldap delete visible on both after {took:.2f} s")


def assert_secret_not_logged(mx, secret: str) -> None:
    """The outage was logged (the warnings name the servers), the bind
    password never."""
    for t in (mx.a, mx.b):
        logged = t.log() + t.stderr_tail(10000)
        assert "warning: " in logged and " failed" in logged
        assert secret not in logged, f"{t.dir.name} logged the password"


def deferrals(t, rcpt: str) -> List[str]:
    return [line for line in t.log().splitlines()
            if f"to=<{rcpt}>" in line and "status=deferred" in line]


def test_ldap_down_gives_451_and_deferral_then_delivery_when_back(lmx):
    a = lmx.a
    # queued while the directory answers; its route (later.test) is down
    send_one(a, "later@virt.test", "queued-before-outage")
    wait_until(lambda: deferrals(a, "x@later.test"), 20, "the first deferral (route down)")
    lmx.slapd.stop()
    try:
        time.sleep(CACHE_GONE)  # the cache forgets what it knew
        for rcpt in ("alias1@virt.test", "ann@virt.test", "nobody@virt.test", "direct@sink.test"):
            for t in (lmx.a, lmx.b):
                r = rcpt_reply(t, rcpt)
                print(f"ldap down: RCPT {rcpt} on {t.dir.name}: {r}")
                assert r.startswith("451 4.3.0"), f"{rcpt}: {r}"
        r = rcpt_reply(a, "alias1@virt.test", sender="bad@spammer.test")
        assert r.startswith("451 4.3.0"), r
        lmx.later.start()  # the route is up: only the transport lookup can stop it now
        before = len(deferrals(a, "x@later.test"))
        assert a.tern("queue", "flush").returncode == 0
        lookup_failed = lambda: [l for l in deferrals(a, "x@later.test")[before:] if "4.3.0" in l]
        wait_until(lookup_failed, 20, "a 4.3.0 deferral while the directory is down")
        print(f"ldap down: {lookup_failed()[0]}")
        assert not lmx.later.matching(b"Subject: queued-before-outage\r\n")
        assert_secret_not_logged(lmx, LDAP_ROOTPW)
    finally:
        if lmx.slapd.proc is None:
            lmx.slapd.start()
    assert a.tern("queue", "flush").returncode == 0
    msgs = lmx.later.wait_for(b"Subject: queued-before-outage\r\n", timeout=TTL + 20)
    assert msgs[0].rcpt_tos == ["x@later.test"]
    wait_both(lmx, "alias1@virt.test", "250", TTL + 10)


# --- PostgreSQL -----------------------------------------------------------

PG_CASES = [
    ("alias", OK_SOURCE, "a@example.test", "alias1@virt.test", "250", ["joe@sink.test"]),
    ("quote-user", OK_SOURCE, "a@example.test", "o'brien@virt.test", "250",
     ["obrien@sink.test"]),
    ("unknown", OK_SOURCE, "a@example.test", "nobody@virt.test", "550", None),
    ("sender-domain", OK_SOURCE, "bad@spammer.test", "alias1@virt.test", "5", None),
    ("client-net", BAD_NET_SOURCE, "a@example.test", "alias1@virt.test", "5", None),
    ("injection", OK_SOURCE, "a@example.test", "x'OR'a'!='b@virt.test", "550", None),
]
VIRTUAL_QUERY = "SELECT goto FROM virtual WHERE address='%s'"


@pytest.fixture(scope="module")
def pmx(mres):
    sink = mres.sink()
    pg = start_remote(mres, Postgres(mres.base))
    pg.sql_db(
        f"CREATE TABLE virtual (address text PRIMARY KEY, goto text NOT NULL);"
        f"CREATE TABLE access (key text PRIMARY KEY, action text NOT NULL);"
        f"GRANT SELECT ON virtual, access TO {PG_USER};"
        "INSERT INTO virtual VALUES ('alias1@virt.test', 'joe@sink.test'),"
        " ('o''brien@virt.test', 'obrien@sink.test'), ('team@virt.test', 'joe@sink.test');"
        "INSERT INTO access VALUES ('spammer.test', 'REJECT no mail from spammer.test'),"
        " ('127.0.9', 'REJECT network refused');"
    )
    dead = free_port()
    etc = shared_etc(mres.base)
    common = (f"hosts = 127.0.0.1:{dead} 127.0.0.1:{pg.port}\ndbname = {PG_DB}\n"
              f"user = {PG_USER}\npassword = {PG_PASSWORD}\ntimeout = 3\n")
    cfs = {
        "virtual": write_cf(etc, "virtual.cf", common + f"query = {VIRTUAL_QUERY}\n"),
        "access": write_cf(etc, "access.cf",
                           common + "query = SELECT action FROM access WHERE key='%s'\n"),
    }
    transport = etc / "transport"
    transport.write_text(f"sink.test smtp:{sink.hostport}\n")
    transport.chmod(0o644)
    params = {
        "virtual_alias_maps": f"pgsql:{cfs['virtual']}",
        "virtual_alias_domains": "virt.test",
        "transport_maps": f"texthash:{transport}",
        "smtpd_client_restrictions": f"check_client_access pgsql:{cfs['access']}",
        "smtpd_sender_restrictions": f"check_sender_access pgsql:{cfs['access']}",
        "proxymap_cache_ttl": f"{int(TTL)}s",
    }
    a = mres.tern(name="pg1", **params)
    b = mres.tern(name="pg2", **params)
    return Mx(pg=pg, sink=sink, a=a, b=b, etc=etc, cfs=cfs)


def test_pgsql_two_hosts_answer_alike_and_deliver_alike(pmx):
    check_cases_alike(pmx, PG_CASES, "pgsql")


def test_pgsql_quote_in_address_cannot_change_the_query(pmx):
    payload = "x'OR'a'!='b@virt.test"
    naive = VIRTUAL_QUERY.replace("%s", payload)  # what an unquoted template would run
    assert len(pmx.pg.sql_db(naive)) == 3, "the payload must match every row when unquoted"
    for t in (pmx.a, pmx.b):
        assert code(rcpt_reply(t, payload)) == "550"
    q = pmx.a.tern("map", "-q", payload, f"pgsql:{pmx.cfs['virtual']}")
    assert q.returncode == 1 and q.stdout == "", q
    q = pmx.a.tern("map", "-q", "o'brien@virt.test", f"pgsql:{pmx.cfs['virtual']}")
    assert q.returncode == 0 and q.stdout.strip() == "obrien@sink.test", q


def test_pgsql_change_takes_effect_on_both_after_ttl(pmx):
    assert code(rcpt_reply(pmx.a, "fresh@virt.test")) == "550"
    pmx.pg.sql_db("INSERT INTO virtual VALUES ('fresh@virt.test', 'fresh@sink.test')")
    took = wait_both(pmx, "fresh@virt.test", "250", TTL + 5)
    print(f"pgsql insert visible on both after {took:.2f} s")
    send_one(pmx.b, "fresh@virt.test", "pg-fresh")
    assert delivered_to(pmx.sink, "pg-fresh") == ["fresh@sink.test"]


def test_pgsql_down_gives_451_never_550_or_accept(pmx):
    pmx.pg.stop()
    try:
        time.sleep(CACHE_GONE)
        for rcpt in ("alias1@virt.test", "nobody@virt.test"):
            for t in (pmx.a, pmx.b):
                r = rcpt_reply(t, rcpt)
                print(f"pgsql down: RCPT {rcpt} on {t.dir.name}: {r}")
                assert r.startswith("451 4.3.0"), f"{rcpt}: {r}"
        assert_secret_not_logged(pmx, PG_PASSWORD)
    finally:
        pmx.pg.start()
    wait_both(pmx, "alias1@virt.test", "250", TTL + 10)


# --- latency ----------------------------------------------------------------

def rcpt_round_trips(t, rcpts: List[str]) -> List[float]:
    """Seconds per RCPT, in one transaction of one session."""
    times = []
    with t.connect(source=OK_SOURCE) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        for rcpt in rcpts:
            t0 = time.perf_counter()
            r = c.cmd(f"RCPT TO:<{rcpt}>", timeout=20)
            times.append(time.perf_counter() - t0)
            assert r[0].startswith("250"), f"{rcpt}: {r}"
        c.cmd("RSET")
    return times


def mean_ms(times: List[float]) -> float:
    return 1000 * sum(times) / len(times)


def proxymap_round_trips(t, spec: str, keys: List[str]) -> List[float]:
    """Seconds per lookup asked straight of the instance's tern-proxymap, one
    connection, one request at a time (docs/internals.md, proxymap protocol)."""
    times = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(t.queue / "private" / "proxymap"))
        for n, key in enumerate(keys, 1):
            t0 = time.perf_counter()
            s.sendall(attr_encode("proxymap.lookup", [("id", n), ("table", spec), ("flags", 0),
                                                      ("key", key)]))
            reply = dict(attr_decode(read_attr_message(s)))
            times.append(time.perf_counter() - t0)
            assert reply.get("status") == "found" and reply.get("id") == str(n), reply
    return times


def read_attr_message(s) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("tern-proxymap closed the connection")
        data += chunk
    return data


def slapd_round_trips(slapd, keys: List[str]) -> List[float]:
    """Seconds per search on one bound python-ldap connection: the directory alone."""
    conn = ldap.initialize(slapd.url)
    conn.simple_bind_s(LDAP_ROOTDN, LDAP_ROOTPW)
    times = []
    for key in keys:
        t0 = time.perf_counter()
        found = conn.search_s(f"ou=aliases,{LDAP_SUFFIX}", ldap.SCOPE_SUBTREE,
                              f"(&(objectClass=organizationalRole)(cn={key}))", ["description"])
        times.append(time.perf_counter() - t0)
        assert len(found) == 1, key
    conn.unbind_s()
    return times


def test_lookup_and_rcpt_latency_through_proxymap_cold_and_warm(lmx, res):
    rcpts = [f"u{i:03d}@virt.test" for i in range(LATENCY_RCPTS)]
    local = lmx.etc / "virtual-local"
    local.write_text("".join(f"{r} joe@sink.test\n" for r in rcpts))
    local.chmod(0o644)
    cold = res.tern(name="cold", **ldap_params(lmx.cfs, "0"))
    warm = res.tern(name="warm", **ldap_params(lmx.cfs, "60s"))
    text = res.tern(name="text", **{**ldap_params(lmx.cfs, "60s"),
                                    "virtual_alias_maps": f"texthash:{local}"})
    spec = f"ldap:{lmx.cfs['aliases']}"
    lookups = {
        "slapd alone (python-ldap, one connection)": slapd_round_trips(lmx.slapd, rcpts),
        "tern-proxymap, proxymap_cache_ttl = 0 (cold)": proxymap_round_trips(cold, spec, rcpts),
    }
    proxymap_round_trips(warm, spec, rcpts)  # fills the cache
    lookups["tern-proxymap, proxymap_cache_ttl = 60s (warm)"] = proxymap_round_trips(
        warm, spec, rcpts)
    direct = []
    for r in rcpts[:5]:
        t0 = time.perf_counter()
        q = cold.tern("map", "-q", r, spec)
        direct.append(time.perf_counter() - t0)
        assert q.returncode == 0, q
    lookups["tern map -q (a process each, direct)"] = direct
    rcpt_round_trips(warm, rcpts)  # fills the cache for the other tables too
    rcpt_round_trips(text, rcpts)
    rounds = {
        "ldap, proxymap_cache_ttl = 0 (cold)": rcpt_round_trips(cold, rcpts),
        "ldap, proxymap_cache_ttl = 60s (warm)": rcpt_round_trips(warm, rcpts),
        "virtual on texthash, the rest warm": rcpt_round_trips(text, rcpts),
    }
    lines = [f"One lookup of the virtual alias table (mean of {LATENCY_RCPTS} distinct keys;"
             " the .cf names a dead server first):"]
    lines += [f"  {k:48} {mean_ms(v):7.3f} ms" for k, v in lookups.items()]
    lines.append(f"RCPT round trip (mean of {LATENCY_RCPTS} distinct virtual aliases in one"
                 " session; virtual, access and transport on LDAP):")
    lines += [f"  {k:48} {mean_ms(v):7.3f} ms  (max {1000 * max(v):.2f})"
              for k, v in rounds.items()]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    out = ROOT / "build-results"
    out.mkdir(exist_ok=True)
    (out / "remote-latency.txt").write_text(report)
    # what the cache is for: a warm lookup does not wait for the directory
    assert mean_ms(lookups["tern-proxymap, proxymap_cache_ttl = 60s (warm)"]) < mean_ms(
        lookups["tern-proxymap, proxymap_cache_ttl = 0 (cold)"])
