#!/usr/bin/env python3
"""Multicompartment neurons (SpatialNeuron): spikegpu against Brian2's
cpp_standalone, each point in a process of its own.

(a) ``neuron``: one neuron with a large branched morphology: a soma with
    Hodgkin-Huxley channels and two passive dendritic trees (binary, Rall's
    3/2 rule for the diameters), about 1e3, 1e4 or 1e5 compartments
    (``--sizes``); a constant current into the soma makes it fire.
(b) ``network``: 100 neurons of 100 compartments (a soma with
    Hodgkin-Huxley channels and three passive dendrites), each with a
    constant current of its own into the soma and excitatory conductance
    synapses from ``--fanout`` other neurons onto dendritic compartments
    (1 ms delay).  Brian2 makes each neuron an object of its own: 100
    SpatialNeurons and 100 x fanout Synapses.

Both first run a few steps (compilation, warm-up), then the measured run;
the loop time is Brian2's (``device._last_run_time``).  Every point saves
its final state; the table gives each spikegpu point's largest difference
in v from cpp_standalone (mV) and whether the spike counts agree.

    python benchmarks/spatial.py                        # here: PoCL, cpp_standalone on 2 threads
    python benchmarks/spatial.py --backends cuda,opencl --threads 16   # on the GPU host
    python benchmarks/spatial.py --what neuron --sizes 100000 --steps 500

The network's cpp_standalone build (Brian2 2.9: ~2,200 files) is long:
``--cpp-generate DIR`` only generates its project (~25 s, no compiler
needed: it can run off the measuring host), ``--cpp-project DIR`` then
compiles (objects.cpp at -O0: see project_point) and runs it as the
cpp_standalone point of the same model:

    python benchmarks/spatial.py --what network --threads 16 --cpp-generate /tmp/net
    python benchmarks/spatial.py --what network --backends cuda --threads 16 --cpp-project /tmp/net

On a machine whose cores other work shares, OpenMP's spinning threads wait
for descheduled ones (2 threads here: 16 ms a step instead of 0.09 ms for
1e3 compartments); OMP_WAIT_POLICY=passive avoids that (recorded in the
JSON).
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

#: time steps of the measured run by model (CPU points stay within ~1 min)
DEFAULT_STEPS = {1000: 4000, 10000: 1000, 100000: 200, "network": 1000}
WARMUP_STEPS = 20
DT_MS = 0.025

HH = """
Im = gl*(El - v) + gNa*m**3*h*(ENa - v) + gK*n**4*(EK - v) + gs*(Es - v) : amp/meter**2
dm/dt = alpham*(1 - m) - betam*m : 1
dn/dt = alphan*(1 - n) - betan*n : 1
dh/dt = alphah*(1 - h) - betah*h : 1
alpham = (0.1/mV)*10*mV/exprel((-v + 25*mV + El)/(10*mV))/ms : Hz
betam = 4*exp((-v + El)/(18*mV))/ms : Hz
alphah = 0.07*exp((-v + El)/(20*mV))/ms : Hz
betah = 1/(exp((-v + 30*mV + El)/(10*mV)) + 1)/ms : Hz
alphan = (0.01/mV)*10*mV/exprel((-v + 10*mV + El)/(10*mV))/ms : Hz
betan = 0.125*exp((-v + El)/(80*mV))/ms : Hz
dgs/dt = -gs/(3*ms) : siemens/meter**2
gNa : siemens/meter**2 (constant)
gK : siemens/meter**2 (constant)
nspikes : 1
I : amp (point current, constant)
"""


def namespace():
    from brian2 import mV, msiemens, cm
    return dict(El=-65 * mV, ENa=50 * mV, EK=-77 * mV, Es=0 * mV,
                gl=0.3 * msiemens / cm ** 2)


def tree_morphology(n_comp):
    """A soma and two binary dendritic trees of depth d (2^(d+1) - 2
    sections of equal compartment counts), about ``n_comp`` compartments."""
    import numpy as np
    from brian2 import Cylinder, Soma, um
    depth = max(1, int(round(np.log2(n_comp / 40 + 2))) - 1)
    nsec = 2 ** (depth + 1) - 2
    per = max(1, int(round((n_comp - 1) / nsec)))
    soma = Soma(diameter=30 * um)

    def grow(parent, level, diameter, length):
        if level > depth:
            return
        for side in ("L", "R"):
            child = Cylinder(n=per, diameter=diameter * um, length=length * um)
            setattr(parent, side, child)
            grow(child, level + 1, diameter / 2 ** (2 / 3), length * 0.8)
    grow(soma, 1, 4.0, 300.0)
    return soma


def neuron_model(n_comp, name="neuron"):
    from brian2 import SpatialNeuron, cm, msiemens, ohm, uF, mV
    morpho = tree_morphology(n_comp)
    neuron = SpatialNeuron(morpho, HH, Cm=1 * uF / cm ** 2, Ri=100 * ohm * cm,
                           method="exponential_euler", threshold="v > -20*mV",
                           threshold_location=0, refractory="v > -40*mV",
                           reset="nspikes += 1", namespace=namespace(), name=name)
    neuron.v = -65 * mV
    neuron.m, neuron.h, neuron.n = 0.0529, 0.596, 0.3177
    neuron.main.gNa = 120 * msiemens / cm ** 2
    neuron.main.gK = 36 * msiemens / cm ** 2
    return neuron


def build_neuron(n_comp):
    from brian2 import nA
    neuron = neuron_model(n_comp)
    neuron.I[0] = 3 * nA
    return [neuron], [neuron]


def build_network(n_neurons=100, n_comp=100, fanout=2, seed_value=7):
    import numpy as np
    from brian2 import Cylinder, Soma, SpatialNeuron, Synapses, cm, msiemens, mV, nA, ohm, uF, um, ms
    rng = np.random.default_rng(seed_value)
    per = (n_comp - 1) // 3
    neurons = []
    for k in range(n_neurons):
        morpho = Soma(diameter=25 * um)
        morpho.d1 = Cylinder(n=per, diameter=2 * um, length=300 * um)
        morpho.d2 = Cylinder(n=per, diameter=1.5 * um, length=250 * um)
        morpho.d3 = Cylinder(n=n_comp - 1 - 2 * per, diameter=1 * um, length=200 * um)
        neuron = SpatialNeuron(morpho, HH, Cm=1 * uF / cm ** 2, Ri=100 * ohm * cm,
                               method="exponential_euler", threshold="v > -20*mV",
                               threshold_location=0, refractory="v > -40*mV",
                               reset="nspikes += 1", namespace=namespace(),
                               name=f"cell{k}")
        neuron.v = -65 * mV
        neuron.m, neuron.h, neuron.n = 0.0529, 0.596, 0.3177
        neuron.main.gNa = 120 * msiemens / cm ** 2
        neuron.main.gK = 36 * msiemens / cm ** 2
        neuron.I[0] = (0.2 + 0.4 * rng.random()) * nA
        neurons.append(neuron)
    synapses = []
    for k in range(n_neurons):
        targets = [(k + 1) % n_neurons] + list(rng.choice(
            [t for t in range(n_neurons) if t not in (k, (k + 1) % n_neurons)],
            size=fanout - 1, replace=False))
        for t in targets:
            S = Synapses(neurons[k], neurons[t], "w : siemens/meter**2 (constant)",
                         on_pre="gs_post += w", delay=1 * ms, name=f"syn{k}_{t}")
            S.connect(i=0, j=rng.choice(np.arange(1, n_comp), size=3, replace=False))
            S.w = 30 * msiemens / cm ** 2
            synapses.append(S)
    return neurons + synapses, neurons


def point(args):
    """One measurement in this process: a RESULT line on stdout; the final
    state in args.state (npz)."""
    import numpy as np
    import brian2
    from brian2 import Network, defaultclock, ms, prefs, set_device
    kind = args.impl
    if kind.startswith("spikegpu"):
        import spikegpu  # noqa: F401
        set_device("gpu_standalone", backend=kind.split("/")[1])
    elif kind in ("cpp_standalone", "cpp_generate"):
        directory = args.project if kind == "cpp_generate" else tempfile.mkdtemp()
        set_device("cpp_standalone", build_on_run=False)
        prefs.devices.cpp_standalone.openmp_threads = args.threads
        # Brian2's default is an unbounded 'make -j': the network's ~2,200
        # source files then start ~500 compilers at once (24 GB were not enough)
        prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{max(1, args.threads)}"]
    else:
        raise ValueError(kind)
    defaultclock.dt = DT_MS * ms
    t0 = time.perf_counter()
    if args.model == "network":
        objects, neurons = build_network(args.neurons, args.compartments, args.fanout)
    else:
        objects, neurons = build_neuron(args.size)
    net = Network(objects)
    net.run(WARMUP_STEPS * DT_MS * ms)
    if kind == "cpp_generate":
        net.run(args.steps * DT_MS * ms)
        brian2.device.build(directory=directory, compile=False, run=False)
        write_manifest(args, neurons, time.perf_counter() - t0)
        return
    if kind == "cpp_standalone":
        net.run(args.steps * DT_MS * ms)
        brian2.device.build(directory=directory, run=True, with_output=False)
        loop = brian2.device._last_run_time
    else:
        t1 = time.perf_counter()
        net.run(args.steps * DT_MS * ms)
        loop = brian2.device._last_run_time
        warm_s = t1 - t0
    total = time.perf_counter() - t0
    v = np.concatenate([np.asarray(n.v_[:]) for n in neurons])
    spikes = np.array([int(np.asarray(n.nspikes[:]).sum()) for n in neurons])
    np.savez(args.state, v=v, spikes=spikes)
    profile = None
    if args.profile and kind.startswith("spikegpu"):
        # where a step's time goes, per object (network: summed over the
        # neurons' and synapses' objects of one kind)
        import re
        net.run(args.profile * DT_MS * ms, profile=True)
        profile = {}
        for name, t in net.profiling_info:
            key = re.sub(r"^(cell|syn)\d+(_\d+)?_?", "", name) or "neuron"
            profile[key] = profile.get(key, 0.0) + 1e6 * float(t) / args.profile
    out = dict(impl=kind, model=args.model, steps=args.steps, loop_s=loop,
               us_per_step=1e6 * loop / args.steps, total_s=total,
               compartments=int(sum(len(n) for n in neurons)),
               sections=int(sum(n.flat_morphology.sections for n in neurons)),
               spikes=int(spikes.sum()))
    if args.model == "neuron":
        out["size"] = args.size
    if profile:
        out["profile_us_per_step"] = profile
    if kind.startswith("spikegpu"):
        dev = brian2.get_device()
        out.update(mode=dev.last_run_mode, device=dev.backend.device_name,
                   warmup_s=warm_s, build_s=dev.stats.get("build_s"),
                   launches_per_step=dev.last_run_info.get("launches", 0)
                   / max(1, dev.last_run_info.get("steps", 1)))
    else:
        out.update(threads=args.threads, device=platform.processor() or platform.machine())
    print("RESULT " + json.dumps(out), flush=True)


def write_manifest(args, neurons, generate_s):
    """A generated cpp_standalone project (``--cpp-generate DIR``): where its
    results will be, so that ``cpp_project`` can compile and run it on
    another machine without Brian2's code generation (single-threaded
    Python, half a minute for the network's ~2,200 files, not what is measured)."""
    import numpy as np
    import brian2
    dev = brian2.get_device()

    def files(name):
        return [(dev.get_array_filename(n.variables[name]), np.dtype(n.variables[name].dtype).str)
                for n in neurons]
    manifest = dict(model=args.model, size=args.size, steps=args.steps, threads=args.threads,
                    neurons=args.neurons, compartments=args.compartments, fanout=args.fanout,
                    v=files("v"), nspikes=files("nspikes"), generate_s=generate_s,
                    sections=int(sum(n.flat_morphology.sections for n in neurons)),
                    brian2=brian2.__version__)
    with open(os.path.join(args.project, "spikegpu_manifest.json"), "w") as f:
        json.dump(manifest, f)
    print(f"generated {args.project} in {generate_s:.0f} s (Brian2 {brian2.__version__})")


