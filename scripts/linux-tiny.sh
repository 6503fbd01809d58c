#!/usr/bin/env bash
# Builds VmmSharp's small Linux test kernel from Debian's linux-source-6.1 package:
#   <out>/vmlinux            tinyconfig + scripts/linux-tiny/tiny.config (ELF with the PVH note: `vmm run --kernel`)
#   <out>/vmlinux-acpi       the same + scripts/linux-tiny/acpi.config (devices found through the DSDT)
#   <out>/bzImage, <out>/bzImage-acpi, <out>/config, <out>/config-acpi (the final .config of each)
#   <out>/initramfs.cpio     /init (scripts/linux-tiny/init.c, a few hundred bytes of code) that prints
#                            VMMSHARP-INIT-OK and powers off; small and uncompressed because where CPL0 code is emulated,
#                            unpacking a 2 MB busybox costs minutes
# Usage: scripts/linux-tiny.sh [out-dir]   (default: artifacts/linux-tiny)
# Each build is cached in <out>/<key>/, key = sha256 of the fragments, the source package's version, the compiler's
# and RECIPE (bump it when the way a kernel is built here changes); a build whose key is there is not run again. Needs root for apt-get when packages are missing.
# Environment: LINUX_TINY_JOBS (make -j, default: the number of CPUs).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-artifacts/linux-tiny}"
FRAGMENTS="$HERE/linux-tiny"
SOURCE_PACKAGE=linux-source-6.1
SOURCE_TARBALL=/usr/src/linux-source-6.1.tar.xz
MARKER="VMMSHARP-INIT-OK"
JOBS="${LINUX_TINY_JOBS:-$(nproc)}"
RECIPE=1

