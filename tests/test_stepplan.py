"""The step plan (spikegpu/stepplan.py) merges kernels that can run
together and keeps Brian2's order where objects depend on each other;
merged launches (spikegpu/merged.py) give what Brian2 gives."""
import brian2
import numpy as np
import pytest
from brian2 import (Network, NeuronGroup, PoissonInput, SpikeGeneratorGroup, SpikeMonitor,
                    StateMonitor, Synapses, Hz, ms, run, seed)

from conftest import compare, on_device, own


def plan_names():
    """The last run's plan: per launch group, the set of (object, kernel)."""
    plan = brian2.get_device().last_plan
    return [sorted((s.name, s.suffix) for s in e.sections) for e in plan]


def group_of(plan, name, suffix="run"):
    hits = [k for k, g in enumerate(plan) if (name, suffix) in g]
    assert len(hits) == 1, (name, suffix, plan)
    return hits[0]


def inputs():
    # exact arithmetic: integer weights, sums exact in any order
    return SpikeGeneratorGroup(4, [0, 1, 2, 3, 0, 2, 1, 3], [1, 1, 2, 2, 3, 4, 5, 5] * ms)


def atomic_pathways(info=None):
    inp = inputs()
    G = NeuronGroup(3, "v : 1")
    A = Synapses(inp, G, on_pre="v_post += 1", name="a_add")
    A.connect()
    B = Synapses(inp, G, on_pre="v_post += 2*(j+1)", name="b_add")
    B.connect("i != j")
    St = StateMonitor(G, "v", record=True)
    run(7 * ms)
    if info is not None:
        info.append(plan_names())
    return own(v=St.v[:])


def test_atomic_adds_onto_one_target_share_a_launch(backend):
    info = []
    compare(backend, lambda: atomic_pathways(), rtol=0)
    on_device(backend, atomic_pathways, info)
    plan = info[0]
    assert group_of(plan, "a_add_pre") == group_of(plan, "b_add_pre")


def write_then_read(info=None):
    """In one slot, a pathway sets a target variable and the next (by name)
    reads it: Brian2 runs them in this order, so must we."""
    inp = inputs()
    G = NeuronGroup(3, "v : 1\nx : 1")
    G.v = "10*(i+1)"
    A = Synapses(inp, G, on_pre="v_post = v_post + 1 + i", name="a_set")   # not +=: ordered
    A.connect()
    B = Synapses(inp, G, "seen : 1", on_pre="seen = v_post", name="b_read")
    B.connect()
    run(7 * ms)
    if info is not None:
        info.append(plan_names())
    return own(v=G.v[:], seen=B.seen[:])


def test_write_then_read_stay_ordered(backend):
    info = []
    ref = compare(backend, write_then_read, rtol=0)
    assert ref["seen"].max() > 10       # B saw what A wrote in the same step
    on_device(backend, write_then_read, info)
    plan = info[0]
    assert group_of(plan, "a_set_pre") < group_of(plan, "b_read_pre")


def refractory_target(info=None):
    """A pathway onto a refractory group (its on_pre only writes where
    not_refractory) after that group's threshold, which sets not_refractory
    in its template (not in its abstract code): Brian2's
    test_synapses_refractory."""
    source = NeuronGroup(10, "", threshold="True", name="src")
    target = NeuronGroup(10, "dv/dt = 0/second : 1 (unless refractory)",
                         threshold="i >= 5", refractory=brian2.defaultclock.dt, name="tgt")
    S = Synapses(source, target, on_pre="v += 1", name="syn")
    S.connect(j="i")
    run(3 * brian2.defaultclock.dt)
    if info is not None:
        info.append(plan_names())
    return own(v=target.v[:])


def test_threshold_of_refractory_target_before_its_pathway(backend):
    info = []
    ref = compare(backend, refractory_target, rtol=0)
    assert ref["v"][0] > ref["v"][9]       # refractory neurons received less
    on_device(backend, refractory_target, info)
    plan = info[0]
    assert group_of(plan, "tgt_spike_thresholder") < group_of(plan, "syn_pre")


