#!/usr/bin/env bash
# Brian2's own standalone-compatible test suite on gpu_standalone:
#   bash scripts/brian2-suite.sh BACKEND [WORKERS] [more options of `python -m spikegpu suite`]
# BACKEND: opencl | cuda | auto; WORKERS: pytest-xdist processes (default 2).
# Installs into the virtual environment ($SPIKEGPU_VENV, default .venv) like
# scripts/test.sh, then runs `python -m spikegpu suite`, which writes a summary
# (passed, failed, errors, skipped, failing tests with one-line reasons) to
# build/brian2-suite/brian2-suite-<backend>-brian<version>.{txt,json}.
# Exit status 0 only if no test failed or errored.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: $0 opencl|cuda|auto [WORKERS] [--select test_file.py ...] [--long] [--float32]" >&2
    exit 2
fi
BACKEND="$1"; shift
WORKERS=2
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then WORKERS="$1"; shift; fi

source scripts/venv.sh test
exec "$VENV/bin/python" -m spikegpu suite "$BACKEND" -n "$WORKERS" "$@"
