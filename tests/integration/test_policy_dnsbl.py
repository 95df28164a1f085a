"""DNS lists in tern's policy engine (issue 10; SPEC SPAM-01..03, SMTP-03,
HDR-01): reject_rbl_client with and without result codes, rbl_reply_maps
with sendmail's $&{client_addr}, whitelists before blacklists (access
Connect: OK, check_client_access OK, permit_dnswl_client), Spam: FRIEND
and SMTP AUTH against a listed client, DNS timeouts (pass, or 451 with
rbl_tempfail_zones), RHSBLs, a hung DNS server that stalls nobody else,
and the client name in the HELO reply and the Received header.

The zones are in policyutil: 127.0.0.5 is listed in bl.test (127.0.0.2,
TXT "listed by bl.test"), 127.0.0.7 answers 127.0.0.4, 127.0.0.8 is in
bl.test and in the whitelist wl.test, 127.0.0.6 and .9 are not listed.
"""

import re
import threading
import time

import pytest

from policyutil import (
    BOTH,
    CODE4,
    INSIDE,
    LIAR,
    NOPTR,
    OUTSIDER,
    cram_md5,
    envelope,
    open_session,
    policy_tern,
    rcpt_reply,
    send_message,
    start_dead_dns,
    timed,
    write_table,
)
from test_auth import make_sasl_dir, shared_dir
from ternlib import REPLY_250_QUEUED, SmtpConn, make_message

RCPT_OK = "250 2.1.5 <{}>... Recipient ok"
SENDER_OK = "250 2.1.0 <{}>... Sender ok"
HAL = "hal@tern.test"
LISTED_5 = ("554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using bl.test; "
            "listed by bl.test")


def rbl(res, restrictions, **params):
    return policy_tern(res, smtpd_client_restrictions=restrictions, **params)


# ---------------------------------------------------------------- SPAM-01 / SPAM-02


def test_listed_client_rejected_at_rcpt(res, policy_dns):
    p = rbl(res, "reject_rbl_client bl.test", dns=policy_dns)
    m, (r,) = envelope(p.tern, "joe@good.test", [HAL])
    assert m == [SENDER_OK.format("joe@good.test")]
    assert r == [LISTED_5]
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=LIAR) == RCPT_OK.format(HAL)
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=NOPTR) == RCPT_OK.format(HAL)
    # the log names the zone (SPAM-03)
    p.tern.wait_log(r"NOQUEUE: reject: RCPT from host\.dialup\.test\[127\.0\.0\.5\]: "
                    + re.escape(LISTED_5) + r"; from=<joe@good\.test> to=<hal@tern\.test>")


def test_listed_client_without_delay_is_refused_before_mail_is_accepted(res):
    """smtpd_delay_reject = no: the verdict comes at connect, HELO or MAIL
    at the latest (not at RCPT as with delay on), and MAIL is not
    accepted."""
    p = rbl(res, "reject_rbl_client bl.test", smtpd_delay_reject="no")
    replies = []
    with SmtpConn(p.tern.host, p.tern.port, source=OUTSIDER) as c:
        try:
            replies.append(c.greeting())
            replies.append(c.cmd("EHLO client.example"))
            mail = c.cmd("MAIL FROM:<joe@good.test>")
            replies.append(mail)
            assert not mail[0].startswith("2"), mail
        except EOFError:
            pass
    lines = [line for r in replies for line in r]
    assert any(line.endswith("Client host [127.0.0.5] blocked using bl.test; listed by bl.test")
               for line in lines), lines


@pytest.mark.parametrize(
    "item,rejected",
    [
        ("reject_rbl_client bl.test=127.0.0.2", False),
        ("reject_rbl_client bl.test=127.0.0.[2..11]", True),
        ("reject_rbl_client bl.test", True),
    ],
    ids=["exact-code", "code-range", "any-code"],
)
def test_result_code_filter(res, item, rejected):
    p = rbl(res, item)
    r = rcpt_reply(p.tern, "joe@good.test", HAL, source=CODE4)
    if rejected:
        assert r == "554 5.7.1 Service unavailable; Client host [127.0.0.7] blocked using bl.test"
    else:
        assert r == RCPT_OK.format(HAL)
    # 127.0.0.5 answers 127.0.0.2, which every form matches
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == LISTED_5


