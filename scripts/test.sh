#!/usr/bin/env bash
# The project's test command (README and .ci/run both call this file).
# Creates/uses a virtual environment ($SPIKEGPU_VENV, default .venv), installs
# spikegpu with its test and demo extras, and runs, with pytest-xdist in
# $SPIKEGPU_TEST_WORKERS processes (default 2; kernels are shared between them
# through the on-disk kernel cache):
#   1. the project's tests (tests/, without those marked slow or cuda);
#   2. again with every step fused into one kernel (SPIKEGPU_FUSE=1), the
#      tests of pass 1 whose networks the fused step kernel would run (one
#      parametrization per test function; SPIKEGPU_FUSED_ALL=1: all)
#      (pass 1 records them: tests/conftest.py, SPIKEGPU_RECORD_FUSABLE); the
#      default on GPUs for small networks, which a CPU device does not pick;
#   3. the part of Brian2's own test suite listed in tests/brian2_suite_ci.txt
#      on this device (python -m spikegpu suite; SPIKEGPU_TEST_SUITE=0 leaves
#      it out; the whole suite: scripts/brian2-suite.sh).
# Extra arguments go to pytest in pass 1, e.g.  bash scripts/test.sh -k info
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh test,demo
PY="$VENV/bin/python"
WORKERS="${SPIKEGPU_TEST_WORKERS:-2}"

# Show the backends and devices found (helps to read a failing run).
"$PY" -m spikegpu info || true

# Fused step kernels (pass 2, and the tests of pass 1 that compare them with
# separate kernels) built without optimisation: PoCL then builds one in ~3 s
# instead of ~50 s (the same IEEE arithmetic; it runs slower, which tests
# do not measure).  The other kernels are built as users get them.
export SPIKEGPU_OPENCL_FUSED_OPTIONS="${SPIKEGPU_OPENCL_FUSED_OPTIONS--cl-opt-disable}"

REC="$(mktemp -d "${TMPDIR:-/tmp}/spikegpu-test.XXXXXX")"
trap 'rm -rf "$REC"' EXIT
t0=$(date +%s)

# 1. pytest exits 5 when it collects no test: that is a failure here as well.
SPIKEGPU_RECORD_FUSABLE="$REC" "$PY" -m pytest -q -n "$WORKERS" -m "not slow and not cuda" "$@" tests
t1=$(date +%s)

# 2. the fused step kernel
# One parametrization of each test function (the others differ in a policy
# or chunking the fused kernel runs the same way; every parametrization runs
# fused on a GPU, where small networks fuse by default): a fused kernel
# costs PoCL seconds to compile.  SPIKEGPU_FUSED_ALL=1 keeps them all.
if [ "${SPIKEGPU_FUSED_ALL:-0}" = 1 ]; then
    mapfile -t FUSABLE < <(cat "$REC"/fusable-*.txt 2>/dev/null | sort -u)
else
    mapfile -t FUSABLE < <(cat "$REC"/fusable-*.txt 2>/dev/null | sort -u |
                           awk '{ f = $0; sub(/\[.*/, "", f); if (!(f in seen)) { seen[f] = 1; print } }')
fi
if [ "${#FUSABLE[@]}" -gt 0 ]; then
    echo "fused pass: ${#FUSABLE[@]} tests whose networks the fused step kernel runs"
    SPIKEGPU_FUSE=1 "$PY" -m pytest -q -n "$WORKERS" "${FUSABLE[@]}"
elif [ "$#" -eq 0 ]; then
    echo "fused pass: no test recorded a network the fused kernel would run" >&2
    exit 1
fi
t2=$(date +%s)

# 3. a part of Brian2's own suite (its summary: build/brian2-suite/)
if [ "${SPIKEGPU_TEST_SUITE:-1}" != 0 ]; then
    "$PY" -m spikegpu suite opencl -n "$WORKERS" --select-file tests/brian2_suite_ci.txt
fi
t3=$(date +%s)
echo "test.sh: tests $((t1 - t0)) s, fused pass $((t2 - t1)) s, Brian2 suite part $((t3 - t2)) s"
