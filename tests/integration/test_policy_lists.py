"""Postfix restriction lists in tern's policy engine (issue 10): the
smtpd_*_restrictions lists, the check_*_access tables and their actions,
the reject_unknown_* / reject_non_fqdn_* / reject_invalid_* restrictions,
reject_unauth_pipelining, the generic permit/reject/defer/sleep/
warn_if_reject, sendmail's built-in "sender domain must resolve" check
(SMTP-19, accept_unresolvable_domains), per-listener lists, config errors
and `tern trace` explaining a verdict.

Replies are Postfix's texts (smtpd_check.c): `CODE X.Y.Z <what>: Class
rejected: text`.  smtpd_delay_reject = yes (the default) everywhere unless
said otherwise, so client, HELO and sender verdicts come at RCPT.
"""

import re
import subprocess
import time

import pytest

from policyutil import (
    INSIDE,
    LIAR,
    NOPTR,
    OUTSIDER,
    envelope,
    held_ids,
    open_session,
    policy_tern,
    rcpt_reply,
    send_message,
    start_dead_dns,
    timed,
    write_table,
)
from ternlib import TERN, free_port, make_message, wait_until

RCPT_OK = "250 2.1.5 <{}>... Recipient ok"
SENDER_OK = "250 2.1.0 <{}>... Sender ok"
HAL = "hal@tern.test"


def listed(res, list_name, item_fmt, table_name, table_text, **params):
    """policy_tern with list_name = item_fmt.format(table spec); the table
    is a texthash (or cidr when table_name ends in .cidr) file in etc/."""
    p = policy_tern(res, start=False, **params)
    path = write_table(p.tern, table_name, table_text)
    kind = "cidr" if table_name.endswith(".cidr") else "texthash"
    p.tern.conf_edit(**{list_name: item_fmt.format(f"{kind}:{path}")})
    p.tern.start()
    return p


# ---------------------------------------------------------------- check_client_access


@pytest.mark.parametrize(
    "action,reply",
    [
        ("REJECT", "554 5.7.1 <{}>: Client host rejected: Access denied"),
        ("REJECT go away", "554 5.7.1 <{}>: Client host rejected: go away"),
        ("DEFER", "450 4.7.1 <{}>: Client host rejected: Access denied"),
        ("550 nope", "550 5.7.1 <{}>: Client host rejected: nope"),
    ],
    ids=["reject", "reject-text", "defer", "numeric"],
)
@pytest.mark.parametrize(
    "source,client", [(OUTSIDER, "host.dialup.test[127.0.0.5]"), (NOPTR, "unknown[127.0.0.9]")],
    ids=["rdns", "no-rdns"],
)
def test_check_client_access_cidr(res, action, reply, source, client):
    p = listed(res, "smtpd_client_restrictions", "check_client_access {}", "clients.cidr",
               f"{source}/32 {action}\n")
    m, (r,) = envelope(p.tern, "joe@good.test", [HAL], source=source)
    assert m == [SENDER_OK.format("joe@good.test")]
    assert r == [reply.format(client)]
    # another client is not affected
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=LIAR) == RCPT_OK.format(HAL)


def test_check_helo_access(res):
    p = listed(res, "smtpd_helo_restrictions", "check_helo_access {}", "helo",
               "bad.helo REJECT\n")
    r = rcpt_reply(p.tern, "joe@good.test", HAL, helo="bad.helo")
    assert r == "554 5.7.1 <bad.helo>: Helo command rejected: Access denied"
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="good.helo") == RCPT_OK.format(HAL)


def test_check_sender_access(res):
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}", "senders",
               "foo.biz REJECT\n")
    m, (r,) = envelope(p.tern, "spam@foo.biz", [HAL])
    assert m == [SENDER_OK.format("spam@foo.biz")]
    assert r == ["554 5.7.1 <spam@foo.biz>: Sender address rejected: Access denied"]
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == RCPT_OK.format(HAL)


def test_check_sender_access_without_delay_rejects_at_mail(res):
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}", "senders",
               "foo.biz REJECT\n", smtpd_delay_reject="no")
    m, rs = envelope(p.tern, "spam@foo.biz", [HAL])
    assert m == ["554 5.7.1 <spam@foo.biz>: Sender address rejected: Access denied"]


