#!/usr/bin/env python3
"""Side-by-side benchmark: zeroguard, libzmq and zmq.rs, alternately, in
one session on one machine, with the semantics of libzmq's perf tools.
Prints progress to stderr and a table of medians and ratios to stdout.

Usage: bench/run.py [--rounds N] [--quick] [--transport tcp|ipc] [--pin]
(scripts/bench.sh builds first)

--pin runs every receiving (binding) process on CPU 1 and every sending
(connecting) one on CPU 0, for all three implementations and raw TCP
alike. Unpinned, the scheduler decides where each process's application
and I/O threads run, and a pair whose sending threads land on different
cores runs at half its pace; pinned, each process keeps its threads on
one core and the comparison no longer depends on where they landed."""
import argparse, os, re, socket, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPLS = {
    "zeroguard": [os.path.join(ROOT, "target/release/zeroguard"), "perf"],
    "libzmq": [os.path.join(ROOT, "target/bench/libzmq_peer")],
    "zmq.rs": [os.path.join(ROOT, "bench/zmqrs-peer/target/release/zmqrs-peer")],
}
# name, kind, size, count, curve, transports
WORKLOADS = [
    ("PUSH/PULL 16 B", "thr", 16, 2_000_000, False),
    ("PUSH/PULL 256 B", "thr", 256, 1_000_000, False),
    ("PUSH/PULL 4 KiB", "thr", 4096, 200_000, False),
    # 4 GiB; the raw TCP probe of each round moves as many bytes.
    ("PUSH/PULL 64 KiB", "thr", 65536, 65_536, False),
    ("REQ/REP 16 B latency", "lat", 16, 20_000, False),
    ("CURVE PUSH/PULL 16 B", "thr", 16, 300_000, True),
    ("CURVE PUSH/PULL 4 KiB", "thr", 4096, 50_000, True),
    ("CURVE REQ/REP 16 B latency", "lat", 16, 10_000, True),
]

# The row whose rounds also measure raw TCP, the ceiling it is compared with.
CEILING_ROW = "PUSH/PULL 64 KiB"

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def endpoint(transport):
    if transport == "ipc":
        return f"ipc:///tmp/zg-bench-{os.getpid()}-{time.monotonic_ns()}.sock"
    return f"tcp://127.0.0.1:{free_port()}"

# CPUs of the receiving and the sending side with --pin (None: unpinned).
PIN = None

def on_cpu(side):
    """What runs a side's process on its CPU, when pinned."""
    if PIN is None:
        return None
    cpu = PIN[side]
    return lambda: os.sched_setaffinity(0, {cpu})

def run_pair(impl, kind, size, count, curve, transport):
    ep = endpoint(transport)
    extra = ["--curve"] if curve else []
    local = IMPLS[impl] + [f"local-{kind}", ep, str(size), str(count)] + extra
    remote = IMPLS[impl] + [f"remote-{kind}", ep, str(size), str(count)] + extra
    l = subprocess.Popen(local, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=on_cpu(0))
    time.sleep(0.3)
    r = subprocess.Popen(remote, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=on_cpu(1))
    try:
        rout, rerr = r.communicate(timeout=120)
        lout, lerr = l.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        l.kill(); r.kill(); l.wait(); r.wait()
        raise RuntimeError(f"{impl} {kind} {size} timed out")
    out = lout + rout
    if kind == "thr":
        m = re.search(r"mean throughput: (\d+) \[msg/s\]", out)
    else:
        m = re.search(r"average latency: ([\d.]+) \[us\]", out)
    if not m or l.returncode or r.returncode:
        raise RuntimeError(f"{impl} {kind} {size}: {lerr}{rerr}".strip())
    return float(m.group(1))

def raw_tcp(total):
    port = str(free_port())
    binary = os.path.join(ROOT, "target/bench/raw_tcp")
    rcv = subprocess.Popen([binary, "recv", port, str(total)], stdout=subprocess.PIPE, text=True,
                           preexec_fn=on_cpu(0))
    time.sleep(0.2)
    subprocess.run([binary, "send", port, str(total)], check=True, preexec_fn=on_cpu(1))
    out, _ = rcv.communicate(timeout=120)
    return float(re.search(r"raw tcp: (\d+)", out).group(1))

