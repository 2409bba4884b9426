# shellcheck disable=SC2016 # scripts for `sh -c` are single-quoted on purpose
# Second boot of the VM (latchkey.vm=test): runs once both daemons are up (vm-test.service is
# ordered after them), as root. Two passes of the same scenarios: the units as shipped
# (SystemCallErrorNumber=EPERM), then again with SystemCallErrorNumber=kill in a drop-in, so
# that a system call the filter refuses kills the daemon instead of failing quietly.
set -euo pipefail
phase=boot
# shellcheck source=tests/vm/guest/lib.sh
. /run/vm/guest/lib.sh
follow_journal
trap finish EXIT
# PID 1 at debug level logs each sd_notify message it gets (READY=1, STOPPING=1).
systemd-analyze log-level debug

AUTH_SECRET=/etc/latchkey/credentials/latchkey-auth/BETTER_AUTH_SECRET
API_TOML=/etc/latchkey/latchkey-api.toml

b64url_decode() {
    local s=${1//-/+}
    s=${s//_//}
    case $((${#s} % 4)) in
        2) s+='==' ;;
        3) s+='=' ;;
    esac
    printf '%s' "$s" | base64 -d
}
b64url_encode() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# sign_in EMAIL: the bearer token; waits out the sign-in rate limit (3 per 10 s) if it hits it.
sign_in() {
    local out
    for _ in 1 2 3; do
        if out=$(client sign-in "$1" "$PASSWORD" 2>"$VM/sign-in.err"); then
            remember "$out"
            printf '%s\n' "$out"
            return 0
        fi
        grep -q '429' "$VM/sign-in.err" || break
        sleep 5
    done
    cat "$VM/sign-in.err" >&2
    return 1
}

jwt_of() { # BEARER
    local t
    t=$(client jwt "$1") || return 1
    remember "$t"
    printf '%s\n' "$t"
}

# notified UNIT PID STATE SINCE: PID 1 logged STATE (READY=1, STOPPING=1) from PID since
# the epoch second SINCE.
notified() {
    journalctl --no-pager --output=cat --unit="$1" --since="@$4" |
        grep -Eq "Got notification message from PID $2 \((.*, )?$3[,)]"
}

# Failure lines of systemd about UNIT since boot: a crash, SIGSYS, a restart.
crashes() {
    journalctl --no-pager --output=cat --boot --priority=info --unit="$1" |
        grep -E 'code=killed|code=dumped|status=31/SYS|Scheduled restart job|Failed with result' || true
}

# up UNIT SINCE: the unit runs, became active through READY=1 from its main process, and has
# not been restarted.
up() {
    local unit=$1 name=${1%.service} pid
    pid=$(main_pid "$unit")
    expect_eq "$name: active (running)" "$(prop "$unit" ActiveState)/$(prop "$unit" SubState)" active/running
    expect_eq "$name: Type=notify" "$(prop "$unit" Type)" notify
    check "$name: READY=1 from its main process (PID $pid)" notified "$unit" "$pid" READY=1 "$2"
    expect_eq "$name: no restarts" "$(prop "$unit" NRestarts)" 0
    expect_eq "$name: no crash, SIGSYS or restart in the journal" "$(crashes "$unit")" ""
}

# start UNIT...: systemctl start (returns once READY=1 arrived, Type=notify), then `up`.
start() {
    local t0 unit
    t0=$(date +%s)
    need "systemctl start $*" systemctl start "$@" || return 0
    for unit in "$@"; do up "$unit" "$t0"; done
}

# stop UNIT...: systemctl stop; each exits by itself with status 0 after STOPPING=1.
stop() {
    local t0 unit elapsed
    declare -A pids
    t0=$(date +%s)
    for unit in "$@"; do pids[$unit]=$(main_pid "$unit"); done
    need "systemctl stop $*" systemctl stop "$@" || return 0
    elapsed=$(($(date +%s) - t0))
    for unit in "$@"; do
        local name=${unit%.service}
        check "$name: STOPPING=1 from its main process on SIGTERM" notified "$unit" "${pids[$unit]}" STOPPING=1 "$t0"
        expect_eq "$name: clean exit (result, how, status)" \
            "$(prop "$unit" Result) $(prop "$unit" ExecMainCode) $(prop "$unit" ExecMainStatus)" "success 1 0"
    done
    check "stopped within TimeoutStopSec=30s (took ${elapsed} s)" test "$elapsed" -lt 30
}

# The sandbox as the running daemon has it: /proc of its main process, and commands run in its
# mount namespace (nsenter), as root and as its own user (setpriv).
# sandbox UNIT CREDENTIALS: CREDENTIALS is yes when the unit loads credentials.
sandbox() {
    local unit=$1 creds=$2 name=${1%.service} pid st uid gid caps
    pid=$(main_pid "$unit")
    [ "$pid" != 0 ] || {
        fail "$name sandbox: not running"
        return 0
    }
    st=/proc/$pid/status
    uid=$(awk '/^Uid:/ {print $2}' "$st")
    gid=$(awk '/^Gid:/ {print $2}' "$st")
    as_service() { nsenter --target "$pid" --mount -- setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }
    in_mounts() { nsenter --target "$pid" --mount -- "$@"; }

    check "$name: a dynamic user ($uid, in 61184-65519) that nss-systemd names $name" \
        sh -c "[ $uid -ge 61184 ] && [ $uid -le 65519 ] && [ \"\$(getent passwd $uid | cut -d: -f1)\" = $name ]"
    expect_eq "$name: NoNewPrivs" "$(awk '/^NoNewPrivs:/ {print $2}' "$st")" 1
    # A process that made itself non-dumpable (PR_SET_DUMPABLE 0: no core dump, no ptrace by
    # its own user) has its /proc files owned by root instead of by its user.
    expect_eq "$name: not dumpable (its /proc files are root's, not uid $uid's)" "$(stat -c %u "$st")" 0
    expect_eq "$name: seccomp in filter mode" "$(awk '/^Seccomp:/ {print $2}' "$st")" 2
    caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ {print $2}' "$st" | sort -u)
    expect_eq "$name: no capabilities (inheritable, permitted, effective, bounding, ambient)" \
        "$caps" 0000000000000000
    check "$name: a user namespace of its own, mapping only single ids" sh -c "
        [ \"\$(readlink /proc/$pid/ns/user)\" != \"\$(readlink /proc/1/ns/user)\" ] &&
        awk '\$3 != 1 {exit 1}' /proc/$pid/uid_map /proc/$pid/gid_map"
    check "$name: / mounted read-only in its mount namespace" \
        sh -c "awk '\$5 == \"/\" {print \$6}' /proc/$pid/mountinfo | tail -n 1 | grep -Eq '(^|,)ro(,|$)'"
    check "$name: /usr, /etc and /var not writable there, even by root (ProtectSystem=strict)" sh -c "
        for d in /usr /etc /var; do
            if nsenter --target $pid --mount -- touch \$d/.vm-probe 2>/dev/null; then
                rm -f \$d/.vm-probe; echo \"\$d is writable\"; exit 1
            fi
        done"
    check "$name: its user can write to its private /tmp, not to /, /run, /etc, /var, /usr/local or /dev/shm" \
        as_service sh -c '
            for d in / /run /etc /var /var/lib /usr/local /dev/shm; do
                if touch "$d/.vm-probe" 2>/dev/null; then rm -f "$d/.vm-probe"; echo "$d is writable"; exit 1; fi
            done
            touch /tmp/.vm-probe && rm /tmp/.vm-probe'
    check "$name: a private /tmp" sh -c "awk '\$5 == \"/tmp\"' /proc/$pid/mountinfo | grep -q ."
    check "$name: no block devices (PrivateDevices)" in_mounts sh -c '! test -e /dev/vda'
    check "$name: /root and /home out of reach of its user (ProtectHome)" \
        as_service sh -c '! ls /root >/dev/null 2>&1 && ! ls /home >/dev/null 2>&1'

    local environ
    environ=$(tr '\0' '\n' <"/proc/$pid/environ")
    check "$name: no secret in its environment" \
        sh -c "! printf '%s\n' \"\$1\" | grep -Eq '^(BETTER_AUTH_SECRET|DATABASE_URL|LATCHKEY_SMTP_URL)(_FILE)?='" _ "$environ"
    if [ "$creds" = yes ]; then
        expect_eq "$name: CREDENTIALS_DIRECTORY set" \
            "$(printf '%s\n' "$environ" | sed -n 's/^CREDENTIALS_DIRECTORY=//p')" "/run/credentials/$unit"
        local cred src
        for cred in /run/credentials/"$unit"/*; do
            src=/etc/latchkey/credentials/$name/$(basename "$cred")
            check "$name: credential $(basename "$cred") readable by its user, equal to the 0600 source" \
                sh -c "cmp -s '$cred' '$src' && [ \"\$(stat -c %U:%a '$src')\" = root:600 ]"
            check "$name: ... whose source it cannot read" \
                as_service sh -c "! cat '$src' >/dev/null 2>&1 && cat '$cred' >/dev/null"
        done
    else
        check "$name: no credentials at all" sh -c "! printf '%s\n' \"\$1\" | grep -q '^CREDENTIALS_DIRECTORY='" _ "$environ"
    fi
    check "$name: the auth secret is nowhere in systemctl show/cat, cmdline or environment" sh -c "
        ! { systemctl show $unit; systemctl cat $unit; tr '\0' ' ' </proc/$pid/cmdline; printf '%s\n' \"\$1\"; } |
            grep -qF -f $AUTH_SECRET" _ "$environ"
}

security() {
    local unit=$1 out status=0 exposure
    out=$(systemd-analyze security --no-pager --threshold=15 "$unit" 2>&1) || status=$?
    exposure=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ "$status" -eq 0 ] && [ -n "$exposure" ]; then
        pass "${unit%.service}: live systemd-analyze security exposure $exposure <= 1.5"
    else
        fail "${unit%.service}: live systemd-analyze security exposure ${exposure:-?} <= 1.5" \
            "$(printf '%s\n' "$out" | grep -v '^✓' | tail -n 8)"
    fi
}

# The client flow of the NixOS VM test, with curl.
client_flow() {
    local email="ada-$phase@example.com" bearer jwt me head payload sig flipped forged
    bearer=$(client sign-up "$email" "$PASSWORD") || {
        fail "client: sign-up $email"
        return 0
    }
    remember "$bearer"
    check "client: sign-up answers a signed bearer token (set-auth-token)" test "${bearer#*.}" != "$bearer"
    expect_eq "client: the raw (unsigned) session token is refused as a bearer" \
        "$(client session "${bearer%%.*}" | tr -d '[:space:]')" null
    bearer=$(sign_in "$email") || {
        fail "client: sign-in $email"
        return 0
    }
    pass "client: sign-in"
    jwt=$(jwt_of "$bearer") || {
        fail "client: GET /api/auth/token"
        return 0
    }
    pass "client: a JWT from /api/auth/token"
    me=$(client me "$jwt" 2>&1) || true
    expect_eq "client: the API's /api/me names the user" "$(printf '%s' "$me" | jq -r .email 2>/dev/null)" "$email"
    IFS=. read -r head payload sig <<<"$jwt"
    if [ "${sig: -2:1}" = A ]; then flipped="${sig:0:-2}B${sig: -1}"; else flipped="${sig:0:-2}A${sig: -1}"; fi
    forged=$(b64url_decode "$payload" | jq -c '.sub = "someone-else"' | b64url_encode)
    expect_eq "client: a JWT with a flipped signature character is 401" "$(client status "$head.$payload.$flipped")" 401
    expect_eq "client: a JWT with a forged payload is 401" "$(client status "$head.$forged.$sig")" 401
    expect_eq "client: a JWT with alg none is 401" \
        "$(client status "$(printf '{"alg":"none","typ":"JWT"}' | b64url_encode).$payload.")" 401
    expect_eq "client: not a JWT is 401" "$(client status not-a-jwt)" 401
    check "client: sign-out" client sign-out "$bearer"
    expect_eq "client: no session after sign-out" "$(client session "$bearer" | tr -d '[:space:]')" null
    expect_eq "client: revocation off: the JWT stands until it expires" "$(client status "$jwt")" 200
}

# post PATH JSON: POSTs to latchkey-auth, prints the status code.
post() {
    curl --silent --max-time 10 -o "$VM/post.out" -w '%{http_code}' \
        -H 'content-type: application/json' -d "$2" "$AUTH$1"
}

# mail_to EMAIL PATTERN: the first match of PATTERN (grep -E) in the newest message to EMAIL
# in the sink, waited for up to 30 s.
mail_to() {
    local f
    for _ in $(seq 150); do
        f=$(grep -lx "To: $1" /var/lib/smtp-sink/*.txt 2>/dev/null | sort | tail -n 1)
        if [ -n "$f" ] && grep -Eo "$2" "$f" | head -n 1 | grep .; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Mail through SMTP under the sandbox (the credential from the drop-in, the outbox, the
# connection to the relay): a verification link that verifies, a reset link that resets.
mail_flow() {
    local email="mail-$phase@example.com" link token verified
    if ! client sign-up "$email" "$PASSWORD" >/dev/null; then
        fail "mail: sign-up $email"
        return 0
    fi
    expect_eq "mail: send-verification-email is 200" \
        "$(post /api/auth/send-verification-email "{\"email\":\"$email\",\"callbackURL\":\"/\"}")" 200
    if link=$(mail_to "$email" "$AUTH/api/auth/verify-email\?[^[:space:]\"<>]+"); then
        pass "mail: the verification link arrived at the SMTP sink"
        token=${link#*token=}
        remember "${token%%&*}"
        check "mail: the link answers (302 to the callback)" sh -c \
            "[ \"\$(curl --silent -o /dev/null -w '%{http_code}' --max-time 10 '$link')\" = 302 ]"
        verified=$(runuser -u postgres -- psql -d latchkey-auth -tAc \
            "SELECT \"emailVerified\" FROM \"user\" WHERE email = '$email'")
        expect_eq "mail: the address is verified" "$verified" t
    else
        fail "mail: no verification mail for $email within 30 s"
    fi
    expect_eq "mail: request-password-reset is 200" \
        "$(post /api/auth/request-password-reset "{\"email\":\"$email\",\"redirectTo\":\"/reset\"}")" 200
    if link=$(mail_to "$email" "reset-password/[A-Za-z0-9]+"); then
        pass "mail: the reset link arrived at the SMTP sink"
        token=${link##*/}
        remember "$token"
        expect_eq "mail: reset-password with the mailed token is 200" \
            "$(post /api/auth/reset-password "{\"token\":\"$token\",\"newPassword\":\"another horse battery\"}")" 200
        expect_eq "mail: sign-in with the new password is 200" \
            "$(post /api/auth/sign-in/email "{\"email\":\"$email\",\"password\":\"another horse battery\"}")" 200
    else
        fail "mail: no reset mail for $email within 30 s"
    fi
}

# Social sign-in under the sandbox (the client secret from the drop-in, outbound HTTP to the
# provider): sign-in/social, the provider's authorize redirect, latchkey's callback, a session
# for the provider's user.
social_flow() {
    local jar="$VM/social-$phase.jar" out url callback answer email
    rm -f "$jar"
    out=$(curl --silent --max-time 10 -c "$jar" -H 'content-type: application/json' \
        -d '{"provider":"github","callbackURL":"/"}' "$AUTH/api/auth/sign-in/social")
    url=$(printf '%s' "$out" | jq -r '.url // empty' 2>/dev/null)
    check "social: sign-in/social answers the provider's authorize URL" \
        sh -c "case '$url' in http://127.0.0.1:2600/login/oauth/authorize\?*) exit 0;; *) echo '$out'; exit 1;; esac"
    callback=$(curl --silent --max-time 10 -o /dev/null -w '%{redirect_url}' "$url")
    answer=$(curl --silent --max-time 20 -b "$jar" -c "$jar" -o "$VM/social.out" -w '%{http_code} %{redirect_url}' "$callback")
    expect_eq "social: the callback signs in and redirects to the callbackURL" "$answer" "302 $AUTH/"
    email=$(curl --silent --max-time 10 -b "$jar" "$AUTH/api/auth/get-session" | jq -r '.user.email' 2>/dev/null)
    expect_eq "social: the session is the provider's user" "$email" octo-vm@example.com
    remember "$(awk '$6 ~ /session_token$/ {print $7}' "$jar" | tail -n 1)"
}

# latchkey-auth stopped: the API verifies from the key set it has, past failed refreshes.
auth_outage() {
    local email="outage-$phase@example.com" bearer jwt api_pid t0
    if ! { bearer=$(client sign-up "$email" "$PASSWORD") && remember "$bearer" && jwt=$(jwt_of "$bearer"); }; then
        fail "auth outage: sign-up and token"
        return 0
    fi
    api_pid=$(main_pid latchkey-api.service)
    t0=$(date +%s)
    stop latchkey-auth.service
    expect_eq "auth outage: latchkey-auth is gone" "$(http_status "$AUTH/api/auth/ok")" 000
    expect_eq "auth outage: the API verifies the JWT from its cached keys" "$(client status "$jwt")" 200
    # Past the JWKS refresh interval (jwks_refresh = 5): the refreshes fail, the keys stay.
    check "auth outage: the API logged a failed JWKS refresh" wait_for 20 sh -c \
        "journalctl --no-pager -o cat -u latchkey-api.service --since=@$t0 | grep -q 'JWKS fetch failed'"
    sleep 2
    expect_eq "auth outage: ... and still verifies it after failed refreshes" "$(client status "$jwt")" 200
    expect_eq "auth outage: the API did not restart" "$(main_pid latchkey-api.service)" "$api_pid"
    start latchkey-auth.service
}

# revocation = "session": the API's own role and its credential, as its unit's comment says.
revocation_on() {
    mkdir -p /etc/systemd/system/latchkey-api.service.d
    cat >/etc/systemd/system/latchkey-api.service.d/revocation.conf <<'EOF'
[Service]
LoadCredential=DATABASE_URL:/etc/latchkey/credentials/latchkey-api/DATABASE_URL
EOF
    cp "$API_TOML" "$VM/latchkey-api.toml.orig"
    printf '%s\n' 'revocation = "session"' 'revocation_cache_ttl = 1' >>"$API_TOML"
    systemctl daemon-reload
    local t0
    t0=$(date +%s)
    need "revocation: systemctl restart latchkey-api with the drop-in" systemctl restart latchkey-api.service || return 0
    up latchkey-api.service "$t0"
    sandbox latchkey-api.service yes

    local email="revoke-$phase@example.com" bearer jwt
    if ! { bearer=$(client sign-up "$email" "$PASSWORD") && remember "$bearer" && jwt=$(jwt_of "$bearer"); }; then
        fail "revocation: sign-up and token"
        return 0
    fi
    expect_eq "revocation: a live session's JWT is 200" "$(client status "$jwt")" 200
    check "revocation: the API is connected to Postgres as its own role (peer authentication)" \
        wait_for 10 sh -c "runuser -u postgres -- psql -tAc \
            \"SELECT usename FROM pg_stat_activity WHERE datname = 'latchkey-auth'\" | grep -qx latchkey-api"
    check "revocation: the API's role cannot read session tokens" sh -c "
        out=\$(runuser -u postgres -- psql -d latchkey-auth -tAc \
            'SET ROLE \"latchkey-api\"; SELECT token FROM \"session\" LIMIT 1' 2>&1)
        printf '%s' \"\$out\" | grep -q 'permission denied'"
    check "revocation: sign-out" client sign-out "$bearer"
    check "revocation: the signed-out session's JWT is 401 within the cache TTL" \
        wait_for 10 sh -c "[ \"\$(bash $VM/client.sh status '$jwt')\" = 401 ]"
}

# Back to the shipped configuration, for the next pass (which starts the daemons anew).
revocation_off() {
    rm -f /etc/systemd/system/latchkey-api.service.d/revocation.conf
    cp "$VM/latchkey-api.toml.orig" "$API_TOML"
    systemctl daemon-reload
}

# systemctl restart postgresql under a request loop: the daemons answer 503 at most while it
# is down, and serve on afterwards without a restart of their own.
postgres_restart() {
    local email="load-$phase@example.com" bearer jwt auth_pid api_pid log=$VM/load-$phase.log
    if ! { bearer=$(client sign-up "$email" "$PASSWORD") && remember "$bearer" && jwt=$(jwt_of "$bearer"); }; then
        fail "postgres restart: sign-up and token"
        return 0
    fi
    auth_pid=$(main_pid latchkey-auth.service)
    api_pid=$(main_pid latchkey-api.service)
    rm -f "$VM/stop-load"
    : >"$log"
    (
        trap - ERR
        end=$((SECONDS + 120))
        while [ ! -e "$VM/stop-load" ] && [ "$SECONDS" -lt "$end" ]; do
            # A new JWT (session lookup and signing) and /api/me (revocation check).
            a=$(http_status "$AUTH/api/auth/token" --header "authorization: Bearer $bearer")
            b=$(http_status "$API/api/me" --header "authorization: Bearer $jwt")
            echo "$(date +%s.%N) $a $b" >>"$log"
            sleep 0.2
        done
    ) &
    local loop=$!
    sleep 1.5
    local t_restart t_done
    t_restart=$(date +%s.%N)
    need "postgres restart: systemctl restart postgresql" systemctl restart postgresql.service || {
        touch "$VM/stop-load"
        wait "$loop" || true
        return 0
    }
    t_done=$(date +%s.%N)
    # Recovered: five rounds in a row with both 200, after the restart.
    check "postgres restart: both daemons serve again within 60 s" wait_for 60 sh -c "
        awk -v t=$t_done '\$1 > t' $log | tail -n 5 | awk '\$2 == 200 && \$3 == 200 {n++} END {exit n == 5 ? 0 : 1}'"
    touch "$VM/stop-load"
    wait "$loop" || true
    local rounds others n503
    rounds=$(wc -l <"$log")
    others=$(awk '($2 != 200 && $2 != 503) || ($3 != 200 && $3 != 503) {print $2 "/" $3}' "$log" | sort | uniq -c | tr '\n' ' ')
    n503=$(awk '$2 == 503 || $3 == 503' "$log" | wc -l)
    say "postgres restart: $rounds rounds, $n503 with a 503, restart took $(awk -v a="$t_restart" -v b="$t_done" 'BEGIN {printf "%.1f", b - a}') s"
    check "postgres restart: $rounds rounds of requests, each 200 or 503 ($n503 with a 503)" \
        sh -c "[ $rounds -ge 10 ] && [ -z '$others' ] || { echo 'other answers: $others'; exit 1; }"
    expect_eq "postgres restart: latchkey-auth not restarted" "$(main_pid latchkey-auth.service)" "$auth_pid"
    expect_eq "postgres restart: latchkey-api not restarted" "$(main_pid latchkey-api.service)" "$api_pid"
    expect_eq "postgres restart: no automatic restarts" \
        "$(prop latchkey-auth.service NRestarts) $(prop latchkey-api.service NRestarts)" "0 0"
    check "postgres restart: a fresh sign-in works" sign_in "$email"
}

scenarios() {
    sandbox latchkey-auth.service yes
    sandbox latchkey-api.service no
    security latchkey-auth.service
    security latchkey-api.service
    client_flow
    mail_flow
    social_flow
    auth_outage
    revocation_on
    postgres_restart
    stop latchkey-api.service latchkey-auth.service
    revocation_off
}

# --- boot: both daemons as systemd started them -----------------------------------------------
say "suite: both daemons started at boot; checking"
check "the installed units are the committed files (sha256)" \
    sh -c 'cd /etc/systemd/system && sha256sum --quiet --check --strict /run/vm/units.sha256'
for unit in "${UNITS[@]}"; do
    expect_eq "${unit%.service}: loaded from /etc/systemd/system" "$(prop "$unit" FragmentPath)" "/etc/systemd/system/$unit"
done
# Boot ran at info level; a Type=notify unit is active only once READY=1 came from its main
# process (NotifyAccess=main). From here on PID 1 logs each message (debug).
for unit in "${UNITS[@]}"; do
    name=${unit%.service}
    expect_eq "$name: started at boot, active (running) through READY=1 (Type=notify, NotifyAccess=main)" \
        "$(prop "$unit" ActiveState)/$(prop "$unit" SubState) $(prop "$unit" Type) $(prop "$unit" NotifyAccess)" \
        "active/running notify main"
    expect_eq "$name: no restarts" "$(prop "$unit" NRestarts)" 0
    expect_eq "$name: no crash, SIGSYS or restart in the journal" "$(crashes "$unit")" ""
done
at() { awk -v us="$(prop "$1" ActiveEnterTimestampMonotonic)" 'BEGIN {printf "%.1f s", us / 1e6}'; }
say "boot: postgresql@15-main active at $(at postgresql@15-main.service), latchkey-auth at" \
    "$(at latchkey-auth.service), latchkey-api at $(at latchkey-api.service) after the kernel started"
check "latchkey-auth started after PostgreSQL was up (After=postgresql.service)" sh -c '
    pg=$(systemctl show -p ActiveEnterTimestampMonotonic --value postgresql@15-main.service)
    auth=$(systemctl show -p ExecMainStartTimestampMonotonic --value latchkey-auth.service)
    [ "$pg" -gt 0 ] && [ "$pg" -le "$auth" ]'

# --- shipped: the units as committed ----------------------------------------------------------
phase=shipped
say "suite: pass 1, the units as shipped (SystemCallErrorNumber=EPERM)"
scenarios

# --- kill: a refused system call kills the daemon ---------------------------------------------
phase="kill"
say "suite: pass 2, SystemCallErrorNumber=kill in a drop-in"
for unit in "${UNITS[@]}"; do
    mkdir -p "/etc/systemd/system/$unit.d"
    printf '[Service]\nSystemCallErrorNumber=kill\n' >"/etc/systemd/system/$unit.d/syscall-kill.conf"
done
systemctl daemon-reload
# Positive control: the same filter does kill a process making a refused call (setpriority is
# in @resources), and with EPERM the call just fails.
filter=(--property=DynamicUser=yes --property=NoNewPrivileges=yes --property=SystemCallArchitectures=native
    --property=SystemCallFilter=@system-service "--property=SystemCallFilter=~@privileged @resources")
check "control: the filter with kill: nice -n 5 dies of SIGSYS" sh -c "
    ! out=\$(systemd-run --quiet --wait --pipe --collect ${filter[*]@Q} --property=SystemCallErrorNumber=kill \
        -- nice -n 5 true 2>&1) || { echo 'nice ran'; exit 1; }
    journalctl --no-pager -o cat --since=-30s | grep -q 'status=31/SYS'"
check "control: the filter with EPERM: nice -n 5 is refused and runs on" sh -c "
    systemd-run --quiet --wait --pipe --collect ${filter[*]@Q} --property=SystemCallErrorNumber=EPERM \
        -- nice -n 5 true 2>&1 | grep -q 'Operation not permitted'"
start latchkey-auth.service latchkey-api.service
for unit in "${UNITS[@]}"; do
    check "${unit%.service}: the kill drop-in is in effect" sh -c "
        systemctl show -p DropInPaths --value $unit | grep -q syscall-kill.conf &&
        [ \"\$(systemctl show -p SystemCallErrorNumber --value $unit)\" != 1 ]"
done
scenarios
for unit in "${UNITS[@]}"; do
    expect_eq "${unit%.service}: never killed by the filter (no SIGSYS in this boot)" "$(crashes "$unit")" ""
done

# --- the journal: no secret, password or token, in any field of either boot ---------------------
phase=journal
journalctl --output=export >"$VM/journal.export"
{
    cat "$AUTH_SECRET"
    echo
    cat /etc/latchkey/credentials/latchkey-auth/GITHUB_CLIENT_SECRET
    echo
    printf '%s\n' "$PASSWORD"
    sort -u "$SECRETS/tokens"
} | awk 'length($0) >= 12' >"$SECRETS/patterns"
check "journal: the export holds both boots and the daemons' lines ($(wc -c <"$VM/journal.export") bytes)" sh -c "
    [ \$(journalctl --list-boots --no-pager | wc -l) -ge 2 ] &&
    grep -aq '^_SYSTEMD_UNIT=latchkey-auth.service' $VM/journal.export &&
    grep -aq '^_SYSTEMD_UNIT=latchkey-api.service' $VM/journal.export"
check "journal: the check finds a planted token (control)" \
    sh -c "printf 'x%sx\n' \"\$(tail -n 1 $SECRETS/patterns)\" | grep -qF -f $SECRETS/patterns"
check "journal: free of the auth secret, the password and all $(($(wc -l <"$SECRETS/patterns") - 2)) tokens" \
    sh -c "n=\$(grep -acF -f $SECRETS/patterns $VM/journal.export) || true; [ \"\${n:-0}\" -eq 0 ] || { echo \"\$n lines\"; exit 1; }"
rm -f "$VM/journal.export"
say "suite: done"