def test_check_recipient_access(res):
    p = listed(res, "smtpd_recipient_restrictions", "check_recipient_access {}", "rcpts",
               "hal@tern.test REJECT\n")
    m, (hal, abuse) = envelope(p.tern, "joe@good.test", [HAL, "abuse@tern.test"])
    assert hal == ["554 5.7.1 <hal@tern.test>: Recipient address rejected: Access denied"]
    assert abuse == [RCPT_OK.format("abuse@tern.test")]


def test_ok_in_sender_list_does_not_skip_the_recipient_list(res):
    p = policy_tern(res, start=False)
    s = write_table(p.tern, "senders", "foo.biz OK\n")
    r = write_table(p.tern, "rcpts", "hal@tern.test REJECT\n")
    p.tern.conf_edit(
        smtpd_sender_restrictions=f"check_sender_access texthash:{s}",
        smtpd_recipient_restrictions=f"check_recipient_access texthash:{r}",
    )
    p.tern.start()
    assert rcpt_reply(p.tern, "spam@foo.biz", HAL) == (
        "554 5.7.1 <hal@tern.test>: Recipient address rejected: Access denied"
    )
    # nor the relay list: OK for the sender is not permission to relay
    assert rcpt_reply(p.tern, "spam@foo.biz", "x@far.test") == (
        "554 5.7.1 <x@far.test>: Relay access denied"
    )


def test_hold_action(res):
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}", "senders",
               "held.test HOLD\n")
    qid = send_message(p.tern, "a@held.test", [HAL], make_message(headers={"X-T": "hold"}))
    wait_until(lambda: qid in held_ids(p.tern), 10, "the message in hold/")
    time.sleep(2)
    assert not p.box.matching(b"X-T: hold")
    p.tern.wait_log(r"hold: ")


def test_prepend_action(res):
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}", "senders",
               "foo.biz PREPEND X-Test: yes\n")
    send_message(p.tern, "spam@foo.biz", [HAL], make_message(headers={"X-T": "prepend"}))
    (msg,) = p.box.wait_for(b"X-T: prepend")
    assert msg.header("X-Test") == "yes"
    assert msg.content.count(b"X-Test: yes\r\n") == 1
    # prepended: above the message's own headers
    assert msg.content.index(b"X-Test: yes") < msg.content.index(b"X-T: prepend")


def test_redirect_action(res):
    p = listed(res, "smtpd_recipient_restrictions", "check_recipient_access {}", "rcpts",
               "hal@tern.test REDIRECT other@tern.test\n")
    send_message(p.tern, "joe@good.test", [HAL, "abuse@tern.test"],
                 make_message(headers={"X-T": "redirect"}))
    (msg,) = p.box.wait_for(b"X-T: redirect")
    time.sleep(1)
    got = p.box.matching(b"X-T: redirect")
    assert [m.rcpt_tos for m in got] == [["other@box.test"]]


def test_prepend_once_for_many_recipients(res):
    """The delayed lists run again at every RCPT: the header is added once."""
    p = listed(res, "smtpd_client_restrictions", "check_client_access {}", "clients",
               "127.0.0.5 PREPEND X-Client: flagged\n")
    send_message(p.tern, "joe@good.test", [HAL, "abuse@tern.test", "other@tern.test"],
                 make_message(headers={"X-T": "prepend3"}))
    (msg,) = p.box.wait_for(b"X-T: prepend3")
    assert msg.content.count(b"X-Client: flagged\r\n") == 1


@pytest.mark.parametrize("action", ["HOLD", "DISCARD", "REJECT"])
def test_end_of_data_hold_and_discard(res, action):
    p = listed(res, "smtpd_end_of_data_restrictions", "check_sender_access {}", "senders",
               f"held.test {action}\n")
    with open_session(p.tern) as c:
        assert c.cmd("MAIL FROM:<a@held.test>")[0].startswith("250 ")
        assert c.cmd(f"RCPT TO:<{HAL}>")[0].startswith("250 ")
        final = c.data(make_message(headers={"X-T": f"eod-{action}"}))
        c.cmd("QUIT")
    if action == "REJECT":
        assert final == ["554 5.7.1 <a@held.test>: Sender address rejected: Access denied"]
        p.tern.wait_log(r"NOQUEUE: reject: END-OF-MESSAGE from host\.dialup\.test")
    elif action == "DISCARD":
        assert final == ["250 2.0.0 Ok: discarded"]
        p.tern.wait_log(r"discard: END-OF-MESSAGE from host\.dialup\.test\[127\.0\.0\.5\]")
    else:
        assert final[0].startswith("250 2.0.0 Ok: queued as "), final
        qid = final[0].split()[-1]
        wait_until(lambda: qid in held_ids(p.tern), 10, "the message in hold/")
    time.sleep(2)
    assert not p.box.matching(f"X-T: eod-{action}".encode())


