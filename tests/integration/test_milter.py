"""Milters (issue 12, SPEC MILT-01..10) end to end with real milters: a
python3-milter filter driven by a JSON script (milters/scripted.py, libmilter
underneath) on loopback, a tern that relays everything to a recording sink,
and raw SMTP clients.  Every callback the milter saw is read back from its
log, every reply is compared exactly, and the sink shows the message as the
milter changed it.

Most tests share one tern and one milter (the `site` fixture) and only
rewrite the milter's script: the filter reads it again at each new
connection, and each test finds its own milter connection by the SMTP
client's port (the connect callback's address)."""

import re
import smtplib
import ssl
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from milterutil import (callbacks, collapse, milter_tern, shared_dir,
                        start_milter)
from ternlib import BUILD, REPLY_250_QUEUED, SmtpConn, free_port, make_message, wait_until
from test_config import start_must_fail

SENDMAIL = BUILD / "tools" / "sendmail"

REJECT = ["550 5.7.1 Command rejected"]
TEMPFAIL = ["451 4.7.1 Service unavailable - try again later"]
CUSTOM = ["554 5.7.0 custom words from the milter"]
MULTI = ["550-5.7.1 first line", "550-5.7.1 second line", "550 5.7.1 third line"]

KIND_RULES = {
    "reject": ({"action": "reject"}, REJECT),
    "tempfail": ({"action": "tempfail"}, TEMPFAIL),
    "custom": ({"action": "reject", "reply": ["554", "5.7.0", "custom words from the milter"]},
               CUSTOM),
    "multiline": ({"action": "reject",
                   "reply": ["550", "5.7.1", "first line", "second line", "third line"]}, MULTI),
}

# ---------------------------------------------------------------- helpers


def transaction(c, sender, rcpts, content):
    """MAIL, each RCPT, DATA and the content, as far as tern lets it go; the
    replies: {"mail", "rcpt": [...], "data", "end"} (None: not reached)."""
    out = {"mail": c.cmd(f"MAIL FROM:<{sender}>"), "rcpt": [], "data": None, "end": None}
    if not out["mail"][0].startswith("250"):
        return out
    for r in rcpts:
        out["rcpt"].append(c.cmd(f"RCPT TO:<{r}>"))
    if not any(r[0].startswith("250") for r in out["rcpt"]):
        return out
    out["data"] = c.cmd("DATA")
    if not out["data"][0].startswith("354"):
        return out
    c.send(content + b".\r\n")
    out["end"] = c.read_reply()
    return out


def open_session(tern, port=None, helo="client.example"):
    c = tern.connect() if port is None else SmtpConn(tern.host, port)
    assert c.greeting()[0].startswith("220")
    assert c.cmd(f"EHLO {helo}")[-1].startswith("250 ")
    return c


def client_port(c) -> int:
    return c.sock.getsockname()[1]


def send_one(tern, milter, tag, rcpts=("rcpt@sink.test",), sender="sender@example.test",
             content=None, port=None):
    """One session with one transaction and QUIT; (replies, milter conn id)."""
    content = content or make_message(subject=tag, body=f"body of {tag}\r\n")
    with open_session(tern, port) as c:
        conn = milter.session_of_port(client_port(c)) if milter else None
        out = transaction(c, sender, rcpts, content)
        c.cmd("QUIT")
    return out, conn


def queued_id(reply):
    m = REPLY_250_QUEUED.match(reply[0])
    assert m, reply
    return m.group(1)


def no_message(sink, tag, settle=1.5):
    """Nothing with tag reached the sink (after settle seconds)."""
    time.sleep(settle)
    assert not sink.matching(tag.encode()), f"{tag} was delivered"


def header_list(content: bytes):
    """(name, unfolded value) of each header line of a message."""
    head = content.split(b"\r\n\r\n", 1)[0].decode()
    out = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            out.append((name, value.strip()))
    return out


def unfold(value: str) -> str:
    return " ".join(value.split())


# ---------------------------------------------------------------- the shared site


@pytest.fixture(scope="module")
def site(mres):
    """One tern relaying to a DSN sink through one scripted milter on unix:."""
    milter = start_milter(mres, {}, name="site")
    tern, sink = milter_tern(mres, milter.spec)
    return SimpleNamespace(tern=tern, sink=sink, milter=milter)


@pytest.fixture
def script(site):
    """site.milter's script for this test, reset to 'continue everywhere' afterwards."""
    yield site.milter.set_script
    site.milter.set_script({})


# ---------------------------------------------------------------- callbacks


