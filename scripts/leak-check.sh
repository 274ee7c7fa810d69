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
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536 \
  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
  ./target/debug/examples/attack --curve --seconds 3 --rounds 1 --stalled 100 --rtt-limit-ms 60000 --rss-limit-mb 1000
echo "valgrind (attack harness, CURVE): no definite or indirect leak"
