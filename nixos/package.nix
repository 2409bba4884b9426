# One daemon of the workspace (`crate` = "latchkey-auth" or "latchkey-api"), built with
# rustPlatform.buildRustPackage from Cargo.lock: no vendor hash to keep up to date.
{
  lib,
  rustPlatform,
  crate,
}:
let
  root = ../.;
  workspace = lib.importTOML (root + "/Cargo.toml");
in
rustPlatform.buildRustPackage {
  pname = crate;
  inherit (workspace.workspace.package) version;

  # Only what cargo needs: a change to nixos/ or the docs does not rebuild the daemons.
  # The `tests` crate is a workspace member, so it must be present for cargo to resolve the
  # workspace, even though it is neither built nor run here.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/crates")
      (root + "/migrations")
      (root + "/tests")
    ];
  };

  cargoLock.lockFile = root + "/Cargo.lock";

  cargoBuildFlags = [
    "--package"
    crate
  ];
  # The crate's own unit and integration tests and those of the library it leans on
  # (loopback only, no Postgres). The end-to-end suite in tests/ needs a Postgres server and
  # runs in .ci/run and the NixOS VM tests instead.
  cargoTestFlags = [
    "--package"
    crate
    "--package"
    (if crate == "latchkey-auth" then "latchkey-core" else "latchkey-jwt")
  ];

  meta = {
    description =
      if crate == "latchkey-auth" then
        "Better-Auth compatible auth daemon (sign-up/in, sessions, JWTs, JWKS)"
      else
        "Resource server sidecar that verifies Better-Auth JWTs against a cached JWKS";
    license = lib.licenses.asl20;
    mainProgram = crate;
    platforms = lib.platforms.linux;
  };
}
