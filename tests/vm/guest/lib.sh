# Helpers of the guest scripts (install.sh, suite.sh), sourced. They run as root inside the VM,
# from the payload unpacked into /run/vm (see tests/vm/image.sh), with stdout on the serial
# console (ttyS0). Results go to /run/vm/results and, at the end, as a tar archive onto the
# results disk (/dev/vdc) that tests/vm/run reads after the VM has powered off.
#
# Nothing secret is ever printed: the console is not the journal, but it ends up in CI logs.
#
# The checks hand whole scripts to `sh -c` in single quotes, on purpose:
# shellcheck disable=SC2016

VM=/run/vm
RESULTS=$VM/results
SECRETS=$VM/secrets # bearer tokens and JWTs handed out, for the journal check; never printed
AUTH=http://127.0.0.1:3000
API=http://127.0.0.1:8000
export LATCHKEY_AUTH_URL=$AUTH LATCHKEY_API_URL=$API
# shellcheck disable=SC2034 # used by the scripts that source this file
PASSWORD='correct horse battery staple'
UNITS=(latchkey-auth.service latchkey-api.service)

mkdir -p "$RESULTS" "$SECRETS"
touch "$RESULTS/checks" "$SECRETS/tokens"
chmod 0700 "$SECRETS"
phase=${phase:-install}

say() { printf 'vm-guest: %4d s  %s\n' "$SECONDS" "$*"; }

# pass NAME / fail NAME DETAIL: one line in results/checks (STATUS<TAB>PHASE<TAB>NAME<TAB>DETAIL).
pass() {
    printf 'PASS\t%s\t%s\t\n' "$phase" "$1" >>"$RESULTS/checks"
    say "ok      [$phase] $1"
}
fail() {
    local detail
    detail=$(printf '%s' "${2:-}" | tr '\t\n' '  ' | cut -c 1-400)
    printf 'FAIL\t%s\t%s\t%s\n' "$phase" "$1" "$detail" >>"$RESULTS/checks"
    say "FAILED  [$phase] $1${detail:+: $detail}"
}

# need NAME COMMAND...: pass if COMMAND succeeds, else fail with its output (first lines) and
# return 1, for steps that later ones depend on: `need ... || return 0`.
need() {
    local name=$1 out
    shift
    if out=$(
        trap - ERR
        "$@" 2>&1
    ); then
        pass "$name"
    else
        fail "$name" "$(printf '%s' "$out" | head -n 5)"
        return 1
    fi
}

# check NAME COMMAND...: as need, but records and goes on.
check() { need "$@" || true; }

# expect_eq NAME ACTUAL EXPECTED: records and goes on.
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1" "got '$2', expected '$3'"
    fi
}

# Anything else that fails stops the script (set -e), recorded as a failed check with its
# place; the EXIT trap (finish) still writes the results.
on_err() {
    [ "$BASH_SUBSHELL" -eq 0 ] || return 0
    fail "$(basename "$0") stopped: line $1: $2"
}
set -E
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

# The client of nixos/tests/client.sh (the NixOS VM tests' client), in strict mode as
# writeShellApplication runs it.
client() { bash -o errexit -o nounset -o pipefail "$VM/client.sh" "$@"; }

# remember TOKEN: for the journal check at the end (a signed bearer token also counts by its
# raw part, a JWT also by its signature).
remember() {
    local t=$1
    printf '%s\n' "$t" >>"$SECRETS/tokens"
    case "$t" in
        *.*.*) printf '%s\n' "${t##*.}" >>"$SECRETS/tokens" ;;
        *.*) printf '%s\n' "${t%%.*}" "${t#*.}" >>"$SECRETS/tokens" ;;
    esac
}

# http_status URL [CURL ARGS...]: the HTTP status, 000 when no answer came.
http_status() {
    local url=$1 code
    shift
    code=$(curl --silent --max-time 15 --output /dev/null --write-out '%{http_code}' "$@" "$url") || true
    printf '%s\n' "${code:-000}"
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds; fails after SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

main_pid() { systemctl show --property=MainPID --value "$1"; }
prop() { systemctl show --property="$2" --value "$1"; }

# The daemons' journal (and systemd's lines about them), live on the second serial port: the
# host prints its tail when the run fails or times out.
follow_journal() {
    if [ -c /dev/ttyS1 ]; then
        stty -F /dev/ttyS1 raw -echo 2>/dev/null || true
        SYSTEMD_COLORS=0 journalctl --follow --lines=all --output=short-monotonic --no-hostname --priority=info \
            --unit=latchkey-auth.service --unit=latchkey-api.service --unit=postgresql@15-main.service \
            >/dev/ttyS1 2>&1 &
    fi
}

# finish: copies the journal tails into the results, writes them onto the results disk.
finish() {
    local unit
    for unit in "${UNITS[@]}"; do
        journalctl --no-pager --lines=120 --output=short-monotonic --no-hostname --unit="$unit" \
            >"$RESULTS/journal-${unit%.service}.txt" 2>&1 || true
    done
    journalctl --no-pager --lines=200 --output=short-monotonic --no-hostname \
        >"$RESULTS/journal-all.txt" 2>&1 || true
    say "$(grep -c '^PASS' "$RESULTS/checks") passed, $(grep -c '^FAIL' "$RESULTS/checks") failed in phase(s) up to $phase"
    touch "$RESULTS/complete"
    tar -cf /dev/vdc -C "$RESULTS" .
    sync
}
