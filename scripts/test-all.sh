#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine with a Rust toolchain:
# formatting, lints, docs, unit/property/integration tests (including the
# interop tests against libzmq through pyzmq), and a short fuzz smoke run.
#
# Usage: scripts/test-all.sh            (FUZZ_SECONDS=N to fuzz longer, 0 to skip)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "python venv with pyzmq (libzmq 4.3.5 bundled) for interop tests"
scripts/python-env.sh
export ZEROGUARD_PYTHON="$PWD/.venv/bin/python"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
cargo test --workspace

step "examples (one per pattern) and the demo"
for example in crates/zeroguard/examples/*.rs; do
  name=$(basename "$example" .rs)
  case "$name" in soak|attack|idle) continue ;; esac  # run below (idle: by hand, 10 000 connections)
  timeout 60 cargo run --quiet -p zeroguard --example "$name" >/dev/null
  echo "example $name ok"
done
timeout 60 cargo run --quiet -p zeroguard-cli -- demo >/dev/null
echo "demo ok"

step "attack harness, short run (NULL, then CURVE)"
cargo build --quiet --release -p zeroguard --example attack
./target/release/examples/attack --seconds 5 --rounds 2
./target/release/examples/attack --seconds 5 --rounds 2 --curve

step "leak check (memory back to baseline; valgrind)"
scripts/leak-check.sh 5000

fuzz_seconds=${FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" != 0 ]; then
  step "fuzz smoke (${fuzz_seconds}s per target)"
  fuzz/run.sh "$fuzz_seconds"
fi
