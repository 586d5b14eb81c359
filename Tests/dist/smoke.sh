#!/usr/bin/env bash
# The release tarball works where no Swift toolchain is on the PATH: it unpacks to
# hearthminds-bootstrap/, lists its steps, and every step's name (a hard link to the one executable,
# hearthminds) answers its own --help, and a dry run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tarball="$root/dist/hearthminds-bootstrap.tar.gz"
[ -f "$tarball" ] || { echo "dist smoke: $tarball missing (make dist)"; exit 1; }
work=$(mktemp -d /tmp/hm-dist-XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
dir="$work/hearthminds-bootstrap"
passed=0 failed=0
check() { # name command...
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then passed=$((passed + 1)); echo "ok   $name"
    else failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$work/out"; fi
}
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
check "no swift on the clean PATH" bash -c "! ${clean_env[*]} bash -c 'command -v swift'"
for f in install.sh README.md bootstrap/lib.sh bootstrap/steps etc/hearthminds.env Migrations; do
    check "tarball has $f" test -e "$dir/$f"
done
check "install.sh --list without Swift" "${clean_env[@]}" "$dir/install.sh" --list
# the pgvector package of the shipped method: one .deb, postgresql-15-pgvector for this machine,
# depending on the server, holding the library and the control file
debs=("$dir"/packages/*.deb)
check "tarball ships one package in packages/" test "${#debs[@]}" -eq 1 -a -f "${debs[0]}"
arch=$(dpkg --print-architecture)
check "packages/ holds postgresql-15-pgvector_*_$arch.deb" \
    bash -c "[[ '$(basename "${debs[0]}")' == postgresql-15-pgvector_*_$arch.deb ]]"
check "the package is postgresql-15-pgvector for $arch" \
    bash -c "[ \"\$(dpkg-deb --field '${debs[0]}' Package Architecture | tr '\n' ' ')\" = 'Package: postgresql-15-pgvector Architecture: $arch ' ]"
check "the package depends on postgresql-15" bash -c "dpkg-deb --field '${debs[0]}' Depends | grep -Eq '(^| )postgresql-15( |,|\$)'"
check "the package holds vector.so and vector.control for PostgreSQL 15" bash -c \
    "dpkg-deb --contents '${debs[0]}' | grep -q ' ./usr/lib/postgresql/15/lib/vector.so\$' && dpkg-deb --contents '${debs[0]}' | grep -q ' ./usr/share/postgresql/15/extension/vector.control\$'"
inode=$(stat -c %i "$dir/bootstrap/bin/hearthminds")
check "bootstrap/bin holds one executable, hearthminds" \
    bash -c "[ \$(find '$dir/bootstrap/bin' -type f ! -samefile '$dir/bootstrap/bin/hearthminds' | wc -l) = 0 ]"
check "hearthminds without a command lists them and exits 64" \
    bash -c "'$dir/bootstrap/bin/hearthminds' 2>&1 >/dev/null | grep -q hm-migrate; [ \${PIPESTATUS[0]} = 64 ]"
while IFS=$'\t' read -r step _; do
    case "$step" in '' | '#'*) continue ;; esac
    check "hm-$step is stripped and static in the Swift runtime" \
        bash -c "file '$dir/bootstrap/bin/hm-$step' | grep -q stripped && ! ldd '$dir/bootstrap/bin/hm-$step' | grep -q libswift"
    check "hm-$step is a hard link to hearthminds" test "$(stat -c %i "$dir/bootstrap/bin/hm-$step")" = "$inode"
    check "hm-$step --help without Swift" \
        bash -c "${clean_env[*]} '$dir/bootstrap/bin/hm-$step' --help | grep -q 'USAGE: hm-$step'"
done <"$dir/bootstrap/steps"
for tool in migrate reset; do # executables beside the steps (Makefile TOOLS)
    check "hm-$tool --help without Swift" "${clean_env[@]}" "$dir/bootstrap/bin/hm-$tool" --help
done
check "install.sh --dry-run from the tarball" "${clean_env[@]}" HEARTHMINDS_LOG=/tmp/hm-dist-smoke.jsonl "$dir/install.sh" --dry-run
echo "dist smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
