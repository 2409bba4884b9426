# services.latchkey-api: the resource server that verifies Better-Auth JWTs.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.latchkey-api;
  common = import ./common.nix { inherit lib; };
  format = pkgs.formats.toml { };

  configFile = common.configFile {
    inherit format;
    inherit (cfg) settings listen;
    name = "latchkey-api";
  };

  has = key: cfg.settings ? ${key} || cfg.settings ? "latchkey_${key}";

  # When this host also runs the auth module, point at it by default.
  localAuth = config.services.latchkey-auth.enable or false;
  localAuthUrl =
    let
      auth = config.services.latchkey-auth;
    in
    if auth.settings.better_auth_url != null then
      auth.settings.better_auth_url
    else
      "http://${common.listenString auth.listen}";
in
{
  options.services.latchkey-api =
    common.serviceOptions {
      inherit pkgs;
      name = "latchkey-api";
      description = "latchkey-api, the resource server for Better-Auth JWTs";
      defaultPort = 8000;
    }
    // {
      databaseUrlFile = common.secretFileOption ''
        File holding `DATABASE_URL` of the auth database, read only with
        `settings.revocation = "session"` (then required).
      '';

      settings = lib.mkOption {
        default = { };
        description = ''
          The daemon's TOML settings (RFC 42 freeform). A key is the setting's environment
          name in lower case, with or without the `latchkey_` prefix: `jwks_url`, `jwt_issuer`,
          `jwt_audience`, `jwks_refresh`, `jwks_ca_file`, `revocation_cache_ttl`, `upstream`,
          `upstream_timeout`, `max_body_bytes`, `require_verified_email`, ... The file lands in
          the world-readable Nix store: secrets are refused here.
        '';
        example = lib.literalExpression ''
          {
            better_auth_url = "https://auth.example.com";
            upstream = "http://127.0.0.1:9000";
          }
        '';
        type = lib.types.submodule {
          freeformType = format.type;
          options = {
            better_auth_url = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default = if localAuth then localAuthUrl else null;
              defaultText = lib.literalMD "the local latchkey-auth's URL when it is enabled, else null";
              example = "https://auth.example.com";
              description = ''
                URL of latchkey-auth: the JWKS is fetched from `<origin>/api/auth/jwks`, and its
                origin is the expected issuer and audience. Required unless both `jwks_url` and
                `jwt_issuer` are set.
              '';
            };
            revocation = lib.mkOption {
              type = lib.types.enum [
                "off"
                "session"
              ];
              default = "off";
              description = ''
                `session`: also refuse tokens whose session was signed out or revoked, by asking
                the auth database (cached for `revocation_cache_ttl` seconds). Needs
                {option}`services.latchkey-api.databaseUrlFile`.
              '';
            };
          };
        };
      };
    };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.settings.better_auth_url != null || (has "jwks_url" && has "jwt_issuer");
        message = "services.latchkey-api.settings: set better_auth_url, or both jwks_url and jwt_issuer.";
      }
      {
        assertion = cfg.settings.revocation == "session" -> cfg.databaseUrlFile != null;
        message = ''services.latchkey-api: settings.revocation = "session" needs databaseUrlFile.'';
      }
      (common.reservedSettingsAssertion "latchkey-api" cfg.settings)
    ]
    ++ common.secretAssertions "latchkey-api" { inherit (cfg) databaseUrlFile; };

    warnings =
      lib.optional (cfg.openFirewall && common.isLoopback cfg.listen.address)
        "services.latchkey-api.openFirewall is set, but the daemon listens on ${cfg.listen.address} only.";

    systemd.services.latchkey-api = {
      description = "latchkey-api: resource server for Better-Auth JWTs";
      wantedBy = [ "multi-user.target" ];
      # The API starts without the auth daemon (it retries the JWKS fetch and reports not
      # ready until then); ordering only makes a cold boot quieter.
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ] ++ lib.optional localAuth "latchkey-auth.service";

      serviceConfig = common.serviceConfig cfg.listen // {
        ExecStart = "${lib.getExe cfg.package} --config ${configFile} serve";
        User = "latchkey-api";
        LoadCredential = lib.optional (cfg.databaseUrlFile != null) "DATABASE_URL:${cfg.databaseUrlFile}";
      };
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.listen.port ];
  };
}
