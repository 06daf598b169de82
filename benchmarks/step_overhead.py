#!/usr/bin/env python3
"""Microseconds per time step for small and medium networks, where launch
overhead decides: (a) 1,000 LIF neurons with a SpikeMonitor, (b) Brunel-Hakim
with heterogeneous delays at N = 1,000 and 10,000 (~1,000 synapses per
neuron).  Every available spikegpu backend, each way of running the step loop
(fused step kernel, CUDA graphs, plain launches); with
--anchors also Brian2 cpp_standalone and Brian2CUDA (cuda_standalone) on the
same model, each in its own process.  Prints a table and writes JSON.

    python benchmarks/step_overhead.py [--backends cuda,opencl] [--anchors]
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


def runner(net, duration):
    """The model's run (keywords go to Network.run; the network is .net)."""
    def go(**kwds):
        net.run(duration, **kwds)
    go.net = net
    return go


def lif_model(n_steps):
    from brian2 import NeuronGroup, SpikeMonitor, Network, ms, defaultclock, seed
    defaultclock.dt = 0.1 * ms
    seed(11)
    G = NeuronGroup(1000, """dv/dt = (v0 - v)/(10*ms) : volt (unless refractory)
                             v0 : volt (constant)""",
                    threshold="v > -50*mV", reset="v = -60*mV", refractory=2 * ms,
                    method="exact", name="lif")
    G.v = "-60*mV + rand()*10*mV"
    G.v0 = "-55*mV + rand()*10*mV"
    M = SpikeMonitor(G, name="spikes")
    net = Network(G, M)
    return M, runner(net, n_steps * 0.1 * ms)


def brunel_model(n_steps, N):
    """Brunel & Hakim 1999 with heterogeneous delays (as Brian2CUDA's
    BrunelHakimHeterogDelays and ../shared/bench/b2_anchor.py)."""
    from brian2 import (NeuronGroup, SpikeMonitor, Synapses, Network, ms, mV,
                        defaultclock, seed)
    defaultclock.dt = 0.1 * ms
    seed(4321)
    Vr, theta, tau, taurefr = 10 * mV, 20 * mV, 20 * ms, 2 * ms
    muext, sigmaext, J = 27 * mV, 0.33 * mV, 0.1 * mV
    G = NeuronGroup(N, "dV/dt = (-V + muext + sigmaext*sqrt(tau)*xi)/tau : volt",
                    threshold="V>theta", reset="V=Vr", refractory=taurefr,
                    method="euler", name="G",
                    namespace=dict(muext=muext, sigmaext=sigmaext, tau=tau,
                                   theta=theta, Vr=Vr))
    G.V = Vr
    S = Synapses(G, G, on_pre="V += -J", name="S", namespace=dict(J=J))
    S.connect(p=min(1.0, 1000.0 / N))
    S.delay = "4*ms * rand()"
    M = SpikeMonitor(G, record=False, name="spikecount")
    net = Network(G, S, M)
    return M, runner(net, n_steps * 0.1 * ms)