def test_callback_order_for_two_recipients(site, script):
    script({})
    content = make_message(subject="order", body="line one\r\nline two\r\n",
                           headers={"X-Client": "yes"})
    out, conn = send_one(site.tern, site.milter, "order",
                         rcpts=("one@sink.test", "two@sink.test"), content=content)
    assert out["end"][0].startswith("250 "), out
    site.milter.wait_callback(conn, "close")
    seen = site.milter.session(conn)
    names = collapse(callbacks(seen))
    # the order line for the closing note
    print("callback order:", " ".join(names))
    nheaders = sum(1 for r in seen if r["cb"] == "header")
    assert names == ["connect", "hello", "envfrom", "envrcpt", "envrcpt", "data",
                     f"header*{nheaders}", "eoh"] + [n for n in names if n.startswith("body")] + \
        ["eom", "close"], names
    assert any(n.startswith("body") for n in names)
    assert seen[1]["args"] == ["client.example"]
    assert seen[2]["args"][0] == "<sender@example.test>"
    assert [r["args"][0] for r in seen if r["cb"] == "envrcpt"] == \
        ["<one@sink.test>", "<two@sink.test>"]
    # the milter saw the header section exactly as it was queued, tern's
    # Received: first, and the body as delivered
    (msg,) = site.sink.wait_for(b"Subject: order")
    sink_headers = [(n, unfold(v)) for n, v in header_list(msg.content)]
    milter_headers = [(r["args"][0], unfold(r["args"][1])) for r in seen if r["cb"] == "header"]
    assert milter_headers == sink_headers
    assert milter_headers[0][0] == "Received"
    body = "".join(r["args"][0] for r in seen if r["cb"] == "body")
    assert body.encode() == msg.body() == b"line one\r\nline two\r\n"
    assert sorted(msg.rcpt_tos) == ["one@sink.test", "two@sink.test"]


def test_second_transaction_starts_again_at_envfrom(site, script):
    script({})
    with open_session(site.tern) as c:
        conn = site.milter.session_of_port(client_port(c))
        first = transaction(c, "a@example.test", ["x@sink.test"], make_message(subject="tx1"))
        assert first["end"][0].startswith("250 ")
        assert c.cmd("MAIL FROM:<b@example.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<y@sink.test>")[0].startswith("250")
        assert c.cmd("RSET")[0].startswith("250")
        third = transaction(c, "c@example.test", ["z@sink.test"], make_message(subject="tx3"))
        assert third["end"][0].startswith("250 ")
        c.cmd("QUIT")
    site.milter.wait_callback(conn, "close")
    names = collapse(callbacks(site.milter.session(conn)))
    first_eom = names.index("eom")
    after = names[first_eom + 1:]
    assert after[:4] == ["envfrom", "envrcpt", "abort", "envfrom"], names
    assert after[4:6] == ["envrcpt", "data"], names
    assert after[-2:] == ["eom", "close"], names
    assert "connect" not in after and "hello" not in after
    froms = [r["args"][0] for r in site.milter.session(conn) if r["cb"] == "envfrom"]
    assert froms == ["<a@example.test>", "<b@example.test>", "<c@example.test>"]
    site.sink.wait_for(b"Subject: tx3")
    assert not site.sink.matching(b"Subject: tx2")


def test_unknown_command_reaches_the_milter(site, script):
    script({})
    with open_session(site.tern) as c:
        conn = site.milter.session_of_port(client_port(c))
        reply = c.cmd("XYZZY plugh")
        assert reply[0][:1] == "5", reply
        c.cmd("QUIT")
    (rec,) = site.milter.wait_callback(conn, "unknown")
    assert rec["args"][0].startswith("XYZZY")


# ---------------------------------------------------------------- replies


STAGE_STEP = {"envfrom": "mail", "envrcpt": "rcpt", "data": "data", "eom": "end"}


@pytest.mark.parametrize("kind", list(KIND_RULES))
@pytest.mark.parametrize("stage", list(STAGE_STEP))
def test_reply_kinds_at_each_stage(site, script, stage, kind):
    rule, expected = KIND_RULES[kind]
    script({"callbacks": {stage: rule}})
    tag = f"reply-{stage}-{kind}"
    out, _ = send_one(site.tern, site.milter, tag)
    got = out[STAGE_STEP[stage]]
    if stage == "envrcpt":
        got = got[0]
    assert got == expected, out
    for earlier in list(STAGE_STEP)[:list(STAGE_STEP).index(stage)]:
        step = out[STAGE_STEP[earlier]]
        step = step[0] if earlier == "envrcpt" else step
        assert step[0][:1] in ("2", "3"), out
    no_message(site.sink, tag)
    if stage == "envrcpt" and kind == "reject":
        site.tern.wait_log(r"(NOQUEUE|\w+): milter-reject: RCPT from \S*\[127\.0\.0\.1\]: "
                           r"550 5\.7\.1 Command rejected; from=<sender@example\.test> "
                           r"to=<rcpt@sink\.test>")
    if stage == "eom" and kind == "custom":
        site.tern.wait_log(r"\w+: milter-reject: END-OF-MESSAGE from \S*\[127\.0\.0\.1\]: "
                           r"554 5\.7\.0 custom words from the milter; from=<sender@example\.test>")


@pytest.mark.parametrize("stage", [
    "envfrom",
    "envrcpt", "data", "eom"])
