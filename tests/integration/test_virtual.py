"""virtual_alias_maps: sendmail's virtusertable (SPEC VDOM-02..06), on real
instances: RCPT verdicts from outsiders, what the next hop receives, and a
table rebuilt while tern runs."""

from ternlib import make_message
from test_routing import rcpt_reply, write_map

# the seed's forms (003:3237-3249, 000:75-82) and sendmail's error: entries
VIRTUSERTABLE = """\
joe@virt.test       joe@sink.test
info@virt.test      root
bad@virt.test       error:nouser No such user here
old@virt.test       error:5.7.1:550 Go away
team@virt.test      ann@sink.test, bob@sink.test
chain@virt.test     next@virt.test
next@virt.test      last@sink.test
@virt2.test         catchall@sink.test
vip@virt2.test      vip@sink.test
@pct.test           %1@sink.test
@det.test           %1%3@sink.test
"""


def virtual_instance(res, **params):
    """A closed relay (only 127.0.0.1 may relay) with the table above."""
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32", **params)
    spec = write_map(t, "virtusertable", VIRTUSERTABLE, build=True)
    t.conf_edit(virtual_alias_maps=spec)
    t.start()
    return t, sink


def test_virtual_domains_accept_their_users_and_refuse_the_rest(res):
    t, _ = virtual_instance(res)
    assert rcpt_reply(t, "joe@virt.test").startswith("250 ")
    assert rcpt_reply(t, "anyone@virt2.test").startswith("250 "), "catch-all"
    assert rcpt_reply(t, "bad@virt.test") == "550 5.0.0 <bad@virt.test>... No such user here"
    assert rcpt_reply(t, "old@virt.test") == "550 5.7.1 <old@virt.test>... Go away"
    assert rcpt_reply(t, "nobody@virt.test") == (
        "550 5.1.1 <nobody@virt.test>: Recipient address rejected: User unknown in virtual "
        "alias table"
    )
    # the virtual domains are not an open relay for other domains
    assert rcpt_reply(t, "x@far.test").startswith("554 5.7.1 ")
    assert rcpt_reply(t, "x@sink.test").startswith("554 5.7.1 ")
    assert not t.queue_files()


def test_virtual_changes_only_the_envelope_recipient(res):
    t, sink = virtual_instance(res)
    msg = make_message(subject="vdom03", to="joe@virt.test")
    qid = t.send(msg, rcpts=("joe@virt.test",), source="127.0.0.5")
    got = sink.wait_for(b"Subject: vdom03\r\n")[0]
    assert got.rcpt_tos == ["joe@sink.test"]
    assert got.header("To") == "<joe@virt.test>", "headers are left alone"
    received = got.headers().get_all("Received")[0]
    assert "for <joe@virt.test>" in received
    t.wait_log(rf"{qid}: to=<joe@sink.test>,.*status=sent")


def test_catch_all_specific_entry_wins_and_percent_forms(res):
    t, sink = virtual_instance(res)
    t.send(make_message(subject="c1"), rcpts=("someone@virt2.test",), source="127.0.0.5")
    t.send(make_message(subject="c2"), rcpts=("vip@virt2.test",), source="127.0.0.5")
    t.send(make_message(subject="c3"), rcpts=("fred@pct.test",), source="127.0.0.5")
    t.send(make_message(subject="c4"), rcpts=("fred+news@det.test",), source="127.0.0.5")
    assert sink.wait_for(b"Subject: c1\r\n")[0].rcpt_tos == ["catchall@sink.test"]
    assert sink.wait_for(b"Subject: c2\r\n")[0].rcpt_tos == ["vip@sink.test"]
    assert sink.wait_for(b"Subject: c3\r\n")[0].rcpt_tos == ["fred@sink.test"]
    assert sink.wait_for(b"Subject: c4\r\n")[0].rcpt_tos == ["fred+news@sink.test"]


def test_several_targets_and_chains(res):
    t, sink = virtual_instance(res)
    t.send(make_message(subject="team"), rcpts=("team@virt.test",), source="127.0.0.5")
    t.send(make_message(subject="chain"), rcpts=("chain@virt.test",), source="127.0.0.5")
    assert sorted(sink.wait_for(b"Subject: team\r\n")[0].rcpt_tos) == ["ann@sink.test", "bob@sink.test"]
    assert sink.wait_for(b"Subject: chain\r\n")[0].rcpt_tos == ["last@sink.test"]


