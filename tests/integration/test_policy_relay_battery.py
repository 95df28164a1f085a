"""Open-relay regression battery (SPEC RELAY-11, RELAY-10; issue 10): every
classic relay trick from a client outside mynetworks (127.0.0.5) is refused,
or -- when tern takes the address for a local one and answers 250 -- the
message is delivered (or bounced) locally and never reaches far.test.

Two instances, both with mynetworks = 127.0.0.1/32 and mydestination =
tern.test, both routing far.test (and, through relayhost, every other
remote domain) to the `far` sink, and example.test (the sender's domain,
where bounces go) to the `bounces` sink:

  strict      the default local_recipient_maps: unknown local parts are
              refused at RCPT, so nearly every trick ends at RCPT;
  any_local   local_recipient_maps = (empty): every local part of
              tern.test is accepted at RCPT, so the percent hack, bang
              paths, quoted and double-at forms get 250 and go through
              DATA -- the hard case: the message must be delivered by
              tern/local (to an unknown user: a bounce to the sender), not
              relayed.

Each row documents tern's reply today in both instances (the three-digit
code is asserted exactly; the full texts are in the comments).  Must pass
against the current code.
"""

import re

import pytest

from ternlib import REPLY_250_QUEUED, make_message, wait_until

OUTSIDER = "127.0.0.5"
SENDER = "out@example.test"

RELAY_DENIED = "554 5.7.1 <{}>: Relay access denied"
UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown in local recipient table"
SYNTAX = '501 5.5.2 Syntax error in parameters scanning "TO"'
UNDECLARED_UTF8 = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"


def _unknown_or_local(addr):
    return UNKNOWN.format(addr), f"250 2.1.5 <{addr}>... Recipient ok"


