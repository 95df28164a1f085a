"""Routing: transport_maps (sendmail's mailertable), the *_transport
parameters, relay_domains (SPEC ROUTE-02/03/05, RELAY-02/03)."""

import subprocess

from ternlib import REPLY_250_QUEUED, make_message, tool_env, BUILD, wait_until


def write_map(t, name, text, build=False):
    """A table file in the instance's etc/; built as lmdb when build."""
    path = t.etc / name
    path.write_text(text)
    path.chmod(0o644)
    if build:
        r = t.tern("map", str(path))
        assert r.returncode == 0, r.stderr
        return f"lmdb:{path}"
    return f"texthash:{path}"


def rcpt_reply(t, rcpt, source="127.0.0.5", sender="a@example.test"):
    """The reply to RCPT TO:<rcpt> in a fresh session from source."""
    with t.connect(source=source) as c:
        c.greeting()
        c.cmd("EHLO client.example")
        assert c.cmd(f"MAIL FROM:<{sender}>")[0].startswith("250")
        return c.cmd(f"RCPT TO:<{rcpt}>")[0]


def test_mailertable_routes_two_domains_and_the_default(res):
    a, b, dflt = res.sink(), res.sink(), res.sink()
    t = res.tern(start=False)
    spec = write_map(
        t,
        "mailertable",
        f"a.test smtp:{a.hostport}\n"
        f"b.test esmtp:{b.hostport}\n"
        f". relay:{dflt.hostport}\n",
        build=True,
    )
    t.conf_edit(transport_maps=spec)
    t.start()
    t.send(make_message(subject="to-a"), rcpts=("u@a.test",))
    t.send(make_message(subject="to-b"), rcpts=("u@b.test",))
    t.send(make_message(subject="to-other"), rcpts=("u@other.test",))
    assert a.wait_for(b"Subject: to-a\r\n")[0].rcpt_tos == ["u@a.test"]
    assert b.wait_for(b"Subject: to-b\r\n")[0].rcpt_tos == ["u@b.test"]
    assert dflt.wait_for(b"Subject: to-other\r\n")[0].rcpt_tos == ["u@other.test"]
    assert not a.matching(b"Subject: to-b\r\n") and not a.matching(b"Subject: to-other\r\n")


def test_mailertable_exact_domain_does_not_cover_subdomains_dot_entry_does(res):
    exact, sub, dflt = res.sink(), res.sink(), res.sink()
    t = res.tern(start=False, relayhost=dflt.hostport)
    spec = write_map(
        t,
        "mailertable",
        f"example.test smtp:{exact.hostport}\n.example.test smtp:{sub.hostport}\n",
        build=True,
    )
    t.conf_edit(transport_maps=spec)
    t.start()
    t.send(make_message(subject="exact"), rcpts=("u@example.test",))
    t.send(make_message(subject="deep"), rcpts=("u@a.b.example.test",))
    t.send(make_message(subject="lookalike"), rcpts=("u@notexample.test",))
    exact.wait_for(b"Subject: exact\r\n")
    sub.wait_for(b"Subject: deep\r\n")
    dflt.wait_for(b"Subject: lookalike\r\n")
    assert not exact.matching(b"Subject: deep\r\n") and not sub.matching(b"Subject: exact\r\n")


def test_mailertable_error_entry_refuses_at_rcpt_and_queues_nothing(res):
    t = res.tern(start=False)
    spec = write_map(
        t,
        "mailertable",
        "bad.test error:5.7.1:550 no mail here\n"
        "gone.test error:nouser No such user here\n"
        "later.test error:4.3.2 try again later\n",
    )
    t.conf_edit(transport_maps=spec)
    t.start()
    assert rcpt_reply(t, "u@bad.test", source="127.0.0.1") == (
        "550 5.7.1 <u@bad.test>... no mail here"
    )
    assert rcpt_reply(t, "u@gone.test", source="127.0.0.1") == (
        "550 5.0.0 <u@gone.test>... No such user here"
    )
    assert rcpt_reply(t, "u@later.test", source="127.0.0.1").startswith("451 4.3.2 ")
    assert not t.queue_files()