def test_virtual_entry_to_a_local_user_is_delivered_locally(res):
    t, sink = virtual_instance(res)
    qid = t.send(make_message(subject="info"), rcpts=("info@virt.test",), source="127.0.0.5")
    t.wait_log(rf"{qid}: to=<root@tern.test>, relay=local.*status=sent")
    assert b"Subject: info" in (t.spool / "root").read_bytes()
    assert not sink.matching(b"Subject: info")


def test_virtual_loop_is_a_temporary_failure(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32")
    spec = write_map(t, "virtual", "a@loop.test b@loop.test\nb@loop.test a@loop.test\n")
    t.conf_edit(virtual_alias_maps=spec)
    t.start()
    assert rcpt_reply(t, "a@loop.test") == "451 4.4.6 <a@loop.test>... virtual alias loop"


def test_self_reference_keeps_the_address(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport)
    spec = write_map(t, "virtual", "me@self.test me@self.test, copy@sink.test\n")
    t.conf_edit(virtual_alias_maps=spec, relay_domains="self.test")
    t.start()
    t.send(make_message(subject="self"), rcpts=("me@self.test",))
    assert sorted(sink.wait_for(b"Subject: self\r\n")[0].rcpt_tos) == ["copy@sink.test", "me@self.test"]


def test_virtusertable_first_then_mailertable(res):
    """SPEC VDOM-05: only sales@ is aliased; the rest of the domain follows
    the mailertable route instead of being refused."""
    lists, exchange = res.sink(), res.sink()
    t = res.tern(start=False, relayhost=lists.hostport, mynetworks="127.0.0.1/32")
    virt = write_map(t, "virtusertable", "sales@example.test sales@lists.test\n", build=True)
    mt = write_map(t, "mailertable", f"example.test smtp:{exchange.hostport}\n", build=True)
    t.conf_edit(virtual_alias_maps=virt, transport_maps=mt)
    t.start()
    t.send(make_message(subject="sales"), rcpts=("sales@example.test",), source="127.0.0.5")
    t.send(make_message(subject="other"), rcpts=("other@example.test",), source="127.0.0.5")
    assert lists.wait_for(b"Subject: sales\r\n")[0].rcpt_tos == ["sales@lists.test"]
    assert exchange.wait_for(b"Subject: other\r\n")[0].rcpt_tos == ["other@example.test"]


def test_virtual_table_rebuilt_while_running(res):
    t, sink = virtual_instance(res)
    assert rcpt_reply(t, "new@virt3.test").startswith("554 5.7.1 "), "not a domain of ours yet"
    write_map(t, "virtusertable", VIRTUSERTABLE + "new@virt3.test new@sink.test\n", build=True)
    assert rcpt_reply(t, "new@virt3.test").startswith("250 ")
    t.send(make_message(subject="rebuilt"), rcpts=("new@virt3.test",), source="127.0.0.5")
    assert sink.wait_for(b"Subject: rebuilt\r\n")[0].rcpt_tos == ["new@sink.test"]


def test_virtual_domain_list_file_decides_and_reload_applies_it(res):
    """SPEC VDOM-04: VIRTUSER_DOMAIN_FILE as virtual_alias_domains."""
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32")
    spec = write_map(t, "virtusertable", "@virt.test box@sink.test\n", build=True)
    domains = t.etc / "virtuserdomains"
    domains.write_text("# virtual domains\nvirt.test\n")
    t.conf_edit(virtual_alias_maps=spec, virtual_alias_domains=str(domains))
    t.start()
    assert rcpt_reply(t, "u@virt.test").startswith("250 ")
    domains.write_text("# none left\n")
    assert t.tern("reload").returncode == 0
    from ternlib import wait_until

    wait_until(
        lambda: rcpt_reply(t, "u@virt.test").startswith("554 5.7.1 "),
        15,
        "virt.test to stop being a domain of ours after reload",
    )


def test_optional_missing_domain_file_is_no_error(res):
    t = res.tern(start=False, mynetworks="127.0.0.1/32")
    t.conf_edit(virtual_alias_domains=f"optional:{t.etc}/virtuserdomains")
    t.start()
    assert rcpt_reply(t, "u@virt.test").startswith("554 5.7.1 ")