def test_connect_discard_without_delay_applies_to_each_message(res):
    """smtpd_delay_reject = no: a DISCARD decided at connect is not lost
    when HELO or RSET start a new transaction."""
    p = policy_tern(res, access="Connect:127.0.0.5 DISCARD\n", smtpd_delay_reject="no")
    with open_session(p.tern) as c:
        for n in range(2):
            assert c.cmd("MAIL FROM:<joe@good.test>")[0].startswith("250 ")
            assert c.cmd(f"RCPT TO:<{HAL}>")[0].startswith("250 ")
            assert c.data(make_message(headers={"X-T": f"conn-discard-{n}"})) == [
                "250 2.0.0 Ok: discarded"
            ]
            c.cmd("RSET")
        c.cmd("QUIT")
    time.sleep(2)
    assert not p.box.matching(b"X-T: conn-discard")


def test_warn_action(res):
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}", "senders",
               "warn.test WARN looks odd\n")
    send_message(p.tern, "a@warn.test", [HAL], make_message(headers={"X-T": "warn"}))
    p.box.wait_for(b"X-T: warn")
    p.tern.wait_log(r"warn: .*looks odd")


def test_dunno_stops_the_search_of_that_table(res):
    """DUNNO on the full address: the parent-domain entry (OK) is not
    consulted and the list goes on to `reject`."""
    p = listed(res, "smtpd_sender_restrictions", "check_sender_access {}, reject", "senders",
               "spam@foo.biz DUNNO\nfoo.biz OK\n")
    assert rcpt_reply(p.tern, "spam@foo.biz", HAL) == (
        "554 5.7.1 <spam@foo.biz>: Sender address rejected: Access denied"
    )
    assert rcpt_reply(p.tern, "other@foo.biz", HAL) == RCPT_OK.format(HAL)


def test_table_value_naming_a_restriction(res):
    p = listed(res, "smtpd_client_restrictions", "check_client_access {}", "clients.cidr",
               "127.0.0.0/29 reject_unknown_client_hostname\n")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=LIAR) == (
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.6]"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=OUTSIDER) == RCPT_OK.format(HAL)


# ---------------------------------------------------------------- DNS-based restrictions


def test_reject_unknown_client_hostname(res):
    p = policy_tern(res, smtpd_client_restrictions="reject_unknown_client_hostname")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=LIAR) == (
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.6]"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=NOPTR) == (
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.9]"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=OUTSIDER) == RCPT_OK.format(HAL)


def test_reject_unknown_reverse_client_hostname(res):
    p = policy_tern(res, smtpd_client_restrictions="reject_unknown_reverse_client_hostname")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=NOPTR) == (
        "450 4.7.25 Client host rejected: cannot find your reverse hostname, [127.0.0.9]"
    )
    # a PTR is enough, confirmed or not
    assert rcpt_reply(p.tern, "joe@good.test", HAL, source=LIAR) == RCPT_OK.format(HAL)


def test_reject_unknown_sender_domain(res):
    # accept_unresolvable_domains = yes: the built-in check (below) would
    # answer first with its own text
    p = policy_tern(res, smtpd_sender_restrictions="reject_unknown_sender_domain",
                    accept_unresolvable_domains="yes")
    assert rcpt_reply(p.tern, "a@nx.test", HAL) == (
        "450 4.1.8 <a@nx.test>: Sender address rejected: Domain not found"
    )
    assert rcpt_reply(p.tern, "a@ok.test", HAL) == RCPT_OK.format(HAL)  # A record only
    assert rcpt_reply(p.tern, "a@example.test", HAL) == RCPT_OK.format(HAL)  # MX


