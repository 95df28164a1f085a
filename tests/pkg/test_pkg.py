"""The Debian package end to end (issue 13): scripts/pkg-test.sh builds it,
installs it with apt into a throwaway bookworm root, starts tern as the
systemd unit does, sends mail in and out, stops and purges.  Run once per CI
run by scripts/test.sh (not per build flavour: the package is built from
the tree with Debian's flags, not from build/ or build-asan/)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_package_builds_installs_delivers_and_purges():
    proc = subprocess.run(
        [str(REPO / "scripts" / "pkg-test.sh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    sys.stdout.write(proc.stdout)
    failed = [line for line in proc.stdout.splitlines() if line.startswith("not ok")]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("ok - ")]
    assert proc.returncode == 0 and not failed, "\n".join(failed) or proc.stdout[-3000:]
    assert len(passed) >= 30, proc.stdout[-3000:]
