# IP address literals as the daemons parse them (Rust's std::net::IpAddr, in `IP:PORT`):
# dotted IPv4 without leading zeros, IPv6 in any RFC 4291 text form (`::`, an IPv4 tail), no
# zone index, no brackets and no host names. Plain builtins, no nixpkgs: common.nix uses it for
# `listen.address`, and .ci/nix-checks evaluates nixos/tests/ip.nix against it.
let
  inherit (builtins)
    all
    any
    elemAt
    filter
    genList
    isList
    length
    match
    split
    ;

  # builtins.split gives strings and (empty) match lists, alternately.
  splitOn = sep: s: filter (x: !isList x) (split sep s);

  octet = "(0|[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])";

  isIPv4 = s: match "${octet}\\.${octet}\\.${octet}\\.${octet}" s != null;

  isGroup = g: match "[0-9a-fA-F]{1,4}" g != null;

  isIPv6 =
    s:
    let
      halves = splitOn "::" s;
      compressed = length halves == 2;
      groupsOf = h: if h == "" then [ ] else splitOn ":" h;
      groups =
        if compressed then groupsOf (elemAt halves 0) ++ groupsOf (elemAt halves 1) else groupsOf s;
      n = length groups;
      last = elemAt groups (n - 1);
      # Only the very end may be an IPv4 address.
      v4tail = n > 0 && isIPv4 last && !(compressed && elemAt halves 1 == "");
      hex = if v4tail then genList (i: elemAt groups i) (n - 1) else groups;
      # 16-bit groups in all: an IPv4 tail counts as two.
      width = length hex + (if v4tail then 2 else 0);
    in
    match ".*:.*" s != null
    && length halves <= 2
    && all isGroup hex
    && (if compressed then width <= 7 else width == 8);
in
{
  inherit isIPv4 isIPv6;

  isIP = s: isIPv4 s || isIPv6 s;

  isLoopback =
    s:
    (isIPv4 s && match "127\\..*" s != null)
    || any (a: a == s) [
      "::1"
      "0:0:0:0:0:0:0:1"
    ];
}
