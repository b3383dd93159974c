#!/usr/bin/env bash
# Builds the QEMU test image: a Debian bookworm root (systemd, cloud-init,
# qemu-guest-agent, a kernel) as a raw ext4 disk, plus that kernel and its
# initrd for QEMU's direct kernel boot. No node agent is baked in: it arrives
# through cloud-init user-data, as on a real machine.
#
# Output: $OUT/<key>/{rootfs.img,vmlinuz,initrd.img,packages} where <key> is
# a hash of this script (which holds the package list), so an unchanged
# script reuses the image it built before. Prints the image directory.
#
#   OUT      default: ${HOSTCTL_TEST_IMAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hostctl/test-image}
#   MIRROR   default: the first Debian URI in /etc/apt/sources.list*
#
# Needs root (debootstrap), debootstrap and e2fsprogs. Nothing is mounted:
# `mkfs.ext4 -d` copies the root directory into the image.
set -euo pipefail

SUITE=bookworm
SIZE=2G
# python3-cffi-backend: without it cloud-init's dependencies fail to configure.
# qemu-guest-agent: lets tests act inside the VM without SSH (guest-exec).
# netplan.io: as on Ubuntu, cloud-init renders the network through netplan
# and the Multipass user-data's netplan file (docs/multipass-networking.md)
# is applied by `netplan apply`.
PACKAGES=systemd,systemd-sysv,udev,dbus,cloud-init,python3-cffi-backend,iproute2,ca-certificates,linux-image-amd64,qemu-guest-agent,netplan.io

here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-${HOSTCTL_TEST_IMAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hostctl/test-image}}"
key="$(sha256sum "$here/build.sh" | cut -c1-16)"
dest="$out/$key"

if [ -f "$dest/rootfs.img" ] && [ -f "$dest/vmlinuz" ] && [ -f "$dest/initrd.img" ]; then
  echo "$dest"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "test-image: debootstrap needs root" >&2
  exit 1
fi
for tool in debootstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$tool" >/dev/null || { echo "test-image: $tool is not installed" >&2; exit 1; }
done

mirror_from_sources() {
  # deb822 (`URIs: …`) and one-line (`deb URL suite …`) sources; the main
  # archive, not the security one.
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {print $2} /^deb / {print $2}' | grep -v security | head -n1 || true
}
mirror="${MIRROR:-$(mirror_from_sources)}"
mirror="${mirror:-http://deb.debian.org/debian}"

work="$(mktemp -d "${TMPDIR:-/tmp}/hostctl-test-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "test-image: debootstrap $SUITE from $mirror (a few minutes)" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Every VM gets its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# The disk is the whole device (no partition table).
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# Only the NoCloud seed: probing cloud datasources costs minutes under TCG.
# minbase has no locales package and no ssh: `locale: C.UTF-8`, and the
# module lists of Debian's cloud.cfg (cloud-init 22.4) without the ssh
# modules (ssh, ssh-import-id, set-passwords, ssh-authkey-fingerprints,
# keys-to-console); otherwise cloud-init reports failures that have nothing
# to do with the node. (`ssh_genkeytypes: []` is not valid cloud-config:
# cloud-init then logs "Invalid cloud-config provided" on every boot.)
cat >"$root/etc/cloud/cloud.cfg.d/90-hostctl-test-image.cfg" <<'CFG'
datasource_list: [NoCloud, None]
locale: C.UTF-8
cloud_init_modules: [migrator, seed_random, bootcmd, write-files, growpart, resizefs,
  disk_setup, mounts, set_hostname, update_hostname, update_etc_hosts, ca-certs, rsyslog,
  users-groups]
cloud_config_modules: [snap, keyboard, locale, grub-dpkg, apt-pipelining, apt-configure,
  ntp, timezone, disable-ec2-metadata, runcmd, byobu]
cloud_final_modules: [package-update-upgrade-install, fan, landscape, lxd,
  write-files-deferred, puppet, chef, mcollective, salt-minion, reset_rmc,
  refresh_rmc_and_interface, rightscale_userdata, scripts-vendor, scripts-per-once,
  scripts-per-boot, scripts-per-instance, scripts-user, install-hotplug, phone-home,
  final-message, power-state-change]
system_info:
  network:
    renderers: [netplan]
CFG
# cloud-init renders the seed's network-config (or its fallback) as netplan
# for systemd-networkd, as on an Ubuntu cloud image.
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Keep the image small; apt fetches lists again when it runs.
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*_Packages* || true

kernel="$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)"
initrd="$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)"
mkdir -p "$work/out"
cp "$kernel" "$work/out/vmlinuz"
cp "$initrd" "$work/out/initrd.img"
chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$work/out/packages"
# stdout is this script's answer (the image directory): mkfs.ext4 prints
# "Creating regular file …" there, so its output goes to stderr.
mkfs.ext4 -q -L hostctl-root -d "$root" "$work/out/rootfs.img" "$SIZE" >&2

mkdir -p "$out"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "$dest"
