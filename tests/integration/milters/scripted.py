#!/usr/bin/python3
"""scripted.py - a python3-milter (pymilter, libmilter underneath) filter whose
behaviour a JSON script decides, for tern's milter tests.

    /usr/bin/python3 scripted.py SOCKET SCRIPT.json LOG.jsonl

SOCKET is libmilter's spelling: "unix:/path" or "inet:PORT@127.0.0.1".
SCRIPT.json is read again at every new connection (the option negotiation),
so a test can change the behaviour of a running filter for its next SMTP
session.  Every callback is written to LOG.jsonl as one JSON object per line
(flushed at once):

    {"conn": N, "pid": P, "t": TIME, "cb": "envrcpt", "args": ["<a@b>", ...],
     "macros": {"i": "...", "{rcpt_addr}": "a@b"}}

"conn" numbers the connections of this process; "macros" holds the macros
getsymval answered (those in the script's "macros" list, else MACROS below)
that have a value.  A "negotiate" line shows what the MTA offered and what
was agreed ({"offered": [actions, protocol], "agreed": [...]}).

The script (every key optional):

  "callbacks": {CB: RULE or [RULE, ...]}   CB one of connect hello envfrom
      envrcpt data header eoh body eom abort close unknown; the first rule
      that matches decides:
        "match": "bad@"   only when the first argument contains this text
        "nth": 2          only on the 2nd call of CB in this connection
        "sleep": 5        sleep first (seconds)
        "exit": true      then exit the whole process (the socket closes
                          mid-callback, like a crash)
        "action": continue | accept | reject | tempfail | discard | skip
        "reply": ["550", "5.7.1", "text", "more lines"...]  smfi_setreply
                  (smfi_setmlreply with more than one text line)
  "mods": [MOD, ...]   end-of-message changes, made before eom's action:
        {"op": "addheader", "name": N, "value": V}
        {"op": "insheader", "index": I, "name": N, "value": V}
        {"op": "chgheader", "name": N, "index": I, "value": V or null}
            (null or "": delete the header)
        {"op": "chgfrom", "addr": "<a@b>", "args": "RET=HDRS" or null}
        {"op": "addrcpt", "addr": "<c@d>"}
        {"op": "addrcpt_par", "addr": "<c@d>", "args": "NOTIFY=NEVER"}
        {"op": "delrcpt", "addr": "<c@d>"}
        {"op": "replacebody", "chunks": ["cleaned\\r\\n"]}
        {"op": "quarantine", "reason": R}
        {"op": "progress"}
        {"op": "sleep", "seconds": S}
  "macros": ["i", "j", ...]     the macros asked for with getsymval
  "noreply": [CB, ...]          ask for SMFIP_NR_* (no reply) for these
  "nocallback": [CB, ...]       ask the MTA not to send these steps
  "leadspc": true               ask for SMFIP_HDR_LEADSPC
  "symlist": {CB: "j {client_addr}"}  the milter's own macro list per stage
  "actions": ["ADDHDRS", ...]   the actions asked for (default: all)
"""

import json
import os
import sys
import threading
import time

import Milter

MACROS = [
    "i", "j", "_", "v", "{daemon_name}", "{daemon_addr}", "{client_addr}",
    "{client_name}", "{client_port}", "{client_ptr}", "{if_name}", "{if_addr}",
    "{mail_addr}", "{mail_host}", "{mail_mailer}", "{rcpt_addr}", "{rcpt_host}",
    "{rcpt_mailer}", "{auth_type}", "{auth_authen}", "{auth_ssf}", "{auth_author}",
    "{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}",
    "{msg_id}",
]

ACTIONS = {
    "continue": Milter.CONTINUE,
    "accept": Milter.ACCEPT,
    "reject": Milter.REJECT,
    "tempfail": Milter.TEMPFAIL,
    "discard": Milter.DISCARD,
    "skip": Milter.SKIP,
}

STAGES = {
    "connect": Milter.M_CONNECT, "hello": Milter.M_HELO, "envfrom": Milter.M_ENVFROM,
    "envrcpt": Milter.M_ENVRCPT, "data": Milter.M_DATA, "eoh": Milter.M_EOH,
    "eom": Milter.M_EOM,
}

ALL_ACTIONS = ("ADDHDRS", "CHGBODY", "ADDRCPT", "ADDRCPT_PAR", "DELRCPT", "CHGHDRS",
               "QUARANTINE", "CHGFROM", "SETSYMLIST")

SOCKET, SCRIPT_PATH, LOG_PATH = sys.argv[1:4]
LOG = open(LOG_PATH, "a", buffering=1)
LOCK = threading.Lock()
COUNTER = [0]


def log(record):
    with LOCK:
        LOG.write(json.dumps(record) + "\n")
        LOG.flush()


def load_script():
    with open(SCRIPT_PATH) as f:
        return json.load(f)


def printable(arg):
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace").decode()
    if isinstance(arg, (list, tuple)):
        return [printable(a) for a in arg]
    return arg


