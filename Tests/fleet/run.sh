#!/usr/bin/env bash
# The fleet tier: the Ansible role (ansible/) runs the suite on three fresh Debian 12 hosts over
# SSH, as an operator's controller would. Run as root: sudo Tests/fleet/run.sh [--dist TARBALL]
#
# ansible-core from PyPI in a virtual environment made here (wheels cached in
# /var/cache/hearthminds-fleet/wheels). Each host is a fresh Debian 12 root (the end-to-end
# tier's cached apt root, with openssh-server and python3 added: cached too) in its own PID,
# mount, UTS and network namespace (Tests/e2e/lib.sh), joined to this machine - the controller -
# by a veth pair in a private network (FLEET_NET.0/24), with no other route: the hosts reach the
# Debian mirror only through a forwarding proxy on the controller's end of their veth
# (Tests/fleet/proxy.py, apt's Acquire::http::Proxy), which forwards to the mirror's hosts of this
# machine's apt sources and nothing else. sshd in each host takes root's key only (a key made
# here); the hosts' keys are read from their roots into a known_hosts file, checked strictly.
# Prints one line per check and "fleet: N passed, N failed"; exits non-zero on any failure and
# fails loudly (exit 2) when it cannot run.
#
# Environment: FLEET_NET (default 10.250.77: the hosts' /24), FLEET_PROXY_PORT (3142),
# FLEET_CACHE_DIR (/var/cache/hearthminds-fleet), FLEET_PYTHON (/usr/bin/python3), FLEET_KEEP=1
# (keep the work directory and roots), and the e2e tier's E2E_MIRROR, E2E_SECURITY_MIRROR,
# E2E_REFRESH_CACHE, E2E_CACHE_DIR, E2E_WORK_BASE.
set -euo pipefail

FLEET_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# No Python of the controller (Ansible loading the role's plugins, the unit tests importing the
# module) writes bytecode into the repository's tree; passed on through each env -i below.
export PYTHONDONTWRITEBYTECODE=1
REPO=$(cd "$FLEET_DIR/../.." && pwd)
# shellcheck source=Tests/e2e/lib.sh
. "$REPO/Tests/e2e/lib.sh"

DIST="$REPO/dist/hearthminds-bootstrap.tar.gz"
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) DIST=$2; shift ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--dist TARBALL]" >&2; exit 64 ;;
    esac
    shift
done
DIST=$(readlink -f "$DIST")

FLEET_NET=${FLEET_NET:-10.250.77}
FLEET_PROXY_PORT=${FLEET_PROXY_PORT:-3142}
FLEET_CACHE_DIR=${FLEET_CACHE_DIR:-/var/cache/hearthminds-fleet}
FLEET_PYTHON=${FLEET_PYTHON:-/usr/bin/python3}
[ "${FLEET_KEEP:-0}" = 1 ] && E2E_KEEP=1 # (the roots too)
HOSTS=(hm-fleet-1 hm-fleet-2 hm-fleet-3)
RELEASE_BASE=/opt/hearthminds

# A failure to set up: the tier cannot run. Never a skip.
e2e_die() {
    E2E_DONE=1
    printf 'fleet: CANNOT RUN: %s\n' "$*" >&2
    printf 'fleet: %d passed, %d failed\n' "$E2E_PASSED" "$((E2E_FAILED + 1))"
    exit 2
}

FW="" PROXY_PID="" SAMPLER_PID="" SYSLOG_PID="" PEEKER_PID="" GUARD_ROUTE=0
declare -a H_ROOT H_WORK H_NSPID H_UNSHARE H_ADDR H_CTL
TIMINGS=()

# host I: makes host I's root and namespace the current ones (ROOT, WORK, NS_PID: in_root).
host() {
    local i=$1
    ROOT=${H_ROOT[$i]} WORK=${H_WORK[$i]} NS_PID=${H_NSPID[$i]} NS_UNSHARE=${H_UNSHARE[$i]}
    E2E_NS_EXTRA=(--net --uts)
}

cleanup() {
    local rc=$? i
    [ -n "$SAMPLER_PID" ] && { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; }
    [ -n "$SYSLOG_PID" ] && { kill "$SYSLOG_PID" 2>/dev/null || true; wait "$SYSLOG_PID" 2>/dev/null || true; }
    [ -n "$PEEKER_PID" ] && { kill "$PEEKER_PID" 2>/dev/null || true; wait "$PEEKER_PID" 2>/dev/null || true; }
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }
    for i in "${!H_ROOT[@]}"; do
        # Ansible's ssh master connections (ControlPersist) end with the test
        [ -n "${H_ADDR[$i]:-}" ] && ssh -o ControlPath="$FW/cp/%C" -O exit "root@${H_ADDR[$i]}" >/dev/null 2>&1 || true
        host "$i"
        root_remove
    done
    [ "$GUARD_ROUTE" = 1 ] && ip route del unreachable "$FLEET_NET.0/24" 2>/dev/null || true
    if [ -n "$FW" ] && [ -d "$FW" ]; then
        if [ "${FLEET_KEEP:-0}" = 1 ]; then e2e_log "-- kept $FW (FLEET_KEEP=1)"; else rm -rf --one-file-system "$FW"; fi
    fi
    e2e_abort_summary fleet "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timing() { TIMINGS+=("$(printf '  %-52s %7ss' "$1" "$(e2e_secs "$2")")"); }

# --- preconditions ---------------------------------------------------------------------------

fleet_require() {
    e2e_require
    local tool missing=()
    for tool in ip ssh ssh-keygen sha256sum; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
    [ "${#missing[@]}" -eq 0 ] || e2e_die "missing tools: ${missing[*]} (make setup installs them: iproute2, openssh-client)"
    [ -x "$FLEET_PYTHON" ] || e2e_die "no Python at $FLEET_PYTHON for the controller's Ansible (FLEET_PYTHON)"
    "$FLEET_PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
        e2e_die "$FLEET_PYTHON cannot make a virtual environment (make setup installs python3-venv)"
    [ -s "$DIST" ] || e2e_die "no release tarball at $DIST (make dist)"
}

# host NAME of a mirror URI (the proxy forwards to these only); the proxy speaks plain HTTP.
uri_host() {
    case "$1" in
        http://*) local rest=${1#http://}; rest=${rest%%/*}; printf '%s\n' "${rest%%:*}" ;;
        *) return 1 ;;
    esac
}

# The controller's Ansible: a virtual environment made for this run, from cached wheels
# (downloaded from PyPI the first time, or when the pins change).
make_venv() {
    local wheels="$FLEET_CACHE_DIR/wheels" t0
    t0=$(e2e_now_ms)
    mkdir -p "$wheels"
    if ! "$FLEET_PYTHON" -m venv "$FW/venv" >"$FW/venv.log" 2>&1; then
        cat "$FW/venv.log" >&2
        e2e_die "cannot make a virtual environment with $FLEET_PYTHON"
    fi
    if ! "$FW/venv/bin/pip" install -q --no-index --find-links "$wheels" -r "$FLEET_DIR/requirements.txt" >>"$FW/venv.log" 2>&1; then
        e2e_log "-- fetching the pinned wheels from PyPI into $wheels (cached afterwards)"
        "$FW/venv/bin/pip" download -q -d "$wheels" -r "$FLEET_DIR/requirements.txt" >>"$FW/venv.log" 2>&1 ||
            { tail -n 20 "$FW/venv.log" >&2; e2e_die "cannot download the pinned wheels from PyPI (Tests/fleet/requirements.txt)"; }
        "$FW/venv/bin/pip" install -q --no-index --find-links "$wheels" -r "$FLEET_DIR/requirements.txt" >>"$FW/venv.log" 2>&1 ||
            { tail -n 20 "$FW/venv.log" >&2; e2e_die "cannot install ansible-core into the virtual environment"; }
    fi
    ANSIBLE_VERSION=$("$FW/venv/bin/ansible-playbook" --version) || e2e_die "ansible-playbook does not run"
    ANSIBLE_VERSION=${ANSIBLE_VERSION%%$'\n'*}
    timing "controller: venv with ansible-core (cached wheels)" $(($(e2e_now_ms) - t0))
}

# The cached "fleet" root: the e2e tier's apt root with what an Ansible-managed Debian server
# has and minbase lacks: openssh-server and python3 (no recommends). Its host keys are removed:
# each host makes its own.
fleet_layer_build() {
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 0755 "$ROOT/usr/sbin/policy-rc.d" &&
        in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server python3 &&
        in_root apt-get clean &&
        rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT"/etc/ssh/ssh_host_*
}

# The private network: nothing else of this machine in FLEET_NET.0/24; a route that rejects
# what the hosts' own routes do not cover, so that no packet for the /24 ever leaves the machine
# (a host whose link is down is unreachable here, not somewhere else).
network_guard() {
    ip route del unreachable "$FLEET_NET.0/24" 2>/dev/null || true # a killed run's
    local l
    for l in $(ip -o link show | awk -F': ' '{print $2}' | grep -E '^hmfleet[0-9]+$' || true); do ip link del "$l" 2>/dev/null || true; done
    [ -z "$(ip -4 -o addr show to "$FLEET_NET.0/24")" ] || e2e_die "$FLEET_NET.0/24 is in use on this machine (ip addr); set FLEET_NET"
    [ -z "$(ip -4 route show root "$FLEET_NET.0/24")" ] || e2e_die "$FLEET_NET.0/24 is routed on this machine (ip route); set FLEET_NET"
    ip route add unreachable "$FLEET_NET.0/24" || e2e_die "cannot add the guard route for $FLEET_NET.0/24"
    GUARD_ROUTE=1
}