def test_discard_accepts_and_drops_the_message(site, script, stage):
    script({"callbacks": {stage: {"action": "discard"}}})
    tag = f"discard-{stage}"
    out, _ = send_one(site.tern, site.milter, tag)
    assert out["mail"][0].startswith("250"), out
    assert out["rcpt"][0][0].startswith("250"), out
    assert out["data"][0].startswith("354"), out
    assert out["end"][0].startswith("250 "), out
    if stage == "eom":
        qid = queued_id(out["end"])
        site.tern.wait_log(rf"{qid}: milter-discard: END-OF-MESSAGE from \S*\[127\.0\.0\.1\]: "
                           rf"milter {re.escape(site.milter.spec)}: message discarded")
    script({})
    send_one(site.tern, site.milter, f"after-{tag}")  # a later message does arrive
    site.sink.wait_for(f"Subject: after-{tag}\r\n".encode())
    no_message(site.sink, f"Subject: {tag}\r\n", settle=0.5)


def test_accept_at_connect_skips_the_milter_for_the_session(site, script):
    script({"callbacks": {"connect": {"action": "accept"}}})
    with open_session(site.tern) as c:
        conn = site.milter.session_of_port(client_port(c))
        for tag in ("acc-conn-1", "acc-conn-2"):
            out = transaction(c, "s@example.test", ["r@sink.test"], make_message(subject=tag))
            assert out["end"][0].startswith("250 "), out
        c.cmd("QUIT")
    site.sink.wait_for(b"acc-conn-2")
    site.sink.wait_for(b"acc-conn-1")
    time.sleep(0.5)
    assert [n for n in callbacks(site.milter.session(conn)) if n != "close"] == ["connect"]


def test_accept_at_envfrom_skips_the_rest_of_the_transaction_only(site, script):
    script({"callbacks": {"envfrom": {"nth": 1, "action": "accept"}},
            "mods": [{"op": "addheader", "name": "X-Seen", "value": "yes"}]})
    with open_session(site.tern) as c:
        conn = site.milter.session_of_port(client_port(c))
        out = transaction(c, "s@example.test", ["r@sink.test"], make_message(subject="acc-mail-1"))
        assert out["end"][0].startswith("250 "), out
        out = transaction(c, "s@example.test", ["r@sink.test"], make_message(subject="acc-mail-2"))
        assert out["end"][0].startswith("250 "), out
        c.cmd("QUIT")
    (m1,) = site.sink.wait_for(b"acc-mail-1")
    (m2,) = site.sink.wait_for(b"acc-mail-2")
    assert m1.header("X-Seen") is None
    assert m2.header("X-Seen") == "yes"
    names = collapse(callbacks(site.milter.session(conn)))
    assert names[:4] == ["connect", "hello", "envfrom", "envfrom"], names


def test_accept_at_eom_delivers_with_the_changes(site, script):
    script({"callbacks": {"eom": {"action": "accept"}},
            "mods": [{"op": "addheader", "name": "X-Accepted", "value": "1"}]})
    out, _ = send_one(site.tern, site.milter, "acc-eom")
    queued_id(out["end"])
    (m,) = site.sink.wait_for(b"acc-eom")
    assert m.header("X-Accepted") == "1"


def test_per_recipient_reject(site, script):
    script({"callbacks": {"envrcpt": {"match": "bad@", "action": "reject",
                                      "reply": ["550", "5.7.1", "nope"]}}})
    out, conn = send_one(site.tern, site.milter, "per-rcpt",
                         rcpts=("bad@sink.test", "good@sink.test"))
    assert out["rcpt"][0] == ["550 5.7.1 nope"], out
    assert out["rcpt"][1][0].startswith("250"), out
    queued_id(out["end"])
    (m,) = site.sink.wait_for(b"per-rcpt")
    assert m.rcpt_tos == ["good@sink.test"]
    site.tern.wait_log(r"(NOQUEUE|\w+): milter-reject: RCPT from \S*\[127\.0\.0\.1\]: "
                       r"550 5\.7\.1 nope; from=<sender@example\.test> to=<bad@sink\.test> "
                       r"proto=ESMTP helo=<client\.example>")


# ---------------------------------------------------------------- modifications


def test_every_modification_reaches_the_sink(site, script):
    script({"mods": [
        {"op": "addheader", "name": "X-Test", "value": "1"},
        {"op": "chgheader", "name": "Subject", "index": 1, "value": None},
        {"op": "insheader", "index": 0, "name": "X-Top", "value": "first"},
        {"op": "chgheader", "name": "X-Change", "index": 1, "value": "changed"},
        {"op": "chgheader", "name": "X-Dup", "index": 2, "value": "second changed"},
        {"op": "addrcpt", "addr": "<c@sink.test>"},
        {"op": "delrcpt", "addr": "<b@sink.test>"},
        {"op": "chgfrom", "addr": "<new@example.test>"},
        {"op": "replacebody", "chunks": ["clea", "ned\r\n"]},
    ]})
    content = (b"From: <a@example.test>\r\nTo: <a@sink.test>\r\nSubject: mods\r\n"
               b"X-Change: old\r\nX-Dup: one\r\nX-Dup: two\r\nX-Tag: mods-all\r\n\r\n"
               b"the original body\r\n")
    out, _ = send_one(site.tern, site.milter, "mods", rcpts=("a@sink.test", "b@sink.test"),
                      content=content)
    queued_id(out["end"])
    (m,) = site.sink.wait_for(b"X-Tag: mods-all")
    assert m.mail_from == "new@example.test"
    assert sorted(m.rcpt_tos) == ["a@sink.test", "c@sink.test"]
    assert m.body() == b"cleaned\r\n"
    headers = header_list(m.content)
    names = [n for n, _ in headers]
    assert headers[0] == ("X-Top", "first"), headers
    assert names[1] == "Received"
    assert "Subject" not in names
    assert headers[-1] == ("X-Test", "1"), headers
    assert names.count("X-Test") == 1
    assert ("X-Change", "changed") in headers and ("X-Change", "old") not in headers
    assert [v for n, v in headers if n == "X-Dup"] == ["one", "second changed"]


