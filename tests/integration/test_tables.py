"""Lookup tables and `tern map` (issue 4, DESIGN §6): build, query, dump and
delete through the real binary; the newaliases summary; errors naming
file:line with the old table left in place; and a running tern that keeps
working while a table is rebuilt under it."""

import os
import re
import subprocess
from pathlib import Path

from ternlib import TERN, require_binary

SUMMARY = re.compile(r"^(\S+): (\d+) aliases, longest (\d+) bytes, (\d+) bytes total$")


def tern_map(*args, config_dir=None):
    """Run `tern [-c DIR] map ARGS`; returns the CompletedProcess."""
    require_binary()
    cmd = [str(TERN)] + (["-c", str(config_dir)] if config_dir else []) + ["map", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def temp_leftovers(directory: Path):
    return [p.name for p in directory.iterdir() if ".lmdb." in p.name]


def test_build_query_dump_delete(tmp_path):
    access = tmp_path / "access"
    access.write_text(
        "# access map\n"
        "Example.COM      OK\n"
        "spam.example     REJECT go\n"
        "    away\n"
        "192.0.2          RELAY\n"
    )
    os.chmod(access, 0o640)
    r = tern_map(str(access))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lmdb = tmp_path / "access.lmdb"
    assert lmdb.exists()
    assert (lmdb.stat().st_mode & 0o777) == 0o640  # the text file's permissions
    assert temp_leftovers(tmp_path) == []

    r = tern_map("-q", "EXAMPLE.com", f"lmdb:{access}")
    assert (r.returncode, r.stdout) == (0, "OK\n")
    r = tern_map("-q", "spam.example", str(access))  # plain FILE means lmdb:FILE
    assert (r.returncode, r.stdout) == (0, "REJECT go away\n")
    r = tern_map("-q", "nobody.example", f"lmdb:{access}")
    assert (r.returncode, r.stdout) == (1, "")
    r = tern_map("-q", "192.0.2", f"texthash:{access}")
    assert (r.returncode, r.stdout) == (0, "RELAY\n")

    r = tern_map("-s", f"lmdb:{access}")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == [
        "192.0.2 RELAY",
        "example.com OK",
        "spam.example REJECT go away",
    ]

    r = tern_map("-d", "SPAM.example", str(access))
    assert r.returncode == 0, r.stderr
    assert access.read_text() == "# access map\nExample.COM      OK\n192.0.2          RELAY\n"
    assert (access.stat().st_mode & 0o777) == 0o640
    r = tern_map("-q", "spam.example", f"lmdb:{access}")
    assert r.returncode == 1  # the rebuild happened too
    r = tern_map("-d", "spam.example", str(access))
    assert r.returncode == 1  # not there any more


def test_query_unreadable_table_is_tempfail(tmp_path):
    r = tern_map("-q", "key", f"lmdb:{tmp_path / 'never-built'}")
    assert r.returncode == 75
    assert "never-built.lmdb" in r.stderr


def test_other_types_query(tmp_path):
    (tmp_path / "nets").write_text("10.0.0.0/8 ten\n192.0.2.0/24 doc\n")
    (tmp_path / "re").write_text("/^(.+)@old\\.example$/ $1@new.example\n")
    assert tern_map("-q", "10.9.8.7", f"cidr:{tmp_path / 'nets'}").stdout == "ten\n"
    assert tern_map("-q", "joe@old.example", f"regexp:{tmp_path / 're'}").stdout == (
        "joe@new.example\n"
    )
    assert tern_map("-q", "B", "inline:{a=1, b=2}").stdout == "2\n"
    assert tern_map("-q", "anything", "static:OK").stdout == "OK\n"
    assert tern_map("-q", "root", "unix:passwd.byname").stdout == "/root\n"
    r = tern_map("-s", f"cidr:{tmp_path / 'nets'}")
    assert r.returncode == 1 and "cannot be listed" in r.stderr


def test_syntax_error_names_line_and_keeps_old_table(tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("root: admin\n")
    assert tern_map("-a", str(aliases)).returncode == 0
    inode = (tmp_path / "aliases.lmdb").stat().st_ino

    aliases.write_text("root: changed\n# fine\npostmaster root\n")
    r = tern_map("-a", str(aliases))
    assert r.returncode == 1
    assert f"{aliases}:3:" in r.stderr
    assert (tmp_path / "aliases.lmdb").stat().st_ino == inode
    assert temp_leftovers(tmp_path) == []
    assert tern_map("-q", "root", str(aliases)).stdout == "admin\n"


def test_duplicate_is_warned_first_wins(tmp_path):
    m = tmp_path / "map"
    m.write_text("key first\nother x\nKEY second\n")
    r = tern_map(str(m))
    assert r.returncode == 0
    assert f"{m}:3: duplicate key" in r.stderr
    assert tern_map("-q", "key", str(m)).stdout == "first\n"


def test_alias_summary_and_dump(tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text(
        "# sendmail-style aliases\n"
        "postmaster: root\n"
        "root: admin, bob\n"
        "list: a,\n"
        '  "|/usr/bin/cmd arg",\n'
        "  /var/mail/file, :include:/etc/list\n"
    )
    r = tern_map("-A", str(aliases))
    assert r.returncode == 0, r.stderr
    m = SUMMARY.match(r.stdout.strip())
    assert m, r.stdout
    longest = len('a, "|/usr/bin/cmd arg", /var/mail/file, :include:/etc/list')
    total = sum(
        len(k) + len(v)
        for k, v in [
            ("postmaster", "root"),
            ("root", "admin, bob"),
            ("list", 'a, "|/usr/bin/cmd arg", /var/mail/file, :include:/etc/list'),
        ]
    )
    assert m.groups() == (str(aliases), "3", str(longest), str(total))

    r = tern_map("-s", str(aliases))
    assert r.returncode == 0
    assert "list: a, \"|/usr/bin/cmd arg\", /var/mail/file, :include:/etc/list" in (
        r.stdout.splitlines()
    )
    assert "root: admin, bob" in r.stdout.splitlines()
    assert tern_map("-q", "LIST", str(aliases)).returncode == 0


def test_newaliases_builds_alias_database(res):
    tern = res.tern(start=False)
    one, two = tern.dir / "aliases", tern.dir / "more-aliases"
    one.write_text("root: admin\n")
    two.write_text("a: b\nc: d\n")
    tern.conf_edit(alias_maps=f"lmdb:{one}, lmdb:{two}, static:x")
    r = tern_map("-A", config_dir=tern.etc)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        f"{one}: 1 aliases, longest 5 bytes, 9 bytes total",
        f"{two}: 2 aliases, longest 1 bytes, 4 bytes total",
    ]
    assert tern_map("-q", "c", f"lmdb:{two}").stdout == "d\n"


def test_running_tern_sees_rebuild(res):
    tern = res.tern(start=False)
    aliases = tern.dir / "aliases"
    aliases.write_text("root: old-admin\n")
    assert tern_map("-a", str(aliases)).returncode == 0
    tern.conf_edit(alias_maps=f"lmdb:{aliases}")
    tern.start()
    master = tern.master_pid()

    aliases.write_text("root: new-admin\nextra: x\n")
    assert tern_map("-a", str(aliases)).returncode == 0
    assert tern_map("-q", "root", f"lmdb:{aliases}").stdout == "new-admin\n"
    assert tern_map("-q", "extra", f"lmdb:{aliases}").stdout == "x\n"

    # the mail system did not notice: same master, still answering
    assert tern.master_pid() == master
    with tern.connect() as c:
        assert c.greeting()[-1].startswith("220")
        assert c.cmd("EHLO client.test")[-1].startswith("250")
        assert c.cmd("QUIT")[0].startswith("221")
    assert tern.tern("status").returncode == 0
