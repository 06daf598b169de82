#!/usr/bin/env python3
"""Loop time of the anchor models (Brunel-Hakim with heterogeneous delays,
COBAHH; 1 s at dt = 0.1 ms, ~1,000 synapses per neuron) in each way
spikegpu can run the step loop: 'auto' (what a user gets), 'fused' (one
work-group), 'grid' (the fused kernel over the whole device: CUDA, or an
OpenCL GPU), 'graphs' (merged launches captured as CUDA graphs) and
'launches'.  Each point runs the kit's harness (b2_anchor.py, staged into
.gpu/bench by ../shared/gpu/stage.sh) in a process of its own, twice in a
row (the second run's loop is reported: nothing left to compile).
Prints a table and writes JSON.

    python benchmarks/modes.py --backend cuda --sizes 1000,10000,100000
"""
import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
B2_ANCHOR = os.environ.get("B2_ANCHOR", os.path.join(HERE, "..", ".gpu", "bench", "b2_anchor.py"))
#: environment of each mode (see GPUDevice: SPIKEGPU_FUSE, SPIKEGPU_GRAPHS)
MODES = {"auto": {}, "fused": {"SPIKEGPU_FUSE": "1"}, "grid": {"SPIKEGPU_FUSE": "grid"},
         "graphs": {"SPIKEGPU_FUSE": "0"},
         "launches": {"SPIKEGPU_FUSE": "0", "SPIKEGPU_GRAPHS": "0"}}


def point(model, n, backend, mode, timeout):
    env = dict(os.environ, **MODES[mode])
    cmd = [sys.executable, B2_ANCHOR, "--model", model, "--n", str(n), "--device", "spikegpu",
           "--backend", backend, "--repeat", "2", "--projdir", f"/tmp/modes-{model}-{n}"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f"timeout after {timeout} s")
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            if r.get("ok"):
                return dict(loop_s=r.get("sim_loop_s"), mode=r.get("run_mode"),
                            rate_hz=r.get("rate_hz"), synapses=r.get("synapses"),
                            first_loop_s=r.get("first_loop_s"), wall_s=r.get("wall_s"))
            return dict(error=str(r.get("error", r))[-400:])
    return dict(error=(p.stderr or p.stdout)[-800:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--models", default="brunel,cobahh")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--modes", default="auto,fused,grid,graphs")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "modes.json"))
    args = ap.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            for mode in args.modes.split(","):
                if mode == "fused" and n > 10000:
                    continue        # one work-group for 1e5 neurons: not a contender
                r = dict(model=model, n=n, asked=mode, backend=args.backend,
                         **point(model, n, args.backend, mode, args.timeout))
                rows.append(r)
                print("row", json.dumps(r), flush=True)
    print(f"\n{'model':8} {'N':>8} {'asked':>8} {'ran':>9} {'loop s':>8} {'us/step':>8} "
          f"{'rate Hz':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:8} {r['n']:>8} {r['asked']:>8} error: {r['error'][-200:]}")
            continue
        print(f"{r['model']:8} {r['n']:>8} {r['asked']:>8} {str(r['mode']):>9} "
              f"{r['loop_s']:8.3f} {1e6 * r['loop_s'] / 10000:8.2f} {r['rate_hz']:8.2f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(host=platform.node(), rows=rows), f, indent=1)
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
