#!/bin/sh
# pkg-test.sh - the Debian package end to end, in a throwaway root:
#   build it (dpkg-buildpackage, lintian), install it with apt into a fresh
#   Debian bookworm (mmdebstrap or debootstrap --variant=minbase), start tern the way the
#   systemd unit does (tern start -D, NOTIFY_SOCKET), send a message in over
#   SMTP from this host, see it delivered to a sink on this host and to a
#   mailbox inside the root (and one more through sendmail and the set-gid
#   terndrop, as a user), stop, purge, and check that the user, the groups,
#   the queue and /etc/tern are gone.  docs/packaging.md.
#
#   scripts/pkg-test.sh [--deb FILE]     (as root)
#
# The bootstrapped root, with apt's lists, is cached as a tarball in
# $TERN_PKGTEST_CACHE (/var/cache/tern-pkgtest) and the .debs apt downloads
# in its archives/: after the first run only the package build takes time.
# The first bootstrap runs while the package builds.  This machine's /usr is
# not touched: the package is built in a temporary copy of the tree and
# installed only inside the root.  Every mount is undone on any exit.
# Prints "ok - CHECK" / "not ok - CHECK" lines and the time of each phase;
# exits 1 when a check failed.
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
SUITE=bookworm
CACHE=${TERN_PKGTEST_CACHE:-/var/cache/tern-pkgtest}
TARBALL=$CACHE/$SUITE-minbase-systemd.tar.zst
DEB=""
[ "${1:-}" = "--deb" ] && DEB=$(readlink -f "$2")

if [ "$(id -u)" -ne 0 ]; then
    echo "pkg-test: must run as root (chroot, mount)" >&2
    exit 2
fi
WORK=$(mktemp -d /var/tmp/tern-pkgtest.XXXXXX)
ROOT=$WORK/root
START=$(date +%s)
FAILED=0
PIDS=""

# pkgtest_mounted - the mount points below $ROOT, deepest first
pkgtest_mounted() {
    awk -v r="$ROOT/" 'index($2 "/", r) == 1 {print $2}' /proc/mounts | sort -r
}

pkgtest_cleanup() {
    set +e
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null
    done
    # a tern left running inside the root (a failed stop) goes too
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    for m in $(pkgtest_mounted); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    if [ -n "$(pkgtest_mounted)" ]; then
        echo "pkg-test: still mounted below $ROOT; not removing $WORK" >&2
    elif [ -z "${TERN_PKGTEST_KEEP:-}" ]; then
        rm -rf "$WORK"
    fi
}
trap pkgtest_cleanup EXIT
trap 'exit 1' INT TERM HUP

phase() {
    echo "== $1 ($(($(date +%s) - START))s)"
}

check() {
    name=$1
    shift
    if "$@" >>"$WORK/checks.log" 2>&1; then
        echo "ok - $name"
    else
        echo "not ok - $name"
        FAILED=$((FAILED + 1))
    fi
}

in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# pkgtest_mirror - the Debian mirror this machine's apt uses for $SUITE
pkgtest_mirror() {
    {
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v s="$SUITE" '$1 == "deb" && $3 == s {print $2; exit}'
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
            awk -v s="$SUITE" 'BEGIN {RS = ""}
                $0 ~ ("Suites:[^\n]*[ \t]" s "([ \t\n]|$)") && match($0, /URIs:[ \t]*[^ \t\n]+/) {
                    u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit }'
        echo http://deb.debian.org/debian
    } | head -n 1
}

