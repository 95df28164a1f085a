#!/bin/sh
# make_zone.sh - the DNSSEC test fixture: signed, broken and unsigned zones
# served by nsd (authoritative) behind a validating unbound.
#
#   make_zone.sh DIR AUTH_PORT RESOLVER_PORT
#       the fixed zones below, keys and configs into DIR (lib/dns unit tests,
#       ternlib.start_dnssec)
#   make_zone.sh --sign DIR ZONE [ldns-signzone options...]
#       sign DIR/ZONE.zone with fresh keys: DIR/ZONE.signed, DIR/ZONE.ds
#   make_zone.sh --servers DIR AUTH_PORT RESOLVER_PORT ZONE...
#       nsd.conf serving DIR/ZONE.signed for each ZONE, unbound.conf stubbing
#       them to nsd with every DIR/ZONE.ds present as a trust anchor
#   make_zone.sh --wait AUTH_PORT RESOLVER_PORT [ZONE [FLAG]]
#       wait (10 s) until nsd answers ZONE SOA (aa) and unbound answers it with
#       header flag FLAG (default: dane.test, ad)
# (--sign and --servers are what tests/integration/daneutil.py builds its
# zones from.)
#
# The fixed zones (made fresh each time, keys from ldns-keygen, ECDSAP256SHA256):
#   dane.test   signed (ldns-signzone): mx.dane.test A 127.0.0.1, dane.test MX 10
#               mx.dane.test, _25._tcp.mx.dane.test TLSA 3 1 1 <TLSA_HEX below>,
#               nomx.dane.test A 127.0.0.1 (no MX), other.dane.test MX 10
#               mx.plain.test (a signed MX to an unsigned host)
#   bogus.test  signed with a validity window that ended in 2020: every answer
#               is bogus, unbound answers SERVFAIL
#   plain.test  unsigned (no trust anchor covers it): insecure, no AD bit
# nsd serves the zones on 127.0.0.1@AUTH_PORT (it never sets AD); unbound on
# 127.0.0.1@RESOLVER_PORT stubs them to nsd and validates with the DS records
# of the signed zones as trust anchors (val-permissive-mode: no); any other
# name is REFUSED at once (no query leaves the host).
# Start the servers in the foreground:
#   nsd -d -c DIR/nsd.conf
#   unbound -d -c DIR/unbound.conf
# Packages (scripts/setup.sh): ldnsutils (ldns-keygen, ldns-signzone, drill),
# nsd, unbound.
set -eu

# sha256 of the empty string: a fixed value the unit tests compare with
TLSA_HEX=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

usage() {
    sed -n '4,15p' "$0" | sed 's/^# //' >&2
    exit 2
}

# probe - 0 when a drill answer on port has all the given header flags
probe() {
    port=$1 name=$2 type=$3 flag=$4
    drill -p "$port" -D "$name" "@127.0.0.1" "$type" 2>/dev/null |
        grep -q "^;; flags:.* $flag[ ;].*ANSWER: [1-9]"
}

# wait_servers AUTH_PORT RESOLVER_PORT ZONE FLAG
wait_servers() {
    for _ in $(seq 100); do
        if probe "$1" "$3" SOA aa && probe "$2" "$3" SOA "$4"; then
            exit 0
        fi
        sleep 0.1
    done
    echo "make_zone: nsd on $1 / unbound on $2 not answering $3 SOA with $4" >&2
    exit 1
}

# zone_body ZONE - SOA, NS and the records of a fixed ZONE
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

# sign DIR ZONE [ldns-signzone options] - keys, ZONE.signed, ZONE.ds
sign() {
    (
        cd "$1"
        z=$2
        shift 2
        zsk=$(ldns-keygen -a ECDSAP256SHA256 "$z")
        ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$z")
        ldns-signzone "$@" -f "$z.signed" "$z.zone" "$zsk" "$ksk"
        cp "$ksk.ds" "$z.ds"
        rm -f "$zsk.ds"
    )
}

# nsd_conf DIR AUTH_PORT ZONE...
nsd_conf() {
    d=$1 port=$2
    shift 2
    cat <<CONF
server:
    ip-address: 127.0.0.1@$port
    port: $port
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$d"
    database: ""
    zonelistfile: "$d/nsd.zonelist"
    xfrdfile: "$d/nsd.xfrd"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    logfile: "$d/nsd.log"
    verbosity: 1
remote-control:
    control-enable: no
CONF
    for z in "$@"; do
        printf 'zone:\n    name: "%s"\n    zonefile: "%s/%s.signed"\n' "$z" "$d" "$z"
    done
}

# unbound_conf DIR AUTH_PORT RESOLVER_PORT ZONE...
unbound_conf() {
    d=$1 auth=$2 port=$3
    shift 3
    cat <<CONF
server:
    interface: 127.0.0.1
    port: $port
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$d"
    pidfile: "$d/unbound.pid"
    use-syslog: no
    logfile: "$d/unbound.log"
    verbosity: 1
    val-log-level: 2
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "validator iterator"
    val-permissive-mode: no
    trust-anchor-file: "$d/anchors.ds"
    qname-minimisation: no
    local-zone: "." refuse
    local-zone: "test." nodefault
CONF
    for z in "$@"; do
        printf '    local-zone: "%s." transparent\n' "$z"
    done
    printf 'remote-control:\n    control-enable: no\n'
    for z in "$@"; do
        printf 'stub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n' "$z" "$auth"
    done
}

# servers DIR AUTH_PORT RESOLVER_PORT ZONE... - both configs and anchors.ds
servers() {
    d=$1 auth=$2 resolver=$3
    shift 3
    : >"$d/anchors.ds"
    for z in "$@"; do
        if [ -f "$d/$z.ds" ]; then cat "$d/$z.ds" >>"$d/anchors.ds"; fi
    done
    nsd_conf "$d" "$auth" "$@" >"$d/nsd.conf"
    unbound_conf "$d" "$auth" "$resolver" "$@" >"$d/unbound.conf"
}

case "${1:-}" in
--wait)
    [ $# -ge 3 ] || usage
    wait_servers "$2" "$3" "${4:-dane.test}" "${5:-ad}"
    ;;
--sign)
    [ $# -ge 3 ] || usage
    shift
    sign "$@"
    exit 0
    ;;
--servers)
    [ $# -ge 5 ] || usage
    shift
    servers "$@"
    exit 0
    ;;
esac

[ $# -eq 3 ] || usage
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
for z in dane.test bogus.test plain.test; do
    zone_body "$z" >"$DIR/$z.zone"
done
sign "$DIR" dane.test
sign "$DIR" bogus.test -i 20190101000000 -e 20200101000000
cp "$DIR/plain.test.zone" "$DIR/plain.test.signed"
servers "$DIR" "$2" "$3" dane.test bogus.test plain.test
