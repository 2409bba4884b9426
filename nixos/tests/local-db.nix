# NixOS VM test: one machine with database.createLocally (PostgreSQL over its socket, peer
# authentication of the dynamic user), and the API on port 80 (the low-port sandbox).
#   nix build .#checks.x86_64-linux.vm-local-db -L
{ self, pkgs }:
let
  inherit (pkgs) lib;
in
{
  name = "latchkey-local-db";

  nodes.machine = {
    imports = [ self.nixosModules.default ];
    virtualisation.memorySize = 1024;

    services.latchkey-auth = {
      enable = true;
      secretFile = "/run/secrets/latchkey/auth-secret";
      # database.createLocally defaults to true.
    };
    # Started by the test once the secret exists.
    systemd.services.latchkey-auth.wantedBy = lib.mkForce [ ];

    services.latchkey-api = {
      enable = true;
      listen.port = 80;
      # settings.better_auth_url defaults to the local latchkey-auth.
    };

    environment.systemPackages = [
      pkgs.curl
      pkgs.jq
    ];
  };

  testScript = ''
    import json

    machine.wait_for_unit("postgresql.service")
    # ensureUsers/ensureDatabases run in postgresql-setup.service, after postgresql.service.
    machine.wait_until_succeeds(
        "runuser -u postgres -- psql -tAc "
        "\"SELECT 1 FROM pg_database WHERE datname = 'latchkey-auth'\" | grep -qx 1"
    )
    machine.succeed(
        "install -d -m 0700 /run/secrets/latchkey",
        "(umask 0377; head -c 48 /dev/urandom | base64 -w0 > /run/secrets/latchkey/auth-secret)",
    )
    machine.succeed("systemctl start latchkey-auth.service")
    machine.wait_for_unit("latchkey-auth.service")
    machine.wait_for_open_port(3000)
    machine.wait_for_unit("latchkey-api.service")
    machine.wait_for_open_port(80)

    with subtest("peer authentication: the dynamic user is the database role"):
        machine.succeed("systemctl show -p User --value latchkey-auth.service | grep -qx latchkey-auth")
        machine.wait_until_succeeds(
            "runuser -u postgres -- psql -tAc "
            "\"SELECT usename FROM pg_stat_activity WHERE datname = 'latchkey-auth'\""
            " | grep -qx latchkey-auth"
        )
        # Migrations ran as the role, so it owns the schema.
        machine.succeed(
            "runuser -u postgres -- psql -d latchkey-auth -tAc "
            "\"SELECT tableowner FROM pg_tables WHERE tablename = 'user'\" | grep -qx latchkey-auth"
        )

    with subtest("sign-up through the API on port 80"):
        out = machine.succeed(
            "curl -sf -D - -o /dev/null -H 'content-type: application/json' "
            "-d '{\"name\":\"Ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery staple\"}' "
            "http://127.0.0.1:3000/api/auth/sign-up/email"
        )
        bearer = [
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.lower().startswith("set-auth-token:")
        ][0]
        token = machine.succeed(
            f"curl -sf -H 'authorization: Bearer {bearer}' http://127.0.0.1:3000/api/auth/token | jq -er .token"
        ).strip()
        me = json.loads(
            machine.wait_until_succeeds(
                f"curl -sf -H 'authorization: Bearer {token}' http://127.0.0.1/api/me"
            )
        )
        assert me["email"] == "ada@example.com", me

    with subtest("sandbox: exposure at most 1.5, CAP_NET_BIND_SERVICE only below 1024"):
        machine.succeed("systemd-analyze security --threshold=15 latchkey-auth.service latchkey-api.service")
        machine.succeed(
            'test -z "$(systemctl show -p CapabilityBoundingSet --value latchkey-auth.service)"'
        )
        machine.succeed(
            "systemctl show -p CapabilityBoundingSet --value latchkey-api.service | grep -qx cap_net_bind_service"
        )

    with subtest("a Postgres restart does not restart the daemon"):
        pid = machine.succeed("systemctl show -p MainPID --value latchkey-auth.service").strip()
        machine.succeed("systemctl restart postgresql.service")
        machine.wait_until_succeeds("curl -sf http://127.0.0.1:3000/api/auth/jwks")
        machine.wait_until_succeeds(
            f"curl -sf -H 'authorization: Bearer {bearer}' http://127.0.0.1:3000/api/auth/token"
        )
        assert machine.succeed("systemctl show -p MainPID --value latchkey-auth.service").strip() == pid
  '';
}
