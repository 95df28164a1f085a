"""Remote tables on the event loops (issue 14, MAP-05): smtpd, cleanup and
qmgr ask tern-proxymap through their lookup scopes (lib/table_proxy.h) and
never block on it.  A socketmap server written here serves an access map,
virtual_alias_maps, canonical_maps and transport_maps (plain socketmap:
specs: services send remote types through tern-proxymap by default).
  (a) each consumer gets the table's answers: smtpd refuses at RCPT,
      cleanup rewrites the envelope and the From: header, qmgr routes, and
      local's delivery worker (synchronous mode) expands an alias, smtp
      takes its SASL password and generic mapping from the server;
  (b) a server that accepts and never answers, consulted for two sessions
      only: 20 other sessions meanwhile finish normally and fast, the two
      get 451 4.3.0 after proxymap_lookup_timeout;
  (c) the server down: 451 4.3.0 at RCPT (never 550, never accepted), and a
      message already in the queue whose routing fails is deferred."""

import socket
import subprocess
import threading
import time

from peerutil import tls_dns, tls_pki  # noqa: F401 (fixtures)
from ternlib import BUILD, SilentServer, free_port, make_message, wait_until
from test_routing import rcpt_reply
from test_smtp_auth import ALICE_PW, auth_peer
from test_table_socketmap import MapServer, netstring, read_netstring

SENDMAIL = BUILD / "tools" / "sendmail"
OUTSIDE = "127.0.0.5"  # not in mynetworks: the access map is consulted


class Maps(MapServer):
    """A socketmap server: answers[(map name, key)], else NOTFOUND."""

    def __init__(self, answers):
        self.answers = answers
        super().__init__(socket.AF_INET, ("127.0.0.1", 0))
        self.port = self.address[1]

    def spec(self, name):
        return f"socketmap:inet:127.0.0.1:{self.port}:{name}"

    def _serve(self, conn):
        try:
            while True:
                name, _, key = read_netstring(conn).decode().partition(" ")
                self.requests.append((name, key))
                conn.sendall(netstring(self.answers.get((name, key), b"NOTFOUND ")))
        except (EOFError, OSError):
            pass
        conn.close()


def restrictions(spec, mynetworks_first=False):
    check = f"check_recipient_access {spec}"
    if mynetworks_first:  # mynetworks' recipients need no remote lookup
        return f"permit_mynetworks, {check}, reject_unauth_destination"
    return f"{check}, permit_mynetworks, reject_unauth_destination"


def test_each_consumer_gets_the_remote_tables_answers(res):
    sink, routed = res.sink(), res.sink()
    maps = Maps({
        ("access", "blocked.test"): b"OK REJECT no mail for blocked.test",
        ("virtual", "joe@virt.test"): b"OK joe@sink.test",
        ("canonical", "old@example.test"): b"OK new@example.test",
        ("transport", "route.test"): f"OK smtp:{routed.hostport}".encode(),
        ("aliases", "lst"): b"OK fwd@sink.test",
    })
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32",
                 relay_domains="blocked.test",
                 smtpd_recipient_restrictions=restrictions(maps.spec("access")),
                 virtual_alias_maps=maps.spec("virtual"), virtual_alias_domains="virt.test",
                 canonical_maps=maps.spec("canonical"), transport_maps=maps.spec("transport"),
                 alias_maps=maps.spec("aliases"), local_recipient_maps="")
    t.start()
    try:
        reply = rcpt_reply(t, "x@blocked.test", source=OUTSIDE)
        assert reply.startswith("554 5.7.1 ") and "no mail for blocked.test" in reply, reply
        msg = make_message(subject="virt", sender="old@example.test")
        t.send(msg, sender="old@example.test", rcpts=("joe@virt.test",), source="127.0.0.1")
        got = sink.wait_for(b"Subject: virt\r\n")[0]
        assert got.rcpt_tos == ["joe@sink.test"], "cleanup expanded the virtual alias"
        assert got.mail_from == "new@example.test", "cleanup rewrote the envelope sender"
        assert "new@example.test" in got.header("From"), "and the From: header"
        t.send(make_message(subject="routed"), rcpts=("u@route.test",), source="127.0.0.1")
        assert routed.wait_for(b"Subject: routed\r\n")[0].rcpt_tos == ["u@route.test"]
        assert ("transport", "route.test") in maps.requests
        # local's forked worker asks synchronously, on a connection of its own
        t.send(make_message(subject="alias"), rcpts=("lst@tern.test",), source="127.0.0.1")
        assert sink.wait_for(b"Subject: alias\r\n")[0].rcpt_tos == ["fwd@sink.test"]
    finally:
        maps.close()


