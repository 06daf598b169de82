#!/usr/bin/env bash
# The project's demo command: runs examples/demo.py (4000 neurons, 1 s) on the
# GPU device and writes the raster plot to raster.png (or to the path given).
# Backend: SPIKEGPU_BACKEND=auto|cuda|opencl (default auto).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh demo
exec "$VENV/bin/python" examples/demo.py "${1:-raster.png}"
