#!/usr/bin/env bash
# Builds the three sides of the benchmark and runs them side by side:
# zeroguard (release), libzmq (Debian's, through the project's own peer) and
# zmq.rs (the zeromq crate), plus raw TCP as the ceiling.
# Usage: scripts/bench.sh [--rounds N] [--quick] [--transport tcp|ipc] [--pin]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -e /usr/include/zmq.h ]; then
  apt-get update -qq && apt-get install -y -qq libzmq3-dev >/dev/null
fi
mkdir -p target/bench
echo "building zeroguard, the libzmq peer, the zmq.rs peer and the raw TCP probe..." >&2
cargo build --quiet --release -p zeroguard-cli
gcc -O2 -o target/bench/libzmq_peer bench/libzmq_peer.c -lzmq
gcc -O2 -o target/bench/raw_tcp bench/raw_tcp.c
cargo build --quiet --release --manifest-path bench/zmqrs-peer/Cargo.toml
exec python3 bench/run.py "$@"
