"""tern-local: mbox, Maildir, aliases (lists, pipes, files, :include:, owner-),
.forward, command exit codes, loops and unknown users.

Runs as root: every test creates real users with useradd (removed afterwards),
and checks that each file written belongs to the right user.
"""

import os
import pwd
import re
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from ternlib import make_message, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (useradd, uid switches)")


class LocalUser:
    """A real Unix user with a home directory, deleted by remove()."""

    def __init__(self, base: Path, prefix: str = "tl"):
        self.name = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.home = base / f"home-{self.name}"
        subprocess.run(
            ["useradd", "-m", "-d", str(self.home), "-s", "/bin/sh", self.name],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def write_owned(self, rel: str, text: str, mode: int = 0o644) -> Path:
        p = self.home / rel
        p.write_text(text)
        os.chown(p, self.uid, self.gid)
        os.chmod(p, mode)
        return p

    def remove(self) -> None:
        subprocess.run(["userdel", "-r", "-f", self.name], capture_output=True)


@pytest.fixture
def users(it_base):
    made = []

    def make(prefix: str = "tl") -> LocalUser:
        u = LocalUser(it_base, prefix)
        made.append(u)
        return u

    yield make
    for u in made:
        u.remove()


def local_tern(res, aliases: str = "", **params):
    """A tern whose local domain tern.test delivers into D/mail, aliases from
    a texthash: file D/etc/aliases (read by every delivery)."""
    t = res.tern(start=False, **params)
    spool = t.spool
    alias_file = t.aliases
    alias_file.write_text(aliases)
    defaults = {
        "mail_spool_directory": str(spool),
        "alias_maps": f"texthash:{alias_file}",
    }
    defaults.update({k: v for k, v in params.items() if k in defaults})
    t.conf_edit(**defaults)
    t.start()
    t.spool = spool
    return t


def send_to(t, rcpt: str, body: str = "hello\r\n", sender: str = "sender@example.test",
            subject: str = "local test") -> str:
    return t.send(make_message(subject=subject, body=body, to=rcpt, sender=sender),
                  sender=sender, rcpts=(rcpt,))


def wait_status(t, qid: str, to: str, status: str = "sent", timeout: float = 20.0):
    rx = rf"{qid}: to=<{re.escape(to)}>.*relay=local.*status={status} \((.*)\)$"
    return t.wait_log(rx, timeout=timeout)


def recorder_script(path: Path, out_dir: Path, exit_code: int = 0, message: str = "") -> Path:
    """A program that records its uid, gid, argv, environment and stdin."""
    path.write_text(
        "#!/bin/sh\n"
        f'd={out_dir}/$$\n'
        'mkdir -p "$d"\n'
        'id -u > "$d/uid"; id -g > "$d/gid"\n'
        'printf "%s\\n" "$@" > "$d/argv"\n'
        'env > "$d/env"\n'
        'cat > "$d/stdin"\n'
        + (f'echo "{message}" >&2\n' if message else "")
        + f"exit {exit_code}\n"
    )
    os.chmod(path, 0o755)
    return path


def recorded(out_dir: Path, count: int = 1, timeout: float = 20.0):
    def done():
        runs = [d for d in out_dir.iterdir() if (d / "stdin").exists()] if out_dir.exists() else []
        return runs if len(runs) >= count else None

    runs = wait_until(done, timeout, f"{count} recorded program run(s) in {out_dir}")
    wait_until(lambda: all((d / "stdin").stat().st_size > 0 for d in runs), 5, "stdin written")
    return runs


def shared_dir(base: Path, name: str) -> Path:
    d = base / name
    d.mkdir()
    os.chmod(d, 0o1777)
    return d


# ------------------------------------------------------------------ mailboxes


def test_mbox_delivery_formats_and_owns_the_mailbox(res, users):
    u = users()
    t = local_tern(res)
    qid = send_to(t, f"{u.name}@tern.test", body="From the start\r\nline two\r\n")
    wait_status(t, qid, f"{u.name}@tern.test")
    t.wait_queue_empty()
    box = t.spool / u.name
    st = box.stat()
    assert st.st_uid == u.uid
    assert stat.S_IMODE(st.st_mode) == 0o600
    text = box.read_text()
    assert re.match(r"^From sender@example\.test \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", text)
    assert "Return-Path: <sender@example.test>\n" in text
    assert f"Delivered-To: {u.name}@tern.test\n" in text
    assert "\n>From the start\n" in text
    assert "\r" not in text
    assert text.endswith("line two\n\n")
    assert not (t.spool / f"{u.name}.lock").exists()


def test_mbox_concurrent_deliveries_stay_intact(res, users):
    u = users()
    t = local_tern(res)
    for i in range(10):
        send_to(t, f"{u.name}@tern.test", subject=f"n{i}")
    t.wait_queue_empty(timeout=60)
    text = (t.spool / u.name).read_text()
    assert len(re.findall(r"^From ", text, re.M)) == 10
    for i in range(10):
        assert f"Subject: n{i}\n" in text


def test_mbox_waits_for_a_reader_holding_the_locks(res, users):
    import fcntl
    import time

    u = users()
    t = local_tern(res)
    box = t.spool / u.name
    box.touch(mode=0o600)
    os.chown(box, u.uid, u.gid)
    lock = t.spool / f"{u.name}.lock"
    lock.write_text("reader\n")
    with open(box, "r+") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        send_to(t, f"{u.name}@tern.test")
        time.sleep(2)
        assert box.stat().st_size == 0  # nothing written while the reader holds the locks
        lock.unlink()
        time.sleep(1)
        assert box.stat().st_size == 0  # the fcntl lock still holds it off
        fcntl.lockf(f, fcntl.LOCK_UN)
    t.wait_queue_empty()
    assert box.read_text().startswith("From sender@example.test ")
    assert not lock.exists()


def test_null_sender_is_mailer_daemon_in_from_line(res, users):
    u = users()
    t = local_tern(res)
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<>")
        assert c.cmd(f"RCPT TO:<{u.name}@tern.test>")[0].startswith("250")
        assert c.data(make_message(to=f"{u.name}@tern.test"))[0].startswith("250")
    t.wait_queue_empty()
    text = (t.spool / u.name).read_text()
    assert text.startswith("From MAILER-DAEMON ")
    assert "Return-Path: <>\n" in text


def test_maildir_delivery(res, users):
    u = users()
    t = local_tern(res, home_mailbox="Maildir/")
    qid = send_to(t, f"{u.name}@tern.test")
    m = wait_status(t, qid, f"{u.name}@tern.test")
    assert m.group(1) == "delivered to maildir"
    new = list((u.home / "Maildir" / "new").iterdir())
    assert len(new) == 1
    assert re.match(r"^\d+\.M\d{6}P\d+_\d+\.", new[0].name)  # sec.MusecPpid_seq.host
    assert new[0].stat().st_uid == u.uid
    for sub in ("tmp", "new", "cur"):
        assert (u.home / "Maildir" / sub).stat().st_uid == u.uid
    text = new[0].read_text()
    assert text.startswith("Return-Path: <sender@example.test>\nDelivered-To: ")
    assert not text.startswith("From ")
    assert list((u.home / "Maildir" / "tmp").iterdir()) == []


# ------------------------------------------------------------------ aliases


def test_alias_list_with_pipe_and_file(res, users, it_base):
    a, b = users(), users()
    out = shared_dir(it_base, f"rec-{uuid.uuid4().hex[:6]}")
    prog = recorder_script(out.parent / f"{out.name}.sh", out)
    archive_dir = shared_dir(it_base, f"arch-{uuid.uuid4().hex[:6]}")
    archive = archive_dir / "team.mbox"
    aliases = (
        f"team: {a.name}, {b.name},\n"
        f'  "|{prog} john@elsewhere.com", {archive}\n'
        f"Mixed: {a.name}\n"
    )
    t = local_tern(res, aliases)
    qid = send_to(t, "team@tern.test")
    for who in (a, b):
        wait_status(t, qid, f"{who.name}@tern.test")
    t.wait_queue_empty()
    for who in (a, b):
        assert (t.spool / who.name).stat().st_uid == who.uid
    run = recorded(out)[0]
    nobody = pwd.getpwnam("nobody")
    assert int((run / "uid").read_text()) == nobody.pw_uid
    assert (run / "argv").read_text() == "john@elsewhere.com\n"
    stdin = (run / "stdin").read_text()
    assert re.match(r"^From sender@example\.test \w{3} \w{3} ", stdin)
    env = (run / "env").read_text()
    assert "SENDER=sender@example.test\n" in env
    assert "RECIPIENT=team@tern.test\n" in env
    assert archive.stat().st_uid == nobody.pw_uid
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert len(re.findall(r"^From ", archive.read_text(), re.M)) == 1
    # alias names are case-insensitive
    qid = send_to(t, "MIXED@tern.test")
    wait_status(t, qid, f"{a.name}@tern.test")


def test_alias_duplicates_removed_and_nested(res, users):
    u = users()
    aliases = f"x: {u.name}, y\ny: {u.name}, z\nz: {u.name}\n"
    t = local_tern(res, aliases)
    send_to(t, "x@tern.test")
    t.wait_queue_empty()
    assert len(re.findall(r"^From ", (t.spool / u.name).read_text(), re.M)) == 1


def test_include_read_at_delivery_time_and_owner(res, users, it_base):
    a, b, owner = users(), users(), users()
    inc = it_base / f"list-{uuid.uuid4().hex[:6]}.txt"
    inc.write_text(f"# members\n{a.name}\n")
    aliases = f"lst: :include:{inc}\nowner-lst: {owner.name}\n"
    t = local_tern(res, aliases)
    qid = send_to(t, "lst@tern.test")
    wait_status(t, qid, f"{a.name}@tern.test")
    inc.write_text(f"# members\n{a.name}\n{b.name}\n")
    qid = send_to(t, "lst@tern.test")
    wait_status(t, qid, f"{b.name}@tern.test")
    t.wait_queue_empty()
    # owner-lst exists: the list's deliveries carry owner-lst as sender
    assert "Return-Path: <owner-lst@tern.test>" in (t.spool / b.name).read_text()


def test_owner_alias_is_sender_of_forwarded_copies(res, users):
    sink = res.sink()
    owner = users()
    aliases = f"lst: bad@sink.test\nowner-lst: {owner.name}\n"
    t = local_tern(res, aliases, relayhost=sink.hostport)
    qid = send_to(t, "lst@tern.test")
    m = wait_status(t, qid, "bad@sink.test")
    assert m.group(1).startswith("forwarded as ")
    msg = sink.wait_count(1)[0]
    assert msg.mail_from == "owner-lst@tern.test"
    assert msg.rcpt_tos == ["bad@sink.test"]
    assert msg.header("Delivered-To") == "lst@tern.test"


def test_alias_loop_bounces(res):
    t = local_tern(res, "a: b\nb: a\n", local_recipient_maps="")
    qid = send_to(t, "a@tern.test")
    m = wait_status(t, qid, "a@tern.test", "bounced")
    assert "loop" in m.group(1)
    t.wait_queue_empty()


def test_delivered_to_loop_bounces(res, users):
    u = users()
    t = local_tern(res)
    body = make_message(to=f"{u.name}@tern.test", headers={"Delivered-To": f"{u.name}@tern.test"})
    qid = t.send(body, rcpts=(f"{u.name}@tern.test",))
    m = wait_status(t, qid, f"{u.name}@tern.test", "bounced")
    assert "mail forwarding loop" in m.group(1)
    assert not (t.spool / u.name).exists()


def test_unknown_user_bounces_5_1_1(res):
    t = local_tern(res, local_recipient_maps="")
    qid = send_to(t, "nosuchuser@tern.test")
    m = t.wait_log(rf"{qid}: to=<nosuchuser@tern.test>, relay=local.*dsn=5\.1\.1, status=bounced.*")
    assert "unknown user" in m.group(0)


def test_luser_relay_forwards_unknown_users(res):
    sink = res.sink()
    t = local_tern(res, relayhost=sink.hostport, luser_relay="catchall@sink.test",
                   local_recipient_maps="")
    qid = send_to(t, "ghost@tern.test")
    wait_status(t, qid, "catchall@sink.test")
    assert sink.wait_count(1)[0].rcpt_tos == ["catchall@sink.test"]


def test_luser_relay_takes_unknown_users_at_rcpt(res):
    """SPEC ROUTE-06: with luser_relay set, an unknown local user is
    accepted at RCPT although local_recipient_maps does not know it."""
    sink = res.sink()
    t = local_tern(res, relayhost=sink.hostport, luser_relay="catchall@sink.test")
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<ghost@tern.test>")[0].startswith("250 ")


# ------------------------------------------------------------------ commands


@pytest.mark.parametrize("code,status,dsn", [(75, "deferred", "4.3.0"), (1, "bounced", "5.3.0")])
def test_command_exit_codes(res, it_base, code, status, dsn):
    out = shared_dir(it_base, f"rec-{uuid.uuid4().hex[:6]}")
    prog = recorder_script(out.parent / f"{out.name}.sh", out, code, "Hostile address")
    t = local_tern(res, f'prog: "|{prog}"\n')
    qid = send_to(t, "prog@tern.test")
    m = wait_status(t, qid, "prog@tern.test", status)
    assert f"dsn={dsn}" in m.group(0)
    assert "Hostile address" in m.group(1)


def test_command_time_limit(res, it_base):
    t = local_tern(res, 'slow: "|/bin/sleep 30"\n', command_time_limit="2s")
    qid = send_to(t, "slow@tern.test")
    m = wait_status(t, qid, "slow@tern.test", "deferred", timeout=15)
    assert "time limit" in m.group(1)


def test_commands_refused_when_not_allowed(res, it_base):
    flag = it_base / f"flag-{uuid.uuid4().hex[:6]}"
    t = local_tern(res, f'evil: "|/bin/touch {flag}"\n', allow_mail_to_commands="forward")
    qid = send_to(t, "evil@tern.test")
    m = wait_status(t, qid, "evil@tern.test", "bounced")
    assert "restricted" in m.group(1)
    assert not flag.exists()


def test_mailbox_command_runs_as_user(res, users, it_base):
    u = users()
    out = shared_dir(it_base, f"rec-{uuid.uuid4().hex[:6]}")
    prog = recorder_script(out.parent / f"{out.name}.sh", out)
    t = local_tern(res, mailbox_command=f'{prog} -a "$EXTENSION"')
    qid = send_to(t, f"{u.name}+box@tern.test")
    m = wait_status(t, qid, f"{u.name}+box@tern.test")
    assert m.group(1).startswith("delivered to command: ")
    run = recorded(out)[0]
    assert int((run / "uid").read_text()) == u.uid
    assert (run / "argv").read_text() == "-a\nbox\n"
    env = (run / "env").read_text()
    assert f"HOME={u.home}\n" in env and f"USER={u.name}\n" in env
    assert "EXTENSION=box\n" in env


def test_procmail_as_mailbox_command(res, users):
    u = users()
    (u.home / "Mail").mkdir()
    os.chown(u.home / "Mail", u.uid, u.gid)
    u.write_owned(".procmailrc", "MAILDIR=$HOME/Mail\n:0:\n* ^Subject: .*sort-me\ntest\n")
    t = local_tern(res, mailbox_command='/usr/bin/procmail -a "$EXTENSION"')
    qid = send_to(t, f"{u.name}@tern.test", subject="please sort-me")
    wait_status(t, qid, f"{u.name}@tern.test")
    box = u.home / "Mail" / "test"
    assert box.stat().st_uid == u.uid
    text = box.read_text()
    assert text.startswith("From sender@example.test ")
    assert "Subject: please sort-me" in text


# ------------------------------------------------------------------ .forward


def test_forward_mailbox_and_command_as_user(res, users, it_base):
    u = users()
    out = shared_dir(it_base, f"rec-{uuid.uuid4().hex[:6]}")
    prog = recorder_script(out.parent / f"{out.name}.sh", out)
    u.write_owned(".forward", f'\\{u.name}, "|{prog} fwd"\n')
    t = local_tern(res)
    send_to(t, f"{u.name}@tern.test")
    t.wait_queue_empty()
    run = recorded(out)[0]
    assert int((run / "uid").read_text()) == u.uid
    assert (run / "argv").read_text() == "fwd\n"
    assert (t.spool / u.name).stat().st_uid == u.uid


def test_forward_to_remote_address(res, users):
    sink = res.sink()
    u = users()
    u.write_owned(".forward", "away@sink.test\n")
    t = local_tern(res, relayhost=sink.hostport)
    qid = send_to(t, f"{u.name}@tern.test")
    wait_status(t, qid, "away@sink.test")
    msg = sink.wait_count(1)[0]
    assert msg.rcpt_tos == ["away@sink.test"]
    assert msg.mail_from == "sender@example.test"
    assert not (t.spool / u.name).exists()


def test_group_writable_forward_is_ignored(res, users):
    u = users()
    u.write_owned(".forward", "away@sink.test\n", mode=0o664)
    t = local_tern(res)
    qid = send_to(t, f"{u.name}@tern.test")
    m = wait_status(t, qid, f"{u.name}@tern.test")
    assert m.group(1) == "delivered to mailbox"
    assert "ignoring" in t.log()


# ------------------------------------------------------------------ smtpd


def test_unknown_local_user_rejected_at_rcpt(res, users):
    u = users()
    t = local_tern(res, "list: root\n")
    with t.connect() as c:
        c.greeting()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<sender@example.test>")
        r = c.cmd("RCPT TO:<nosuchuser@tern.test>")
        assert r[0] == (
            "550 5.1.1 <nosuchuser@tern.test>: Recipient address rejected: "
            "User unknown in local recipient table"
        )
        assert c.cmd(f"RCPT TO:<{u.name}+ext@tern.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<List@tern.test>")[0].startswith("250")
        assert c.cmd("RCPT TO:<someone@elsewhere.test>")[0].startswith("250")
