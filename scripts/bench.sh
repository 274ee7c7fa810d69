#!/usr/bin/env bash
# Builds the three sides of the benchmark and runs them side by side:
# zeroguard (release), libzmq (Debian's, through the project's own peer) and
# zmq.rs (the zeromq crate), plus raw TCP as the ceiling; where the CPU has
# AVX2, also a zeroguard build with it for the CURVE rows.
# Usage: scripts/bench.sh [--rounds N] [--quick] [--transport tcp|ipc]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -e /usr/include/zmq.h ]; then
  apt-get update -qq && apt-get install -y -qq libzmq3-dev >/dev/null
fi
mkdir -p target/bench
echo "building zeroguard, the libzmq peer, the zmq.rs peer and the raw TCP probe..." >&2
cargo build --quiet --release -p zeroguard-cli
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  # A second build for the CURVE rows: Rust picks vector widths when it
  # compiles, while libsodium (inside libzmq) picks its AVX2 code at run time.
  echo "building zeroguard with AVX2 for the CURVE rows..." >&2
  RUSTFLAGS="-C target-feature=+avx2" cargo build --quiet --release -p zeroguard-cli \
    --target-dir target/bench-avx2
fi
gcc -O2 -o target/bench/libzmq_peer bench/libzmq_peer.c -lzmq
gcc -O2 -o target/bench/raw_tcp bench/raw_tcp.c
cargo build --quiet --release --manifest-path bench/zmqrs-peer/Cargo.toml
exec python3 bench/run.py "$@"
