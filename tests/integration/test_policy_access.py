"""The sendmail access map in tern's policy engine (issue 10; SPEC ACC-01..11,
RELAY-05, RELAY-10, SPAM-05's GreetPause override): access_maps =
hash:.../access with sendmail's tags (Connect:, From:, To:, Spam:,
GreetPause:, untagged) and actions (OK, RELAY, REJECT, DISCARD, ERROR:,
QUARANTINE:), delay_checks (smtpd_delay_reject), friend/hater
(access_spam_mode), blocklist_recipients, map failures, rebuilds while
running, and the reject log lines.

Clients: 127.0.0.5 is host.dialup.test (PTR and A), 127.0.0.6 has the PTR
liar.test without an A record (see policyutil).  Replies are sendmail's
texts: `CODE X.Y.Z ECHO... Text` where ECHO is the path as the client
wrote it.
"""

import os
import re
import time

import pytest

from policyutil import (
    LIAR,
    OUTSIDER,
    build_access,
    envelope,
    held_ids,
    no_rcpt_accepted,
    open_session,
    policy_tern,
    rcpt_reply,
    send_message,
    start_policy_dns,
    timed,
)
from ternlib import make_message, wait_until

DENIED = "550 5.7.1 {}... Access denied"
RCPT_OK = "250 2.1.5 {}... Recipient ok"
SENDER_OK = "250 2.1.0 {}... Sender ok"
RELAY_DENIED = "554 5.7.1 <{}>: Relay access denied"
TEMPFAIL = "451 4.3.0 Temporary system failure. Please try again later."

FOO = "From:foo.biz REJECT\nSpam:abuse@tern.test FRIEND\n"


# ---------------------------------------------------------------- delay_checks, friend and hater


