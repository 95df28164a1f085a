"""maillog_format (SPEC LOG-01..06, LOG-10, CLI-15; docs/logging.md).

One instance per format (postfix, sendmail, json) gets the same traffic: a
message delivered to a sink, one deferred (nothing listens on its next hop),
one bounced (its next hop answers 550, so a non-delivery notice follows) and
a local submission through the sendmail command.  The test parses each
event line: regexes for postfix and sendmail, json.loads for json.  The
sendmail-format log then goes through logwatch's sendmail service (with the
match filter docs/logging.md ships) and the postfix-format log through
pflogsumm.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ternlib import BUILD, REPLY_250_QUEUED, SmtpConn, free_port, wait_until

SENDMAIL = BUILD / "tools" / "sendmail"
ROOT = Path(__file__).resolve().parents[2]
LOGWATCH_SENDMAIL = Path("/usr/share/logwatch/scripts/services/sendmail")
LOGWATCH_CONF = ROOT / "conf" / "logwatch" / "sendmail.conf"
PFLOGSUMM = Path("/usr/sbin/pflogsumm")

# LOG-02: the common line, then "QID: from=" or "QID: to="
LOG02 = r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ [\w-]+\[\d+\]: %s: (from|to)="
PREFIX = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (?P<tag>[\w/-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")

@pytest.fixture(scope="module")
def sinks(mres):
    good = mres.sink()
    bad = mres.sink(rcpt_reply="550 5.1.1 <nobody@bad.test>: User unknown")
    return good, bad, free_port()


def routes(tern, good, bad, dead_port) -> str:
    path = tern.etc / "transport"
    path.write_text(
        f"ok.test smtp:[127.0.0.1]:{good.port}\n"
        f"bad.test smtp:[127.0.0.1]:{bad.port}\n"
        f"down.test smtp:[127.0.0.1]:{dead_port}\n"
    )
    path.chmod(0o644)
    return f"texthash:{path}"


def send(tern, rcpt: str, helo_verb: str = "EHLO", source: str = "127.0.0.1") -> str:
    """One message from sender@ok.test to rcpt; its queue ID."""
    with SmtpConn(tern.host, tern.port, source=source) as c:
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd(f"{helo_verb} client.example")[0].startswith("250")
        assert c.cmd("MAIL FROM:<sender@ok.test>")[0].startswith("250 ")
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0].startswith("250 ")
        final = c.data(
            f"From: sender@ok.test\r\nTo: {rcpt}\r\nMessage-ID: <{rcpt}.m@ok.test>\r\n"
            f"Subject: log format\r\n\r\nhello\r\n".encode()
        )
        m = REPLY_250_QUEUED.match(final[0])
        assert m, final
        c.cmd("QUIT")
        return m.group(1)


def refused_rcpt(tern) -> str:
    """RCPT TO an unknown local user: the 5xx reply (a NOQUEUE event)."""
    with SmtpConn(tern.host, tern.port) as c:
        assert c.greeting()[0].startswith("220 ")
        assert c.cmd("EHLO client.example")[0].startswith("250")
        assert c.cmd("MAIL FROM:<sender@ok.test>")[0].startswith("250 ")
        reply = c.cmd("RCPT TO:<nosuch@tern.test>")[0]
        assert reply.startswith("550"), reply
        c.cmd("QUIT")
        return reply


def event_lines(tern, qid: str):
    """(tag, message) of every line whose message starts with the queue ID
    (json: whose object has that queue_id)."""
    out = []
    for line in tern.log().splitlines():
        m = PREFIX.match(line)
        if not m:
            continue
        msg = m.group("msg")
        if msg.startswith(qid + ": ") or msg.startswith('{"queue_id":"%s"' % qid):
            out.append((m.group("tag"), msg, line))
    return out


def make_run(mres, sinks, fmt):
    """An instance in format fmt, its traffic sent; (tern, queue IDs)."""
    good, bad, dead = sinks
    tern = mres.tern(start=False, name=f"log-{fmt}", maillog_format=fmt,
                     syslog_name="sm-mta" if fmt == "sendmail" else "tern")
    tern.conf_edit(transport_maps=routes(tern, good, bad, dead))
    tern.start()
    ids = {
        "sent": send(tern, "alice@ok.test", helo_verb="HELO", source="127.0.0.5"),
        "deferred": send(tern, "carol@down.test"),
        "bounced": send(tern, "nobody@bad.test"),
    }
    refused_rcpt(tern)
    r = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), "dave@ok.test"],
                       input=b"Subject: local\n\nhi\n", capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # the deferred attempt, the bounce and its notice are all logged
    key = {"postfix": "status=deferred", "sendmail": "stat=Deferred: ",
           "json": '"status":"deferred"'}[fmt]
    wait_until(lambda: any(key in l[1] for l in event_lines(tern, ids["deferred"])), 20,
               "the deferred line")
    notice = {"postfix": "sender non-delivery notification: ", "sendmail": ": DSN: ",
              "json": '"event":"notice"'}[fmt]
    wait_until(lambda: any(notice in l[1] for l in event_lines(tern, ids["bounced"])), 20,
               "the bounce notice line")
    ids["local"] = wait_until(lambda: local_qid(tern, fmt), 20, "the local submission's line")
    sent = {"postfix": "status=sent", "sendmail": "stat=Sent", "json": '"status":"sent"'}[fmt]
    for what in ("sent", "local"):
        wait_until(lambda: any(sent in l[1] for l in event_lines(tern, ids[what])), 20,
                   f"the {what} message's delivery line")
    return tern, ids


@pytest.fixture(scope="module")
def postfix_run(mres, sinks):
    return make_run(mres, sinks, "postfix")


@pytest.fixture(scope="module")
def sendmail_run(mres, sinks):
    return make_run(mres, sinks, "sendmail")


@pytest.fixture(scope="module")
def json_run(mres, sinks):
    return make_run(mres, sinks, "json")


def local_qid(tern, fmt):
    for line in tern.log().splitlines():
        m = PREFIX.match(line)
        if not m:
            continue
        msg = m.group("msg")
        if fmt == "json" and '"proto":"local"' in msg and '"user":"root"' in msg:
            return json.loads(msg)["queue_id"]
        if fmt == "sendmail" and "relay=root@localhost" in msg:
            return msg.split(":")[0]
        if fmt == "postfix" and re.search(r": uid=0 from=<", msg):
            return msg.split(":")[0]
    return None


# ---- postfix: today's lines


POSTFIX_FROM = r"^(\w+): from=<([^>]*)>, size=(\d+), nrcpt=(\d+) \(queue active\)$"
POSTFIX_TO = (r"^(\w+): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=\d+, )?"
              r"(?:tls=[^,]+, )?delay=([\d.]+), dsn=(\d\.\d\.\d), status=(\w+) \((.*)\)$")


def parsed_postfix(tern, qid):
    found = {"from": [], "to": []}
    for _tag, msg, _line in event_lines(tern, qid):
        m = re.match(POSTFIX_FROM, msg)
        if m:
            found["from"].append(m.groups())
        m = re.match(POSTFIX_TO, msg)
        if m:
            found["to"].append(m.groups())
    return found


def test_postfix_format_lines_parse(postfix_run):
    tern, ids = postfix_run
    sent = parsed_postfix(tern, ids["sent"])
    assert sent["from"][0][1:4] == ("sender@ok.test", sent["from"][0][2], "1")
    assert [t[5] for t in sent["to"]] == ["sent"] and sent["to"][0][4] == "2.0.0"
    deferred = parsed_postfix(tern, ids["deferred"])
    assert deferred["to"][0][5] == "deferred" and deferred["to"][0][4].startswith("4.")
    bounced = parsed_postfix(tern, ids["bounced"])
    assert bounced["to"][0][5] == "bounced" and bounced["to"][0][4] == "5.1.1"
    assert re.search(rf"tern/qmgr\[\d+\]: {ids['bounced']}: sender non-delivery notification: "
                     r"\w+$", tern.log(), re.M)
    assert parsed_postfix(tern, ids["local"])["from"], "the local submission's from= line"
    assert re.search(r"tern/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: "
                     r"550 .*; from=<sender@ok\.test> to=<nosuch@tern\.test> proto=ESMTP "
                     r"helo=<client\.example>$", tern.log(), re.M)
    assert re.search(rf"tern/cleanup\[\d+\]: {ids['sent']}: client=unknown\[127\.0\.0\.5\], "
                     r"listener=smtpd$",
                     tern.log(), re.M)


# ---- sendmail (LOG-02/03/04, LOG-06, CLI-15)


SM_FROM = (r"^(\w+): from=<([^>]*)>, size=(\d+), class=0, nrcpts=(\d+), msgid=(<[^>]+>), "
           r"proto=(E?SMTP\w*), daemon=(\w+), relay=(?:(\S+) )?\[([\d.:a-fA-F]+)\]$")
SM_TO = (r"^(\w+): to=<([^>]*)>, delay=(\d\d:\d\d:\d\d), xdelay=(\d\d:\d\d:\d\d), mailer=(\w+), "
         r"pri=(\d+), (?:relay=(\S+) \[([\d.]+)\], )?dsn=(\d\.\d\.\d), stat=(.*)$")


def test_sendmail_format_log02_every_event_line(sendmail_run):
    tern, ids = sendmail_run
    for what in ("sent", "deferred", "bounced"):
        lines = [l[2] for l in event_lines(tern, ids[what])]
        hits = [l for l in lines if re.match(LOG02 % ids[what], l)]
        assert len(hits) >= 2, (what, lines)
        assert all(re.match(r"^.{15} \S+ sm-mta\[\d+\]: ", l) for l in hits), hits


def test_sendmail_format_log03_from_fields(sendmail_run):
    tern, ids = sendmail_run
    msgs = [l[1] for l in event_lines(tern, ids["sent"])]
    m = next(re.match(SM_FROM, x) for x in msgs if re.match(SM_FROM, x))
    assert m.group(2) == "sender@ok.test" and m.group(4) == "1"
    assert m.group(5) == "<alice@ok.test.m@ok.test>"
    assert (m.group(6), m.group(7), m.group(9)) == ("SMTP", "MTA", "127.0.0.5")  # HELO session
    line = next(x for x in msgs if "from=" in x)
    assert "proto=SMTP" in line and "daemon=MTA" in line and "relay=[127.0.0.5]" in line
    # EHLO gives ESMTP
    other = [l[1] for l in event_lines(tern, ids["deferred"]) if re.match(SM_FROM, l[1])]
    assert re.match(SM_FROM, other[0]).group(6) == "ESMTP"


def test_sendmail_format_log04_to_fields(sendmail_run):
    tern, ids = sendmail_run
    sent = [re.match(SM_TO, l[1]) for l in event_lines(tern, ids["sent"])]
    sent = [m for m in sent if m]
    assert sent and sent[0].group(5) == "esmtp" and sent[0].group(8) == "127.0.0.1"
    assert re.search(r"dsn=2\.0\.0, stat=Sent \(", sent[0].group(0))
    assert int(sent[0].group(6)) >= 30000  # pri: size + 30000 per recipient
    deferred = [l[1] for l in event_lines(tern, ids["deferred"]) if re.match(SM_TO, l[1])]
    assert re.search(r"dsn=4\.\d\.\d, stat=Deferred: ", deferred[0]), deferred
    bounced = [l[1] for l in event_lines(tern, ids["bounced"]) if re.match(SM_TO, l[1])]
    assert re.search(r"dsn=5\.1\.1, stat=.*User unknown", bounced[0]), bounced
    assert re.search(rf"sm-mta\[\d+\]: {ids['bounced']}: \w+: DSN: .*User unknown", tern.log())


def test_sendmail_format_refusal_is_a_ruleset_line(sendmail_run):
    tern, _ids = sendmail_run
    assert re.search(r"sm-mta\[\d+\]: NOQUEUE: ruleset=check_rcpt, arg1=<nosuch@tern\.test>, "
                     r"relay=\[127\.0\.0\.1\], reject=550 ", tern.log()), tern.log_tail()


def test_sendmail_format_local_submission_logs_as_sendmail(sendmail_run):
    tern, ids = sendmail_run
    lines = event_lines(tern, ids["local"])
    tags = [t for t, _m, _l in lines]
    assert "sendmail" in tags and "sm-mta" in tags, lines
    frm = next(m for t, m, _l in lines if t == "sendmail")
    assert re.match(rf"^{ids['local']}: from=<root@tern\.test>, size=\d+, class=0, nrcpts=1, "
                    r"msgid=<[^>]+>, relay=root@localhost$", frm), frm
    assert re.search(r"^.{15} \S+ sm-mta\[\d+\]: %s: to=<dave@ok\.test>, .*stat=Sent \("
                     % ids["local"], tern.log(), re.M)


def logwatch_filter() -> str:
    text = LOGWATCH_CONF.read_text()
    m = re.search(r'^\$sendmail_matchfilter = "(.*)"$', text, re.M | re.I)
    assert m, "conf/logwatch/sendmail.conf has no $sendmail_matchfilter"
    return m.group(1)


def test_sendmail_format_passes_logwatch(sendmail_run):
    """logwatch's sendmail service with *MultiService/*RemoveHeaders done as
    logwatch does them: every sm-mta/sendmail line is matched, the counts
    are right."""
    tern, ids = sendmail_run
    if not LOGWATCH_SENDMAIL.exists():
        pytest.fail("logwatch is not installed (scripts/setup.sh installs it)")
    lines = [PREFIX.match(l) for l in tern.log().splitlines()]
    body = "".join(m.group("msg") + "\n" for m in lines
                   if m and m.group("tag") in ("sm-mta", "sendmail"))
    env = dict(os.environ, LOGWATCH_DETAIL_LEVEL="10", PERL5LIB="/usr/share/logwatch/lib", sendmail_matchfilter=logwatch_filter())
    r = subprocess.run(["perl", str(LOGWATCH_SENDMAIL)], input=body, capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    unmatched = r.stdout.split("**Unmatched Entries**")[1] if "Unmatched" in r.stdout else ""
    # only warnings (the machine's own, such as sasldb's) are left for the admin to read
    left = [l.strip() for l in unmatched.splitlines() if l.strip()]
    assert all(l.startswith("warning: ") for l in left), r.stdout
    # 3 by SMTP, 1 local submission, 1 notice; 3 sent by esmtp
    assert re.search(r"Messages To Recipients:\s+5$", r.stdout, re.M), r.stdout
    assert re.search(r"^esmtp\s+3$", r.stdout, re.M), r.stdout
    deferred = r.stdout.split("Mail Deferred:")[1]
    assert "To: <carol@down.test>" in deferred.split("Total:")[0], r.stdout
    rejected = r.stdout.split("Mail Rejected:")[1]
    assert "<nobody@bad.test>" in rejected.split("Total:")[0], r.stdout
    assert "nosuch@tern.test" in r.stdout, r.stdout  # the check_rcpt refusal


# ---- json


def test_json_format_every_event_is_an_object(json_run):
    tern, ids = json_run
    events = {}
    for what, qid in ids.items():
        # event lines are objects; the others ("QID: removed") stay text
        objs = [json.loads(m) for _t, m, _l in event_lines(tern, qid) if m.startswith("{")]
        assert all(o["queue_id"] == qid for o in objs)
        events[what] = objs
    frm = next(o for o in events["sent"] if o["event"] == "from")
    assert (frm["from"], frm["nrcpts"], frm["proto"], frm["client_addr"]) == (
        "sender@ok.test", 1, "SMTP", "127.0.0.5")
    assert frm["msgid"] == "<alice@ok.test.m@ok.test>" and frm["size"] > 0
    sent = next(o for o in events["sent"] if o["event"] == "to")
    assert (sent["to"], sent["status"], sent["dsn"], sent["mailer"]) == (
        "alice@ok.test", "sent", "2.0.0", "esmtp")
    assert sent["delay"] >= 0 and sent["reason"].startswith("250")
    deferred = [o for o in events["deferred"] if o["event"] == "to"]
    assert deferred[0]["status"] == "deferred" and deferred[0]["dsn"].startswith("4.")
    bounced = [o for o in events["bounced"] if o["event"] == "to"]
    assert bounced[0]["status"] == "bounced" and bounced[0]["dsn"] == "5.1.1"
    notice = next(o for o in events["bounced"] if o["event"] == "notice")
    assert notice["kind"] == "non-delivery" and notice["notify"] == "sender"
    rejects = [json.loads(m.group("msg")) for m in map(PREFIX.match, tern.log().splitlines())
               if m and m.group("msg").startswith('{"queue_id":"NOQUEUE"')]
    assert [(o["event"], o["stage"], o["to"], o["reply"][:3]) for o in rejects] == [
        ("reject", "RCPT", "nosuch@tern.test", "550")]
    local = next(o for o in events["local"] if o["event"] == "from")
    assert local["proto"] == "local" and local["user"] == "root"


# ---- pflogsumm on the postfix format


PFLOGSUMM_ADAPTER = ROOT / "conf" / "pflogsumm-tern.sed"


def test_postfix_format_counts_in_pflogsumm(postfix_run):
    tern, ids = postfix_run
    if not PFLOGSUMM.exists():
        pytest.fail("pflogsumm is not installed (scripts/setup.sh installs it)")
    adapted = subprocess.run(["sed", "-f", str(PFLOGSUMM_ADAPTER), str(tern.maillog)],
                             capture_output=True, text=True, check=True).stdout
    r = subprocess.run([str(PFLOGSUMM), "--syslog-name=tern"], input=adapted,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    received = int(re.search(r"^\s*(\d+)\s+received$", r.stdout, re.M).group(1))
    delivered = int(re.search(r"^\s*(\d+)\s+delivered$", r.stdout, re.M).group(1))
    deferred = int(re.search(r"^\s*(\d+)\s+deferred", r.stdout, re.M).group(1))
    bounced = int(re.search(r"^\s*(\d+)\s+bounced$", r.stdout, re.M).group(1))
    # in: 3 by SMTP, 1 local, 1 notice; out: alice, dave, the notice to sender@ok.test
    assert received == 5, r.stdout
    assert delivered == 3, r.stdout
    assert deferred >= 1 and bounced == 1, r.stdout
