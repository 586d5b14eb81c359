#!/usr/bin/env bash
# Tests/private-host.sh COMMAND [ARG...]: runs COMMAND (the Swift tests) as on a host that never
# ran HearthMinds, without touching this host's own state: in a mount namespace of its own where
#   /etc, /var/log and /run are overlays of the host's (what the tests write there stays in the
#     namespace: users they add, drop-ins, logs), and in them
#   /etc/hearthminds, /var/log/hearthminds and /run/hearthminds do not exist (whatever earlier
#     runs left on this machine), and
#   /etc/postgresql, /var/lib/postgresql, /var/log/postgresql and /run/postgresql are empty
#     directories of the postgres account's: the host's clusters are out of sight, the tests'
#     clusters are made there and gone with the namespace;
#   /var/lib/prometheus (where the steps write their textfile metrics) and /var/lib/hearthminds
#     (where one AI's restore keeps its dump) are empty directories.
# The host's packages (/usr, /var/lib/dpkg) are the host's: make setup installs what the tests
# need before this runs. The host's run lock is not taken either: /run/hearthminds is private.
# Run as root. Exit status: COMMAND's; 2 when the namespace cannot be made.
#
# Why: CI runs on a machine with a past (clusters, client files and logs of earlier runs), and
# a test that passed only because of them failed on a machine without one (issue 20).
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') echo "usage: $0 COMMAND [ARG...]" >&2; exit 64 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "private-host: must run as root (mount namespaces)" >&2; exit 2; }
getent passwd postgres >/dev/null || { echo "private-host: no postgres account (make setup installs PostgreSQL)" >&2; exit 2; }

# On disk (the tests' clusters' data can be large), removed when the command has ended.
scratch=$(mktemp -d "${HEARTHMINDS_PRIVATE_BASE:-/var/tmp}/hm-private-host.XXXXXX")
trap 'rm -rf --one-file-system "$scratch"' EXIT
chmod 0755 "$scratch"

set +e
unshare --mount --propagation private -- /bin/bash -c '
    set -euo pipefail
    s=$1
    shift
    fail() { echo "private-host: $*" >&2; exit 2; }
    # The overlays: upper and work directories on a tmpfs of the namespace (an overlay cannot be
    # the upper layer of another, and the root file system may be one).
    mkdir -m 0700 "$s/layers"
    mount -t tmpfs -o mode=0700 hm-private-layers "$s/layers" || fail "cannot mount a tmpfs"
    for d in etc var/log run; do
        n=${d//\//-}
        mkdir -p "$s/layers/$n.upper" "$s/layers/$n.work"
        mount -t overlay hm-private-"$n" \
            -o "lowerdir=/$d,upperdir=$s/layers/$n.upper,workdir=$s/layers/$n.work" "/$d" ||
            fail "cannot mount an overlay on /$d (is the overlay module there?)"
    done
    # What earlier runs of the suite left: out of sight.
    rm -rf /etc/hearthminds /var/log/hearthminds /run/hearthminds
    # PostgreSQL'"'"'s state: empty directories of the postgres account'"'"'s.
    for d in /etc/postgresql /var/lib/postgresql /var/log/postgresql /run/postgresql; do
        n=${d//\//-}
        mkdir -p "$s/pg$n" "$d"
        # (as postgresql-common makes them)
        case "$d" in
            /run/postgresql) chown postgres:postgres "$s/pg$n" && chmod 2775 "$s/pg$n" ;;
            /var/log/postgresql) chown root:postgres "$s/pg$n" && chmod 1775 "$s/pg$n" ;;
            *) chown postgres:postgres "$s/pg$n" && chmod 0755 "$s/pg$n" ;;
        esac
        mount --bind "$s/pg$n" "$d" || fail "cannot bind a private $d"
    done
    # The textfile metrics every step writes (NODE_EXPORTER_TEXTFILE_DIR, under
    # /var/lib/prometheus): an empty directory of the namespace'"'"'s, root'"'"'s.
    mkdir -p "$s/prometheus" /var/lib/prometheus
    chmod 0755 "$s/prometheus"
    mount --bind "$s/prometheus" /var/lib/prometheus || fail "cannot bind a private /var/lib/prometheus"
    # /var/lib/hearthminds (where one AI'"'"'s restore keeps its dump): the namespace'"'"'s own, root'"'"'s.
    mkdir -p "$s/hearthminds-lib" /var/lib/hearthminds
    chmod 0700 "$s/hearthminds-lib"
    mount --bind "$s/hearthminds-lib" /var/lib/hearthminds || fail "cannot bind a private /var/lib/hearthminds"
    exec "$@"
' private-host "$scratch" "$@"
rc=$?
set -e
exit "$rc"
