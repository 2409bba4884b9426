# The sandbox of both daemons, defined once.
#
# A plain attribute set: no nixpkgs, no lib, no arguments. Imported by
#   - nixos/modules/auth.nix and nixos/modules/api.nix (as `systemd.services.*.serviceConfig`),
#   - nixos/systemd/render.nix, which renders the plain unit files for Debian and other
#     distributions (`nix-instantiate --eval --json --strict`; see .ci/nix-checks).
#
# Values follow NixOS' `serviceConfig` conventions: a list becomes one `Key=` line per item,
# a bool becomes true/false (yes/no in the rendered Debian units), an empty string resets the setting (CapabilityBoundingSet= means
# "no capabilities at all").
#
# Goal: `systemd-analyze security` exposure <= 1.5 for both units (checked in CI on the
# rendered files). What stays exposed is what a network daemon needs: AF_INET/AF_INET6 sockets
# and the host's network namespace.
{
  serviceConfig = {
    # sd_notify(READY=1) once listening; STOPPING=1 and a graceful drain on SIGTERM.
    Type = "notify";
    NotifyAccess = "main";
    Restart = "on-failure";
    RestartSec = "2s";
    TimeoutStopSec = "30s";

    # No core dumps: one would hold the secret, the database URL and passwords in flight (the
    # daemons also make themselves non-dumpable).
    LimitCORE = "0";

    # A transient user per unit (named after the unit unless `User=` says otherwise).
    DynamicUser = true;
    UMask = "0077";
    RemoveIPC = true;
    KeyringMode = "private";

    # File system: read-only everywhere; no home, no devices, private /tmp.
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    DevicePolicy = "closed";
    PrivateMounts = true;
    PrivateIPC = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    # PrivateDevices= bind-mounts the host's /dev/shm, world-writable, into the private /dev
    # (found by tests/vm/run): the daemons use no POSIX shared memory, so hide it.
    InaccessiblePaths = [ "-/dev/shm" ];

    # No capabilities; a user namespace of its own. `lowPort` below undoes the two that a port
    # below 1024 needs.
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    NoNewPrivileges = true;
    PrivateUsers = true;
    RestrictSUIDSGID = true;

    # Kernel and system state.
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    RestrictRealtime = true;
    RestrictNamespaces = true;

    # TCP for clients and Postgres, AF_UNIX for the Postgres socket and sd_notify.
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
    ];

    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged @resources"
    ];
    SystemCallErrorNumber = "EPERM";
  };

  # Merged over `serviceConfig` when the listen port is below 1024: binding it needs
  # CAP_NET_BIND_SERVICE, which a private user namespace cannot grant on the host's network.
  lowPort = {
    CapabilityBoundingSet = "CAP_NET_BIND_SERVICE";
    AmbientCapabilities = "CAP_NET_BIND_SERVICE";
    PrivateUsers = false;
  };
}
