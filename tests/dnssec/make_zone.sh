#!/bin/sh
# make_zone.sh - the DNSSEC test fixture: signed, broken and unsigned zones
# served by nsd (authoritative) behind a validating unbound.
#
#   make_zone.sh DIR AUTH_PORT RESOLVER_PORT   write zones, keys and configs into DIR
#   make_zone.sh --wait AUTH_PORT RESOLVER_PORT  wait (10 s) until both answer
#
# The zones (made fresh each time, keys from ldns-keygen, ECDSAP256SHA256):
#   dane.test   signed (ldns-signzone): mx.dane.test A 127.0.0.1, dane.test MX 10
#               mx.dane.test, _25._tcp.mx.dane.test TLSA 3 1 1 <TLSA_HEX below>,
#               nomx.dane.test A 127.0.0.1 (no MX), other.dane.test MX 10
#               mx.plain.test (a signed MX to an unsigned host)
#   bogus.test  signed with a validity window that ended in 2020: every answer
#               is bogus, unbound answers SERVFAIL
#   plain.test  unsigned (no trust anchor covers it): insecure, no AD bit
# nsd serves the three on 127.0.0.1@AUTH_PORT (it never sets AD); unbound on
# 127.0.0.1@RESOLVER_PORT stubs them to nsd and validates with the DS records
# of dane.test and bogus.test as trust anchors (val-permissive-mode: no).
# Start the servers in the foreground:
#   nsd -d -c DIR/nsd.conf
#   unbound -d -c DIR/unbound.conf
# Packages (scripts/setup.sh): ldnsutils (ldns-keygen, ldns-signzone, drill),
# nsd, unbound.
set -eu

# sha256 of the empty string: a fixed value the unit tests compare with
TLSA_HEX=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# probe - 0 when a drill answer on port has all the given header flags
probe() {
    port=$1 name=$2 type=$3 flag=$4
    drill -p "$port" -D "$name" "@127.0.0.1" "$type" 2>/dev/null |
        grep -q "^;; flags:.* $flag[ ;].*ANSWER: [1-9]"
}

if [ "${1:-}" = "--wait" ]; then
    for _ in $(seq 100); do
        if probe "$2" mx.dane.test A aa && probe "$3" mx.dane.test A ad; then
            exit 0
        fi
        sleep 0.1
    done
    echo "make_zone: nsd on $2 / unbound on $3 not answering" >&2
    exit 1
fi

[ $# -eq 3 ] || { echo "usage: $0 DIR AUTH_PORT RESOLVER_PORT | --wait AUTH_PORT RESOLVER_PORT" >&2; exit 2; }
DIR=$1 AUTH_PORT=$2 RESOLVER_PORT=$3
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$DIR"

# zone_body ZONE - SOA, NS and the records of ZONE
zone_body() {
    z=$1
    cat <<ZONE
\$ORIGIN $z.
\$TTL 300
@       IN SOA ns.$z. hostmaster.$z. 1 3600 600 86400 300
@       IN NS  ns.$z.
ns      IN A   127.0.0.1
mx      IN A   127.0.0.1
@       IN MX  10 mx.$z.
nomx    IN A   127.0.0.1
other   IN MX  10 mx.plain.test.
_25._tcp.mx IN TLSA 3 1 1 $TLSA_HEX
ZONE
}

# sign ZONE [ldns-signzone options] - keys, ZONE.signed, ZONE.ds
sign() {
    z=$1
    shift
    zsk=$(ldns-keygen -a ECDSAP256SHA256 "$z")
    ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$z")
    ldns-signzone "$@" -f "$z.signed" "$z.zone" "$zsk" "$ksk"
    cp "$ksk.ds" "$z.ds"
    rm -f "$zsk.ds"
}

for z in dane.test bogus.test plain.test; do
    zone_body "$z" >"$z.zone"
done
sign dane.test
sign bogus.test -i 20190101000000 -e 20200101000000
cp plain.test.zone plain.test.signed
cat dane.test.ds bogus.test.ds >anchors.ds

cat >nsd.conf <<CONF
server:
    ip-address: 127.0.0.1@$AUTH_PORT
    port: $AUTH_PORT
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$DIR"
    database: ""
    zonelistfile: "$DIR/nsd.zonelist"
    xfrdfile: "$DIR/nsd.xfrd"
    xfrdir: "$DIR"
    pidfile: "$DIR/nsd.pid"
    logfile: "$DIR/nsd.log"
    verbosity: 1
remote-control:
    control-enable: no
CONF
for z in dane.test bogus.test plain.test; do
    printf 'zone:\n    name: "%s"\n    zonefile: "%s/%s.signed"\n' "$z" "$DIR" "$z" >>nsd.conf
done

cat >unbound.conf <<CONF
server:
    interface: 127.0.0.1
    port: $RESOLVER_PORT
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$DIR"
    pidfile: "$DIR/unbound.pid"
    use-syslog: no
    logfile: "$DIR/unbound.log"
    verbosity: 1
    val-log-level: 2
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "validator iterator"
    val-permissive-mode: no
    trust-anchor-file: "$DIR/anchors.ds"
    local-zone: "test." nodefault
    qname-minimisation: no
remote-control:
    control-enable: no
CONF
for z in dane.test bogus.test plain.test; do
    printf 'stub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n' "$z" "$AUTH_PORT" >>unbound.conf
done
