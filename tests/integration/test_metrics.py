"""Numbers without reading logs (issue 13, SPEC OPS-10): the OpenMetrics
endpoint on metrics_listen (tern-metrics) and `tern stats`.

Counters move as mail flows (received by origin, delivered per transport, the
delay histogram, a deferral, rejections by reason, the sessions gauge, the
queue figures); `promtool check metrics` passes on the Prometheus text the
endpoint gives a text/plain scraper, and the OpenMetrics text passes the
strict parser of prometheus_client; another path is 404.  `tern stats` shows
>= 10 received after 10 messages, with tern stopped too; -r resets; a
corrupt counter file is rebuilt at start.  TLS handshakes (smtpd and smtp) and
AUTH results (smtpd) are counted."""

import base64
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from ternlib import BUILD, free_port, make_message, wait_until

SENDMAIL = BUILD / "tools" / "sendmail"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture(scope="module")
def metered(mres):
    sink = mres.sink()
    tern = mres.tern(
        relayhost=sink.hostport,
        metrics_listen=f"127.0.0.1:{free_port()}",
        mynetworks="127.0.0.1/32",  # 127.0.0.2 is a stranger: relaying is refused
    )
    return tern, sink


def get(tern, path="/metrics", accept=None, method="GET"):
    """(status, content type, body) of one HTTP request to tern-metrics."""
    req = urllib.request.Request(
        f"http://{tern.params['metrics_listen']}{path}", method=method,
        headers={"Accept": accept} if accept else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(tern):
    """{(sample name, ((label, value), ...)): value} from the OpenMetrics text"""
    status, ctype, body = get(tern)
    assert status == 200 and ctype == OPENMETRICS_TYPE, (status, ctype)
    out = {}
    for family in text_string_to_metric_families(body):  # strict: raises on bad text
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(tern, name, **labels):
    return scrape(tern).get((name, tuple(sorted(labels.items()))), 0)


def wait_metric(tern, name, at_least, **labels):
    return wait_until(lambda: metric(tern, name, **labels) >= at_least or None, 20,
                      f"{name}{labels} >= {at_least}")


def submit_local(tern, subject):
    """One message through the local submission (sendmail -> maildrop -> pickup)."""
    r = subprocess.run([str(SENDMAIL), "-C", str(tern.conf_path), "-f", "me@tern.test",
                        "rcpt@sink.test"], input=make_message(subject=subject),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_counters_move_as_mail_flows(metered):
    tern, sink = metered
    before = scrape(tern)
    b = lambda name, **labels: before.get((name, tuple(sorted(labels.items()))), 0)  # noqa: E731

    for i in range(10):
        tern.send(make_message(subject=f"flow {i}"))
    submit_local(tern, "flow local")
    sink.wait_count(11)
    wait_metric(tern, "tern_recipients_delivered_total", b("tern_recipients_delivered_total",
                                                          transport="smtp") + 11, transport="smtp")
    after = scrape(tern)
    a = lambda name, **labels: after.get((name, tuple(sorted(labels.items()))), 0)  # noqa: E731
    assert a("tern_messages_received_total", origin="smtp") - b(
        "tern_messages_received_total", origin="smtp") == 10
    assert a("tern_messages_received_total", origin="local") - b(
        "tern_messages_received_total", origin="local") == 1
    assert a("tern_received_bytes_total", origin="smtp") > b("tern_received_bytes_total",
                                                             origin="smtp")
    assert a("tern_delivered_bytes_total", transport="smtp") > b("tern_delivered_bytes_total",
                                                                 transport="smtp")
    assert a("tern_delivery_delay_seconds_count", transport="smtp") - b(
        "tern_delivery_delay_seconds_count", transport="smtp") == 11
    assert a("tern_delivery_delay_seconds_bucket", transport="smtp", le="+Inf") == a(
        "tern_delivery_delay_seconds_count", transport="smtp")
    assert a("tern_smtpd_sessions_total") - b("tern_smtpd_sessions_total") >= 10
    assert a("tern_queue_messages", queue="deferred") == 0


def test_a_refusal_counts_under_its_reason(metered):
    tern, _ = metered
    before = metric(tern, "tern_smtpd_rejects_total", reason="relay")
    with tern.connect(source="127.0.0.2") as c:
        assert c.greeting()[0].startswith("220")
        c.cmd("EHLO stranger.example")
        assert c.cmd("MAIL FROM:<a@stranger.example>")[0].startswith("250")
        assert c.cmd("RCPT TO:<b@elsewhere.example>")[0].startswith("554")
        c.cmd("QUIT")
    assert metric(tern, "tern_smtpd_rejects_total", reason="relay") == before + 1


def test_the_sessions_gauge_follows_open_sessions(metered):
    tern, _ = metered
    conns = [tern.connect() for _ in range(3)]
    try:
        for c in conns:
            assert c.greeting()[0].startswith("220")
        wait_until(lambda: metric(tern, "tern_smtpd_sessions_open") == 3 or None, 10,
                   "3 sessions open")
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: metric(tern, "tern_smtpd_sessions_open") == 0 or None, 10,
               "no session open")


def test_promtool_and_the_openmetrics_parser_accept_the_output(metered):
    tern, sink = metered
    tern.send(make_message(subject="for promtool"))
    sink.wait_for(b"for promtool")
    status, ctype, text = get(tern, accept="text/plain")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert "tern_recipients_delivered_total{" in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # what Prometheus itself asks for gets OpenMetrics, read by a strict parser
    status, ctype, om = get(tern, accept="application/openmetrics-text;version=1.0.0,"
                            "text/plain;version=0.0.4;q=0.5")
    assert status == 200 and ctype == OPENMETRICS_TYPE and om.endswith("# EOF\n")
    names = {f.name for f in text_string_to_metric_families(om)}
    assert {"tern_messages_received", "tern_recipients_delivered", "tern_smtpd_rejects",
            "tern_delivery_delay_seconds", "tern_queue_messages"} <= names


def test_another_path_is_404_and_another_method_405(metered):
    tern, _ = metered
    assert get(tern, "/")[0] == 404
    assert get(tern, "/metrics/x")[0] == 404
    assert get(tern, "/metrics", method="POST")[0] == 405


def test_the_endpoint_survives_a_reload(metered):
    tern, _ = metered
    (old,) = tern.service_pids("metrics")
    before = metric(tern, "tern_smtpd_sessions_total")
    assert tern.tern("reload").returncode == 0
    wait_until(lambda: tern.service_pids("metrics") not in ([], [old]) or None, 10,
               "a new tern-metrics")
    wait_until(lambda: metric(tern, "tern_smtpd_sessions_total") >= before or None, 10,
               "the counters after the reload")


def test_a_deferral_the_deferred_queue_and_an_expiry_are_counted(res):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: connection refused
    tern = res.tern(relayhost=f"[127.0.0.1]:{dead.split(':')[1]}",
                    metrics_listen=f"127.0.0.1:{free_port()}", maximal_queue_lifetime="4s")
    tern.send(make_message(subject="deferred"))
    wait_metric(tern, "tern_recipients_deferred_total", 1, transport="smtp")
    wait_metric(tern, "tern_queue_messages", 1, queue="deferred")
    assert metric(tern, "tern_recipients_delivered_total", transport="smtp") == 0
    # the queue lifetime runs out: the recipient is returned, counted apart
    wait_metric(tern, "tern_recipients_bounced_total", 1, transport="expired")


def stats_rows(tern):
    """{mailer: [msgsfr, bytes_from, msgsto, bytes_to, msgsrej, msgsdis]} of `tern stats`"""
    r = tern.tern("stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Statistics from "), r.stdout
    rows = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\d+|T)\s+(\d+)\s+(\d+)K\s+(\d+)\s+(\d+)K\s+(\d+)\s+(\d+)\s*(\S*)$", line)
        if m:
            rows[m.group(8) or "T"] = [int(x) for x in m.groups()[1:7]]
    return rows


