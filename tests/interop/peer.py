#!/usr/bin/env python3
"""A libzmq peer (through pyzmq) driven by a JSON plan, for interop tests.

argv[1] is the plan (or @FILE holding it): {"type": "PULL", "bind": EP | "connect": EP,
"options": {...}, "steps": [...]}. Frames travel as hex strings. Steps:
  ["recv", N]            receive N messages, print each as {"msg": [hex...]}
  ["send", [[hex...]...]] send each message
  ["echo", N]            receive N messages and send each back
  ["subscribe", hex]     SUB: subscribe
  ["sleep", ms]
  ["wait_line"]          wait for a line on stdin (the test says go)
  ["roundtrips", ms, n]  REQ/DEALER: send an n-byte message and wait for it back, again
                         and again for ms milliseconds; print {"second": [count, max_us]}
                         each second and {"roundtrips": count, "p50_us", "p99_us", "max_us"}
Prints {"endpoint": ...} after binding, {"done": true} at the end.
Exits 3 on a receive timeout (10 s), 1 on bad input."""
import json, sys, time
import zmq

def out(obj):
    print(json.dumps(obj), flush=True)

arg = sys.argv[1]
if arg.startswith("@"):  # large plans come in a file: argv has a size limit
    with open(arg[1:]) as f:
        arg = f.read()
plan = json.loads(arg)
ctx = zmq.Context()
auth = None
if "curve_allow" in plan:
    # pyzmq's own authenticator, reading a directory of public certificates.
    import os, tempfile
    from zmq.auth.thread import ThreadAuthenticator
    certs = tempfile.mkdtemp(prefix="zg-interop-certs-")
    for i, key in enumerate(plan["curve_allow"]):
        with open(os.path.join(certs, f"client{i}.key"), "w") as f:
            f.write(f'metadata\ncurve\n    public-key = "{key}"\n')
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=certs)
if "plain_allow" in plan:
    # pyzmq's authenticator with a password table (libzmq's PLAIN server needs a ZAP handler).
    from zmq.auth.thread import ThreadAuthenticator
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords=plan["plain_allow"])
sock = ctx.socket(getattr(zmq, plan["type"]))
sock.setsockopt(zmq.LINGER, 2000)
sock.setsockopt(zmq.RCVTIMEO, plan.get("timeout_ms", 10000))
for name, value in plan.get("options", {}).items():
    if isinstance(value, str):
        value = value.encode() if name.startswith("CURVE_") else bytes.fromhex(value)
    sock.setsockopt(getattr(zmq, name), value)
if "bind" in plan:
    sock.bind(plan["bind"])
    out({"endpoint": sock.getsockopt_string(zmq.LAST_ENDPOINT)})
else:
    sock.connect(plan["connect"])
try:
    for step in plan["steps"]:
        op = step[0]
        if op == "recv":
            for _ in range(step[1]):
                out({"msg": [f.hex() for f in sock.recv_multipart()]})
        elif op == "send":
            for msg in step[1]:
                sock.send_multipart([bytes.fromhex(f) for f in msg])
        elif op == "echo":
            for _ in range(step[1]):
                sock.send_multipart(sock.recv_multipart())
        elif op == "subscribe":
            sock.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(step[1]))
        elif op == "sleep":
            time.sleep(step[1] / 1000)
        elif op == "wait_line":
            sys.stdin.readline()
        elif op == "roundtrips":
            body = bytes(step[2])
            lat, window = [], []
            start = tick = time.monotonic()
            while time.monotonic() - start < step[1] / 1000:
                t0 = time.monotonic()
                if plan["type"] == "DEALER":
                    sock.send_multipart([b"", body])
                else:
                    sock.send(body)
                sock.recv_multipart()
                us = (time.monotonic() - t0) * 1e6
                lat.append(us)
                window.append(us)
                if time.monotonic() - tick >= 1:
                    out({"second": [len(window), round(max(window))]})
                    window, tick = [], time.monotonic()
            lat.sort()
            out({"roundtrips": len(lat), "p50_us": round(lat[len(lat) // 2]),
                 "p99_us": round(lat[len(lat) * 99 // 100]), "max_us": round(lat[-1])})
        else:
            out({"error": f"unknown step {op}"})
            sys.exit(1)
except zmq.Again:
    out({"error": "timeout"})
    sock.close(linger=0)
    if auth is not None:
        auth.stop()
    ctx.term()
    sys.exit(3)
out({"done": True})
sock.close()
if auth is not None:
    auth.stop()
ctx.term()
