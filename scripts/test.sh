#!/usr/bin/env bash
# The project's test command (README and .ci/run both call this file).
# Creates/uses a virtual environment ($SPIKEGPU_VENV, default .venv), installs
# spikegpu with its test and demo extras, and runs the fast test suite.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k info
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh test,demo

# Show the backends and devices found (helps to read a failing run).
"$VENV/bin/python" -m spikegpu info || true

# pytest exits 5 when it collects no test: that is a failure here as well.
"$VENV/bin/python" -m pytest -q -m "not slow and not cuda" "$@" tests
# Again with every step fused into one kernel where possible: the default
# for small networks on GPUs, which a CPU device does not pick by itself.
SPIKEGPU_FUSE=1 exec "$VENV/bin/python" -m pytest -q -m "not slow and not cuda" "$@" tests
