"""Shared pieces of the relay-policy suites (issue 10: restriction lists,
the sendmail access map, DNS lists): a dnsmasq serving the policy zones, a
DNS server that never answers, a tern built on them, access files built
with `tern map`, and small SMTP helpers.

The fake DNS (policy_dns_records):
  host.dialup.test  <-> 127.0.0.5     A + PTR: forward-confirmed
  127.0.0.6         ->  liar.test     PTR only, liar.test has no A
  127.0.0.7, .8, .9                    no PTR (NXDOMAIN)
  5.0.0.127.bl.test  A 127.0.0.2, TXT "listed by bl.test"
  7.0.0.127.bl.test  A 127.0.0.4      (a code other than 127.0.0.2)
  8.0.0.127.bl.test  A 127.0.0.2      (127.0.0.8 is listed in bl.test ...
  8.0.0.127.wl.test  A 127.0.0.2       ... and in the whitelist wl.test)
  spam.test.rhsbl.test A 127.0.0.2, host.dialup.test.rhsbl.test A 127.0.0.2
  example.test MX mx.example.test; ok.test A only; nx.test NXDOMAIN;
  the sender domains the suites use (foo.biz, pal.biz, custom.test, ...)
  have an A record so the default "sender domain must resolve" check
  (SMTP-19) passes for them.
"""

import base64
import hashlib
import hmac
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional, Sequence, Tuple

import pytest

from ternlib import REPLY_250_QUEUED, Dnsmasq, SmtpConn

OUTSIDER = "127.0.0.5"  # host.dialup.test, forward-confirmed
LIAR = "127.0.0.6"  # PTR liar.test, no A: not confirmed
CODE4 = "127.0.0.7"  # listed in bl.test with 127.0.0.4
BOTH = "127.0.0.8"  # listed in bl.test and wl.test
NOPTR = "127.0.0.9"  # no PTR at all
INSIDE = "127.0.0.1"  # mynetworks

# the domains the policy suites use as senders: each resolves
SENDER_DOMAINS = (
    "foo.biz", "pal.biz", "other.biz", "custom.test", "spam.test", "new.test", "far.test",
    "sysiphus.com", "example.com", "good.test", "warn.test", "held.test",
)

# local users of tern.test (and sysiphus.com, the seed's domain): each is a
# virtual alias for USER@box.test, which is routed to the `box` sink, so a
# delivered message is visible without system accounts
LOCAL_USERS = ("hal", "abuse", "blocked", "other", "joe", "friend", "x", "postmaster", "root")


def policy_dns_records(confirmed_dialup: bool = True) -> List[str]:
    """dnsmasq arguments for the policy zones.  confirmed_dialup = False
    keeps the PTR of 127.0.0.5 (host.dialup.test) but drops its A record,
    so the name is no longer forward-confirmed (RELAY-05)."""
    recs = [
        # authoritative answers (NXDOMAIN / NODATA) instead of REFUSED for
        # names we do not list: dnsmasq has no upstream
        "--local=/test/",
        "--local=/biz/",
        "--local=/com/",
        "--local=/0.0.127.in-addr.arpa/",
        "--ptr-record=6.0.0.127.in-addr.arpa,liar.test",
        "--address=/5.0.0.127.bl.test/127.0.0.2",
        "--txt-record=5.0.0.127.bl.test,listed by bl.test",
        "--address=/7.0.0.127.bl.test/127.0.0.4",
        "--address=/8.0.0.127.bl.test/127.0.0.2",
        "--address=/8.0.0.127.wl.test/127.0.0.2",
        "--address=/spam.test.rhsbl.test/127.0.0.2",
        "--address=/host.dialup.test.rhsbl.test/127.0.0.2",
        "--mx-host=example.test,mx.example.test,10",
        "--host-record=mx.example.test,127.0.0.30",
        "--host-record=ok.test,127.0.0.31",
    ]
    if confirmed_dialup:
        recs.append("--host-record=host.dialup.test,127.0.0.5")
    else:
        recs.append("--ptr-record=5.0.0.127.in-addr.arpa,host.dialup.test")
    for i, d in enumerate(SENDER_DOMAINS):
        recs.append(f"--host-record={d},127.0.0.{40 + i}")
    return recs


def start_policy_dns(resources, confirmed_dialup: bool = True) -> Dnsmasq:
    """A dnsmasq with the policy zones, stopped with resources (res/mres)."""
    return resources.dnsmasq(policy_dns_records(confirmed_dialup), probe="example.test")


