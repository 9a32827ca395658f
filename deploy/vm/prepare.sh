#!/usr/bin/env bash
# Prepares the QEMU guest that gives tests a real IPVS kernel: downloads Debian's stock
# kernel package, unpacks it into a cache outside the repo, indexes its modules and builds
# a busybox initramfs that mounts the host's root read-only over virtio-9p.
# Idempotent: when the cache is complete it returns at once.
#
#   HACLUSTER_VM_CACHE   cache directory (default /var/cache/hacluster-vm)
#   HACLUSTER_VM_KERNEL  kernel package version, e.g. 6.1.0-56-amd64 (default: what
#                        linux-image-amd64 depends on, or the one already cached)
set -euo pipefail

CACHE=${HACLUSTER_VM_CACHE:-/var/cache/hacluster-vm}
HERE=$(cd "$(dirname "$0")" && pwd)
# The stamp changes whenever this script or the guest init changes, so editing either
# rebuilds the initramfs (the kernel download is kept).
STAMP_KEY=$(cat "$0" "$HERE/init.sh" | sha256sum | cut -c1-16)

die() { echo "prepare-vm: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ] && [ -z "${HACLUSTER_VM_CACHE:-}" ]; then
    # The VM tests need root (they skip without it), and so does the default cache.
    echo "prepare-vm: not root, skipping (set HACLUSTER_VM_CACHE to prepare elsewhere)" >&2
    exit 0
fi

for tool in busybox cpio gzip depmod modprobe qemu-system-x86_64; do
    command -v "$tool" >/dev/null || die "$tool is missing: run deploy/install-deps.sh"
done
[ -f /bin/busybox ] || die "/bin/busybox (busybox-static) is missing"

mkdir -p "$CACHE"
if [ -f "$CACHE/ready" ] && [ "$(cat "$CACHE/ready")" = "$STAMP_KEY $(cat "$CACHE/kernel-version" 2>/dev/null)" ] \
    && [ -z "${HACLUSTER_VM_KERNEL:-}" ]; then
    exit 0
fi
rm -f "$CACHE/ready"

# Which kernel: asked for, else the one linux-image-amd64 points at, else one cached.
KVER=${HACLUSTER_VM_KERNEL:-}
if [ -z "$KVER" ]; then
    KVER=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | grep -v unsigned | head -n1 || true)
fi
if [ -z "$KVER" ] && [ -f "$CACHE/kernel-version" ]; then
    KVER=$(cat "$CACHE/kernel-version")
fi
[ -n "$KVER" ] || die "cannot tell which kernel to use (apt-cache knows no linux-image-amd64)"
case $KVER in *[!A-Za-z0-9.+_-]*) die "bad kernel version '$KVER'" ;; esac

KDIR=$CACHE/$KVER
if [ ! -f "$KDIR/.unpacked" ]; then
    echo "prepare-vm: fetching linux-image-$KVER" >&2
    TMP=$(mktemp -d "$CACHE/.download.XXXXXX")
    trap 'rm -rf "$TMP"' EXIT
    (cd "$TMP" && apt-get download -q "linux-image-$KVER" >/dev/null 2>"$TMP/apt.log") \
        || { cat "$TMP/apt.log" >&2; die "apt-get download linux-image-$KVER failed"; }
    rm -rf "$KDIR"
    mkdir -p "$TMP/root"
    dpkg -x "$TMP"/linux-image-"$KVER"_*.deb "$TMP/root"
    mv "$TMP/root" "$KDIR"
    rm -rf "$TMP"
    trap - EXIT
    depmod -b "$KDIR" "$KVER"
    touch "$KDIR/.unpacked"
fi
[ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "$KDIR/boot/vmlinuz-$KVER is missing"

# The initramfs: busybox, the modules needed to reach the host's root (virtio PCI,
# virtio console, 9p), loaded in dependency order, and init.sh as /init.
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$STAGE/bin/busybox"
cp "$HERE/init.sh" "$STAGE/init"
chmod 755 "$STAGE/init"
: >"$STAGE/modules/load"
for mod in virtio_pci virtio_console 9pnet_virtio 9p; do
    modprobe -d "$KDIR" -S "$KVER" --show-depends "$mod" | while read -r kind path _; do
        [ "$kind" = insmod ] || continue
        name=$(basename "$path")
        grep -qx "$name" "$STAGE/modules/load" && continue
        case $path in
            *.ko) cp "$path" "$STAGE/modules/$name" ;;
            *.ko.xz) xz -dc "$path" >"$STAGE/modules/${name%.xz}"; name=${name%.xz} ;;
            *.ko.zst) zstd -qdc "$path" >"$STAGE/modules/${name%.zst}"; name=${name%.zst} ;;
            *) die "cannot unpack module $path" ;;
        esac
        echo "$name" >>"$STAGE/modules/load"
    done
done
[ -s "$STAGE/modules/load" ] || die "no virtio/9p modules found in $KDIR"
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$CACHE/initramfs.tmp"
mv "$CACHE/initramfs.tmp" "$CACHE/initramfs.cpio.gz"
cp "$KDIR/boot/vmlinuz-$KVER" "$CACHE/vmlinuz.tmp"
mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
ln -sfn "$KVER" "$CACHE/kernel"
echo "$KVER" >"$CACHE/kernel-version"
echo "$STAMP_KEY $KVER" >"$CACHE/ready"
echo "prepare-vm: guest kernel $KVER ready in $CACHE" >&2