# make_host I: host I's fresh root, its namespace with a network of its own, the veth pair, sshd.
make_host() {
    local i=$1 name=${HOSTS[$1]} n=$(($1 + 1)) k
    H_CTL[$i]="$FLEET_NET.$((4 * n + 1))"
    H_ADDR[$i]="$FLEET_NET.$((4 * n + 2))"
    root_create "fleet-$n" "$FLEET_TARBALL"
    H_ROOT[$i]=$ROOT H_WORK[$i]=$WORK H_NSPID[$i]="" H_UNSHARE[$i]=""
    echo "$name" >"$ROOT/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" >"$ROOT/etc/hosts"
    # the hosts resolve nothing: apt reaches the mirror through the proxy, which resolves it
    rm -f "$ROOT/etc/resolv.conf" && : >"$ROOT/etc/resolv.conf"
    printf 'Acquire::http::Proxy "http://%s:%s/";\n' "${H_CTL[$i]}" "$FLEET_PROXY_PORT" \
        >"$ROOT/etc/apt/apt.conf.d/90hearthminds-fleet-proxy"
    install -d -m 0700 "$ROOT/root/.ssh"
    install -m 0600 "$FW/ssh/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
    printf '%s\n' '# the fleet test: root by its key only' 'PermitRootLogin prohibit-password' \
        'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'UseDNS no' \
        >"$ROOT/etc/ssh/sshd_config.d/hearthminds-fleet.conf"
    E2E_NS_EXTRA=(--net --uts)
    ns_start
    H_NSPID[$i]=$NS_PID H_UNSHARE[$i]=$NS_UNSHARE
    nsenter --target "$NS_PID" --uts hostname "$name"
    ip link add "hmfleet$n" type veth peer name "hmfleet${n}h" || e2e_die "cannot make the veth pair hmfleet$n"
    ip link set "hmfleet${n}h" netns "$NS_PID"
    ip addr add "${H_CTL[$i]}/30" dev "hmfleet$n"
    ip link set "hmfleet$n" up
    nsenter --target "$NS_PID" --net ip link set lo up
    nsenter --target "$NS_PID" --net ip link set "hmfleet${n}h" name eth0
    nsenter --target "$NS_PID" --net ip addr add "${H_ADDR[$i]}/30" dev eth0
    nsenter --target "$NS_PID" --net ip link set eth0 up
    in_root ssh-keygen -A >/dev/null || e2e_die "$name: ssh-keygen -A failed"
    # an ordinary account of the host, the hostile local user of the tier's attacks
    in_root useradd --create-home --shell /bin/sh --comment 'fleet test, a hostile local user' mallory ||
        e2e_die "$name: useradd mallory failed"
    install -m 0755 "$FLEET_DIR/peeker.py" "$ROOT/usr/local/bin/fleet-peeker"
    in_root install -d -m 0755 /run/sshd
    in_root /usr/sbin/sshd -E /var/log/sshd.log 7>&- || e2e_die "$name: sshd did not start (see $ROOT/var/log/sshd.log)"
    # the host's keys, read from its root: what the controller will accept from that address
    for k in "$ROOT"/etc/ssh/ssh_host_*_key.pub; do
        printf '%s %s\n' "${H_ADDR[$i]}" "$(cut -d' ' -f1,2 "$k")" >>"$FW/ssh/known_hosts"
    done
}

SSH_OPTS=()
ssh_to() { local i=$1; shift; ssh "${SSH_OPTS[@]}" "root@${H_ADDR[$i]}" "$@"; }

