# services.latchkey-auth: the Better-Auth compatible auth daemon.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.latchkey-auth;
  common = import ./common.nix { inherit lib; };
  format = pkgs.formats.toml { };

  configFile = common.configFile {
    inherit format;
    inherit (cfg) settings listen;
    name = "latchkey-auth";
  };

  # Unix socket, peer authentication: the dynamic user carries the role's name.
  # The port names the socket file (.s.PGSQL.<port>), so a non-default port must be passed on.
  localDatabaseUrl = "host=/run/postgresql port=${toString config.services.postgresql.settings.port} dbname=${cfg.database.name} user=${cfg.database.user}";

  # Credential names are the settings' names: the daemon reads `$CREDENTIALS_DIRECTORY/<NAME>`.
  credentials =
    lib.optional (cfg.secretFile != null) "BETTER_AUTH_SECRET:${cfg.secretFile}"
    ++ lib.optional (cfg.databaseUrlFile != null) "DATABASE_URL:${cfg.databaseUrlFile}"
    ++ lib.optional (cfg.smtpUrlFile != null) "LATCHKEY_SMTP_URL:${cfg.smtpUrlFile}"
    ++ lib.mapAttrsToList (
      id: file: "LATCHKEY_PROVIDER_${lib.toUpper id}_CLIENT_SECRET:${file}"
    ) cfg.providerSecretFiles;

  # Provider tables that carry a secret, which belongs in providerSecretFiles.
  providerTablesWithSecrets = lib.attrNames (
    lib.filterAttrs (_: t: builtins.isAttrs t && t ? client_secret) (cfg.settings.providers or { })
  );

  # The transport as the daemon will read it: the declared option, or the freeform key with
  # the prefix.
  mailTransport =
    if cfg.settings.mail_transport != null then
      cfg.settings.mail_transport
    else
      cfg.settings.latchkey_mail_transport or null;

  # `latchkey-auth-ctl keys rotate` (or migrate, check-config) as root: runs the CLI in a
  # transient unit with the service's user, credentials and settings.
  ctl = pkgs.writeShellScriptBin "latchkey-auth-ctl" ''
    exec ${config.systemd.package}/bin/systemd-run \
      --quiet --pipe --wait --collect --service-type=exec \
      --unit="latchkey-auth-ctl-$$" \
      --property=DynamicUser=yes \
      --property=User=${lib.escapeShellArg cfg.database.user} \
      ${
        lib.concatMapStringsSep " " (c: "--property=LoadCredential=${lib.escapeShellArg c}") credentials
      } \
      ${
        lib.optionalString (
          cfg.databaseUrlFile == null
        ) "--setenv=DATABASE_URL=${lib.escapeShellArg localDatabaseUrl}"
      } \
      -- ${lib.getExe cfg.package} --config ${configFile} "$@"
  '';
