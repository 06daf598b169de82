#!/usr/bin/env python3
"""GPU time per kernel of a step (the GPU machine has no nsys/ncu), two ways:

- separate kernels, CUDA events: a model of step_overhead.py runs with
  plain launches (no graphs, no fusion) and every launch of the timed run
  is bracketed with a pair of events.  A spinning kernel first holds the
  GPU while the host enqueues all the steps, so the events time the kernels
  back to back, not the host's launch gaps.  Upper bounds: the events cost
  time too.
- the fused step kernel, cycle counts: ``run(profile=True)`` makes the step
  kernel count the SM cycles of each object's bodies (until the barrier
  after them) and of the clock tick; the loop's time is split in those
  proportions (`Network.profiling_info`).  Also the fused step's whole GPU
  time per step (events around its launches).

    python benchmarks/kernel_times.py [--models "Brunel-Hakim N=1000"] [--steps 100]
"""
import argparse
import json

import numpy as np
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def kernel_names(device):
    from spikegpu.codeobject import launches
    names = {id(device.tick_kernel()): "clock tick"}
    for co in device._all_codeobjects():
        for block, kernels in co.kernels.items():
            for (kernel, _), (suffix, _) in zip(kernels, launches(co)[block]):
                names[id(kernel)] = f"{co.name}:{suffix}"
    return names


def spin_kernel():
    from pycuda.compiler import SourceModule
    mod = SourceModule('extern "C" __global__ void spin(long long c) '
                       '{ long long s = clock64(); while (clock64() - s < c) {} }',
                       no_extern_c=True)
    return mod.get_function("spin")


def per_kernel(model, steps):
    import brian2
    import spikegpu  # noqa: F401
    from step_overhead import MODELS
    import pycuda.driver as drv
    brian2.set_device("gpu_standalone", backend="cuda", fuse=False, graphs=False)
    M, go = MODELS[model](steps)
    go()
    dev = brian2.get_device()
    be = dev.backend
    names = kernel_names(dev)
    events = []
    plain = be.launch
    spin = spin_kernel()

    def timed(kernel, gs, ls, args):
        if not events:      # ~0.5 s of GPU work: the host enqueues meanwhile
            spin(np.int64(10 ** 9), block=(1, 1, 1), grid=(1, 1), stream=be.stream)
        a, b = drv.Event(), drv.Event()
        a.record(be.stream)
        plain(kernel, gs, ls, args)
        b.record(be.stream)
        events.append((names.get(id(kernel), "?"), a, b))

    be.launch = timed
    go()
    be.synchronize()
    be.launch = plain
    totals = defaultdict(float)
    for name, a, b in events:
        totals[name] += b.time_since(a) * 1e3 / steps     # us per step
    brian2.device.reinit()
    brian2.set_device("runtime")
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def fused_time(model, steps):
    import brian2
    from step_overhead import MODELS
    import pycuda.driver as drv
    brian2.set_device("gpu_standalone", backend="cuda", fuse=True)
    M, go = MODELS[model](steps)
    go()
    be = brian2.get_device().backend
    events = []
    plain = be.launch

    def timed(kernel, gs, ls, args):
        a, b = drv.Event(), drv.Event()
        a.record(be.stream)
        plain(kernel, gs, ls, args)
        b.record(be.stream)
        events.append((a, b))

    be.launch = timed
    go()
    be.synchronize()
    be.launch = plain
    us = sum(b.time_since(a) for a, b in events) * 1e3 / steps
    if brian2.get_device().last_run_mode != "fused":
        us = None               # the network cannot run as one step kernel
    brian2.device.reinit()
    brian2.set_device("runtime")
    return us


def fused_profile(model, steps):
    """us per step of each object inside the fused step kernel (cycle
    counts), or None when the model cannot run fused."""
    import brian2
    from step_overhead import MODELS
    brian2.set_device("gpu_standalone", backend="cuda", fuse=True)
    M, go = MODELS[model](steps)
    go()
    go(profile=True)
    out = None
    if brian2.get_device().last_run_mode == "fused":
        out = {name: float(t) * 1e6 / steps
               for name, t in sorted(go.net.profiling_info, key=lambda kv: -float(kv[1]))}
    brian2.device.reinit()
    brian2.set_device("runtime")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="LIF 1000 + SpikeMonitor,Brunel-Hakim N=1000,"
                    "Brunel-Hakim N=10000")
    ap.add_argument("--steps", type=int, default=100,
                    help="steps timed kernel by kernel (20x as many fused)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "kernel_times.json"))
    args = ap.parse_args()
    out = {}
    for model in args.models.split(","):
        t = per_kernel(model, args.steps)
        f = fused_time(model, 20 * args.steps)
        p = fused_profile(model, 20 * args.steps)
        out[model] = dict(kernels_us_per_step=t, separate_sum=sum(t.values()),
                          fused_us_per_step=f, fused_profile_us_per_step=p)
        print(f"\n{model}: GPU us per step, separate kernels (CUDA events)")
        for name, us in t.items():
            print(f"  {us:8.2f}  {name}")
        print(f"  {sum(t.values()):8.2f}  sum")
        print(f"  {f:8.2f}  fused step kernel (whole step)" if f is not None
              else "       -  (not fusable)")
        if p is not None:
            print("  inside the fused step kernel (cycle counts, run(profile=True)):")
            for name, us in p.items():
                print(f"  {us:8.2f}  {name}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
