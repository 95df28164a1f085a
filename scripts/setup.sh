#!/bin/sh
# setup.sh - install the Debian packages tern needs, create its users, build.
#   scripts/setup.sh [BUILD_DIR] [extra meson options...]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift

PACKAGES="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libevent-dev libc-ares-dev libssl-dev libsasl2-dev libsasl2-modules libsasl2-modules-db
  sasl2-bin liblmdb-dev libcurl4-openssl-dev libcmocka-dev python3-pytest python3-pytest-xdist python3-aiosmtpd swaks openssl
  libnet-ssleay-perl libio-socket-ssl-perl libdigest-hmac-perl dnsmasq-base netcat-openbsd
  bsd-mailx procmail dovecot-core dovecot-lmtpd gnutls-bin sslscan postgrey
  ldnsutils nsd unbound bind9-dnsutils
  libmilter-dev python3-milter opendkim opendkim-tools python3-dkim miltertest
  logwatch pflogsumm
  libmicrohttpd-dev prometheus python3-prometheus-client
  slapd ldap-utils python3-ldap postgresql redis-server libldap-dev libpq-dev libhiredis-dev
  libidn2-dev postfix
  python3-psycopg2 python3-redis
  haproxy
  debhelper mmdebstrap debootstrap lintian systemd"
# (the last line: the Debian package and its test, scripts/pkg-test.sh:
# dpkg-buildpackage, the throwaway root, systemd-analyze verify)

# the DNS servers and the milter (opendkim) the tests start themselves on free loopback ports: installed
# here, they must not run as system services (port 53 would collide with a
# local resolver or the dnsmasq of the tests); prometheus is here for its
# promtool (tests/integration/test_metrics.py), never as a server; slapd,
# postgresql and redis-server are the lookup servers of the issue-14 suites
# (tests/integration/remoteutil.py starts its own throwaway instances);
# postfix is here for its smtp-sink (tests/integration/test_smtp_8bit.py: a
# next hop without 8BITMIME), installed unconfigured and never run; haproxy
# runs in front of smtpd in test_smtpd_haproxy.py with a private config
TEST_ONLY_SERVICES="nsd unbound unbound-resolvconf opendkim prometheus slapd postgresql redis-server postfix haproxy"

# install_quietly PACKAGE... - apt-get install with no service started
# (policy-rc.d answers 101 "not allowed" to every invoke-rc.d), then the
# test-only services disabled when systemd runs them (a unit enabled now would
# start at the next boot).  Only packages installed by this run are touched: an
# unbound the user already runs as the validating resolver stays as it is.
install_quietly() {
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        trap 'rm -f "$policy"' EXIT INT TERM
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    if [ -n "$policy" ]; then
        rm -f "$policy"
        trap - EXIT INT TERM
    fi
    if [ -d /run/systemd/system ]; then
        for svc in $TEST_ONLY_SERVICES; do
            case " $* " in
            *" ${svc%-resolvconf} "*) systemctl disable --now "$svc" >/dev/null 2>&1 || true ;;
            esac
        done
    fi
}

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq || true
    install_quietly $missing
fi

# the unprivileged service user and the maildrop group (DESIGN §3)
if [ "$(id -u)" -eq 0 ]; then
    getent group tern >/dev/null || groupadd -r tern
    id tern >/dev/null 2>&1 || useradd -r -g tern -d /var/spool/tern -s /usr/sbin/nologin tern
    getent group terndrop >/dev/null || groupadd -r terndrop
fi

# extract_exim - Exim's client for tests/integration/test_smtpd_bdat.py
# (it sends BDAT by default): the Debian packages are fetched into a cache
# and unpacked under a private root, never installed, so Exim does not
# become the system MTA (tests/integration/exim_client.py runs it there)
EXIM_DEBS=/var/cache/tern-test/debs
EXIM_ROOT=/opt/tern-test/exim
extract_exim() {
    [ -x "$EXIM_ROOT/usr/sbin/exim4" ] && return 0
    mkdir -p "$EXIM_DEBS" "$EXIM_ROOT"
    (cd "$EXIM_DEBS" && apt-get download -qq exim4-base exim4-daemon-light exim4-config)
    for deb in "$EXIM_DEBS"/exim4-*.deb; do
        dpkg -x "$deb" "$EXIM_ROOT"
    done
}
if [ "$(id -u)" -eq 0 ]; then
    extract_exim
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$@" >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "setup: built tern in $BUILD"
