#!/usr/bin/env bash
# Builds the Linux test guest from Debian packages:
#   <out>/bzImage            Debian's linux-image-amd64 kernel (copy of /boot/vmlinuz-*)
#   <out>/vmlinux            the uncompressed ELF inside it (for PVH boot; checked for the PVH note)
#   <out>/initramfs.cpio.gz  busybox-static, the kernel package's virtio, vsock and ext4 modules with their
#                            dependencies, a static vsock client, and an /init that prints VMMSHARP-INIT-OK, loads
#                            the modules, mounts /dev/vda (reads from-host.txt, writes from-guest.txt), talks to the
#                            host over vsock (port 5000), prints VMMSHARP-GUEST-DONE and powers off
# Usage: scripts/linux-guest.sh [out-dir]   (default: artifacts/linux-guest)
# Idempotent: installs packages only when missing, rewrites the outputs in place. Needs root for apt-get.
set -euo pipefail

OUT="${1:-artifacts/linux-guest}"
MARKER="VMMSHARP-INIT-OK"

say() { printf 'linux-guest: %s\n' "$*" >&2; }
die() { printf 'linux-guest: error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
# ensure_pkg PACKAGE [COMMAND]: installs the Debian package when it (or the command) is missing.
ensure_pkg() {
    local pkg="$1" cmd="${2:-}"
    if [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null 2>&1; then return 0; fi
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        [[ -z "$cmd" ]] && return 0
        command -v "$cmd" >/dev/null 2>&1 && return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "package '$pkg' is missing and installing it needs root: sudo apt-get install -y $pkg"
    if [[ "$APT_UPDATED" == 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    say "installing $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2
}

ensure_pkg linux-image-amd64
ensure_pkg busybox-static
ensure_pkg cpio cpio
ensure_pkg gzip gzip
ensure_pkg binutils readelf
ensure_pkg kmod modprobe
ensure_pkg gcc gcc
ensure_pkg libc6-dev

HERE="$(cd "$(dirname "$0")" && pwd)"
# What /init loads, in this order; modprobe adds each one's dependencies (and ext4's crc32c soft dependency) before it.
MODULES=(virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net virtio_console virtio-rng
         vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport ext4)
VSOCK_PORT=5000

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- bzImage: the newest installed Debian kernel -------------------------------------------
KERNEL="$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -n "$KERNEL" && -f "$KERNEL" ]] || die "no /boot/vmlinuz-* after installing linux-image-amd64"
KVER="${KERNEL#/boot/vmlinuz-}"
[[ -d "/lib/modules/$KVER/kernel" ]] || die "no /lib/modules/$KVER for $KERNEL: is its linux-image package complete?"
cp "$KERNEL" "$WORK/bzImage"
mv -f "$WORK/bzImage" "$OUT/bzImage"
say "bzImage <- $KERNEL ($(stat -c %s "$OUT/bzImage") bytes)"

# --- vmlinux: decompress the payload the boot header points at -------------------------------
u8()  { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
[[ "$(dd if="$OUT/bzImage" bs=1 skip=$((0x202)) count=4 status=none)" == "HdrS" ]] \
    || die "$KERNEL has no Linux boot header (HdrS at 0x202): not a bzImage"
setup_sects="$(u8 "$OUT/bzImage" $((0x1f1)))"; [[ "$setup_sects" == 0 ]] && setup_sects=4
payload_offset="$(u32 "$OUT/bzImage" $((0x248)))"
payload_length="$(u32 "$OUT/bzImage" $((0x24c)))"
[[ "$payload_length" -gt 0 ]] || die "boot header has no payload_length (boot protocol < 2.08?)"
start=$(( (setup_sects + 1) * 512 + payload_offset ))
dd if="$OUT/bzImage" of="$WORK/payload" bs=4M iflag=skip_bytes,count_bytes skip="$start" count="$payload_length" status=none
magic="$(od -An -tx1 -N6 "$WORK/payload" | tr -d ' \n')"
case "$magic" in
    fd377a585a00*) fmt=xz;    ensure_pkg xz-utils xz; dec=(xz -dc --single-stream) ;;
    28b52ffd*)     fmt=zstd;  ensure_pkg zstd zstd;   dec=(zstd -dcq) ;;
    1f8b*)         fmt=gzip;                          dec=(gzip -dc) ;;
    02214c18*)     fmt=lz4;   ensure_pkg lz4 lz4;     dec=(lz4 -dcq) ;;
    425a68*)       fmt=bzip2; ensure_pkg bzip2 bzip2; dec=(bzip2 -dc) ;;
    5d0000*)       fmt=lzma;  ensure_pkg xz-utils xz; dec=(xz -dc --format=lzma) ;;
    *) die "unknown compressed payload magic '$magic' at offset $start of $KERNEL" ;;
esac
say "payload: $fmt, $payload_length bytes at offset $start"
# Kbuild appends the uncompressed size (le32) to most payloads; retry without those 4 bytes
# when the decompressor rejects the trailing data.
if ! "${dec[@]}" < "$WORK/payload" > "$WORK/vmlinux" 2>"$WORK/dec.err"; then
    head -c $((payload_length - 4)) "$WORK/payload" > "$WORK/payload.trimmed"
    "${dec[@]}" < "$WORK/payload.trimmed" > "$WORK/vmlinux" 2>>"$WORK/dec.err" \
        || die "$fmt decompression failed: $(cat "$WORK/dec.err")"