# (id, the bytes after "RCPT TO:", the reply in `strict`, the reply in
# `any_local`).  A reply of None means "the same as strict".
TRICKS = [
    # percent hack: tern does not strip %: a local part "user%far.test"
    ("percent-hack", b"<user%far.test@tern.test>", *_unknown_or_local("user%far.test@tern.test")),
    ("percent-hack-root", b"<root%far.test@tern.test>",
     *_unknown_or_local("root%far.test@tern.test")),
    ("percent-hack-literal", b"<user%[127.0.0.20]@tern.test>",
     *_unknown_or_local("user%[127.0.0.20]@tern.test")),
    ("percent-no-domain", b"<user%far.test>",
     UNKNOWN.format("user%far.test"), "250 2.1.5 <user%far.test>... Recipient ok"),
    ("percent-in-domain", b"<user@far%test>", RELAY_DENIED.format("user@far%test"), None),
    ("percent-in-domain-local-tail", b"<user@far.test%tern.test>",
     RELAY_DENIED.format("user@far.test%tern.test"), None),
    # UUCP bang path: a local part "far.test!user"
    ("bang-path", b"<far.test!user@tern.test>", *_unknown_or_local("far.test!user@tern.test")),
    ("bang-path-root", b"<far.test!root@tern.test>",
     *_unknown_or_local("far.test!root@tern.test")),
    ("bang-path-bare", b"<far.test!user>",
     UNKNOWN.format("far.test!user"), "250 2.1.5 <far.test!user>... Recipient ok"),
    # RFC 821 source routes: the route is dropped and the final address decides
    ("source-route-via-us", b"<@tern.test:user@far.test>", RELAY_DENIED.format("user@far.test"), None),
    ("source-route-two-hops", b"<@far.test,@tern.test:user@far.test>",
     RELAY_DENIED.format("user@far.test"), None),
    # a route through far.test to a local user is a local recipient: root
    # exists (250 in both), user only where any local part is accepted
    ("source-route-via-far-to-local", b"<@far.test:root@tern.test>",
     "250 2.1.5 <@far.test:root@tern.test>... Recipient ok", None),
    ("source-route-via-far-to-unknown", b"<@far.test:user@tern.test>",
     UNKNOWN.format("user@tern.test"), "250 2.1.5 <@far.test:user@tern.test>... Recipient ok"),
    # quoted local parts and double-at forms: local parts of tern.test
    ("quoted-at", b'<"user@far.test"@tern.test>', *_unknown_or_local('"user@far.test"@tern.test')),
    ("quoted-percent", b'<"user%far.test"@tern.test>',
     *_unknown_or_local('"user%far.test"@tern.test')),
    ("quoted-empty-local", b'<""@far.test>', RELAY_DENIED.format('""@far.test'), None),
    ("quoted-whole-domain", b'<"@far.test">',
     UNKNOWN.format('"@far.test"'), '250 2.1.5 <"@far.test">... Recipient ok'),
    ("double-at-local-last", b"<user@far.test@tern.test>",
     *_unknown_or_local("user@far.test@tern.test")),
    ("double-at-far-last", b"<user@tern.test@far.test>",
     RELAY_DENIED.format("user@tern.test@far.test"), None),
    ("literal-then-far", b"<user@[127.0.0.1]@far.test>",
     RELAY_DENIED.format("user@[127.0.0.1]@far.test"), None),
    # address literals are not local (tern does not treat its own IP as one
    # of its names), and in any case not relayable
    ("ip-literal", b"<user@[127.0.0.20]>", RELAY_DENIED.format("user@[127.0.0.20]"), None),
    ("ip-literal-own-address", b"<user@[127.0.0.1]>", RELAY_DENIED.format("user@[127.0.0.1]"), None),
    ("ip-without-brackets", b"<user@127.0.0.1>", RELAY_DENIED.format("user@127.0.0.1"), None),
    ("ipv6-literal", b"<user@[IPv6:::1]>", RELAY_DENIED.format("user@[IPv6:::1]"), None),
    ("ipv6-literal-port", b"<user@[IPv6:::1]:25>", RELAY_DENIED.format("user@[IPv6:::1]:25"), None),
    # spelling variants of far.test
    ("trailing-dot", b"<user@far.test.>", RELAY_DENIED.format("user@far.test."), None),
    ("upper-case", b"<USER@FAR.TEST>", RELAY_DENIED.format("USER@FAR.TEST"), None),
    ("mixed-case", b"<User@Far.Test>", RELAY_DENIED.format("User@Far.Test"), None),
    ("leading-dot", b"<user@.far.test>", RELAY_DENIED.format("user@.far.test"), None),
    ("double-dot", b"<user@far..test>", RELAY_DENIED.format("user@far..test"), None),
    ("with-port", b"<user@far.test:25>", RELAY_DENIED.format("user@far.test:25"), None),
    ("local-domain-as-prefix", b"<user@tern.test.far.test>",
     RELAY_DENIED.format("user@tern.test.far.test"), None),
    ("local-domain-as-suffix", b"<user@far.test.tern.test>",
     RELAY_DENIED.format("user@far.test.tern.test"), None),
    # bytes that do not belong in an address
    ("nul-in-domain", b"<user@far.test\x00>",
     '500 5.5.1 Command unrecognized: "RCPT TO:<user@far.test?>"', None),
    ("nul-in-local", b"<user\x00@tern.test>",
     '500 5.5.1 Command unrecognized: "RCPT TO:<user?@tern.test>"', None),
    ("control-byte", b"<user@far.test\x01>", SYNTAX, None),
    ("space-in-domain", b"<user@far .test>", SYNTAX, None),
    ("space-before-bracket", b"<user@far.test >", SYNTAX, None),
    ("backslash-at", b"<user\\@far.test@tern.test>", SYNTAX, None),
    ("backslash-dot", b"<user@far\\.test>", SYNTAX, None),
    # 8-bit bytes without MAIL ... SMTPUTF8 (RFC 6531): refused before any relay check
    ("eight-bit-domain", b"<user@far.t\xe9st>", UNDECLARED_UTF8, None),
    ("eight-bit-local", b"<us\xe9r@far.test>", UNDECLARED_UTF8, None),
    # syntax around the path
    ("with-dsn-param", b"<user@far.test> NOTIFY=NEVER", RELAY_DENIED.format("user@far.test"), None),
    ("with-bogus-params", b"<user@far.test> SIZE=10 FOO=BAR", "555 5.5.4 SIZE parameter unrecognized",
     None),
    ("no-brackets", b"user@far.test", RELAY_DENIED.format("user@far.test"), None),
    ("space-after-colon", b" <user@far.test>", RELAY_DENIED.format("user@far.test"), None),
    ("extra-closing-bracket", b"<user@far.test>>", SYNTAX, None),
    ("trailing-garbage", b"<user@far.test>garbage", SYNTAX, None),
    ("double-brackets", b"<<user@far.test>>", SYNTAX, None),
    ("empty-local-route-only", b"<@far.test>", SYNTAX, None),
    ("empty-local-route-to-us", b"<@tern.test>", SYNTAX, None),
    ("overlong-local", b"<" + b"a" * 300 + b"@far.test>", RELAY_DENIED.format("a" * 300 + "@far.test"),
     None),
    ("overlong-domain", b"<user@" + b"b" * 300 + b".far.test>",
     RELAY_DENIED.format("user@" + "b" * 300 + ".far.test"), None),
]


@pytest.fixture(scope="module")
def battery(mres):
    far = mres.sink()
    bounces = mres.sink()
    instances = {}
    for name, extra in (("strict", {}), ("any_local", {"local_recipient_maps": ""})):
        t = mres.tern(
            start=False,
            name=f"battery-{name}",
            mynetworks="127.0.0.1/32",
            mydestination="tern.test",
            relayhost=far.hostport,
            **extra,
        )
        routes = t.etc / "transport"
        routes.write_text(f"far.test smtp:{far.hostport}\nexample.test smtp:{bounces.hostport}\n")
        routes.chmod(0o644)
        t.conf_edit(transport_maps=f"texthash:{routes}")
        t.start()
        instances[name] = t
    return instances, far, bounces


