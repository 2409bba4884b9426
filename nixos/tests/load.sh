# latchkey-load EMAIL PASSWORD JWT SECONDS: sign-ins against the auth daemon and /api/me
# against the API, back to back, for SECONDS; one line per round in /tmp/latchkey-load.log:
#   <unix time> sign-in=<ok|fail> me=<http status>
# Used by the VM test that restarts Postgres under load. Never fails itself: the test reads
# the log.

[ $# -eq 4 ] || {
  echo "usage: latchkey-load EMAIL PASSWORD JWT SECONDS" >&2
  exit 2
}
email=$1
password=$2
jwt=$3
seconds=$4
log=/tmp/latchkey-load.log
: >"$log"

end=$(($(date +%s) + seconds))
while [ "$(date +%s)" -lt "$end" ]; do
  if latchkey-client sign-in "$email" "$password" >/dev/null 2>&1; then
    signin=ok
  else
    signin=fail
  fi
  # curl prints 000 itself when it cannot connect (and exits non-zero).
  me=$(latchkey-client status "$jwt" 2>/dev/null) || true
  me=${me:-000}
  echo "$(date +%s) sign-in=$signin me=$me" >>"$log"
  sleep 0.3
done