def test_sender_change_carries_esmtp_arguments(site, script):
    script({"mods": [
        {"op": "chgfrom", "addr": "<other@example.test>", "args": "RET=HDRS ENVID=milter42"},
    ]})
    out, _ = send_one(site.tern, site.milter, "chgfrom-args")
    queued_id(out["end"])
    (m,) = site.sink.wait_for(b"chgfrom-args")
    assert m.mail_from == "other@example.test"
    options = [o.upper() for o in m.mail_options]
    assert "RET=HDRS" in options and "ENVID=MILTER42" in options, m.mail_options


def test_added_recipient_carries_esmtp_arguments(site, script):
    script({"mods": [{"op": "addrcpt_par", "addr": "<d@sink.test>", "args": "NOTIFY=NEVER"}]})
    out, _ = send_one(site.tern, site.milter, "addrcpt-args")
    queued_id(out["end"])
    (m,) = site.sink.wait_for(b"addrcpt-args")
    rcpts = dict(m.rcpts)
    assert set(rcpts) == {"rcpt@sink.test", "d@sink.test"}, m.rcpts
    assert "NOTIFY=NEVER" in rcpts["d@sink.test"], m.rcpts


def test_quarantine_puts_the_message_on_hold_with_the_reason(site, script):
    script({"mods": [{"op": "quarantine", "reason": "looks odd"}]})
    out, _ = send_one(site.tern, site.milter, "quarantined")
    qid = queued_id(out["end"])
    reason = f"milter {site.milter.spec}: looks odd"
    wait_until(lambda: (site.tern.queue / "hold" / qid).exists(), 10, f"hold/{qid}")
    site.tern.wait_log(rf"{qid}: milter-hold: END-OF-MESSAGE from \S*\[127\.0\.0\.1\]: "
                       rf"{re.escape(reason)}")
    listing = site.tern.tern("queue")
    assert qid in listing.stdout, listing
    assert reason in listing.stdout, listing.stdout
    no_message(site.sink, "quarantined")
    assert (site.tern.queue / "hold" / qid).exists()


# ---------------------------------------------------------------- macros


def test_macros_seen_by_the_milter(site, script):
    script({})
    content = make_message(subject="macros", headers={"Message-ID": "<mid.42@example.test>"})
    out, conn = send_one(site.tern, site.milter, "macros", content=content)
    qid = queued_id(out["end"])
    site.milter.wait_callback(conn, "close")
    by_cb = {}
    for r in site.milter.session(conn):
        by_cb.setdefault(r["cb"], r["macros"])
    connect = by_cb["connect"]
    assert connect.get("j") == "tern.test", connect
    assert connect.get("{daemon_name}") == "smtpd", connect
    assert connect.get("{client_addr}") == "127.0.0.1", connect
    assert connect.get("{if_addr}") == "127.0.0.1", connect
    assert connect.get("_"), connect
    assert by_cb["envfrom"].get("i") == qid, by_cb["envfrom"]
    assert by_cb["envfrom"].get("{mail_addr}") == "sender@example.test", by_cb["envfrom"]
    assert by_cb["envrcpt"].get("{rcpt_addr}") == "rcpt@sink.test", by_cb["envrcpt"]
    assert by_cb["eom"].get("i") == qid
    assert by_cb["eom"].get("{msg_id}", "").strip("<>") == "mid.42@example.test", by_cb["eom"]


@pytest.fixture(scope="module")
def auth_site(mres):
    """A tern with sasldb user alice (CRAM-MD5 without TLS) and STARTTLS."""
    from test_auth import make_certificate, make_sasl_dir  # the SASL fixtures of issue 9

    base = shared_dir(mres.base, "milter-auth")
    make_certificate(base)
    sasl = make_sasl_dir(base / "sasl", ["pwcheck_method: auxprop", "auxprop_plugin: sasldb",
                                         "mech_list: CRAM-MD5 PLAIN"], [("alice", "Alice-pw-1")])
    milter = start_milter(mres, {}, name="auth")
    tern, sink = milter_tern(mres, milter.spec, mynetworks="127.0.0.1/32",
                             smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl),
                             smtpd_tls_cert_file=str(base / "cert.pem"),
                             smtpd_tls_key_file=str(base / "key.pem"))
    return SimpleNamespace(tern=tern, sink=sink, milter=milter)