@pytest.mark.parametrize(
    "template",
    ["554 Rejected spam as $&{client_addr} found in bl.test",
     "554 Rejected spam as ${client_addr} found in bl.test",
     "554 Rejected spam as $client_address found in $rbl_domain"],
    ids=["sendmail-dollar-amp", "sendmail-braces", "postfix-names"],
)
def test_rbl_reply_maps(res, template):
    p = policy_tern(res, start=False, smtpd_client_restrictions="reject_rbl_client bl.test")
    path = write_table(p.tern, "rbl_replies", f"bl.test {template}\n")
    p.tern.conf_edit(rbl_reply_maps=f"texthash:{path}")
    p.tern.start()
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == (
        "554 5.7.1 Rejected spam as 127.0.0.5 found in bl.test"
    )


# ---------------------------------------------------------------- whitelists first (ACC-05, RELAY-12)


def test_access_connect_ok_skips_the_dnsbl(res):
    p = rbl(res, "reject_rbl_client bl.test", access="Connect:127.0.0.5 OK\n")
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == RCPT_OK.format(HAL)
    # 127.0.0.8 has no access entry: still refused
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=BOTH).startswith("554 5.7.1 Service "
                                                                             "unavailable; ")


def test_check_client_access_ok_before_the_dnsbl(res):
    p = policy_tern(res, start=False)
    path = write_table(p.tern, "clients.cidr", "127.0.0.5/32 OK\n")
    p.tern.conf_edit(
        smtpd_client_restrictions=f"check_client_access cidr:{path}, reject_rbl_client bl.test"
    )
    p.tern.start()
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == RCPT_OK.format(HAL)


def test_dnswl_before_the_dnsbl(res):
    p = rbl(res, "permit_dnswl_client wl.test, reject_rbl_client bl.test")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=BOTH) == RCPT_OK.format(HAL)
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == LISTED_5


# ---------------------------------------------------------------- SPAM-03


def test_friend_recipient_gets_mail_from_a_listed_client(res):
    p = rbl(res, "reject_rbl_client bl.test", access="Spam:abuse@tern.test FRIEND\n")
    m, (abuse, hal) = envelope(p.tern, "joe@good.test", ["abuse@tern.test", HAL])
    assert abuse == [RCPT_OK.format("abuse@tern.test")]
    assert hal == [LISTED_5]


def test_authenticated_client_skips_the_dnsbl(res):
    """SPAM-03: the same listed client after SMTP AUTH (CRAM-MD5 against a
    sasldb, no TLS needed) gets 250 for both recipients."""
    base = shared_dir(res, "policy-sasl")
    sasl = make_sasl_dir(
        base / "sasl",
        ["pwcheck_method: auxprop", "auxprop_plugin: sasldb", "mech_list: PLAIN CRAM-MD5"],
        [("alice", "Alice-pw-9Qx7")],
    )
    p = rbl(
        res,
        "permit_sasl_authenticated, reject_rbl_client bl.test",
        access="Spam:abuse@tern.test FRIEND\n",
        smtpd_sasl_auth_enable="yes",
        cyrus_sasl_config_path=str(sasl),
        smtpd_tls_auth_only="no",
    )
    # not authenticated: as above
    m, (abuse, hal) = envelope(p.tern, "joe@good.test", ["abuse@tern.test", HAL])
    assert abuse == [RCPT_OK.format("abuse@tern.test")] and hal == [LISTED_5]
    with open_session(p.tern) as c:
        assert cram_md5(c, "alice", "Alice-pw-9Qx7") == ["235 2.7.0 Authentication successful"]
        assert c.cmd("MAIL FROM:<alice@tern.test>") == [SENDER_OK.format("alice@tern.test")]
        assert c.cmd("RCPT TO:<abuse@tern.test>") == [RCPT_OK.format("abuse@tern.test")]
        assert c.cmd(f"RCPT TO:<{HAL}>") == [RCPT_OK.format(HAL)]


# ---------------------------------------------------------------- DNS failures


def test_dnsbl_timeout_passes_without_tempfail_zone(res, dead_dns):
    """A DNS server that never answers: the client is not listed as far as
    tern can tell -- accepted, logged, and the session is not held up for
    long.  Peer-name lookups are off here so only the DNS list waits."""
    dead = dead_dns
    p = rbl(res, "reject_rbl_client bl.test", dns=dead, smtpd_peername_lookup="no",
            accept_unresolvable_domains="yes")
    (m, rs), secs = timed(envelope, p.tern, "joe@good.test", [HAL])
    assert rs == [[RCPT_OK.format(HAL)]]
    assert secs < 8, secs
    assert dead.queries > 0
    p.tern.wait_log(r"(?i)bl\.test.*(time|temporar|fail)")


