"""Address rewriting in cleanup: canonical maps (sendmail's domaintable),
masquerading, header addresses (SPEC MASQ-01..09, VDOM-07)."""

import subprocess

from ternlib import BUILD, make_message, tool_env
from test_routing import rcpt_reply, write_map


def sendmail(t, args, content: bytes):
    r = subprocess.run(
        [str(BUILD / "tools" / "sendmail"), "-C", str(t.conf_path), *args],
        input=content,
        capture_output=True,
        env=tool_env(),
    )
    assert r.returncode == 0, r.stderr
    return r


def test_domaintable_rewrites_the_envelope_and_accepts_the_parallel_domain(res):
    """SPEC VDOM-07: `@parallel.test @example.test` in recipient_canonical_maps
    (domaintable); the parallel domain is accepted from outsiders because the
    rewritten address is ours."""
    sink = res.sink()
    t = res.tern(
        start=False,
        relayhost=sink.hostport,
        mynetworks="127.0.0.1/32",
        relay_domains="example.test",
    )
    spec = write_map(t, "domaintable", "@parallel.test @example.test\n", build=True)
    t.conf_edit(canonical_maps=spec)
    t.start()
    assert rcpt_reply(t, "hal@parallel.test").startswith("250 ")
    assert rcpt_reply(t, "hal@other.test").startswith("554 5.7.1 ")
    t.send(make_message(subject="parallel"), rcpts=("hal@parallel.test",), source="127.0.0.5")
    got = sink.wait_for(b"Subject: parallel\r\n")[0]
    assert got.rcpt_tos == ["hal@example.test"]
    assert "for <hal@example.test>" in got.headers().get_all("Received")[0]


