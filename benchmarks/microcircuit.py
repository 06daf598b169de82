#!/usr/bin/env python3
"""The Potjans & Diesmann (2014) cortical microcircuit, written the way a
Brian2 user writes it: one NeuronGroup of LIF neurons with exponential
currents, a subgroup per population, one `Synapses` per (source, target)
population pair (64, nine of them with p = 0 and no synapse), normally
distributed weights and delays (clipped), a `PoissonInput` per population
for the background, and a SpikeMonitor on everything.  ``--synapses 8``
writes the same synapses as one `Synapses` per source population onto the
whole group (the connection probability is a post-synaptic variable).

One point (implementation, scale, variant) runs per process and prints a
``RESULT {json}`` line: per-population rates, the loop time, the real-time
factor (loop seconds / biological seconds) and the time before the first
step (network construction, synapse creation, compilation).  ``--suite``
runs the points that belong together, each in its own process, and prints
a table (rates next to the published ones):

    python benchmarks/microcircuit.py --suite gpu     # H200: CUDA, OpenCL, cpp_standalone
    python benchmarks/microcircuit.py --suite cpu     # 2 % scale: PoCL, numpy, cpp_standalone

Cold = an empty spikegpu kernel cache (a fresh SPIKEGPU_CACHE_DIR), warm =
the same script again with that cache.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

POPS = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
SIZES = [20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948]
#: connection probability [target][source]
CONN = [[0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
        [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
        [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
        [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
        [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
        [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
        [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
        [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443]]
K_EXT = [1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100]
#: rates (Hz) of the full-scale model, Potjans & Diesmann 2014 (Fig. 6)
PUBLISHED = [0.86, 2.82, 4.45, 5.76, 7.59, 8.66, 1.09, 7.66]


def build(scale=1.0, variant=64, seed_value=1234):
    """The network: (its objects, the SpikeMonitor, population sizes, the
    Synapses)."""
    from brian2 import (NeuronGroup, PoissonInput, SpikeMonitor, Synapses, Hz, ms,
                        mV, pA, pF, seed)
    seed(seed_value)
    sizes = [max(1, int(round(n * scale))) for n in SIZES]
    tau_m, tau_syn, C_m = 10 * ms, 0.5 * ms, 250 * pF
    E_L, V_th, V_reset = -65 * mV, -50 * mV, -65 * mV
    w_exc, g = 87.8 * pA, -4.0
    eqs = """dv/dt = (E_L - v)/tau_m + I/C_m : volt (unless refractory)
             dI/dt = -I/tau_syn : amp"""
    ns = dict(tau_m=tau_m, tau_syn=tau_syn, C_m=C_m, E_L=E_L, V_th=V_th, V_reset=V_reset)
    if variant == 8:
        eqs += "\n" + "\n".join(f"p{k} : 1 (constant)" for k in range(8))
        eqs += "\nl23e : 1 (constant)"
    G = NeuronGroup(sum(sizes), eqs, threshold="v > V_th", reset="v = V_reset",
                    refractory=2 * ms, method="exact", namespace=ns, name="microcircuit")
    G.v = "-58*mV + 10*mV*randn()"
    bounds = [0] + list(__import__("itertools").accumulate(sizes))
    pops = [G[bounds[k]:bounds[k + 1]] for k in range(8)]
    inputs = [PoissonInput(pop, "I", N=K_EXT[k], rate=8 * Hz, weight=w_exc)
              for k, pop in enumerate(pops)]
    synapses = []

    def synaptic_ns(src):
        exc = src % 2 == 0
        return dict(w_mean=w_exc if exc else g * w_exc,
                    w_sd=0.1 * w_exc if exc else 0.1 * abs(g) * w_exc,
                    w_lo=0 * pA if exc else -1e6 * pA, w_hi=1e6 * pA if exc else 0 * pA,
                    d_mean=1.5 * ms if exc else 0.75 * ms,
                    d_sd=0.75 * ms if exc else 0.375 * ms)
    if variant == 64:
        for src in range(8):
            for tgt in range(8):
                ns_s = synaptic_ns(src)
                if (src, tgt) == (2, 0):       # L4E -> L2/3E: doubled weight
                    ns_s["w_mean"], ns_s["w_sd"] = 2 * ns_s["w_mean"], 2 * ns_s["w_sd"]
                S = Synapses(pops[src], pops[tgt], "w : amp", on_pre="I_post += w",
                             namespace=ns_s, name=f"syn_{POPS[src]}_{POPS[tgt]}")
                S.connect(p=CONN[tgt][src])
                S.w = "clip(w_mean + w_sd*randn(), w_lo, w_hi)"
                S.delay = "clip(d_mean + d_sd*randn(), dt, 1*second)"
                synapses.append(S)
    else:
        for tgt in range(8):
            for src in range(8):
                getattr(pops[tgt], f"p{src}")[:] = CONN[tgt][src]
        pops[0].l23e = 1
        for src in range(8):
            S = Synapses(pops[src], G, "w : amp", on_pre="I_post += w",
                         namespace=synaptic_ns(src), name=f"syn_{POPS[src]}")
            S.connect(p=f"p{src}_post")
            scale_w = "(1 + l23e_post)" if src == 2 else "1"
            S.w = f"clip({scale_w}*(w_mean + w_sd*randn()), {scale_w}*w_lo, {scale_w}*w_hi)"
            S.delay = "clip(d_mean + d_sd*randn(), dt, 1*second)"
            synapses.append(S)
    M = SpikeMonitor(G, name="spikes")
    return [G, M] + inputs + synapses, M, sizes, synapses


def point(args):
    """One measurement in this process: RESULT line on stdout."""
    import numpy as np
    import brian2
    from brian2 import Network, defaultclock, ms, prefs, second, set_device
    kind = args.impl
    if kind.startswith("spikegpu"):
        import spikegpu  # noqa: F401
        set_device("gpu_standalone", backend=kind.split("/")[1])
    elif kind == "cpp_standalone":
        directory = tempfile.mkdtemp()
        set_device("cpp_standalone", build_on_run=False)
        prefs.devices.cpp_standalone.openmp_threads = args.threads
    else:
        prefs.codegen.target = "numpy"
    defaultclock.dt = 0.1 * ms
    t0 = time.perf_counter()
    objects, M, sizes, synapses = build(args.scale, args.synapses)
    net = Network(objects)
    if kind == "numpy":
        net.run(1 * ms)          # code generation outside the timed loop
        before = time.perf_counter()
        net.run(args.duration * second)
        loop = time.perf_counter() - before
        setup = before - t0
    elif kind == "cpp_standalone":
        net.run(args.duration * second)
        brian2.device.build(directory=directory, run=True, with_output=False)
        loop = brian2.device._last_run_time
        setup = time.perf_counter() - t0 - loop
    else:
        net.run(args.duration * second)
        loop = brian2.device._last_run_time
        setup = time.perf_counter() - t0 - loop
    i = np.asarray(M.i[:])
    t = np.asarray(M.t[:] / second)
    bounds = np.cumsum([0] + sizes)
    counts = np.bincount(np.searchsorted(bounds, i, side="right") - 1, minlength=8)[:8]
    rates = (counts / np.array(sizes) / args.duration).tolist()
    out = dict(impl=kind, scale=args.scale, synapses=args.synapses,
               duration_s=args.duration, loop_s=loop, rtf=loop / args.duration,
               setup_s=setup, rates=rates, spikes=int(len(i)),
               n_synapses=int(sum(len(S) for S in synapses)),
               last_spike_s=float(t.max()) if len(t) else None)
    if kind.startswith("spikegpu"):
        dev = brian2.get_device()
        out.update(mode=dev.last_run_mode, device=dev.backend.device_name,
                   programs_built=dev.stats.get("programs_built"),
                   build_s=dev.stats.get("build_s"),
                   launches_per_step=dev.last_run_info.get("launches", 0)
                   / max(1, dev.last_run_info.get("steps", 1)))
        out["run_info"] = dict(dev.last_run_info)
        if getattr(dev, "last_step_kernel", None) is not None:
            out["step_kernel"] = dev.last_step_kernel.launch_info
        if args.profile:
            # a further stretch with run(profile=True): each object's share
            # (the fused kernels count SM cycles per body on CUDA)
            net.run(args.profile * ms, profile=True)
            info = sorted(((name, float(t)) for name, t in net.profiling_info),
                          key=lambda x: -x[1])
            steps = args.profile * ms / defaultclock.dt
            out["profile_us_per_step"] = {n: 1e6 * t / steps for n, t in info}
            print("PROFILE (us per step) " + ", ".join(
                f"{n}: {1e6 * t / steps:.1f}" for n, t in info[:25]), flush=True)
            sk = dev.last_step_kernel
            if sk is not None:
                out["plan"] = sk.describe()
                for g in out["plan"]:       # what each group's time is made of
                    for key in ("busy", "phases"):
                        val = g.pop(f"{key}_s", None)
                        if val:
                            g[f"{key}_us_per_step"] = {k: round(1e6 * v / steps, 2)
                                                       for k, v in val.items()}
                for g in out["plan"]:
                    print("PLAN", json.dumps(g), flush=True)
        if args.alternate:
            out["alternate"] = alternate(net, dev, args)
    print("RESULT " + json.dumps(out, default=lambda o: o.item()), flush=True)


def alternate(net, dev, args):
    """Side by side in this process (the network built once): further runs
    of ``args.duration`` with a device setting taking each of its values in
    turn, ``args.rounds`` times: {value: [real-time factors]}."""
    import brian2
    from brian2 import second
    from step_overhead import set_device_setting
    attr, values = args.alternate.split("=")
    out = {v: [] for v in values.split(",")}
    grown = {v: [] for v in out}        # monitor growths (host waits) in each run
    kernels = {}                        # the grid kernel's blocks, registers, spills
    for _ in range(args.rounds):
        for v in out:
            set_device_setting(dev, attr, v)
            net.run(args.duration * second)
            out[v].append(brian2.device._last_run_time / args.duration)
            grown[v].append(dev.last_run_info.get("monitor_growths"))
            sk = getattr(dev, "last_step_kernel", None)
            kernels[v] = sk.launch_info if sk is not None else None
    print("ALTERNATE " + json.dumps({attr: {v: [round(x, 3) for x in r]
                                            for v, r in out.items()},
                                     "monitor_growths": grown, "step_kernel": kernels},
                                    default=lambda o: o.item()), flush=True)
    return out


def run_point(impl, scale, synapses, duration, threads, cache=None, timeout=1800):
    cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl, "--scale", str(scale),
           "--synapses", str(synapses), "--duration", str(duration),
           "--threads", str(threads)]
    env = dict(os.environ)
    if cache:
        env["SPIKEGPU_CACHE_DIR"] = cache
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(impl=impl, error=f"timeout after {timeout} s")
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["process_s"] = time.perf_counter() - t0
            return r
    return dict(impl=impl, scale=scale, synapses=synapses,
                error=(p.stderr or p.stdout)[-1500:])


def suite(args):
    gpu = args.suite == "gpu"
    scale = args.scale if args.scale_set else (1.0 if gpu else 0.02)
    cache = tempfile.mkdtemp(prefix="spikegpu-cache-")
    threads = args.threads if args.threads_set else (os.cpu_count() if gpu else 2)
    points = []
    backends = args.backends.split(",") if args.backends else (["cuda", "opencl"] if gpu
                                                               else ["opencl"])
    for b in backends:
        first = True
        for variant in (64, 8) if b == backends[0] else (64,):
            points.append((f"spikegpu/{b}", variant, "cold" if first else "warm"))
            if first:
                points.append((f"spikegpu/{b}", variant, "warm"))
            first = False
    if not gpu:
        points.append(("numpy", 64, ""))
    if not args.no_cpp:
        points.append(("cpp_standalone", 64, ""))
    rows = []
    for impl, variant, cachestate in points:
        r = run_point(impl, scale, variant, args.duration, threads,
                      cache=cache if impl.startswith("spikegpu") else None)
        r["cache"] = cachestate
        if impl == "cpp_standalone":
            r["threads"] = threads
        rows.append(r)
        print("row", json.dumps(r), flush=True)
    print(f"\nmicrocircuit, scale {scale}, {args.duration} s biological, host "
          f"{platform.node()}")
    print(f"{'implementation':22} {'Synapses':>8} {'cache':>5} {'mode':>8} {'loop s':>8} "
          f"{'RTF':>7} {'setup s':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['impl']:22} {r.get('synapses', ''):>8} error: {r['error'][-300:]}")
            continue
        impl = r["impl"] + (f" ({r['threads']} thr)" if "threads" in r else "")
        print(f"{impl:22} {r['synapses']:>8} {r['cache']:>5} {r.get('mode', ''):>8} "
              f"{r['loop_s']:8.3f} {r['rtf']:7.3f} {r['setup_s']:8.2f}")
    ok = [r for r in rows if "rates" in r]
    if ok:
        print("\nrates (Hz): " + " ".join(f"{p:>6}" for p in POPS))
        if scale == 1.0:
            print(f"{'published':22} " + " ".join(f"{x:6.2f}" for x in PUBLISHED))
        for r in ok:
            label = f"{r['impl']}/{r['synapses']}"
            print(f"{label:22} " + " ".join(f"{x:6.2f}" for x in r["rates"]))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(host=platform.node(), scale=scale, duration_s=args.duration,
                           published_rates=PUBLISHED, rows=rows), f, indent=1)
        print(f"\nwritten: {args.json}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=["gpu", "cpu"])
    ap.add_argument("--impl", default="spikegpu/auto",
                    help="spikegpu/<backend>, numpy or cpp_standalone (one point)")
    ap.add_argument("--backends", default=None, help="suite: spikegpu backends")
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--synapses", type=int, choices=[8, 64], default=64)
    ap.add_argument("--duration", type=float, default=1.0, help="biological seconds")
    ap.add_argument("--threads", type=int, default=None, help="cpp_standalone threads")
    ap.add_argument("--no-cpp", action="store_true")
    ap.add_argument("--profile", type=float, default=0,
                    help="then run this many ms with profile=True and print the shares")
    ap.add_argument("--alternate", default=None, metavar="ATTR=V1,V2",
                    help="then runs alternating a GPUDevice setting over values")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --alternate")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    args.scale_set, args.threads_set = args.scale is not None, args.threads is not None
    if args.suite:
        suite(args)
    else:
        args.scale = 1.0 if args.scale is None else args.scale
        args.threads = args.threads or 2
        point(args)


if __name__ == "__main__":
    main()
