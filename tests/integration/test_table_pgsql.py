"""pgsql: tables (issue 14, SPEC MAP-05) looked up directly with `tern map
-q` against a throwaway PostgreSQL cluster (remoteutil.Postgres, one per
module): found, not found, several rows joined, result_format, the domain
restriction, password authentication from a 0640 .cf, quotes in the key that
cannot change the query, a stopped server (tempfail, exit 75, never "not
found") and failover from a dead first host to a live one."""

import grp
import os
import subprocess
import time

import pytest

from remoteutil import PG_DB, PG_PASSWORD, PG_USER, HungLdap, Postgres, start_remote
from ternlib import TERN, free_port, tool_env

EX_TEMPFAIL = 75

ROWS = [
    ("joe@example.com", "joe@dest.test"),
    ("list@example.com", "a@dest.test"),
    ("list@example.com", "b@dest.test"),
    ("o'brien@example.com", "obrien@dest.test"),
    ("nothing@example.com", None),
    ("ann@other.test", "ann@dest.test"),
]


@pytest.fixture(scope="module")
def pg(mres):
    server = start_remote(mres, Postgres(mres.base))
    server.sql("CREATE TABLE aliases (address text, target text)", db=PG_DB, as_user=True)
    values = ", ".join(
        "({}, {})".format(sql_quote(a), "NULL" if t is None else sql_quote(t)) for a, t in ROWS
    )
    server.sql(f"INSERT INTO aliases VALUES {values}", db=PG_DB, as_user=True)
    return server


def sql_quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def write_cf(directory, name, pg, hosts=None, **extra):
    settings = {
        "hosts": hosts or f"127.0.0.1:{pg.port}",
        "dbname": PG_DB,
        "user": PG_USER,
        "password": PG_PASSWORD,
        "query": "SELECT target FROM aliases WHERE address = '%s' ORDER BY target",
        "timeout": "3",
    }
    settings.update(extra)
    path = directory / name
    path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    os.chmod(path, 0o640)
    return path


def query(key, cf):
    start = time.monotonic()
    r = subprocess.run([str(TERN), "map", "-q", key, f"pgsql:{cf}"], capture_output=True,
                       text=True, timeout=30, env=tool_env())
    r.elapsed = time.monotonic() - start
    return r


@pytest.fixture(scope="module")
def cf(pg, tmp_path_factory):
    return write_cf(tmp_path_factory.mktemp("pgcf"), "aliases.cf", pg)


def test_found_with_password_auth_from_0640_cf(cf):
    assert oct(cf.stat().st_mode & 0o777) == "0o640"
    r = query("joe@example.com", cf)
    assert (r.returncode, r.stdout) == (0, "joe@dest.test\n"), r.stderr


def test_key_is_folded_and_not_found_is_exit_1(cf):
    assert query("JOE@Example.COM", cf).stdout == "joe@dest.test\n"
    r = query("nobody@example.com", cf)
    assert (r.returncode, r.stdout) == (1, ""), r.stderr


def test_several_rows_joined_and_null_is_not_found(cf):
    assert query("list@example.com", cf).stdout == "a@dest.test,b@dest.test\n"
    assert query("nothing@example.com", cf).returncode == 1


def test_result_format_and_expansion_limit(pg, tmp_path):
    fmt = write_cf(tmp_path, "fmt.cf", pg, result_format="smtp:[%d] for %U")
    assert query("joe@example.com", fmt).stdout == "smtp:[dest.test] for joe\n"
    limited = write_cf(tmp_path, "limit.cf", pg, expansion_limit="1")
    assert query("joe@example.com", limited).returncode == 0
    r = query("list@example.com", limited)
    assert (r.returncode, r.stdout) == (EX_TEMPFAIL, "")
    assert "expansion_limit" in r.stderr


def test_domain_restriction_skips_other_domains(pg, tmp_path):
    restricted = write_cf(tmp_path, "dom.cf", pg, domain="example.com")
    assert query("joe@example.com", restricted).returncode == 0
    assert query("ann@other.test", restricted).returncode == 1
    assert query("ann@other.test", write_cf(tmp_path, "all.cf", pg)).returncode == 0


def test_quote_in_key_finds_only_the_exact_row(cf):
    assert query("o'brien@example.com", cf).stdout == "obrien@dest.test\n"
    for hostile in ("x' OR '1'='1", "x' OR '1'='1@example.com", "joe@example.com' --",
                    "o\\'brien@example.com"):
        r = query(hostile, cf)
        assert (r.returncode, r.stdout) == (1, ""), (hostile, r.stderr)


def test_world_readable_cf_with_password_is_refused(pg, tmp_path):
    path = write_cf(tmp_path, "open.cf", pg)
    os.chmod(path, 0o644)
    r = query("joe@example.com", path)
    assert r.returncode == EX_TEMPFAIL and "chmod o-r" in r.stderr