def test_delay_checks_sender_refused_at_rcpt_friend_gets_through(res):
    p = policy_tern(res, access=FOO)
    t = p.tern
    m, (hal, abuse) = envelope(t, "spam@foo.biz", ["hal@tern.test", "abuse@tern.test"])
    assert m == [SENDER_OK.format("<spam@foo.biz>")]
    assert hal == [DENIED.format("<hal@tern.test>")]
    assert abuse == [RCPT_OK.format("<abuse@tern.test>")]
    # another sender is not touched
    assert rcpt_reply(t, "joe@good.test", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")
    # the FRIEND recipient really gets the message
    send_message(t, "spam@foo.biz", ["abuse@tern.test"], make_message(headers={"X-T": "friend"}))
    (msg,) = p.box.wait_for(b"X-T: friend")
    assert msg.rcpt_tos == ["abuse@box.test"]
    assert msg.mail_from == "spam@foo.biz"


def test_hater_mode_filters_only_hater_recipients(res):
    p = policy_tern(
        res,
        access="From:foo.biz REJECT\nSpam:abuse@tern.test HATER\n",
        access_spam_mode="hater",
    )
    m, (hal, abuse) = envelope(p.tern, "spam@foo.biz", ["hal@tern.test", "abuse@tern.test"])
    assert m == [SENDER_OK.format("<spam@foo.biz>")]
    assert hal == [RCPT_OK.format("<hal@tern.test>")]
    assert abuse == [DENIED.format("<abuse@tern.test>")]


def test_friend_mode_is_the_default_and_ignores_hater_entries(res):
    """In friend mode (the default) a HATER entry changes nothing: every
    recipient is filtered except FRIENDs."""
    p = policy_tern(res, access="From:foo.biz REJECT\nSpam:abuse@tern.test HATER\n")
    m, (hal, abuse) = envelope(p.tern, "spam@foo.biz", ["hal@tern.test", "abuse@tern.test"])
    assert hal == [DENIED.format("<hal@tern.test>")]
    assert abuse == [DENIED.format("<abuse@tern.test>")]


@pytest.mark.parametrize("source", ["127.0.0.1", OUTSIDER], ids=["localhost-as-in-seed", "outsider"])
def test_seed_003_transcript(res, source):
    """Seed 003 lines 3050-3082 with the seed's own words (no angle
    brackets, lower-case commands, the seed's access file).  The seed
    telnets to localhost; the access checks apply to it too."""
    p = policy_tern(res, access="Spam:abuse@sysiphus.com FRIEND\nFrom:foo.biz REJECT\n")
    t = p.tern
    with t.connect(source=source) as c:
        assert c.greeting()[0].startswith("220 ")
        r = c.cmd("helo localhost.localdomain")
        assert r[0].startswith("250 tern.test Hello "), r
        assert c.cmd("mail from: spam@foo.biz") == ["250 2.1.0 spam@foo.biz... Sender ok"]
        assert c.cmd("rcpt to: hal@sysiphus.com") == ["550 5.7.1 hal@sysiphus.com... Access denied"]
        assert c.cmd("quit")[0].startswith("221 ")
    with t.connect(source=source) as c:
        c.greeting()
        c.cmd("helo localhost.localdomain")
        assert c.cmd("mail from: spam@foo.biz") == ["250 2.1.0 spam@foo.biz... Sender ok"]
        assert c.cmd("rcpt to: abuse@sysiphus.com") == [
            "250 2.1.5 abuse@sysiphus.com... Recipient ok"
        ]
        assert c.cmd("quit")[0].startswith("221 ")


def test_delay_off_refuses_at_mail(res):
    p = policy_tern(res, access=FOO, smtpd_delay_reject="no")
    m, rs = envelope(p.tern, "spam@foo.biz", ["abuse@tern.test"])
    assert m == [DENIED.format("<spam@foo.biz>")]
    assert no_rcpt_accepted(rs), rs
    m, (r,) = envelope(p.tern, "joe@good.test", ["hal@tern.test"])
    assert m == [SENDER_OK.format("<joe@good.test>")] and r == [RCPT_OK.format("<hal@tern.test>")]


# ---------------------------------------------------------------- matching (ACC-04)


def test_most_specific_entry_wins(res):
    p = policy_tern(
        res,
        access="From:biz REJECT\nFrom:friend@pal.biz OK\nFrom:joe@ REJECT\n",
    )
    t = p.tern
    assert rcpt_reply(t, "friend@pal.biz", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")
    assert rcpt_reply(t, "x@pal.biz", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert rcpt_reply(t, "y@other.biz", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    # user@ matches that user in every domain
    assert rcpt_reply(t, "joe@good.test", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert rcpt_reply(t, "jim@good.test", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")


def test_keys_are_case_insensitive(res):
    p = policy_tern(res, access="From:Foo.BIZ REJECT\nFrom:Boss@Good.Test REJECT\n")
    t = p.tern
    assert rcpt_reply(t, "SPAM@foo.Biz", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert rcpt_reply(t, "boss@GOOD.test", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert rcpt_reply(t, "other@good.test", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")


def test_from_relay_does_not_grant_relaying(res):
    """RELAY-10 / ACC-05: a From: RELAY entry whitelists the sender for
    spam checks but does not let an outsider relay."""
    p = policy_tern(res, access="From:foo.biz RELAY\n")
    assert rcpt_reply(p.tern, "spam@foo.biz", "x@far.test") == RELAY_DENIED.format("x@far.test")
    assert rcpt_reply(p.tern, "spam@foo.biz", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")


# ---------------------------------------------------------------- actions (ACC-03)

ERRORS = [
    ('ERROR:"550 Custom refusal text"', "550 5.0.0 {}... Custom refusal text"),
    ("ERROR:5.7.1:550 Go away", "550 5.7.1 {}... Go away"),
    ("ERROR:4.7.0:451 later", "451 4.7.0 {}... later"),
]


@pytest.mark.parametrize("value,reply", ERRORS, ids=["quoted", "dsn-code", "temporary"])
@pytest.mark.parametrize("delay", ["yes", "no"])
def test_error_action(res, value, reply, delay):
    p = policy_tern(res, access=f"From:custom.test {value}\n", smtpd_delay_reject=delay)
    m, rs = envelope(p.tern, "x@custom.test", ["hal@tern.test"])
    if delay == "no":
        assert m == [reply.format("<x@custom.test>")]
        assert no_rcpt_accepted(rs), rs
    else:
        assert m == [SENDER_OK.format("<x@custom.test>")]
        assert rs == [[reply.format("<hal@tern.test>")]]


def test_error_action_echoes_the_path_as_written(res):
    """ECHO is the path exactly as the client wrote it: without brackets
    the reply has none."""
    p = policy_tern(res, access="From:custom.test ERROR:5.7.1:550 Go away\n")
    m, rs = envelope(p.tern, "x@custom.test", ["hal@tern.test"], raw=True)
    assert m == ["250 2.1.0 x@custom.test... Sender ok"]
    assert rs == [["550 5.7.1 hal@tern.test... Go away"]]


def test_discard_accepts_and_drops(res):
    p = policy_tern(res, access="From:foo.biz DISCARD\n")
    t = p.tern
    with open_session(t) as c:
        assert c.cmd("MAIL FROM:<spam@foo.biz>") == [SENDER_OK.format("<spam@foo.biz>")]
        assert c.cmd("RCPT TO:<hal@tern.test>") == [RCPT_OK.format("<hal@tern.test>")]
        assert c.cmd("RCPT TO:<abuse@tern.test>") == [RCPT_OK.format("<abuse@tern.test>")]
        final = c.data(make_message(headers={"X-T": "discarded"}))
        assert final[0].startswith("250 2.0.0 "), final
        c.cmd("QUIT")
    t.wait_log(r"discard")
    # a barrier: a later message arrives, the discarded one never does
    send_message(t, "joe@good.test", ["hal@tern.test"], make_message(headers={"X-T": "barrier"}))
    p.box.wait_for(b"X-T: barrier")
    wait_until(lambda: not t.queue_files(), 20, "the queue to drain")
    assert not p.box.matching(b"X-T: discarded")
    assert not p.far.snapshot() and not p.out.snapshot()
    assert list(t.spool.iterdir()) == []


def test_quarantine_puts_the_message_on_hold(res):
    p = policy_tern(res, access="From:foo.biz QUARANTINE:looks like spam\n")
    t = p.tern
    qid = send_message(t, "spam@foo.biz", ["hal@tern.test"], make_message(headers={"X-T": "held"}))
    wait_until(lambda: qid in held_ids(t), 10, "the message in the hold queue")
    listing = t.tern("queue", "list").stdout
    assert re.search(rf"^{qid}! ", listing, re.M), listing
    time.sleep(2)  # several queue runs
    assert not p.box.matching(b"X-T: held")
    assert held_ids(t) == [qid]


# ---------------------------------------------------------------- Connect: (client)


@pytest.mark.parametrize(
    "entry",
    ["Connect:127.0.0.5 REJECT", "Connect:127.0.0 REJECT", "Connect:dialup.test REJECT",
     "Connect:host.dialup.test REJECT"],
    ids=["ip", "prefix", "parent-domain", "hostname"],
)
def test_connect_reject_delayed_to_rcpt(res, entry):
    p = policy_tern(res, access=entry + "\n")
    m, (r,) = envelope(p.tern, "joe@good.test", ["hal@tern.test"])
    assert m == [SENDER_OK.format("<joe@good.test>")]
    assert r == [DENIED.format("<hal@tern.test>")]


def test_connect_hostname_needs_forward_confirmation(res):
    """127.0.0.6's PTR says liar.test, which has no A record: a
    Connect:liar.test entry does not apply."""
    p = policy_tern(res, access="Connect:liar.test REJECT\n")
    assert rcpt_reply(p.tern, "joe@good.test", "hal@tern.test", source=LIAR) == RCPT_OK.format(
        "<hal@tern.test>"
    )


@pytest.mark.parametrize(
    "entry", ["Connect:127.0.0.5 RELAY", "dialup.test RELAY", "Connect:127.0.0 RELAY"],
    ids=["connect-ip", "untagged-domain", "connect-prefix"],
)
def test_connect_relay_lets_the_client_relay(res, entry):
    p = policy_tern(res, access=entry + "\n")
    t = p.tern
    assert rcpt_reply(t, "joe@good.test", "x@far.test") == RCPT_OK.format("<x@far.test>")
    send_message(t, "joe@good.test", ["x@far.test"], make_message(headers={"X-T": "relayed"}))
    (msg,) = p.far.wait_for(b"X-T: relayed")
    assert msg.rcpt_tos == ["x@far.test"]
    # only that client: 127.0.0.9 (no PTR, not under 127.0.0.5) may not
    if entry != "Connect:127.0.0 RELAY":
        assert rcpt_reply(t, "joe@good.test", "x@far.test", source="127.0.0.9") == (
            RELAY_DENIED.format("x@far.test")
        )


def test_hostname_relay_denied_when_the_a_record_is_gone(res):
    """RELAY-05: the PTR of 127.0.0.5 still says host.dialup.test, but the
    name no longer resolves to 127.0.0.5 -- not forward-confirmed, so the
    `dialup.test RELAY` entry does not apply."""
    dns = start_policy_dns(res, confirmed_dialup=False)
    p = policy_tern(res, dns=dns, access="dialup.test RELAY\n")
    assert rcpt_reply(p.tern, "joe@good.test", "x@far.test") == RELAY_DENIED.format("x@far.test")
    assert not p.far.snapshot()


# ---------------------------------------------------------------- To: (recipient)


def test_to_domain_relay_lets_anyone_send_there(res):
    p = policy_tern(res, access="To:far.test RELAY\n")
    t = p.tern
    assert rcpt_reply(t, "joe@good.test", "x@far.test", source=LIAR) == RCPT_OK.format("<x@far.test>")
    send_message(t, "joe@good.test", ["x@far.test"], make_message(headers={"X-T": "to-relay"}),
                 source=LIAR)
    assert p.far.wait_for(b"X-T: to-relay")[0].rcpt_tos == ["x@far.test"]
    # other remote domains stay closed
    assert rcpt_reply(t, "joe@good.test", "x@else.test", source=LIAR) == RELAY_DENIED.format(
        "x@else.test"
    )


def test_blocklist_recipients(res):
    access = "To:blocked@tern.test REJECT\n"
    p = policy_tern(res, access=access, access_blocklist_recipients="yes")
    m, (blocked, hal) = envelope(p.tern, "joe@good.test", ["blocked@tern.test", "hal@tern.test"])
    assert blocked == ["550 5.2.1 <blocked@tern.test>... Mailbox disabled for this recipient"]
    assert hal == [RCPT_OK.format("<hal@tern.test>")]


def test_to_reject_for_a_local_user_needs_blocklist_recipients(res):
    """Without access_blocklist_recipients (the default: no) a To: REJECT
    entry for a local user is not used (sendmail without
    FEATURE(blocklist_recipients))."""
    p = policy_tern(res, access="To:blocked@tern.test REJECT\n")
    assert rcpt_reply(p.tern, "joe@good.test", "blocked@tern.test") == RCPT_OK.format(
        "<blocked@tern.test>"
    )


def test_relay_denied_keeps_postfix_text_with_an_access_map(res):
    p = policy_tern(res, access=FOO)
    assert rcpt_reply(p.tern, "joe@good.test", "x@far.test") == RELAY_DENIED.format("x@far.test")


# ---------------------------------------------------------------- failures and rebuilds


def _replace_db(t, data: bytes = None, mode: int = 0o644):
    """Put a new file in place of access.db (a new inode, as a rebuild
    would): garbage bytes, or a freshly built map made unreadable."""
    db = t.etc / "access.db"
    tmp = t.etc / "access.db.new"
    if data is None:
        build_access(t, FOO, name="access-new")
        os.rename(t.etc / "access-new.db", tmp)
    else:
        tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.rename(tmp, db)


@pytest.mark.parametrize("damage", ["garbage", "unreadable"])
def test_broken_access_map_fails_temporarily(res, damage):
    """ACC-06: a map that cannot be read gives 451 4.3.0, never 250."""
    p = policy_tern(res, access=FOO)
    t = p.tern
    assert rcpt_reply(t, "joe@good.test", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")
    time.sleep(1.1)  # a different mtime second as well as a new inode
    seen = len(t.log())
    if damage == "garbage":
        _replace_db(t, b"this is not a hash database\n" * 64)
    else:
        _replace_db(t, None, mode=0o000)
    for sender in ("joe@good.test", "spam@foo.biz"):
        m, rs = envelope(t, sender, ["hal@tern.test", "abuse@tern.test"])
        if m[0].startswith("451"):
            assert m == [TEMPFAIL]
            assert no_rcpt_accepted(rs), rs
        else:
            assert m == [SENDER_OK.format(f"<{sender}>")]
            assert rs == [[TEMPFAIL], [TEMPFAIL]]
    # a log line about the table (after the damage)
    wait_until(lambda: str(t.etc / "access") in t.log()[seen:], 10, "a log line naming the map")
    assert not t.queue_files()


def test_rebuilt_map_is_used_by_the_next_session(res):
    """ACC-10: no restart, no reload."""
    p = policy_tern(res, access=FOO)
    t = p.tern
    assert rcpt_reply(t, "a@new.test", "hal@tern.test") == RCPT_OK.format("<hal@tern.test>")
    pid = t.master_pid()
    build_access(t, FOO + "From:new.test REJECT\n")
    assert rcpt_reply(t, "a@new.test", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert rcpt_reply(t, "spam@foo.biz", "hal@tern.test") == DENIED.format("<hal@tern.test>")
    assert t.master_pid() == pid


# ---------------------------------------------------------------- GreetPause:


def _greeting_delay(t, source):
    with t.connect(source=source) as c:
        (g, secs) = timed(c.greeting)
        assert g[0].startswith("220 "), g
        return secs


def test_greetpause_access_entry_overrides_smtpd_greet_pause(res):
    p = policy_tern(res, access="GreetPause:127.0.0.6 0\n", smtpd_greet_pause="1s")
    t = p.tern
    assert _greeting_delay(t, LIAR) < 0.5
    assert 0.9 <= _greeting_delay(t, OUTSIDER) < 5


# ---------------------------------------------------------------- reject log (ACC-11)


def test_reject_log_lines(res):
    p = policy_tern(res, access=FOO)
    t = p.tern
    with open_session(t, helo="x") as c:
        c.cmd("MAIL FROM:<spam@foo.biz>")
        assert c.cmd("RCPT TO:<hal@tern.test>") == [DENIED.format("<hal@tern.test>")]
    t.wait_log(
        re.escape(
            "NOQUEUE: reject: RCPT from host.dialup.test[127.0.0.5]: 550 5.7.1 <hal@tern.test>... "
            "Access denied; from=<spam@foo.biz> to=<hal@tern.test> proto=ESMTP helo=<x>"
        )
    )
    t.wait_log(
        re.escape(
            "ruleset=check_rcpt, arg1=<hal@tern.test>, relay=host.dialup.test [127.0.0.5], "
            "reject=550 5.7.1 <hal@tern.test>... Access denied"
        )
    )


def test_reject_log_at_mail_without_delay(res):
    p = policy_tern(res, access=FOO, smtpd_delay_reject="no")
    t = p.tern
    m, _ = envelope(t, "spam@foo.biz", ["hal@tern.test"], helo="x")
    assert m == [DENIED.format("<spam@foo.biz>")]
    t.wait_log(
        re.escape(
            "ruleset=check_mail, arg1=<spam@foo.biz>, relay=host.dialup.test [127.0.0.5], "
            "reject=550 5.7.1 <spam@foo.biz>... Access denied"
        )
    )
    assert re.search(r"reject=550 5\.7\.1 ", t.log())