def test_reject_unknown_recipient_domain(res):
    """From mynetworks (the relay list permits it), so the recipient list
    decides."""
    p = policy_tern(res, smtpd_recipient_restrictions="reject_unknown_recipient_domain")
    m, (nx, ok) = envelope(p.tern, "joe@good.test", ["a@nx.test", "a@ok.test"], source=INSIDE)
    assert nx == ["450 4.1.2 <a@nx.test>: Recipient address rejected: Domain not found"]
    assert ok == [RCPT_OK.format("a@ok.test")]


@pytest.mark.parametrize("delay", ["yes", "no"])
def test_sender_domain_must_exist_by_default(res, delay):
    """SMTP-19 / SPAM-08: sendmail's built-in check for clients outside
    mynetworks (accept_unresolvable_domains = no is the default)."""
    p = policy_tern(res, smtpd_delay_reject=delay)
    reply = "553 5.1.8 <a@nx.test>... Domain of sender address a@nx.test does not exist"
    m, rs = envelope(p.tern, "a@nx.test", [HAL])
    if delay == "yes":
        assert m == [SENDER_OK.format("a@nx.test")]
        assert rs == [[reply]]
    else:
        assert m == [reply]
    # mynetworks is not checked
    m, rs = envelope(p.tern, "a@nx.test", [HAL], source=INSIDE)
    assert m == [SENDER_OK.format("a@nx.test")] and rs == [[RCPT_OK.format(HAL)]]
    # a domain with an A record only is fine
    assert rcpt_reply(p.tern, "a@ok.test", HAL) == RCPT_OK.format(HAL)


def test_sender_domain_dns_timeout_is_temporary(res):
    dead = start_dead_dns(res)
    # the client's name would wait for the dead server too: not looked up
    p = policy_tern(res, dns=dead, smtpd_peername_lookup="no")
    with open_session(p.tern, timeout=40) as c:
        m = c.cmd("MAIL FROM:<a@nx.test>", timeout=40)
        if m[0].startswith("451"):
            assert m == ["451 4.1.8 Domain of sender address a@nx.test does not resolve"]
        else:
            assert m == [SENDER_OK.format("a@nx.test")]
            r = c.cmd(f"RCPT TO:<{HAL}>", timeout=40)
            assert r == ["451 4.1.8 Domain of sender address a@nx.test does not resolve"]
    assert dead.queries > 0


def test_accept_unresolvable_domains(res):
    p = policy_tern(res, accept_unresolvable_domains="yes")
    m, (r,) = envelope(p.tern, "a@nx.test", [HAL])
    assert m == [SENDER_OK.format("a@nx.test")] and r == [RCPT_OK.format(HAL)]


# ---------------------------------------------------------------- syntax restrictions


def test_reject_non_fqdn_sender(res):
    """From mynetworks: tern refuses an unqualified sender from outside
    mynetworks at MAIL already (553 5.5.4, SMTP-18), which comes first."""
    p = policy_tern(res, smtpd_sender_restrictions="reject_non_fqdn_sender",
                    accept_unresolvable_domains="yes")
    m, rs = envelope(p.tern, "a", [HAL], source=INSIDE)
    assert m == [SENDER_OK.format("a")]
    assert rs == [["504 5.5.2 <a>: Sender address rejected: need fully-qualified address"]]
    # a domain without a dot is not fully qualified either; from outside too
    m, rs = envelope(p.tern, "a@host", [HAL])
    assert rs == [["504 5.5.2 <a@host>: Sender address rejected: need fully-qualified address"]]
    # the outsider's bare "a" stops at MAIL with the older check
    m, rs = envelope(p.tern, "a", [HAL])
    assert m[0].startswith("553 5.5.4 "), m


def test_reject_non_fqdn_recipient(res):
    p = policy_tern(res, smtpd_recipient_restrictions="reject_non_fqdn_recipient")
    m, (r, ok) = envelope(p.tern, "joe@good.test", ["a@host", HAL], source=INSIDE)
    assert r == ["504 5.5.2 <a@host>: Recipient address rejected: need fully-qualified address"]
    assert ok == [RCPT_OK.format(HAL)]


