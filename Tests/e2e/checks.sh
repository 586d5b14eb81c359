# shellcheck shell=bash
# The end-to-end checks, made from OUTSIDE the root: files read under ROOT, the cluster reached
# from this host over TCP 127.0.0.1:<port> with libpq (psql), and peer logins run inside the
# root's namespace. Each check_* function is one PASS/FAIL line; the checks of a step switch on
# when the step is listed in the tarball's bootstrap/steps (has_step).
#
# The configuration under test is described by CFG_* (set by the scenario):
#   CFG_SERVICE_USER CFG_PG_VERSION CFG_CLUSTER CFG_PORT CFG_HM_DB CFG_HM_USER CFG_HM_PASSWORD
#   CFG_AIS (array) CFG_SUFFIX CFG_AI_PASSWORDS (assoc: name -> password)
# An empty CFG_HM_PASSWORD, or an AI without an entry in CFG_AI_PASSWORDS, means none is
# configured: the suite generated one, kept in the root's /etc/hearthminds/pgpass/<role>.

has_step() {
    local s
    for s in "${E2E_STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

# --- helpers -------------------------------------------------------------------------------------

# psql_root USER DB SQL: peer login as USER over the cluster's socket inside the root.
psql_root() {
    in_root_as "$1" env 'PGOPTIONS=-c client_min_messages=warning' psql -X -A -t -q -v ON_ERROR_STOP=1 -p "$CFG_PORT" -d "$2" -c "$3"
}

# psql_tcp USER PASSWORD DB SQL: a password login from this host over TCP (the password goes in
# a 0600 passfile, never on a command line).
psql_tcp() {
    local pass="$WORK/pgpass.$$"
    (umask 077 && printf '127.0.0.1:%s:*:%s:%s\n' "$CFG_PORT" "$1" "$2" >"$pass")
    local rc=0
    env -u PGPASSWORD -u PGSERVICE -u PGSERVICEFILE PGPASSFILE="$pass" PGCONNECT_TIMEOUT=10 \
        psql -X -A -t -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CFG_PORT" -U "$1" -d "$3" -c "$4" || rc=$?
    rm -f "$pass"
    return "$rc"
}

# expect_eq WANT CMD...: CMD's output (trimmed) must equal WANT.
expect_eq() {
    local want=$1 got
    shift
    got=$("$@" 2>&1) || { printf '%s\n' "$got"; return 1; }
    got=$(printf '%s' "$got" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    [ "$got" = "$want" ] || { printf 'want: %s\ngot:  %s\n' "$want" "$got"; return 1; }
}

# expect_match ERE CMD...: CMD succeeds and some line of its output matches ERE.
expect_match() {
    local re=$1 got
    shift
    got=$("$@" 2>&1) || { printf '%s\n' "$got"; return 1; }
    printf '%s\n' "$got" | grep -Eq -- "$re" || { printf 'want /%s/, got:\n%s\n' "$re" "$got"; return 1; }
}

# expect_refused PATTERN CMD...: CMD must fail, and its error must match PATTERN (so that a
# failure for another reason — the server down, say — does not count).
expect_refused() {
    local pattern=$1 out
    shift
    if out=$("$@" 2>&1); then printf 'succeeded, should have been refused: %s\n' "$out"; return 1; fi
    printf '%s\n' "$out" | grep -Eiq -- "$pattern" || { printf 'refused, but not with /%s/:\n%s\n' "$pattern" "$out"; return 1; }
}

# role_password ROLE: the configured password of a role, else the one the suite generated (the
# last field of the first line of the root's /etc/hearthminds/pgpass/ROLE, unescaped).
role_password() {
    local role=$1 line
    if [ "$role" = "$CFG_HM_USER" ] && [ -n "$CFG_HM_PASSWORD" ]; then printf '%s\n' "$CFG_HM_PASSWORD"; return 0; fi
    if [ -n "${CFG_AI_PASSWORDS[$role]:-}" ]; then printf '%s\n' "${CFG_AI_PASSWORDS[$role]}"; return 0; fi
    line=$(head -n 1 "$ROOT/etc/hearthminds/pgpass/$role" 2>/dev/null) || return 1
    # host:port:db:user:password, with \: and \\ escaped (generated passwords hold neither)
    printf '%s\n' "${line##*:}"
}

hba_path() { printf '/etc/postgresql/%s/%s/pg_hba.conf\n' "$CFG_PG_VERSION" "$CFG_CLUSTER"; }
hba_file() { printf '%s%s\n' "$ROOT" "$(hba_path)"; }

ai_db() { printf '%s%s\n' "$1" "$CFG_SUFFIX"; }

# --- the log -------------------------------------------------------------------------------------

# log_all_true RUN_ID: the run logged a true "(step)" line for every listed step, and no false.
log_all_true() {
    local lines s bad=0
    lines=$(log_lines "$1")
    [ -n "$lines" ] || { echo "no log lines for run $1"; return 1; }
    for s in "${E2E_STEPS[@]}"; do
        grep -F "\"step\":\"$s\",\"action\":\"(step)\"" <<<"$lines" | grep -qF '"result":true' ||
            { echo "no true (step) line for step $s"; bad=1; }
    done
    if grep -qF '"result":false' <<<"$lines"; then
        printf '%s\n' "$lines" | grep -F '"result":false' | head -5
        bad=1
    fi
    return "$bad"
}

# log_unchanged RUN_ID: every step ran and no action of the run changed anything.
log_unchanged() {
    local lines s bad=0
    lines=$(log_lines "$1")
    [ -n "$lines" ] || { echo "no log lines for run $1"; return 1; }
    for s in "${E2E_STEPS[@]}"; do
        grep -qF "\"step\":\"$s\",\"action\":\"(step)\"" <<<"$lines" || { echo "step $s did not run"; bad=1; }
    done
    if grep -qF '"changed":true' <<<"$lines"; then
        printf '%s\n' "$lines" | grep -F '"changed":true' | head -8
        bad=1
    fi
    return "$bad"
}

# log_steps_only RUN_ID STEP...: the run logged these steps and no other.
log_steps_only() {
    local run=$1 got want
    shift
    got=$(log_lines "$run" | sed -n 's/.*"step":"\([^"]*\)".*/\1/p' | sort -u | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
    [ "$got" = "$want" ] || { printf 'steps logged: %s\nexpected:     %s\n' "$got" "$want"; return 1; }
}

# log_has RUN_ID STEP FIXED-STRING...: a line of STEP in the run holds every string given.
log_has() {
    local run=$1 step=$2 lines
    shift 2
    lines=$(log_lines "$run" | grep -F "\"step\":\"$step\"") || true
    local s
    for s in "$@"; do lines=$(printf '%s\n' "$lines" | grep -F -- "$s") || true; done
    [ -n "$lines" ] || { echo "no $step line with: $*"; log_lines "$run" | grep -F "\"step\":\"$step\"" | head -5; return 1; }
}

# step_times RUN_ID: "step 1.2s, ..." from the (step) lines.
step_times() {
    log_lines "$1" | grep -F '"action":"(step)"' |
        sed -n 's/.*"step":"\([^"]*\)".*"ms":\([0-9.]*\).*/\1 \2/p' |
        awk '{ printf "%s%s %.2fs", (NR > 1 ? ", " : ""), $1, $2 / 1000 } END { print "" }'
}

# --- what the host looks like: compared before and after a dry run or a bad configuration ------

snapshot() {
    local f
    {
        for f in etc/passwd etc/group etc/shadow etc/gshadow var/lib/dpkg/status; do
            printf '%s ' "$f"; sha256sum <"$ROOT/$f"
        done
        stat -c 'home %u:%g %a' "$ROOT/var/lib/$CFG_SERVICE_USER" 2>&1 || true
        [ -d "$ROOT/etc/hearthminds" ] && (cd "$ROOT" && find etc/hearthminds -type f -exec sha256sum {} + | sort) || true
        [ -d "$ROOT/etc/postgresql" ] && (cd "$ROOT" && find etc/postgresql -type f -exec sha256sum {} + | sort) || true
        if [ -x "$ROOT/usr/bin/pg_lsclusters" ]; then in_root pg_lsclusters --no-header 2>&1 || true; fi
        if has_step postgres; then
            psql_root postgres postgres "SELECT pg_postmaster_start_time()" 2>&1 || true
            psql_root postgres postgres \
                "SELECT datname, pg_get_userbyid(datdba), datacl FROM pg_database ORDER BY 1" 2>&1 || true
            psql_root postgres postgres \
                "SELECT rolname, rolsuper, rolcanlogin, md5(coalesce(rolpassword, '')) FROM pg_authid ORDER BY 1" 2>&1 || true
        fi
    } >"$1"
}

snapshots_equal() {
    diff -u "$1" "$2" && return 0
    return 1
}

# --- checks per step -----------------------------------------------------------------------------

check_service_user() {
    local u=$CFG_SERVICE_USER line uid gid home shell max gid_group
    if ! line=$(grep "^$u:" "$ROOT/etc/passwd"); then
        e2e_fail "service-user: $u in ROOT/etc/passwd" "no line for $u"
        return 0
    fi
    IFS=: read -r _ _ uid gid _ home shell <<<"$line"
    max=$(awk '$1 == "SYS_UID_MAX" { print $2 }' "$ROOT/etc/login.defs")
    max=${max:-999}
    check "service-user: $u has a system uid ($uid <= $max)" test "$uid" -gt 0 -a "$uid" -le "$max"
    check "service-user: $u has shell /usr/sbin/nologin" test "$shell" = /usr/sbin/nologin
    gid_group=$(awk -F: -v g="$u" '$1 == g { print $3 }' "$ROOT/etc/group")
    check "service-user: $u's primary group is its own group $u" test -n "$gid_group" -a "$gid" = "$gid_group"
    check "service-user: home $home is /var/lib/$u" test "$home" = "/var/lib/$u"
    check "service-user: home owned by $u:$u, mode 0750" expect_eq "$uid:$gid 750 directory" \
        stat -c '%u:%g %a %F' "$ROOT$home"
}

check_postgres() {
    local v=$CFG_PG_VERSION c=$CFG_CLUSTER p=$CFG_PORT
    check "postgres: cluster $v/$c online at port $p (pg_lsclusters in the root)" \
        expect_match "^$v +$c +$p +online " in_root pg_lsclusters --no-header
    check "postgres: pg_isready from the host at 127.0.0.1:$p" pg_isready -q -h 127.0.0.1 -p "$p" -t 15
    check "postgres: server_version is $v (peer login as postgres)" \
        expect_match "^$v\\." psql_root postgres postgres 'SHOW server_version'
    check "postgres: password_encryption = scram-sha-256" expect_eq scram-sha-256 \
        psql_root postgres postgres "SHOW password_encryption"
    check "postgres: server encoding UTF8" expect_eq UTF8 psql_root postgres postgres "SHOW server_encoding"
    check "postgres: listen_addresses is loopback" \
        expect_match '^(127\.0\.0\.1|localhost|::1)$' psql_root postgres postgres 'SHOW listen_addresses'
    check_tuning
}

# PostgreSQL's way of showing a size of MB: in GB when whole.
shown_mb() { if [ $(($1 % 1024)) -eq 0 ]; then echo "$(($1 / 1024))GB"; else echo "${1}MB"; fi; }
clamp() { local v=$1; [ "$v" -lt "$2" ] && v=$2; [ "$v" -gt "$3" ] && v=$3; echo "$v"; }

# The server sized to the machine (issue 24): the memory settings computed here from the host's
# MemTotal (the e2e root shares its memory and cgroup), as the postgres step's rules say, are
# what the running server shows; parallel maintenance from the CPUs allowed.
check_tuning() {
    local mem_mb cores
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
    cores=$(nproc)
    check "postgres: shared_buffers is a quarter of the memory ($(shown_mb "$(clamp $((mem_mb / 4)) 128 16384)"))" \
        expect_eq "$(shown_mb "$(clamp $((mem_mb / 4)) 128 16384)")" psql_root postgres postgres 'SHOW shared_buffers'
    check "postgres: maintenance_work_mem is an eighth of the memory ($(shown_mb "$(clamp $((mem_mb / 8)) 64 8192)"))" \
        expect_eq "$(shown_mb "$(clamp $((mem_mb / 8)) 64 8192)")" psql_root postgres postgres 'SHOW maintenance_work_mem'
    check "postgres: max_parallel_maintenance_workers is the cores less one, 2 to 8" \
        expect_eq "$(clamp $((cores - 1)) 2 8)" psql_root postgres postgres 'SHOW max_parallel_maintenance_workers'
    check "postgres: max_wal_size 4GB, checkpoint_timeout 15min" expect_eq "4GB 15min" \
        psql_root postgres postgres "SELECT current_setting('max_wal_size') || ' ' || current_setting('checkpoint_timeout')"
    check "postgres: no tuned setting waits for a restart" expect_eq 0 \
        psql_root postgres postgres "SELECT count(*) FROM pg_settings WHERE pending_restart"
}

check_pg_hba() {
    local f
    f=$(hba_file)
    check "pg-hba: $(hba_path) exists" test -s "$f"
    check "pg-hba: no trust, md5 or password method in the file" sh -c \
        "! grep -Ev '^[[:space:]]*(#|\$)' '$f' | grep -Ew 'trust|md5|password'"
    check "pg-hba: peer for local system accounts, scram-sha-256 for passwords" sh -c \
        "grep -Eq '^[[:space:]]*local[[:space:]].*[[:space:]]peer([[:space:]]|\$)' '$f' && grep -Eq '^[[:space:]]*host[[:space:]].*scram-sha-256' '$f'"
    check "pg-hba: pg_hba_file_rules has no error" expect_eq 0 \
        psql_root postgres postgres "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"
    check "pg-hba: the loaded rules have no trust/md5/password" expect_eq 0 \
        psql_root postgres postgres "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method IN ('trust', 'md5', 'password')"
    check "pg-hba: a TCP login without a password is refused from the host" \
        expect_refused 'password|no pg_hba.conf entry|rejects connection' psql_tcp postgres '' postgres 'SELECT 1'
}

vector_scratch() {
    local r
    # (its NOTICE when there is none is not part of the answer)
    psql_root postgres postgres 'DROP DATABASE IF EXISTS hm_e2e_scratch' >/dev/null 2>&1 || return 1
    psql_root postgres postgres 'CREATE DATABASE hm_e2e_scratch' >/dev/null || return 1
    r=$(psql_root postgres hm_e2e_scratch "CREATE EXTENSION vector; SELECT '[1,2,3]'::vector <-> '[1,2,5]'") || r="error: $r"
    psql_root postgres postgres 'DROP DATABASE hm_e2e_scratch' >/dev/null || return 1
    printf '%s\n' "$r"
}

check_pgvector() {
    check "pgvector: vector is in pg_available_extensions" expect_match '^[0-9]+\.[0-9]+' \
        psql_root postgres postgres "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    check "pgvector: CREATE EXTENSION vector works (scratch database, dropped after)" expect_eq 2 vector_scratch
}

# no_readable_secrets DIR: no file that others may read holds a password setting
# (KEY_PASSWORD=, password=) or a password-file line (host:port:db:user:password).
no_readable_secrets() {
    local f bad=0
    while IFS= read -r f; do
        if grep -Eiq '^[^#]*password[[:space:]]*=' "$f" || grep -Eq '^[^#:]+:[^:]+:[^:]+:[^:]+:.+' "$f"; then
            echo "readable by others and holds a password: ${f#"$ROOT"}"
            bad=1
        fi
    done < <(find "$1" -type f -perm /o=r)
    return "$bad"
}

check_databases() {
    local ai other db pw
    check "databases: $CFG_HM_DB owned by $CFG_SERVICE_USER" expect_eq "$CFG_SERVICE_USER" \
        psql_root postgres postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$CFG_HM_DB'"
    check "databases: manager $CFG_HM_USER logs in over TCP with its password, a superuser" expect_eq t \
        psql_tcp "$CFG_HM_USER" "$(role_password "$CFG_HM_USER")" "$CFG_HM_DB" "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    if [ -z "$CFG_HM_PASSWORD" ]; then
        check "databases: the manager's password was generated: 32 characters, not its name" sh -c \
            "pw=\$(head -n1 '$ROOT/etc/hearthminds/pgpass/$CFG_HM_USER'); pw=\${pw##*:}; [ \${#pw} -eq 32 ] && [ \"\$pw\" != '$CFG_HM_USER' ]"
        check "databases: the manager's name is not its password" \
            expect_refused 'password authentication failed' psql_tcp "$CFG_HM_USER" "$CFG_HM_USER" "$CFG_HM_DB" "SELECT 1"
    fi
    check "databases: the password files are root's, 0600, in a 0700 directory" sh -c \
        "[ \"\$(stat -c '%U %a' '$ROOT/etc/hearthminds/pgpass')\" = 'root 700' ] && ! find '$ROOT/etc/hearthminds/pgpass' -type f ! -perm 0600 | grep -q ."
    check "databases: $CFG_HM_USER is a member of pg_monitor" expect_eq t \
        psql_root postgres postgres "SELECT pg_has_role('$CFG_HM_USER', 'pg_monitor', 'MEMBER')"
    check "databases: $CFG_SERVICE_USER logs in by peer to $CFG_HM_DB" expect_eq "$CFG_SERVICE_USER" \
        psql_root "$CFG_SERVICE_USER" "$CFG_HM_DB" "SELECT current_user"
    check "databases: CONNECT is not granted to PUBLIC on $CFG_HM_DB" expect_eq f \
        psql_root postgres postgres "SELECT has_database_privilege('public', '$CFG_HM_DB', 'CONNECT')"
    for ai in "${CFG_AIS[@]}"; do
        db=$(ai_db "$ai")
        pw=$(role_password "$ai")
        check "databases: $db owned by $ai" expect_eq "$ai" \
            psql_root postgres postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$db'"
        check "databases: $ai is LOGIN, not superuser/createdb/createrole" expect_eq "t|f|f|f" \
            psql_root postgres postgres "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '$ai'"
        check "databases: $ai logs in over TCP with its password to $db" expect_eq "$ai" \
            psql_tcp "$ai" "$pw" "$db" "SELECT current_user"
        check "databases: $ai logs in over TCP to $CFG_HM_DB" expect_eq "$ai" \
            psql_tcp "$ai" "$pw" "$CFG_HM_DB" "SELECT current_user"
        check "databases: $ai's password is stored as SCRAM" expect_eq t \
            psql_root postgres postgres "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = '$ai'"
        check "databases: a wrong password for $ai is refused" \
            expect_refused 'password authentication failed' psql_tcp "$ai" "not-$pw" "$db" "SELECT 1"
        if [ -z "${CFG_AI_PASSWORDS[$ai]:-}" ]; then
            check "databases: $ai's password was generated (32 characters), and its name is not its password" sh -c \
                "[ \${#1} -eq 32 ] && [ \"\$1\" != '$ai' ]" - "$pw"
            check "databases: $ai cannot log in with its name as password" \
                expect_refused 'password authentication failed' psql_tcp "$ai" "$ai" "$db" "SELECT 1"
        fi
        for other in postgres template1; do
            check "pg-hba: $ai, with its own password, has no line to database $other" \
                expect_refused 'no pg_hba.conf entry' psql_tcp "$ai" "$pw" "$other" "SELECT 1"
        done
        for other in "${CFG_AIS[@]}"; do
            [ "$other" = "$ai" ] && continue
            check "databases: $ai is refused by $(ai_db "$other")" \
                expect_refused 'permission denied|not permitted|no pg_hba.conf entry|rejects connection' \
                psql_tcp "$ai" "$pw" "$(ai_db "$other")" "SELECT 1"
        done
    done
    for db in "$CFG_HM_DB" $(for ai in "${CFG_AIS[@]}"; do ai_db "$ai"; done); do
        check "databases: vector in $db, owned by $CFG_HM_USER" expect_eq "$CFG_HM_USER" \
            psql_root postgres "$db" "SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'vector'"
    done
    if [ -d "$ROOT/etc/hearthminds" ]; then
        check "databases: no file under /etc/hearthminds that others can read holds a password" \
            no_readable_secrets "$ROOT/etc/hearthminds"
    fi
}

# The head revision: the highest id among the shipped Migrations/<id>_*.up.sql.
migrations_head() {
    find "$ROOT$E2E_HM/Migrations" -maxdepth 1 -name '*.up.sql' -printf '%f\n' 2>/dev/null |
        sed -n 's/^\([0-9][0-9]*\).*/\1/p' | sort -n | tail -n 1
}

check_migrations() {
    local head db ai
    head=$(migrations_head)
    check "migrations: the tarball ships revisions (head ${head:-none})" test -n "$head"
    for db in "$CFG_HM_DB" $(for ai in "${CFG_AIS[@]}"; do ai_db "$ai"; done); do
        check "migrations: $db is at head $head (alembic_version)" expect_eq "$head" \
            psql_root postgres "$db" "SELECT version_num FROM alembic_version"
    done
    check "migrations: the seed's eng_patterns query answers in $CFG_HM_DB" expect_match . \
        psql_root postgres "$CFG_HM_DB" "SELECT content FROM eng_patterns WHERE tags @> ARRAY['testing', 'validation']"
}

# The vector-index step: every database searches its IVFFlat index with the probes auto gives
# (the square root of 0003's 100 lists, the index being untrained on a fresh host).
check_vector_index() {
    local db
    for db in $(all_databases); do
        check "vector-index: $db has ivfflat.probes 10 (ALTER DATABASE ... SET)" expect_eq 10 \
            psql_root postgres "$db" "SHOW ivfflat.probes"
    done
}

# A halfvec host (issue 24; the second configuration has PGVECTOR_STORAGE=halfvec): every
# database's memory_shards.embedding is halfvec with its IVFFlat index on halfvec_cosine_ops,
# and the first AI's rows answer the seed's query (ORDER BY embedding <=> a vector: the vector is
# cast to halfvec implicitly) and memory_search alike (every list probed: exact on 40 rows).
first_line() { local out; out=$("$@") || return 1; printf '%s\n' "$out" | head -n 1; }

check_halfvec_host() {
    local db ai=${CFG_AIS[0]} aidb pw row7 first
    for db in $(all_databases); do
        check "halfvec: $db's memory_shards.embedding is halfvec(1536)" expect_eq "halfvec(1536)" \
            psql_root postgres "$db" "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.memory_shards'::regclass AND attname = 'embedding'"
        check "halfvec: $db's IVFFlat index is on halfvec_cosine_ops" expect_match 'USING ivfflat \(embedding halfvec_cosine_ops\)' \
            psql_root postgres "$db" "SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_shards_embedding_ivfflat_idx'"
    done
    aidb=$(ai_db "$ai")
    pw=$(role_password "$ai")
    row7="ARRAY(SELECT sin(7 * i + i)::real FROM generate_series(1, 1536) i)::vector"
    check "halfvec: $ai inserts 40 rows with vector values (cast to halfvec)" psql_tcp "$ai" "$pw" "$aidb" \
        "INSERT INTO public.memory_shards (content, embedding) SELECT 'e2e halfvec ' || g, ARRAY(SELECT sin(g * i + i)::real FROM generate_series(1, 1536) i WHERE g > 0)::vector FROM generate_series(1, 40) g"
    first="SET ivfflat.probes = 100; SELECT content FROM public.memory_shards ORDER BY embedding <=> $row7 LIMIT 5"
    check "halfvec: the seed's query (ORDER BY embedding <=> vector) finds row 7 first" expect_eq "e2e halfvec 7" \
        first_line psql_tcp "$ai" "$pw" "$aidb" "$first"
    check "halfvec: memory_search(vector, 5) finds row 7 first, at distance 0" expect_eq "e2e halfvec 7|0.000" \
        psql_tcp "$ai" "$pw" "$aidb" "SET ivfflat.probes = 100; SELECT content || '|' || round(distance::numeric, 3) FROM public.memory_search($row7, 5) LIMIT 1"
}

check_verify() {
    check "verify: hm-verify on its own exits 0" in_root "$E2E_HM/bootstrap/bin/hm-verify"
}

# Every check that applies to the steps in the tarball.
check_host() {
    check_service_user
    has_step postgres && check_postgres
    has_step pg-hba && check_pg_hba
    has_step pgvector && check_pgvector
    has_step databases && check_databases
    has_step migrations && check_migrations
    has_step vector-index && check_vector_index
    has_step monitoring && check_monitoring
    has_step verify && check_verify
    return 0
}

# --- what an install adds to the host (issue 11) ---------------------------------------------------

# installed_packages: the packages dpkg has installed in ROOT, sorted (from its status file).
installed_packages() {
    awk '/^Package: / { p = $2 } /^Status: install ok installed$/ { print p }' "$ROOT/var/lib/dpkg/status" | sort -u
}

# no_toolchain_in LIST: no compiler, assembler, make or -dev package in the LIST of packages.
no_toolchain_in() {
    local bad
    bad=$(grep -E '^(gcc|gcc-[0-9.]+|g\+\+(-[0-9.]+)?|cpp|cpp-[0-9.]+|clang(-[0-9.]+)?|make|binutils.*|.*-dev)$' <<<"$1") || true
    [ -z "$bad" ] || { echo "toolchain packages added: $(tr '\n' ' ' <<<"$bad")"; return 1; }
}

# no_compiler_on_path: cc, gcc, c++ and make are not on the PATH of a root shell in ROOT.
no_compiler_on_path() {
    local found
    found=$(in_root sh -c 'for c in cc gcc c++ make; do command -v "$c"; done' || true)
    [ -z "$found" ] || { echo "on the PATH: $found"; return 1; }
}

# only_postgres_dependencies LIST: every package in LIST is PostgreSQL's server or client of
# CFG_PG_VERSION, libpq5, pgvector's package, pgbackrest (the backup step's), or one of their
# dependencies (Depends and Pre-Depends, recursively, as the root's apt-cache sees them):
# nothing else was installed.
only_postgres_dependencies() {
    local roots=() p closure extra
    for p in "postgresql-$CFG_PG_VERSION" "postgresql-client-$CFG_PG_VERSION" libpq5 "postgresql-$CFG_PG_VERSION-pgvector" \
        pgbackrest prometheus-postgres-exporter prometheus-node-exporter; do
        grep -qx "$p" <<<"$1" && roots+=("$p")
    done
    [ "${#roots[@]}" -gt 0 ] || { echo "none of the PostgreSQL packages was added"; return 1; }
    closure=$(in_root apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${roots[@]}" | grep -v '^ ' | tr -d '<>' | sort -u) || return 1
    extra=$(comm -23 <(printf '%s\n' "$1" | sed '/^$/d' | sort -u) <(printf '%s\n' "$closure"))
    [ -z "$extra" ] || { echo "not a dependency of ${roots[*]}: $(tr '\n' ' ' <<<"$extra")"; return 1; }
}

# check_packages_added LABEL BEFORE: what ROOT has now that the package list BEFORE (a file) did
# not: shown, no toolchain in it or on the PATH, and only PostgreSQL's packages and theirs.
check_packages_added() {
    local label=$1 added
    added=$(comm -13 "$2" <(installed_packages))
    e2e_note "$label: $(grep -c . <<<"$added") packages added: $(tr '\n' ' ' <<<"$added")"
    check "$label: no compiler, make, binutils or -dev package added" no_toolchain_in "$added"
    check "$label: no cc, gcc, c++ or make on the root's PATH" no_compiler_on_path
    check "$label: every package added is PostgreSQL's, libpq5, pgvector's, pgbackrest, the two exporters', or their dependency" \
        only_postgres_dependencies "$added"
}

# pgvector_owner: the package that owns pgvector's library in ROOT (dpkg -S), or nothing.
pgvector_owner() {
    in_root dpkg-query -S "/usr/lib/postgresql/$CFG_PG_VERSION/lib/vector.so" 2>/dev/null | cut -d: -f1
}
