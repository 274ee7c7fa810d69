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
./target/release/examples/soak "$cycles"
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
