"""Privilege separation (DESIGN §3): every service but master runs as
mail_owner with no supplementary groups; started by an ordinary user, every
process runs as that user and the log says so."""

import os
import pwd
import subprocess

import pytest

from ternlib import TERN, make_message, wait_until

SERVICES = ("smtpd", "cleanup", "qmgr", "smtp", "lmtp", "anvil", "proxymap")


def uids_or_none(pid):
    """The uids of a process, or None when it has just gone."""
    try:
        return ids(pid)[0]
    except FileNotFoundError:
        return None


def ids(pid):
    """(uids, gids, groups) of a process from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return ([int(x) for x in fields["Uid"]], [int(x) for x in fields["Gid"]],
            [int(x) for x in fields.get("Groups", [])])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start tern as root")
def test_services_run_as_mail_owner_and_master_as_root(res):
    t = res.tern()
    tern = pwd.getpwnam("tern")
    master = t.master_pid()
    assert ids(master)[0] == [0, 0, 0, 0]

    def all_dropped():  # a service drops right after its set-up; give it time
        pids = [p for n in SERVICES for p in t.service_pids(n)]
        return pids and all(uids_or_none(p) == [tern.pw_uid] * 4 for p in pids)

    wait_until(all_dropped, 10, "every service to drop to mail_owner")
    for name in SERVICES:
        pids = t.service_pids(name)
        assert pids, f"no tern-{name} process"
        for pid in pids:
            uids, gids, groups = ids(pid)
            assert uids == [tern.pw_uid] * 4, f"tern-{name} uids {uids}"
            assert gids == [tern.pw_gid] * 4, f"tern-{name} gids {gids}"
            assert groups == [tern.pw_gid], f"tern-{name} groups {groups}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_started_by_an_ordinary_user_everything_runs_as_that_user(res, tmp_path):
    nobody = pwd.getpwnam("nobody")
    sink = res.sink()
    t = res.tern(start=False, mail_owner="tern", relayhost=sink.hostport)
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(t.dir)], check=True)
    log = open(t.stderr_path, "ab")
    t.proc = subprocess.Popen(
        ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
         str(TERN), "-c", str(t.etc), "start", "-f"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    t._stderr_file = log
    t.wait_ready()
    def all_nobody():
        pids = [p for n in SERVICES for p in t.service_pids(n)]
        return len(pids) >= len(SERVICES) and all(
            uids_or_none(p) == [nobody.pw_uid] * 4 for p in pids)

    wait_until(all_nobody, 10, "every service to run as nobody")
    for pid in [t.master_pid()] + [p for n in SERVICES for p in t.service_pids(n)]:
        assert ids(pid)[0] == [nobody.pw_uid] * 4
    t.wait_log(r"not started as root: every service runs as uid %d" % nobody.pw_uid)
    # and it still takes and relays mail
    t.send(make_message(body="from nobody's tern\r\n"), rcpts=("u@far.test",))
    sink.wait_for(b"from nobody's tern")
