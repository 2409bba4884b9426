# The shipped units, as { "<name>.service" = "<text>"; }:
#
#   nix-instantiate --eval --json --strict nixos/systemd/render.nix
#
# `.ci/nix-checks --update` writes them next to this file; `.ci/nix-checks` fails when the
# committed files differ, and gates each with `systemd-analyze security --offline=true`.
import ./units.nix { }