def test_reject_non_fqdn_helo_hostname(res):
    p = policy_tern(res, smtpd_helo_restrictions="reject_non_fqdn_helo_hostname")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="x") == (
        "504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="x.example.com") == RCPT_OK.format(HAL)


def test_reject_invalid_helo_hostname(res):
    p = policy_tern(res, smtpd_helo_restrictions="reject_invalid_helo_hostname")
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="a_b!") == (
        "501 5.5.2 <a_b!>: Helo command rejected: Invalid name"
    )
    assert rcpt_reply(p.tern, "joe@good.test", HAL, helo="a-b.example") == RCPT_OK.format(HAL)


# ---------------------------------------------------------------- reject_unauth_pipelining

IMPROPER = "554 5.5.0 Error: improper use of SMTP command pipelining"


def _read_replies(c, n):
    return [c.read_reply() for _ in range(n)]


@pytest.fixture
def pipelining(res):
    return policy_tern(res, smtpd_data_restrictions="reject_unauth_pipelining")


def test_unauth_pipelining_after_helo(pipelining):
    t = pipelining.tern
    with t.connect(source=OUTSIDER) as c:
        c.greeting()
        assert c.cmd("HELO client.example")[0].startswith("250 ")
        c.send(f"MAIL FROM:<joe@good.test>\r\nRCPT TO:<{HAL}>\r\nDATA\r\n")
        mail, rcpt, data = _read_replies(c, 3)
        assert mail == [SENDER_OK.format("joe@good.test")]
        assert rcpt == [RCPT_OK.format(HAL)]
        assert data == [IMPROPER]
    t.wait_log(re.escape(IMPROPER))
    assert not t.queue_files()


def test_unauth_pipelining_ehlo_in_the_same_write(pipelining):
    t = pipelining.tern
    with t.connect(source=OUTSIDER) as c:
        c.greeting()
        c.send(f"EHLO client.example\r\nMAIL FROM:<joe@good.test>\r\nRCPT TO:<{HAL}>\r\nDATA\r\n")
        ehlo, mail, rcpt, data = _read_replies(c, 4)
        assert ehlo[-1].startswith("250 ")
        assert data == [IMPROPER]


def test_pipelining_after_ehlo_is_allowed(pipelining):
    t = pipelining.tern
    with open_session(t) as c:  # EHLO answered, PIPELINING offered
        c.send(f"MAIL FROM:<joe@good.test>\r\nRCPT TO:<{HAL}>\r\nDATA\r\n")
        mail, rcpt, data = _read_replies(c, 3)
        assert rcpt == [RCPT_OK.format(HAL)]
        assert data[0].startswith("354 "), data


def test_no_pipelining_is_allowed(pipelining):
    t = pipelining.tern
    with t.connect(source=OUTSIDER) as c:
        c.greeting()
        c.cmd("HELO client.example")
        c.cmd("MAIL FROM:<joe@good.test>")
        c.cmd(f"RCPT TO:<{HAL}>")
        assert c.cmd("DATA")[0].startswith("354 ")


# ---------------------------------------------------------------- generic restrictions


@pytest.mark.parametrize(
    "item,reply",
    [
        ("reject", "554 5.7.1 <hal@tern.test>: Recipient address rejected: Access denied"),
        ("defer", "450 4.7.1 <hal@tern.test>: Recipient address rejected: Try again later"),
        ("permit", RCPT_OK.format(HAL)),
    ],
)
def test_generic_restrictions_end_the_list(res, item, reply):
    p = policy_tern(res, smtpd_recipient_restrictions=item)
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == reply


def test_permit_in_the_sender_list_is_not_relay_permission(res):
    p = policy_tern(res, smtpd_sender_restrictions="permit")
    assert rcpt_reply(p.tern, "joe@good.test", "x@far.test") == (
        "554 5.7.1 <x@far.test>: Relay access denied"
    )


def test_sleep_delays_the_reply(res):
    p = policy_tern(res, smtpd_recipient_restrictions="sleep 1, permit")
    with open_session(p.tern) as c:
        c.cmd("MAIL FROM:<joe@good.test>")
        r, secs = timed(c.cmd, f"RCPT TO:<{HAL}>")
    assert r == [RCPT_OK.format(HAL)]
    assert 0.9 <= secs < 5, secs