def deliveries(t, qid):
    """The (relay, status) of every delivery attempt of qid in the log."""
    return re.findall(rf"{qid}: to=<[^\n]*?>, relay=([^,\s]+), [^\n]*status=(\w+)", t.log())


@pytest.mark.parametrize("instance", ["strict", "any_local"])
@pytest.mark.parametrize("trick,arg,strict_reply,any_local_reply", TRICKS, ids=[r[0] for r in TRICKS])
def test_relay_trick_from_outside(battery, instance, trick, arg, strict_reply, any_local_reply):
    instances, far, _ = battery
    t = instances[instance]
    expected = strict_reply if instance == "strict" or any_local_reply is None else any_local_reply
    tag = f"{instance}-{trick}"
    with t.connect(source=OUTSIDER) as c:
        assert c.greeting()[0].startswith("220 ")
        c.cmd("EHLO outsider.example")
        assert c.cmd(f"MAIL FROM:<{SENDER}>") == [f"250 2.1.0 <{SENDER}>... Sender ok"]
        c.send(b"RCPT TO:" + arg + b"\r\n")
        reply = c.read_reply()
        assert len(reply) == 1, reply
        # the code exactly (the documented text above is today's wording)
        assert reply[0][:4] == expected[:4], (reply, expected)
        if expected.startswith(("554 ", "550 ", "553 ")):
            assert reply == [expected], reply
        if not reply[0].startswith("2"):
            # no recipient: DATA cannot start a message
            r = c.cmd("DATA")
            assert r == ["503 5.0.0 Need RCPT (recipient)"], r
            c.cmd("QUIT")
            assert not far.matching(f"X-Trick: {tag}".encode())
            return
        final = c.data(make_message(sender=SENDER, to="x@far.test", headers={"X-Trick": tag}))
        m = REPLY_250_QUEUED.match(final[0])
        assert m, final
        qid = m.group(1)
        c.cmd("QUIT")
    # the queue settles: the message was delivered or bounced, and removed
    t.wait_log(rf"{qid}: removed", timeout=30)
    attempts = deliveries(t, qid)
    assert attempts, f"no delivery logged for {qid}"
    for relay, status in attempts:
        assert relay == "local", f"{tag}: {qid} went to {relay} ({status})"
    assert not far.matching(f"X-Trick: {tag}".encode()), f"{tag} was relayed to far.test"


def test_local_sender_does_not_grant_relaying(battery):
    """RELAY-10: a sender in our own domain, the null sender, or our own
    name as HELO does not make an outsider a relay client."""
    instances, far, _ = battery
    t = instances["strict"]
    cases = [
        ("EHLO outsider.example", "MAIL FROM:<boss@tern.test>", "boss@tern.test"),
        ("EHLO tern.test", "MAIL FROM:<postmaster@tern.test>", "postmaster@tern.test"),
        ("HELO localhost", "MAIL FROM:<root@localhost>", "root@localhost"),
        ("EHLO [127.0.0.1]", "MAIL FROM:<>", ""),
    ]
    for helo, mail, sender in cases:
        with t.connect(source=OUTSIDER) as c:
            c.greeting()
            assert c.cmd(helo)[-1].startswith("250 ")
            assert c.cmd(mail) == [f"250 2.1.0 <{sender}>... Sender ok"]
            r = c.cmd("RCPT TO:<x@far.test>")
            assert r == ["554 5.7.1 <x@far.test>: Relay access denied"], (helo, mail, r)
            assert re.match(r"^5[0-9][0-9] 5\.7\.1 ", r[0])
            assert c.cmd("DATA") == ["503 5.0.0 Need RCPT (recipient)"]
            c.cmd("QUIT")
    t.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.5\]: 554 5\.7\.1 <x@far\.test>: "
               r"Relay access denied; from=<boss@tern\.test> to=<x@far\.test> proto=ESMTP "
               r"helo=<outsider\.example>")
    assert not far.snapshot()


def test_far_sink_got_only_the_inside_barrier(battery):
    """After the battery: a message from inside mynetworks is relayed to
    far.test (so the route works), and it is the only thing far.test ever
    received -- no trick of either instance got there."""
    instances, far, _ = battery
    for name, t in instances.items():
        qid = t.send(make_message(to="x@far.test", headers={"X-Barrier": name}),
                     sender=SENDER, rcpts=("x@far.test",), source="127.0.0.1")
        far.wait_for(f"X-Barrier: {name}".encode())
        t.wait_log(rf"{qid}: removed")
    wait_until(lambda: all(not t.queue_files() for t in instances.values()), 30, "queues empty")
    got = far.snapshot()
    assert sorted(m.header("X-Barrier") for m in got) == sorted(instances), [
        m.content[:300] for m in got
    ]
    assert not far.matching(b"X-Trick:")
