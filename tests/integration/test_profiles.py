"""The seed's relay profiles end to end on loopback (SPEC §31): the
internal relay (PROF-01), the external relay in front of it (PROF-02), the
three-tier chain to the "exchange" server (PROF-08), and the lists host's
virtusertable entry (PROF-03).  The access-map, greet-pause and banner
parts of these profiles belong to the policy issue and are not tested here.

example.test stands for sysiphus.com; 127.0.0.10 is the external relay EXT,
127.0.0.11 the internal relay INT, Sinks stand for the Exchange server and
the Internet."""

from ternlib import free_port, make_message
from test_routing import rcpt_reply, write_map


def internal_relay(res, exchange, external, name="int"):
    """PROF-01 (003:714-893): mailertable example.test -> exchange, '.' ->
    the external relay, domaintable internal -> example.test, masquerading
    with envelope and all headers, open to its own networks."""
    port = free_port("127.0.0.11")
    t = res.tern(
        start=False,
        name=name,
        smtpd_listen=f"127.0.0.11:{port}",
        myhostname="mail.internal.example.test",
        mydomain="internal.example.test",
        mydestination="localhost",
        mynetworks="127.0.0.0/8",
        relay_domains="example.test",
        masquerade_domains="example.test",
        masquerade_exceptions="root",
        hopcount_limit="50",
    )
    t.host, t.port = "127.0.0.11", port
    mt = write_map(
        t,
        "mailertable",
        f"example.test smtp:{exchange.hostport}\n. smtp:{external}\n",
        build=True,
    )
    dt = write_map(
        t,
        "domaintable",
        "@internal.example.test @example.test\n@ext.example.test @example.test\n",
        build=True,
    )
    t.conf_edit(transport_maps=mt, canonical_maps=dt)
    t.start()
    return t


def test_internal_relay_profile(res):
    exchange, internet = res.sink(), res.sink()
    t = internal_relay(res, exchange, internet.hostport)
    # (a) an old client's unqualified sender, from the inside network
    with t.connect(source="127.0.0.6") as c:
        c.greeting()
        c.cmd("HELO oldbox")
        assert c.cmd("MAIL FROM:<eve>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<hal@example.test>")[0].startswith("250 ")
        assert c.data(b"From: eve\r\nTo: hal\r\nSubject: prof01a\r\n\r\nx\r\n")[0].startswith("250")
    got = exchange.wait_for(b"Subject: prof01a\r\n")[0]
    assert got.mail_from == "eve@example.test"
    assert got.rcpt_tos == ["hal@example.test"]
    assert got.header("From") == "eve@example.test"
    assert got.header("To") == "hal@example.test"
    # (b) everything else goes to the external relay ('.' in the mailertable)
    t.send(make_message(subject="prof01b"), rcpts=("u@far.test",), source="127.0.0.6")
    assert internet.wait_for(b"Subject: prof01b\r\n")[0].rcpt_tos == ["u@far.test"]
    # (c) the internal name is rewritten to the company domain
    t.send(make_message(subject="prof01c"), rcpts=("u@internal.example.test",), source="127.0.0.6")
    assert exchange.wait_for(b"Subject: prof01c\r\n")[0].rcpt_tos == ["u@example.test"]


def external_relay(res, int_hostport, internet):
    """PROF-02 (003:1136-1298): relay-domains example.test and the inside
    network 127.0.0.6, mailertable example.test -> INT, MAIL_HUB INT, no
    local delivery, domaintable parallel.test, virtusertable virtual.test."""
    port = free_port("127.0.0.10")
    t = res.tern(
        start=False,
        name="ext",
        smtpd_listen=f"127.0.0.10:{port}",
        myhostname="ext.example.test",
        mydomain="example.test",
        mydestination="ext.example.test, localhost",
        mynetworks="127.0.0.1/32",
        relayhost=internet.hostport,
        local_transport=f"smtp:{int_hostport}",
        alias_maps="",
        local_header_rewrite_clients="permit",
        hopcount_limit="50",
    )
    t.host, t.port = "127.0.0.10", port
    rd = t.etc / "relay-domains"
    rd.write_text("example.test\n127.0.0.6\n")
    vd = t.etc / "virtuserdomains"
    vd.write_text("virtual.test\n")
    mt = write_map(t, "mailertable", f"example.test smtp:{int_hostport}\n", build=True)
    dt = write_map(t, "domaintable", "@parallel.test @example.test\n", build=True)
    vt = write_map(t, "virtusertable", "@virtual.test marketing@example.test\n", build=True)
    t.conf_edit(
        relay_domains=str(rd),
        transport_maps=mt,
        canonical_maps=dt,
        virtual_alias_maps=vt,
        virtual_alias_domains=str(vd),
    )
    t.start()
    return t