def test_tern_stats_counts_ten_messages_with_tern_stopped_and_resets(res):
    sink = res.sink()
    tern = res.tern(relayhost=sink.hostport)
    for i in range(10):
        tern.send(make_message(subject=f"stats {i}"))
    sink.wait_count(10)
    assert "not a tern statistics file" not in tern.log()  # a new file is no news
    wait_until(lambda: stats_rows(tern).get("smtp", [0, 0, 0])[2] >= 10 or None, 20,
               "10 delivered in tern stats")
    tern.stop()
    rows = stats_rows(tern)  # tern is stopped: the file is read as it is
    assert rows["smtp"][0] >= 10 and rows["smtp"][1] >= 1, rows
    assert rows["T"][0] >= 10 and rows["T"][2] >= 10, rows
    r = tern.tern("stats", "-r")
    assert r.returncode == 0 and "counters reset" in r.stdout, r
    assert stats_rows(tern)["T"][:4] == [0, 0, 0, 0]
    assert tern.tern("stats", "-x").returncode == 2


def test_a_corrupt_counter_file_is_rebuilt_at_start(res):
    tern = res.tern(start=False)
    tern.data.mkdir(mode=0o700, exist_ok=True)
    (tern.data / "stats").write_bytes(b"\x00garbage" * 100)
    assert tern.tern("stats").returncode == 1  # never read as counters
    tern.start()
    tern.wait_log(r"is not a tern statistics file of this version: starting it anew")
    tern.send(make_message(subject="after rebuild"))
    wait_until(lambda: stats_rows(tern).get("smtp", [0])[0] == 1 or None, 20,
               "1 received after the rebuild")


