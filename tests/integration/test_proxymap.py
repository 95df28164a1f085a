"""tern-proxymap and proxy: tables (issue 14, MAP-05) on real instances: mail
routed through a proxied table, the tools' direct opening, the TTL cache, the
refusal of tables the configuration does not name, and a restart after a
crash; against a socketmap server in the test: requests saved by the cache,
identical lookups coalesced, a hung lookup ended by the safety net while the
pool answers others.  The raw protocol (docs/internals.md, "proxymap protocol") is spoken
from here to private/proxymap (the tests run as root; the socket is
mail_owner's)."""

import os
import signal
import socket
import struct
import time

import pytest

from ternlib import make_message, wait_until
from test_routing import rcpt_reply, write_map
from test_table_socketmap import MapServer, netstring, read_netstring


def attr_message(proto, **attrs):
    """One lib/attr message: proto first, then attrs in order."""
    payload = b""
    for name, value in [("proto", proto)] + list(attrs.items()):
        value = str(value).encode()
        payload += struct.pack(">H", len(name)) + name.encode()
        payload += struct.pack(">I", len(value)) + value
    return struct.pack(">I", len(payload)) + payload


def attr_parse(payload):
    attrs, i = {}, 0
    while i < len(payload):
        (n,) = struct.unpack(">H", payload[i : i + 2])
        name = payload[i + 2 : i + 2 + n].decode()
        i += 2 + n
        (m,) = struct.unpack(">I", payload[i : i + 4])
        attrs[name] = payload[i + 4 : i + 4 + m].decode()
        i += 4 + m
    return attrs


class ProxymapClient:
    """A client of private/proxymap speaking the raw protocol."""

    def __init__(self, t):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(t.queue / "private" / "proxymap"))
        self.next_id = 0

    def close(self):
        self.sock.close()

    def send(self, table, key, flags=0):
        self.next_id += 1
        self.sock.sendall(
            attr_message("proxymap.lookup", id=self.next_id, table=table, flags=flags, key=key)
        )
        return self.next_id

    def read_reply(self):
        def exactly(n):
            data = b""
            while len(data) < n:
                chunk = self.sock.recv(n - len(data))
                assert chunk, "proxymap closed the connection"
                data += chunk
            return data

        (length,) = struct.unpack(">I", exactly(4))
        return attr_parse(exactly(length))

    def lookup(self, table, key, flags=0):
        rid = self.send(table, key, flags)
        reply = self.read_reply()
        assert reply["proto"] == "proxymap.reply" and reply["id"] == str(rid), reply
        return reply["status"], reply.get("value")


def proxymap_pid(t):
    pids = t.service_pids("proxymap")
    return pids[0] if pids else None


def test_mail_is_routed_through_a_proxied_virtual_table(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32")
    spec = write_map(t, "virtual", "joe@virt.test joe@sink.test\n")
    # a remote table cannot be listed: its domains are named (as in Postfix)
    t.conf_edit(virtual_alias_maps=f"proxy:{spec}", virtual_alias_domains="virt.test")
    t.start()
    assert proxymap_pid(t), "master starts tern-proxymap"
    assert rcpt_reply(t, "nobody@virt.test").startswith("550 5.1.1 ")
    t.send(make_message(subject="px1"), rcpts=("joe@virt.test",), source="127.0.0.5")
    assert sink.wait_for(b"Subject: px1\r\n")[0].rcpt_tos == ["joe@sink.test"]


def test_tools_open_a_proxy_table_directly(res):
    t = res.tern(start=False)
    spec = write_map(t, "direct", "Key1 value one\n")
    r = t.tern("map", "-q", "key1", f"proxy:{spec}")  # no instance running
    assert r.returncode == 0 and r.stdout.strip() == "value one", (r.stdout, r.stderr)
    r = t.tern("map", "-q", "nokey", f"proxy:{spec}")
    assert r.returncode != 0 and r.stdout == ""


def test_a_table_the_configuration_does_not_name_is_refused(res):
    t = res.tern(start=False)
    named = write_map(t, "named", "k v-named\n")
    other = write_map(t, "other", "k v-other\n")
    t.conf_edit(virtual_alias_maps=f"optional:proxy:{named}")
    t.start()
    c = ProxymapClient(t)
    assert c.lookup(named, "k") == ("found", "v-named")
    assert c.lookup(named, "K") == ("found", "v-named"), "folded unless TABLE_CASE_SENSITIVE"
    assert c.lookup(named, "K", flags=2) == ("notfound", None), "the client's flags are honoured"
    assert c.lookup(other, "k") == ("tempfail", None)
    t.wait_log(rf"refused a lookup in {other}: the table is not named")
    c.close()


def test_pipelined_requests_are_each_answered_by_id(res):
    t = res.tern(start=False)
    spec = write_map(t, "pipe", "".join(f"k{i} v{i}\n" for i in range(50)))
    t.conf_edit(transport_maps=f"proxy:{spec}")
    t.start()
    c = ProxymapClient(t)
    ids = {c.send(spec, f"k{i}"): f"v{i}" for i in range(50)}
    ids[c.send(spec, "k7")] = "v7"  # the same lookup twice in flight
    for _ in range(len(ids)):
        reply = c.read_reply()
        assert reply["status"] == "found" and reply["value"] == ids.pop(int(reply["id"]))
    assert not ids
    c.close()


def test_a_killed_proxymap_is_restarted_and_clients_reconnect(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32",
                 service_restart_delay="1s")
    spec = write_map(t, "virtual", "joe@virt.test joe@sink.test\n")
    t.conf_edit(virtual_alias_maps=f"proxy:{spec}", virtual_alias_domains="virt.test")
    t.start()
    assert rcpt_reply(t, "joe@virt.test").startswith("250 ")
    old = proxymap_pid(t)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: proxymap_pid(t) not in (None, old), 15, "tern-proxymap restarted")
    wait_until(lambda: (t.queue / "private" / "proxymap").exists(), 5, "socket")
    c = ProxymapClient(t)
    assert c.lookup(spec, "joe@virt.test") == ("found", "joe@sink.test")
    c.close()
    # smtpd's kept connection broke: it reconnects once and goes on
    assert rcpt_reply(t, "joe@virt.test").startswith("250 ")
    assert rcpt_reply(t, "nobody@virt.test").startswith("550 5.1.1 ")


