"""The remote-server fixtures of remoteutil.py (issue 14): each real server
starts on a free loopback port, answers a real query, restarts on the same
port with its data, and stops leaving no process; the hung LDAP server
accepts and never answers.  Start-up times are printed (pytest -s)."""

import socket
import subprocess
import time

import ldap
import pytest

from remoteutil import (  # noqa: F401 (fixtures)
    LDAP_SUFFIX,
    HungLdap,
    Redis,
    Slapd,
    hung_ldap,
    postgres,
    redis,
    slapd_factory,
    start_remote,
)
from ternlib import proc_cmdline

PEOPLE = """dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=joe,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: posixAccount
uid: joe
cn: Joe Doe
sn: Doe
uidNumber: 1001
gidNumber: 1001
homeDirectory: /home/joe
mail: joe@example.test
"""


def report(server, what):
    print(f"\n{type(server).__name__} {what}: {server.startup:.3f} s")


def assert_gone(server, port):
    """No process left from the server, and its port is free again."""
    assert server.live_pids() == []
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_slapd_serves_ldif_and_changes_and_restarts(slapd_factory):
    directory = slapd_factory(PEOPLE)
    report(directory, "start")
    assert "mail: joe@example.test" in directory.search("(uid=joe)", "mail")
    directory.add("dn: uid=ann,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\n"
             "uid: ann\ncn: Ann\nsn: A\nmail: ann@example.test\n")
    directory.modify("dn: uid=joe,ou=people,dc=example,dc=test\nchangetype: modify\n"
                "replace: mail\nmail: joe2@example.test\n")
    port = directory.port
    directory.restart()
    report(directory, "restart")
    assert directory.port == port
    assert "mail: joe2@example.test" in directory.search("(uid=joe)", "mail")
    assert "uid=ann," in directory.search("(mail=ann@example.test)", "dn")
    directory.delete("uid=ann,ou=people,dc=example,dc=test")
    assert directory.search("(uid=ann)") == ""
    directory.stop()
    assert_gone(directory, port)


def test_slapd_answers_on_ldapi(slapd_factory):
    directory = slapd_factory(PEOPLE)
    out = subprocess.run(
        ["ldapsearch", "-LLL", "-x", "-H", directory.ldapi_url, "-b", LDAP_SUFFIX, "(uid=joe)", "cn"],
        capture_output=True, text=True, timeout=10,
    )
    assert out.returncode == 0, out.stderr
    assert "cn: Joe Doe" in out.stdout


def test_hung_ldap_accepts_and_never_answers(hung_ldap):
    report(hung_ldap, "start")
    conn = ldap.initialize(hung_ldap.url)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 1.0)
    conn.set_option(ldap.OPT_TIMEOUT, 1.0)
    t0 = time.monotonic()
    with pytest.raises(ldap.TIMEOUT):  # connected, then no reply: a timeout, not a refusal
        conn.simple_bind_s("cn=admin,dc=example,dc=test", "x")
    assert time.monotonic() - t0 >= 0.9
    assert hung_ldap.connections == 1
    assert hung_ldap.received > 0  # the bind request arrived, no reply went back


def test_postgres_answers_and_restarts(postgres):
    report(postgres, "start (initdb included)")
    postgres.sql_db("CREATE TABLE aliases (k text PRIMARY KEY, v text);"
                    "ALTER TABLE aliases OWNER TO tern")
    postgres.sql("INSERT INTO aliases VALUES ('joe@example.test', 'joe@box.test')", as_user=True)
    port = postgres.port
    postgres.restart()
    report(postgres, "restart")
    rows = postgres.sql("SELECT v FROM aliases WHERE k = 'joe@example.test'", as_user=True)
    assert rows == [["joe@box.test"]]
    assert (postgres.socket_dir / f".s.PGSQL.{port}").exists()
    pids = postgres.live_pids()
    assert len(pids) > 1  # the postmaster and its background workers
    postgres.stop()
    assert_gone(postgres, port)
    assert not any(str(postgres.data) in " ".join(proc_cmdline(p)) for p in pids)


def test_redis_answers_and_survives_kill_9(redis):
    report(redis, "start")
    assert redis.cmd("PING") == "PONG"
    assert redis.cmd("INCR", "rate:joe") == "1"
    assert redis.cmd("INCR", "rate:joe") == "2"
    port = redis.port
    redis.kill()
    assert_gone(redis, port)
    redis.start()
    report(redis, "restart after kill -9")
    assert redis.port == port
    assert redis.cmd("GET", "rate:joe") == ""  # no persistence: the count is gone
    assert redis.cmd("INCR", "rate:joe") == "1"
    redis.stop()
    assert_gone(redis, port)


def test_servers_are_stopped_by_resources_on_failure(res):
    """What res does after a failing test: every server stopped, directories gone."""
    servers = [start_remote(res, cls(res.base)) for cls in (Slapd, Redis, HungLdap)]
    pids = [p for s in servers[:2] for p in s.live_pids()]
    assert pids
    res.close(keep=True)
    res.others.clear()
    for s in servers[:2]:
        assert s.live_pids() == [] and not s.dir.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", servers[2].port)) != 0
