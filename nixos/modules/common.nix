# Helpers shared by the auth and api modules: the listen option, secret file options and
# their checks, and the hardened serviceConfig (from ../hardening.nix, the one definition).
{ lib }:
let
  hardening = import ../hardening.nix;
  ip = import ./ip.nix;

  # An IP address literal: the daemons parse `IP:PORT` and resolve no host names.
  ipAddress = lib.types.addCheck lib.types.str ip.isIP // {
    name = "ipAddress";
    description = "IPv4 or IPv6 address (no host name, no brackets)";
  };

  # A settings key as the daemons read it: lower case, `latchkey_` prefix optional.
  normalise = key: lib.removePrefix "latchkey_" (lib.toLower key);
in
rec {
  # The options every latchkey service has: enable, package, listen, openFirewall.
  serviceOptions =
    {
      pkgs,
      name,
      description,
      defaultPort,
    }:
    {
      enable = lib.mkEnableOption description;

      package = lib.mkPackageOption pkgs name { };

      listen = listenOption { inherit name defaultPort; };

      openFirewall = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Open {option}`services.${name}.listen.port` in the firewall.";
      };
    };

  listenOption =
    { name, defaultPort }:
    lib.mkOption {
      default = { };
      description = "Where {command}`${name}` listens for HTTP.";
      type = lib.types.submodule {
        options = {
          address = lib.mkOption {
            type = ipAddress;
            default = "127.0.0.1";
            example = "0.0.0.0";
            description = ''
              IP address to bind: `127.0.0.1` behind a reverse proxy on the same host,
              `0.0.0.0` or `::` to serve other hosts. An address, not a host name: the daemons
              parse `IP:PORT` and refuse `localhost`.
            '';
          };
          port = lib.mkOption {
            type = lib.types.port;
            default = defaultPort;
            description = ''
              TCP port. A port below 1024 gives the service `CAP_NET_BIND_SERVICE` and turns
              `PrivateUsers` off; everything else in the sandbox stays.
            '';
          };
        };
      };
    };

  # `IP:PORT` as the daemons parse it (`[v6]:PORT` for IPv6).
  listenString =
    listen:
    if lib.hasInfix ":" listen.address then
      "[${listen.address}]:${toString listen.port}"
    else
      "${listen.address}:${toString listen.port}";

  inherit (ip) isLoopback;

  # A secret is a path outside the store, as a string: a path literal (`./secret`) would be
  # copied into the world-readable store, so pathWith { inStore = false; } refuses it.
  secretFileOption =
    description:
    lib.mkOption {
      type = lib.types.nullOr (
        lib.types.pathWith {
          inStore = false;
          absolute = true;
        }
      );
      default = null;
      example = "/run/secrets/latchkey/secret";
      description = ''
        ${description}

        Read by systemd as root and passed to the service with `LoadCredential=`, so it may be
        owned by root with mode 0400 and is never copied into the Nix store. A path in the store
        is rejected.
      '';
    };

  # The same check as an assertion, for values that reach the option some other way
  # (e.g. a string that happens to point into the store).
  secretAssertions =
    service: secrets:
    lib.mapAttrsToList (option: file: {
      assertion =
        file == null || !(builtins.isPath file || lib.hasPrefix "${builtins.storeDir}/" (toString file));
      message = ''
        services.${service}.${option} points into the Nix store (${toString file}), which every
        user and process can read. Keep the secret outside the store (e.g. /run/secrets/...,
        managed by sops-nix or agenix) and give its path as a string.
      '';
    }) secrets;

  # The hardened serviceConfig; a port below 1024 needs CAP_NET_BIND_SERVICE on the host's
  # network, which a private user namespace cannot give.
  serviceConfig =
    listen: hardening.serviceConfig // lib.optionalAttrs (listen.port < 1024) hardening.lowPort;

  # Settings the modules own (listen) or that the daemons take only from the environment,
  # a `*_FILE` path or a systemd credential (secrets), never from the config file; as
  # normalised keys (see `normalise`), so `BETTER_AUTH_SECRET`, `Database_Url` and
  # `latchkey_listen` are caught too.
  reservedSettings = [
    "listen"
    "better_auth_secret"
    "better_auth_secret_file"
    "database_url"
    "database_url_file"
    "smtp_url"
    "smtp_url_file"
  ];

  reservedSettingsAssertion =
    service: settings:
    let
      reserved = lib.filter (key: lib.elem (normalise key) reservedSettings) (lib.attrNames settings);
    in
    {
      assertion = reserved == [ ];
      message = ''
        services.${service}.settings must not set ${lib.concatStringsSep ", " reserved}: `listen`
        and the secrets (better_auth_secret, database_url, smtp_url and their _file forms) are
        refused in any case, with or without `latchkey_`. The address comes from
        services.${service}.listen, and secrets from the *File options (systemd credentials),
        never from the world-readable config file.
      '';
    };

  # The TOML file: nulls and empty lists dropped (TOML has no null), the listen address added.
  configFile =
    {
      format,
      name,
      settings,
      listen,
    }:
    format.generate "${name}.toml" (
      lib.filterAttrs (_: v: v != null && v != [ ]) settings // { listen = listenString listen; }
    );
}
