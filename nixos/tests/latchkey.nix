# NixOS VM test: db (PostgreSQL), auth (latchkey-auth, with an SMTP sink on its loopback), api
# (latchkey-api), client.
#   nix build .#checks.x86_64-linux.vm -L
# Secrets (the auth secret, the database password) are made at run time inside the VMs or
# by the test driver, never at evaluation time: nothing secret reaches the Nix store.
{ self, pkgs }:
let
  inherit (pkgs) lib;

  password = "correct horse battery staple";

  clientTool = pkgs.writeShellApplication {
    name = "latchkey-client";
    runtimeInputs = [
      pkgs.curl
      pkgs.jq
      pkgs.coreutils
      pkgs.gnused
    ];
    text = builtins.readFile ./client.sh;
  };

  load = pkgs.writeShellApplication {
    name = "latchkey-load";
    runtimeInputs = [
      clientTool
      pkgs.coreutils
    ];
    text = builtins.readFile ./load.sh;
  };

  # Both daemons wait for the test to hand them their secrets.
  manualStart = unit: { systemd.services.${unit}.wantedBy = lib.mkForce [ ]; };

  # A mail server on the auth machine's loopback interface (the only place `?tls=none` is
  # allowed): aiosmtpd's Mailbox handler stores each message it accepts as a Maildir file, as
  # in the e2e tests (tests/src/smtp.rs).
  smtpPort = 2525;
  smtpSink = pkgs.python3.withPackages (ps: [ ps.aiosmtpd ]);
