"""The fused step kernel (spikegpu/stepkernel.py) runs a small network's
whole time step in one work-group; it must give what the separate kernels
give (the same code and random streams), and what Brian2 runtime gives."""
import brian2
import numpy as np
import pytest
from brian2 import (NeuronGroup, PoissonGroup, SpikeMonitor, Synapses,
                    ms, run, seed)

from conftest import assert_same, compare, on_device, own
from test_graphs import model as lif_with_monitors
from test_synapses import gap_junctions, named_pathways_and_stp, propagation, stdp


def noisy_delayed():
    """Brunel-Hakim-like: noise (randn), random connectivity and delays,
    refractoriness, Poisson input.  V is in mV without units and weights
    are multiples of 1/64, so that atomic additions are exact in any order
    and results must be bitwise equal."""
    seed(7)
    G = NeuronGroup(300, "dV/dt = (-V + 27 + 5*sqrt(20*ms)*xi)/(20*ms) : 1",
                    threshold="V > 20", reset="V = 10", refractory=2 * ms,
                    method="euler")
    G.V = "10 + rand()*10"
    P = PoissonGroup(50, rates="20*Hz + i*Hz")
    S = Synapses(G, G, "w : 1", on_pre="V_post += w")
    S.connect(p=0.2)
    S.w = "-floor(1 + rand()*20)/64"
    S.delay = "rand()*4*ms"
    SP = Synapses(P, G, on_pre="V_post += 0.5")
    SP.connect(p=0.1)
    M = SpikeMonitor(G)
    run(50 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, v=G.V[:])


def with_dynamic_runs(fn, which, min_blocks="auto"):
    def run_it():
        brian2.get_device().grid_dynamic_runs = which
        brian2.get_device().grid_min_blocks = min_blocks
        return fn()
    return run_it


def with_mode(fn, fuse, report=True):
    def run_it():
        dev = brian2.get_device()
        if hasattr(dev, "fuse"):       # not on Brian2 runtime
            dev.fuse = fuse
        out = fn()
        if report:
            out["mode"] = np.array([dev.last_run_mode])
        return out
    return run_it


def large_group():
    """More neurons than four work-groups: the threshold compacts block by
    block, then merges (one work-group walks all blocks when fused)."""
    G = NeuronGroup(5000, "dv/dt = (1.1 + 0.5*i/N - v)/(10*ms) : 1", threshold="v > 1",
                    reset="v = 0", method="exact")
    M = SpikeMonitor(G)
    run(20 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, v=G.v[:])