def self_signed(d):
    """A P-256 key and a self-signed certificate for tern.test in d."""
    d.mkdir(exist_ok=True)
    d.chmod(0o755)
    key, cert = d / "tls.key", d / "tls.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=tern.test", "-days", "2"], check=True, capture_output=True)
    key.chmod(0o600)
    return key, cert


def test_tls_handshakes_count_on_both_sides(res, tmp_path):
    key, cert = self_signed(tmp_path / "pki")
    sink = res.sink()
    inner = res.tern(name="inner", relayhost=sink.hostport, smtpd_tls_cert_file=cert,
                     smtpd_tls_key_file=key, metrics_listen=f"127.0.0.1:{free_port()}")
    outer = res.tern(name="outer", relayhost=f"[127.0.0.1]:{inner.port}",
                     smtp_tls_security_level="may", metrics_listen=f"127.0.0.1:{free_port()}")
    outer.send(make_message(subject="over TLS"))
    sink.wait_for(b"over TLS")
    wait_metric(outer, "tern_tls_handshakes_total", 1, side="smtp", result="ok")
    wait_metric(inner, "tern_tls_handshakes_total", 1, side="smtpd", result="ok")
    # a client that says STARTTLS and then sends no TLS at all
    with inner.connect() as c:
        c.greeting()
        c.cmd("EHLO plain.example")
        assert c.cmd("STARTTLS")[0].startswith("220")
        c.send(b"this is not a TLS record\r\n" * 20)
        c.wait_closed(10)
    wait_metric(inner, "tern_tls_handshakes_total", 1, side="smtpd", result="failed")


def test_auth_results_count(res):
    tern = res.tern(start=False, smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="no",
                    metrics_listen=f"127.0.0.1:{free_port()}")
    sasl = tern.dir / "sasl"  # tern-auth (mail_owner) reaches it
    sasl.mkdir()
    sasl.chmod(0o755)
    db = sasl / "sasldb2"
    (sasl / "smtpd.conf").write_text(f"sasldb_path: {db}\npwcheck_method: auxprop\n"
                                     "auxprop_plugin: sasldb\nmech_list: PLAIN\n")
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", "tern.test", "alice"],
                   input=b"secret", check=True)
    shutil.chown(db, "root", "tern")
    db.chmod(0o640)
    tern.conf_edit(cyrus_sasl_config_path=str(sasl))
    tern.start()
    for password, reply in (("wrong", "535"), ("secret", "235")):
        with tern.connect() as c:
            c.greeting()
            c.cmd("EHLO client.example")
            token = base64.b64encode(f"\0alice\0{password}".encode()).decode()
            assert c.cmd(f"AUTH PLAIN {token}", timeout=15)[0].startswith(reply)
            c.cmd("QUIT")
    assert metric(tern, "tern_auth_attempts_total", side="smtpd", result="failed") == 1
    assert metric(tern, "tern_auth_attempts_total", side="smtpd", result="ok") == 1