def test_auth_and_tls_macros(auth_site):
    s = auth_site
    with smtplib.SMTP(s.tern.host, s.tern.port, timeout=20) as c:
        port = c.sock.getsockname()[1]
        c.ehlo("client.example")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.starttls(context=ctx)
        c.ehlo("client.example")
        c.login("alice", "Alice-pw-1")
        c.sendmail("alice@example.test", ["far@sink.test"], make_message(subject="auth-macros"))
    conn = s.milter.session_of_port(port)
    s.milter.wait_callback(conn, "close")
    recs = s.milter.session(conn)
    hellos = [r for r in recs if r["cb"] == "hello"]
    assert hellos[-1]["macros"].get("{tls_version}", "").startswith("TLSv1"), hellos
    assert hellos[-1]["macros"].get("{cipher}"), hellos
    envfrom = next(r for r in recs if r["cb"] == "envfrom")
    assert envfrom["macros"].get("{auth_authen}") == "alice", envfrom
    assert envfrom["macros"].get("{auth_type}"), envfrom
    s.sink.wait_for(b"auth-macros")


# ---------------------------------------------------------------- sockets


@pytest.mark.parametrize("spelling", ["unix", "local", "inet", "inet_at"])
def test_socket_spellings(res, spelling):
    kind = "inet" if spelling.startswith("inet") else "unix"
    milter = start_milter(res, {"mods": [{"op": "addheader", "name": "X-Via",
                                          "value": spelling}]}, kind=kind)
    spec = getattr(milter, f"{spelling}_spec")
    tern, sink = milter_tern(res, spec)
    out, conn = send_one(tern, milter, f"spelling-{spelling}")
    queued_id(out["end"])
    (m,) = sink.wait_for(f"spelling-{spelling}".encode())
    assert m.header("X-Via") == spelling
    assert "eom" in callbacks(milter.session(conn))


# ---------------------------------------------------------------- two milters


def test_two_milters_in_order(res):
    first = start_milter(res, {"mods": [{"op": "addheader", "name": "X-First", "value": "1"}]},
                         name="first")
    second = start_milter(res, {"mods": [{"op": "addheader", "name": "X-Second", "value": "2"}]},
                          name="second", kind="inet")
    tern, sink = milter_tern(res, f"{first.spec}, {second.spec}")
    out, c1 = send_one(tern, first, "two-milters")
    queued_id(out["end"])
    (m,) = sink.wait_for(b"two-milters")
    names = [n for n, _ in header_list(m.content)]
    assert names[-2:] == ["X-First", "X-Second"], names
    c2 = second.session_of_port(first.session(c1)[0]["args"][2][1])
    second.wait_callback(c2, "eom")
    seen_by_second = [r["args"][0] for r in second.session(c2) if r["cb"] == "header"]
    assert "X-First" in seen_by_second
    seen_by_first = [r["args"][0] for r in first.session(c1) if r["cb"] == "header"]
    assert "X-Second" not in seen_by_first
    eom1 = first.wait_callback(c1, "eom")[0]["t"]
    eom2 = second.session(c2)
    assert next(r for r in eom2 if r["cb"] == "eom")["t"] > eom1
    env1 = next(r for r in first.session(c1) if r["cb"] == "envfrom")["t"]
    env2 = next(r for r in second.session(c2) if r["cb"] == "envfrom")["t"]
    assert env1 < env2


def test_first_milter_reject_hides_rcpt_from_the_second(res):
    first = start_milter(res, {"callbacks": {"envrcpt": {"match": "bad@", "action": "reject",
                                                         "reply": ["550", "5.7.1", "nope"]}}},
                         name="first")
    second = start_milter(res, {}, name="second")
    tern, sink = milter_tern(res, f"{first.spec} {second.spec}")
    out, c1 = send_one(tern, first, "two-reject", rcpts=("bad@sink.test", "good@sink.test"))
    assert out["rcpt"][0] == ["550 5.7.1 nope"]
    queued_id(out["end"])
    (m,) = sink.wait_for(b"two-reject")
    assert m.rcpt_tos == ["good@sink.test"]
    c2 = second.session_of_port(first.session(c1)[0]["args"][2][1])
    second.wait_callback(c2, "close")
    rcpts = [r["args"][0] for r in second.session(c2) if r["cb"] == "envrcpt"]
    assert rcpts == ["<good@sink.test>"]


# ---------------------------------------------------------------- failures


DOWN_CASES = {
    "default-tempfail": ("{spec}", {}, "tempfail"),
    "brace-accept": ("{{ {spec}, default_action = accept }}", {}, "accept"),
    "global-reject": ("{spec}", {"milter_default_action": "reject"}, "reject"),
    "brace-reject": ("{{ {spec}, default_action = reject }}", {}, "reject"),
}


@pytest.mark.parametrize("case", list(DOWN_CASES))
def test_milter_that_is_down(res, case):
    form, params, action = DOWN_CASES[case]
    d = shared_dir(res.base, "down")
    spec = f"unix:{d}/nobody.sock"
    tern, sink = milter_tern(res, form.format(spec=spec), **params)
    out, _ = send_one(tern, None, f"down-{case}")
    if action == "tempfail":
        assert out["mail"] == TEMPFAIL, out
    elif action == "reject":
        assert out["mail"] == REJECT, out
    else:
        queued_id(out["end"])
        sink.wait_for(f"down-{case}".encode())
    tern.wait_log(rf"warning: milter {re.escape(spec)}: connect to {re.escape(spec)}: ")
    if action != "accept":
        no_message(sink, f"down-{case}", settle=0.5)