def test_sender_canonical_and_recipient_canonical_are_separate(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    snd = write_map(t, "sender_canonical", "eve@host.test eve.smith@example.test\n")
    rcp = write_map(t, "recipient_canonical", "bob@old.test robert@new.test\n")
    t.conf_edit(sender_canonical_maps=snd, recipient_canonical_maps=rcp)
    t.start()
    t.send(make_message(subject="canon"), sender="eve@host.test", rcpts=("bob@old.test",))
    got = sink.wait_for(b"Subject: canon\r\n")[0]
    assert got.mail_from == "eve.smith@example.test"
    assert got.rcpt_tos == ["robert@new.test"]
    # the recipient table does not touch senders, nor the sender table recipients
    t.send(make_message(subject="crossed"), sender="bob@old.test", rcpts=("eve@host.test",))
    got = sink.wait_for(b"Subject: crossed\r\n")[0]
    assert got.mail_from == "bob@old.test"
    assert got.rcpt_tos == ["eve@host.test"]


def test_canonical_classes_limit_canonical_maps(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "canonical", "@a.test @b.test\n")
    t.conf_edit(canonical_maps=spec, canonical_classes="envelope_recipient")
    t.start()
    t.send(make_message(subject="classes"), sender="x@a.test", rcpts=("y@a.test",))
    got = sink.wait_for(b"Subject: classes\r\n")[0]
    assert got.mail_from == "x@a.test", "envelope_sender is not in canonical_classes"
    assert got.rcpt_tos == ["y@b.test"]


def test_canonical_keeps_the_extension(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "canonical", "joe@a.test joseph@b.test\n")
    t.conf_edit(recipient_canonical_maps=spec)
    t.start()
    t.send(make_message(subject="ext"), rcpts=("joe+lists@a.test",))
    assert sink.wait_for(b"Subject: ext\r\n")[0].rcpt_tos == ["joseph+lists@b.test"]


def masq_instance(res, **params):
    sink = res.sink()
    base = dict(
        relayhost=sink.hostport,
        myhostname="mx.example.test",
        mydomain="example.test",
        mydestination="mx.example.test, localhost",
        masquerade_domains="example.test",
    )
    base.update(params)
    t = res.tern(**base)
    return t, sink


def test_masquerade_envelope_sender_of_subdomains_only(res):
    t, sink = masq_instance(res)
    t.send(make_message(subject="m1"), sender="eve@mx.example.test")
    t.send(make_message(subject="m2"), sender="eve@a.b.deep.example.test")
    t.send(make_message(subject="m3"), sender="eve@notexample.test")
    t.send(make_message(subject="m4"), sender="eve@example.test")
    assert sink.wait_for(b"Subject: m1\r\n")[0].mail_from == "eve@example.test"
    assert sink.wait_for(b"Subject: m2\r\n")[0].mail_from == "eve@example.test"
    assert sink.wait_for(b"Subject: m3\r\n")[0].mail_from == "eve@notexample.test", "look-alike untouched"
    assert sink.wait_for(b"Subject: m4\r\n")[0].mail_from == "eve@example.test"


def test_masquerade_never_touches_envelope_recipients(res):
    t, sink = masq_instance(res, relay_domains="example.test")
    t.send(make_message(subject="rc"), rcpts=("bob@host.example.test",))
    assert sink.wait_for(b"Subject: rc\r\n")[0].rcpt_tos == ["bob@host.example.test"]


def test_masquerade_exceptions_and_excluded_hosts(res):
    t, sink = masq_instance(
        res,
        masquerade_domains="!keep.example.test, example.test",
        masquerade_exceptions="root",
    )
    t.send(make_message(subject="x1"), sender="root@mx.example.test")
    t.send(make_message(subject="x2"), sender="eve@keep.example.test")
    t.send(make_message(subject="x3"), sender="eve@other.keep.example.test")
    assert sink.wait_for(b"Subject: x1\r\n")[0].mail_from == "root@mx.example.test"
    assert sink.wait_for(b"Subject: x2\r\n")[0].mail_from == "eve@keep.example.test"
    # "!name" stops the search for the name and its subdomains (Postfix)
    assert sink.wait_for(b"Subject: x3\r\n")[0].mail_from == "eve@other.keep.example.test"


def test_masquerade_classes_without_envelope_sender(res):
    t, sink = masq_instance(res, masquerade_classes="header_sender")
    t.send(make_message(subject="hs"), sender="eve@mx.example.test")
    assert sink.wait_for(b"Subject: hs\r\n")[0].mail_from == "eve@mx.example.test"


def test_masquerade_classes_refuses_envelope_recipient(res):
    t = res.tern(start=False, masquerade_classes="envelope_sender, envelope_recipient")
    r = t.tern("check")
    assert r.returncode != 0
    assert "envelope recipients are never masqueraded" in r.stdout + r.stderr
    assert "tern.conf:" in r.stdout + r.stderr


def test_local_submission_is_qualified_and_masqueraded(res):
    """SPEC MASQ-01/02/08: `sendmail -f eve` from this host leaves as
    eve@<masquerade domain>."""
    t, sink = masq_instance(res, myorigin="$myhostname")
    sendmail(t, ["-f", "eve", "u@sink.test"], b"Subject: local masq\n\nbody\n")
    got = sink.wait_for(b"Subject: local masq\r\n")[0]
    assert got.mail_from == "eve@example.test"


# ---------------------------------------------------------------- headers


def test_header_sender_is_qualified_and_masqueraded(res):
    """SPEC MASQ-01/02: `From: eve` from a local submission leaves as
    eve@<masquerade domain>; MASQ-03: unqualified recipients too."""
    t, sink = masq_instance(res)
    sendmail(
        t,
        ["-t", "-f", "eve"],
        b"From: eve\nTo: bob@sink.test, alice\nSubject: hdr masq\n\nbody\n",
    )
    got = sink.wait_for(b"Subject: hdr masq\r\n")[0]
    assert got.header("From") == "eve@example.test"
    assert got.header("To") == "bob@sink.test, alice@example.test"
    assert got.mail_from == "eve@example.test"


def test_exposed_user_is_qualified_but_not_masqueraded(res):
    """SPEC MASQ-06: `Cc: root` -> `Cc: root@<fqdn>`."""
    t, sink = masq_instance(res, masquerade_exceptions="root")
    sendmail(t, ["-t", "-f", "eve"], b"To: u@sink.test\nCc: root\nSubject: exposed\n\nx\n")
    got = sink.wait_for(b"Subject: exposed\r\n")[0]
    assert got.header("Cc") == "root@mx.example.test"


def test_header_rewriting_keeps_everything_but_the_addresses(res):
    t, sink = masq_instance(res)
    headers = (
        b"From: \"Eve, the Admin\" <eve@a.b.mx.example.test> (comment)\n"
        b"To: =?utf-8?q?J=C3=B6rg?= <joerg@host.example.test>,\n"
        b"\tteam: ann@x.example.test, \"bob smith\"@y.example.test;\n"
        b"Cc: look@notexample.test, undisclosed-recipients:;\n"
        b"Subject: keep the rest\n"
        b"X-Other: eve@host.example.test\n"
    )
    sendmail(t, ["-t", "-f", "eve"], headers + b"\nbody\n")
    got = sink.wait_for(b"Subject: keep the rest\r\n")[0]
    assert got.header("From") == '"Eve, the Admin" <eve@example.test> (comment)'
    assert got.header("To") == (
        "=?utf-8?q?J=C3=B6rg?= <joerg@example.test>,\r\n"
        '\tteam: ann@example.test, "bob smith"@example.test;'
    )
    assert got.header("Cc") == "look@notexample.test, undisclosed-recipients:;"
    assert got.header("X-Other") == "eve@host.example.test", "other headers are not address lists"


def test_remote_client_headers_stay_but_its_envelope_is_rewritten(res):
    t, sink = masq_instance(res, mynetworks="127.0.0.1/32", relay_domains="sink.test")
    msg = make_message(subject="remote hdr", sender="eve@host.example.test")
    t.send(msg, sender="eve@host.example.test", rcpts=("u@sink.test",), source="127.0.0.5")
    got = sink.wait_for(b"Subject: remote hdr\r\n")[0]
    assert got.mail_from == "eve@example.test"
    assert got.header("From") == "<eve@host.example.test>"


def test_local_header_rewrite_clients_permit(res):
    t, sink = masq_instance(
        res,
        mynetworks="127.0.0.1/32",
        relay_domains="sink.test",
        local_header_rewrite_clients="permit",
    )
    msg = make_message(subject="permit hdr", sender="eve@host.example.test")
    t.send(msg, sender="eve@host.example.test", rcpts=("u@sink.test",), source="127.0.0.5")
    assert sink.wait_for(b"Subject: permit hdr\r\n")[0].header("From") == "<eve@example.test>"


def test_always_add_domain_for_local_delivery(res):
    """SPEC MASQ-05: a locally delivered message has qualified headers."""
    t, _ = masq_instance(res)
    sendmail(t, ["-t", "-f", "eve"], b"From: eve\nTo: root\nSubject: local qual\n\nx\n")
    mbox = t.spool / "root"
    from ternlib import wait_until

    wait_until(lambda: mbox.exists() and b"local qual" in mbox.read_bytes(), 15, "local delivery")
    text = mbox.read_bytes()
    assert b"\nFrom: eve@example.test\n" in text
    assert b"\nTo: root@example.test\n" in text


def test_domaintable_rewrites_header_recipients(res):
    """SPEC VDOM-07: the delivered To: header is hal@example.test."""
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, relay_domains="example.test")
    spec = write_map(t, "domaintable", "@parallel.test @example.test\n", build=True)
    t.conf_edit(canonical_maps=spec)
    t.start()
    t.send(make_message(subject="vdom07", to="hal@parallel.test"), rcpts=("hal@parallel.test",))
    got = sink.wait_for(b"Subject: vdom07\r\n")[0]
    assert got.rcpt_tos == ["hal@example.test"]
    assert got.header("To") == "<hal@example.test>"


