#!/usr/bin/env bash
# Reference run of the test guests under QEMU: builds tests/guests, boots each guest, and checks
# the lines and exit status the VMM's tests expect. Usage: scripts/qemu-guests.sh [tcg|kvm]
# (kvm uses -cpu host,-arch-capabilities, needed on this PVM host). Needs qemu-system-x86.
set -euo pipefail
ACCEL="${1:-tcg}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing: apt-get install qemu-system-x86" >&2; exit 1; }
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
make -s -C "$ROOT/tests/guests" OUT="$WORK"
printf 'Hello module!\nsecond line of the module\n' > "$WORK/mod.txt"
accel=(-accel tcg); [[ "$ACCEL" == kvm ]] && accel=(-accel kvm -cpu host,-arch-capabilities)
fail=0
run() { # name expect-line... -- qemu args
    local name="$1"; shift; local -a expect=()
    while [[ "$1" != -- ]]; do expect+=("$1"); shift; done; shift
    local start end st=0
    start=$(date +%s%N)
    (cd "$WORK" && timeout 120 qemu-system-x86_64 "${accel[@]}" -m 128 -display none -no-reboot -monitor none \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial stdio "$@") > "$WORK/$name.log" 2>&1 || st=$?
    end=$(date +%s%N)
    local ok=1
    [[ "$st" == 1 ]] || ok=0
    for e in "${expect[@]}"; do grep -qxF -- "$e" "$WORK/$name.log" || { echo "  missing line: $e"; ok=0; }; done
    printf '%-10s status=%s %4d ms %s\n' "$name" "$st" $(( (end - start) / 1000000 )) "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
    [[ $ok == 1 ]] || { sed 's/^/  | /' "$WORK/$name.log"; fail=1; }
}
run multiboot "MB magic=2badb002" "MB cmdline=multiboot.elf hello world" "MB mods=1" \
    "MB mod0 start=0x107000 end=0x107028 size=0x28 sum=82e16790 first=Hello module!.se" \
    "MB mod0 cmdline=mod.txt modarg=1" "SMP cpus=2" "DONE" \
    -- -kernel multiboot.elf -initrd "mod.txt modarg=1" -append "hello world" -smp 2
run pvh "PVH cmdline=hello world" "PVH mods=1" "DONE" \
    -- -kernel pvh.elf -initrd mod.txt -append "hello world" -smp 2
run marker "VMM-MARKER" -- -kernel marker.elf
# The virtio test guest on QEMU's own virtio-mmio devices (microvm, found through its DSDT): a reference for our devices.
truncate -s 4M "$WORK/disk.img"; printf 'READ-ONLY DISK!!' > "$WORK/ro.img"; truncate -s 64K "$WORK/ro.img"
run virtio "VIRTIO discover=acpi found=3" "BLK 0 id status=0 serial=QEMU-SERIAL" \
    "BLK 0 write sectors=8192 requests=32 inflight=4 errors=0" "BLK 0 flush status=0" \
    "BLK 0 read sectors=8192 requests=32 inflight=4 indirect=1 errors=0 mismatches=0" \
    "BLK 1 ro write status=1" "BLK 1 ro read status=0 first=READ-ONLY DISK!!" "RNG ok" "DONE" \
    -- -M microvm,acpi=on -global virtio-mmio.force-legacy=false -kernel virtio.elf -append "blk rng" \
    -drive id=d0,file=disk.img,format=raw,if=none -device virtio-blk-device,drive=d0,serial=QEMU-SERIAL \
    -drive id=d1,file=ro.img,format=raw,if=none,readonly=on -device virtio-blk-device,drive=d1 -device virtio-rng-device
exit $fail
