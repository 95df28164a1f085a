#!/bin/sh
# run-dev.sh - build tern and run it in the foreground on 127.0.0.1:2525 with a
# self-contained instance in ./run (config, queue, log), relaying every message
# to a small local sink that saves what it receives in ./run/sink/.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh build
TOP=$(pwd)
RUN=$TOP/run
mkdir -p "$RUN/etc" "$RUN/sink" "$RUN/mail"
chmod 1777 "$RUN/mail"
[ -f "$RUN/etc/aliases" ] || printf 'postmaster: root\nabuse: root\n' > "$RUN/etc/aliases"
if [ "$(id -u)" -eq 0 ]; then OWNER=tern; else OWNER=$(id -un); fi
if [ ! -f "$RUN/etc/tern.conf" ]; then
    cat > "$RUN/etc/tern.conf" <<CONF
# A development instance: everything lives under $RUN.
queue_directory = $RUN/queue
data_directory = $RUN/data
maillog_file = $RUN/maillog
mail_owner = $OWNER
smtpd_listen = 127.0.0.1:2525
submission_listen = 127.0.0.1:2587
smtps_listen = 127.0.0.1:2465
smtpd_tls_cert_file = $RUN/etc/tls/cert.pem
smtpd_tls_key_file = $RUN/etc/tls/key.pem
cyrus_sasl_config_path = $RUN/etc/sasl
myhostname = tern.localhost
mydestination = tern.localhost, localhost
relayhost = [127.0.0.1]:2526
alias_maps = texthash:$RUN/etc/aliases
mail_spool_directory = $RUN/mail
queue_run_delay = 10s
minimal_backoff_time = 10s
# self-contained: local clients only, so no reverse DNS before the greeting
# (a machine without a working resolver would wait dns_timeout per connection)
smtpd_peername_lookup = no
CONF
fi
# a self-signed certificate for STARTTLS and SMTPS (key readable by root only)
if [ ! -f "$RUN/etc/tls/key.pem" ]; then
    mkdir -p "$RUN/etc/tls"
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=tern.localhost \
        -keyout "$RUN/etc/tls/key.pem" -out "$RUN/etc/tls/cert.pem" 2>/dev/null)
fi
# SMTP AUTH for the submission and SMTPS ports: a sasldb with the user "dev"
if [ ! -f "$RUN/etc/sasl/sasldb2" ]; then
    mkdir -p "$RUN/etc/sasl"
    chmod 755 "$RUN/etc/sasl"
    printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN CRAM-MD5\n' \
        "$RUN/etc/sasl/sasldb2" > "$RUN/etc/sasl/smtpd.conf"
    head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$RUN/etc/sasl/dev.password"
    chmod 600 "$RUN/etc/sasl/dev.password"
    saslpasswd2 -p -c -f "$RUN/etc/sasl/sasldb2" -u tern.localhost dev < "$RUN/etc/sasl/dev.password"
    if [ "$(id -u)" -eq 0 ]; then chown "root:$OWNER" "$RUN/etc/sasl/sasldb2"; fi
    chmod 640 "$RUN/etc/sasl/sasldb2"
fi
# the sink that stands for "the rest of the Internet"
/usr/bin/python3 scripts/devsink.py 127.0.0.1 2526 "$RUN/sink" &
SINK=$!
trap 'kill $SINK 2>/dev/null; build/tools/tern -c "$RUN/etc" stop >/dev/null 2>&1 || true' EXIT INT TERM
cat <<MSG

tern runs on 127.0.0.1:2525 (config $RUN/etc/tern.conf, log $RUN/maillog).
Send a first message from another terminal:

    swaks --server 127.0.0.1:2525 --from you@example.com --to friend@example.net

tern queues it in $RUN/queue and relays it to the local sink on 127.0.0.1:2526,
which saves it as $RUN/sink/<n>.eml.  Mail for a local user lands in an mbox in
$RUN/mail:

    swaks --server 127.0.0.1:2525 --to root@tern.localhost      # -> $RUN/mail/root
    swaks --server 127.0.0.1:2525 --tls --to root@tern.localhost  # over STARTTLS

The submission port 127.0.0.1:2587 (STARTTLS, then AUTH) and SMTPS on
127.0.0.1:2465 run too, with a self-signed certificate in $RUN/etc/tls and
the SASL user "dev" (its password is in $RUN/etc/sasl/dev.password):

    swaks --server 127.0.0.1:2587 --tls --auth PLAIN --auth-user dev \\
          --auth-password "\$(cat $RUN/etc/sasl/dev.password)" --to friend@example.net
    echo hi | build/tools/sendmail -C $RUN/etc/tern.conf postmaster@tern.localhost

Stop with Ctrl-C.

MSG
build/tools/tern -c "$RUN/etc" start -f
