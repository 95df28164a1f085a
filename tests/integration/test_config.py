"""Configuration errors and `tern conf` (brief item 10, DESIGN §5): a bad
tern.conf names file:line and tern refuses to start; conf prints parameters."""

import re
import subprocess

import pytest

from ternlib import TERN


def start_must_fail(tern):
    """Run `tern start -f`; it must exit non-zero by itself.  Returns (rc, output)."""
    proc = subprocess.Popen(
        [str(TERN), "-c", str(tern.etc), "start", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        tern.proc = proc  # so cleanup stops it
        pytest.fail("tern start -f kept running with a broken tern.conf")
    return proc.returncode, out + err


def broken_conf(res, bad_line):
    """An instance whose tern.conf has bad_line as its last line; returns (tern, line number)."""
    tern = res.tern(start=False)
    tern.write_conf(extra_lines=[bad_line])
    lineno = tern.conf_path.read_text().splitlines().index(bad_line) + 1
    return tern, lineno


@pytest.mark.parametrize(
    "bad_line",
    ["no_such_parameter = 1", "smtpd_timeout = 5x"],
    ids=["unknown-name", "bad-value"],
)
def test_bad_config_refuses_to_start(res, bad_line):
    tern, lineno = broken_conf(res, bad_line)
    where = f"{tern.conf_path}:{lineno}:"
    rc, output = start_must_fail(tern)
    assert rc != 0
    assert where in output, f"expected {where!r} in:\n{output}"
    assert not tern.pids(), "processes left running after a failed start"

    check = tern.tern("check")
    assert check.returncode != 0
    assert where in check.stdout + check.stderr, check


def test_check_accepts_good_config(res):
    tern = res.tern(start=False)
    r = tern.tern("check")
    assert r.returncode == 0, r


def test_check_reports_a_table_that_cannot_be_opened(res):
    tern = res.tern(start=False, alias_maps=f"lmdb:{res.base}/no-such-aliases")
    r = tern.tern("check")
    assert r.returncode == 1, r
    assert "alias_maps: lmdb:" in r.stdout and "no-such-aliases.lmdb" in r.stdout, r.stdout
    assert re.search(r"tern check: \d+ problems?", r.stdout), r.stdout


def test_conf_defaults_and_lookup(res):
    tern = res.tern(start=False)
    r = tern.tern("conf", "-d")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines and all(re.match(r"^[A-Za-z0-9_.]+ =( |$)", l) for l in lines), r.stdout
    assert "smtpd_banner = $myhostname ESMTP tern" in lines
    names = [l.split(" =")[0] for l in lines]
    for name in ("myhostname", "queue_directory", "smtpd_timeout", "message_size_limit"):
        assert name in names

    r = tern.tern("conf", "myhostname")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["myhostname = tern.test"], r.stdout
