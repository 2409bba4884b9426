# Plain systemd units for Debian and other distributions, rendered from the same sandbox as the
# NixOS modules (../hardening.nix). Plain Nix: no nixpkgs needed. render.nix applies this to
# the defaults; `lowPort = true` gives the variant for a port below 1024 (what the NixOS
# modules use then), which CI gates too but which is not shipped.
{
  lowPort ? false,
}:
let
  hardening = import ../hardening.nix;
  sandbox = hardening.serviceConfig // (if lowPort then hardening.lowPort else { });

  inherit (builtins)
    attrNames
    concatMap
    concatStringsSep
    isBool
    isList
    ;

  value = v: if isBool v then (if v then "yes" else "no") else toString v;

  # NixOS semantics: a list is one line per item.
  entry = k: v: if isList v then map (x: "${k}=${value x}") v else [ "${k}=${value v}" ];

  # Ordered sections: a list of { name; value; } pairs keeps unit-specific keys first.
  lines = pairs: concatMap (p: entry p.name p.value) pairs;
  sorted =
    attrs:
    map (k: {
      name = k;
      value = attrs.${k};
    }) (attrNames attrs);

  unit =
    {
      description,
      after,
      wants,
      service,
      comment,
    }:
    concatStringsSep "\n" (
      [
        "# Rendered from nixos/hardening.nix by nixos/systemd/render.nix; do not edit."
        "# Regenerate with: .ci/nix-checks --update"
      ]
      ++ comment
      ++ [
        ""
        "[Unit]"
      ]
      ++ lines [
        {
          name = "Description";
          value = description;
        }
        {
          name = "After";
          value = concatStringsSep " " after;
        }
        {
          name = "Wants";
          value = concatStringsSep " " wants;
        }
      ]
      ++ [
        ""
        "[Service]"
      ]
      ++ lines service
      ++ [ "# Sandbox (nixos/hardening.nix)" ]
      ++ lines (sorted sandbox)
      ++ [
        ""
        "[Install]"
        "WantedBy=multi-user.target"
        ""
      ]
    );
in
{
  "latchkey-auth.service" = unit {
    description = "latchkey-auth: Better-Auth compatible auth daemon";
    after = [
      "network-online.target"
      "postgresql.service"
    ];
    wants = [ "network-online.target" ];
    comment = [
      "#"
      "# Install the binary as /usr/local/bin/latchkey-auth and the settings (no secrets) as"
      "# /etc/latchkey/latchkey-auth.toml. Secrets are systemd credentials, read by PID 1 as"
      "# root and handed to the service in $CREDENTIALS_DIRECTORY; keep them root-owned, 0600,"
      "# in directories of mode 0700:"
      "#   /etc/latchkey/credentials/latchkey-auth/BETTER_AUTH_SECRET  (>= 32 characters)"
      "#   /etc/latchkey/credentials/latchkey-auth/DATABASE_URL"
      "# A local Postgres over its socket with peer authentication needs libnss-systemd (apt"
      "# install libnss-systemd: Postgres must look up the dynamic user's name) and a role named"
      "# latchkey-auth (that name) owning its database:"
      "#   sudo -u postgres createuser latchkey-auth"
      "#   sudo -u postgres createdb -O latchkey-auth latchkey-auth"
      "# with DATABASE_URL = host=/run/postgresql dbname=latchkey-auth user=latchkey-auth"
      "# Mail over SMTP (mail_transport = \"smtp\" in the TOML file): the server URL holds its"
      "# password, so it is a credential too, /etc/latchkey/credentials/latchkey-auth/LATCHKEY_SMTP_URL,"
      "# loaded by a drop-in (systemctl edit latchkey-auth; a missing file would stop the unit):"
      "#   [Service]"
      "#   LoadCredential=LATCHKEY_SMTP_URL:/etc/latchkey/credentials/latchkey-auth/LATCHKEY_SMTP_URL"
      "# Social sign-in: each provider's client secret likewise, named after its setting, e.g."
      "#   LoadCredential=GITHUB_CLIENT_SECRET:/etc/latchkey/credentials/latchkey-auth/GITHUB_CLIENT_SECRET"
      "#   LoadCredential=LATCHKEY_PROVIDER_CORP_CLIENT_SECRET:/etc/latchkey/credentials/latchkey-auth/LATCHKEY_PROVIDER_CORP_CLIENT_SECRET"
      "# Then: systemctl daemon-reload && systemctl enable --now latchkey-auth"
      "# Listening on a port below 1024 needs CapabilityBoundingSet=CAP_NET_BIND_SERVICE,"
      "# AmbientCapabilities=CAP_NET_BIND_SERVICE and PrivateUsers=no in a drop-in."
    ];
    service = [
      {
        name = "ExecStart";
        value = "/usr/local/bin/latchkey-auth --config /etc/latchkey/latchkey-auth.toml serve";
      }
      {
        name = "LoadCredential";
        value = [
          "BETTER_AUTH_SECRET:/etc/latchkey/credentials/latchkey-auth/BETTER_AUTH_SECRET"
          "DATABASE_URL:/etc/latchkey/credentials/latchkey-auth/DATABASE_URL"
        ];
      }
    ];
  };

  "latchkey-api.service" = unit {
    description = "latchkey-api: resource server for Better-Auth JWTs";
    after = [
      "network-online.target"
      "latchkey-auth.service"
    ];
    wants = [ "network-online.target" ];
    comment = [
      "#"
      "# Install the binary as /usr/local/bin/latchkey-api and the settings (no secrets) as"
      "# /etc/latchkey/latchkey-api.toml (better_auth_url = \"https://auth.example.com\"), then"
      "#   systemctl daemon-reload && systemctl enable --now latchkey-api"
      "# With revocation = \"session\" the API reads the auth database too, as a role of its own"
      "# named latchkey-api (the dynamic user's name; peer authentication needs libnss-systemd)"
      "# that may read a session's id and expiry and nothing else. Once latchkey-auth has"
      "# created its tables:"
      "#   sudo -u postgres createuser latchkey-api"
      "#   sudo -u postgres psql -d latchkey-auth -c 'GRANT SELECT (id, \"expiresAt\") ON \"session\" TO \"latchkey-api\"'"
      "# /etc/latchkey/credentials/latchkey-api/DATABASE_URL (root-owned, 0600) ="
      "#   host=/run/postgresql dbname=latchkey-auth user=latchkey-api"
      "# and a drop-in (systemctl edit latchkey-api):"
      "#   [Service]"
      "#   LoadCredential=DATABASE_URL:/etc/latchkey/credentials/latchkey-api/DATABASE_URL"
    ];
    service = [
      {
        name = "ExecStart";
        value = "/usr/local/bin/latchkey-api --config /etc/latchkey/latchkey-api.toml serve";
      }
    ];
  };
}