in
{
  options.services.latchkey-auth =
    common.serviceOptions {
      inherit pkgs;
      name = "latchkey-auth";
      description = "latchkey-auth, the Better-Auth compatible auth daemon";
      defaultPort = 3000;
    }
    // {
      secretFile = common.secretFileOption ''
        File holding `BETTER_AUTH_SECRET` (at least 32 characters; a trailing newline is
        dropped), e.g. made with `openssl rand -base64 48`. Required.
      '';

      databaseUrlFile = common.secretFileOption ''
        File holding `DATABASE_URL`, a `postgres://` URL or a libpq `key=value` string. Required
        when {option}`services.latchkey-auth.database.createLocally` is off; must be null when it
        is on.
      '';

      smtpUrlFile = common.secretFileOption ''
        File holding `LATCHKEY_SMTP_URL`, the mail server with its credentials:
        `smtp://user:password@host[:port]` (port 587, STARTTLS required) or
        `smtps://user:password@host[:port]` (port 465, implicit TLS); `?tls=none` only for a
        relay on the loopback interface. Percent-encode `@` and `:` in the password.
        Required with `settings.mail_transport = "smtp"`.
      '';

      providerSecretFiles = lib.mkOption {
        type = lib.types.attrsOf (
          lib.types.pathWith {
            inStore = false;
            absolute = true;
          }
        );
        default = { };
        example = {
          github = "/run/secrets/latchkey/github-client-secret";
        };
        description = ''
          Client secrets of the social sign-in providers, by provider id (the names of the
          `settings.providers.<id>` tables): each file is handed to the service as the
          credential `LATCHKEY_PROVIDER_<ID>_CLIENT_SECRET`, never copied into the Nix store.
          A provider table itself holds only public values (`type`, `client_id`, `issuer`,
          `scopes`, ...).
        '';
      };

      database = {
        createLocally = lib.mkOption {
          type = lib.types.bool;
          default = true;
          description = ''
            Run PostgreSQL on this host ({option}`services.postgresql`), create the role and the
            database it owns, and connect over `/run/postgresql` with peer authentication: no
            password exists. The service's dynamic user is named after the role.
          '';
        };
        name = lib.mkOption {
          type = lib.types.str;
          default = "latchkey-auth";
          description = "Database name (with createLocally, it must equal the role name).";
        };
        user = lib.mkOption {
          type = lib.types.str;
          default = "latchkey-auth";
          description = ''
            Role name; also the name of the service's dynamic user (`User=` with
            `DynamicUser=`), which peer authentication matches against the role.
          '';
        };
      };

      settings = lib.mkOption {
        default = { };
        description = ''
          The daemon's TOML settings (RFC 42 freeform). A key is the setting's environment
          name in lower case, with or without the `latchkey_` prefix: `jwt_expires_in`,
          `session_expires_in`, `key_rotation_interval`, `key_grace_period`, `password_hash`,
          `max_body_bytes`, `db_pool_size`, `mail_from`, `app_name`, `mail_templates`,
          `require_email_verification`, ... The file lands in the world-readable Nix store:
          secrets (`better_auth_secret`, `database_url`, `smtp_url`) are refused here and go
          through the `*File` options.
        '';
        example = lib.literalExpression ''
          {
            better_auth_url = "https://auth.example.com";
            better_auth_trusted_origins = [ "https://app.example.com" ];
            jwt_expires_in = 900;
            mail_transport = "smtp"; # with smtpUrlFile
            mail_from = "Example <no-reply@example.com>";
          }
        '';
        type = lib.types.submodule {
          freeformType = format.type;
          options = {
            better_auth_url = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default = null;
              example = "https://auth.example.com";
              description = ''
                Public URL of this daemon; its origin is the JWT issuer and audience and a
                trusted origin. `https` turns on secure cookies. Null: `http://` + the listen
                address.
              '';
            };
            better_auth_trusted_origins = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              example = [
                "https://app.example.com"
                "https://*.example.com"
              ];
              description = "Further origins allowed to make cookie requests (`*` is a wildcard).";
            };
            mail_transport = lib.mkOption {
              type = lib.types.nullOr (
                lib.types.enum [
                  "smtp"
                  "log"
                ]
              );
              default = null;
              description = ''
                How the account mail (verification, password reset, ...) goes out. `smtp`: to
                the server in {option}`services.latchkey-auth.smtpUrlFile` (required then).
                `log`: every message, links included, is written to the journal instead; for
                development only, since a reset link in a log is a credential. Null: no mail,
                and the email endpoints answer as Better-Auth does without send callbacks.
              '';
            };
          };
        };
      };
    };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.secretFile != null;
        message = "services.latchkey-auth.secretFile must be set (a file outside the Nix store holding BETTER_AUTH_SECRET).";
      }
      {
        assertion = cfg.database.createLocally != (cfg.databaseUrlFile != null);
        message = ''
          services.latchkey-auth: set exactly one of database.createLocally (a local PostgreSQL
          over its socket) and databaseUrlFile (any other database).
        '';
      }
      {
        assertion = cfg.database.createLocally -> cfg.database.name == cfg.database.user;
        message = "services.latchkey-auth.database: with createLocally, name and user must be equal (ensureDBOwnership).";
      }
      {
        assertion = mailTransport == "smtp" -> cfg.smtpUrlFile != null;
        message = ''
          services.latchkey-auth: settings.mail_transport = "smtp" needs smtpUrlFile (a file
          outside the Nix store holding LATCHKEY_SMTP_URL).
        '';
      }
      (common.reservedSettingsAssertion "latchkey-auth" cfg.settings)
      {
        assertion = providerTablesWithSecrets == [ ];
        message = ''
          services.latchkey-auth.settings.providers.{${lib.concatStringsSep "," providerTablesWithSecrets}}:
          client_secret must not be in the config file; use
          services.latchkey-auth.providerSecretFiles.<id> (a file outside the Nix store).
        '';
      }
    ]
    ++ common.secretAssertions "latchkey-auth" {
      inherit (cfg) secretFile databaseUrlFile smtpUrlFile;
    }
    ++ common.secretAssertions "latchkey-auth" (
      lib.mapAttrs' (id: file: lib.nameValuePair "providerSecretFiles.${id}" file) cfg.providerSecretFiles
    );

    warnings =
      lib.optional (cfg.openFirewall && common.isLoopback cfg.listen.address)
        "services.latchkey-auth.openFirewall is set, but the daemon listens on ${cfg.listen.address} only."
      ++
        lib.optional (cfg.smtpUrlFile != null && mailTransport != "smtp")
          "services.latchkey-auth.smtpUrlFile is set, but settings.mail_transport is not \"smtp\": no mail is sent through it."
      ++
        lib.optional (mailTransport == "log")
          "services.latchkey-auth.settings.mail_transport = \"log\" writes every message, password-reset and verification links included, to the journal: for development only.";

    services.postgresql = lib.mkIf cfg.database.createLocally {
      enable = true;
      ensureDatabases = [ cfg.database.name ];
      ensureUsers = [
        {
          name = cfg.database.user;
          ensureDBOwnership = true;
        }
      ];
    };

    systemd.services.latchkey-auth = {
      description = "latchkey-auth: Better-Auth compatible auth daemon";
      wantedBy = [ "multi-user.target" ];
      # Wants, not Requires: a Postgres restart must not restart the daemon, whose pool
      # reconnects on its own (and whose start-up migration retries while Postgres comes up).
      wants = [ "network-online.target" ] ++ lib.optional cfg.database.createLocally "postgresql.target";
      after = [ "network-online.target" ] ++ lib.optional cfg.database.createLocally "postgresql.target";

      # Not a secret: the socket URL names no password.
      environment = lib.mkIf cfg.database.createLocally { DATABASE_URL = localDatabaseUrl; };

      serviceConfig = common.serviceConfig cfg.listen // {
        ExecStart = "${lib.getExe cfg.package} --config ${configFile} serve";
        User = cfg.database.user;
        LoadCredential = credentials;
      };
    };

    environment.systemPackages = [ ctl ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.listen.port ];
  };
}
