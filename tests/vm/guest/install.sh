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
mail_transport = "smtp"
mail_from = "latchkey <no-reply@example.test>"

[providers.github]
client_id = "vm-client"
base_url = "http://127.0.0.1:2600"
api_url = "http://127.0.0.1:2600"
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

# Mail and social sign-in: test fixtures on loopback stand in for the mail relay and for
# GitHub (not part of the install); the SMTP URL and the OAuth client secret are credentials
# loaded by a drop-in, as the unit's comment says.
install -m 0644 "$VM/guest/smtp_sink.py" "$VM/guest/github_standin.py" /usr/local/lib/
cat >/etc/systemd/system/smtp-sink.service <<'EOF'
[Unit]
Description=mail sink of the VM test
Before=latchkey-auth.service
[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/smtp_sink.py 127.0.0.1 2525 /var/lib/smtp-sink
[Install]
WantedBy=multi-user.target
EOF
cat >/etc/systemd/system/github-standin.service <<'EOF'
[Unit]
Description=GitHub stand-in of the VM test
Before=latchkey-auth.service
[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/github_standin.py 2600 vm-client /etc/latchkey/credentials/latchkey-auth/GITHUB_CLIENT_SECRET
[Install]
WantedBy=multi-user.target
EOF
(
    umask 0077
    printf '%s\n' 'smtp://127.0.0.1:2525?tls=none' >/etc/latchkey/credentials/latchkey-auth/LATCHKEY_SMTP_URL
    head -c 24 /dev/urandom | base64 -w0 >/etc/latchkey/credentials/latchkey-auth/GITHUB_CLIENT_SECRET
)
mkdir -p /etc/systemd/system/latchkey-auth.service.d
cat >/etc/systemd/system/latchkey-auth.service.d/credentials.conf <<'EOF'
[Service]
LoadCredential=LATCHKEY_SMTP_URL:/etc/latchkey/credentials/latchkey-auth/LATCHKEY_SMTP_URL
LoadCredential=GITHUB_CLIENT_SECRET:/etc/latchkey/credentials/latchkey-auth/GITHUB_CLIENT_SECRET
EOF
systemctl daemon-reload
for fixture in smtp-sink:2525 github-standin:2600; do
    check "${fixture%:*} listens on 127.0.0.1:${fixture#*:}" bash -c "systemctl enable --quiet --now ${fixture%:*}.service &&
        for _ in \$(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/${fixture#*:}) 2>/dev/null && exit 0; sleep 0.2; done; exit 1"
done

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
