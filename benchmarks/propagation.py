#!/usr/bin/env python3
"""Synaptic propagation micro-benchmark: synaptic events per second for N
neurons with ~1,000 synapses each (no delay), neurons firing at random
(Poisson, `rand() < rate*dt`), `v_post += w`.  The propagation time is the
loop time minus that of the same neurons without synapses (same run).  It is
compared with a memory-bandwidth bound: the bytes we count per event over
the device-to-device copy bandwidth measured in the same run.

Bytes per event (float64 weights, int32 indices):
  push:  read synapse id and delay of the row (4 + 4), write it to the queue (4)
  apply: read it from the queue (4), read _synaptic_post (4), read w (8),
         atomic read-modify-write of v_post (8 + 8)            = 44 B

    python benchmarks/propagation.py [--backend cuda] [--sizes 10000,100000]
"""
import argparse
import json
import os
import platform
import time


BYTES_PER_EVENT = 44
HERE = os.path.dirname(os.path.abspath(__file__))


def copy_bandwidth(be, nbytes=256 * 2**20, reps=10):
    a, b = be.alloc(nbytes), be.alloc(nbytes)
    be.copy(b, a, nbytes)
    be.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        be.copy(b, a, nbytes)
    be.synchronize()
    dt = time.perf_counter() - t0
    be.free(a), be.free(b)
    return 2 * nbytes * reps / dt  # read + write


def run_once(backend, N, K, rate_hz, steps, with_synapses):
    import brian2
    import spikegpu  # noqa: F401
    from brian2 import (Network, NeuronGroup, SpikeMonitor, Synapses, ms, Hz,
                        set_device, seed)
    set_device("gpu_standalone", backend=backend)
    brian2.defaultclock.dt = 0.1 * ms
    seed(1)
    G = NeuronGroup(N, "v : 1", threshold="rand() < rate*dt", name="src",
                    namespace=dict(rate=rate_hz * Hz))
    M = SpikeMonitor(G, record=False)
    objs = [G, M]
    t_build = time.perf_counter()
    if with_synapses:
        S = Synapses(G, G, "w : 1", on_pre="v_post += w", name="S")
        S.connect(p=min(1.0, K / N))
        S.w = "rand()"
        objs.append(S)
    net = Network(*objs)
    net.run(10 * 0.1 * ms)          # compile, create, warm up
    n_syn = len(S) if with_synapses else 0
    t_build = time.perf_counter() - t_build
    # of which the pathway's rows, built on the device (compilation included)
    t_rows = S.pre.queue.structure.build_s if with_synapses else 0.0
    before = int(M.num_spikes)
    net.run(steps * 0.1 * ms)
    dev = brian2.get_device()
    loop = dev._last_run_time
    spikes = int(M.num_spikes) - before
    be = dev.backend
    dev.reinit()
    set_device("runtime")
    return loop, spikes, n_syn, t_build, t_rows, be


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--synapses-per-neuron", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=20.0, help="Hz")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "propagation.json"))
    args = ap.parse_args(argv)
    rows = []
    bw = None
    for N in [int(x) for x in args.sizes.split(",")]:
        loop_syn, spikes, n_syn, t_build, t_rows, be = run_once(
            args.backend, N, args.synapses_per_neuron, args.rate, args.steps, True)
        loop_base, _, _, _, _, _ = run_once(
            args.backend, N, args.synapses_per_neuron, args.rate, args.steps, False)
        if bw is None:
            bw = copy_bandwidth(be)
        events = spikes * n_syn / N
        t_prop = max(loop_syn - loop_base, 1e-9)
        rate = events / t_prop
        bound = bw / BYTES_PER_EVENT
        rows.append(dict(N=N, synapses=n_syn, events=events, loop_s=loop_syn,
                         loop_without_synapses_s=loop_base, events_per_s=rate,
                         bound_events_per_s=bound, fraction_of_bound=rate / bound,
                         setup_s=t_build, rows_build_s=t_rows, device=be.device_name))
    print(f"\ncopy bandwidth {bw / 1e9:.1f} GB/s, {BYTES_PER_EVENT} B/event -> bound "
          f"{bw / BYTES_PER_EVENT / 1e9:.2f} G events/s")
    print(f"{'N':>8} {'synapses':>11} {'events':>11} {'loop s':>8} {'base s':>8} "
          f"{'G ev/s':>8} {'of bound':>8} {'setup s':>8} {'rows s':>8}")
    for r in rows:
        print(f"{r['N']:8d} {r['synapses']:11d} {r['events']:11.3g} {r['loop_s']:8.3f} "
              f"{r['loop_without_synapses_s']:8.3f} {r['events_per_s'] / 1e9:8.3f} "
              f"{r['fraction_of_bound']:8.1%} {r['setup_s']:8.2f} {r['rows_build_s']:8.2f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(host=platform.node(), copy_bandwidth_Bps=bw,
                       bytes_per_event=BYTES_PER_EVENT, rows=rows), f, indent=1)
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
