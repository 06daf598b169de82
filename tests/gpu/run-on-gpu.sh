#!/usr/bin/env bash
# Run on the lent GPU machine (CI has no GPU).  From the repo root, after the
# kit is staged (bash ../shared/gpu/stage.sh) and carried as .gpu:
#   source .gpu/gpu/setup-gpu.sh || exit 1; bash tests/gpu/run-on-gpu.sh [what...]
# what: info tests demo bench (default: all).  Output files go to $OUT if set.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/spikegpu-out}"; mkdir -p "$OUT"
what="${*:-info tests demo bench}"
rc=0
for w in $what; do
  case "$w" in
    info)  python3 -m spikegpu info || rc=1 ;;
    tests) SPIKEGPU_TEST_BACKENDS=cuda,opencl python3 -m pytest -q -p no:warnings \
               -p no:cacheprovider -m "not slow" tests 2>&1 | tee "$OUT/tests.log" | tail -40
           [ "${PIPESTATUS[0]}" = 0 ] || rc=1 ;;
    demo)  SPIKEGPU_BACKEND=cuda python3 examples/demo.py "$OUT/raster-cuda.png" || rc=1 ;;
    bench) ANCHOR_THREADS=${ANCHOR_THREADS:-2} python3 benchmarks/step_overhead.py --backends cuda,opencl --anchors \
               --json "$OUT/step_overhead.json" ${BENCH_ARGS:-} || rc=1 ;;
  esac
done
exit $rc