def cobahh_model(n_steps, N):
    """COBAHH (Brette et al. 2007's Hodgkin-Huxley benchmark, as in Brian2's
    examples) in the variant of the Brian2GeNN and Brian2CUDA papers (and
    ../shared/bench/b2_anchor.py): N neurons, 80 % excitatory, ~1,000
    synapses a neuron (p = 1000 / N), weights rand() * 1e-9 nS (the
    neurons fire from their initial state, hardly coupled), no delays."""
    from brian2 import (NeuronGroup, SpikeMonitor, Synapses, Network, ms, mV, nS,
                        umetre, ufarad, siemens, msiemens, cm, defaultclock, seed)
    defaultclock.dt = 0.1 * ms
    seed(4321)
    area = 20000 * umetre ** 2
    ns = dict(Cm=1 * ufarad * cm ** -2 * area, gl=5e-5 * siemens * cm ** -2 * area,
              El=-65 * mV, EK=-90 * mV, ENa=50 * mV, VT=-63 * mV,
              g_na=100 * msiemens * cm ** -2 * area, g_kd=30 * msiemens * cm ** -2 * area,
              taue=5 * ms, taui=10 * ms, Ee=0 * mV, Ei=-80 * mV)
    eqs = """
    dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v) - g_na*(m*m*m)*h*(v-ENa)
             - g_kd*(n*n*n*n)*(v-EK))/Cm : volt
    dm/dt = alpha_m*(1-m) - beta_m*m : 1
    dn/dt = alpha_n*(1-n) - beta_n*n : 1
    dh/dt = alpha_h*(1-h) - beta_h*h : 1
    dge/dt = -ge/taue : siemens
    dgi/dt = -gi/taui : siemens
    alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
    beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
    alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
    beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
    alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
    beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
    """
    P = NeuronGroup(N, eqs, threshold="v > -20*mV", refractory=3 * ms,
                    method="exponential_euler", namespace=ns, name="P")
    ne = int(0.8 * N)
    Ce = Synapses(P[:ne], P, "we : siemens (constant)", on_pre="ge += we", name="Ce")
    Ci = Synapses(P[ne:], P, "wi : siemens (constant)", on_pre="gi += wi", name="Ci")
    Ce.connect(p=min(1.0, 1000.0 / N))
    Ci.connect(p=min(1.0, 1000.0 / N))
    Ce.we = "rand()*1e-9*nS"
    Ci.wi = "rand()*1e-9*nS"
    P.v = "El + (randn()*5 - 5)*mV"
    P.ge = "(randn()*1.5 + 4)*10*nS"
    P.gi = "(randn()*12 + 20)*10*nS"
    M = SpikeMonitor(P, record=False, name="spikecount")
    net = Network(P, Ce, Ci, M)
    return M, runner(net, n_steps * 0.1 * ms)


MODELS = {"LIF 1000 + SpikeMonitor": lambda steps: lif_model(steps),
          "Brunel-Hakim N=1000": lambda steps: brunel_model(steps, 1000),
          "Brunel-Hakim N=10000": lambda steps: brunel_model(steps, 10000)}
#: run when named (--models): the grid form's sizes
MORE_MODELS = {"Brunel-Hakim N=100000": lambda steps: brunel_model(steps, 100000),
               "COBAHH N=10000": lambda steps: cobahh_model(steps, 10000),
               "COBAHH N=100000": lambda steps: cobahh_model(steps, 100000)}


#: how spikegpu runs the step loop: one fused kernel per block of steps,
#: CUDA graphs of the separate kernels, or plain launches from Python
MODES = {"fused": dict(fuse=True, graphs=False), "graphs": dict(fuse=False, graphs=True),
         "launches": dict(fuse=False, graphs=False), "grid": dict(fuse="grid", graphs=False)}


def set_device_setting(dev, attr, text):
    """Set a device attribute from its text on the command line (typed as
    its current value; booleans from 1/0, true/false)."""
    kind = type(getattr(dev, attr))
    setattr(dev, attr, text in ("1", "true", "True") if kind is bool else kind(text))


def measure_spikegpu(backend, mode, n_steps, model="LIF 1000 + SpikeMonitor",
                     alternate=None, rounds=3):
    """``alternate``: 'ATTR=V1,V2': after the warm-up, ``rounds`` rounds of
    runs with the device attribute taking each value in turn (side by side
    in one process, the network built once): us_per_step per value."""
    import brian2
    import spikegpu  # noqa: F401
    from brian2 import device, set_device
    set_device("gpu_standalone", backend=backend, **MODES[mode])
    M, go = {**MODELS, **MORE_MODELS}[model](n_steps)
    go()                      # compile + warm up (also captures graphs)
    dev = brian2.get_device()

    def timed():
        before = int(M.num_spikes)
        t0 = time.perf_counter()
        go()
        return (time.perf_counter() - t0, 1e6 * dev._last_run_time / n_steps,
                int(M.num_spikes) - before)
    out = {}
    if alternate:
        attr, values = alternate.split("=")
        side = {v: [] for v in values.split(",")}
        for _ in range(rounds):
            for v in side:
                set_device_setting(dev, attr, v)
                _, us, spikes = timed()
                side[v].append((round(us, 2), spikes))
        out["alternate"] = {attr: side}
    wall, us, spikes = timed()
    sk = getattr(dev, "last_step_kernel", None)
    if sk is not None and sk.grid:
        out["step_kernel"] = sk.launch_info
    name = dev.backend.device_name
    ran = dev.last_run_mode
    device.reinit()
    set_device("runtime")
    if ran != mode:
        return dict(error=f"asked for {mode}, ran {ran}")
    return dict(us_per_step=us, run_wall_s=wall, spikes=spikes, device=name, **out)


