#!/usr/bin/env bash
# Make sure some OpenCL device can build kernels.  The PoCL bundled with the
# PyOpenCL wheel (LLVM 14) cannot target some newer CPUs ("unknown target CPU
# 'generic'"); Debian's pocl-opencl-icd (LLVM 15) can.  Installs it with apt
# when running as root and nothing else works.
PY="${1:-python3}"
probe='import sys
from spikegpu.backends import opencl
sys.exit(0 if any(opencl.device_works(d) for *_, d in opencl.list_devices()) else 1)'
if "$PY" -c "$probe" 2>/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "ensure-opencl: installing Debian's pocl-opencl-icd (CPU OpenCL device)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pocl-opencl-icd >/dev/null 2>&1 || true
fi
"$PY" -c "$probe" || { echo "ensure-opencl: no usable OpenCL device" >&2; exit 1; }