def test_milter_down_with_quarantine_default_holds_the_message(res):
    d = shared_dir(res.base, "down")
    spec = f"unix:{d}/nobody.sock"
    tern, sink = milter_tern(res, f"{{ {spec}, default_action = quarantine }}")
    out, _ = send_one(tern, None, "down-quarantine")
    qid = queued_id(out["end"])
    wait_until(lambda: (tern.queue / "hold" / qid).exists(), 10, f"hold/{qid}")
    no_message(sink, "down-quarantine", settle=0.5)


def test_command_timeout(res):
    milter = start_milter(res, {"callbacks": {"envrcpt": {"sleep": 5}}})
    tern, sink = milter_tern(res, f"{{ {milter.spec}, command_timeout = 2s }}")
    with open_session(tern) as c:
        assert c.cmd("MAIL FROM:<s@example.test>")[0].startswith("250")
        t0 = time.monotonic()
        reply = c.cmd("RCPT TO:<r@sink.test>", timeout=20)
        took = time.monotonic() - t0
    assert reply == TEMPFAIL
    assert 1.5 <= took < 4.5, took
    tern.wait_log(rf"warning: milter {re.escape(milter.spec)}: timeout after 2s")


def test_content_timeout(res):
    milter = start_milter(res, {"callbacks": {"eom": {"sleep": 5}}})
    tern, sink = milter_tern(res, f"{{ {milter.spec}, content_timeout = 2s }}")
    with open_session(tern) as c:
        out = transaction(c, "s@example.test", ["r@sink.test"],
                          make_message(subject="content-timeout"))
        assert out["data"][0].startswith("354")
    # the end of DATA reply: read with its own timing
    assert out["end"] == TEMPFAIL, out
    tern.wait_log(rf"warning: milter {re.escape(milter.spec)}: timeout after 2s waiting for "
                  rf"the reply to end of message")
    no_message(sink, "content-timeout")


def test_content_timeout_takes_between_its_bounds(res):
    milter = start_milter(res, {"callbacks": {"eom": {"sleep": 6}}})
    tern, sink = milter_tern(res, f"{{ {milter.spec}, content_timeout = 2s }}")
    with open_session(tern) as c:
        assert c.cmd("MAIL FROM:<s@example.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<r@sink.test>")[0].startswith("250")
        assert c.cmd("DATA")[0].startswith("354")
        c.send(make_message(subject="ct-bounds") + b".\r\n")
        t0 = time.monotonic()
        reply = c.read_reply(timeout=20)
        took = time.monotonic() - t0
    assert reply == TEMPFAIL
    assert 1.5 <= took < 5, took


def test_progress_keeps_a_slow_milter_alive(res):
    milter = start_milter(res, {"mods": [
        {"op": "sleep", "seconds": 1.2}, {"op": "progress"},
        {"op": "sleep", "seconds": 1.2}, {"op": "progress"},
        {"op": "sleep", "seconds": 1.2},
        {"op": "addheader", "name": "X-Slow", "value": "done"}]})
    tern, sink = milter_tern(res, f"{{ {milter.spec}, content_timeout = 2s }}")
    out, _ = send_one(tern, milter, "progress")
    queued_id(out["end"])
    (m,) = sink.wait_for(b"progress")
    assert m.header("X-Slow") == "done"


@pytest.mark.parametrize("action", ["tempfail", "accept"])
@pytest.mark.parametrize("where", ["body", "eom"])
def test_milter_that_closes_mid_message(res, where, action):
    milter = start_milter(res, {"callbacks": {where: {"exit": True}}})
    tern, sink = milter_tern(res, f"{{ {milter.spec}, default_action = {action} }}")
    tag = f"closes-{where}-{action}"
    out, _ = send_one(tern, milter, tag)
    if action == "tempfail":
        assert out["end"] == TEMPFAIL, out
        no_message(sink, tag)
    else:
        queued_id(out["end"])
        sink.wait_for(tag.encode())
    tern.wait_log(rf"warning: milter {re.escape(milter.spec)}: ")
    assert not milter.alive()


def test_hung_milter_does_not_stall_another_session(res):
    """MILT-10: the milter sleeps 8 s at MAIL for client A; client B, on the
    same listener, the same smtpd process and the same milter, is served at
    once."""
    milter = start_milter(res, {"callbacks": {"envfrom": {"match": "slow@", "sleep": 8}}})
    tern, sink = milter_tern(res, milter.spec, smtpd_workers="1")
    slow = {}

    def client_a():
        with open_session(tern) as c:
            slow["mail"] = c.cmd("MAIL FROM:<slow@example.test>", timeout=30)
            slow["done"] = time.monotonic()
            c.cmd("QUIT")

    a = threading.Thread(target=client_a)
    a.start()
    conn_a = wait_until(lambda: next((r["conn"] for r in milter.records()
                                      if r.get("cb") == "envfrom" and "slow@" in r["args"][0]),
                                     None), 10, "client A's MAIL at the milter")
    t0 = time.monotonic()
    out, _ = send_one(tern, milter, "fast-b", sender="fast@example.test")
    took = time.monotonic() - t0
    queued_id(out["end"])
    assert took < 1.0, f"client B took {took:.2f}s while A's milter call hung"
    assert "done" not in slow, "client A was answered before B finished"
    a.join(30)
    assert slow["mail"][0].startswith("250"), slow
    assert conn_a