#: the staged kit's anchor script (Brunel-Hakim as in Brian2CUDA's suite; it
#: patches Brian2CUDA's makefile for CUDA 13 and finds cuRAND)
B2_ANCHOR = os.environ.get("B2_ANCHOR", os.path.join(HERE, "..", ".gpu", "bench", "b2_anchor.py"))


def measure_b2_anchor(kind, n_steps, n):
    cmd = [sys.executable, B2_ANCHOR, "--model", "brunel", "--n", str(n),
           "--device", "cuda" if kind == "cuda_standalone" else "cpp",
           "--threads", os.environ.get("ANCHOR_THREADS", "2"),
           "--duration", str(n_steps * 1e-4), "--projdir", tempfile.mkdtemp()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            if r.get("ok") and r.get("sim_loop_s"):
                return dict(us_per_step=1e6 * r["sim_loop_s"] / n_steps,
                            spikes=r.get("spikes"), device=r.get("gpu") or r.get("cpu"))
            return dict(error=str(r.get("error", r))[-300:])
    return dict(error=(p.stderr or p.stdout)[-600:])


def measure_anchor(kind, n_steps, model="LIF 1000 + SpikeMonitor"):
    if model.startswith("Brunel-Hakim") and os.path.exists(B2_ANCHOR):
        return measure_b2_anchor(kind, n_steps, int(model.split("N=")[1]))
    code = f"""
import json, sys, time
sys.path.insert(0, {HERE!r})
from step_overhead import MODELS
from brian2 import set_device, device, prefs
if {kind!r} == 'cuda_standalone':
    import brian2cuda
    prefs.devices.cuda_standalone.cuda_backend.detect_gpus = False
    prefs.devices.cuda_standalone.cuda_backend.gpu_id = 0
    prefs.devices.cuda_standalone.cuda_backend.compute_capability = 9.0
    import os
    if os.environ.get('CUDA_PATH'):
        prefs.devices.cuda_standalone.cuda_backend.cuda_path = os.environ['CUDA_PATH']
set_device({kind!r}, directory={tempfile.mkdtemp()!r}, build_on_run=False)
if {kind!r} == 'cpp_standalone':
    prefs.devices.cpp_standalone.openmp_threads = int({os.environ.get('ANCHOR_THREADS', '2')})
M, go = MODELS[{model!r}]({n_steps})
go()
t0 = time.time()
device.build(run=True, with_output=False)
print('RESULT', json.dumps(dict(us_per_step=1e6*device._last_run_time/{n_steps},
      wall_s=time.time()-t0, spikes=int(M.num_spikes))))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=900)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return dict(error=(p.stderr or p.stdout)[-600:])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="auto")
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--modes", default="fused,graphs,launches")
    ap.add_argument("--anchors", action="store_true",
                    help="also run cpp_standalone and (if installed) cuda_standalone")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "step_overhead.json"))
    ap.add_argument("--alternate", default=None,
                    help="ATTR=V1,V2: runs alternating a device setting, side by side")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        for backend in args.backends.split(","):
            modes = ["fused", "grid", "graphs", "launches"] if backend in ("cuda", "auto") \
                else ["fused", "grid", "launches"]
            for mode in [m for m in modes if m in args.modes.split(",")]:
                try:
                    r = measure_spikegpu(backend, mode, args.steps, model, args.alternate,
                                         args.rounds)
                except Exception as exc:  # a backend that is not there
                    r = dict(error=f"{type(exc).__name__}: {exc}"[:300])
                rows.append(dict(model=model, impl=f"spikegpu/{backend}", mode=mode, **r))
                print("row", json.dumps(rows[-1]), flush=True)
        if args.anchors:
            for kind in ("cpp_standalone", "cuda_standalone"):
                r = measure_anchor(kind, args.steps, model)
                rows.append(dict(model=model, impl=kind, mode="", **r))
                print("row", json.dumps(rows[-1]), flush=True)
    print(f"\n{'model':26} {'implementation':22} {'mode':9} {'us/step':>9} {'spikes':>8}  device")
    for r in rows:
        us = f"{r['us_per_step']:9.2f}" if "us_per_step" in r else "      n/a"
        print(f"{r['model']:26} {r['impl']:22} {r['mode']:9} {us} "
              f"{r.get('spikes', ''):>8}  {r.get('device', r.get('error', ''))}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(host=platform.node(), steps=args.steps, rows=rows), f, indent=1)
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