def test_external_relay_in_front_of_the_internal_hub(res):
    exchange, internet = res.sink(), res.sink()
    inside = internal_relay(res, exchange, internet.hostport)
    ext = external_relay(res, f"[{inside.host}]:{inside.port}", internet)

    # closed to outsiders for other domains; open for ours
    assert rcpt_reply(ext, "u@far.test").startswith("554 5.7.1 ")
    assert rcpt_reply(ext, "hal@example.test").startswith("250 ")
    assert rcpt_reply(ext, "hal@parallel.test").startswith("250 ")
    assert rcpt_reply(ext, "nobody@virtual.test").startswith("250 "), "catch-all"

    # PROF-08: two messages in one session from outside, through EXT and INT
    with ext.connect(source="127.0.0.5") as c:
        c.greeting()
        c.cmd("HELO outside.test")
        for rcpt, subject in (("hal@parallel.test", "prof02-parallel"),
                              ("hal@virtual.test", "prof02-virtual")):
            assert c.cmd("MAIL FROM:<someone@outside.test>")[0].startswith("250 ")
            assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250 ")
            body = f"From: someone@outside.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nx\r\n"
            assert c.data(body.encode())[0].startswith("250 ")
        c.cmd("QUIT")

    par = exchange.wait_for(b"Subject: prof02-parallel\r\n")[0]
    assert par.rcpt_tos == ["hal@example.test"]
    assert par.header("To") == "hal@example.test", "domaintable rewrites the header"
    virt = exchange.wait_for(b"Subject: prof02-virtual\r\n")[0]
    assert virt.rcpt_tos == ["marketing@example.test"]
    assert virt.header("To") == "hal@virtual.test", "virtusertable changes the envelope only"

    # the Received chain: EXT (HELO: with SMTP) then INT (EHLO: with ESMTP)
    received = par.headers().get_all("Received")
    assert len(received) == 2
    assert "by mail.internal.example.test" in received[0] and "with ESMTP" in received[0]
    assert "by ext.example.test" in received[1] and "with SMTP" in received[1]
    assert "for <hal@example.test>" in received[1]
    vrec = virt.headers().get_all("Received")
    assert "for <hal@virtual.test>" in vrec[1]

    # queue IDs chain through the logs: EXT's stat line names INT's ID
    m = ext.wait_log(r"to=<hal@example.test>, relay=127\.0\.0\.11.*queued as (\w+)\)")
    inside.wait_log(rf"{m.group(1)}: from=<someone@outside.test>")

    # MAIL_HUB: local mail of EXT goes to INT, which maps it to the company domain
    ext.send(make_message(subject="prof02-hub"), rcpts=("root@ext.example.test",),
             source="127.0.0.5")
    assert exchange.wait_for(b"Subject: prof02-hub\r\n")[0].rcpt_tos == ["root@example.test"]
    assert not list(ext.spool.iterdir()), "no local delivery on the external relay"

    # the inside network (relay-domains' 127.0.0.6) relays out through EXT
    ext.send(make_message(subject="prof02-out"), rcpts=("u@far.test",), source="127.0.0.6")
    assert internet.wait_for(b"Subject: prof02-out\r\n")[0].rcpt_tos == ["u@far.test"]


def test_lists_host_virtusertable_entry_and_mailertable(res):
    """PROF-03 / LIST-04: on INT, sales@ goes to the lists host through the
    virtusertable while the rest of the domain follows the mailertable."""
    exchange, lists, internet = res.sink(), res.sink(), res.sink()
    t = internal_relay(res, exchange, internet.hostport)
    vt = write_map(t, "virtusertable", "sales@example.test sales@lists.example.test\n", build=True)
    mt = write_map(
        t,
        "mailertable",
        f"example.test smtp:{exchange.hostport}\n"
        f"lists.example.test smtp:{lists.hostport}\n"
        f". smtp:{internet.hostport}\n",
        build=True,
    )
    t.conf_edit(virtual_alias_maps=vt, transport_maps=mt)
    t.stop()
    t.start()
    t.send(make_message(subject="to-sales"), rcpts=("sales@example.test",), source="127.0.0.6")
    t.send(make_message(subject="to-other"), rcpts=("other@example.test",), source="127.0.0.6")
    assert lists.wait_for(b"Subject: to-sales\r\n")[0].rcpt_tos == ["sales@lists.example.test"]
    assert exchange.wait_for(b"Subject: to-other\r\n")[0].rcpt_tos == ["other@example.test"]
    assert not exchange.matching(b"Subject: to-sales\r\n")


def test_loop_between_two_relays_ends_at_the_hop_limit(res):
    """SPEC ROUTE-10: A and B each route loop.test to the other; the message
    bounces once it carries too many Received: headers, and the number of
    copies stays bounded."""
    sender_box = res.sink()
    pa, pb = free_port("127.0.0.10"), free_port("127.0.0.11")
    relays = []
    for name, host, port, other in (("a", "127.0.0.10", pa, f"[127.0.0.11]:{pb}"),
                                    ("b", "127.0.0.11", pb, f"[127.0.0.10]:{pa}")):
        t = res.tern(start=False, name=name, smtpd_listen=f"{host}:{port}",
                     myhostname=f"{name}.example.test", hopcount_limit="6",
                     relayhost=sender_box.hostport)
        t.host, t.port = host, port
        t.conf_edit(transport_maps=write_map(t, "mailertable", f"loop.test smtp:{other}\n"))
        t.start()
        relays.append(t)
    a, b = relays
    a.send(make_message(subject="round and round"), sender="me@outside.test",
           rcpts=("u@loop.test",))
    bounce = sender_box.wait_for(b"Too many hops", timeout=60)[0]
    assert bounce.rcpt_tos == ["me@outside.test"]
    hops = a.log().count("to=<u@loop.test>") + b.log().count("to=<u@loop.test>")
    assert hops <= 8
