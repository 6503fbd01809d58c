#!/usr/bin/env bash
# Fuzzes VmmSharp with afl-fuzz through SharpFuzz (docs/FUZZING.md).
#   scripts/fuzz.sh TARGET SECONDS    one target (`scripts/fuzz.sh list` names them)
#   scripts/fuzz.sh all SECONDS       every target in turn, SECONDS each
# Builds the harnesses, replays the checked-in corpus without AFL, instruments VmmSharp.dll, then runs afl-fuzz
# on fuzz/corpus/TARGET/ for SECONDS. Exits non-zero on a crash or a hang and prints the input's path and the
# command that replays it. Findings stay in $FUZZ_WORK/findings/TARGET/ (AFL's output folder).
# Environment: FUZZ_TIMEOUT_MS (default 5000): an input running longer is a hang; FUZZ_WORK (default artifacts/fuzz):
# where the instrumented build and the findings go (give long runs their own, so a rebuild does not pull the build
# from under them).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'fuzz: %s\n' "$*"; }
usage() { echo "usage: scripts/fuzz.sh TARGET|all SECONDS   |   scripts/fuzz.sh list" >&2; exit 64; }

[ $# -ge 1 ] || usage
what="$1"
work="${FUZZ_WORK:-$PWD/artifacts/fuzz}"
bin="$work/bin"
findings="$work/findings"
timeout_ms="${FUZZ_TIMEOUT_MS:-5000}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

build() {
    # A fresh folder each time: publish skips files that look up to date, and an instrumented VmmSharp.dll is newer
    # than its source, so it would be left instrumented twice (sharpfuzz refuses that).
    rm -rf "$bin"
    dotnet publish fuzz/VmmSharp.Fuzz -c Release -o "$bin" -v quiet -nologo >/dev/null
}

harness() { dotnet "$bin/VmmSharp.Fuzz.dll" "$@"; }

if [ "$what" = list ]; then
    build
    harness list
    exit 0
fi
[ $# -eq 2 ] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
seconds="$2"
command -v afl-fuzz >/dev/null || { say "afl-fuzz is not installed (Debian: apt-get install afl++)"; exit 1; }

say "building the harnesses"
build
if [ "$what" = all ]; then
    mapfile -t targets < <(harness list)
else
    harness list | grep -qx -- "$what" || { say "unknown target '$what'; the targets are: $(harness list | tr '\n' ' ')"; exit 64; }
    targets=("$what")
fi

# The corpus first, uninstrumented and without AFL: a seed (or a checked-in reproducer) that fails is a regression,
# and this says why, where afl-fuzz would only refuse to start.
for t in "${targets[@]}"; do
    [ -d "fuzz/corpus/$t" ] || { say "no seed corpus fuzz/corpus/$t/ (write it with: dotnet run --project fuzz/VmmSharp.Fuzz -- seeds fuzz/corpus)"; exit 1; }
    harness "$t" "fuzz/corpus/$t" 2>/dev/null || { say "$t: the corpus fails without AFL (a crash, a hang or a refused seed); see: dotnet run -c Release --project fuzz/VmmSharp.Fuzz -- $t fuzz/corpus/$t"; exit 1; }
done

say "instrumenting VmmSharp.dll and vmm.dll (the API's request parsing)"
dotnet tool restore >/dev/null
dotnet tool run sharpfuzz "$bin/VmmSharp.dll" >/dev/null
dotnet tool run sharpfuzz "$bin/vmm.dll" >/dev/null

# afl-fuzz as root in a container: no CPU governor, no core_pattern, no UI, no CPU pinning (the cores are shared);
# dotnet itself is not instrumented (SharpFuzz instruments the managed code), and its start takes a while.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=60000 AFL_BENCH_UNTIL_CRASH=1

status=0
for t in "${targets[@]}"; do
    out="$findings/$t"
    rm -rf "$out"
    mkdir -p "$out"
    say "$t: afl-fuzz for ${seconds} s (log: $out/afl.log)"
    if ! afl-fuzz -i "fuzz/corpus/$t" -o "$out" -V "$seconds" -t "$timeout_ms" -m none -- dotnet "$bin/VmmSharp.Fuzz.dll" "$t" >"$out/afl.log" 2>&1; then
        say "$t: afl-fuzz failed; the end of its log:"
        tail -n 25 "$out/afl.log" >&2
        status=1
        continue
    fi
    stats="$out/default/fuzzer_stats"
    stat() { sed -n "s/^$1 *: *//p" "$stats" 2>/dev/null; }
    found=0
    for dir in crashes hangs; do
        kind="${dir%s}"; kind="${kind%e}" # crash, hang
        for f in "$out/default/$dir"/id:*; do
            [ -e "$f" ] || continue
            found=$((found + 1))
            [ "$found" -le 3 ] || continue # the first few; the rest are in the same folder
            say "$t: $kind: $f"
            say "  replay: dotnet run -c Release --project fuzz/VmmSharp.Fuzz -- $t '$f'"
        done
    done
    say "$t: $(stat execs_done) runs, $(stat corpus_count) inputs in the queue, $(stat saved_crashes) crashes, $(stat saved_hangs) hangs"
    [ "$found" -eq 0 ] || status=1
done
exit "$status"
