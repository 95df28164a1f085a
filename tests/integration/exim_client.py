"""Exim 4 (Debian's exim4-daemon-light) as an SMTP client for the tests,
run from the private root that scripts/setup.sh unpacks (extract_exim):
never installed, never the system MTA.  Each client has its own config,
spool and logs in a temporary directory; every address goes to one
host:port with a manualroute router and an smtp transport, where Exim uses
CHUNKING (BDAT) whenever the server offers it (hosts_try_chunking = *, the
default, spelt out here).  Exim refuses to run a transport as root (root
is in its compiled-in never_users), so the client runs as "nobody" with a
spool it owns."""

import grp
import os
import pwd
import subprocess
import tempfile
from pathlib import Path
from typing import List

EXIM_ROOT = Path("/opt/tern-test/exim")
EXIM = EXIM_ROOT / "usr" / "sbin" / "exim4"

CONFIG = """\
exim_user = {user}
exim_group = {group}
trusted_users = root
primary_hostname = exim.test
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
begin routers
to_tern:
  driver = manualroute
  route_list = * {host}
  transport = tern_smtp
  self = send
begin transports
tern_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_try_chunking = *
begin retry
* * F,1m,1m
"""


class EximClient:
    """exim -C private.conf: queue a message, then deliver it with a queue run."""

    def __init__(self, host: str, port: int, base: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="exim-", dir=str(base)))
        self.conf = self.dir / "exim.conf"
        user = pwd.getpwnam("nobody")
        self.conf.write_text(CONFIG.format(dir=self.dir, host=host, port=port, user="nobody",
                                           group=grp.getgrgid(user.pw_gid).gr_name))
        for sub in ("spool", "log"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, user.pw_uid, user.pw_gid)
        os.chmod(self.dir, 0o755)

    def send(self, content: bytes, rcpts: List[str], sender: str) -> subprocess.CompletedProcess:
        """Queue content (LF line ends, as a local submission), then one
        queue run delivers it, with Exim's transport trace (-d+transport)
        in stderr.  Not -odf: that re-executes /usr/sbin/exim4, the
        compiled-in path, which is not there (not installed); a queue run
        delivers in a forked child without exec."""
        cmd = [str(EXIM), "-C", str(self.conf)]
        queued = subprocess.run(cmd + ["-odq", "-oi", "-f", sender, *rcpts], input=content,
                                capture_output=True, timeout=60)
        if queued.returncode != 0:
            return queued
        return subprocess.run(cmd + ["-qff", "-d+transport"], capture_output=True, timeout=60)

    def mainlog(self) -> str:
        path = self.dir / "log" / "mainlog"
        return path.read_text(errors="replace") if path.exists() else ""