def test_generic_maps_rewrite_senders_on_the_way_out_only(res):
    """sendmail's genericstable: the envelope sender and the sender headers
    change as mail leaves by SMTP; recipients and local mail do not."""
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "genericstable", "@internal.test @example.test\n", build=True)
    t.conf_edit(smtp_generic_maps=spec)
    t.start()
    msg = (
        b"From: Eve <eve@internal.test>\r\nReply-To: eve@internal.test\r\n"
        b"To: bob@internal.test\r\nSubject: generic out\r\n\r\nbody\r\n"
    )
    t.send(msg, sender="eve@internal.test", rcpts=("bob@internal.test", "root@tern.test"))
    got = sink.wait_for(b"Subject: generic out\r\n")[0]
    assert got.mail_from == "eve@example.test"
    assert got.rcpt_tos == ["bob@internal.test"]
    assert got.header("From") == "Eve <eve@example.test>"
    assert got.header("Reply-To") == "eve@example.test"
    assert got.header("To") == "bob@internal.test"
    assert got.body() == b"body\r\n"
    from ternlib import wait_until

    mbox = t.spool / "root"
    wait_until(lambda: mbox.exists() and b"generic out" in mbox.read_bytes(), 15, "local copy")
    assert b"From: Eve <eve@internal.test>" in mbox.read_bytes()