def project_point(args):
    """Compile (make -j threads) and run a project that ``cpp_generate``
    wrote; a RESULT line like point()'s."""
    import numpy as np
    d = os.path.abspath(args.project)
    with open(os.path.join(d, "spikegpu_manifest.json")) as f:
        m = json.load(f)
    t0 = time.perf_counter()
    if not os.path.exists(os.path.join(d, "objects.o")):
        # objects.cpp holds the arrays' definitions, their file I/O and (for
        # command-line arguments) a set_variable_by_name with a branch per
        # array, no per-step code: the network's (11 MB) alone compiled for
        # over 20 minutes at Brian2's -O3, so it is built at -O0 beside the
        # dependency scan; everything else is Brian2's make
        objects = subprocess.Popen(
            [os.environ.get("CXX", "g++"), "-c", "-Wno-write-strings", "-w", "-O0",
             "-std=c++11", "-I.", "-fopenmp", "objects.cpp", "-o", "objects.o"], cwd=d)
        subprocess.run(["make", "make.deps"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        if objects.wait() != 0:
            raise RuntimeError("objects.cpp did not compile")
    subprocess.run(["make", f"-j{m['threads']}"], cwd=d, check=True,
                   stdout=subprocess.DEVNULL)
    compile_s = time.perf_counter() - t0
    results = os.path.join(d, "results")
    os.makedirs(results, exist_ok=True)
    subprocess.run(["./main", "--results_dir", results + "/"], cwd=d, check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(results, "last_run_info.txt")) as f:
        loop = float(f.read().split()[0])
    v = np.concatenate([np.fromfile(os.path.join(results, n), dtype=t) for n, t in m["v"]])
    spikes = np.array([int(np.fromfile(os.path.join(results, n), dtype=t).sum())
                       for n, t in m["nspikes"]])
    np.savez(args.state, v=v, spikes=spikes)
    out = dict(impl="cpp_standalone", model=m["model"], steps=m["steps"], loop_s=loop,
               us_per_step=1e6 * loop / m["steps"], total_s=time.perf_counter() - t0,
               compile_s=compile_s, generate_s=m["generate_s"], generated_by=m["brian2"],
               compartments=int(v.size), sections=m["sections"], spikes=int(spikes.sum()),
               threads=m["threads"], device=platform.processor() or platform.machine())
    if m["model"] == "neuron":
        out["size"] = m["size"]
    print("RESULT " + json.dumps(out), flush=True)


def run_point(impl, model, size, steps, args, state, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl, "--model", model,
           "--size", str(size), "--steps", str(steps), "--threads", str(args.threads),
           "--neurons", str(args.neurons), "--compartments", str(args.compartments),
           "--fanout", str(args.fanout), "--state", state, "--profile", str(args.profile)]
    if impl == "cpp_project":
        cmd += ["--project", args.cpp_project]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(impl=impl, model=model, size=size, error=f"timeout after {timeout} s")
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["process_s"] = time.perf_counter() - t0
            return r
    return dict(impl=impl, model=model, size=size, error=(p.stderr or p.stdout)[-1500:])


def prebuilt(args, model, size):
    """Whether --cpp-project holds the generated project of this point."""
    if not args.cpp_project:
        return False
    with open(os.path.join(args.cpp_project, "spikegpu_manifest.json")) as f:
        m = json.load(f)
    if model == "network":
        same = [m[k] == getattr(args, k) for k in ("neurons", "compartments", "fanout")]
    else:
        same = [m["size"] == size]
    return m["model"] == model and all(same) and m["threads"] == args.threads


def compare_states(ref, got):
    import numpy as np
    a, b = np.load(ref), np.load(got)
    if a["v"].shape != b["v"].shape:
        return dict(max_dv_mV=None, same_spikes=False)
    return dict(max_dv_mV=float(np.max(np.abs(a["v"] - b["v"]))) * 1e3,
                same_spikes=bool(np.array_equal(a["spikes"], b["spikes"])))


def suite(args):
    tmp = tempfile.mkdtemp(prefix="spikegpu-spatial-")
    impls = [f"spikegpu/{b}" for b in args.backends.split(",") if b]
    if not args.no_cpp:
        impls.append("cpp_standalone")
    cases = []
    if "neuron" in args.what:
        cases += [("neuron", int(float(s))) for s in args.sizes.split(",") if s]
    if "network" in args.what:
        cases.append(("network", args.neurons * args.compartments))
    rows = []
    for model, size in cases:
        steps = args.steps or DEFAULT_STEPS.get(size if model == "neuron" else "network", 500)
        states = {}
        for impl in impls:
            if impl == "cpp_standalone" and prebuilt(args, model, size):
                impl = "cpp_project"
            state = os.path.join(tmp, f"{model}-{size}-{impl.replace('/', '-')}.npz")
            r = run_point(impl, model, size, steps, args, state, args.timeout)
            impl = r["impl"] = "cpp_standalone" if impl == "cpp_project" else impl
            r.setdefault("size", size)
            if "error" not in r:
                states[impl] = state
            rows.append(r)
            print("row", json.dumps(r), flush=True)
        ref = states.get("cpp_standalone")
        for r in rows[-len(impls):]:
            if ref and r["impl"] in states and r["impl"] != "cpp_standalone":
                r.update(compare_states(ref, states[r["impl"]]))
                cpp = [x for x in rows[-len(impls):] if x["impl"] == "cpp_standalone"][0]
                r["speedup_vs_cpp"] = cpp["loop_s"] / r["loop_s"]
    print(f"\nSpatialNeuron benchmark, host {platform.node()}, dt {DT_MS} ms, "
          f"cpp_standalone on {args.threads} threads")
    print(f"{'model':16} {'compartments':>12} {'implementation':24} {'mode':>8} "
          f"{'steps':>6} {'us/step':>10} {'x cpp':>7} {'max|dv| mV':>11} {'spikes':>7}")
    for r in rows:
        label = r["model"] if r["model"] == "network" else f"neuron {r['size']:g}"
        if "error" in r:
            print(f"{label:16} {'':>12} {r['impl']:24} error: {r['error'][-400:]}")
            continue
        impl = r["impl"] + (f" ({r['threads']} thr)" if r["impl"] == "cpp_standalone" else "")
        dv = f"{r['max_dv_mV']:.1e}" if r.get("max_dv_mV") is not None else ""
        sp = str(r["spikes"]) + ("" if r.get("same_spikes", True) else " (!)")
        x = f"{r['speedup_vs_cpp']:.2f}" if "speedup_vs_cpp" in r else ""
        print(f"{label:16} {r['compartments']:>12} {impl:24} {r.get('mode', ''):>8} "
              f"{r['steps']:>6} {r['us_per_step']:10.1f} {x:>7} {dv:>11} {sp:>7}")
    for r in rows:
        if r.get("profile_us_per_step"):
            label = r["model"] if r["model"] == "network" else f"neuron {r['size']:g}"
            parts = sorted(r["profile_us_per_step"].items(), key=lambda x: -x[1])
            print(f"profile {label} {r['impl']} (us/step): "
                  + ", ".join(f"{k} {t:.1f}" for k, t in parts))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(host=platform.node(), dt_ms=DT_MS, threads=args.threads,
                           omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                           rows=rows), f, indent=1)
        print(f"\nwritten: {args.json}")


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", default="neuron,network", help="neuron,network")
    ap.add_argument("--sizes", default="1e3,1e4,1e5", help="neuron: compartments")
    ap.add_argument("--backends", default="opencl", help="spikegpu backends: cuda,opencl")
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="cpp_standalone's OpenMP threads (default: the CPUs available)")
    ap.add_argument("--no-cpp", action="store_true", help="no cpp_standalone points")
    ap.add_argument("--steps", type=int, default=None,
                    help="measured steps (default by model: %s)" % DEFAULT_STEPS)
    ap.add_argument("--neurons", type=int, default=100, help="network: neurons")
    ap.add_argument("--compartments", type=int, default=100, help="network: per neuron")
    ap.add_argument("--fanout", type=int, default=2, help="network: targets per neuron")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per point")
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="spikegpu: also a profiled run of STEPS steps (us per step and object)")
    ap.add_argument("--cpp-generate", metavar="DIR", default=None,
                    help="only generate the cpp_standalone project of the first point "
                         "into DIR (compiled and run elsewhere with --cpp-project)")
    ap.add_argument("--cpp-project", metavar="DIR", default=None,
                    help="the cpp_standalone point of the same model runs this generated "
                         "project (make, ./main) instead of generating its own")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "spatial.json"))
    # one point (the suite runs these in processes of their own)
    ap.add_argument("--impl", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default="neuron", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--state", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--project", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cpp_generate:
        args.impl, args.project = "cpp_generate", os.path.abspath(args.cpp_generate)
        args.model = "network" if args.what.startswith("network") else "neuron"
        args.size = int(float(args.sizes.split(",")[0]))
        key = "network" if args.model == "network" else args.size
        args.steps = args.steps or DEFAULT_STEPS.get(key, 500)
        point(args)
    elif args.impl == "cpp_project":
        project_point(args)
    elif args.impl:
        args.steps = args.steps or 200
        args.state = args.state or os.path.join(tempfile.mkdtemp(), "state.npz")
        point(args)
    else:
        suite(args)


if __name__ == "__main__":
    main()
