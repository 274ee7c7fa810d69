#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: well-formed sessions and
near-misses, so the fuzzer starts from deep inside the protocol."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def greeting(mech, as_server, minor=1):
    g = bytearray(64)
    g[0] = 0xFF; g[8] = 1; g[9] = 0x7F; g[10] = 3; g[11] = minor
    g[12:12 + len(mech)] = mech
    g[32] = as_server
    return bytes(g)

def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body

def prop(name, value):
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value

def command(name, data=b""):
    return frame(bytes([len(name)]) + name + data, command=True)

def ready(socket_type, identity=None, name=b"READY"):
    md = prop(b"Socket-Type", socket_type)
    if identity is not None:
        md += prop(b"Identity", identity)
    return command(name, md)

def hello(user, password):
    return command(b"HELLO", bytes([len(user)]) + user + bytes([len(password)]) + password)

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

NULL, PLAIN = b"NULL", b"PLAIN"
ping = command(b"PING", b"\x00\x64ctx")
msgs = frame(b"", more=True) + frame(b"hello") + frame(b"x" * 300) + ping

write("greeting", "null", greeting(NULL, 0))
write("greeting", "plain-server", greeting(PLAIN, 1))
write("greeting", "plain-client", greeting(PLAIN, 0))
write("greeting", "zmtp30", greeting(NULL, 0, minor=0))
write("greeting", "zmtp20", bytes([0xFF] + [0] * 7 + [1, 0x7F, 1, 5, 0, 0]))
write("greeting", "zmtp10", b"\x01\x00\x05\x00hello")

write("frame_decoder", "mixed", b"\x03" + msgs + ready(b"PUB"))
write("frame_decoder", "long", b"\x40" + frame(b"y" * 9000, more=True) + frame(b"z"))
write("frame_decoder", "oversize", b"\x01\x02" + struct.pack(">Q", 1 << 40))

write("commands", "ready", ready(b"DEALER", b"id")[2:])
write("commands", "ping", b"\x04PING\x00\x10abc")
write("commands", "hello", hello(b"admin", b"secret")[2:])
write("commands", "error", b"\x05ERROR\x03400")
write("commands", "metadata", prop(b"Socket-Type", b"ROUTER") + prop(b"X-Key", b"v"))

server = {
    0: greeting(NULL, 0) + ready(b"DEALER", b"peer") + msgs,
    1: greeting(NULL, 0) + ready(b"SUB") + command(b"SUBSCRIBE", b"topic") + frame(b"\x01old") + command(b"CANCEL", b"topic"),
    2: greeting(PLAIN, 0) + hello(b"admin", b"secret") + ready(b"REQ", b"", name=b"INITIATE") + msgs,
    3: greeting(PLAIN, 0) + hello(b"", b"") + ready(b"PUSH", name=b"INITIATE") + msgs,
}
for sel, data in server.items():
    write("connection_server", f"session{sel}", bytes([sel]) + data)
    # Same session fed 10 bytes at a time (the chunk size lives in bits 2-6).
    write("connection_server", f"session{sel}-chunked", bytes([sel + 4 * 9]) + data)
# Bit 7 makes the first authentication request be refused.
write("connection_server", "refused", bytes([0x80]) + server[0])

client = {
    0: greeting(NULL, 0) + ready(b"ROUTER", b"") + msgs,
    1: greeting(NULL, 0) + ready(b"PUB") + msgs,
    2: greeting(PLAIN, 1) + command(b"WELCOME") + ready(b"REP") + msgs,
    3: greeting(PLAIN, 1) + command(b"ERROR", b"\x03400"),
}
for sel, data in client.items():
    write("connection_client", f"session{sel}", bytes([sel]) + data)

write("z85", "hello", b"HelloWorld")
write("z85", "key", b"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
write("z85", "overflow", b"#####")
