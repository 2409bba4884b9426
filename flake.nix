{
  description = "latchkey: a Better-Auth compatible auth daemon and JWT-verifying API sidecar";

  # flake.lock pins nixos-26.05 (copied by hand from shared/nix/nixpkgs-pins.json).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );

      # An OCI image per daemon (Railway, Fly, Kubernetes, ...): the binary and nothing else.
      # TLS roots for https JWKS and Postgres are compiled in (webpki-roots). Configure it with
      # environment variables: BETTER_AUTH_SECRET, DATABASE_URL, BETTER_AUTH_URL, ...
      image =
        pkgs: package: port:
        pkgs.dockerTools.buildLayeredImage {
          name = package.pname;
          tag = package.version;
          config = {
            Entrypoint = [ (lib.getExe package) ];
            Cmd = [ "serve" ];
            Env = [ "LATCHKEY_LISTEN=0.0.0.0:${toString port}" ];
            ExposedPorts."${toString port}/tcp" = { };
            User = "65534:65534";
          };
        };

      # The flake's modules default `package` to this flake's build, so they work without
      # the overlay (and with a read-only `nixpkgs.pkgs`, as in the VM tests).
      withPackage =
        name: module:
        { lib, pkgs, ... }:
        {
          # A key lets the module system deduplicate the wrapper (importing both `default`
          # and `auth` would otherwise define `package` twice) and lets disabledModules name it.
          key = "latchkey#nixosModules.${name}";
          _class = "nixos";
          imports = [ module ];
          services.${name}.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${name};
        };
    in
    {
      overlays.default = final: _prev: {
        latchkey-auth = final.callPackage ./nixos/package.nix { crate = "latchkey-auth"; };
        latchkey-api = final.callPackage ./nixos/package.nix { crate = "latchkey-api"; };
      };

      packages = forAllSystems (pkgs: {
        inherit (pkgs) latchkey-auth latchkey-api;
        default = pkgs.symlinkJoin {
          name = "latchkey-${pkgs.latchkey-auth.version}";
          paths = [
            pkgs.latchkey-auth
            pkgs.latchkey-api
          ];
        };
        latchkey-auth-image = image pkgs pkgs.latchkey-auth 3000;
        latchkey-api-image = image pkgs pkgs.latchkey-api 8000;
      });

      nixosModules = {
        auth = withPackage "latchkey-auth" ./nixos/modules/auth.nix;
        api = withPackage "latchkey-api" ./nixos/modules/api.nix;
        default = {
          imports = [
            self.nixosModules.auth
            self.nixosModules.api
          ];
        };
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            postgresql
            nodejs
            nixfmt
            deadnix
            jq
            curl
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);

      checks = forAllSystems (
        pkgs:
        {
          # The NixOS VM tests (nixos/tests/): four machines, and one with a local database.
          vm = pkgs.testers.runNixOSTest (import ./nixos/tests/latchkey.nix { inherit self pkgs; });
          vm-local-db = pkgs.testers.runNixOSTest (import ./nixos/tests/local-db.nix { inherit self pkgs; });

          fmt =
            pkgs.runCommand "latchkey-fmt"
              {
                nativeBuildInputs = with pkgs; [
                  nixfmt
                  deadnix
                  rustfmt
                  findutils
                ];
              }
              ''
                cd ${self}
                find . -name '*.nix' -not -path './target/*' -print0 | xargs -0 nixfmt --check
                deadnix --fail .
                find crates tests -name '*.rs' -print0 | xargs -0 rustfmt --check --edition 2021
                touch $out
              '';

          # clippy over the whole workspace with the daemons' vendored dependencies.
          clippy = pkgs.latchkey-auth.overrideAttrs (old: {
            pname = "latchkey-clippy";
            nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
            buildPhase = ''
              runHook preBuild
              cargo clippy --workspace --all-targets --offline -- -D warnings
              runHook postBuild
            '';
            doCheck = false;
            installPhase = ''
              runHook preInstall
              mkdir -p $out
              runHook postInstall
            '';
          });
        }
        // lib.mapAttrs' (name: lib.nameValuePair "package-${name}") {
          inherit (pkgs) latchkey-auth latchkey-api;
        }
      );
    };
}