def poisson_inputs(overlap, info=None):
    seed(3)
    G = NeuronGroup(300, "dv/dt = -v/(5*ms) : 1")
    pops = [G[:100], G[100:200], G[200:]] if not overlap else [G[:150], G[100:200], G[150:]]
    inputs = [PoissonInput(p, "v", N=5 + k, rate=50 * Hz * (k + 1), weight=1.0 + k)
              for k, p in enumerate(pops)]
    Network(G, *inputs).run(5 * ms)     # (run() does not collect from lists)
    if info is not None:
        info.append([[n for n, _ in g if n.startswith("poissoninput")]
                     for g in plan_names()])
    return own(v=G.v[:])


@pytest.mark.parametrize("overlap", [False, True])
def test_poisson_inputs_merge(backend, overlap):
    """PoissonInputs only add to their target (atomically): they share a
    launch, on disjoint or overlapping parts of one group."""
    info = []
    a = on_device(backend, poisson_inputs, overlap, info)
    b = on_device(backend, poisson_inputs, overlap)
    # seed(): the same draws; overlapping inputs may add in either order
    np.testing.assert_allclose(a["v"], b["v"], rtol=1e-12)
    assert np.count_nonzero(a["v"][:100]) and np.count_nonzero(a["v"][200:])
    groups = [g for g in info[0] if g]
    assert len(groups) == 1 and len(groups[0]) == 3


def poisson_and_pathway(info=None):
    seed(5)
    G = NeuronGroup(200, "dv/dt = -v/(5*ms) : 1", threshold="v > 4", reset="v = 0")
    P = PoissonInput(G, "v", N=20, rate=200 * Hz, weight=1.0)
    S = Synapses(G, G, on_pre="v_post += 0.5", delay=1 * ms, name="recurrent")
    S.connect("j == (i + 1) % 200")
    M = SpikeMonitor(G)
    Network(G, P, S, M).run(20 * ms)
    if info is not None:
        info.append(plan_names())
    return own(i=M.i[:], t=M.t[:] / ms, v=G.v[:])


def test_poisson_input_shares_the_pathways_launch(backend, monkeypatch):
    import spikegpu.runloop as runloop
    info = []
    merged = on_device(backend, poisson_and_pathway, info)
    assert group_of(info[0], "poissoninput") == group_of(info[0], "recurrent_pre")
    assert len(merged["i"]) > 20
    orig = runloop.plan_step
    monkeypatch.setattr(runloop, "plan_step",
                        lambda dev, objs, clocks, merge=True: orig(dev, objs, clocks, False))
    separate = on_device(backend, poisson_and_pathway)
    np.testing.assert_array_equal(merged["i"], separate["i"])
    np.testing.assert_allclose(merged["v"], separate["v"], rtol=1e-12)


def poisson_statistics():
    seed(4)
    G = NeuronGroup(3000, "v : 1")
    P1 = PoissonInput(G[:1000], "v", N=20, rate=100 * Hz, weight=1.0)  # noqa: F841
    P2 = PoissonInput(G[1000:], "v", N=10, rate=200 * Hz, weight=2.0)  # noqa: F841
    run(10 * ms)
    return own(v=G.v[:])


def test_merged_poisson_inputs_draw_right(backend):
    v = on_device(backend, poisson_statistics)["v"]
    # 100 steps of binomial(N, rate*dt): mean 100*N*p*weight
    for part, (n, p, w) in ((v[:1000], (20, 0.01, 1)), (v[1000:], (10, 0.02, 2))):
        mean, sd = 100 * n * p * w, w * np.sqrt(100 * n * p * (1 - p))
        assert abs(part.mean() - mean) < 5 * sd / np.sqrt(len(part))
        assert part.std() == pytest.approx(sd, rel=0.15)