def test_smtp_gets_its_sasl_password_and_generic_maps_remotely(res, tls_pki, tls_dns):
    peer = auth_peer(res, tls_pki, require_auth=True, mechanisms=("PLAIN",))
    maps = Maps({
        ("sasl", peer.hostport): f"OK alice:{ALICE_PW}".encode(),
        ("generic", "gen@example.test"): b"OK public@example.com",
    })
    t = res.tern(start=False, relayhost=peer.hostport, dns_servers=f"127.0.0.1:{tls_dns.port}",
                 smtp_tls_CAfile=tls_pki.path("ca.pem"), smtp_sasl_auth_enable="yes",
                 smtp_sasl_password_maps=maps.spec("sasl"),
                 smtp_generic_maps=maps.spec("generic"))
    t.start()
    try:
        t.send(make_message(subject="out", sender="gen@example.test"), sender="gen@example.test")
        (msg,) = peer.wait_for(b"Subject: out")
        assert msg.login == "alice"
        assert msg.mail_from == "public@example.com"
        assert "public@example.com" in msg.header("From")
    finally:
        maps.close()


def one_session(t, source, rcpt, out):
    start = time.monotonic()
    with t.connect(source=source, timeout=20) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        out.append((rcpt, c.cmd(f"RCPT TO:<{rcpt}>")[0], time.monotonic() - start))
        c.cmd("QUIT")


def abandoned_session(t):
    """RCPT to the hung domain, then the client goes while smtpd waits"""
    with t.connect(source=OUTSIDE) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.send(b"RCPT TO:<gone@hung.test>\r\n")


def test_a_hung_table_delays_only_the_sessions_that_need_it(res):
    hung = SilentServer()  # accepts, never answers
    spec = f"socketmap:inet:127.0.0.1:{hung.port}:access"
    t = res.tern(start=False, mynetworks="127.0.0.1/32", relay_domains="hung.test",
                 smtpd_recipient_restrictions=restrictions(spec, mynetworks_first=True),
                 proxymap_lookup_timeout="2s", proxymap_client_timeout="5s")
    t.start()
    try:
        out, threads = [], []
        for i in range(2):  # from outside: the access map is asked
            threads.append(threading.Thread(
                target=one_session, args=(t, OUTSIDE, f"h{i}@hung.test", out)))
        for i in range(20):  # mynetworks: permitted before the map
            threads.append(threading.Thread(
                target=one_session, args=(t, "127.0.0.1", f"u{i}@other.test", out)))
        for th in threads:
            th.start()
        abandoned_session(t)  # freed cleanly once its wait ends (ASan)
        wait_until(lambda: len(out) >= 20, 10, "the 20 other sessions' RCPT replies")
        early = list(out)
        for th in threads:
            th.join(20)
        others = [o for o in out if "@other.test" in o[0]]
        waited = [o for o in out if "@hung.test" in o[0]]
        assert len(others) == 20 and all(r.startswith("250 ") for _, r, _ in others), others
        assert all(o in early for o in others), "answered while the hung lookups ran"
        assert max(d for _, _, d in others) < 1.5, others
        assert len(waited) == 2, waited
        for rcpt, reply, took in waited:
            assert reply.startswith("451 4.3.0"), (rcpt, reply)
            assert 1.5 < took < 8, (rcpt, took)
        assert rcpt_reply(t, "after@other.test", source="127.0.0.1").startswith("250 ")
    finally:
        hung.stop()


