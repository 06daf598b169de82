#!/usr/bin/env python3
"""Time to build a pathway's rows on the device (spikegpu/csrbuild.py,
called by synqueue.prepare_queue when a run starts), for N neurons with ~K
synapses each and delays uniform over 0-4 ms (41 steps of 0.1 ms):

- on_pre:  sources in order (connect() creates synapses by source), the
           delays must be sorted within each row;
- on_post: sources (the targets of on_pre) in no order: the full sort.

The first run builds (after compiling; a first, smaller network compiles
the kernels), a second run with unchanged synapses keeps the rows (one
checksum pass).  Prints a table and writes JSON.

    python benchmarks/rows_build.py [--backend cuda] [--sizes 10000,100000]
"""
import argparse
import json
import os
import platform
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def build_times(backend, N, K, pathway):
    import brian2
    import spikegpu  # noqa: F401
    from brian2 import NeuronGroup, Synapses, Network, ms, set_device, seed
    set_device("gpu_standalone", backend=backend)
    brian2.defaultclock.dt = 0.1 * ms
    seed(2)
    G = NeuronGroup(N, "v : 1", threshold="False")
    if pathway == "on_pre":
        S = Synapses(G, G, "w : 1", on_pre="v_post += w")
    else:
        S = Synapses(G, G, "w : 1", on_post="v_pre += w")
    S.connect(p=min(1.0, K / N))
    getattr(S, "pre" if pathway == "on_pre" else "post").delay = "4*ms*rand()"
    n_syn = len(S)
    net = Network(G, S)
    t0 = time.perf_counter()
    net.run(0 * ms)
    first = time.perf_counter() - t0
    p = S.pre if pathway == "on_pre" else S.post
    built = p.queue.structure.build_s
    t0 = time.perf_counter()
    net.run(0 * ms)
    kept = time.perf_counter() - t0
    mode = p.queue.structure.mode
    name = brian2.get_device().backend.device_name
    brian2.device.reinit()
    set_device("runtime")
    return dict(N=N, pathway=pathway, synapses=n_syn, build_s=built, first_run_s=first,
                kept_run_s=kept, mode=mode, device=name)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--synapses-per-neuron", type=int, default=1000)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "rows_build.json"))
    args = ap.parse_args(argv)
    for pathway in ("on_pre", "on_post"):       # compile the kernels
        build_times(args.backend, 1000, 10, pathway)
    rows = [build_times(args.backend, int(n), args.synapses_per_neuron, pathway)
            for n in args.sizes.split(",") for pathway in ("on_pre", "on_post")]
    print(f"\n{'N':>8} {'pathway':8} {'synapses':>11} {'build s':>8} {'1st run s':>9} "
          f"{'kept s':>7}  device")
    for r in rows:
        print(f"{r['N']:8d} {r['pathway']:8} {r['synapses']:11d} {r['build_s']:8.3f} "
              f"{r['first_run_s']:9.3f} {r['kept_run_s']:7.3f}  {r['device']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(host=platform.node(), rows=rows), f, indent=1)
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
