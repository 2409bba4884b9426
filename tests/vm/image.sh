#!/usr/bin/env bash
# Builds the VM image from nothing (run by tests/vm/run, which caches the result under
# target/vm/image-<key>/, the key being a hash of this script and tests/vm/packages):
#
#   tests/vm/image.sh OUTDIR MIRROR
#
# OUTDIR/root.img    ext4 root file system, no partition table (mkfs.ext4 -d: no mount, no loop
#                    device): Debian 12 minbase with tests/vm/packages, PostgreSQL 15 with its
#                    'main' cluster (UTF-8), systemd-networkd with the address QEMU's user-mode
#                    network expects, no getty, a persistent journal
# OUTDIR/vmlinuz     the image's own kernel (linux-image-amd64)
# OUTDIR/initrd.img  a small initramfs (MODULES=list: virtio_pci, virtio_blk, ext4)
#
# Nothing of latchkey is in the image: the daemons, their units and the guest suite come in on
# a payload disk at every run. What the image has of the test is two one-shot units that run
# the payload's install or test script, chosen on the kernel command line (latchkey.vm=...).
# Needs root, debootstrap, unshare and mkfs.ext4 (e2fsprogs).
set -euo pipefail

out=$1
mirror=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=bookworm

work="$out.tmp"
root="$work/root"
rm -rf "$work"
mkdir -p "$work"

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/packages" | grep -v '^$')
include=$(
    IFS=,
    echo "${packages[*]}"
)

echo "image: debootstrap --variant=minbase $suite from $mirror (${#packages[@]} packages and their dependencies)"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

# In a mount namespace of its own, so that nothing stays mounted on the host if this fails.
in_root() { # COMMAND...: runs COMMAND chrooted into the image with /proc, /dev and /sys
    # shellcheck disable=SC2016 # expanded by the inner sh
    unshare --mount --propagation private -- sh -ec '
        root=$1
        shift
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sysfs "$root/sys"
        exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
    ' in_root "$root" "$@"
}

echo "image: configuring"
echo latchkey-vm >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 latchkey-vm
::1 localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<'EOF'
/dev/vda / ext4 rw,errors=remount-ro 0 0
EOF
# A fixed machine id: every run starts from the same image, and both boots of a run share one
# journal directory.
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

# QEMU's user-mode network: the guest is 10.0.2.15, the host's forwarded ports arrive there.
cat >"$root/etc/systemd/network/10-qemu.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
mkdir -p "$root/var/log/journal" "$root/etc/systemd/journald.conf.d"
cat >"$root/etc/systemd/journald.conf.d/vm.conf" <<'EOF'
[Journal]
Storage=persistent
EOF

# PostgreSQL's 'main' cluster, UTF-8 as on any Debian host with a UTF-8 locale.
in_root pg_dropcluster 15 main
in_root pg_createcluster --locale C.UTF-8 15 main >/dev/null

# The small initramfs: only what finds and mounts the root disk.
mkdir -p "$root/etc/initramfs-tools-vm"
cp -a "$root/etc/initramfs-tools/." "$root/etc/initramfs-tools-vm/"
sed -i -e 's/^MODULES=.*/MODULES=list/' -e 's/^COMPRESS=.*/COMPRESS=gzip/' \
    "$root/etc/initramfs-tools-vm/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >"$root/etc/initramfs-tools-vm/modules"
kver=$(for d in "$root"/lib/modules/*; do basename "$d"; done | sort -V | tail -n 1)
in_root mkinitramfs -d /etc/initramfs-tools-vm -o /boot/initrd.vm "$kver"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.vm" "$work/initrd.img"
rm -f "$root"/boot/initrd.img-* "$root/boot/initrd.vm"

# The test's hook: the payload disk (/dev/vdb) is a tar archive of tests/vm/guest, the daemons
# and their units; vm-payload unpacks it into /run/vm and runs its install.sh or suite.sh.
cat >"$root/usr/local/sbin/vm-payload" <<'EOF'
#!/bin/sh
# vm-payload install|test: unpacks the payload disk and runs the step (tests/vm/image.sh).
set -eu
rm -rf /run/vm
mkdir -p /run/vm
tar -xf /dev/vdb -C /run/vm
case "$1" in
    install) exec bash /run/vm/guest/install.sh ;;
    test) exec bash /run/vm/guest/suite.sh ;;
esac
echo "vm-payload: unknown step $1" >&2
exit 2
EOF
chmod 0755 "$root/usr/local/sbin/vm-payload"

unit_common='Type=oneshot
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no'
cat >"$root/etc/systemd/system/vm-install.service" <<EOF
[Unit]
Description=latchkey VM test: install the daemons from the payload disk
ConditionKernelCommandLine=latchkey.vm=install
After=postgresql.service network-online.target
Wants=network-online.target
SuccessAction=poweroff
FailureAction=poweroff-force

[Service]
$unit_common
ExecStart=/usr/local/sbin/vm-payload install
TimeoutStartSec=600

[Install]
WantedBy=multi-user.target
EOF
cat >"$root/etc/systemd/system/vm-test.service" <<EOF
[Unit]
Description=latchkey VM test: the guest suite, once both daemons are up
ConditionKernelCommandLine=latchkey.vm=test
After=postgresql.service network-online.target latchkey-auth.service latchkey-api.service
Wants=network-online.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
$unit_common
ExecStart=/usr/local/sbin/vm-payload test
TimeoutStartSec=1200

[Install]
WantedBy=multi-user.target
EOF

# Nothing on the consoles but the test's own output; nothing that reaches for the network.
in_root systemctl enable --quiet systemd-networkd.service vm-install.service vm-test.service
in_root systemctl mask --quiet getty.target apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/debootstrap"

size_mb=$(($(du -sm "$root" | cut -f1) + 1024))
echo "image: mkfs.ext4 -d ($size_mb MiB, sparse)"
mkfs.ext4 -q -F -L root -m 0 -d "$root" "$work/root.img" "${size_mb}M" >/dev/null
rm -rf "$root"

rm -rf "$out"
mv "$work" "$out"
echo "image: done, kernel $kver"