def test_error_route_of_a_local_submission_bounces_to_the_sender(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "mailertable", "bad.test error:5.7.1 no mail here\n")
    t.conf_edit(transport_maps=spec)
    t.start()
    sendmail = BUILD / "tools" / "sendmail"
    r = subprocess.run(
        [str(sendmail), "-C", str(t.conf_path), "-f", "alice@far.test", "u@bad.test"],
        input=b"Subject: bounce me\n\nbody\n",
        capture_output=True,
        env=tool_env(),
    )
    assert r.returncode == 0, r.stderr
    t.wait_log(r"to=<u@bad.test>, relay=none, .*dsn=5\.7\.1, status=bounced \(no mail here\)")
    bounce = sink.wait_for(b"no mail here")[0]
    assert bounce.rcpt_tos == ["alice@far.test"]
    assert bounce.mail_from == ""


def test_unknown_transport_defers_and_says_why(res):
    sink = res.sink()
    t = res.tern(start=False)
    spec = write_map(t, "mailertable", f"odd.test carrier-pigeon:{sink.hostport}\n")
    t.conf_edit(transport_maps=spec)
    t.start()
    assert rcpt_reply(t, "u@odd.test", source="127.0.0.1").startswith("451 4.3.0 ")


def test_discard_and_retry_routes(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "mailertable", "void.test discard:\nslow.test retry:4.4.1 hold it\n")
    t.conf_edit(transport_maps=spec)
    t.start()
    qid = t.send(make_message(subject="void"), rcpts=("u@void.test",))
    t.wait_log(rf"{qid}: to=<u@void.test>, relay=none, .*status=sent \(discarded")
    t.wait_log(rf"{qid}: removed")
    qid = t.send(make_message(subject="slow"), rcpts=("u@slow.test",))
    t.wait_log(rf"{qid}: to=<u@slow.test>, relay=none, .*dsn=4\.4\.1, status=deferred \(hold it\)")
    assert not sink.snapshot()


def test_transport_map_rebuilt_while_running_takes_effect(res):
    old, new = res.sink(), res.sink()
    t = res.tern(start=False)
    spec = write_map(t, "mailertable", f"r.test smtp:{old.hostport}\n", build=True)
    t.conf_edit(transport_maps=spec)
    t.start()
    t.send(make_message(subject="first"), rcpts=("u@r.test",))
    old.wait_for(b"Subject: first\r\n")
    write_map(t, "mailertable", f"r.test smtp:{new.hostport}\n", build=True)
    t.send(make_message(subject="second"), rcpts=("u@r.test",))
    new.wait_for(b"Subject: second\r\n")
    assert not old.matching(b"Subject: second\r\n")


def test_relay_domains_accepted_from_anyone_others_denied(res):
    sink = res.sink()
    t = res.tern(
        start=False, relayhost=sink.hostport, relay_domains="other.test", mynetworks="127.0.0.1/32"
    )
    t.start()
    assert rcpt_reply(t, "u@other.test").startswith("250 ")
    assert rcpt_reply(t, "u@sub.other.test").startswith("250 "), "subdomains by default"
    assert rcpt_reply(t, "u@far.test").startswith("554 5.7.1 ")
    qid = t.send(make_message(subject="backup mx"), rcpts=("u@other.test",), source="127.0.0.5")
    assert sink.wait_for(b"Subject: backup mx\r\n")[0].rcpt_tos == ["u@other.test"]
    assert qid


def test_relay_domains_exact_names_when_parent_matching_is_off(res):
    t = res.tern(
        start=False,
        relay_domains="other.test",
        parent_domain_matches_subdomains="",
        mynetworks="127.0.0.1/32",
    )
    t.start()
    assert rcpt_reply(t, "u@other.test").startswith("250 ")
    assert rcpt_reply(t, "u@sub.other.test").startswith("554 5.7.1 ")


def test_relay_domains_file_with_client_networks_as_sendmail_has_it(res):
    """sendmail's relay-domains: domains to accept and client networks that
    may relay out, in one file (SPEC RELAY-03's test)."""
    t = res.tern(start=False, mynetworks="127.0.0.1/32")
    names = t.etc / "relay-domains"
    names.write_text("# class R\nother.test\n127.0.0.6\n")
    t.conf_edit(relay_domains=str(names))
    t.start()
    assert rcpt_reply(t, "u@other.test", source="127.0.0.5").startswith("250 ")
    assert rcpt_reply(t, "u@far.test", source="127.0.0.5").startswith("554 5.7.1 ")
    assert rcpt_reply(t, "u@far.test", source="127.0.0.6").startswith("250 ")


