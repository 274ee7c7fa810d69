#!/usr/bin/env bash
# Creates .venv with pyzmq, whose wheel bundles libzmq 4.3.5 with CURVE.
# The interop tests use it as the reference peer.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c 'import zmq' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'pyzmq>=26,<28'
fi
.venv/bin/python -c 'import zmq; print("pyzmq", zmq.__version__, "libzmq", zmq.zmq_version(), "curve", zmq.has("curve"))'