MODELS = {"lif_monitors": (lambda: lif_with_monitors(1234), 0),
          "large_group": (large_group, 0),
          "noisy_delayed": (noisy_delayed, 0),
          "propagation": (propagation, 0),
          "stdp": (stdp, 0),
          "named_pathways_stp": (named_pathways_and_stp, 0),
          # atomic sums add in another order: a few ulp near zero
          "gap_junctions": (gap_junctions, 1e-15)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fused_same_as_separate_kernels(backend, name):
    fn, atol = MODELS[name]
    fused = on_device(backend, with_mode(fn, True))
    separate = on_device(backend, with_mode(fn, False))
    for out in (fused, separate):
        out.pop("graphs", None)     # graphs captured: none when fused
    assert fused.pop("mode")[0] == "fused"
    assert separate.pop("mode")[0] in ("graphs", "launches")
    assert_same(separate, fused, rtol=0, atol=atol)


@pytest.mark.parametrize("dynamic", ["auto", "1", "units", "units/3", "units/auto/table"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_grid_fused_same_as_separate_kernels(backend, name, dynamic, monkeypatch):
    """The fused kernel over the whole device (CUDA, NVIDIA's OpenCL: a
    grid-wide barrier between groups) gives what separate kernels give;
    with every queue's delivery sized by its bundles of the step
    (``dynamic`` '1') and with all deliveries' bundles in one list
    (``units``) as well; '/3': three blocks a multiprocessor (what large
    steps get, `stepkernel.MIN_BLOCKS_LARGE`; CUDA caps the registers);
    '/table': the arrays' addresses in a buffer (as for the microcircuit's
    hundreds of arrays)."""
    from spikegpu import backends
    be = backends.get_backend(backend)
    if not be.supports_grid_sync:
        pytest.skip(f"{backend}: no grid-wide barrier (CUDA, NVIDIA's OpenCL; other OpenCL "
                    "GPUs with SPIKEGPU_OPENCL_GRID=1)")
    fn, atol = MODELS[name]
    which, *rest = dynamic.split("/")
    table = rest[1:] == ["table"]
    fn = with_dynamic_runs(fn, which, *rest[:1])
    params = be.max_param_bytes
    if table:
        if not be.supports_pointer_table:
            pytest.skip(f"{backend}: no pointers in buffers")
        monkeypatch.setattr(be, "max_param_bytes", 64)

    def grid_run():
        out = fn()
        out["pointers"] = np.array([brian2.get_device().last_step_kernel.pointers])
        return out
    from spikegpu import stepkernel
    monkeypatch.setattr(stepkernel, "UNITS_MIN", 1)     # these models' one queue too
    if name == "propagation":
        # two spikes reach one neuron in one step: over the grid their atomic
        # adds onto an inexact v come from different blocks, in either order
        # (seen on the H200: 4 of 1,920 values 1 ulp apart)
        atol = 1e-15
    fused = on_device(backend, with_mode(grid_run, "grid"))
    assert fused.pop("pointers")[0] == table
    monkeypatch.setattr(be, "max_param_bytes", params)
    separate = on_device(backend, with_mode(fn, False))
    for out in (fused, separate):
        out.pop("graphs", None)
    assert fused.pop("mode")[0] == "grid"
    separate.pop("mode")
    assert_same(separate, fused, rtol=0, atol=atol)


def test_fused_against_runtime(backend):
    ref = compare(backend, with_mode(propagation, True, report=False))
    assert len(ref["i"]) > 5


def test_auto_rule_fuses_small_networks_only(backend):
    def script(n):
        brian2.get_device().fuse = "auto"     # also under SPIKEGPU_FUSE=1
        G = NeuronGroup(n, "dv/dt = -v/(10*ms) : 1", threshold="v > 1", reset="v = 0",
                        method="exact")
        run(1 * ms)
        return {"mode": np.array([brian2.get_device().last_run_mode])}

    import spikegpu
    dev = spikegpu.gpu_standalone_device
    big = dev.fuse_max_neurons + 1
    # CUDA: the grid form over all multiprocessors; elsewhere separate kernels
    assert on_device(backend, script, big)["mode"][0] in ("grid", "graphs", "launches")
    small = on_device(backend, script, 100)["mode"][0]
    brian2.set_device("gpu_standalone", backend=backend)
    on_cpu = getattr(dev.backend, "is_cpu", False)
    brian2.device.reinit()
    # a CPU device runs one work-group on one core: never fused by default
    assert small == ("launches" if on_cpu else "fused")


def test_second_run_compiles_nothing(backend):
    """Code objects of a new run take new random streams; the fused kernel
    takes them as arguments, so its source (and binary) stay the same.  And
    the separate kernels of a run's code objects come from the programs of
    the last run, though Brian2 makes a pathway's push code object only for
    the first run (the pending set differs)."""
    def script():
        brian2.get_device().fuse = True
        G = NeuronGroup(50, "dv/dt = (1 - v)/(10*ms) + 0.1*xi/sqrt(ms) : 1",
                        threshold="v > 1", reset="v = 0", method="euler")
        S = Synapses(G, G, on_pre="v_post += 0.01")
        S.connect(p=0.2)
        S.delay = "rand()*2*ms"
        run(1 * ms)
        dev = brian2.get_device()
        built = dev.stats["programs_built"]
        run(1 * ms)
        return {"built": np.array([built, dev.stats["programs_built"]]),
                "mode": np.array([dev.last_run_mode])}

    out = on_device(backend, script)
    assert out["mode"][0] == "fused"
    assert out["built"][1] == out["built"][0]


@pytest.mark.parametrize("table", [False, True])
def test_too_many_arguments(backend, monkeypatch, table):
    """A step whose arrays would not fit a kernel's argument space: a
    backend that can read addresses from a buffer (CUDA) still fuses it,
    with the arrays' addresses in a buffer; others run its kernels
    separately.  Same results either way."""
    from spikegpu import backends
    be = backends.get_backend(backend)
    if table and not be.supports_pointer_table:
        pytest.skip(f"{backend}: no pointers in buffers")
    fused = on_device(backend, with_mode(propagation, True))
    monkeypatch.setattr(be, "max_param_bytes", 64)
    monkeypatch.setattr(be, "supports_pointer_table", table)
    limited = on_device(backend, with_mode(propagation, True))
    assert fused.pop("mode")[0] == "fused"
    assert limited.pop("mode")[0] in (("fused",) if table else ("graphs", "launches"))
    assert_same(fused, limited, rtol=1e-12)


def test_profile_splits_the_loop_by_object(backend):
    """run(profile=True) gives each object's share of the loop; with a cycle
    counter (CUDA) the fused kernel counts it, else a wait per object.  The
    results are those of an unprofiled run."""
    def script(profile):
        brian2.get_device().fuse = True
        seed(3)
        G = NeuronGroup(200, "dv/dt = (1.2 - v)/(10*ms) + 0.1*xi/sqrt(ms) : 1",
                        threshold="v > 1", reset="v = 0", method="euler", name="G")
        S = Synapses(G, G, "w : 1", on_pre="v_post += w", name="S")
        S.connect(j="(i + 1) % N_post")     # one synapse per target: no
        S.w = "-floor(rand()*8)/64"          # atomic sums in varying order
        M = SpikeMonitor(G, name="M")
        net = brian2.Network(G, S, M)
        net.run(5 * ms, profile=profile)
        out = own(i=M.i[:], v=G.v[:])
        if profile:
            info = dict((name, float(t)) for name, t in net.profiling_info)
            out["names"] = np.array(sorted(info))
            out["seconds"] = np.array([sum(info.values()),
                                       brian2.get_device()._last_run_time])
            out["mode"] = np.array([brian2.get_device().last_run_mode])
        return out

    plain = on_device(backend, script, False)
    prof = on_device(backend, script, True)
    counted = _has_cycle_counter(backend)
    assert prof.pop("mode")[0] == ("fused" if counted else "launches")
    names = set(prof.pop("names"))
    # objects that run code: G's updater, thresholder and resetter, the
    # pathway S_pre, the monitor
    assert {"G_stateupdater", "G_spike_thresholder", "G_spike_resetter", "S_pre",
            "M"} <= names, names
    total, loop = prof.pop("seconds")
    assert 0 < total <= loop * 1.0001, (total, loop)
    # the clock's tick is nobody's: Brian2 names objects only
    assert "clock" not in names
    if counted:     # the cycles split the whole loop (the tick folded in)
        assert total == pytest.approx(loop, rel=1e-6)
    assert_same(plain, prof, rtol=0)


def _has_cycle_counter(backend):
    from spikegpu import backends
    return backends.get_backend(backend).has_cycle_counter


@pytest.mark.slow      # PoCL takes minutes to compile the grid form
@pytest.mark.parametrize("name", ["noisy_delayed", "propagation", "large_group"])
def test_grid_form_with_one_block(backend, monkeypatch, name):
    """The grid form's work distribution (groups' work-groups spread over
    the blocks by the table, the dispatch) on any device: with one block
    the grid-wide barrier is trivial, so even a CPU device runs it."""
    from spikegpu import backends
    be = backends.get_backend(backend)
    monkeypatch.setattr(type(be), "supports_grid_sync", True, raising=False)
    monkeypatch.setattr(be, "compute_units", 1)
    fn, atol = MODELS[name]
    fused = on_device(backend, with_mode(fn, "grid"))
    monkeypatch.undo()
    separate = on_device(backend, with_mode(fn, False))
    assert fused.pop("mode")[0] == "grid"
    separate.pop("mode")
    for out in (fused, separate):
        out.pop("graphs", None)
    assert_same(separate, fused, rtol=0, atol=atol)


def test_units_take_short_bundle_deliveries(monkeypatch):
    """The grid form's 'units' (stepkernel._mark_dynamic): a queue delivery
    of short bundles becomes a unit member (the bundle body, no work-groups
    of its own, last in its group) and the kernel has the unit loop; the
    same plan with 'auto', or with its one queue below UNITS_MIN, has none.
    (Results: the grid tests above.)"""
    import spikegpu
    from spikegpu import stepkernel
    brian2.set_device("gpu_standalone", backend="opencl")
    dev = spikegpu.gpu_standalone_device
    try:
        noisy_delayed()

        def mark(which, passes=1):
            return [stepkernel._mark_dynamic(g, 256, passes, which)
                    for g in stepkernel.member_groups(dev, dev.last_plan)]
        assert not any(m.unit for g in mark("auto") for m in g)
        assert not any(m.unit for g in mark("units") for m in g)   # one queue: its mapping
        monkeypatch.setattr(stepkernel, "UNITS_MIN", 1)
        marked = mark("units")
        _, text = stepkernel._kernel_text(marked, grid=True)
        # a unit takes one bundle whatever SPIKEGPU_GRID_RUN_PASSES asks of work-groups
        assert all(m.dynamic[2:] == (1, 1) for g in mark("units", passes=2) for m in g
                   if m.unit)
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")
    units = [m for g in marked for m in g if m.unit]
    assert units
    for g in marked:
        k = [i for i, m in enumerate(g) if m.unit]
        assert k == list(range(len(g) - len(k), len(g)))
    assert all(m.body.endswith("_bundle_body") and m.groups == 0 and 4 <= m.unit <= 32
               for m in units)
    assert "_bundle_body(" in text and "_upb" in text


@pytest.mark.parametrize("name", ["propagation", "noisy_delayed"])
def test_counts_come_from_an_earlier_group(monkeypatch, name):
    """The grid form counts a group's dynamic members' work in an earlier
    group of the step that leaves their queues alone (`stepkernel.
    _count_group`: propagation's deliveries, whose pushes share their
    group), its blocks then read the counts; not where an earlier group
    pushes into those queues (noisy_delayed: delays below a step put its
    push a group earlier).  (Results: the grid tests above.)"""
    import spikegpu
    from spikegpu import stepkernel
    monkeypatch.setattr(stepkernel, "UNITS_MIN", 1)
    brian2.set_device("gpu_standalone", backend="opencl")
    dev = spikegpu.gpu_standalone_device
    try:
        MODELS[name][0]()
        groups = [stepkernel._mark_dynamic(g, 256, 1, "units")
                  for g in stepkernel.member_groups(dev, dev.last_plan)]
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")
    k = [k for k, g in enumerate(groups) if any(m.dynamic for m in g)]
    assert len(k) == 1
    e = stepkernel._count_group(groups, k[0])
    _, text = stepkernel._kernel_text(groups, grid=True)
    queues = {id(m.arrays[i]) for m in groups[k[0]] if m.dynamic for i in m.dynamic[:2]}
    if name == "noisy_delayed":
        assert e is None and "_pre = " not in text
        assert any(id(a) in queues for m in groups[k[0] - 1] for a in m.arrays)
    else:
        assert e is not None and e < k[0]
        assert not any(id(a) in queues for g in groups[e:k[0]] for m in g for a in m.arrays)
        assert text.count("SG_RAW_GROUP == SG_RAW_NGROUPS - 1") == 1
        assert "_sg_dp[SG_LID] = _pre[SG_LID]" in text


def test_threshold_lookback_replaces_the_merge_group():
    """The grid form runs a large group's threshold as one look-back body
    (`stepkernel._lookback_thresholds`): its merge's group goes, the
    published counts are cleared in the group after; not where another
    member of those groups touches the eventspace.  (Results: the grid
    tests above, 'large_group'.)"""
    import spikegpu
    from types import SimpleNamespace as NS
    from spikegpu import stepkernel
    brian2.set_device("gpu_standalone", backend="opencl")
    dev = spikegpu.gpu_standalone_device
    try:
        MODELS["large_group"][0]()
        groups = stepkernel.member_groups(dev, dev.last_plan)
        looked = stepkernel._lookback_thresholds(dev, groups)    # (it copies)
        kinds = [[m.body.rsplit("_", 2)[-2] for m in g] for g in looked]
        k = next(k for k, g in enumerate(kinds) if "lookback" in g)
        kb, blocks = next((k, m) for k, g in enumerate(groups) for m in g
                          if m.body.endswith("_blocks_body"))
        espace = dev.arrays[blocks.codeobj.eventspace_var]
        blocked = [list(g) for g in groups]
        blocked[kb].append(NS(codeobj=None, body="x", arrays=[espace]))
        unchanged = stepkernel._lookback_thresholds(dev, blocked)
        _, text = stepkernel._kernel_text(looked, grid=True)
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")
    assert len(looked) == len(groups) - 1
    assert not any("merge" in g or "blocks" in g for g in kinds)
    assert "clear" in kinds[(k + 1) % len(kinds)] and "clear" not in kinds[k]
    assert "_lookback_body(" in text and "_clear_body(" in text
    assert len(unchanged) == len(groups)
    assert any(m.body.endswith("_merge_body") for g in unchanged for m in g)


def test_counting_group_choice():
    """`stepkernel._count_group`: of the earlier groups that leave the
    queues alone, the largest whose work-groups leave the last block idle
    (it counts while the others work), else the smallest; none past a
    group that uses a queue's counters."""
    from types import SimpleNamespace as NS
    from spikegpu import stepkernel
    qc, qh, other = object(), object(), object()
    dyn = NS(arrays=[qc, qh], dynamic=(0, 1, 1, 1), groups=0)

    def group(n, *arrays):
        return [NS(arrays=list(arrays) or [other], dynamic=None, groups=n)]
    groups = [group(302), group(381), group(1), [dyn]]
    assert stepkernel._count_group(groups, 3, 396) == 1
    assert stepkernel._count_group(groups, 3, 300) == 2      # none idle: the smallest
    assert stepkernel._count_group(groups, 3) == 2
    groups[1] = group(381, qh)                                 # a push into the queue
    assert stepkernel._count_group(groups, 3, 396) == 2
    groups[2] = group(1, qc)
    assert stepkernel._count_group(groups, 3, 396) is None


def test_min_blocks_follow_the_largest_group(monkeypatch):
    """grid_min_blocks 'auto': MIN_BLOCKS_LARGE blocks a multiprocessor only
    where a group of the step has more work-groups over neurons than two a
    multiprocessor (small steps gain nothing and may spill); a number is
    taken as it is."""
    from types import SimpleNamespace
    from spikegpu import stepkernel
    dev = SimpleNamespace(grid_min_blocks="auto", backend=SimpleNamespace(compute_units=10))

    def group(*n, policy="elements"):
        return [SimpleNamespace(groups=k, policy=policy) for k in n]
    assert stepkernel._min_blocks(dev, [group(5, 5), group(10, 10)]) == 1
    assert stepkernel._min_blocks(dev, [group(5), group(10, 11)]) == stepkernel.MIN_BLOCKS_LARGE
    # work-groups over events do not count (they share a budget of the device)
    assert stepkernel._min_blocks(dev, [group(5), group(10) + group(50, policy="spike_blocks")]) == 1
    dev.grid_min_blocks = "2"
    assert stepkernel._min_blocks(dev, [group(5, 100)]) == 2
    assert stepkernel.MIN_BLOCKS_LARGE > 1


def test_addresses_batch_what_address_gives(backend):
    """The step kernel's pointer table asks for all its arrays' addresses at
    once (`Backend.addresses`; OpenCL: a launch per buffer, one download):
    the same addresses as one query per buffer, distinct, not null."""
    import numpy as np
    from spikegpu import backends
    be = backends.get_backend(backend)
    bufs = [be.alloc(8 * (k + 1)) for k in range(5)]
    for k, b in enumerate(bufs):
        be.upload(b, np.arange(k + 1, dtype=np.int64))
    try:
        batch = be.addresses(bufs)
        single = [be.address(b) for b in bufs]
    except NotImplementedError:
        pytest.skip(f"{backend}: no buffer addresses")
    finally:
        for b in bufs:
            be.free(b)
    assert batch == single
    assert len(set(batch)) == len(bufs) and 0 not in batch