def hub_instance(res, aliases="", **params):
    """An outside relay whose local mail goes to a hub (sendmail's MAIL_HUB)."""
    hub, outside = res.sink(), res.sink()
    t = res.tern(
        start=False,
        relayhost=outside.hostport,
        mynetworks="127.0.0.1/32",
        local_transport=f"smtp:{hub.hostport}",
        **params,
    )
    t.aliases.write_text(aliases)
    t.start()
    return t, hub, outside


def test_mail_hub_gets_local_users_without_local_delivery(res):
    t, hub, _ = hub_instance(res)
    assert rcpt_reply(t, "ghost@tern.test").startswith("250 "), "the hub knows its users"
    t.send(make_message(subject="hub-root"), rcpts=("root@tern.test",), source="127.0.0.5")
    t.send(make_message(subject="hub-ghost"), rcpts=("ghost@tern.test",), source="127.0.0.5")
    assert hub.wait_for(b"Subject: hub-root\r\n")[0].rcpt_tos == ["root@tern.test"]
    assert hub.wait_for(b"Subject: hub-ghost\r\n")[0].rcpt_tos == ["ghost@tern.test"]
    assert not list(t.spool.iterdir()), "no local mailbox is written"


def test_mail_hub_expands_aliases_first(res):
    """sendmail applies MAIL_HUB to what the aliases did not resolve: the
    alias members go to the hub, outside members are relayed."""
    t, hub, outside = hub_instance(res, aliases="staff: alice, bob, ext@far.test\n")
    qid = t.send(make_message(subject="staff"), rcpts=("staff@tern.test",), source="127.0.0.5")
    got = hub.wait_for(b"Subject: staff\r\n")[0]
    assert sorted(got.rcpt_tos) == ["alice@tern.test", "bob@tern.test"]
    assert outside.wait_for(b"Subject: staff\r\n")[0].rcpt_tos == ["ext@far.test"]
    t.wait_log(rf"{qid}: to=<alice@tern.test>, orig_to=<staff@tern.test>, relay=local.*forwarded as")
    assert not list(t.spool.iterdir())


def test_relay_only_host_runs_no_alias_program(res, tmp_path):
    """SPEC LDA-03/PRIV-09: with alias_maps empty nothing local runs, even
    for a name the aliases file would send to a program."""
    marker = tmp_path / "touched"
    t, hub, _ = hub_instance(res, aliases=f"cmd: |/bin/touch {marker}\n", alias_maps="")
    t.send(make_message(subject="cmd"), rcpts=("cmd@tern.test",), source="127.0.0.5")
    assert hub.wait_for(b"Subject: cmd\r\n")[0].rcpt_tos == ["cmd@tern.test"]
    assert not marker.exists()
    assert not t.service_pids("local") or "relay=local" not in t.log()


def test_local_transport_error_refuses_local_mail(res):
    t = res.tern(local_transport="error:5.7.1 local delivery is disabled here")
    assert rcpt_reply(t, "root@tern.test", source="127.0.0.1") == (
        "550 5.7.1 <root@tern.test>... local delivery is disabled here"
    )


def test_missing_transport_map_is_a_temporary_failure_never_the_default_route(res):
    """A table that cannot answer defers: it is never read as "no entry",
    which would send the mail by the default route."""
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "mailertable", "far.test error:5.7.1 never\n", build=True)
    t.conf_edit(transport_maps=spec)
    t.start()
    (t.etc / "mailertable.lmdb").unlink()
    assert rcpt_reply(t, "u@far.test", source="127.0.0.1").startswith("451 4.3.0 ")
    # A process that opened the table before the unlink finds it gone at its
    # next stat; one started after it (a second smtpd) cannot open it at all.
    t.wait_log(r"warning: .*lmdb:.*mailertable: cannot (stat|open) .*mailertable.lmdb")
    assert not sink.snapshot()
