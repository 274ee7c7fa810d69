#!/usr/bin/env bash
# Leak checks: resident memory after thousands of NULL, CURVE and hostile
# connection cycles stays at its baseline (release build); the attack
# harness, round after round, leaves memory where the first round left it;
# and valgrind reports no definite or indirect leak for shorter runs of
# both (debug build).
# Usage: scripts/leak-check.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-5000}
cargo build --quiet --release -p zeroguard --example soak --example attack
# Resident memory counts what the allocator keeps of freed memory and what
# the buffer caches fill up to (9.5 MiB at most): +2 to +7 MiB over 4,500
# cycles, up to +9 MiB by 24,000, flat from about 30,000. So this bound
# catches only large leaks (16 KiB kept per departed subscriber would be
# 70 MiB); the live-heap check below catches small ones.
./target/release/examples/soak "$cycles" --rss-limit-mb 16
# The live heap, as valgrind's massif samples it, must not rise: its
# floor over the last third of the cycles may exceed its floor over the
# middle third by 64 KiB at most: what is kept per cycle from about 80
# bytes up fails it (valgrind's own threads take turns, so the buffer
# caches stay small there).
heap_log=$(mktemp)
trap 'rm -f "$heap_log"' EXIT
valgrind --quiet --tool=massif --massif-out-file="$heap_log" --time-unit=ms --max-snapshots=100 \
  ./target/release/examples/soak 2500 --rss-limit-mb 1000 >/dev/null
python3 - "$heap_log" <<'PY'
import re, sys
samples, t = [], None
for line in open(sys.argv[1]):
    if m := re.match(r"time=(\d+)", line):
        t = int(m.group(1))
    elif m := re.match(r"mem_heap_B=(\d+)", line):
        heap = int(m.group(1))
    elif m := re.match(r"mem_heap_extra_B=(\d+)", line):
        samples.append((t, heap + int(m.group(1))))
end = max(t for t, _ in samples)
middle = min(h for t, h in samples if end / 3 <= t < 2 * end / 3)
last = min(h for t, h in samples if t >= 2 * end / 3)
print(f"live heap (massif, 2500 cycles): floor {middle // 1024} KiB over the middle third, {last // 1024} KiB over the last")
if last - middle > 64 * 1024:
    sys.exit(f"the live heap rose by {(last - middle) // 1024} KiB: something is kept per cycle")
PY
cargo build --quiet -p zeroguard --example soak --example attack
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
  ./target/debug/examples/soak 40 --rss-limit-mb 1000
echo "valgrind (soak): no definite or indirect leak"
# GLIBC_TUNABLES set here keeps the harness from re-running itself, which
# valgrind would not follow. Bounds are loose: valgrind is ~50x slower.
# --fair-sched=yes: valgrind runs one thread at a time, and by default may
# hand the CPU back to the thread that just had it for seconds on end; the
# harness times round trips across threads, so they take turns as the
# kernel would give them.
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536 \
  valgrind --quiet --fair-sched=yes --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
  ./target/debug/examples/attack --curve --seconds 3 --rounds 1 --stalled 100 --rtt-limit-ms 60000 --rss-limit-mb 1000
echo "valgrind (attack harness, CURVE): no definite or indirect leak"