# The passwords the suite generated on host 1 and 3 (no password given there), added to the
# secrets no output or process may show.
secrets_from_generated_passwords() {
    local f
    for f in "${H_ROOT[0]}"/etc/hearthminds/pgpass/* "${H_ROOT[2]}"/etc/hearthminds/pgpass/*; do
        [ -f "$f" ] && awk -F: '{print $NF}' "$f" >>"$SECRETS_FILE"
    done
    sed -i '/^$/d' "$SECRETS_FILE"
}

# --- the playbook runs -------------------------------------------------------------------------

# play LABEL PLAYBOOK [ARGS...]: runs ansible-playbook with the test's configuration; sets RC,
# REC (the run's record: Tests/fleet/callback), PLAY_MS; the console output in $FW/LABEL.out.
play() {
    local label=$1 playbook=$2 t0
    shift 2
    REC="$FW/$label.rec.jsonl"
    : >"$REC"
    PLAY_T0=$(date +%s.%N)
    t0=$(e2e_now_ms)
    set +e
    (cd "$REPO/ansible" && env -i PATH="$FW/venv/bin:$E2E_ROOT_PATH" HOME="$FW/home" PYTHONDONTWRITEBYTECODE=1 LC_ALL=C.UTF-8 \
        ANSIBLE_CONFIG="$FW/ansible.cfg" FLEET_RECORD="$REC" ANSIBLE_FORCE_COLOR=0 \
        ansible-playbook "$REPO/ansible/$playbook" "$@") >"$FW/$label.out" 2>&1 </dev/null 7>&-
    RC=$?
    set -e
    PLAY_MS=$(($(e2e_now_ms) - t0))
    e2e_note "ansible-playbook $playbook $*: exit $RC in $(e2e_secs "$PLAY_MS")s ($label)"
    timing "ansible-playbook $label" "$PLAY_MS"
    LAST_LABEL=$label
}

# adhoc LABEL HOST MODULE ARGS: one of the role's modules run by hand (ansible -m) on HOST; sets RC.
adhoc() {
    local label=$1 target=$2 module=$3 args=$4
    set +e
    (cd "$REPO/ansible" && env -i PATH="$FW/venv/bin:$E2E_ROOT_PATH" HOME="$FW/home" PYTHONDONTWRITEBYTECODE=1 LC_ALL=C.UTF-8 \
        ANSIBLE_CONFIG="$FW/ansible.cfg" ANSIBLE_FORCE_COLOR=0 \
        ANSIBLE_LIBRARY="$REPO/ansible/roles/hearthminds/library" ANSIBLE_MODULE_UTILS="$REPO/ansible/roles/hearthminds/module_utils" \
        ansible "$target" -m "$module" -a "$args") >"$FW/$label.out" 2>&1 </dev/null 7>&-
    RC=$?
    set -e
    e2e_note "ansible $target -m $module -a '$args': exit $RC ($label)"
    LAST_LABEL=$label
}

# q EXPRESSION: the expression (Python, Tests/fleet/query.py) is true of the last run's record.
q() { "$FW/venv/bin/python" "$FLEET_DIR/query.py" "$REC" "$1" "${HOSTS[@]}"; }

check_exit() {
    if [ "$RC" -eq "$2" ]; then e2e_pass "$1"; else
        e2e_fail "$1" "exit $RC, expected $2; last lines of $LAST_LABEL.out:" "$(tail -n 30 "$FW/$LAST_LABEL.out")"
    fi
}

# inventory: the group and each host's variables; passwords in an Ansible Vault file per host.
write_inventory() {
    local inv="$FW/inventory" i
    mkdir -p "$inv/group_vars" "$inv/host_vars"
    {
        echo "hearthminds:"
        echo "  hosts:"
        for i in "${!HOSTS[@]}"; do
            echo "    ${HOSTS[$i]}:"
            echo "      ansible_host: ${H_ADDR[$i]}"
        done
    } >"$inv/hosts.yml"
    cat >"$inv/group_vars/hearthminds.yml" <<EOF
ansible_user: root
hearthminds_tarball: $DIST
hearthminds_config:
  AI_DEFAULT_EXTENSIONS: [vector]
EOF
    mkdir -p "$inv/host_vars/hm-fleet-1" "$inv/host_vars/hm-fleet-2" "$inv/host_vars/hm-fleet-3"
    host_vars_1
    host_vars_2
    host_vars_3
    # the passwords, in Vault files (written 0600, then encrypted in place: no password in an
    # argument list or an environment)
    (
        umask 077
        printf 'vault_sophia_password: "%s"\nvault_metis_password: "%s"\nvault_manager2_password: "%s"\n' \
            "$(yaml_escape "$PW_SOPHIA")" "$(yaml_escape "$PW_METIS")" "$(yaml_escape "$PW_MANAGER2")" \
            >"$inv/host_vars/hm-fleet-2/vault.yml"
        printf 'vault_kairos_password: "%s"\n' "$(yaml_escape "$PW_KAIROS")" >"$inv/host_vars/hm-fleet-3/vault.yml"
    )
    local f
    for f in "$inv/host_vars/hm-fleet-2/vault.yml" "$inv/host_vars/hm-fleet-3/vault.yml"; do
        env -i PATH="$FW/venv/bin:$E2E_ROOT_PATH" HOME="$FW/home" PYTHONDONTWRITEBYTECODE=1 ANSIBLE_CONFIG="$FW/ansible.cfg" \
            ansible-vault encrypt "$f" >/dev/null 2>"$FW/vault.err" || { cat "$FW/vault.err" >&2; e2e_die "ansible-vault encrypt failed"; }
    done
}
yaml_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\"/\\\"}"; }

host_vars_1() {
    cat >"$FW/inventory/host_vars/hm-fleet-1/main.yml" <<'EOF'
# defaults: cluster main on 5432; no password given, so the suite generates them on the host
hearthminds_host_config:
  AI_NAMES: [logos, aletheia]
EOF
}
host_vars_2() { # [POSTGRES_HOST]: a fault of the test
    {
        echo "hearthminds_host_config:"
        [ -z "${1:-}" ] || echo "  POSTGRES_HOST: $1"
        cat <<'EOF'
  PG_CLUSTER_NAME: fleet
  POSTGRES_PORT: 5433
  AI_NAMES: [sophia, metis]
hearthminds_passwords:
  SOPHIA_PASSWORD: "{{ vault_sophia_password }}"
  METIS_PASSWORD: "{{ vault_metis_password }}"
  HEARTHMINDS_PASSWORD: "{{ vault_manager2_password }}"
EOF
    } >"$FW/inventory/host_vars/hm-fleet-2/main.yml"
}
host_vars_3() {
    local port=${1:-6543}
    cat >"$FW/inventory/host_vars/hm-fleet-3/main.yml" <<EOF
hearthminds_host_config:
  PG_CLUSTER_NAME: memory
  POSTGRES_PORT: $port
  AI_NAMES: [kairos, mneme, nous]
hearthminds_passwords:
  KAIROS_PASSWORD: "{{ vault_kairos_password }}"
EOF
}

# Each host's configuration, as the checks from outside see it.
CLUSTER=(main fleet memory)
PORT=(5432 5433 6543)
AIS=("logos aletheia" "sophia metis" "kairos mneme nous")

psql_host() { # psql_host I DB SQL: as postgres, by peer, on host I's cluster
    local i=$1
    host "$i"
    in_root setpriv --reuid=postgres --regid=postgres --init-groups -- psql -X -q -A -t -v ON_ERROR_STOP=1 \
        -p "${PORT[$i]}" -d "$2" -c "$3"
}

# login I ROLE DB: a password login over TCP on host I, the password read from a pgpass file in
# the root (never an argument or the environment's value).
login() {
    local i=$1 role=$2 db=$3 pgpass=$4
    host "$i"
    [ "$(in_root env PGPASSFILE="$pgpass" psql -X -A -t -w "host=127.0.0.1 port=${PORT[$i]} user=$role dbname=$db" \
        -c 'SELECT current_user')" = "$role" ]
}
write_pgpass() { # write_pgpass I FILE-IN-ROOT ROLE PASSWORD
    local i=$1 file=$2 role=$3 pw=$4
    pw=${pw//\\/\\\\}
    pw=${pw//:/\\:}
    (umask 077 && printf '127.0.0.1:%s:*:%s:%s\n' "${PORT[$i]}" "$role" "$pw" >"${H_ROOT[$i]}$file")
}

check_host_state() { # check_host_state LABEL: every host's cluster, roles, logins from outside
    local label=$1 i ai
    for i in "${!HOSTS[@]}"; do
        host "$i"
        check "$label: ${HOSTS[$i]}: cluster 15/${CLUSTER[$i]} online on port ${PORT[$i]}" sh -c \
            "nsenter --target $NS_PID --mount --pid --net --uts --root -- /usr/bin/env -i PATH=$E2E_ROOT_PATH pg_lsclusters -h | grep -Eq '^15 +${CLUSTER[$i]} +${PORT[$i]} +online'"
        check "$label: ${HOSTS[$i]}: the AI roles of its host vars exist (${AIS[$i]})" expect_eq "$(echo "${AIS[$i]}" | wc -w)" \
            psql_host "$i" postgres "SELECT count(*) FROM pg_roles WHERE rolname IN ($(printf "'%s'," ${AIS[$i]} | sed 's/,$//'))"
        check "$label: ${HOSTS[$i]}: /etc/hearthminds/hearthminds.env is root's, mode 0600" expect_eq "0 600" \
            stat -c '%u %a' "$ROOT/etc/hearthminds/hearthminds.env"
        check "$label: ${HOSTS[$i]}: current is the tarball's release (sha256)" expect_eq \
            "$RELEASE_BASE/releases/$DIST_SHA/hearthminds-bootstrap" readlink "$ROOT$RELEASE_BASE/current"
    done
    # host 1: no password given: generated on the host, kept in pgpass/, and they work
    for ai in logos aletheia; do
        check "$label: hm-fleet-1: $ai's generated password kept in /etc/hearthminds/pgpass/$ai (root's, 0600)" \
            expect_eq "0 600" stat -c '%u %a' "${H_ROOT[0]}/etc/hearthminds/pgpass/$ai"
        check "$label: hm-fleet-1: $ai logs in with it" login 0 "$ai" "${ai}_db" "/etc/hearthminds/pgpass/$ai"
    done
    check "$label: hm-fleet-1: no password in its env file (none was given)" sh -c \
        "! grep -q '_PASSWORD=' '${H_ROOT[0]}/etc/hearthminds/hearthminds.env'"
    # hosts 2 and 3: the Vault passwords are the roles' passwords
    write_pgpass 1 /root/.fleet-sophia sophia "$PW_SOPHIA"
    write_pgpass 1 /root/.fleet-metis metis "$PW_METIS"
    write_pgpass 1 /root/.fleet-manager hearthminds "$PW_MANAGER2"
    write_pgpass 2 /root/.fleet-kairos kairos "$PW_KAIROS"
    check "$label: hm-fleet-2: sophia logs in with its Vault password (a quote, a # and a space in it)" \
        login 1 sophia sophia_db /root/.fleet-sophia
    check "$label: hm-fleet-2: metis logs in with its Vault password" login 1 metis metis_db /root/.fleet-metis
    check "$label: hm-fleet-2: the manager logs in with its Vault password" login 1 hearthminds hearthminds_db /root/.fleet-manager
    check "$label: hm-fleet-3: kairos logs in with its Vault password" login 2 kairos kairos_db /root/.fleet-kairos
    check "$label: hm-fleet-3: mneme's password was generated on the host (pgpass/mneme), not given" \
        test -s "${H_ROOT[2]}/etc/hearthminds/pgpass/mneme"
    rm -f "${H_ROOT[1]}"/root/.fleet-* "${H_ROOT[2]}"/root/.fleet-*
}
expect_eq() { local want=$1 got; shift; got=$("$@") || return 1; [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }; }

pgpass_digest() { (cd "${H_ROOT[0]}/etc/hearthminds/pgpass" && sha256sum -- *) ; }
hba_file() { echo "${H_ROOT[$1]}/etc/postgresql/15/${CLUSTER[$1]}/pg_hba.conf"; }
host_log() { echo "${H_ROOT[$1]}/var/log/hearthminds/bootstrap.jsonl"; }
# the run id of host I's module task in the last run
run_id_of() { "$FW/venv/bin/python" -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("action") == "hearthminds_install" and r.get("host") == sys.argv[2]:
        print(r.get("result", {}).get("run_id", ""))' "$REC" "${HOSTS[$1]}"; }

# note_msg HOST: shows the module's message on HOST in the last run (what an operator reads)
note_msg() { e2e_note "$1: $("$FW/venv/bin/python" -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("action") == "hearthminds_install" and r.get("host") == sys.argv[2]:
        print("%s: %s" % (r["status"], r.get("msg", "")))' "$REC" "$1")"; }

# --- secrets: never in an argument list, an environment, the output or a log --------------------

# The passwords to look for (the Vault's, then the generated ones once known), one per line.
SECRETS_FILE=""
# Tests/fleet/sampler.py: every 0.2 s, the argument list and environment of every process of the
# test (the controller's Ansible and ssh, the hosts' namespaces), each distinct one kept (0600,
# in the work directory) so that the passwords the suite generates during the runs are looked
# for too, at the end.
start_sampler() {
    (umask 077 && : >"$FW/sampler.jsonl")
    setpriv --pdeathsig TERM -- "$FLEET_PYTHON" "$FLEET_DIR/sampler.py" run --root $$ --out "$FW/sampler.jsonl" \
        --count "$FW/sampler.count" --stop "$FW/sampler.stop" 7>&- &
    SAMPLER_PID=$!
}
stop_sampler() {
    touch "$FW/sampler.stop"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
}

# =============================================================================================
TOTAL_T0=$(e2e_now_ms)
fleet_require
MIRROR=$(e2e_mirror) || e2e_die "no Debian mirror for $(e2e_host_codename) in /etc/apt/sources.list(.d); set E2E_MIRROR"
SECURITY_MIRROR=$(e2e_security_mirror) || e2e_die "no $(e2e_host_codename)-security entry in the apt sources; set E2E_SECURITY_MIRROR"
UPDATES_MIRROR=$(e2e_suite_mirror "$(e2e_host_codename)-updates") || UPDATES_MIRROR=""
ALLOW=()
for uri in "$MIRROR" "$SECURITY_MIRROR" ${UPDATES_MIRROR:+"$UPDATES_MIRROR"}; do
    h=$(uri_host "$uri") || e2e_die "the mirror $uri is not plain http://: the hosts' proxy forwards http only"
    [[ " ${ALLOW[*]-} " == *" $h "* ]] || ALLOW+=("$h")
done
curl -fsS -o /dev/null --max-time 20 "${MIRROR%/}/dists/$E2E_SUITE/Release" ||
    e2e_die "the Debian mirror $MIRROR is not reachable: no network? (mirror from E2E_MIRROR or the apt sources)"
MIRROR_IP=$(getent ahostsv4 "${ALLOW[0]}" | awk 'NR == 1 { print $1 }')
[ -n "$MIRROR_IP" ] || e2e_die "cannot resolve ${ALLOW[0]}"

mkdir -p "$FLEET_CACHE_DIR" "$E2E_WORK_BASE"
# one fleet run at a time on this machine (the network and the interface names are fixed)
exec 7>"$FLEET_CACHE_DIR/.run.lock"
flock -w 3600 7 || e2e_die "another fleet run holds $FLEET_CACHE_DIR/.run.lock"
FW=$(mktemp -d "$E2E_WORK_BASE/hearthminds-fleet.XXXXXX")
chmod 0700 "$FW"
mkdir -p "$FW/ssh" "$FW/home" "$FW/cp" "$FW/tmp"
DIST_SHA=$(sha256sum "$DIST" | cut -d' ' -f1)
e2e_log "fleet: dist $DIST; mirror hosts ${ALLOW[*]} (host apt sources, through the proxy); network $FLEET_NET.0/24"

make_venv
e2e_log "fleet: $ANSIBLE_VERSION"
# the bytecode directories in the repository's Python trees before the runs (a developer's own)
bytecode_dirs() { find "$REPO/ansible" "$FLEET_DIR" -name __pycache__ -type d 2>/dev/null | sort; }
bytecode_dirs >"$FW/bytecode.before"

remove_stale_roots
e2e_cached_root "$MIRROR"
e2e_layer apt "$E2E_TARBALL" e2e_layer_apt $((24 * 60))
e2e_layer fleet "$E2E_LAYER" fleet_layer_build
FLEET_TARBALL=$E2E_LAYER
timing "fleet root (apt root + openssh-server, python3), cached" "$E2E_LAYER_MS"

# the key Ansible logs in with; the hosts' keys go into known_hosts as each host is made
ssh-keygen -q -t ed25519 -N '' -C hearthminds-fleet-test -f "$FW/ssh/id_ed25519" || e2e_die "ssh-keygen failed"
: >"$FW/ssh/known_hosts"
SSH_OPTS=(-i "$FW/ssh/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$FW/ssh/known_hosts"
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o PasswordAuthentication=no -o ConnectTimeout=10)

network_guard
t0=$(e2e_now_ms)
for i in "${!HOSTS[@]}"; do make_host "$i"; done
timing "three hosts: roots unpacked, namespaces, veth, sshd" $(($(e2e_now_ms) - t0))

# the proxy on the controller's ends of the veth pairs
listen=()
for i in "${!HOSTS[@]}"; do listen+=(--listen "${H_CTL[$i]}:$FLEET_PROXY_PORT"); done
allow=()
for h in "${ALLOW[@]}"; do allow+=(--allow "$h"); done
setpriv --pdeathsig TERM -- "$FLEET_PYTHON" "$FLEET_DIR/proxy.py" "${listen[@]}" "${allow[@]}" \
    --log "$FW/proxy.log" --ready "$FW/proxy.ready" --lifetime 5400 >"$FW/proxy.out" 2>&1 7>&- &
PROXY_PID=$!
for _ in $(seq 1 100); do [ -s "$FW/proxy.ready" ] && break; kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
[ -s "$FW/proxy.ready" ] || { cat "$FW/proxy.out" >&2; e2e_die "the proxy did not start"; }

# each host's /dev/log: what the hosts send to syslog (Ansible's modules log their invocations)
listen=()
for i in "${!HOSTS[@]}"; do listen+=(--listen "${HOSTS[$i]}=/proc/${H_NSPID[$i]}/root/dev/log"); done
setpriv --pdeathsig TERM -- "$FLEET_PYTHON" "$FLEET_DIR/syslog.py" "${listen[@]}" --out "$FW/syslog.txt" \
    --ready "$FW/syslog.ready" --stop "$FW/syslog.stop" >"$FW/syslog.err" 2>&1 7>&- &
SYSLOG_PID=$!
for _ in $(seq 1 100); do [ -s "$FW/syslog.ready" ] && break; kill -0 "$SYSLOG_PID" 2>/dev/null || break; sleep 0.1; done
[ -s "$FW/syslog.ready" ] || { cat "$FW/syslog.err" >&2; e2e_die "the hosts' syslog sockets could not be made"; }

# sshd answers, with the host key known_hosts has
for i in "${!HOSTS[@]}"; do
    for _ in $(seq 1 50); do ssh_to "$i" true 2>/dev/null && break; sleep 0.2; done
done

# --- the network and SSH as in production --------------------------------------------------------
e2e_log "== the hosts"
for i in "${!HOSTS[@]}"; do
    host "$i"
    check "${HOSTS[$i]}: root logs in over SSH with the test's key; the host key checked against known_hosts" \
        expect_eq "${HOSTS[$i]}" ssh_to "$i" hostname
    # (the server's answer to an unauthenticated client lists the methods it offers: publickey only)
    check "${HOSTS[$i]}: the server offers publickey only (no password, no keyboard-interactive)" sh -c \
        "! ssh -o BatchMode=yes -o PubkeyAuthentication=no -o PreferredAuthentications=none -o UserKnownHostsFile='$FW/ssh/known_hosts' -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=10 root@${H_ADDR[$i]} true 2>'$FW/ssh/methods.err' && grep -q 'Permission denied (publickey)\.' '$FW/ssh/methods.err'"
    check "${HOSTS[$i]}: an unknown host key is refused (StrictHostKeyChecking)" sh -c \
        "! ssh -i '$FW/ssh/id_ed25519' -o BatchMode=yes -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=10 root@${H_ADDR[$i]} true 2>'$FW/ssh/hostkey.err' && grep -q 'Host key verification failed' '$FW/ssh/hostkey.err'"
    check "${HOSTS[$i]}: its one route is its veth's /30 (no default route)" expect_eq "$FLEET_NET.$((4 * (i + 1)))/30" \
        sh -c "nsenter --target $NS_PID --net ip -4 route show | awk '{print \$1}' | paste -sd' '"
    check "${HOSTS[$i]}: the mirror's own address is out of its reach (no route)" sh -c \
        "! nsenter --target $NS_PID --net curl -sS -m 5 -o /dev/null 'http://$MIRROR_IP/'"
    check "${HOSTS[$i]}: the mirror through the controller's proxy" \
        nsenter --target "$NS_PID" --net --mount --root -- /usr/lib/apt/apt-helper download-file "${MIRROR%/}/dists/$E2E_SUITE/Release" /tmp/Release.proxied
    rm -f "$ROOT/tmp/Release.direct" "$ROOT/tmp/Release.proxied"
done
# the mirror's hosts come from this machine's apt sources at run time: the repository names none
for h in "${ALLOW[@]}"; do
    check "the repository does not name the mirror host $h (it is read from the apt sources at run time)" sh -c \
        "if git -C '$REPO' rev-parse --git-dir >/dev/null 2>&1; then ! git -C '$REPO' grep -qIiF --untracked -e '$h'; else ! grep -rqIiF --exclude-dir=.build --exclude-dir=.git --exclude-dir=dist -e '$h' '$REPO'; fi"
done
check "the proxy refuses a host that is not the mirror" sh -c \
    "nsenter --target ${H_NSPID[0]} --net --mount --root -- /usr/lib/apt/apt-helper -o Acquire::http::Timeout=5 download-file 'http://example.invalid/x' /tmp/x 2>&1 | grep -q 403"

# --- Ansible's configuration, the inventory, Vault ---------------------------------------------
PW_SOPHIA="it's #$(head -c 12 /dev/urandom | base64 | tr '+/' '-_') a"
PW_METIS=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
PW_MANAGER2=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
PW_KAIROS="k\"\\\$\${x}:$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')"
head -c 24 /dev/urandom | base64 >"$FW/vault-pass"
chmod 0600 "$FW/vault-pass"
SECRETS_FILE="$FW/secrets"
(umask 077 && printf '%s\n' "$PW_SOPHIA" "$PW_METIS" "$PW_MANAGER2" "$PW_KAIROS" >"$SECRETS_FILE")
cat >"$FW/ansible.cfg" <<EOF
# the fleet test's: ansible/ansible.cfg with the test's inventory, key, known_hosts and record
[defaults]
inventory = $FW/inventory
roles_path = $REPO/ansible/roles
interpreter_python = /usr/bin/python3
host_key_checking = True
forks = 10
timeout = 10
private_key_file = $FW/ssh/id_ed25519
vault_password_file = $FW/vault-pass
callback_plugins = $FLEET_DIR/callback
callbacks_enabled = fleet_record
local_tmp = $FW/tmp
home = $FW/home
retry_files_enabled = False
nocolor = True

[ssh_connection]
pipelining = True
control_path_dir = $FW/cp
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o IdentitiesOnly=yes -o UserKnownHostsFile=$FW/ssh/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no
EOF
write_inventory
check "the Vault files are encrypted (no password in them in clear)" sh -c \
    "head -n1 '$FW/inventory/host_vars/hm-fleet-2/vault.yml' | grep -q '^\$ANSIBLE_VAULT' && ! grep -qaFf '$SECRETS_FILE' '$FW/inventory/host_vars/hm-fleet-2/vault.yml' '$FW/inventory/host_vars/hm-fleet-3/vault.yml'"

# the role's own unit tests (the module's reading of exit codes and records, the env file's
# quoting), with the venv's ansible
check "the role's unit tests (Tests/fleet/test_role.py)" env -i PATH="$FW/venv/bin:$E2E_ROOT_PATH" HOME="$FW/home" PYTHONDONTWRITEBYTECODE=1 \
    "$FW/venv/bin/python" "$FLEET_DIR/test_role.py"

start_sampler
# the sampler finds what it looks for: a canary in an argument list and in an environment
CANARY="fleet-canary-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')"
printf '%s\n' "$CANARY" >>"$SECRETS_FILE"
printf '%s\n' "$CANARY" >"$FW/canary"
sh -c 'sleep 2' canary-in-argv "$CANARY" 7>&- &
canary_pid=$!
env FLEET_CANARY="$CANARY" sleep 2 7>&-
wait "$canary_pid"
check "the process sampler sees a canary in an argument list and in an environment" sh -c \
    "'$FLEET_PYTHON' '$FLEET_DIR/sampler.py' search --secrets '$FW/canary' '$FW/sampler.jsonl' >'$FW/canary.hits'; grep -q ' sh cmdline\$' '$FW/canary.hits' && grep -q ' sleep environ\$' '$FW/canary.hits'"
sed -i "/^$CANARY\$/d" "$SECRETS_FILE"

# --- 0. check mode on the fresh hosts: what would change, nothing changed --------------------------
e2e_log "== check mode on three fresh hosts"
for i in "${!HOSTS[@]}"; do sha256sum "${H_ROOT[$i]}/var/lib/dpkg/status" "${H_ROOT[$i]}/etc/passwd"; done >"$FW/fresh.sum"
play fresh-check site.yml --check
check_exit "fresh hosts, check mode: exits 0" 0
check "fresh hosts, check mode: every host would change (the release not unpacked yet), none failed" q \
    "all(stats[h]['changed'] > 0 and stats[h]['failures'] == 0 and module[h]['changed'] and 'not unpacked' in module[h]['msg'] for h in HOSTS)"
check "fresh hosts, check mode: nothing changed (no release, no env file, no package, no account)" sh -c \
    "sha256sum --quiet -c '$FW/fresh.sum' && for r in ${H_ROOT[*]}; do [ ! -e \$r$RELEASE_BASE ] && [ ! -e \$r/etc/hearthminds ] || exit 1; done"

# --- 1. the first run: three fresh hosts ---------------------------------------------------------
e2e_log "== first run: three fresh hosts"
# mallory, an ordinary account of hm-fleet-2 (whose env file holds Vault passwords), watches with
# inotify the directories the role writes into and opens every file the moment it appears or
# changes (Tests/fleet/peeker.py): a file readable by others for a moment is read.
host 1
install -d -m 0755 "$ROOT/srv/fleet-canary"
in_root setpriv --reuid=mallory --regid=mallory --init-groups -- /usr/bin/python3 /usr/local/bin/fleet-peeker \
    --report /home/mallory/peek.report --ready /home/mallory/peek.ready --stop /home/mallory/peek.stop \
    /etc/hearthminds "$RELEASE_BASE" "$RELEASE_BASE/releases" /srv/fleet-canary >"$FW/peeker.err" 2>&1 7>&- &
PEEKER_PID=$!
for _ in $(seq 1 100); do [ -s "$ROOT/home/mallory/peek.ready" ] && break; sleep 0.1; done
# the canary: a file of root's readable by others for 0.1 s, then 0600
(umask 022 && echo canary >"$ROOT/srv/fleet-canary/secret" && sleep 0.1 && chmod 0600 "$ROOT/srv/fleet-canary/secret")
sleep 0.5
check "hm-fleet-2: mallory's watcher reads a file of root's that others can read for 0.1 s (a canary)" \
    grep -q '^/srv/fleet-canary/secret ' "$ROOT/home/mallory/peek.report"
play first site.yml
FIRST_MS=$PLAY_MS
host 1
touch "$ROOT/home/mallory/peek.stop"
wait "$PEEKER_PID" 2>/dev/null || true
PEEKER_PID=""
e2e_note "what mallory could read on hm-fleet-2 during the first run: $(awk '{print $1}' "$ROOT/home/mallory/peek.report" | paste -sd' ')"
check "hm-fleet-2: mallory's watcher saw the suite's public client file appear (it watched /etc/hearthminds throughout)" \
    grep -q '^/etc/hearthminds/pg_service.conf ' "$ROOT/home/mallory/peek.report"
check "hm-fleet-2: mallory never read the env file (0600 from its creation on, under a name of its own until renamed)" \
    sh -c "! grep -q 'hearthminds\.env' '$ROOT/home/mallory/peek.report'"
check_exit "first run: ansible-playbook exits 0" 0
check "first run: every host changed, none failed or unreachable" q \
    "all(stats[h]['changed'] > 0 and stats[h]['failures'] == 0 and stats[h]['unreachable'] == 0 for h in HOSTS)"
check "first run: the suite's module changed on every host" q "all(module[h]['status'] == 'ok' and module[h]['changed'] for h in HOSTS)"
check "first run: on every host every step the release lists ran and is true" q \
    "all(result[h]['steps_expected'] and list(result[h]['steps']) == result[h]['steps_expected'] and all(s['result'] for s in result[h]['steps'].values()) for h in HOSTS)"
check "first run: the tarball copied and unpacked on every host" q \
    "all('HearthMinds | the release tarball copied to the host' in changed_tasks(h) and 'HearthMinds | the release unpacked (its SHA-256 checked first) and made current' in changed_tasks(h) for h in HOSTS)"
for i in "${!HOSTS[@]}"; do
    check "first run: ${HOSTS[$i]}: no file left behind: no copied tarball, no temporary file in /etc/hearthminds or the release directories" sh -c \
        "[ ! -e '${H_ROOT[$i]}$RELEASE_BASE/hearthminds-bootstrap.tar.gz' ] && [ -z \"\$(find '${H_ROOT[$i]}/etc/hearthminds' '${H_ROOT[$i]}$RELEASE_BASE' -maxdepth 2 -name '.*' ! -name .unpacked ! -name .release.lock)\" ]"
    check "first run: ${HOSTS[$i]}: the release directories are root's and only root writes them" expect_eq \
        "0 755 0 755 0 755" sh -c "stat -c '%u %a' '${H_ROOT[$i]}$RELEASE_BASE' '${H_ROOT[$i]}$RELEASE_BASE/releases' '${H_ROOT[$i]}$RELEASE_BASE/releases/$DIST_SHA' | paste -sd' '"
done
for i in "${!HOSTS[@]}"; do
    check "first run: ${HOSTS[$i]}: the log has the run's records, every one true" sh -c \
        "grep -F '\"run\":\"$(run_id_of "$i")\"' '$(host_log "$i")' | grep -q . && ! grep -F '\"run\":\"$(run_id_of "$i")\"' '$(host_log "$i")' | grep -qF '\"result\":false'"
done
check_host_state "first run"
# the generated passwords of host 1 and 3 are secrets too from now on
secrets_from_generated_passwords
pgpass_digest >"$FW/pgpass.first"

# --- 2. the second run: converged --------------------------------------------------------------
e2e_log "== second run: converged"
play second site.yml
CONVERGED_MS=$PLAY_MS
check_exit "second run: exits 0" 0
check "second run: changed=0 on every host" q "all(stats[h]['changed'] == 0 and stats[h]['failures'] == 0 for h in HOSTS)"
check "second run: the module ran install.sh and reports every step true, nothing changed" q \
    "all(module[h]['status'] == 'ok' and not result[h]['changed'] and result[h]['changes'] == [] and all(s['result'] for s in result[h]['steps'].values()) for h in HOSTS)"
check "second run: the tarball was not copied or unpacked again (skipped on every host)" q \
    "[t['status'] for t in tasks if t['task'] in ('HearthMinds | the release tarball copied to the host', 'HearthMinds | the release unpacked (its SHA-256 checked first) and made current')] == ['skipped'] * 6"
check "second run: on a converged host one module looks at the release, one at the env file, one runs the suite; nothing else ran" q \
    "all(sorted(t['action'] for t in tasks if t['host'] == h and t['status'] != 'skipped') == ['assert', 'hearthminds_env_file', 'hearthminds_install', 'hearthminds_release', 'set_fact'] for h in HOSTS)"
check "second run: hm-fleet-1's generated passwords kept (pgpass/ unchanged)" sh -c "pgpass_digest() { (cd '${H_ROOT[0]}/etc/hearthminds/pgpass' && sha256sum -- *); }; [ \"\$(pgpass_digest)\" = \"\$(cat '$FW/pgpass.first')\" ]"

# --- 3. a hand edit of pg_hba.conf on one host: check mode reports it, a run repairs it ----------
e2e_log "== a hand edit of pg_hba.conf on hm-fleet-2"
sha256sum "$(hba_file 1)" >"$FW/hba.before"
printf 'host all all 127.0.0.1/32 trust\n' >>"$(hba_file 1)"
# every file of every host's cluster configuration, /etc/hearthminds and the release, before check
# mode: the content of each file; the mode, owner and link target of each entry
host_files_sum() {
    local i
    for i in "${!HOSTS[@]}"; do
        find "${H_ROOT[$i]}/etc/postgresql" "${H_ROOT[$i]}/etc/hearthminds" "${H_ROOT[$i]}$RELEASE_BASE" \
            -xdev -type f -print0 | sort -z | xargs -0 -r sha256sum
        find "${H_ROOT[$i]}/etc/postgresql" "${H_ROOT[$i]}/etc/hearthminds" "${H_ROOT[$i]}$RELEASE_BASE" \
            -xdev -printf '%p %m %u %l\n' | sort
    done
}
host_files_sum >"$FW/tampered.state"
play check site.yml --check --diff
check_exit "check mode: exits 0 (a pending change is no failure)" 0
note_msg hm-fleet-2
check "check mode: exactly hm-fleet-2 changed; the others not; none failed" q \
    "stats['hm-fleet-2']['changed'] == 1 and stats['hm-fleet-1']['changed'] == 0 and stats['hm-fleet-3']['changed'] == 0 and all(stats[h]['failures'] == 0 for h in HOSTS)"
check "check mode: hm-fleet-2's change is the suite's, and only the step pg-hba would change" q \
    "changed_tasks('hm-fleet-2') == [module['hm-fleet-2']['task']] and result['hm-fleet-2']['changed_steps'] == ['pg-hba'] and result['hm-fleet-2']['dry_run']"
check "check mode: the other hosts: nothing would change" q \
    "all(result[h]['would_change'] == [] for h in ('hm-fleet-1', 'hm-fleet-3'))"
check "check mode: the diff names the step and action" grep -q 'pg-hba: would change' "$FW/check.out"
host_files_sum >"$FW/check.state"
check "check mode: nothing changed on any host (every file of /etc/postgresql, /etc/hearthminds and the release, its mode and owner; the trust line still there)" sh -c \
    "diff '$FW/tampered.state' '$FW/check.state' && grep -qx 'host all all 127.0.0.1/32 trust' '$(hba_file 1)'"
for i in "${!HOSTS[@]}"; do
    check "check mode: ${HOSTS[$i]}'s run logged as a dry run, no action changed" sh -c \
        "lines=\$(grep -F '\"run\":\"$(run_id_of "$i")\"' '$(host_log "$i")'); [ -n \"\$lines\" ] && ! printf '%s\n' \"\$lines\" | grep -qF '\"changed\":true' && ! printf '%s\n' \"\$lines\" | grep -vqF '\"dry_run\":true'"
done
play repair site.yml
check_exit "repair run: exits 0" 0
check "repair run: hm-fleet-2 changed (the suite's pg-hba step alone); the others changed=0" q \
    "stats['hm-fleet-2']['changed'] == 1 and result['hm-fleet-2']['changed_steps'] == ['pg-hba'] and stats['hm-fleet-1']['changed'] == 0 and stats['hm-fleet-3']['changed'] == 0"
check "repair run: hm-fleet-2's pg_hba.conf is again what it was before the hand edit (the trust line gone)" \
    sh -c "sha256sum --quiet -c '$FW/hba.before' && ! grep -qx 'host all all 127.0.0.1/32 trust' '$(hba_file 1)'"

# --- 4. one host with a bad configuration fails alone, naming the key ----------------------------
e2e_log "== a bad configuration on hm-fleet-3"
host_vars_3 70000
play badconfig site.yml
check_exit "bad config: ansible-playbook exits 2 (a host failed)" 2
note_msg hm-fleet-3
check "bad config: hm-fleet-3 failed; its message names the host, the key and the exit" q \
    "stats['hm-fleet-3']['failures'] == 1 and module['hm-fleet-3']['status'] == 'failed' and result['hm-fleet-3']['key'] == 'POSTGRES_PORT' and 'hm-fleet-3' in module['hm-fleet-3']['msg'] and 'POSTGRES_PORT' in module['hm-fleet-3']['msg'] and result['hm-fleet-3']['exit_status'] == 64"
check "bad config: the other hosts completed, unchanged" q \
    "all(stats[h]['failures'] == 0 and stats[h]['changed'] == 0 and module[h]['status'] == 'ok' for h in ('hm-fleet-1', 'hm-fleet-2'))"
check "bad config: the suite changed nothing on hm-fleet-3 (the run's one record in its log is the refused configuration's, which the module read the key from)" sh -c \
    "[ -n '$(run_id_of 2)' ] && [ \$(grep -cF '\"run\":\"$(run_id_of 2)\"' '$(host_log 2)') = 1 ] && grep -F '\"run\":\"$(run_id_of 2)\"' '$(host_log 2)' | grep -F '\"action\":\"(configuration)\",\"result\":false,\"changed\":false' | grep -qF '\"failure\":\"configuration\",\"key\":\"POSTGRES_PORT\"'"
check "bad config: hm-fleet-3's cluster still runs on its port" sh -c \
    "nsenter --target ${H_NSPID[2]} --mount --pid --net --root -- /usr/bin/env -i PATH=$E2E_ROOT_PATH pg_lsclusters -h | grep -Eq '^15 +memory +6543 +online'"
host_vars_3

# --- 4b. a step that fails on one host names the host, the step, the action and the message -------
e2e_log "== a failing step on hm-fleet-2 (POSTGRES_HOST an address it does not have)"
host_vars_2 "$FLEET_NET.99"
play stepfault site.yml
check_exit "failing step: ansible-playbook exits 2" 2
note_msg hm-fleet-2
check "failing step: hm-fleet-2 failed at step postgres; the message names the host, the step, the action and why" q \
    "module['hm-fleet-2']['status'] == 'failed' and result['hm-fleet-2']['failed_step'] == 'postgres' and result['hm-fleet-2']['failed_action'] and result['hm-fleet-2']['exit_status'] == 1 and all(x in module['hm-fleet-2']['msg'] for x in ('hm-fleet-2', 'step postgres', result['hm-fleet-2']['failed_action'], '$FLEET_NET.99'))"
check "failing step: the other hosts completed: hm-fleet-1 unchanged, hm-fleet-3's env file put back (its only change)" q \
    "all(stats[h]['failures'] == 0 and module[h]['status'] == 'ok' and not result[h]['changed'] for h in ('hm-fleet-1', 'hm-fleet-3')) and stats['hm-fleet-1']['changed'] == 0 and changed_tasks('hm-fleet-3') == ['HearthMinds | /etc/hearthminds/hearthminds.env from the variables (mode 0600; not logged)']"
check "failing step: hm-fleet-2's cluster still runs on its port (nothing changed)" sh -c \
    "nsenter --target ${H_NSPID[1]} --mount --pid --net --root -- /usr/bin/env -i PATH=$E2E_ROOT_PATH pg_lsclusters -h | grep -Eq '^15 +fleet +5433 +online'"
host_vars_2

# --- 5. one host unreachable: reported, the others complete --------------------------------------
e2e_log "== hm-fleet-1 unreachable (its link down)"
ssh -o ControlPath="$FW/cp/%C" -O exit "root@${H_ADDR[0]}" >/dev/null 2>&1 || true
nsenter --target "${H_NSPID[0]}" --net ip link set eth0 down
# (at Ansible's most verbose: the module arguments and results on the console, the env file
# rewritten on hm-fleet-2 with its Vault passwords; the secrets checks read this output too)
play unreachable site.yml -vvv
check_exit "unreachable: ansible-playbook exits 4 (a host unreachable)" 4
check "unreachable: hm-fleet-1 reported unreachable" q "stats['hm-fleet-1']['unreachable'] == 1"
check "unreachable: the others completed: every step true, none failed" q \
    "all(stats[h]['unreachable'] == 0 and stats[h]['failures'] == 0 and module[h]['status'] == 'ok' and all(s['result'] for s in result[h]['steps'].values()) for h in ('hm-fleet-2', 'hm-fleet-3'))"
check "unreachable: hm-fleet-2's env file put back, the only change there (the suite's config as before)" q \
    "changed_tasks('hm-fleet-2') == ['HearthMinds | /etc/hearthminds/hearthminds.env from the variables (mode 0600; not logged)'] and not result['hm-fleet-2']['changed']"
check "unreachable: hm-fleet-3 changed=0 (its env file put back by the run before)" q "stats['hm-fleet-3']['changed'] == 0"
nsenter --target "${H_NSPID[0]}" --net ip link set eth0 up
# The controller's neighbour entry for the host failed while the link was down ("No route to
# host" until it is resolved again): forgotten, and the host waited for before the next play.
ip neigh flush to "${H_ADDR[0]}" 2>/dev/null || true
back_again() {
    local _
    for _ in $(seq 1 100); do ssh_to 0 true 2>/dev/null && return 0; sleep 0.3; done
    ssh_to 0 true
}
check "unreachable: hm-fleet-1 answers over ssh again once its link is up" back_again

# --- 6. the module's options, the lock -----------------------------------------------------------
e2e_log "== --only, --from, the lock"
play only site.yml -e hearthminds_only=verify
check_exit "hearthminds_only=verify: exits 0" 0
check "hearthminds_only=verify: only the verify step ran, on every host (hm-fleet-1 back too)" q \
    "all(list(result[h]['steps']) == ['verify'] and stats[h]['changed'] == 0 for h in HOSTS)"
play from site.yml -e hearthminds_from=vector-index
check_exit "hearthminds_from=vector-index: exits 0" 0
check "hearthminds_from=vector-index: vector-index and the steps after it (backup, monitoring, verify) ran, on every host" q \
    "all(list(result[h]['steps']) == ['vector-index', 'backup', 'monitoring', 'verify'] for h in HOSTS)"
host 2
rm -f "$ROOT/root/fleet-holder.pid"
in_root flock /run/hearthminds/bootstrap.lock sh -c 'echo $$ >/root/fleet-holder.pid; exec sleep 300' 7>&- &
LOCK_HOLDER=$!
for _ in $(seq 1 100); do [ -s "$ROOT/root/fleet-holder.pid" ] && break; sleep 0.1; done
play lock site.yml -l hm-fleet-3
in_root kill "$(cat "$ROOT/root/fleet-holder.pid")" 2>/dev/null || true
wait "$LOCK_HOLDER" 2>/dev/null || true
check_exit "lock held on hm-fleet-3: exits 2" 2
note_msg hm-fleet-3
check "lock held: failed with 'another run holds the lock', exit 75" q \
    "module['hm-fleet-3']['status'] == 'failed' and 'another run holds the lock' in module['hm-fleet-3']['msg'] and result['hm-fleet-3']['exit_status'] == 75"

# --- 6b. releases: a new one, back to the old one, a tarball that is not the controller's -------
e2e_log "== releases on hm-fleet-3: a new tarball, back to the old one, a checksum that does not match"
mkdir -p "$FW/alt"
# the same release in other bytes (another gzip level): another checksum, so another release
gzip -dc "$DIST" | gzip -1 -n >"$FW/alt/a.tar.gz"
gzip -dc "$DIST" | gzip -2 -n >"$FW/alt/b.tar.gz"
ALT_SHA=$(sha256sum "$FW/alt/a.tar.gz" | cut -d' ' -f1)
ALT2_SHA=$(sha256sum "$FW/alt/b.tar.gz" | cut -d' ' -f1)
UNPACK_TASK='HearthMinds | the release unpacked (its SHA-256 checked first) and made current'
COPY_TASK='HearthMinds | the release tarball copied to the host'
play newrelease site.yml -l hm-fleet-3 -e hearthminds_tarball="$FW/alt/a.tar.gz"
check_exit "a new release on hm-fleet-3: exits 0" 0
check "a new release: copied, unpacked and made current; the suite's run changed nothing (the same content)" q \
    "changed_tasks('hm-fleet-3') == ['$COPY_TASK', '$UNPACK_TASK'] and module['hm-fleet-3']['status'] == 'ok' and not result['hm-fleet-3']['changed']"
check "a new release: current is it; the one before kept (hearthminds_keep_releases: 1)" sh -c \
    "[ \"\$(readlink '${H_ROOT[2]}$RELEASE_BASE/current')\" = '$RELEASE_BASE/releases/$ALT_SHA/hearthminds-bootstrap' ] && [ -f '${H_ROOT[2]}$RELEASE_BASE/releases/$DIST_SHA/.unpacked' ]"
play rollback site.yml -l hm-fleet-3
check_exit "back to the release before: exits 0" 0
check "back to the release before: made current again, not copied (it is still unpacked)" q \
    "changed_tasks('hm-fleet-3') == ['$UNPACK_TASK'] and [t['status'] for t in tasks if t['task'] == '$COPY_TASK'] == ['skipped']"
check "back to the release before: current is it again" expect_eq "$RELEASE_BASE/releases/$DIST_SHA/hearthminds-bootstrap" \
    readlink "${H_ROOT[2]}$RELEASE_BASE/current"
# the tarball on the host is not the one whose checksum the controller computed (it changed on the
# controller between the lookup and the copy, say): the module, run by hand, refuses to unpack it
install -m 0600 "$FW/alt/b.tar.gz" "${H_ROOT[2]}$RELEASE_BASE/hearthminds-bootstrap.tar.gz"
WRONG_SHA=$(printf '%s' "$ALT2_SHA" | tr '0-9a-f' '1-9a-f0')
adhoc wrongsum hm-fleet-3 hearthminds_release "base_dir=$RELEASE_BASE sha256=$WRONG_SHA state=current"
check_exit "a tarball whose SHA-256 is not the controller's: the module fails" 2
check "a wrong checksum: the failure says so, with both checksums" sh -c \
    "grep -q 'not the controller' '$FW/wrongsum.out' && grep -q '$ALT2_SHA' '$FW/wrongsum.out' && grep -q '$WRONG_SHA' '$FW/wrongsum.out'"
check "a wrong checksum: nothing unpacked, the tarball removed, current unchanged" sh -c \
    "[ ! -e '${H_ROOT[2]}$RELEASE_BASE/releases/$WRONG_SHA' ] && [ ! -e '${H_ROOT[2]}$RELEASE_BASE/releases/$ALT2_SHA' ] && [ -z \"\$(find '${H_ROOT[2]}$RELEASE_BASE/releases' -maxdepth 1 -name '.unpacking-*')\" ] && [ ! -e '${H_ROOT[2]}$RELEASE_BASE/hearthminds-bootstrap.tar.gz' ] && [ \"\$(readlink '${H_ROOT[2]}$RELEASE_BASE/current')\" = '$RELEASE_BASE/releases/$DIST_SHA/hearthminds-bootstrap' ]"

# --- 6c. directories another account of the host owns: refused, nothing written through them ----
e2e_log "== mallory's directories: /opt/hearthminds/releases on hm-fleet-3, /etc/hearthminds on hm-fleet-2"
host 2
in_root chown mallory:mallory "$RELEASE_BASE/releases"  # (the host's account: the controller has none)
in_root setpriv --reuid=mallory --regid=mallory --init-groups -- sh -c "mkdir -p /home/mallory/loot && ln -s /home/mallory/loot '$RELEASE_BASE/releases/$ALT2_SHA'"
play hostile-release site.yml -l hm-fleet-3 -e hearthminds_tarball="$FW/alt/b.tar.gz"
check_exit "releases/ owned by mallory on hm-fleet-3: exits 2" 2
check "releases/ owned by mallory: the role refuses it, naming the directory and its owner, before copying anything; the suite not run" q \
    "[(t['task'], '$RELEASE_BASE/releases is owned by uid' in t['msg']) for t in tasks if t['host'] == 'hm-fleet-3' and t['status'] == 'failed'] == [('HearthMinds | the release in use on the host', True)] and 'hm-fleet-3' not in module"
check "releases/ owned by mallory: nothing written through mallory's link, no tarball copied, current unchanged" sh -c \
    "[ -z \"\$(ls -A '${H_ROOT[2]}/home/mallory/loot')\" ] && [ ! -e '${H_ROOT[2]}$RELEASE_BASE/hearthminds-bootstrap.tar.gz' ] && [ \"\$(readlink '${H_ROOT[2]}$RELEASE_BASE/current')\" = '$RELEASE_BASE/releases/$DIST_SHA/hearthminds-bootstrap' ]"
rm -f "${H_ROOT[2]}$RELEASE_BASE/releases/$ALT2_SHA"
chown root: "${H_ROOT[2]}$RELEASE_BASE/releases"
host 1
sha256sum "$ROOT/etc/hearthminds/hearthminds.env" >"$FW/env2.sum"
in_root chown mallory:mallory /etc/hearthminds
play hostile-etc site.yml -l hm-fleet-2
check_exit "/etc/hearthminds owned by mallory on hm-fleet-2: exits 2" 2
check "/etc/hearthminds owned by mallory: the role refuses to write the env file there, naming the directory and its owner; the suite not run" q \
    "[(t['task'], '/etc/hearthminds is owned by uid' in t['msg']) for t in tasks if t['host'] == 'hm-fleet-2' and t['status'] == 'failed'] == [('HearthMinds | the env file written', True)] and 'hm-fleet-2' not in module"
check "/etc/hearthminds owned by mallory: the env file untouched" sha256sum --quiet -c "$FW/env2.sum"
chown root: "$ROOT/etc/hearthminds"
# and mallory holds a lock on /opt/hearthminds itself on hm-fleet-3 meanwhile (any account may
# open the directory: the role's lock is a file only root can open)
host 2
rm -f "$ROOT/home/mallory/holder.pid"
in_root setpriv --reuid=mallory --regid=mallory --init-groups -- flock "$RELEASE_BASE" \
    sh -c 'echo $$ >/home/mallory/holder.pid; exec sleep 300' 7>&- &
MALLORY_HOLDER=$!
for _ in $(seq 1 100); do [ -s "$ROOT/home/mallory/holder.pid" ] && break; sleep 0.1; done
play restored site.yml -l hm-fleet-2,hm-fleet-3
host 2
check "mallory held a lock on $RELEASE_BASE (the directory) on hm-fleet-3 throughout the next run" \
    in_root kill -0 "$(cat "$ROOT/home/mallory/holder.pid" 2>/dev/null || echo 0)"
in_root kill "$(cat "$ROOT/home/mallory/holder.pid")" 2>/dev/null || true
wait "$MALLORY_HOLDER" 2>/dev/null || true
check_exit "the owners put back (and mallory's lock held): exits 0" 0
check "the owners put back: both hosts converged, changed=0 (mallory's lock on the directory held up nothing)" q \
    "all(stats[h]['changed'] == 0 and stats[h]['failures'] == 0 for h in ('hm-fleet-2', 'hm-fleet-3'))"

# --- 7. the rebuild, one host at a time -------------------------------------------------------
e2e_log "== rebuild.yml"
for i in "${!HOSTS[@]}"; do psql_host "$i" hearthminds_db "CREATE TABLE fleet_marker (id int)" >/dev/null; done
log_sizes=()
for i in "${!HOSTS[@]}"; do log_sizes+=("$(grep -c '"step":"reset"' "$(host_log "$i")" || true)"); done
# a reset asked of a play of three hosts at once (site.yml, no serial), confirmed: refused on each
play resetall site.yml -e hearthminds_reset=true -e hearthminds_confirm_reset=true
check_exit "a confirmed reset in a play of three hosts at once: exits 2" 2
check "a reset of three hosts at once: every host refused (one host at a time), the suite run on none" q \
    "all(stats[h]['failures'] == 1 for h in HOSTS) and not module"
check "a reset of three hosts at once: the refusal says one host at a time" grep -q 'reset refused: this play.s batch holds 3' "$FW/resetall.out"
play rebuild-refused rebuild.yml
check_exit "rebuild without hearthminds_confirm_reset: exits 2" 2
check "rebuild without confirmation: the first host refused, the rest not even tried (serial 1)" q \
    "stats.get('hm-fleet-1', {}).get('failures') == 1 and 'hm-fleet-2' not in stats and 'hm-fleet-3' not in stats and not module"
check "rebuild without confirmation: the refusal names the host and the variable" grep -q 'hm-fleet-1: reset refused.*hearthminds_confirm_reset=true' "$FW/rebuild-refused.out"
for i in "${!HOSTS[@]}"; do
    check "rebuild without confirmation: ${HOSTS[$i]}: no reset ran (no new reset record in its log)" expect_eq "${log_sizes[$i]}" \
        sh -c "grep -c '\"step\":\"reset\"' '$(host_log "$i")' || true"
    check "rebuild without confirmation: ${HOSTS[$i]}: the marker table is there" expect_eq 1 \
        psql_host "$i" hearthminds_db "SELECT count(*) FROM pg_tables WHERE tablename = 'fleet_marker'"
done
play rebuild rebuild.yml -e hearthminds_confirm_reset=true
check_exit "rebuild with hearthminds_confirm_reset=true: exits 0" 0
check "rebuild: every host reset and rebuilt: the reset step and every step true" q \
    "all(list(result[h]['steps'])[0] == 'reset' and all(s['result'] for s in result[h]['steps'].values()) and result[h]['changed'] for h in HOSTS)"
for i in "${!HOSTS[@]}"; do
    check "rebuild: ${HOSTS[$i]}: the marker table is gone (databases rebuilt)" expect_eq 0 \
        psql_host "$i" hearthminds_db "SELECT count(*) FROM pg_tables WHERE tablename = 'fleet_marker'"
done
# serial 1: each host's run ended before the next one's began (the log's times)
check "rebuild: one host at a time (each host's suite run ended before the next began)" \
    "$FW/venv/bin/python" - "$(host_log 0)" "$(run_id_of 0)" "$(host_log 1)" "$(run_id_of 1)" "$(host_log 2)" "$(run_id_of 2)" <<'PYEOF'
import json, sys
spans = []
for log, run in zip(sys.argv[1::2], sys.argv[2::2]):
    times = [json.loads(l)["time"] for l in open(log) if '"run":"%s"' % run in l]
    assert times, "no records of run %s in %s" % (run, log)
    spans.append((min(times), max(times)))
print(spans)
assert all(spans[k][1] < spans[k + 1][0] for k in range(len(spans) - 1)), spans
PYEOF
check_host_state "after the rebuild"
# the rebuild generated new passwords where none is given: secrets too
secrets_from_generated_passwords

# --- 8. figures: a converged run across the three hosts, Ansible against install.sh by hand -----
# FLEET_FIGURE_RUNS rounds (3), each an ansible-playbook run and then install.sh by hand over ssh
# on each host in turn (a fresh ssh connection each, as an operator would), interleaved so that
# both see the same load; the medians and ranges are printed.
e2e_log "== figures: converged runs, ansible-playbook against install.sh by hand"
ANSIBLE_RUNS=() HAND_RUNS=() hand_ok=0 hand_total=0
FIGURES_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "${FLEET_FIGURE_RUNS:-3}"); do
    play "converged-$round" site.yml
    check_exit "converged run $round (figures): exits 0" 0
    check "converged run $round (figures): changed=0 on every host" q "all(stats[h]['changed'] == 0 for h in HOSTS)"
    ANSIBLE_RUNS+=("$PLAY_MS")
    if [ "$round" = 1 ]; then
        e2e_note "where the converged ansible-playbook run's time went:"
        "$FW/venv/bin/python" "$FLEET_DIR/profile.py" "$REC" "$PLAY_T0" | sed 's/^/        /'
    fi
    t0=$(e2e_now_ms)
    for i in "${!HOSTS[@]}"; do
        hand_total=$((hand_total + 1))
        # (one awk: grep | grep -q under pipefail fails when the first grep is cut short)
        if ssh_to "$i" "HEARTHMINDS_RUN_ID=hand-$round-$i-$$ $RELEASE_BASE/current/install.sh" >"$FW/hand-$round-$i.out" 2>&1 &&
            awk -v run="\"run\":\"hand-$round-$i-$$\"" 'index($0, run) { n++; if (index($0, "\"changed\":true")) c++ }
                END { exit !(n > 0 && c == 0) }' "$(host_log "$i")"; then
            hand_ok=$((hand_ok + 1))
        fi
    done
    HAND_RUNS+=("$(($(e2e_now_ms) - t0))")
    timing "install.sh by hand over ssh, host after host ($round)" "${HAND_RUNS[-1]}"
done
FIGURES_LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
check "install.sh by hand over ssh: every run exited 0 and changed nothing ($hand_ok of $hand_total)" test "$hand_ok" = "$hand_total"
# median and range of a list of milliseconds
figure() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f s (%.1f-%.1f s, %d runs)", v[int((NR + 1) / 2)] / 1000, v[1] / 1000, v[NR] / 1000, NR }'; }

# --- secrets -----------------------------------------------------------------------------------
stop_sampler
SAMPLES=$(cat "$FW/sampler.count" 2>/dev/null || echo 0)
check "the process sampler ran through the playbook runs ($SAMPLES samples, at least 200)" test "$SAMPLES" -ge 200
check "no password (the Vault's, nor one the suite generated) in any argument list or environment of the test's processes ($(wc -l <"$FW/sampler.jsonl") distinct ones kept)" \
    "$FLEET_PYTHON" "$FLEET_DIR/sampler.py" search --secrets "$SECRETS_FILE" "$FW/sampler.jsonl"
check "no password in Ansible's output (one run at -vvv) or its records of every run" sh -c \
    "! grep -laFf '$SECRETS_FILE' '$FW'/*.out '$FW'/*.rec.jsonl"
touch "$FW/syslog.stop"
wait "$SYSLOG_PID" 2>/dev/null || true
SYSLOG_PID=""
check "the hosts' syslog received the modules' invocations ($(grep -c 'Invoked with' "$FW/syslog.txt" || true) messages 'Invoked with', from every host)" sh -c \
    "for h in ${HOSTS[*]}; do awk -F '\t' -v h=\"\$h\" '\$1 == h && /Invoked with/ { n++ } END { exit !n }' '$FW/syslog.txt' || exit 1; done"
check "no password in what the hosts sent to syslog" sh -c "! grep -qaFf '$SECRETS_FILE' '$FW/syslog.txt'"
for i in "${!HOSTS[@]}"; do
    check "no password in ${HOSTS[$i]}'s suite log or /var/log" sh -c "! grep -rlaFf '$SECRETS_FILE' '${H_ROOT[$i]}/var/log'"
done
check "the proxy forwarded only to the mirror (nothing refused but the test's own probe)" sh -c \
    "[ \"\$(awk '\$3 == 403' '$FW/proxy.log' | grep -vc 'example.invalid')\" = 0 ]"
check "every request the proxy forwarded named a mirror host of the apt sources (${ALLOW[*]})" \
    awk -v allow=" ${ALLOW[*]} " '/^#/ || $3 == 403 { next } { split($5, u, "/"); if (index(allow, " " u[3] " ") == 0) { print "not a mirror: " $0; bad = 1 } } END { exit bad }' "$FW/proxy.log"
for i in "${!HOSTS[@]}"; do
    check "${HOSTS[$i]}'s apt fetched from the mirror through the proxy (its only way out)" \
        awk -v a="${H_ADDR[$i]}" '$2 == a && $3 == 200 && $4 > 0 { n++ } END { exit n > 0 ? 0 : 1 }' "$FW/proxy.log"
done

check "no bytecode written into the repository's tree (ansible/, Tests/fleet/: no new __pycache__)" sh -c \
    "find '$REPO/ansible' '$FLEET_DIR' -name __pycache__ -type d 2>/dev/null | sort | diff '$FW/bytecode.before' -"

# --- the end -------------------------------------------------------------------------------------
timing "total" $(($(e2e_now_ms) - TOTAL_T0))
e2e_log ""
e2e_log "figures (three hosts, $ANSIBLE_VERSION; $(nproc) CPUs; load average before/after the converged rounds: $FIGURES_LOAD_START / $FIGURES_LOAD_END):"
e2e_log "  first run, three fresh hosts in parallel (ansible-playbook):  $(e2e_secs "$FIRST_MS")s"
e2e_log "  second run, converged (ansible-playbook):                     $(e2e_secs "$CONVERGED_MS")s"
e2e_log "  converged run across the three hosts (ansible-playbook):      $(figure "${ANSIBLE_RUNS[@]}")"
e2e_log "  converged, install.sh by hand over ssh, host after host:      $(figure "${HAND_RUNS[@]}")"
e2e_log "  the hosts' apt through the proxy: $(awk '$3 != 403 { n++; b += $4 } END { printf "%d requests, %.0f MB", n, b / 1e6 }' "$FW/proxy.log")"
e2e_finish fleet