# pkgtest_build - the package from a copy of the tree (no build dirs)
pkgtest_build() {
    mkdir -p "$WORK/src/tern"
    git ls-files -co --exclude-standard | grep -v -E '^(build[^/]*|debian/build)/' |
        tar -cf - -T - | tar -xf - -C "$WORK/src/tern"
    (cd "$WORK/src/tern" &&
        DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" \
            dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1
}

# pkgtest_bootstrap - a minbase root with apt's lists, cached as a tarball;
# with systemd's files (not running it): the postinst enables the unit and
# systemd-analyze verify finds the units tern.service refers to.  mmdebstrap
# (parallel downloads, 3x faster) when installed, else debootstrap.
pkgtest_bootstrap() {
    mkdir -p "$CACHE/archives/partial" "$WORK/boot"
    if command -v mmdebstrap >/dev/null; then
        # the output's name ends in .tar.zst: mmdebstrap's format and compression
        mmdebstrap --mode=root --variant=minbase --include=systemd --skip=cleanup/apt/lists \
            "$SUITE" "$WORK/root.tar.zst" "$(pkgtest_mirror)"
        mv "$WORK/root.tar.zst" "$TARBALL"
        return
    fi
    debootstrap --variant=minbase --include=systemd "$SUITE" "$WORK/boot" "$(pkgtest_mirror)"
    cp /etc/resolv.conf "$WORK/boot/etc/resolv.conf"
    chroot "$WORK/boot" apt-get update -qq
    chroot "$WORK/boot" apt-get clean
    tar -C "$WORK/boot" --zstd -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$WORK/boot"
}

# --- 1. the package, and the root (bootstrapped meanwhile the first time)
phase "build the package and the root"
boot_pid=""
if [ ! -f "$TARBALL" ]; then
    pkgtest_bootstrap >"$WORK/bootstrap.log" 2>&1 &
    boot_pid=$!
    PIDS="$boot_pid"
fi
if [ -z "$DEB" ]; then
    if ! pkgtest_build; then
        tail -40 "$WORK/build.log"
        echo "not ok - dpkg-buildpackage -b -us -uc"
        exit 1
    fi
    echo "ok - dpkg-buildpackage -b -us -uc ($(($(date +%s) - START))s)"
    DEB=$(ls "$WORK"/src/tern_*.deb)
    # every tag lintian finds is printed; an error fails
    check "lintian: no errors" sh -c "lintian --fail-on error '$DEB' >'$WORK/lintian.log' 2>&1"
    sed -n 's/^\([EWIP]: \)/   lintian \1/p' "$WORK/lintian.log"
fi
if [ -n "$boot_pid" ]; then
    if ! wait "$boot_pid"; then
        tail -20 "$WORK/bootstrap.log"
        echo "not ok - bootstrap a minbase $SUITE root"
        exit 1
    fi
    PIDS=""
    echo "ok - bootstrap a minbase $SUITE root ($(($(date +%s) - START))s)"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" --zstd -xf "$TARBALL"
mount -t proc proc "$ROOT/proc"
mkdir -p "$CACHE/archives/partial"
mount --bind "$CACHE/archives" "$ROOT/var/cache/apt/archives"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# --- 2. install with apt: the dependencies come from the mirror
phase "install"
host_usr_before=$(ls -la /usr/sbin/sendmail /usr/libexec/tern 2>&1 | sha256sum)
cp "$DEB" "$ROOT/tmp/"
if ! in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$DEB")" \
    >"$WORK/install.log" 2>&1; then
    tail -30 "$WORK/install.log"
    echo "not ok - apt-get install ./tern.deb"
    exit 1
fi
echo "ok - apt-get install ./$(basename "$DEB")"
check "the tern user exists" in_root getent passwd tern
check "the terndrop group exists" in_root getent group terndrop
check "terndrop is set-gid terndrop (dpkg-statoverride)" \
    sh -c "[ \"\$(chroot '$ROOT' stat -c %A:%G /usr/sbin/terndrop)\" = -rwxr-sr-x:terndrop ]"
check "/usr/lib/sendmail, mailq, newaliases, makemap, praliases" sh -c \
    "cd '$ROOT' && test -x usr/lib/sendmail -a -x usr/sbin/mailq -a -x usr/sbin/newaliases \
     -a -x usr/sbin/makemap -a -x usr/sbin/praliases"
check "the queue exists (maildrop: group terndrop)" \
    sh -c "[ \"\$(chroot '$ROOT' stat -c %G /var/spool/tern/maildrop)\" = terndrop ]"
check "newaliases built /etc/aliases.lmdb" test -f "$ROOT/etc/aliases.lmdb"
check "tern check accepts the shipped tern.conf" in_root tern check
check "systemd-analyze verify tern.service" \
    systemd-analyze verify --man=no --root="$ROOT" /lib/systemd/system/tern.service
echo "   $(systemd-analyze security --offline=yes --root="$ROOT" tern.service 2>&1 | tail -n 1)"
check "the unit is enabled, and sendmail.service is its alias" sh -c \
    "cd '$ROOT/etc/systemd/system' && [ -L multi-user.target.wants/tern.service ] &&
     [ \"\$(readlink sendmail.service)\" = /lib/systemd/system/tern.service ]"
check "tern.conf is a conffile" grep -qx /etc/tern/tern.conf "$ROOT/var/lib/dpkg/info/tern.conffiles"

# --- 3. start as the unit does, with loopback ports on this host
phase "start and deliver"
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
SINK_PORT=$(free_port)
ID="pkgtest-$$-$START"
/usr/bin/python3 -u -m aiosmtpd -n -l "127.0.0.1:$SINK_PORT" >"$WORK/sink.out" 2>&1 &
PIDS="$!"
in_root useradd -m alice
sed -i "s/^smtpd_listen = .*/smtpd_listen = 127.0.0.1:$PORT/" "$ROOT/etc/tern/tern.conf"
cat >>"$ROOT/etc/tern/tern.conf" <<EOF
myhostname = pkgtest.example
mydestination = pkgtest.example, localhost
relayhost = [127.0.0.1]:$SINK_PORT
maillog_file = /var/log/tern.log
smtpd_peername_lookup = no
accept_unresolvable_domains = yes
queue_run_delay = 1s
EOF
NOTIFY="tern-pkgtest-$$"
/usr/bin/python3 - "$NOTIFY" >"$WORK/notify.out" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
s.settimeout(60)
while True:
    print(s.recv(4096).decode().replace("\n", " "), flush=True)
EOF
PIDS="$PIDS $!"
sleep 0.3
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="@$NOTIFY" \
    /usr/bin/tern start -D >"$WORK/master.out" 2>&1 &
MASTER=$!
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
    n=$(($1 * 10))
    shift
    while [ $n -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
check "READY=1 on NOTIFY_SOCKET (Type=notify)" wait_for 20 grep -q READY=1 "$WORK/notify.out"
check "the master stays in the foreground (tern start -D)" kill -0 "$MASTER"
check "SMTP in from the host: alice@pkgtest.example and bob@sink.test" \
    swaks --server "127.0.0.1:$PORT" --from sender@example.org \
    --to alice@pkgtest.example,bob@sink.test --header "Subject: $ID" --body "$ID over SMTP"
check "sendmail as user alice through the set-gid terndrop" sh -c \
    "printf 'Subject: $ID-sendmail\n\n$ID via sendmail\n' |
     chroot --userspec=alice:alice '$ROOT' /usr/sbin/sendmail -i alice@pkgtest.example"
check "delivered out to the sink on this host" wait_for 30 grep -q "$ID over SMTP" "$WORK/sink.out"
check "delivered to /var/mail/alice inside the root" \
    wait_for 30 grep -q "$ID over SMTP" "$ROOT/var/mail/alice"
check "the sendmail submission delivered to /var/mail/alice" \
    wait_for 30 grep -q "$ID via sendmail" "$ROOT/var/mail/alice"
check "the master logs to maillog_file" grep -q "daemon started" "$ROOT/var/log/tern.log"
check "mailq works as alice" chroot --userspec=alice:alice "$ROOT" /usr/sbin/mailq

# --- 4. stop and purge
phase "stop and purge"
check "tern stop" in_root tern stop
# gone, or a zombie this shell has not reaped yet
check "the master exited" wait_for 10 sh -c "[ ! -e /proc/$MASTER ] || grep -q ') Z ' /proc/$MASTER/stat"
check "STOPPING=1 on NOTIFY_SOCKET" grep -q STOPPING=1 "$WORK/notify.out"
if ! in_root apt-get purge -y -qq tern >"$WORK/purge.log" 2>&1; then
    tail -20 "$WORK/purge.log"
    echo "not ok - apt-get purge tern"
    FAILED=$((FAILED + 1))
fi
check "purge removed the tern user" sh -c "! chroot '$ROOT' getent passwd tern"
check "purge removed the tern and terndrop groups" \
    sh -c "! chroot '$ROOT' getent group tern && ! chroot '$ROOT' getent group terndrop"
check "purge removed the queue and data directories" \
    sh -c "[ ! -e '$ROOT/var/spool/tern' ] && [ ! -e '$ROOT/var/lib/tern' ]"
check "purge removed /etc/tern (the edited conffile too)" test ! -e "$ROOT/etc/tern"
check "purge removed the statoverride" sh -c "[ -z \"\$(chroot '$ROOT' dpkg-statoverride --list)\" ]"
check "purge removed /usr/sbin/sendmail" test ! -e "$ROOT/usr/sbin/sendmail"
check "purge removed the unit's enable links" sh -c "cd '$ROOT/etc/systemd/system' &&
    [ ! -e multi-user.target.wants/tern.service ] && [ ! -L sendmail.service ]"
check "this machine's /usr untouched" \
    sh -c "[ \"\$(ls -la /usr/sbin/sendmail /usr/libexec/tern 2>&1 | sha256sum)\" = '$host_usr_before' ]"

phase "done"
if [ "$FAILED" -gt 0 ]; then
    echo "pkg-test: $FAILED check(s) failed; logs in $WORK (kept)"
    TERN_PKGTEST_KEEP=1
    for f in checks.log master.out notify.out; do
        echo "--- $f"
        tail -20 "$WORK/$f"
    done
    [ -f "$ROOT/var/log/tern.log" ] && tail -20 "$ROOT/var/log/tern.log"
    exit 1
fi
echo "pkg-test: all checks passed in $(($(date +%s) - START))s"