def test_per_listener_milters(res):
    milter = start_milter(res, {"mods": [{"op": "addheader", "name": "X-Sub", "value": "1"}]})
    sink = res.sink()
    sub = free_port()
    tern = res.tern(relayhost=sink.hostport, submission_listen=f"127.0.0.1:{sub}",
                    **{"submission.smtpd_milters": milter.spec,
                       "submission.smtpd_tls_security_level": "none",
                       "submission.smtpd_sasl_auth_enable": "no",
                       "submission.smtpd_auth_required": "no"})
    out, _ = send_one(tern, None, "via-smtpd")
    queued_id(out["end"])
    out, conn = send_one(tern, milter, "via-submission", port=sub)
    queued_id(out["end"])
    (plain,) = sink.wait_for(b"via-smtpd")
    (sub_msg,) = sink.wait_for(b"via-submission")
    assert plain.header("X-Sub") is None
    assert sub_msg.header("X-Sub") == "1"
    assert milter.connections() == [conn]
    assert milter.session(conn)[0]["macros"].get("{daemon_name}") == "submission"


def test_hung_milter_on_one_listener_leaves_the_other_served(res):
    milter = start_milter(res, {"callbacks": {"envfrom": {"sleep": 8}}})
    sink = res.sink()
    sub = free_port()
    tern = res.tern(relayhost=sink.hostport, smtpd_milters=milter.spec, smtpd_workers="1",
                    submission_listen=f"127.0.0.1:{sub}",
                    **{"submission.smtpd_milters": "",
                       "submission.smtpd_tls_security_level": "none",
                       "submission.smtpd_sasl_auth_enable": "no",
                       "submission.smtpd_auth_required": "no"})
    done = {}

    def client_a():
        with open_session(tern) as c:
            done["mail"] = c.cmd("MAIL FROM:<a@example.test>", timeout=30)

    a = threading.Thread(target=client_a)
    a.start()
    wait_until(lambda: any(r.get("cb") == "envfrom" for r in milter.records()), 10,
               "client A's MAIL at the milter")
    t0 = time.monotonic()
    out, _ = send_one(tern, None, "other-listener", port=sub)
    took = time.monotonic() - t0
    queued_id(out["end"])
    assert took < 1.0, took
    a.join(30)


# ---------------------------------------------------------------- non-SMTP mail


def sendmail(tern, *args, input=b""):
    return subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), *args], input=input,
                          capture_output=True, timeout=60)


def pickup_through(res, script, sender, rcpt, subject):
    """A tern with non_smtpd_milters = a scripted milter; one message
    through the sendmail command.  (milter, sink)."""
    milter = start_milter(res, script)
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport, non_smtpd_milters=milter.spec)
    r = sendmail(tern, "-f", sender, rcpt, input=f"Subject: {subject}\n\nhello\n".encode())
    assert r.returncode == 0, r.stderr
    return milter, sink


def test_non_smtpd_milters_via_the_sendmail_command(res):
    milter, sink = pickup_through(
        res, {"mods": [{"op": "addheader", "name": "X-Pickup", "value": "1"}]},
        "root@tern.test", "u1@remote.test", "pickup-milter")
    (m,) = sink.wait_for(b"pickup-milter")
    assert m.header("X-Pickup") == "1"
    assert m.rcpt_tos == ["u1@remote.test"]
    conn = milter.connections()[-1]
    milter.wait_callback(conn, "eom")
    recs = milter.session(conn)
    names = collapse(callbacks(recs))
    assert names[:5] == ["connect", "hello", "envfrom", "envrcpt", "data"], names
    assert recs[0]["args"][0] == "localhost"
    assert recs[0]["args"][2][0] == "127.0.0.1"
    assert recs[1]["args"] == ["localhost"]
    assert recs[2]["args"][0] == "<root@tern.test>"
    assert recs[3]["args"][0] == "<u1@remote.test>"


def test_non_smtpd_milter_reject_bounces_to_the_sender(res):
    _, sink = pickup_through(
        res, {"callbacks": {"envrcpt": {"action": "reject", "reply": ["550", "5.7.1", "nope"]}}},
        "someone@remote.test", "u2@remote.test", "pickup-reject")
    (bounce,) = sink.wait_for(b"nope")
    assert bounce.rcpt_tos == ["someone@remote.test"]
    assert bounce.mail_from == ""
    assert b"<u2@remote.test>: nope" in bounce.content
    assert b"Status: 5.7.1" in bounce.content
    assert not [m for m in sink.snapshot() if "u2@remote.test" in m.rcpt_tos]


# ---------------------------------------------------------------- protocol flags


