#!/bin/sh
# bench/setup.sh - install what the bench needs (Postfix for its smtp-source,
# smtp-sink and a private Postfix instance) without configuring the system
# Postfix: "No configuration" means no /etc/postfix/main.cf, so the system
# instance never starts and port 25 stays untouched.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/setup.sh: run as root" >&2
    exit 1
fi
need=""
for p in postfix postfix-ldap linux-perf valgrind strace libmilter-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# a package install may still have started the system instance: stop it
# only if it runs with the default config (never ours); no-op otherwise
if [ ! -f /etc/postfix/main.cf ] && pgrep -x master >/dev/null 2>&1; then
    echo "bench/setup.sh: note: a Postfix master is running (not ours; left alone)" >&2
fi
getent group postdrop >/dev/null || groupadd -r postdrop
getent passwd postfix >/dev/null || useradd -r -M -d /var/spool/postfix -s /usr/sbin/nologin -g postfix postfix
for t in postfix smtp-source smtp-sink postconf postqueue; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || { echo "bench/setup.sh: $t missing" >&2; exit 1; }
done
