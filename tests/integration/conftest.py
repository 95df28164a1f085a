"""pytest fixtures for the tern integration suites.

`res` (per test) and `mres` (per module) hand out TernInstance and Sink
objects and always clean them up: processes stopped (SIGKILL as a fallback),
tmpfs unmounted, directories removed unless a test failed (then the path is
printed so the maillog and stderr.log can be read; TERN_IT_KEEP=1 keeps
them always).  On a failure the tail of
every live instance's maillog and stderr is attached to the report.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import Dnsmasq, Sink, TernInstance, require_binary  # noqa: E402
from policyutil import dead_dns, mpolicy_dns, policy_dns  # noqa: E402,F401 (relay-policy fixtures)

KEEP = os.environ.get("TERN_IT_KEEP") == "1"


class Resources:
    """Instances and sinks made for one test or one module, cleaned up together."""

    def __init__(self, base: Path):
        self.base = base
        self.terns = []
        self.sinks = []
        self.others = []

    def tern(self, start: bool = True, name: str = "tern", **params) -> TernInstance:
        t = TernInstance(base=self.base, name=name, **params)
        self.terns.append(t)
        if start:
            t.start()
        return t

    def sink(self, start: bool = True, **kw) -> Sink:
        s = Sink(**kw)
        self.sinks.append(s)
        if start:
            s.start()
        return s

    def dnsmasq(self, records, probe: str) -> Dnsmasq:
        d = Dnsmasq(records, self.base)
        self.others.append(d)
        return d.start(probe)

    def close(self, keep: bool) -> None:
        errors = []
        for t in self.terns:
            report = t.sanitizer_report()
            if report:  # any ASan/UBSan report fails the test, even if it "passed"
                errors.append(AssertionError(f"sanitizer report in {t.stderr_path}:\n{report}"))
                keep = True
        for t in self.terns:
            try:
                t.cleanup(keep=keep)
            except Exception as e:  # keep cleaning the rest
                errors.append(e)
            if keep:
                print(f"\nkept tern instance directory: {t.dir}")
        for s in self.sinks:
            try:
                s.stop()
            except Exception as e:
                errors.append(e)
        for o in self.others:
            try:
                o.stop()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def it_base():
    require_binary()
    base = Path(tempfile.mkdtemp(prefix="tern-it-"))
    os.chmod(base, 0o755)
    yield base
    for t in list(TernInstance.LIVE):  # anything a fixture could not clean
        t.cleanup(keep=True)
    if not any(p.is_dir() for p in base.iterdir()):  # no kept instance directory
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def res(request, it_base):
    r = Resources(it_base)
    failed_before = request.session.testsfailed
    yield r
    failed = request.session.testsfailed > failed_before or getattr(
        request.node, "_tern_failed", False
    )
    r.close(keep=failed or KEEP)


@pytest.fixture(scope="module")
def mres(request, it_base):
    r = Resources(it_base)
    failed_before = request.session.testsfailed
    yield r
    r.close(keep=request.session.testsfailed > failed_before or KEEP)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item._tern_failed = True
        for t in TernInstance.LIVE:
            rep.sections.append((f"tern {t.dir} maillog (tail)", t.log_tail()))
            rep.sections.append((f"tern {t.dir} stderr (tail)", t.stderr_tail()))