say() { printf 'linux-tiny: %s\n' "$*" >&2; }
die() { printf 'linux-tiny: error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
# ensure_pkg PACKAGE [COMMAND]: installs the Debian package when it (or the command) is missing.
ensure_pkg() {
    local pkg="$1" cmd="${2:-}"
    if [[ -n "$cmd" ]]; then
        command -v "$cmd" >/dev/null 2>&1 && return 0
    elif dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        return 0
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

[[ -f "$SOURCE_TARBALL" ]] || ensure_pkg "$SOURCE_PACKAGE"
[[ -f "$SOURCE_TARBALL" ]] || die "$SOURCE_TARBALL is missing after installing $SOURCE_PACKAGE"
ensure_pkg gcc gcc
ensure_pkg make make
ensure_pkg binutils ld
ensure_pkg libc6-dev
ensure_pkg bc bc
ensure_pkg bison bison
ensure_pkg flex flex
ensure_pkg libelf-dev
ensure_pkg libssl-dev
ensure_pkg xz-utils xz
ensure_pkg perl perl

VERSION="$(dpkg-query -W -f='${Version}' "$SOURCE_PACKAGE" 2>/dev/null || true)"
[[ -n "$VERSION" ]] || die "cannot tell the version of $SOURCE_PACKAGE (dpkg-query); is it installed through apt?"
for f in tiny.config acpi.config; do [[ -f "$FRAGMENTS/$f" ]] || die "config fragment $FRAGMENTS/$f is missing"; done

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# --- the source tree: extracted once per package version, shared by every build --------------------
SRC="$OUT/src/$VERSION/linux-source-6.1"
if [[ ! -f "$SRC/.vmmsharp-extracted" ]]; then
    say "extracting $SOURCE_TARBALL ($SOURCE_PACKAGE $VERSION)"
    rm -rf "$OUT/src/$VERSION"
    mkdir -p "$OUT/src/$VERSION"
    tar -xJf "$SOURCE_TARBALL" -C "$OUT/src/$VERSION"
    [[ -f "$SRC/Makefile" ]] || die "$SOURCE_TARBALL did not unpack to linux-source-6.1/"
    touch "$SRC/.vmmsharp-extracted"
fi

# check_config CONFIG FRAGMENT...: every "CONFIG_X=v" line must be in CONFIG as written, every
# "# CONFIG_X is not set" must not be set to y or m there. Kconfig drops an option whose dependencies are
# missing without a word; this is where that becomes an error.
check_config() {
    local config="$1"; shift
    local missing=() line name
    while IFS= read -r line; do
        if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            grep -qxF "$line" "$config" || missing+=("$line (have: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$config" || echo 'absent'))")
        elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            name="${BASH_REMATCH[1]}"
            if grep -qE "^$name=[ym]$" "$config"; then missing+=("$line (have: $(grep -E "^$name=" "$config"))"); fi
        fi
    done < <(cat "$@")
    if [[ ${#missing[@]} -gt 0 ]]; then
        printf 'linux-tiny: error: the final .config (%s) does not have what the fragments ask for:\n' "$config" >&2
        printf '  %s\n' "${missing[@]}" >&2
        return 1
    fi
}

# build VARIANT FRAGMENT...: builds (or finds in the cache) one kernel; prints its cache directory.
build() {
    local variant="$1"; shift
    local key dir work started elapsed
    key="$( { printf '%s\n' "$SOURCE_PACKAGE $VERSION" "$(gcc --version | head -n 1)" "recipe $RECIPE" "$variant"
              cat "$@"; } | sha256sum | cut -c1-16)"
    dir="$OUT/$key"
    if [[ -f "$dir/complete" ]]; then
        say "$variant: cached in $dir (key $key)"
        printf '%s\n' "$dir"
        return 0
    fi
    work="$OUT/build-$variant"
    mkdir -p "$work"
    say "$variant: configuring in $work (tinyconfig + $(for f in "$@"; do basename "$f"; done | paste -sd+))"
    make -s -C "$SRC" O="$work" ARCH=x86_64 tinyconfig >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; die "$variant: make tinyconfig failed"; }
    cat "$@" >>"$work/.config"
    make -s -C "$SRC" O="$work" ARCH=x86_64 olddefconfig >>"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; die "$variant: make olddefconfig failed"; }
    check_config "$work/.config" "$@" || die "$variant: a wanted option was dropped (missing dependency?); fix the fragment"
    say "$variant: building with make -j$JOBS (log: $work/build.log)"
    started=$(date +%s)
    if ! make -C "$SRC" O="$work" ARCH=x86_64 -j"$JOBS" vmlinux bzImage >"$work/build.log" 2>&1; then
        tail -n 40 "$work/build.log" >&2
        die "$variant: the kernel build failed (whole log: $work/build.log)"
    fi
    elapsed=$(( $(date +%s) - started ))
    readelf -nW "$work/vmlinux" | grep -qE '^\s*Xen\s.*(PHYS32_ENTRY|\(0x00000012\))' \
        || die "$variant: vmlinux has no PVH note (XEN_ELFNOTE_PHYS32_ENTRY): is CONFIG_PVH set?"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    cp "$work/vmlinux" "$dir.tmp/vmlinux"
    cp "$work/arch/x86/boot/bzImage" "$dir.tmp/bzImage"
    cp "$work/.config" "$dir.tmp/config"
    printf '%s\n' "$SOURCE_PACKAGE $VERSION" "variant $variant" "built in ${elapsed}s with make -j$JOBS" >"$dir.tmp/key"
    touch "$dir.tmp/complete"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    say "$variant: built in ${elapsed}s with make -j$JOBS: $(stat -c %s "$dir/vmlinux") bytes vmlinux, cached in $dir"
    printf '%s\n' "$dir"
}

# publish CACHEDIR SUFFIX: copies a build's outputs to <out>/vmlinux<suffix> and friends (atomically each).
publish() {
    local dir="$1" suffix="$2" f
    for f in vmlinux bzImage config; do
        cp "$dir/$f" "$OUT/.$f$suffix.tmp"
        mv -f "$OUT/.$f$suffix.tmp" "$OUT/$f$suffix"
    done
}

# Assignments, so that a failed build stops the script (set -e ignores a failing substitution in an argument).
tiny_dir="$(build tiny "$FRAGMENTS/tiny.config")"
acpi_dir="$(build acpi "$FRAGMENTS/tiny.config" "$FRAGMENTS/acpi.config")"
publish "$tiny_dir" ""
publish "$acpi_dir" "-acpi"

# --- initramfs: /init from scripts/linux-tiny/init.c and /dev/console, packed by the kernel's own gen_init_cpio ------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
gcc -static -nostdlib -Os -fno-pie -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables -Wl,--build-id=none \
    -o "$WORK/init" "$FRAGMENTS/init.c" || die "building /init from $FRAGMENTS/init.c failed"
gcc -O2 -o "$WORK/gen_init_cpio" "$SRC/usr/gen_init_cpio.c" || die "building the kernel's usr/gen_init_cpio failed"
cat > "$WORK/list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init $WORK/init 0755 0 0
LIST
"$WORK/gen_init_cpio" -t 0 "$WORK/list" > "$OUT/.initramfs.cpio.tmp" || die "gen_init_cpio failed"
mv -f "$OUT/.initramfs.cpio.tmp" "$OUT/initramfs.cpio"
say "initramfs.cpio: $(stat -c %s "$OUT/initramfs.cpio") bytes (/init prints $MARKER, then powers off)"
say "done: $OUT/{vmlinux,vmlinux-acpi,bzImage,bzImage-acpi,config,config-acpi,initramfs.cpio}"
