#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), starting from the
# committed seed corpora, and prints each target's execution count.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(greeting frame_decoder commands connection_server connection_client curve_server curve_client certificate zap_reply endpoint z85)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly flags; this lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O >/dev/null
for t in "${targets[@]}"; do
  # Work on a copy so the committed seeds stay small and reviewable.
  work=$(mktemp -d)
  cp corpus/"$t"/* "$work"/
  log=$(mktemp)
  if ! cargo fuzz run -O "$t" "$work" -- -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t FAILED (crash input under fuzz/artifacts/$t)"
    exit 1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "fuzz: $t ok, ${execs:-?} executions in ${seconds}s"
  if [ "$t" = connection_server ]; then
    # Bounce: replay (a sample of) what the run found against a real socket
    # over TCP; after every input a normal peer must complete a round trip.
    bounce=$(mktemp -d)
    find "$work" -maxdepth 1 -type f | shuf -n 300 --random-source=<(yes) | xargs -r cp -t "$bounce"
    if ! (cd .. && ZEROGUARD_BOUNCE_DIRS="$bounce" cargo test --quiet -p zeroguard --test hostile \
      fuzz_inputs_replayed_leave_the_socket_serving -- --nocapture) >"$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzz: bounce after $t FAILED"
      exit 1
    fi
    echo "fuzz: bounce ok ($(ls "$bounce" | wc -l) inputs from the run, each followed by a round trip)"
    rm -rf "$bounce"
  fi
  rm -rf "$work" "$log"
done