def many_pathways():
    """A small 'microcircuit': subgroups of one group, a Synapses per pair,
    heterogeneous delays, exact weights (deterministic: compared with
    Brian2's runtime)."""
    G = NeuronGroup(120, "dv/dt = (1.2 - v)/(10*ms) : 1", threshold="v > 1",
                    reset="v = 0", refractory=1 * ms, method="exact")
    G.v = "(i % 17) / 17.0"
    pops = [G[:40], G[40:80], G[80:]]
    syns = []
    for a, src in enumerate(pops):
        for b, tgt in enumerate(pops):
            S = Synapses(src, tgt, "w : 1", on_pre="v_post += w")
            S.connect(f"(i*7 + j*3 + {a + b}) % {5 + a} == 0")
            S.w = f"{(-1) ** a} * (1 + (i + j) % 4) / 64"
            S.delay = "((i + 2*j) % 7) * 0.3*ms"
            syns.append(S)
    M = SpikeMonitor(G)
    Network(G, M, *syns).run(30 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, v=G.v[:])


def test_many_pathways_merged_like_brian2(backend):
    ref = compare(backend, many_pathways)
    assert len(ref["i"]) > 50
    # nine pathways' kernels share launches: far fewer launch groups than kernels
    on_device(backend, many_pathways)


def test_merged_and_unmerged_bitwise_equal(backend, monkeypatch):
    import spikegpu.runloop as runloop
    merged = on_device(backend, many_pathways)
    orig = runloop.plan_step
    monkeypatch.setattr(runloop, "plan_step",
                        lambda dev, objs, clocks, merge=True: orig(dev, objs, clocks, False))
    separate = on_device(backend, many_pathways)
    for k in merged:
        np.testing.assert_array_equal(merged[k], separate[k])


def test_plan_has_few_launches(backend):
    def go():
        out = many_pathways()
        dev = brian2.get_device()
        out["groups"] = np.array([len(dev.last_plan)])
        out["kernels"] = np.array([sum(len(g.sections) for g in dev.last_plan)])
        return out
    got = on_device(backend, go)
    # 9 pathways x (push, run, advance) + neurons + monitor + tick
    assert got["kernels"][0] >= 30
    assert got["groups"][0] <= 8


def many_groups():
    """120 groups of one model: their state updaters share one launch whose
    arrays (600 pointers, 4.8 KB) exceed the 4 KB of classic CUDA kernel
    parameters and PoCL's 1 KB: launched in parts where they must be."""
    groups = []
    for k in range(120):
        G = NeuronGroup(7, """dv/dt = (a - v)/(10*ms) : 1
                              du/dt = (v - u)/(5*ms) : 1
                              dw/dt = (u - w)/(7*ms) : 1
                              dx/dt = (w - x)/(3*ms) : 1
                              a : 1 (constant)""", method="euler")
        G.a = f"{k % 5} + i"
        groups.append(G)
    Network(*groups).run(3 * ms)
    return own(x=np.concatenate([G.x[:] for G in groups]),
               v=np.concatenate([G.v[:] for G in groups]))


def test_many_groups_share_a_launch_in_parts(backend):
    def go():
        out = many_groups()
        dev = brian2.get_device()
        out["sizes"] = np.array([len(e.sections) for e in dev.last_plan])
        return out
    ref = compare(backend, many_groups)
    assert ref["x"].max() > 0
    got = on_device(backend, go)
    assert got["sizes"].max() == 120 + 1        # all updaters (and the tick) merged


def refractory_groups(info=None):
    """Thresholds of refractory groups write lastspike = t in the template:
    they read the clock (only its tick writes it), so they merge."""
    groups = [NeuronGroup(20, "dv/dt = (1.5 + 0.01*i - v)/(10*ms) : 1 (unless refractory)",
                          threshold="v > 1", reset="v = 0", refractory=2 * ms,
                          method="exact") for _ in range(3)]
    mons = [SpikeMonitor(G) for G in groups]
    Network(*groups, *mons).run(20 * ms)
    if info is not None:
        info.append(plan_names())
    return own(i=np.concatenate([M.i[:] + 100 * k for k, M in enumerate(mons)]),
               t=np.concatenate([M.t[:] / ms for M in mons]))


def test_thresholds_of_refractory_groups_merge(backend):
    info = []
    compare(backend, refractory_groups)
    on_device(backend, refractory_groups, info)
    thresholds = {k for k, g in enumerate(info[0]) for name, suffix in g
                  if name.endswith("spike_thresholder") and suffix == "run"}
    assert len(thresholds) == 1