def test_warn_if_reject(res):
    p = policy_tern(res, smtpd_recipient_restrictions="warn_if_reject reject, permit")
    assert rcpt_reply(p.tern, "joe@good.test", HAL) == RCPT_OK.format(HAL)
    p.tern.wait_log(r"reject_warning: RCPT from host\.dialup\.test\[127\.0\.0\.5\]: 554 5\.7\.1 ")


# ---------------------------------------------------------------- configuration


def test_unknown_restriction_refuses_to_start(res):
    p = policy_tern(res, start=False)
    t = p.tern
    t.write_conf(extra_lines=["smtpd_recipient_restrictions = permit_mynetworks, reject_bogus_thing"])
    lineno = t.conf_path.read_text().splitlines().index(
        "smtpd_recipient_restrictions = permit_mynetworks, reject_bogus_thing") + 1
    where = f"tern.conf:{lineno}"
    check = t.tern("check")
    assert check.returncode != 0
    assert where in check.stdout + check.stderr and "reject_bogus_thing" in check.stdout + check.stderr
    proc = subprocess.run([str(TERN), "-c", str(t.etc), "start", "-f"], capture_output=True,
                          text=True, timeout=15, start_new_session=True)
    assert proc.returncode != 0
    assert where in proc.stdout + proc.stderr
    assert "reject_bogus_thing" in proc.stdout + proc.stderr
    assert not t.pids()


def test_per_listener_restrictions(res):
    port = free_port()
    # the submission listener's built-in TLS and AUTH requirements off, so
    # only the list differs between the two listeners
    p = policy_tern(res, submission_listen=f"127.0.0.1:{port}", **{
        "submission.smtpd_tls_security_level": "none",
        "submission.smtpd_auth_required": "no",
        "submission.smtpd_sasl_auth_enable": "no",
        "submission.smtpd_client_restrictions": "reject",
    })
    t = p.tern
    with open_session(t, port=port) as c:
        c.cmd("MAIL FROM:<joe@good.test>")
        assert c.cmd(f"RCPT TO:<{HAL}>") == [
            "554 5.7.1 <host.dialup.test[127.0.0.5]>: Client host rejected: Access denied"
        ]
    assert rcpt_reply(t, "joe@good.test", HAL) == RCPT_OK.format(HAL)


# ---------------------------------------------------------------- tern trace


def test_trace_explains_a_reject_and_an_accept(res):
    p = policy_tern(res, start=False)
    t = p.tern
    s = write_table(t, "senders", "foo.biz REJECT\n")
    t.conf_edit(smtpd_sender_restrictions=f"check_sender_access texthash:{s}")
    r = t.tern("trace", "--client", OUTSIDER, "--helo", "x", "--from", "spam@foo.biz", HAL)
    out = r.stdout
    assert "check_sender_access" in out, out
    assert "reject" in out
    assert "554 5.7.1 <spam@foo.biz>: Sender address rejected: Access denied" in out
    r = t.tern("trace", "--client", OUTSIDER, "--helo", "x", "--from", "joe@good.test", HAL)
    out = r.stdout
    assert r.returncode == 0, r.stderr
    assert re.search(r"\baccept", out, re.I), out
    assert "rejected" not in out


# ---------------------------------------------------------------- open relays (RELAY-08, SPAM-10)


def test_promiscuous_relay_warns_and_relays(res):
    p = policy_tern(res, start=False, promiscuous_relay="yes")
    check = p.tern.tern("check")
    assert "FEATURE('promiscuous_relay') configures your system as open relay" in (
        check.stdout
    ), check.stdout
    assert check.stdout.count("tern: warning:") == 1
    p.tern.start()
    assert rcpt_reply(p.tern, "joe@ok.test", "x@far.test") == RCPT_OK.format("x@far.test")


def test_check_warns_about_a_relay_list_that_permits_everyone(res):
    p = policy_tern(res, start=False, smtpd_relay_restrictions="permit_mynetworks, permit")
    check = p.tern.tern("check")
    assert check.returncode == 0, check.stdout
    assert "listener smtpd: open relay: a client outside mynetworks" in check.stdout
    p2 = policy_tern(res, start=False)
    assert "warning" not in p2.tern.tern("check").stdout
