"""Local domains from a names file (SPEC VDOM-01, sendmail's local-host-names)
and praliases (CLI-22)."""

import subprocess

from ternlib import BUILD, make_message, tool_env, wait_until


def test_local_host_names_file_is_read_again_on_reload(res):
    sink = res.sink()
    t = res.tern(start=False, relayhost=sink.hostport, mynetworks="127.0.0.1/32")
    names = t.etc / "local-host-names"
    names.write_text("# class w\ntern.test doe.test\n")
    t.conf_edit(mydestination=f"localhost, {names}")
    t.start()
    with t.connect(source="127.0.0.5") as c:
        c.greeting()
        c.cmd("EHLO outside.example")
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<root@doe.test>")[0].startswith("250 "), "listed domain"
        assert c.cmd("RCPT TO:<root@new.test>")[0].startswith("554 5.7.1"), "not yet listed"
    names.write_text("# class w\ntern.test doe.test\nnew.test\n")
    old_workers = set(t.service_pids("smtpd"))
    assert t.tern("reload").returncode == 0
    # an old worker may still take a connection queued before it saw the
    # reload: wait until only new workers are left
    wait_until(lambda: t.service_pids("smtpd") and not set(t.service_pids("smtpd")) & old_workers,
               15, "the smtpd workers of before the reload to be gone")

    def accepted():
        with t.connect(source="127.0.0.5") as c:
            c.greeting()
            c.cmd("EHLO outside.example")
            c.cmd("MAIL FROM:<a@example.test>")
            return c.cmd("RCPT TO:<root@new.test>")[0].startswith("250 ")

    wait_until(accepted, 15, "new.test to be local after reload")
    qid = t.send(make_message(to="root@new.test"), rcpts=("root@new.test",), source="127.0.0.5")
    t.wait_log(rf"{qid}: to=<root@new.test>.*relay=local.*status=sent")
    assert not sink.snapshot(), "local mail must not be relayed"


def test_praliases_prints_key_value_lines(res):
    t = res.tern(start=False)
    t.aliases.write_text("Postmaster: root\nstaff: alice,\n  bob\n")
    sendmail = BUILD / "tools" / "sendmail"
    link = t.dir / "praliases"
    link.symlink_to(sendmail)
    env = tool_env(TERN_CONFIG_DIR=str(t.etc))
    one = subprocess.run([str(link), "postmaster"], capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    assert one.stdout == "postmaster:root\n"
    every = subprocess.run([str(link)], capture_output=True, text=True, env=env)
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert "postmaster:root" in lines
    assert "staff:alice, bob" in lines
    assert lines[-1] == "@:@"