in
{
  name = "latchkey";

  defaults = {
    imports = [ self.nixosModules.default ];
    virtualisation.memorySize = 1024;
  };

  nodes = {
    db = {
      services.postgresql = {
        enable = true;
        enableTCPIP = true;
        ensureDatabases = [ "latchkey" ];
        ensureUsers = [
          {
            name = "latchkey";
            ensureDBOwnership = true;
          }
        ];
        # The password is set by the test script at run time.
        authentication = ''
          host latchkey latchkey 0.0.0.0/0 scram-sha-256
          host latchkey latchkey ::/0 scram-sha-256
        '';
      };
      networking.firewall.allowedTCPPorts = [ 5432 ];
    };

    auth = {
      imports = [ (manualStart "latchkey-auth") ];
      services.latchkey-auth = {
        enable = true;
        listen.address = "0.0.0.0";
        openFirewall = true;
        secretFile = "/run/secrets/latchkey/auth-secret";
        databaseUrlFile = "/run/secrets/latchkey/database-url";
        smtpUrlFile = "/run/secrets/latchkey/smtp-url";
        database.createLocally = false;
        settings = {
          better_auth_url = "http://auth:3000";
          key_reload_interval = 2;
          key_grace_period = 3600;
          jwt_expires_in = 600;
          mail_transport = "smtp";
          mail_from = "latchkey VM test <no-reply@auth.example>";
        };
      };
      systemd.services.smtp-sink = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${smtpSink}/bin/python -m aiosmtpd -n -c aiosmtpd.handlers.Mailbox -l 127.0.0.1:${toString smtpPort} /var/lib/smtp-sink/Maildir";
          StateDirectory = "smtp-sink";
        };
      };
    };

    api = {
      imports = [ (manualStart "latchkey-api") ];
      services.latchkey-api = {
        enable = true;
        listen.address = "0.0.0.0";
        openFirewall = true;
        databaseUrlFile = "/run/secrets/latchkey/database-url";
        settings = {
          better_auth_url = "http://auth:3000";
          revocation = "session";
          revocation_cache_ttl = 1;
          jwks_refresh = 5;
        };
      };
    };

    client = {
      environment.systemPackages = [
        clientTool
        load
        pkgs.curl
        pkgs.jq
      ];
    };
  };

  testScript =
    { nodes, ... }:
    let
      # Everything the auth unit refers to: unit file, settings TOML, binary and its libraries.
      unitClosure = pkgs.closureInfo {
        rootPaths = [ nodes.auth.systemd.units."latchkey-auth.service".unit ];
      };
    in
    ''
      import base64
      import json
      import secrets
      import shlex
      import time

      PASSWORD = ${builtins.toJSON password}
      SECRET = "/run/secrets/latchkey/auth-secret"


      def q(s):
          return shlex.quote(s)


      def kid(jwt):
          header = jwt.split(".")[0]
          return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


      def sign_up(email):
          return client.succeed(f"latchkey-client sign-up {q(email)} {q(PASSWORD)}").strip()


      def sign_in(email):
          return client.succeed(f"latchkey-client sign-in {q(email)} {q(PASSWORD)}").strip()


      def jwt(bearer):
          return client.succeed(f"latchkey-client jwt {q(bearer)}").strip()


      def status(token):
          return client.succeed(f"latchkey-client status {q(token)}").strip()


      def main_pid(machine, unit):
          pid = machine.succeed(f"systemctl show --value -p MainPID {unit}").strip()
          assert pid != "0", f"{unit} is not running"
          return pid


      def restarts(machine, unit):
          return machine.succeed(f"systemctl show --value -p NRestarts {unit}").strip()


      def count_secret(machine, command):
          """How many lines of `command`'s output contain the auth secret (read from its file,
          so the secret itself is never on a command line)."""
          return int(machine.succeed(f"{command} | grep -cF -f {SECRET} || true").strip())


      start_all()

      with subtest("provision secrets at run time, outside the Nix store"):
          db.wait_for_unit("postgresql.service")
          db.wait_until_succeeds(
              "runuser -u postgres -- psql -tAc "
              "\"SELECT 1 FROM pg_roles WHERE rolname = 'latchkey'\" | grep -qx 1"
          )
          db_password = secrets.token_hex(24)
          db.succeed(
              "runuser -u postgres -- psql -v ON_ERROR_STOP=1 -c "
              f"\"ALTER ROLE latchkey PASSWORD '{db_password}'\""
          )
          db.wait_for_open_port(5432)
          for machine in (auth, api):
              machine.succeed(
                  "install -d -m 0700 /run/secrets/latchkey",
                  "(umask 0377; printf %s "
                  + q(f"postgres://latchkey:{db_password}@db:5432/latchkey")
                  + " > /run/secrets/latchkey/database-url)",
              )
          auth.succeed(f"(umask 0377; head -c 48 /dev/urandom | base64 -w0 > {SECRET})")
          auth.succeed(f"test $(wc -c < {SECRET}) -ge 32")
          auth.succeed(
              "(umask 0377; printf %s "
              + q("smtp://127.0.0.1:${toString smtpPort}?tls=none")
              + " > /run/secrets/latchkey/smtp-url)"
          )

      with subtest("both daemons start (Type=notify) and are reachable from the client"):
          auth.succeed("systemctl start latchkey-auth.service")
          auth.wait_for_unit("latchkey-auth.service")
          auth.wait_for_open_port(3000)
          api.succeed("systemctl start latchkey-api.service")
          api.wait_for_unit("latchkey-api.service")
          api.wait_for_open_port(8000)
          client.wait_for_unit("multi-user.target")
          client.wait_until_succeeds("curl -sf http://auth:3000/api/auth/ok")
          client.wait_until_succeeds("curl -sf http://api:8000/readyz")
          # The sandbox holds on the real units too.
          for machine, unit in ((auth, "latchkey-auth.service"), (api, "latchkey-api.service")):
              machine.succeed(f"systemd-analyze security --threshold=15 {unit}")

      with subtest("basic: sign-up, sign-in, token, /api/me, tampered token, sign-out"):
          bearer = sign_up("ada@example.com")
          bearer = sign_in("ada@example.com")
          token = jwt(bearer)
          me = json.loads(client.succeed(f"latchkey-client me {q(token)}"))
          assert me["email"] == "ada@example.com", me
          # A flipped signature character and a forged payload are both refused.
          head, payload, signature = token.split(".")
          flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
          assert status(f"{head}.{payload}.{flipped}") == "401"
          claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
          claims["sub"] = "someone-else"
          forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
          assert status(f"{head}.{forged}.{signature}") == "401"
          assert status("not-a-jwt") == "401"
          client.succeed(f"latchkey-client sign-out {q(bearer)}")
          assert client.succeed(f"latchkey-client session {q(bearer)}").strip() == "null"
          # Revocation is on (settings.revocation = "session"): the API follows the sign-out
          # within its cache TTL of 1 s.
          client.wait_until_succeeds(f"test $(latchkey-client status {q(token)}) = 401", timeout=30)

      with subtest("mail: the SMTP URL arrives as a credential (smtpUrlFile), a reset mail is sent"):
          auth.wait_for_unit("smtp-sink.service")
          auth.wait_for_open_port(${toString smtpPort})
          auth.succeed(
              "systemctl cat latchkey-auth.service"
              " | grep -qx 'LoadCredential=LATCHKEY_SMTP_URL:/run/secrets/latchkey/smtp-url'"
          )
          pid = main_pid(auth, "latchkey-auth.service")
          auth.fail(f"tr '\\0' '\\n' < /proc/{pid}/environ | grep -q '^LATCHKEY_SMTP_URL'")
          sign_up("mail@example.com")
          client.succeed(
              "curl -sf --max-time 30 -H 'content-type: application/json'"
              " --data-binary '{\"email\": \"mail@example.com\"}'"
              " http://auth:3000/api/auth/request-password-reset"
              " | jq -e '.status == true'"
          )
          # The outbox worker sends it in the background.
          auth.wait_until_succeeds(
              "grep -rlsF 'mail@example.com' /var/lib/smtp-sink/Maildir/new | grep -q .",
              timeout=60,
          )

      with subtest("key rotation: old tokens verify through the grace period, new ones carry the new kid"):
          bearer = sign_up("grace@example.com")
          old = jwt(bearer)
          old_kid = kid(old)
          out = auth.succeed("latchkey-auth-ctl keys rotate")
          new_kid = [
              line.split(":", 1)[1].strip()
              for line in out.splitlines()
              if line.startswith("new signing key:")
          ][0]
          assert new_kid != old_kid
          # The running daemon reloads its keys every 2 s (key_reload_interval).
          deadline = time.monotonic() + 60
          while kid(new := jwt(bearer)) != new_kid:
              assert time.monotonic() < deadline, "no token with the new kid after 60 s"
              time.sleep(1)
          kids = client.succeed("latchkey-client kids").split()
          assert old_kid in kids and new_kid in kids, kids
          # The API learns the new key (refetch on an unknown kid), and keeps the old one.
          client.wait_until_succeeds(f"latchkey-client me {q(new)}", timeout=30)
          client.succeed(f"latchkey-client me {q(old)}")

      with subtest("auth outage: the API keeps accepting valid tokens from its cached JWKS"):
          bearer = sign_in("grace@example.com")
          token = jwt(bearer)
          client.succeed(f"latchkey-client me {q(token)}")
          auth.succeed("systemctl stop latchkey-auth.service")
          client.fail("curl -sf --max-time 5 http://auth:3000/api/auth/ok")
          # Past several JWKS refresh intervals (jwks_refresh = 5 s): the refreshes fail and the
          # cached key set stays in use.
          for _ in range(4):
              client.succeed(f"latchkey-client me {q(token)}")
              time.sleep(4)
          api.succeed("journalctl -u latchkey-api.service | grep -qi 'jwks.*fail'")
          api.succeed("systemctl is-active latchkey-api.service")
          auth.succeed("systemctl start latchkey-auth.service")
          auth.wait_for_open_port(3000)
          client.wait_until_succeeds("curl -sf http://auth:3000/api/auth/ok")

      with subtest("database restart under load: both daemons recover without a restart"):
          pids = {
              "auth": main_pid(auth, "latchkey-auth.service"),
              "api": main_pid(api, "latchkey-api.service"),
          }
          bearer = sign_in("grace@example.com")
          token = jwt(bearer)
          client.succeed(
              "systemd-run --unit=latchkey-load --service-type=exec -- "
              f"${lib.getExe load} grace@example.com {q(PASSWORD)} {q(token)} 40"
          )
          client.wait_until_succeeds("grep -q 'sign-in=ok me=200' /tmp/latchkey-load.log")
          db.succeed("systemctl restart postgresql.service")
          db.wait_for_unit("postgresql.service")
          client.wait_until_fails("systemctl is-active --quiet latchkey-load.service", timeout=120)
          rounds = client.succeed("cat /tmp/latchkey-load.log").splitlines()
          print("\n".join(rounds))
          assert len(rounds) > 10, rounds
          assert rounds[-1].endswith("sign-in=ok me=200"), f"not recovered by the end: {rounds[-1]}"
          # Fresh work after the restart, through both daemons and the database.
          client.wait_until_succeeds(
              f"latchkey-client sign-in grace@example.com {q(PASSWORD)}", timeout=60
          )
          client.wait_until_succeeds(f"latchkey-client me {q(token)}", timeout=60)
          assert main_pid(auth, "latchkey-auth.service") == pids["auth"], "latchkey-auth restarted"
          assert main_pid(api, "latchkey-api.service") == pids["api"], "latchkey-api restarted"
          assert restarts(auth, "latchkey-auth.service") == "0"
          assert restarts(api, "latchkey-api.service") == "0"

      with subtest("secrets: never in the journal, the unit's environment or the Nix store"):
          auth.succeed(f"test -s {SECRET}")
          # The whole journal of this boot: every daemon and systemd message so far.
          assert count_secret(auth, "journalctl --no-pager -o cat") == 0
          # systemd's view of the unit, and the process' real environment.
          assert count_secret(auth, "systemctl show latchkey-auth.service") == 0
          assert count_secret(auth, "systemctl cat latchkey-auth.service") == 0
          pid = main_pid(auth, "latchkey-auth.service")
          environ = f"tr '\\0' '\\n' < /proc/{pid}/environ"
          assert count_secret(auth, environ) == 0
          auth.fail(f"{environ} | grep -q '^BETTER_AUTH_SECRET'")
          auth.succeed(f"{environ} | grep -q '^CREDENTIALS_DIRECTORY='")
          auth.succeed(
              "systemctl cat latchkey-auth.service"
              " | grep -qx 'LoadCredential=BETTER_AUTH_SECRET:/run/secrets/latchkey/auth-secret'"
          )
          # Every store path the unit refers to (unit file, TOML, binary, libraries).
          hits = auth.succeed(
              "xargs -a ${unitClosure}/store-paths grep -rlsF -f " + SECRET + " || true"
          ).strip()
          assert hits == "", f"secret found in the Nix store: {hits}"
          # Nor the SMTP URL (smtpUrlFile), which holds the mail server's password in real use.
          hits = auth.succeed(
              "xargs -a ${unitClosure}/store-paths grep -rlsF -f /run/secrets/latchkey/smtp-url"
              " || true"
          ).strip()
          assert hits == "", f"SMTP URL found in the Nix store: {hits}"
          # Nor is the database password in the API's unit or environment.
          api_pid = main_pid(api, "latchkey-api.service")
          api.fail(f"tr '\\0' '\\n' < /proc/{api_pid}/environ | grep -q '^DATABASE_URL='")
          api.fail(f"systemctl show latchkey-api.service | grep -qF {q(db_password)}")
          api.fail(f"journalctl --no-pager -o cat | grep -qF {q(db_password)}")
    '';
}