def cpu_times():
    """The machine's CPU time counters (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tenth of the counts, one round")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "ipc"])
    ap.add_argument("--pin", action="store_true",
                    help="receiving processes on CPU 1, sending ones on CPU 0 (all implementations)")
    args = ap.parse_args()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs two CPUs")
        global PIN
        PIN = (cpus[1], cpus[0])
    rounds = 1 if args.quick else args.rounds
    results = {}
    times_before = cpu_times()
    for name, kind, size, count, curve in WORKLOADS:
        if args.quick:
            count = max(count // 10, 1000)
        impls = [i for i in IMPLS if not (curve and i == "zmq.rs")]
        if args.transport == "ipc":
            impls = [i for i in impls if i != "zmq.rs"]
        for rnd in range(rounds):
            for impl in impls:
                print(f"[{name}] round {rnd + 1}/{rounds} {impl} ...", file=sys.stderr, end=" ", flush=True)
                try:
                    v = run_pair(impl, kind, size, count, curve, args.transport)
                except RuntimeError as e:
                    print(f"failed: {e}", file=sys.stderr)
                    continue
                results.setdefault((name, impl), []).append(v)
                print(f"{v:,.1f} {'msg/s' if kind == 'thr' else 'us'}", file=sys.stderr)
            if name == CEILING_ROW:
                # The ceiling is measured in the same rounds as the row it
                # bounds (this machine's speed drifts within minutes), and
                # moves the same bytes: a transfer a third as long as the
                # probe's counted its start-up three times as much (64 KiB,
                # 20,000 messages: 69-95 % of raw TCP where 65,536 gave
                # 82-95 %, three pairs).
                print(f"[{name}] round {rnd + 1}/{rounds} raw TCP ...", file=sys.stderr, end=" ", flush=True)
                mbs = raw_tcp(size * count)
                results.setdefault((name, "raw TCP"), []).append(mbs)
                print(f"{mbs:,.0f} MB/s", file=sys.stderr)
    times_after = cpu_times()
    ceilings = results[(CEILING_ROW, "raw TCP")]
    ceiling = statistics.median(ceilings)

    pinned = f", receivers on CPU {PIN[0]} and senders on CPU {PIN[1]}" if PIN else ""
    print(f"\n{args.transport}{pinned}, {rounds} round(s), medians; ratio = zeroguard / other (latency: other / zeroguard, higher is better)\n")
    print("| workload | zeroguard | libzmq | zmq.rs | vs libzmq | vs zmq.rs |")
    print("|---|---|---|---|---|---|")
    for name, kind, size, count, curve in WORKLOADS:
        med = {i: statistics.median(results[(name, i)]) for i in IMPLS if (name, i) in results}
        def fmt(i):
            if i not in med:
                return "—"
            return f"{med[i]:,.0f} msg/s" if kind == "thr" else f"{med[i]:.1f} µs"
        def ratio(i):
            if "zeroguard" not in med or i not in med:
                return "—"
            r = med["zeroguard"] / med[i] if kind == "thr" else med[i] / med["zeroguard"]
            return f"{r:.2f}×"
        print(f"| {name} | {fmt('zeroguard')} | {fmt('libzmq')} | {fmt('zmq.rs')} | {ratio('libzmq')} | {ratio('zmq.rs')} |")
    zg64 = results.get((CEILING_ROW, "zeroguard"), [0])
    med64 = statistics.median(zg64)
    print(f"\nraw TCP loopback (128 KiB writes): {ceiling:,.0f} MB/s; zeroguard at 64 KiB: "
          f"{med64 * 65536 / 1e6:,.0f} MB/s = {med64 * 65536 / 1e6 / ceiling:.0%} of it")
    if len(zg64) == len(ceilings) > 1:
        shares = ", ".join(f"{z * 65536 / 1e6 / c:.0%}" for z, c in zip(zg64, ceilings))
        print(f"round by round, zeroguard against the raw TCP of the same round: {shares}")
    if times_before and times_after and len(times_after) > 7:
        # On a virtual machine, time the host gave to other guests: a
        # run with a large share of it compares the implementations on a
        # machine that changed under them.
        spent = [b - a for a, b in zip(times_before, times_after)]
        print(f"CPU time taken by the host (steal) during the run: {spent[7] / max(sum(spent), 1):.0%}")

if __name__ == "__main__":
    main()
