# shellcheck disable=SC2016 # scripts for `sh -c` are single-quoted on purpose
# First boot of the VM (latchkey.vm=install): installs both daemons the way the comments at
# the top of nixos/systemd/latchkey-{auth,api}.service tell a Debian user to, as root, and
# starts them once (latchkey-auth creates its tables). The VM then powers off; the second
# boot (suite.sh) finds both daemons started by systemd at boot.
#
# Payload (tests/vm/run): bin/latchkey-{auth,api} (release builds), units/*.service (the
# committed files), units.sha256 (their hashes on the host), client.sh, guest/.
set -euo pipefail
phase=install
# shellcheck source=tests/vm/guest/lib.sh
. /run/vm/guest/lib.sh
follow_journal
trap finish EXIT

say "installing latchkey as the units' comments say"

# The units exactly as shipped: the hashes the host took of the committed files.
check "payload: the unit files are the committed ones (sha256)" \
    sh -c 'cd /run/vm/units && sha256sum --check --strict /run/vm/units.sha256'

# Binaries, units, settings.
install -m 0755 "$VM/bin/latchkey-auth" "$VM/bin/latchkey-api" /usr/local/bin/
install -m 0644 "$VM/units/latchkey-auth.service" "$VM/units/latchkey-api.service" /etc/systemd/system/
install -d -m 0755 /etc/latchkey
# The daemons listen on every address so that the host reaches them through QEMU's port
# forwarding; the shutdown delay is short as no load balancer has to notice.
cat >/etc/latchkey/latchkey-auth.toml <<'EOF'
listen = "0.0.0.0:3000"
better_auth_url = "http://127.0.0.1:3000"
shutdown_delay = 1
EOF
cat >/etc/latchkey/latchkey-api.toml <<'EOF'
listen = "0.0.0.0:8000"
better_auth_url = "http://127.0.0.1:3000"
jwks_refresh = 5
shutdown_delay = 1
EOF
chmod 0644 /etc/latchkey/*.toml

# Secrets: root-owned 0600 credentials.
install -d -m 0700 /etc/latchkey/credentials /etc/latchkey/credentials/latchkey-auth
(
    umask 0077
    head -c 48 /dev/urandom | base64 -w0 >/etc/latchkey/credentials/latchkey-auth/BETTER_AUTH_SECRET
    printf '%s\n' 'host=/run/postgresql dbname=latchkey-auth user=latchkey-auth' \
        >/etc/latchkey/credentials/latchkey-auth/DATABASE_URL
)

# Postgres over its socket with peer authentication: a role named after the dynamic user
# (runuser stands in for the comments' sudo, which a minimal Debian lacks).
say "files installed; creating the database role and database"
runuser -u postgres -- createuser latchkey-auth
runuser -u postgres -- createdb -O latchkey-auth latchkey-auth

check "systemd-analyze verify: systemd 252 takes every line of both units" \
    sh -c 'out=$(systemd-analyze verify /etc/systemd/system/latchkey-auth.service \
        /etc/systemd/system/latchkey-api.service 2>&1); printf "%s" "$out"; [ -z "$out" ]'

systemctl daemon-reload
say "starting latchkey-auth"
check "systemctl enable --now latchkey-auth (Type=notify: returns once READY=1)" \
    systemctl enable --now latchkey-auth.service
check "latchkey-auth migrated its database as the role latchkey-auth" \
    sh -c "runuser -u postgres -- psql -d latchkey-auth -tAc \
        \"SELECT tableowner FROM pg_tables WHERE tablename = 'session'\" | grep -qx latchkey-auth"

say "the API's role; starting latchkey-api"
# The API's own role for revocation = "session": it may read a session's id and expiry, and
# nothing else (no tokens, no users).
runuser -u postgres -- createuser latchkey-api
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d latchkey-auth \
    -c 'GRANT SELECT (id, "expiresAt") ON "session" TO "latchkey-api"'
install -d -m 0700 /etc/latchkey/credentials/latchkey-api
(
    umask 0077
    printf '%s\n' 'host=/run/postgresql dbname=latchkey-auth user=latchkey-api' \
        >/etc/latchkey/credentials/latchkey-api/DATABASE_URL
)

check "systemctl enable --now latchkey-api" systemctl enable --now latchkey-api.service
check "both units enabled for multi-user.target" \
    sh -c 'test "$(systemctl is-enabled latchkey-auth.service latchkey-api.service | sort -u)" = enabled'
check "the API answers /readyz after the JWKS fetch" \
    wait_for 60 curl --silent --fail --max-time 5 "$API/readyz"

say "installed; powering off for the boot that runs the suite"
