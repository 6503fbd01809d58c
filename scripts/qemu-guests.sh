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
exit $fail
