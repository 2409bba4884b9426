# latchkey-client: what a client of latchkey does, with curl and jq (the VM tests' client).
# Packaged with writeShellApplication (strict mode, shellcheck at build time).
#
#   latchkey-client sign-up EMAIL PASSWORD   prints the bearer token (set-auth-token)
#   latchkey-client sign-in EMAIL PASSWORD   prints the bearer token
#   latchkey-client jwt BEARER               prints a JWT from GET /api/auth/token
#   latchkey-client session BEARER           prints GET /api/auth/get-session (null if none)
#   latchkey-client sign-out BEARER          POST /api/auth/sign-out, fails unless success
#   latchkey-client me JWT                   prints GET /api/me of the API, fails unless 200
#   latchkey-client status JWT               prints the HTTP status of GET /api/me
#   latchkey-client kids                     prints the kids of the auth daemon's JWKS
#
# LATCHKEY_AUTH_URL (http://auth:3000) and LATCHKEY_API_URL (http://api:8000) say where.

auth=${LATCHKEY_AUTH_URL:-http://auth:3000}
api=${LATCHKEY_API_URL:-http://api:8000}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "latchkey-client: $*" >&2
  exit 1
}

# POST a JSON body to the auth daemon; the bearer token comes back in set-auth-token.
session_request() {
  local path=$1 body=$2 token
  if ! curl --silent --show-error --fail-with-body --max-time 30 \
    --dump-header "$work/headers" --output "$work/body" \
    --header 'content-type: application/json' --data-binary "$body" \
    "$auth/api/auth/$path"; then
    cat "$work/body" >&2 || true
    fail "POST /api/auth/$path failed"
  fi
  token=$(tr -d '\r' <"$work/headers" | sed -n 's/^[Ss]et-[Aa]uth-[Tt]oken: *//p' | head -n 1)
  [ -n "$token" ] || fail "no set-auth-token header from /api/auth/$path"
  printf '%s\n' "$token"
}

[ $# -ge 1 ] || fail "usage: latchkey-client COMMAND ARGS (see the script's header)"
command=$1
shift

case "$command" in
  sign-up)
    [ $# -eq 2 ] || fail "usage: sign-up EMAIL PASSWORD"
    session_request sign-up/email \
      "$(jq -nc --arg email "$1" --arg password "$2" '{name: ($email | split("@")[0]), $email, $password}')"
    ;;
  sign-in)
    [ $# -eq 2 ] || fail "usage: sign-in EMAIL PASSWORD"
    session_request sign-in/email "$(jq -nc --arg email "$1" --arg password "$2" '{$email, $password}')"
    ;;
  jwt)
    [ $# -eq 1 ] || fail "usage: jwt BEARER"
    curl --silent --show-error --fail-with-body --max-time 30 \
      --header "authorization: Bearer $1" "$auth/api/auth/token" | jq -er .token
    ;;
  session)
    [ $# -eq 1 ] || fail "usage: session BEARER"
    curl --silent --show-error --fail-with-body --max-time 30 \
      --header "authorization: Bearer $1" "$auth/api/auth/get-session"
    echo
    ;;
  sign-out)
    [ $# -eq 1 ] || fail "usage: sign-out BEARER"
    curl --silent --show-error --fail-with-body --max-time 30 --request POST \
      --header "authorization: Bearer $1" --header 'content-type: application/json' \
      --data-binary '{}' "$auth/api/auth/sign-out" | jq -e '.success == true' >/dev/null
    ;;
  me)
    [ $# -eq 1 ] || fail "usage: me JWT"
    curl --silent --show-error --fail-with-body --max-time 30 \
      --header "authorization: Bearer $1" "$api/api/me"
    echo
    ;;
  status)
    [ $# -eq 1 ] || fail "usage: status JWT"
    curl --silent --show-error --max-time 30 --output /dev/null --write-out '%{http_code}\n' \
      --header "authorization: Bearer $1" "$api/api/me"
    ;;
  kids)
    curl --silent --show-error --fail-with-body --max-time 30 "$auth/api/auth/jwks" |
      jq -er '.keys[].kid'
    ;;
  *)
    fail "unknown command $command"
    ;;
esac
