"""tern trace, sendmail -bt and sendmail -bv: every decision explained from
the same code the services run (SPEC CLI-11, DIAG-05; issue 8).  Nothing is
running: trace reads the config and the tables."""

import json
import subprocess

from ternlib import BUILD, tool_env
from test_routing import write_map

VIRTUAL = """\
joe@virt.test      joe@sink.test
@virt2.test        catchall@sink.test
bad@virt.test      error:nouser No such user here
"""

MAILERTABLE = """\
sink.test          smtp:[127.0.0.20]:2525
.example.test      esmtp:[127.0.0.21]:2525
bad.test           error:5.7.1:550 no mail here
"""


def trace_instance(res, **params):
    t = res.tern(start=False, mynetworks="127.0.0.1/32", relayhost="[127.0.0.30]:2525", **params)
    virt = write_map(t, "virtusertable", VIRTUAL, build=True)
    mt = write_map(t, "mailertable", MAILERTABLE, build=True)
    t.aliases.write_text("staff: root, bob@far.test\n")
    t.conf_edit(virtual_alias_maps=virt, transport_maps=mt)
    return t


def trace(t, *args):
    return t.tern("trace", *args)


def test_trace_virtusertable_catch_all(res):
    t = trace_instance(res)
    r = trace(t, "--no-dns", "anyone@virt2.test")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = out.splitlines()
    assert lines[0] == "recipient <anyone@virt2.test>"
    virt = f"lmdb:{t.etc}/virtusertable"
    # the keys in order, and which one matched
    tried = [l for l in lines if l.strip().startswith("[virtual_alias_maps] " + virt)]
    assert tried[0].endswith("anyone@virt2.test -> not found")
    assert tried[1].endswith("@virt2.test -> found: catchall@sink.test")
    assert "[virtual_alias_maps] anyone@virt2.test -> catchall@sink.test" in out
    assert (
        "[route] catchall@sink.test: class default, transport smtp (smtp), "
        "nexthop [127.0.0.20]:2525, by transport_maps" in out
    )
    assert lines[-1] == (
        "  => catchall@sink.test: mailer smtp, host [127.0.0.20]:2525, user catchall@sink.test"
    )


def test_trace_mailertable_route_shows_the_keys_tried(res):
    t = trace_instance(res)
    r = trace(t, "--no-dns", "u@a.b.example.test")
    assert r.returncode == 0, r.stderr
    mt = f"lmdb:{t.etc}/mailertable"
    keys = [
        l.split(f"{mt}: ")[1]
        for l in r.stdout.splitlines()
        if l.strip().startswith(f"[transport_maps] {mt}")
    ]
    assert keys == [
        "u@a.b.example.test -> not found",
        "a.b.example.test -> not found",
        ".b.example.test -> not found",
        ".example.test -> found: esmtp:[127.0.0.21]:2525",
    ]
    assert r.stdout.splitlines()[-1].endswith(
        "u@a.b.example.test: mailer esmtp, host [127.0.0.21]:2525, user u@a.b.example.test"
    )


def test_trace_client_verdicts_and_exit_codes(res):
    t = trace_instance(res)
    r = trace(t, "--no-dns", "--client", "127.0.0.5", "x@far.test")
    assert r.returncode == 1
    assert "RCPT TO:<x@far.test> -> 554 5.7.1 <x@far.test>: Relay access denied" in r.stdout
    r = trace(t, "--no-dns", "--client", "127.0.0.1", "x@far.test")
    assert r.returncode == 0
    assert "client unknown[127.0.0.1] (mynetworks)" in r.stdout
    assert "permit_mynetworks: permit" in r.stdout
    assert "RCPT TO:<x@far.test> -> 250 2.1.5 accepted" in r.stdout
    r = trace(t, "--no-dns", "--client", "127.0.0.5", "bad@virt.test")
    assert r.returncode == 1
    assert "550 5.0.0 <bad@virt.test>... No such user here" in r.stdout
    r = trace(t, "--no-dns", "u@bad.test")
    assert r.returncode == 1
    assert "=> u@bad.test: 550 5.7.1 no mail here" in r.stdout


def test_trace_local_alias_expansion_without_delivering(res):
    t = trace_instance(res)
    r = trace(t, "--no-dns", "staff@tern.test")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"[local] texthash:{t.aliases}: staff -> found: root, bob@far.test" in out
    assert "=> root@tern.test: mailer local, user root" in out
    assert "staff@tern.test is forwarded to bob@far.test (queued again)" in out
    assert "=> bob@far.test: mailer smtp, host [127.0.0.30]:2525, user bob@far.test" in out
    assert not (t.spool / "root").exists()


def test_trace_sender_rewriting(res):
    t = trace_instance(res, masquerade_domains="example.test", masquerade_exceptions="root")
    r = trace(t, "--no-dns", "--from", "eve@host.example.test", "u@sink.test")
    assert "[masquerade] eve@host.example.test -> eve@example.test (example.test)" in r.stdout
    assert "[sender] <eve@host.example.test> is sent as <eve@example.test>" in r.stdout
    r = trace(t, "--no-dns", "--from", "root@host.example.test", "u@sink.test")
    assert "[sender] <root@host.example.test> is sent as <root@host.example.test>" in r.stdout


