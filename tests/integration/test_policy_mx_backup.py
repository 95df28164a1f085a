"""permit_mx_backup, sendmail's FEATURE(relay_based_on_MX) (SPEC RELAY-07):
a domain whose MX list names this host is accepted from anyone and handed
to the better MX (docs/policy.md)."""

from ternlib import free_port, make_message

PRIMARY = "127.0.0.20"


def test_backup_mx_accepts_and_forwards_to_the_primary(res):
    dns = res.dnsmasq(
        [
            "--local=/test/",
            "--mx-host=backup.test,primary.backup.test,10",
            "--mx-host=backup.test,tern.test,20",
            f"--host-record=primary.backup.test,{PRIMARY}",
            "--host-record=tern.test,127.0.0.1",
        ],
        probe="backup.test",
    )
    port = free_port(PRIMARY)
    primary = res.sink(host=PRIMARY, port=port)
    t = res.tern(
        dns_servers=f"127.0.0.1:{dns.port}",
        smtp_default_port=port,
        mynetworks="127.0.0.1/32",
        smtpd_relay_restrictions="permit_mynetworks, permit_mx_backup, reject_unauth_destination",
    )
    with t.connect(source="127.0.0.5") as c:
        c.greeting()
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<joe@example.com>")[0].startswith("250 ")
        assert c.cmd("RCPT TO:<u@far.test>") == ["554 5.7.1 <u@far.test>: Relay access denied"]
        assert c.cmd("RCPT TO:<u@backup.test>") == ["250 2.1.5 <u@backup.test>... Recipient ok"]
        assert c.data(make_message(to="u@backup.test", headers={"X-T": "backup-mx"}))[0].startswith(
            "250 "
        )
        c.cmd("QUIT")
    (msg,) = primary.wait_for(b"X-T: backup-mx", timeout=20)
    assert msg.rcpt_tos == ["u@backup.test"]
