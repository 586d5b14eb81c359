#!/usr/bin/env bash
# The release tarball works where no Swift toolchain is on the PATH: it unpacks to
# hearthminds-bootstrap/, lists its steps, and every step's name (a hard link to the one executable,
# hearthminds) answers its own --help, and a dry run. Every command has its man page, which
# renders, and its bash completion, which parses and completes.
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
for f in install.sh README.md docs/operations.md docs/configuration.md bootstrap/lib.sh bootstrap/steps etc/hearthminds.env Migrations; do
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
check "the package depends on postgresql-15 of any minor version (no '(>> 15.x)': every Debian 12 point release)" \
    bash -c "dpkg-deb --field '${debs[0]}' Depends | tr ',' '\n' | sed 's/^ *//; s/ *\$//' | grep -qx 'postgresql-15'"
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
# Man pages: one per command, and per hm-migrate subcommand; each renders without a warning.
renders() { # FILE NAME: man reads FILE, without a warning, and shows NAME
    local out
    out=$(cd "$dir" && "${clean_env[@]}" MANPAGER=cat MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null) || return 1
    [ -z "$out" ] || { echo "$out"; return 1; }
    (cd "$dir" && "${clean_env[@]}" MANPAGER=cat man -l "$1" 2>/dev/null) | grep -q -- "$2"
}
# Bash completion: what bash offers after WORDS (the last is the word being completed), by the
# function SCRIPT registers for the command (complete -p), in a bash with nothing else loaded.
offers() { # SCRIPT "EXPECTED ..." WORD...
    local script=$1 expected=$2 got word
    shift 2
    got=$("${clean_env[@]}" bash --norc --noprofile -c '
        script=$1; shift
        . "$script" || exit 1
        spec=$(complete -p "$1") || exit 1
        function=${spec#* -F }; function=${function%% *}
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
        "$function" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' offers "$script" "$@") || { echo "no completion: $got"; return 1; }
    for word in $expected; do
        grep -qx -- "$word" <<<"$got" || { echo "missing $word in: $(tr '\n' ' ' <<<"$got")"; return 1; }
    done
}
commands=()
while IFS=$'\t' read -r step _; do
    case "$step" in '' | '#'*) continue ;; esac
    commands+=("hm-$step")
done <"$dir/bootstrap/steps"
commands+=(hm-migrate hm-reset)
for command in "${commands[@]}"; do
    check "man page bootstrap/man/$command.1 renders" renders "./bootstrap/man/$command.1" "$command"
    completion="$dir/bootstrap/completions/$command.bash"
    check "bash completion $command.bash parses" bash -n "$completion"
    [ "$command" = hm-migrate ] && continue # its flags are its subcommands' (below)
    check "bash completion of $command offers --dry-run, --config, --set, --help" \
        offers "$completion" "--dry-run --config --set --help" "$command" --
done
check "man ./bootstrap/man/hm-migrate.1 shows every subcommand" bash -c \
    "cd '$dir' && ${clean_env[*]} MANPAGER=cat man ./bootstrap/man/hm-migrate.1 | grep -Eq '^ +stamp ' && ${clean_env[*]} MANPAGER=cat man ./bootstrap/man/hm-migrate.1 | grep -q -- '--applied'"
for subcommand in up down stamp current history new check; do
    check "man page bootstrap/man/hm-migrate.$subcommand.1 renders" renders "./bootstrap/man/hm-migrate.$subcommand.1" "hm-migrate $subcommand"
done
check "bash completion of hm-migrate offers its subcommands" \
    offers "$dir/bootstrap/completions/hm-migrate.bash" "up down stamp current history new check" hm-migrate ""
check "bash completion of hm-migrate down offers --steps and --to" \
    offers "$dir/bootstrap/completions/hm-migrate.bash" "--steps --to --sql --database --jobs" hm-migrate down --
check "bash completion of hm-pgvector offers --install-only" \
    offers "$dir/bootstrap/completions/hm-pgvector.bash" "--install-only" hm-pgvector --
check "bash completion of hm-reset offers --yes, --cluster, --service-user" \
    offers "$dir/bootstrap/completions/hm-reset.bash" "--yes --cluster --service-user" hm-reset --
check "install.sh --dry-run from the tarball" "${clean_env[@]}" HEARTHMINDS_LOG=/tmp/hm-dist-smoke.jsonl "$dir/install.sh" --dry-run
echo "dist smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
