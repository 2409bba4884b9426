# Shared shell helpers for scripts/test, scripts/up and .ci/run. Source, don't run.

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root for: $*"
        return 1
    fi
}

_apt_updated=
# apt_install PKG...: installs Debian packages non-interactively (apt-get update once).
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found; please install: $*"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$_apt_updated" ]; then
        log "apt-get update"
        as_root apt-get update -qq
        _apt_updated=1
    fi
    log "apt-get install $*"
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pg_bin_dir: prints the directory of the PostgreSQL server binaries, or nothing.
# Same order as the test harness: $LATCHKEY_PG_BIN, highest /usr/lib/postgresql/*/bin, PATH.
pg_bin_dir() {
    if [ -n "${LATCHKEY_PG_BIN:-}" ] && [ -x "$LATCHKEY_PG_BIN/postgres" ]; then
        echo "$LATCHKEY_PG_BIN"
        return
    fi
    local best
    best=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$best" ] && [ -x "$best/postgres" ] && [ -x "$best/initdb" ]; then
        echo "$best"
        return
    fi
    if command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v postgres)"
    fi
}

# ensure_postgres: installs Debian's PostgreSQL server when no binaries are found.
ensure_postgres() {
    if [ -n "$(pg_bin_dir)" ]; then
        return
    fi
    log "PostgreSQL server binaries not found; installing Debian's postgresql"
    # Only the binaries are wanted: no 'main' cluster (the tests start their own).
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.d/latchkey-no-main.conf >/dev/null
    apt_install postgresql
    if [ -z "$(pg_bin_dir)" ]; then
        log "postgresql installed but no server binaries found under /usr/lib/postgresql"
        return 1
    fi
}

# ensure_compat_tools: Node.js with npm and Python 3 with venv, for the Better-Auth
# interoperability suite (tests/compat), and openssl for the TLS tests. Debian's packages only
# when they are missing.
ensure_compat_tools() {
    local pkgs=()
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || pkgs+=(python3-venv)
    # The TLS tests make their certificates with the openssl command.
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
    if [ ${#pkgs[@]} -gt 0 ]; then
        apt_install "${pkgs[@]}"
    fi
}

# ensure_browser_tools: Debian's Chromium (/usr/bin/chromium) for the real-browser test
# (tests/browser, driven by tests/tests/browser.rs through playwright-core, which never
# downloads a browser of its own).
ensure_browser_tools() {
    if [ ! -x /usr/bin/chromium ]; then
        log "/usr/bin/chromium not found; installing Debian's chromium"
        apt_install chromium
    fi
}

# ensure_pgbouncer: Debian's PgBouncer (1.18 on Debian 12, the oldest a user is likely to run)
# for the e2e suite's pooler runs, unpacked under target/tools/pgbouncer with its one missing
# library; no service is installed or started. Prints the binary's path.
ensure_pgbouncer() {
    local root="$PWD/target/tools/pgbouncer"
    local bin="$root/usr/sbin/pgbouncer"
    if [ ! -x "$bin" ]; then
        local tmp
        tmp=$(mktemp -d)
        chmod 755 "$tmp"
        if ! (cd "$tmp" && apt-get download pgbouncer libc-ares2 >/dev/null 2>&1); then
            as_root apt-get update -qq >&2
            _apt_updated=1
            (cd "$tmp" && apt-get download pgbouncer libc-ares2 >/dev/null 2>&1)
        fi
        mkdir -p "$root"
        for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$root"; done
        rm -rf "$tmp"
    fi
    echo "$bin"
}

# ensure_nginx: Debian's nginx for the rolling-restart test (a load balancer in front of
# replicas), unpacked under target/tools/nginx; no service is installed or started. Prints the
# binary's path.
ensure_nginx() {
    local root="$PWD/target/tools/nginx"
    local bin="$root/usr/sbin/nginx"
    if [ ! -x "$bin" ]; then
        local tmp
        tmp=$(mktemp -d)
        chmod 755 "$tmp"
        if ! (cd "$tmp" && apt-get download nginx >/dev/null 2>&1); then
            as_root apt-get update -qq >&2
            _apt_updated=1
            (cd "$tmp" && apt-get download nginx >/dev/null 2>&1)
        fi
        mkdir -p "$root"
        for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$root"; done
        rm -rf "$tmp"
    fi
    echo "$bin"
}

# debian_mirror: the Debian archive this machine's apt uses (its first source ending in
# /debian, not the security archive), else http://deb.debian.org/debian. For debootstrap.
debian_mirror() {
    local uri
    uri=$(
        {
            grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) {print $i; break}}'
            grep -hsiE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources |
                awk '{for (i = 2; i <= NF; i++) print $i}'
        } | sed 's:/*$::' | grep -E '^https?://.*/debian$' | head -n 1
    ) || true
    echo "${uri:-http://deb.debian.org/debian}"
}

# ensure_cargo_tool CRATE VERSION WHEEL_SHA256: a cargo subcommand binary (cargo-audit,
# cargo-fuzz) at exactly VERSION, cached in target/tools/CRATE-VERSION/bin, which it prints.
# A cold cache takes the prebuilt Linux x86_64 wheel that Astral publishes on PyPI
# (astral-dev-toolchain-CRATE, built from the crate's release tag), pinned by its sha256 (a
# few seconds), else builds the crate from crates.io with `cargo install --locked` (minutes).
# LATCHKEY_TOOLS_FROM_SOURCE=1 always builds from source.
ensure_cargo_tool() {
    local crate=$1 version=$2 sha256=$3
    local dir="$PWD/target/tools/$crate-$version/bin"
    local bin="$dir/$crate"
    if [ "$("$bin" --version 2>/dev/null)" = "$crate $version" ]; then
        echo "$dir"
        return
    fi
    mkdir -p "$dir"
    if [ "${LATCHKEY_TOOLS_FROM_SOURCE:-0}" != 1 ] && [ "$(uname -m)" = x86_64 ] &&
        python3 -m pip --version >/dev/null 2>&1; then
        local tmp
        tmp=$(mktemp -d)
        echo "astral-dev-toolchain-$crate==$version --hash=sha256:$sha256" >"$tmp/req.txt"
        log "$crate $version: prebuilt wheel from PyPI (sha256 pinned)"
        if python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
            -r "$tmp/req.txt" -d "$tmp" >&2; then
            python3 - "$tmp" "$crate" "$bin" <<'PY' >&2 || true
import glob, os, sys, zipfile
tmp, crate, out = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as z:
    (member,) = [n for n in z.namelist() if n.endswith(".data/scripts/" + crate)]
    with open(out + ".part", "wb") as f:
        f.write(z.read(member))
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
PY
        fi
        rm -rf "$tmp"
    fi
    if [ "$("$bin" --version 2>/dev/null)" != "$crate $version" ]; then
        log "$crate $version: cargo install --locked from crates.io (a few minutes)"
        cargo install --quiet --locked --force "$crate" --version "$version" \
            --root "$PWD/target/tools/$crate-$version" --target-dir "$PWD/target/tools/build" >&2
        rm -rf "$PWD/target/tools/build"
    fi
    "$bin" --version >/dev/null
    echo "$dir"
}