def test_the_server_down_is_a_temporary_failure_everywhere(res):
    sink = res.sink()
    port = free_port()  # nothing listens there
    spec = f"socketmap:inet:127.0.0.1:{port}"
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32",
                 relay_domains="example.net",
                 smtpd_recipient_restrictions=restrictions(f"{spec}:access"),
                 transport_maps=f"{spec}:transport")
    t.start()
    for source in (OUTSIDE, "127.0.0.1"):
        reply = rcpt_reply(t, "x@example.net", source=source)
        assert reply.startswith("451 4.3.0"), (source, reply)
    # a local submission is accepted without a routing decision; qmgr's
    # routing pass then fails: deferred, never bounced
    r = subprocess.run([str(SENDMAIL), "-C", str(t.conf_path), "x@example.net"],
                       input=make_message(subject="down"), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    t.wait_log(r"to=<x@example\.net>.*status=deferred")
    assert "status=bounced" not in t.log()
    wait_until(lambda: any("deferred" in str(p) for p in t.queue_files()), 10, "deferred/")


class SlowMaps(Maps):
    """Maps whose answers for the keys in delays come after that many seconds
    (default: every other key); each proxymap worker has its own connection,
    so the delays overlap."""

    def __init__(self, answers, delays, default=0.0):
        self.delays = delays
        self.default = default
        super().__init__(answers)

    def _serve(self, conn):
        try:
            while True:
                name, _, key = read_netstring(conn).decode().partition(" ")
                self.requests.append((name, key))
                time.sleep(self.delays.get(key, self.default))
                conn.sendall(netstring(self.answers.get((name, key), b"NOTFOUND ")))
        except (EOFError, OSError):
            pass
        conn.close()


def test_a_remote_value_with_control_bytes_is_a_temporary_failure(res):
    """CR LF in an access value must not inject a reply line (nor LF a header
    through PREPEND); a NUL must not drop smtpd's connection to
    tern-proxymap and fail the other sessions' lookups in flight on it.
    (socketmap: refuses such replies itself; tern-proxymap refuses them for
    every type: test_table_pgsql, and the client too: unit test_table_proxy)"""
    maps = SlowMaps({
        ("access", "inject.test"): b"OK REJECT x\r\n250 2.0.0 Ok",
        ("access", "prepend.test"): b"OK PREPEND X-A: 1\nBcc: evil@example.test",
        ("access", "nul.test"): b"OK REJECT a\0b",
        ("access", "blocked.test"): b"OK REJECT no mail for blocked.test",
    }, {"nul.test": 0.3, "blocked.test": 1.0})
    t = res.tern(start=False, mynetworks="127.0.0.1/32",
                 relay_domains="inject.test, prepend.test, nul.test, blocked.test",
                 smtpd_recipient_restrictions=restrictions(maps.spec("access")))
    t.start()
    try:
        with t.connect(source=OUTSIDE) as c:
            c.greeting()
            c.cmd("EHLO client.example")
            assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
            for rcpt in ("x@inject.test", "x@prepend.test"):
                reply = c.cmd(f"RCPT TO:<{rcpt}>")
                assert len(reply) == 1 and reply[0].startswith("451 4.3.0"), (rcpt, reply)
            assert c.cmd("RSET")[0].startswith("250"), "no injected line left to read"
        out = []
        threads = [threading.Thread(target=one_session, args=(t, OUTSIDE, rcpt, out))
                   for rcpt in ("x@nul.test", "y@blocked.test")]
        threads[0].start()
        wait_until(lambda: ("access", "nul.test") in maps.requests, 10, "the nul.test lookup")
        threads[1].start()
        for th in threads:
            th.join(20)
        replies = {rcpt: reply for rcpt, reply, _ in out}
        assert replies["x@nul.test"].startswith("451 4.3.0"), replies
        assert replies["y@blocked.test"].startswith("554 5.7.1 "), \
            "the other session's lookup in flight is answered"
    finally:
        maps.close()


def test_a_message_held_while_its_routing_waits_stays_held(res):
    """`tern queue hold` on a message parked for its routing answers: when
    they come, the message is held -- not routed, not delivered."""
    sink = res.sink()
    maps = SlowMaps({}, {}, default=2.0)
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32",
                 transport_maps=maps.spec("transport"), proxymap_lookup_timeout="20s",
                 proxymap_client_timeout="25s")
    t.start()
    try:
        r = subprocess.run([str(SENDMAIL), "-C", str(t.conf_path), "x@example.net"],
                           input=make_message(subject="parked"), capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: maps.requests and list((t.queue / "active").iterdir()), 10,
                   "the routing pass waiting for transport_maps")
        qid = list((t.queue / "active").iterdir())[0].name
        r = t.tern("queue", "hold", qid)
        assert r.returncode == 0, r.stderr
        wait_until((t.queue / "hold" / qid).exists, 30, f"hold/{qid}")
        time.sleep(1)
        assert sink.messages == [], "delivered although held"
        assert f"{qid}: to=<" not in t.log()
    finally:
        maps.close()


def test_the_keys_of_a_lookup_order_travel_in_one_round_trip(res):
    """check_sender_access asks bob@slow.example.test, slow.example.test,
    example.test, test and bob@: each answer takes 0.6 s.  The keys after the
    first one not in yet are asked at once (table_order_next), so MAIL is
    answered after about one delay, not five in a row; the same for the
    forms of a virtual alias (user@domain, @domain)."""
    delay = 0.6
    maps = SlowMaps({("access", "test"): b"OK REJECT no mail from .test"}, {}, default=delay)
    t = res.tern(start=False, mynetworks="127.0.0.1/32", proxymap_pool_size="8", smtpd_delay_reject="no",
                 proxymap_cache_ttl="0",
                 smtpd_sender_restrictions=f"check_sender_access {maps.spec('access')}",
                 virtual_alias_maps=maps.spec("virtual"), virtual_alias_domains="virt.test")
    t.start()
    try:
        with t.connect(source=OUTSIDE) as c:
            c.greeting()
            c.cmd("EHLO client.example")
            start = time.monotonic()
            reply = c.cmd("MAIL FROM:<bob@slow.example.test>")
            took = time.monotonic() - start
        keys = [k for n, k in maps.requests if n == "access"]
        assert reply[0].startswith("554 5.7.1") and "no mail from .test" in reply[0], reply
        assert {"bob@slow.example.test", "slow.example.test", "example.test", "test"} <= set(keys)
        assert took < 3 * delay, f"MAIL took {took:.2f}s: the keys went one round trip each"
        with t.connect(source="127.0.0.1") as c:
            c.greeting()
            c.cmd("EHLO client.example")
            assert c.cmd("MAIL FROM:<>")[0].startswith("250")
            start = time.monotonic()
            reply = c.cmd("RCPT TO:<nobody@virt.test>")
            took = time.monotonic() - start
        assert reply[0].startswith("550 5.1.1"), reply
        assert {("virtual", "nobody@virt.test"), ("virtual", "@virt.test")} <= set(maps.requests)
        assert took < 3 * delay, f"RCPT took {took:.2f}s"
    finally:
        maps.close()
