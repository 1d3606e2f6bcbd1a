#!/bin/bash
# Builds the package test's guest: a Debian 12 (bookworm) root file system
# from Debian's mirror with systemd, apt and the cloud kernel, turned into an
# ext4 image without mounting anything (mkfs.ext4 -d), plus the kernel and
# initramfs from its /boot for QEMU's -kernel/-initrd.
#   mkrootfs.sh OUTDIR   -> OUTDIR/rootfs.ext4, OUTDIR/vmlinuz, OUTDIR/initrd.img
# Needs root, mmdebstrap and e2fsprogs; the caller caches OUTDIR. mmdebstrap
# rather than debootstrap: it resolves and downloads with apt (one pipelined
# connection) and unpacks with one dpkg run instead of one per package,
# which took debootstrap 20 minutes on a loaded 2-core machine.
set -euo pipefail
out=$(realpath -m "${1:?usage: mkrootfs.sh OUTDIR}")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
command -v mmdebstrap >/dev/null || { echo "mkrootfs: mmdebstrap not found: run \`make packages-deps\` (apt-get install mmdebstrap)"; exit 1; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "${out%/}.tmp.XXXXXX")
# mmdebstrap mounts /proc, /sys and /dev in the new root while it installs
# and unmounts them; a failed run can leave them mounted, so unmount before
# removing.
# (No errexit in here: a grep that finds nothing must not skip the rm.)
cleanup() {
	set +e
	findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | xargs -r -n1 umount -l
	rm -rf "$tmp"
}
trap cleanup EXIT
root=$tmp/root
start=$SECONDS

echo "mkrootfs: mmdebstrap bookworm from $mirror"
# The initramfs holds only what QEMU's root disk needs (virtio-blk over
# PCI; ext4 is built into Debian's cloud kernel): MODULES=most copies
# every driver, which took minutes of the build and slows the boot.
init_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
	echo MODULES=list >"$1/etc/initramfs-tools/conf.d/mkrootfs" &&
	printf "virtio_pci\nvirtio_blk\n" >"$1/usr/share/initramfs-tools/modules.d/mkrootfs"'

# force-unsafe-io only while building (nothing here needs to survive a
# crash: a failed build is thrown away); the guest's dpkg keeps its defaults.
mmdebstrap --mode=root --variant=minbase \
	--include=systemd,systemd-sysv,udev,dbus,apt,e2fsprogs,kmod,initramfs-tools,linux-image-cloud-amd64 \
	--setup-hook='mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io >"$1/etc/dpkg/dpkg.cfg.d/99mkrootfs-unsafe-io"' \
	--setup-hook="$init_hook" \
	--customize-hook='rm -f "$1/etc/dpkg/dpkg.cfg.d/99mkrootfs-unsafe-io"' \
	bookworm "$root" "$mirror" >"$tmp/mmdebstrap.log" 2>&1 || {
	tail -30 "$tmp/mmdebstrap.log"; echo "mkrootfs: mmdebstrap failed (log above; is $mirror reachable?)"; exit 1; }
echo "mkrootfs: mmdebstrap done in $((SECONDS - start))s"

echo vmtest >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# No network in the guest: apt installs from local files only.
printf 'deb %s bookworm main\n' "$mirror" >"$root/etc/apt/sources.list"

# The test driver: mounts the second disk (the test's inputs), runs its
# run.sh with output on the serial console and in out/log, powers off.
cat >"$root/usr/local/sbin/vmtest" <<'SH'
#!/bin/sh
mkdir -p /mnt/test
if ! mount /dev/vdb /mnt/test; then
	echo "VMTEST-DONE rc=99 (no test disk)" >/dev/ttyS0
	systemctl poweroff
	exit 0
fi
mkdir -p /mnt/test/out
sh /mnt/test/run.sh >/mnt/test/out/log 2>&1 &
pid=$!
tail -n +1 -F /mnt/test/out/log >/dev/ttyS0 2>/dev/null &
wait $pid
rc=$?
sleep 0.5; kill $! 2>/dev/null
sync
umount /mnt/test
echo "VMTEST-DONE rc=$rc" >/dev/ttyS0
systemctl poweroff
SH
chmod 755 "$root/usr/local/sbin/vmtest"
cat >"$root/etc/systemd/system/vmtest.service" <<'UNIT'
[Unit]
Description=Package test driver (test/packages)
After=multi-user.target
[Service]
Type=simple
ExecStart=/usr/local/sbin/vmtest
StandardOutput=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable vmtest.service >/dev/null 2>&1
# Nothing that starts on its own and competes with the test for the CPU.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
	chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
done
chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service >/dev/null 2>&1 || true
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/*_Packages "$root"/tmp/*

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
echo "mkrootfs: kernel $(basename "$kernel"), rootfs $(du -sh "$root" | cut -f1)"
mkfs.ext4 -q -F -L vmroot -d "$root" "$tmp/rootfs.ext4" 3G
rm -rf "$root"
rm -rf "$out"
mv "$tmp" "$out.new" && mv "$out.new" "$out"
trap - EXIT
echo "mkrootfs: done in $((SECONDS - start))s"