class DeadDns:
    """A UDP socket on 127.0.0.1:PORT that reads every query and never
    answers: a DNS server that has hung (timeouts, not refusals)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def start_dead_dns(resources) -> DeadDns:
    d = DeadDns()
    resources.others.append(d)
    return d


@pytest.fixture
def policy_dns(res):
    """The policy zones for one test."""
    return start_policy_dns(res)


@pytest.fixture(scope="module")
def mpolicy_dns(mres):
    """The policy zones for a module."""
    return start_policy_dns(mres)


@pytest.fixture
def dead_dns(res):
    return start_dead_dns(res)


# ---------------------------------------------------------------- tern


def write_table(t, name: str, text: str) -> Path:
    path = t.etc / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def build_access(t, text: str, name: str = "access") -> str:
    """Write the access file into the instance's etc/ and build it with
    `tern map hash:PATH` (sendmail's `makemap hash access < access`);
    returns the map spec `hash:PATH`."""
    path = write_table(t, name, text)
    r = t.tern("map", f"hash:{path}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (t.etc / f"{name}.db").is_file()
    return f"hash:{path}"


def policy_tern(res, dns=None, start: bool = True, access: Optional[str] = None,
                name: str = "policy", **params) -> SimpleNamespace:
    """A tern on the policy DNS (or on dns: a Dnsmasq, a DeadDns, or an
    "ip:port" string): peer-name lookups on, dns_timeout 1s, mynetworks
    127.0.0.1/32, mydestination tern.test and sysiphus.com with the
    LOCAL_USERS going to the `box` sink, far.test routed to the `far` sink,
    and everything else (bounces included) to the `out` sink.  access: the
    text of a sendmail access file (built with tern map, set as
    access_maps).  Returns .tern .box .far .out .dns."""
    if dns is None:
        dns = start_policy_dns(res)
    server = dns if isinstance(dns, str) else f"127.0.0.1:{dns.port}"
    box, far, out = res.sink(), res.sink(), res.sink()
    base = {
        "dns_servers": server,
        "smtpd_peername_lookup": "yes",
        # tern's default (ternlib turns the check off for tests without DNS)
        "accept_unresolvable_domains": "no",
        "dns_timeout": "1s",
        "mynetworks": "127.0.0.1/32",
        "mydestination": "tern.test, sysiphus.com",
        "relayhost": out.hostport,
    }
    base.update(params)
    t = res.tern(start=False, name=name, **base)
    virtual = "".join(
        f"{u}@{d} {u}@box.test\n" for d in ("tern.test", "sysiphus.com") for u in LOCAL_USERS
    )
    vpath = write_table(t, "virtual", virtual)
    routes = write_table(
        t, "transport", f"box.test smtp:{box.hostport}\nfar.test smtp:{far.hostport}\n"
    )
    extra = {"virtual_alias_maps": f"texthash:{vpath}", "transport_maps": f"texthash:{routes}"}
    for k in ("virtual_alias_maps", "transport_maps"):
        if k in params:
            extra.pop(k)
    t.conf_edit(**extra)
    if access is not None:
        t.conf_edit(access_maps=build_access(t, access))
    if start:
        t.start()
    return SimpleNamespace(tern=t, box=box, far=far, out=out, dns=dns)


# ---------------------------------------------------------------- SMTP helpers


def open_session(t, source: str = OUTSIDER, helo: str = "client.example", ehlo: bool = True,
                 port: Optional[int] = None, timeout: float = 10.0) -> SmtpConn:
    """A greeted session from source after EHLO (or HELO) helo."""
    c = SmtpConn(t.host, port or t.port, source=source, timeout=timeout)
    g = c.greeting()
    assert g[0].startswith("220 "), g
    r = c.cmd(f"{'EHLO' if ehlo else 'HELO'} {helo}")
    assert r[-1].startswith("250 "), r
    return c


def envelope(t, sender: str, rcpts: Sequence[str], source: str = OUTSIDER,
             helo: str = "client.example", raw: bool = False) -> Tuple[List[str], List[List[str]]]:
    """MAIL and RCPTs in one session; returns (MAIL reply, [RCPT replies]).
    The RCPTs are sent even when MAIL was refused (they then must not get
    2xx; see no_rcpt_accepted).  raw: sender and rcpts are written as given
    (no angle brackets added)."""
    fmt = (lambda a: a) if raw else (lambda a: f"<{a}>")
    with open_session(t, source, helo) as c:
        m = c.cmd(f"MAIL FROM:{fmt(sender)}")
        rs = [c.cmd(f"RCPT TO:{fmt(r)}") for r in rcpts]
        c.cmd("QUIT")
        return m, rs


def no_rcpt_accepted(rcpt_replies) -> bool:
    return all(not r[0].startswith("2") for r in rcpt_replies)


def rcpt_reply(t, sender: str, rcpt: str, source: str = OUTSIDER,
               helo: str = "client.example") -> str:
    """The single-line RCPT reply (MAIL must get 250)."""
    m, rs = envelope(t, sender, [rcpt], source, helo)
    assert m[0].startswith("250 "), m
    assert len(rs[0]) == 1, rs
    return rs[0][0]


def send_message(t, sender: str, rcpts: Sequence[str], content: bytes, source: str = OUTSIDER,
                 helo: str = "client.example") -> str:
    """A whole transaction that must be accepted; returns the queue ID."""
    with open_session(t, source, helo) as c:
        r = c.cmd(f"MAIL FROM:<{sender}>")
        assert r[0].startswith("250 "), r
        for rc in rcpts:
            r = c.cmd(f"RCPT TO:<{rc}>")
            assert r[0].startswith("250 "), (rc, r)
        final = c.data(content)
        m = REPLY_250_QUEUED.match(final[0])
        assert m, final
        c.cmd("QUIT")
        return m.group(1)


def timed(fn, *args, **kw):
    """(result, seconds) of fn(*args, **kw)."""
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


def held_ids(t) -> List[str]:
    """Queue IDs in the hold queue."""
    d = t.queue / "hold"
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


def cram_md5(c: SmtpConn, user: str, password: str) -> List[str]:
    """AUTH CRAM-MD5 on an EHLO'd session; the final reply."""
    r = c.cmd("AUTH CRAM-MD5")
    assert r[0].startswith("334 "), r
    challenge = base64.b64decode(r[0][4:])
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return c.cmd(base64.b64encode(f"{user} {digest}".encode()).decode())