fi
[[ "$(head -c 4 "$WORK/vmlinux" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]] \
    || die "decompressed payload is not an ELF file"
size_append="$(u32 "$WORK/payload" $((payload_length - 4)))"
[[ "$size_append" == "$(stat -c %s "$WORK/vmlinux")" ]] && say "vmlinux size matches the payload's appended size ($size_append)"
mv -f "$WORK/vmlinux" "$OUT/vmlinux"
if readelf -nW "$OUT/vmlinux" | grep -qE '^\s*Xen\s.*(PHYS32_ENTRY|\(0x00000012\))'; then
    say "vmlinux: ELF with the PVH note (Xen, XEN_ELFNOTE_PHYS32_ENTRY = 18)"
else
    say "WARNING: vmlinux has NO PVH note (XEN_ELFNOTE_PHYS32_ENTRY): it cannot be booted through PVH; use bzImage"
fi

# --- initramfs: busybox-static and a tiny /init ---------------------------------------------
BUSYBOX=/bin/busybox
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX missing although busybox-static is installed"
if ! file_out="$(LC_ALL=C readelf -lW "$BUSYBOX" 2>/dev/null)" || grep -q 'INTERP' <<<"$file_out"; then
    die "$BUSYBOX is not a static executable (is busybox-static installed, not busybox?)"
fi
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,root,tmp}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in sh mount umount echo cat ls mkdir poweroff reboot halt sleep insmod sync test '[' seq wc; do
    ln -s busybox "$ROOT/bin/$applet"
done
if [[ "$(id -u)" == 0 ]]; then
    mknod -m 600 "$ROOT/dev/console" c 5 1
    mknod -m 666 "$ROOT/dev/null" c 1 3
fi
# --- the kernel package's modules, with their dependencies in load order ---------------------------------------
mkdir -p "$ROOT/lib/modules"
: > "$ROOT/lib/modules/order"
declare -A SEEN=()
for m in "${MODULES[@]}"; do
    deps="$(modprobe -S "$KVER" --show-depends "$m" 2>&1)" || die "modprobe -S $KVER --show-depends $m: $deps"
    while read -r verb path _; do
        [[ "$verb" == insmod ]] || continue     # "builtin NAME": nothing to load
        name="$(basename "$path")"
        [[ -n "${SEEN[$name]:-}" ]] && continue
        SEEN[$name]=1
        case "$name" in
            *.ko)     cp "$path" "$ROOT/lib/modules/$name" ;;
            *.ko.xz)  ensure_pkg xz-utils xz; xz -dc "$path" > "$ROOT/lib/modules/${name%.xz}"; name="${name%.xz}" ;;
            *.ko.zst) ensure_pkg zstd zstd; zstd -dcq "$path" > "$ROOT/lib/modules/${name%.zst}"; name="${name%.zst}" ;;
            *) die "module file $path: unknown compression" ;;
        esac
        printf '%s\n' "$name" >> "$ROOT/lib/modules/order"
    done <<<"$deps"
done
say "modules: $(paste -sd' ' "$ROOT/lib/modules/order")"

# --- the vsock client (busybox has no AF_VSOCK) ----------------------------------------------------------------
gcc -static -O2 -o "$ROOT/bin/vsock-hello" "$HERE/linux-guest/vsock-hello.c" || die "building $HERE/linux-guest/vsock-hello.c failed"
mkdir -p "$ROOT/mnt"

cat > "$ROOT/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
echo "$MARKER"
for m in \$(cat /lib/modules/order); do
    insmod /lib/modules/\$m || echo "VMMSHARP-MODULE-FAIL \$m"
done
echo "VMMSHARP-MODULES-LOADED \$(cat /lib/modules/order | wc -l)"
for i in \$(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
if [ -b /dev/vda ] && mount -t ext4 /dev/vda /mnt; then
    echo "VMMSHARP-DISK-READ \$(cat /mnt/from-host.txt)"
    echo "written by the guest's /init" > /mnt/from-guest.txt
    sync
    umount /mnt && echo "VMMSHARP-DISK-WRITTEN"
else
    echo "VMMSHARP-DISK-NONE"
fi
/bin/vsock-hello $VSOCK_PORT "hello from the guest's /init"
echo "VMMSHARP-GUEST-DONE"
/bin/busybox poweroff -f
INIT
chmod 755 "$ROOT/init"
find "$ROOT" -exec touch -h -d @0 {} +
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
    | gzip -n -9 > "$WORK/initramfs.cpio.gz"
mv -f "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
say "initramfs.cpio.gz: $(stat -c %s "$OUT/initramfs.cpio.gz") bytes (init prints $MARKER, loads $(wc -l < "$ROOT/lib/modules/order") modules, uses the disk and vsock, then poweroff -f)"
say "done: $OUT/{bzImage,vmlinux,initramfs.cpio.gz}"
