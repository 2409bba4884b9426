# The address check of the modules' `listen.address` (../modules/ip.nix), against a table of
# what the daemons' parser (Rust's std::net::IpAddr in `IP:PORT`, `[IPv6]:PORT`) takes and
# refuses; every row was checked against `latchkey-api check-config` with LATCHKEY_LISTEN.
# Plain Nix, evaluated by .ci/nix-checks:
#   nix-instantiate --eval --strict nixos/tests/ip.nix   # true, or an error naming each miss
let
  ip = import ../modules/ip.nix;

  valid = [
    "127.0.0.1"
    "0.0.0.0"
    "10.0.2.15"
    "255.255.255.255"
    "::"
    "::1"
    "fe80::1"
    "2001:db8::8a2e:370:7334"
    "2001:DB8:0:0:8:800:200C:417A"
    "1:2:3:4:5:6:7:8"
    "1:2:3:4:5:6:7::"
    "::2:3:4:5:6:7:8"
    "::ffff:192.0.2.1"
    "64:ff9b::192.0.2.33"
    "1:2:3:4:5:6:1.2.3.4"
  ];

  invalid = [
    ""
    "localhost"
    "example.com"
    "127.0.0.1:3000"
    "[::1]"
    "256.0.0.1"
    "01.2.3.4"
    "1.2.3"
    "1.2.3.4.5"
    # The daemon trims a leading space; the module is stricter.
    " 127.0.0.1"
    "127.0.0.1 "
    ":"
    ":::"
    "1::2::3"
    "1:2:3:4:5:6:7:8:9"
    "1:2:3:4:5:6:7"
    "1:2:3:4:5:6:7:8::"
    "12345::"
    "g::1"
    "fe80::1%eth0"
    "::ffff:256.0.0.1"
    "1.2.3.4::"
    "1:2:3:4:5:6:7:1.2.3.4"
  ];

  misses =
    builtins.filter (a: !ip.isIP a) valid
    ++ map (a: "not refused: ${a}") (builtins.filter ip.isIP invalid)
    ++ builtins.filter (a: !ip.isLoopback a) [
      "127.0.0.1"
      "127.1.2.3"
      "::1"
    ]
    ++ map (a: "loopback: ${a}") (
      builtins.filter ip.isLoopback [
        "0.0.0.0"
        "::"
        "localhost"
        "128.0.0.1"
      ]
    );
in
if misses == [ ] then
  true
else
  throw "nixos/modules/ip.nix: ${builtins.concatStringsSep ", " misses}"
