#!/usr/bin/env bash
# Run on the lent GPU machine (CI has no GPU).  From the repo root, after the
# kit is staged (bash ../shared/gpu/stage.sh) and carried as .gpu:
#   source .gpu/gpu/setup-gpu.sh || exit 1; bash tests/gpu/run-on-gpu.sh [what...]
# what: info probe tests demo bench micro micro1 sidebyside compilers modes spatial spatialnet prop rows ktimes cmdbuf profile suite
# (default: info probe tests demo bench).  Output files go to $OUT if set.
# suite: Brian2's test suite on gpu_standalone with CUDA and with NVIDIA's OpenCL
# (summaries in $OUT/suite; README, "Brian2's test suite").
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/spikegpu-out}"; mkdir -p "$OUT"
what="${*:-info probe tests demo bench}"
rc=0
for w in $what; do
  case "$w" in
    info)  python3 -m spikegpu info || rc=1 ;;
    probe) # the grid form on NVIDIA's OpenCL (its barrier and atomics in inline PTX,
           # the default there; SPIKEGPU_OPENCL_PTX=0 goes back to OpenCL 1.2 atomics
           # and separate launches)
           if timeout 120 env SPIKEGPU_TEST_BACKENDS=opencl python3 -m pytest -q -x \
                  -p no:cacheprovider tests/test_stepkernel.py -k "grid_fused" > "$OUT/probe.log" 2>&1; then
             echo "probe: the OpenCL grid form gives right results here"
           else echo "probe: the OpenCL grid form fails or hangs here"; tail -3 "$OUT/probe.log"; fi ;;
    tests) SPIKEGPU_TEST_BACKENDS=cuda,opencl timeout 540 python3 -m pytest -q -p no:warnings \
               -p no:cacheprovider -m "not slow" -n ${WORKERS:-6} --timeout=240 tests 2>&1 | tee "$OUT/tests.log" | tail -40
           [ "${PIPESTATUS[0]}" = 0 ] || rc=1 ;;
    suite) for be in cuda opencl; do
             python3 -m spikegpu suite "$be" -n "${SUITE_WORKERS:-4}" --out "$OUT/suite" \
               > "$OUT/suite-$be.log" 2>&1; tail -30 "$OUT/suite-$be.log"
           done ;;
    demo)  SPIKEGPU_BACKEND=cuda python3 examples/demo.py "$OUT/raster-cuda.png" || rc=1 ;;
    bench) ANCHOR_THREADS=${ANCHOR_THREADS:-2} python3 benchmarks/step_overhead.py --backends cuda,opencl --anchors \
               --json "$OUT/step_overhead.json" ${BENCH_ARGS:-} || rc=1 ;;
    prop)  python3 benchmarks/propagation.py --backend cuda --sizes 10000,100000 \
               --json "$OUT/propagation-cuda.json" || rc=1
           # 10^9 synapses (~25 GB of GPU memory): a process of its own
           python3 benchmarks/propagation.py --backend cuda --sizes 1000000 \
               --json "$OUT/propagation-cuda-1e6.json" || rc=1
           python3 benchmarks/propagation.py --backend opencl --sizes 10000 \
               --json "$OUT/propagation-opencl.json" || rc=1 ;;
    micro) # the microcircuit, 64 and 8 Synapses, cold and warm cache (BACKENDS, MICRO_ARGS)
           python3 benchmarks/microcircuit.py --suite gpu --backends ${BACKENDS:-cuda} \
               --json "$OUT/microcircuit.json" ${MICRO_ARGS:-} || rc=1 ;;
    micro1) # single microcircuit points, 1 s: CUDA 64 and 8 Synapses, NVIDIA OpenCL 64, the
           # step's merged groups profiled (README, "The cortical microcircuit")
           for a in "--impl spikegpu/cuda" "--impl spikegpu/cuda --synapses 8" \
                    "--impl spikegpu/opencl"; do
             python3 benchmarks/microcircuit.py --scale 1 --duration 1 $a | grep RESULT || rc=1
           done
           SPIKEGPU_PROFILE_MERGED=1 python3 benchmarks/microcircuit.py --impl spikegpu/cuda \
               --scale 1 --duration 0.3 --profile 100 | grep -E "PROFILE|PLAN" || rc=1 ;;
    sidebyside) # a device setting (SIDE, default: the grid form's blocks a multiprocessor,
           # 1 and 3), alternating in one process (the network built once): the microcircuit
           # with 64 and 8 Synapses, then Brunel-Hakim and COBAHH 1e4 and 1e5 (grid form)
           side=${SIDE:-grid_min_blocks=1,3}
           for s in 64 8; do
             python3 benchmarks/microcircuit.py --impl spikegpu/${BACKEND:-cuda} --scale 1 \
               --duration 0.2 --synapses $s --alternate $side --rounds 3 \
               | grep -E "RESULT|ALTERNATE" | cut -c1-900 || rc=1
           done
           python3 benchmarks/step_overhead.py --backends ${BACKEND:-cuda} --modes grid --steps 3000 \
             --models "Brunel-Hakim N=10000,Brunel-Hakim N=100000,COBAHH N=10000,COBAHH N=100000" \
             --alternate $side --rounds 3 --json "$OUT/sidebyside.json" | grep "^row" || rc=1 ;;
    compilers) # time before the first step with an empty cache: NVRTC against nvcc
           for c in nvrtc nvcc; do
             SPIKEGPU_CUDA_COMPILER=$c SPIKEGPU_CACHE_DIR=$(mktemp -d) python3 benchmarks/microcircuit.py \
               --impl spikegpu/cuda --duration 0.1 | grep RESULT | sed "s/^/$c /" || rc=1
           done ;;
    modes) python3 benchmarks/modes.py --backend ${BACKEND:-cuda} --sizes ${SIZES:-1000,10000,100000} \
               --modes ${MODES:-auto,fused,grid,graphs} --json "$OUT/modes-${BACKEND:-cuda}.json" || rc=1 ;;
    spatial) # SpatialNeuron against cpp_standalone on the host's cores (README, "SpatialNeuron")
           python3 benchmarks/spatial.py --backends cuda,opencl --threads "$(nproc)" --profile 200 \
               --json "$OUT/spatial.json" || rc=1 ;;
    spatialnet) # the SpatialNeuron network against cpp_standalone on the host's cores: its
           # project generated first, then compiled (objects.cpp at -O0) and run (~7 min)
           d=$(mktemp -d)/net
           python3 benchmarks/spatial.py --what network --threads "$(nproc)" --cpp-generate "$d" | tail -1 &&
           python3 benchmarks/spatial.py --what network --backends cuda --threads "$(nproc)" \
               --cpp-project "$d" --json "$OUT/spatial-net.json" || rc=1 ;;
    rows)  python3 benchmarks/rows_build.py --backend cuda --sizes 10000,100000 \
               --json "$OUT/rows_build.json" || rc=1 ;;
    ktimes) python3 benchmarks/kernel_times.py --json "$OUT/kernel_times.json" || rc=1 ;;
    cmdbuf) python3 benchmarks/opencl_command_buffer.py --json "$OUT/opencl_command_buffer.json" || rc=1 ;;
    profile)  # per-kernel GPU times of the graph-replayed LIF loop (needs nsys)
           if command -v nsys >/dev/null; then
             nsys profile -q -o "$OUT/lif" --force-overwrite true --cuda-graph-trace=node \
               python3 benchmarks/step_overhead.py --backends cuda --steps 5000 \
               --json "$OUT/prof.json" >/dev/null 2>&1
             nsys stats -q --report cuda_gpu_kern_sum --format csv "$OUT/lif.nsys-rep" \
               > "$OUT/kernels.csv" 2>/dev/null
             cut -d, -f1-4,9 "$OUT/kernels.csv" | head -12
             rm -f "$OUT"/lif.sqlite
           else echo "nsys not found"; fi ;;
  esac
done
exit $rc
