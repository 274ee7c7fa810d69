#!/usr/bin/env bash
# Leak checks: resident memory after thousands of NULL, CURVE and hostile
# connection cycles stays at its baseline (release build), and valgrind
# reports no definite or indirect leak for a shorter run (debug build).
# Usage: scripts/leak-check.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-5000}
cargo build --quiet --release -p zeroguard --example soak
./target/release/examples/soak "$cycles"
cargo build --quiet -p zeroguard --example soak
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
  ./target/debug/examples/soak 40 --rss-limit-mb 1000
echo "valgrind: no definite or indirect leak"
