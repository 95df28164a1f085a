#!/bin/sh
# setup.sh - install the Debian packages tern needs, create its users, build.
#   scripts/setup.sh [BUILD_DIR] [extra meson options...]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift

PACKAGES="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libevent-dev libc-ares-dev libssl-dev libsasl2-dev libsasl2-modules libsasl2-modules-db
  sasl2-bin liblmdb-dev libcurl4-openssl-dev libcmocka-dev python3-pytest python3-aiosmtpd swaks openssl
  libnet-ssleay-perl libio-socket-ssl-perl libdigest-hmac-perl dnsmasq-base netcat-openbsd
  bsd-mailx procmail dovecot-core dovecot-lmtpd gnutls-bin sslscan postgrey"

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
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# the unprivileged service user and the maildrop group (DESIGN §3)
if [ "$(id -u)" -eq 0 ]; then
    getent group tern >/dev/null || groupadd -r tern
    id tern >/dev/null 2>&1 || useradd -r -g tern -d /var/spool/tern -s /usr/sbin/nologin tern
    getent group terndrop >/dev/null || groupadd -r terndrop
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$@" >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "setup: built tern in $BUILD"