def test_dnsbl_timeout_with_tempfail_zone(res, dead_dns):
    dead = dead_dns
    p = rbl(res, "reject_rbl_client bl.test", dns=dead, smtpd_peername_lookup="no",
            accept_unresolvable_domains="yes", rbl_tempfail_zones="bl.test")
    (m, rs), secs = timed(envelope, p.tern, "joe@good.test", [HAL])
    assert rs == [["451 4.7.1 Temporary lookup failure of 127.0.0.5 at bl.test"]]
    assert secs < 8, secs


def test_a_hung_dns_server_stalls_nobody_else(res):
    """Session A (127.0.0.5) waits for its DNS list answer from a server
    that never answers; session B from mynetworks (permit_mynetworks comes
    first) does a whole transaction meanwhile, well within dns_timeout."""
    dead = start_dead_dns(res)
    p = rbl(res, "permit_mynetworks, reject_rbl_client bl.test", dns=dead,
            smtpd_peername_lookup="no", accept_unresolvable_domains="yes", dns_timeout="5s")
    t = p.tern
    a = open_session(t, timeout=60)
    a_reply = {}
    try:
        assert a.cmd("MAIL FROM:<joe@good.test>")[0].startswith("250 ")
        a.send(f"RCPT TO:<{HAL}>\r\n")

        def wait_a():
            a_reply["r"] = a.read_reply(timeout=60)
            a_reply["at"] = time.monotonic()

        waiter = threading.Thread(target=wait_a)
        waiter.start()
        time.sleep(0.5)  # A's query is out
        began = time.monotonic()
        qid = send_message(t, "joe@good.test", [HAL], make_message(headers={"X-T": "session-b"}),
                           source=INSIDE)
        b_secs = time.monotonic() - began
        assert qid
        assert b_secs < 2.0, b_secs
        assert "r" not in a_reply, f"A was answered before B finished: {a_reply}"
        waiter.join(timeout=60)
        assert a_reply.get("r") == [RCPT_OK.format(HAL)]  # no tempfail zone: passes
    finally:
        a.close()
    p.box.wait_for(b"X-T: session-b")


# ---------------------------------------------------------------- RHSBL


def test_reject_rhsbl_sender(res):
    p = policy_tern(res, smtpd_sender_restrictions="reject_rhsbl_sender rhsbl.test")
    m, (r,) = envelope(p.tern, "a@spam.test", [HAL])
    assert m == [SENDER_OK.format("a@spam.test")]
    assert r == ["554 5.7.1 Service unavailable; Sender address [a@spam.test] blocked using "
                 "rhsbl.test"]
    assert rcpt_reply(p.tern, "a@good.test", HAL) == RCPT_OK.format(HAL)


def test_reject_rhsbl_helo(res):
    p = policy_tern(res, smtpd_helo_restrictions="reject_rhsbl_helo rhsbl.test")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="spam.test") == (
        "554 5.7.1 Service unavailable; Helo command [spam.test] blocked using rhsbl.test"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="good.test") == RCPT_OK.format(HAL)


def test_reject_rhsbl_client(res):
    p = rbl(res, "reject_rhsbl_client rhsbl.test")
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == (
        "554 5.7.1 Service unavailable; Client host [host.dialup.test] blocked using rhsbl.test"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=NOPTR) == RCPT_OK.format(HAL)


# ---------------------------------------------------------------- SMTP-03, HDR-01


@pytest.mark.parametrize(
    "source,shown",
    [(OUTSIDER, "host.dialup.test [127.0.0.5]"), (NOPTR, "[127.0.0.9]")],
    ids=["rdns", "no-ptr"],
)
def test_client_name_in_helo_reply_and_received_header(res, source, shown):
    p = policy_tern(res)
    t = p.tern
    tag = f"received-{source}"
    with SmtpConn(t.host, t.port, source=source) as c:
        c.greeting()
        assert c.cmd("HELO spoof.example.com") == [
            f"250 tern.test Hello {shown}, pleased to meet you"
        ]
        assert c.cmd("MAIL FROM:<joe@good.test>")[0].startswith("250 ")
        assert c.cmd(f"RCPT TO:<{HAL}>")[0].startswith("250 ")
        final = c.data(make_message(headers={"X-T": tag}))
        qid = REPLY_250_QUEUED.match(final[0]).group(1)
    (msg,) = p.box.wait_for(f"X-T: {tag}".encode())
    name = shown if shown.startswith("host.") else f"unknown {shown}"
    first = f"Received: from spoof.example.com ({name})\r\n\tby tern.test ".encode()
    assert msg.content.startswith(first), msg.content[:300]
    assert f"with SMTP id {qid}".encode() in msg.content.split(b"\r\n\r\n", 1)[0]