def test_noreply_and_skipped_steps_are_honoured(res):
    milter = start_milter(res, {"noreply": ["connect", "hello", "header", "eoh"],
                                "nocallback": ["body", "data"],
                                "mods": [{"op": "addheader", "name": "X-Flags", "value": "ok"}]})
    tern, sink = milter_tern(res, milter.spec)
    out, conn = send_one(tern, milter, "flags")
    queued_id(out["end"])
    (m,) = sink.wait_for(b"flags")
    assert m.header("X-Flags") == "ok"
    milter.wait_callback(conn, "close")
    names = collapse(callbacks(milter.session(conn)))
    assert "body" not in names and "data" not in names, names
    assert names[:4] == ["connect", "hello", "envfrom", "envrcpt"], names
    assert names[-2:] == ["eom", "close"]
    neg = next(r for r in milter.records() if r.get("cb") == "negotiate" and r["conn"] == conn)
    import Milter  # noqa: F401 (python3-milter: the SMFIP_ bits)
    agreed = neg["agreed"][1]
    assert agreed & Milter.P_NOBODY and agreed & Milter.P_NR_HDR, neg


def test_body_skip_stops_the_body(res):
    milter = start_milter(res, {"callbacks": {"body": {"action": "skip"}},
                                "mods": [{"op": "addheader", "name": "X-Skip", "value": "1"}]})
    tern, sink = milter_tern(res, milter.spec)
    body = ("x" * 70 + "\r\n") * 3000  # about 216 KB: several body chunks
    out, conn = send_one(tern, milter, "skip",
                         content=make_message(subject="skip", body=body))
    queued_id(out["end"])
    (m,) = sink.wait_for(b"Subject: skip")
    assert m.header("X-Skip") == "1"
    assert m.body() == body.encode()
    milter.wait_callback(conn, "eom")
    assert callbacks(milter.session(conn)).count("body") == 1


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("item", [
    "{ unix:/run/x.sock, bogus = 1 }",
    "{ unix:/run/x.sock, default_action = maybe }",
    "tcp:127.0.0.1:99",
    "inet:127.0.0.1",
    "{ unix:/run/x.sock",
    "{ unix:/run/x.sock, command_timeout = 5x }",
], ids=["unknown-setting", "bad-action", "bad-type", "no-port", "unclosed", "bad-time"])
def test_bad_milter_item_refuses_to_start(res, item):
    tern = res.tern(start=False)
    line = f"smtpd_milters = {item}"
    tern.write_conf(extra_lines=[line])
    lineno = tern.conf_path.read_text().splitlines().index(line) + 1
    where = f"{tern.conf_path}:{lineno}"
    check = tern.tern("check")
    assert check.returncode != 0, check
    assert where in check.stdout + check.stderr, check
    rc, output = start_must_fail(tern)
    assert rc != 0 and where in output, output


# ---------------------------------------------------------------- libmilter itself

TEST_FILTER = BUILD / "tests" / "milter" / "test_filter"


def test_libmilter_filter_sees_every_callback_without_protocol_errors(res):
    """tests/milter/test_filter.c, built against sendmail's libmilter, logs
    every callback: a 2-recipient message goes through it in order, and
    libmilter complains about nothing."""
    assert TEST_FILTER.exists(), f"{TEST_FILTER} not built (install libmilter-dev, reconfigure)"
    d = shared_dir(res.base, "libmilter")
    sock, log, err = d / "sock", d / "filter.log", d / "stderr.log"
    with open(err, "ab") as errf:
        proc = subprocess.Popen([str(TEST_FILTER), f"unix:{sock}", str(log)],
                                stdout=errf, stderr=errf, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: sock.exists() or proc.poll() is not None, 10, "test_filter's socket")
        assert proc.poll() is None, err.read_text()
        tern, sink = milter_tern(res, f"unix:{sock}")
        out, _ = send_one(tern, None, "libmilter", rcpts=("one@sink.test", "two@sink.test"))
        qid = queued_id(out["end"])
        (m,) = sink.wait_for(b"libmilter")
        assert m.header("X-Libmilter") == "yes"
        wait_until(lambda: log.read_text().count(" close\n") >= 2, 10, "the filter's close")
    finally:
        from ternlib import terminate
        terminate(proc)
    # "N callback args": N numbers the filter's connections; tern's own
    # readiness probe (connect, QUIT) is one of them
    conns = {}
    for line in log.read_text().splitlines():
        n, _, rest = line.partition(" ")
        conns.setdefault(n, []).append(rest)
    (lines,) = [v for v in conns.values() if "helo client.example" in v]
    names = [ln.split(" ")[0] for ln in lines]
    print("libmilter filter saw:", " ".join(collapse(names)))
    assert collapse(names) == (["negotiate", "connect", "helo", "envfrom", "envrcpt", "envrcpt",
                                "data", f"header*{names.count('header')}", "eoh"]
                               + [n for n in collapse(names) if n.startswith("body")]
                               + ["eom", "close"]), lines
    assert lines[3] == f"envfrom <sender@example.test> i={qid}", lines
    assert lines[4:6] == ["envrcpt <one@sink.test>", "envrcpt <two@sink.test>"]
    assert any(ln.startswith("header Received: from client.example") for ln in lines), lines
    # libmilter's own complaints ("mi_engine: mi_rd_cmd error", "unknown
    # command", "wrong len") go to syslog; test_filter turns them into
    # "libmilter: ..." lines on its stderr
    stderr = err.read_text(errors="replace")
    assert "libmilter:" not in stderr, stderr