def test_trace_json_lines(res):
    t = trace_instance(res)
    r = trace(t, "--no-dns", "-j", "joe@virt.test")
    assert r.returncode == 0, r.stderr
    events = [json.loads(l) for l in r.stdout.splitlines()]
    assert all(e["rcpt"] == "joe@virt.test" for e in events)
    found = [e for e in events if e.get("result") == "found"]
    assert found[0]["step"] == "virtual_alias_maps" and found[0]["value"] == "joe@sink.test"
    final = events[-1]
    assert final["step"] == "final"
    assert final["mailer"] == "smtp" and final["host"] == "[127.0.0.20]:2525"


def test_trace_live_mx_list(res):
    dns = res.dnsmasq(
        [
            "--mx-host=far.test,mx2.far.test,20",
            "--mx-host=far.test,mx1.far.test,10",
            "--host-record=mx1.far.test,127.0.0.31",
            "--host-record=mx2.far.test,127.0.0.32",
        ],
        probe="far.test",
    )
    t = res.tern(start=False, dns_servers=f"127.0.0.1:{dns.port}")
    r = trace(t, "u@far.test")
    assert r.returncode == 0, r.stderr
    assert "[dns] far.test: MX lookup" in r.stdout
    assert "try 1: preference 10, mx1.far.test[127.0.0.31]:25" in r.stdout
    assert "try 2: preference 20, mx2.far.test[127.0.0.32]:25" in r.stdout


def sendmail(t, *args, stdin=b""):
    return subprocess.run(
        [str(BUILD / "tools" / "sendmail"), "-C", str(t.conf_path), *args],
        input=stdin,
        capture_output=True,
        env=tool_env(),
    )


def test_sendmail_bt_address_test_mode(res):
    t = trace_instance(res)
    r = sendmail(
        t,
        "-bt",
        stdin=b"/parse root@tern.test\n/map mailertable sink.test\n/map virtuser nosuch\n"
        b"$=w\n3,0 joe@virt.test\n",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("ADDRESS TEST MODE (ruleset 3 NOT automatically invoked)\n")
    assert "mailer local, user root" in out
    assert "map_lookup: mailertable (sink.test) returns smtp:[127.0.0.20]:2525 (0)" in out
    assert "map_lookup: virtuser (nosuch) no match (68)" in out
    assert "> tern.test\nlocalhost\n" in out
    assert "mailer smtp, host [127.0.0.20]:2525, user joe@sink.test" in out


def test_sendmail_d01_bt_prints_the_version_and_exits(res):
    t = trace_instance(res)
    r = sendmail(t, "-d0.1", "-bt")
    assert r.returncode == 0
    assert b"Version " in r.stdout


def test_sendmail_bv_follows_virtual_aliases(res):
    """SPEC VDOM-02's -bv test."""
    t = trace_instance(res)
    r = sendmail(t, "-bv", "joe@virt.test", "any@virt2.test", "root", "bad@virt.test")
    out = r.stdout.decode()
    assert "joe@sink.test... deliverable: mailer smtp, host [127.0.0.20]:2525, " \
           "user joe@sink.test" in out
    assert "catchall@sink.test... deliverable: mailer smtp" in out
    assert "root... deliverable: mailer local, user root" in out
    assert "bad@virt.test... 550 5.0.0 No such user here" in out
    assert r.returncode == 67


def test_trace_generic_maps_on_the_way_out(res):
    t = trace_instance(res)
    spec = write_map(t, "genericstable", "@internal.test @example.test\n")
    t.conf_edit(smtp_generic_maps=spec)
    r = trace(t, "--no-dns", "--from", "eve@internal.test", "u@far.test")
    assert "[smtp_generic_maps] eve@internal.test -> eve@example.test" in r.stdout
    assert "[smtp] MAIL FROM:<eve@example.test> (smtp_generic_maps)" in r.stdout


def test_trace_domaintable_hub_and_lmtp_routes(res):
    t = trace_instance(res, local_transport="smtp:[127.0.0.11]:2525", relay_domains="example.test")
    dt = write_map(t, "domaintable", "@parallel.test @example.test\n")
    mt = write_map(t, "lmtptable", "box.test lmtp:unix:/run/dovecot/lmtp\n")
    t.conf_edit(canonical_maps=dt, transport_maps=mt)
    r = trace(t, "hal@parallel.test", "root@tern.test", "staff@tern.test", "u@box.test")
    out = r.stdout
    assert "[canonical_maps] hal@parallel.test -> hal@example.test" in out
    assert "=> hal@parallel.test: mailer relay, host [127.0.0.30]:2525, user hal@example.test" in out
    # the mail hub: no alias, so the hub gets root; an alias is expanded first
    assert "=> root@tern.test: mailer smtp, host [127.0.0.11]:2525, user root@tern.test" in out
    assert "by alias_maps (aliases first, then local_transport)" in out
    assert "=> root@tern.test: mailer smtp, host [127.0.0.11]:2525" in out.split(
        "recipient <staff@tern.test>")[1]
    assert "[dns] /run/dovecot/lmtp: a UNIX socket, no DNS" in out
    assert "=> u@box.test: mailer lmtp, host unix:/run/dovecot/lmtp, user u@box.test" in out