class CountingMapServer(MapServer):
    """A socketmap server: "slow@" keys answer after 0.5 s, "hang@" never,
    "temp@" TEMP, anything else "OK value-of-KEY"; requests lists them all."""

    def _serve(self, conn):
        try:
            while True:
                key = read_netstring(conn).decode().partition(" ")[2]
                self.requests.append(key)
                if key.startswith("hang@"):
                    self.hung.append(conn)
                    return
                if key.startswith("slow@"):
                    time.sleep(0.5)
                reply = b"TEMP down" if key.startswith("temp@") else f"OK value-of-{key}".encode()
                conn.sendall(netstring(reply))
        except (EOFError, OSError):
            pass
        conn.close()


@pytest.fixture
def sockmap(res):
    server = CountingMapServer(socket.AF_INET, ("127.0.0.1", 0))
    yield server, f"socketmap:inet:127.0.0.1:{server.address[1]}:virtual"
    server.close()


def test_the_cache_saves_requests_to_the_server_within_the_ttl(res, sockmap):
    server, spec = sockmap
    t = res.tern(start=False, proxymap_cache_ttl="1s", proxymap_verbose="yes",
                 transport_maps=spec)
    t.start()
    c = ProxymapClient(t)
    assert c.lookup(spec, "joe@x.test") == ("found", "value-of-joe@x.test")
    assert c.lookup(spec, "joe@x.test") == ("found", "value-of-joe@x.test")
    assert server.requests == ["joe@x.test"], "the second answer came from the cache"
    assert c.lookup(spec, "temp@x.test") == ("tempfail", None)
    assert c.lookup(spec, "temp@x.test") == ("tempfail", None)
    assert server.requests.count("temp@x.test") == 2, "a temporary failure is never cached"
    t.wait_log(rf"{spec}: joe@x\.test: found from the table in [0-9.]+ ms")
    t.wait_log(rf"{spec}: joe@x\.test: found from the cache")
    time.sleep(1.2)
    assert c.lookup(spec, "joe@x.test") == ("found", "value-of-joe@x.test")
    assert server.requests.count("joe@x.test") == 2, "asked again after the TTL"
    c.close()


def test_identical_lookups_in_flight_are_one_request(res, sockmap):
    server, spec = sockmap
    t = res.tern(start=False, transport_maps=spec)
    t.start()
    c = ProxymapClient(t)
    first, second = c.send(spec, "slow@x.test"), c.send(spec, "slow@x.test")
    replies = {int(r["id"]): r for r in (c.read_reply(), c.read_reply())}
    assert set(replies) == {first, second}
    assert all(r["value"] == "value-of-slow@x.test" for r in replies.values())
    assert server.requests == ["slow@x.test"]
    c.close()


def test_a_hung_lookup_is_answered_by_the_safety_net_and_stalls_nothing_else(res, sockmap):
    server, spec = sockmap
    t = res.tern(start=False, transport_maps=spec, proxymap_lookup_timeout="1s")
    t.start()
    c = ProxymapClient(t)
    start = time.monotonic()
    hung = c.send(spec, "hang@x.test")
    wait_until(lambda: "hang@x.test" in server.requests, 5, "the hung request reached the server")
    assert c.lookup(spec, "joe@x.test") == ("found", "value-of-joe@x.test")
    assert time.monotonic() - start < 1, "another worker of the pool answered meanwhile"
    reply = c.read_reply()
    assert (int(reply["id"]), reply["status"]) == (hung, "tempfail")
    assert 0.9 <= time.monotonic() - start < 3
    t.wait_log(rf"{spec}: lookup of hang@x\.test not done after 1s")
    c.close()


def test_one_lmdb_file_is_opened_once_whatever_the_flags(res):
    """LMDB forbids opening an environment twice in one process: the same
    proxy:lmdb: file asked with two flag sets shares one table."""
    t = res.tern(start=False)
    spec = write_map(t, "transport", "a.test smtp:[127.0.0.1]:25\n", build=True)
    t.conf_edit(transport_maps=f"proxy:{spec}")
    t.start()
    c = ProxymapClient(t)
    for flags in (0, 2, 4, 6):  # none, TABLE_CASE_SENSITIVE, TABLE_OPTIONAL, both
        assert c.lookup(spec, "a.test", flags) == ("found", "smtp:[127.0.0.1]:25"), flags
    pid = proxymap_pid(t)
    lmdb = spec.partition(":")[2] + ".lmdb"
    fds = [f for f in os.listdir(f"/proc/{pid}/fd")
           if os.path.realpath(f"/proc/{pid}/fd/{f}") == os.path.realpath(lmdb)]
    assert len(fds) == 1, fds
    os.rename(lmdb, lmdb + ".away")  # gone: not optional is tempfail, optional not found
    assert c.lookup(spec, "c.test", 0)[0] == "tempfail"  # keys not in the cache
    assert c.lookup(spec, "d.test", 4)[0] == "notfound"
    c.close()