def test_wrong_password_is_tempfail_without_the_password(pg, tmp_path):
    bad = write_cf(tmp_path, "bad.cf", pg, password="not-the-pw-4711")
    r = query("joe@example.com", bad)
    assert (r.returncode, r.stdout) == (EX_TEMPFAIL, "")
    assert str(bad) in r.stderr and "not-the-pw-4711" not in r.stderr


def test_failover_from_dead_first_host(pg, tmp_path):
    dead = free_port()
    both = write_cf(tmp_path, "fo.cf", pg, hosts=f"127.0.0.1:{dead}, 127.0.0.1:{pg.port}")
    r = query("joe@example.com", both)
    assert (r.returncode, r.stdout) == (0, "joe@dest.test\n"), r.stderr


def test_hung_first_host_times_out_then_fails_over(pg, mres, tmp_path):
    hung = start_remote(mres, HungLdap(mres.base))  # accepts, never answers
    cf = write_cf(tmp_path, "hung.cf", pg, hosts=f"127.0.0.1:{hung.port}, 127.0.0.1:{pg.port}",
                  timeout="2")
    r = query("joe@example.com", cf)
    assert (r.returncode, r.stdout) == (0, "joe@dest.test\n"), r.stderr
    assert hung.connections == 1 and 1.5 < r.elapsed < 5
    alone = write_cf(tmp_path, "hung1.cf", pg, hosts=f"127.0.0.1:{hung.port}", timeout="2")
    r = query("joe@example.com", alone)
    assert (r.returncode, r.stdout) == (EX_TEMPFAIL, ""), r.stderr
    assert r.elapsed < 5


def test_server_stopped_is_tempfail_not_notfound(pg, cf):
    pg.stop()
    try:
        r = query("joe@example.com", cf)
        assert (r.returncode, r.stdout) == (EX_TEMPFAIL, ""), r.stderr
        assert f"pgsql:{cf}" in r.stderr and PG_PASSWORD not in r.stderr
        assert r.elapsed < 5
    finally:
        pg.start()
    assert query("joe@example.com", cf).returncode == 0


def test_invalid_utf8_key_is_tempfail_without_a_reconnect(pg, mres, tmp_path):
    """A statement error (a client-supplied key the server cannot take) is a
    temporary failure on the kept connection: never a reconnect, never the
    next host (here a host that would hang)."""
    hung = start_remote(mres, HungLdap(mres.base))
    cf = write_cf(tmp_path, "utf8.cf", pg, hosts=f"127.0.0.1:{pg.port}, 127.0.0.1:{hung.port}",
                  timeout="2")
    start = time.monotonic()
    r = subprocess.run([str(TERN), "map", "-q", b"bad\xff\xfe@example.com", f"pgsql:{cf}"],
                       capture_output=True, timeout=30, env=tool_env())
    assert (r.returncode, r.stdout) == (EX_TEMPFAIL, b""), r.stderr
    assert hung.connections == 0, "the statement error did not move to the next host"
    assert time.monotonic() - start < 1.5
    assert query("joe@example.com", cf).stdout == "joe@dest.test\n"


def test_a_value_with_cr_lf_is_a_temporary_failure_at_rcpt(pg, res):
    """tern-proxymap refuses a value with control bytes for every table type:
    an SQL value "REJECT x\\r\\n250 2.0.0 Ok" must not inject a reply line."""
    pg.sql("CREATE TABLE IF NOT EXISTS access (k text, v text)", db=PG_DB, as_user=True)
    pg.sql("DELETE FROM access", db=PG_DB, as_user=True)
    pg.sql("INSERT INTO access VALUES ('inject.test', E'REJECT x\\r\\n250 2.0.0 Ok'), "
           "('blocked.test', 'REJECT no mail for blocked.test')", db=PG_DB, as_user=True)
    t = res.tern(start=False, mynetworks="127.0.0.1/32",
                 relay_domains="inject.test, blocked.test")
    cf = write_cf(t.etc, "access.cf", pg, query="SELECT v FROM access WHERE k = '%s'")
    if os.geteuid() == 0:  # tern-proxymap reads it as mail_owner
        os.chown(cf, 0, grp.getgrnam("tern").gr_gid)
    t.conf_edit(smtpd_recipient_restrictions=f"check_recipient_access pgsql:{cf}, "
                "reject_unauth_destination")
    t.start()
    with t.connect(source="127.0.0.5") as c:
        c.greeting()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        reply = c.cmd("RCPT TO:<x@inject.test>")
        assert len(reply) == 1 and reply[0].startswith("451 4.3.0"), reply
        assert c.cmd("RSET")[0].startswith("250"), "no injected line left to read"
        assert c.cmd("MAIL FROM:<a@example.test>")[0].startswith("250")
        reply = c.cmd("RCPT TO:<x@blocked.test>")
        assert reply[0].startswith("554 5.7.1") and "no mail for" in reply[0], reply
    t.wait_log(r"pgsql:\S+: lookup of inject\.test: the value holds a control character")
