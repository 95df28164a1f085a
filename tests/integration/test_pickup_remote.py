"""pickup and remote tables (lib/table_proxy.h): a maildrop file's lookups
are asked by a dry pass in pickup's scope and waited for on the event loop,
so a hung table never stalls the SMTP streams of the same tern-cleanup
(cleanup_workers = 1); when the lookup times out the file is deferred
(left in maildrop/ for a later scan), never lost, never accepted."""

import socket
import subprocess
import threading
import time

from ternlib import BUILD, make_message, wait_until
from test_table_socketmap import MapServer

SENDMAIL = BUILD / "tools" / "sendmail"


def test_a_hung_pickup_lookup_does_not_stall_smtp_and_is_deferred(res):
    sink = res.sink()
    maps = MapServer(socket.AF_INET, ("127.0.0.1", 0))
    spec = f"socketmap:inet:127.0.0.1:{maps.address[1]}:virtual"
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32",
                 relay_domains="other.test", virtual_alias_maps=spec, cleanup_workers="1",
                 proxymap_lookup_timeout="4s", proxymap_client_timeout="8s")
    t.start()
    try:
        r = subprocess.run([str(SENDMAIL), "-C", str(t.conf_path), "hang@other.test"],
                           input=make_message(subject="pickup"), capture_output=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: any(k == b"virtual hang@other.test" for k in maps.requests), 10,
                   "pickup's lookup of hang@other.test")
        took, errors = [], []

        def one(i):
            start = time.monotonic()
            try:
                t.send(make_message(subject=f"smtp {i}"), rcpts=(f"u{i}@other.test",),
                       source="127.0.0.1")
                took.append(time.monotonic() - start)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(20)
        assert not errors, errors
        assert len(took) == 5 and max(took) < 2, took
        # the lookup times out: the file is deferred and stays in maildrop/
        t.wait_log(r"maildrop/\S+: .*4\.3\.0.*; will retry", timeout=20)
        assert list((t.queue / "maildrop").iterdir()), "the pickup file was lost"
        assert "hang@other.test" not in " ".join(a for m in sink.messages for a in m.rcpt_tos)
    finally:
        maps.close()