class Scripted(Milter.Base):
    """One SMTP session (one milter connection)."""

    def __init__(self):
        self.script = load_script()
        with LOCK:
            COUNTER[0] += 1
            self.conn = COUNTER[0]
        self.calls = {}

    # ---- negotiation

    def negotiate(self, opts):
        offered = list(opts)
        for cb, names in self.script.get("symlist", {}).items():
            self.setsymlist(STAGES[cb], names)
        actions = 0
        for name in self.script.get("actions", ALL_ACTIONS):
            actions |= getattr(Milter, name)
        opts[0] = self._actions = opts[0] & actions
        opts[1] = self._protocol = opts[1] & ~self.wanted_mask()
        opts[2] = opts[3] = 0
        log({"conn": self.conn, "pid": os.getpid(), "t": time.time(), "cb": "negotiate",
             "offered": offered[:2], "agreed": [opts[0], opts[1]]})
        return Milter.CONTINUE

    def wanted_mask(self):
        """The protocol bits to clear from the MTA's offer (pymilter's
        protocol_mask): every step and every reply, unless the script says."""
        mask = Milter.P_RCPT_REJ | Milter.P_HDR_LEADSPC
        for nr, no in Milter.OPTIONAL_CALLBACKS.values():
            mask |= nr | no
        for cb in self.script.get("noreply", []):
            mask &= ~Milter.OPTIONAL_CALLBACKS[cb][0]
        for cb in self.script.get("nocallback", []):
            mask &= ~Milter.OPTIONAL_CALLBACKS[cb][1]
        if self.script.get("leadspc"):
            mask &= ~Milter.P_HDR_LEADSPC
        return mask

    # ---- the common path of every callback

    def run(self, cb, *args):
        self.calls[cb] = self.calls.get(cb, 0) + 1
        record = {"conn": self.conn, "pid": os.getpid(), "t": time.time(), "cb": cb,
                  "args": printable(list(args)), "macros": self.macros()}
        log(record)
        rule = self.rule(cb, args)
        if rule.get("sleep"):
            time.sleep(rule["sleep"])
        if cb == "eom":
            self.modify()
        if rule.get("exit"):
            log({"conn": self.conn, "cb": "exit", "in": cb, "t": time.time()})
            os._exit(0)
        reply = rule.get("reply")
        if reply:
            self.setreply(reply[0], reply[1], *reply[2:])
        rc = ACTIONS[rule.get("action", "continue")]
        nr = Milter.OPTIONAL_CALLBACKS.get(cb, (0, 0))[0]
        if rc == Milter.CONTINUE and self._protocol & nr:
            return Milter.NOREPLY
        return rc

    def rule(self, cb, args):
        rules = self.script.get("callbacks", {}).get(cb, [])
        if isinstance(rules, dict):
            rules = [rules]
        first = printable(args[0]) if args else ""
        for r in rules:
            if "match" in r and r["match"] not in str(first):
                continue
            if "nth" in r and r["nth"] != self.calls[cb]:
                continue
            return r
        return {}

    def macros(self):
        seen = {}
        for name in self.script.get("macros", MACROS):
            value = self.getsymval(name)
            if value is not None:
                seen[name] = printable(value)
        return seen

    def modify(self):
        for mod in self.script.get("mods", []):
            op = mod["op"]
            log({"conn": self.conn, "cb": "mod", "op": op, "t": time.time()})
            if op == "addheader":
                self.addheader(mod["name"], mod["value"])
            elif op == "insheader":
                self.addheader(mod["name"], mod["value"], mod["index"])
            elif op == "chgheader":
                self.chgheader(mod["name"], mod["index"], mod.get("value"))
            elif op == "chgfrom":
                self.chgfrom(mod["addr"], mod.get("args"))
            elif op == "addrcpt":
                self.addrcpt(mod["addr"])
            elif op == "addrcpt_par":
                self.addrcpt(mod["addr"], mod["args"])
            elif op == "delrcpt":
                self.delrcpt(mod["addr"])
            elif op == "replacebody":
                for chunk in mod["chunks"]:
                    self.replacebody(chunk.encode())
            elif op == "quarantine":
                self.quarantine(mod["reason"])
            elif op == "progress":
                self.progress()
            elif op == "sleep":
                time.sleep(mod["seconds"])
            else:
                raise ValueError(f"unknown mod {op}")

    # ---- the callbacks

    def connect(self, hostname, family, hostaddr):
        return self.run("connect", hostname, family, hostaddr)

    def hello(self, heloname):
        return self.run("hello", heloname)

    def envfrom(self, mailfrom, *args):
        return self.run("envfrom", mailfrom, *args)

    def envrcpt(self, rcpt, *args):
        return self.run("envrcpt", rcpt, *args)

    def data(self):
        return self.run("data")

    def header(self, name, value):
        return self.run("header", name, value)

    def eoh(self):
        return self.run("eoh")

    def body(self, chunk):
        return self.run("body", chunk)

    def unknown(self, cmd):
        return self.run("unknown", cmd)

    def eom(self):
        return self.run("eom")

    def abort(self):
        return self.run("abort")

    def close(self):
        return self.run("close")


def main():
    os.umask(0)  # tern's services (mail_owner) must be able to connect
    flags = 0
    for name in ALL_ACTIONS:
        flags |= getattr(Milter, name)
    Milter.set_flags(flags)
    Milter.factory = Scripted
    log({"cb": "start", "pid": os.getpid(), "socket": SOCKET, "t": time.time()})
    Milter.runmilter("scripted", SOCKET, 240)


if __name__ == "__main__":
    main()
