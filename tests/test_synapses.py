"""Synapses on gpu_standalone against Brian2 runtime: creation on the
device, setting synaptic variables, propagation with homogeneous and
heterogeneous delays, plasticity, summed variables."""
import brian2
import numpy as np
import pytest
from brian2 import (NeuronGroup, SpikeGeneratorGroup, SpikeMonitor, StateMonitor,
                    Synapses, TimedArray, defaultclock, ms, run, seed)

from conftest import compare, on_device, on_runtime, own


#: mappings of rows of events to threads (spikegpu.synqueue.choose_rows);
#: None: chosen by row length
ROW_MAPPINGS = [None, "group", "thread", "flat"]


def force_rows(monkeypatch, rows):
    from spikegpu import synqueue
    monkeypatch.setattr(synqueue, "FORCE_ROWS", rows)


def connect_forms():
    G = NeuronGroup(20, "v : 1")
    H = NeuronGroup(15, "v : 1")
    S1 = Synapses(G, H, "w : 1")
    S1.connect(j="k for k in range(i-2, i+3) if k != i", skip_if_invalid=True)
    S2 = Synapses(G, H, "w : 1")
    S2.connect("i > j and (i + j) % 3 == 0")
    S2.connect(i=[1, 2, 3, 19], j=[4, 4, 4, 0])        # several connect() calls
    S3 = Synapses(G, G[5:12], "w : 1")                  # subgroup target
    S3.connect("i == j + 1", n=2)                       # multiple synapses
    S4 = Synapses(G[3:9], H[2:7])
    S4.connect("i == j")
    S5 = Synapses(G, H)
    S5.connect(i="k for k in range(0, N_pre, 3) if k != j")   # over presynaptic
    S6 = Synapses(G, H)                 # negative step, loop-invariant expression
    S6.connect(j="k for k in range(N_post - 1, -1, -2) if k != i")
    return own(i1=S1.i[:], j1=S1.j[:], i2=S2.i[:], j2=S2.j[:], i3=S3.i[:], j3=S3.j[:],
               i4=S4.i[:], j4=S4.j[:], i5=S5.i[:], j5=S5.j[:], i6=S6.i[:], j6=S6.j[:],
               nin=S1.N_incoming[:], nout=S2.N_outgoing[:], nin3=S3.N_incoming[:])


def test_connect_deterministic_forms(backend):
    ref = compare(backend, connect_forms)
    assert len(ref["i1"]) > 50 and len(ref["i5"]) > 0 and len(ref["i6"]) > 100


def multisynaptic():
    G = NeuronGroup(4, "v : 1")
    S = Synapses(G, G, "w : 1", multisynaptic_index="k")
    S.connect("i != j", n=2)
    S.connect(i=[0, 0], j=[1, 1])
    return own(i=S.i[:], j=S.j[:], k=S.k[:])


def test_multisynaptic_index(backend):
    ref = compare(backend, multisynaptic)
    assert ref["k"].max() == 3


def random_connect(p):
    seed(5)
    G = NeuronGroup(400, "v : 1")
    S = Synapses(G, G)
    S.connect(p=p)
    S2 = Synapses(G, G)
    S2.connect(j="k for k in sample(N_post, p=p)")
    S3 = Synapses(G, G)
    S3.connect("i < j", p=p)
    return own(n=[len(S), len(S2), len(S3)], i=S.i[:])


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_connect_random_statistics(backend, p):
    got = on_device(backend, random_connect, p)
    n_pairs = np.array([400 * 400, 400 * 400, 400 * 399 / 2])
    sd = np.sqrt(n_pairs * p * (1 - p))
    assert np.all(np.abs(got["n"] - n_pairs * p) < 5 * sd)
    # same seed, same synapses
    again = on_device(backend, random_connect, p)
    assert np.array_equal(again["i"], got["i"])


def set_synaptic_variables():
    G = NeuronGroup(6, "v : 1", threshold="v > 1")
    S = Synapses(G, G, "w : 1\nu : 1", on_pre="v_post += w")
    S.connect()
    S.w = "i*10 + j"
    S.w["i > j"] = "w * 2"
    S.u = np.arange(36) * 0.5
    S.u[2, 3] = -1
    S.delay = "(i + j)*ms"
    return own(w=S.w[:], u=S.u[:], d=S.delay[:] / ms, w01=S.w[0, 1])


def test_set_synaptic_variables(backend):
    compare(backend, set_synaptic_variables)


def propagation():
    inp = SpikeGeneratorGroup(5, [0, 1, 2, 3, 4, 0, 2, 0], [1, 2, 3, 4, 5, 7, 7, 8.2] * ms)
    G = NeuronGroup(6, "dv/dt = -v/(10*ms) : 1", threshold="v > 0.9", reset="v = 0",
                    method="exact")
    S = Synapses(inp, G, "w : 1", on_pre="v_post += w")
    S.connect(j="k for k in range(6) if k != i")
    S.w = "i*0.1 + j*0.05 + 0.3"
    S.delay = "(i + j) * 2.7*ms"          # up to 24 ms: many spikes in flight
    H = Synapses(inp, G, on_pre="v_post += 0.2", delay=2 * ms)   # homogeneous
    H.connect("i == j")
    Z = Synapses(inp, G, on_pre="v_post += 0.05")                 # no delay
    Z.connect()
    M = SpikeMonitor(G)
    St = StateMonitor(G, "v", record=True)
    run(12 * ms)
    run(20 * ms)                            # spikes in flight across runs
    return own(i=M.i[:], t=M.t[:] / ms, v=St.v[:])


@pytest.mark.parametrize("rows", ROW_MAPPINGS)
def test_propagation_homogeneous_and_heterogeneous_delays(backend, monkeypatch, rows):
    force_rows(monkeypatch, rows)
    ref = compare(backend, propagation)
    assert len(ref["i"]) > 5


def stdp():
    taupre = taupost = 20 * ms
    wmax, Apre = 0.01, 0.01
    Apost = -Apre * 1.05
    rng = np.random.RandomState(1)
    pairs = sorted(set(zip(np.round(rng.uniform(0, 200, 400), 1), rng.randint(0, 50, 400))))
    inp = SpikeGeneratorGroup(50, [p[1] for p in pairs], [p[0] for p in pairs] * ms)
    G = NeuronGroup(3, "dv/dt = -v/(10*ms) : 1", threshold="v > 0.02", reset="v = 0",
                    method="exact")
    S = Synapses(inp, G, """w : 1
                dapre/dt = -apre/taupre : 1 (event-driven)
                dapost/dt = -apost/taupost : 1 (event-driven)""",
                 on_pre="""v_post += w
                           apre += Apre
                           w = clip(w + apost, 0, wmax)""",
                 on_post="""apost += Apost
                            w = clip(w + apre, 0, wmax)""")
    S.connect()
    S.w = "(i*7 + j*3) % 10 * wmax / 10"
    S.delay = "j*0.3*ms"
    M = SpikeMonitor(G)
    run(200 * ms)
    return own(w=S.w[:], i=M.i[:], t=M.t[:] / ms)


def test_stdp_final_weights(backend):
    ref = compare(backend, stdp)
    assert len(ref["i"]) > 100


def gap_junctions():
    G = NeuronGroup(10, """dv/dt = (v0 - v + Igap)/(10*ms) : 1
                          v0 : 1 (constant)
                          Igap : 1
                          count : 1""", threshold="v > 1", reset="v = 0", method="euler")
    G.v0 = "i*0.2"
    S = Synapses(G, G, """w : 1
                    Igap_post = w*(v_pre - v_post) : 1 (summed)
                    dx/dt = -x/(5*ms) : 1 (clock-driven)""",
                 on_pre="x += 1; count_pre += 1", method="euler")
    S.connect("i != j")
    S.w = "0.01*(i+1)"
    St = StateMonitor(G, ["v", "Igap"], record=True)
    run(30 * ms)
    return own(v=St.v[:], igap=St.Igap[:], x=S.x[:], count=G.count[:])


def test_summed_variables_clock_driven_and_pre_updates(backend):
    # atomic sums add in another order: differences of a few ulp near zero
    ref = compare(backend, gap_junctions, atol=1e-15)
    assert ref["count"].max() > 0



def test_order_dependent_effects_run_serially(backend):
    # one synapse per step reaches a target, so the result is defined
    def one_per_step():
        inp = SpikeGeneratorGroup(3, [0, 1, 2], [1, 2, 3] * ms)
        G = NeuronGroup(2, "v : 1")
        S = Synapses(inp, G, "w : 1", on_pre="v_post = v_post * 0.5 + w")
        S.connect(j="0")
        S.w = "i + 1"
        run(5 * ms)
        return own(v=G.v[:])
    compare(backend, one_per_step)


def test_connect_out_of_range_raises(backend):
    def script():
        G = NeuronGroup(10, "v : 1")
        S = Synapses(G, G, name="wrong_synapses")
        S.connect(j="i + 5")
        return S.i[:]

    with pytest.raises(IndexError) as exc:
        on_device(backend, script)
    msg = str(exc.value)
    assert "wrong_synapses" in msg and "j=1" in msg and "0 to 9" in msg


def named_pathways_and_stp():
    inp = SpikeGeneratorGroup(2, [0, 1, 0, 1, 0], [1, 2, 3, 5, 6] * ms)
    G = NeuronGroup(2, "v : 1\nu : 1")
    S = Synapses(inp, G, "w : 1", on_pre={"up": "v_post += w", "down": "u_post -= w"},
                 delay={"up": 1 * ms, "down": 2.5 * ms})
    S.connect()
    S.w = "1 + i + 10*j"
    # Tsodyks-Markram short-term plasticity (Brian2's example), event-driven
    tau_d, tau_f, U = 5 * ms, 20 * ms, 0.3
    T = Synapses(inp, G, """dx/dt = (1 - x)/tau_d : 1 (event-driven)
                           uu : 1""",
                 on_pre="""uu = U + (uu - U)*exp(-(t - lastupdate)/tau_f)
                           uu += U*(1 - uu)
                           v_post += 0.5*uu*x
                           x -= uu*x""",
                 namespace=dict(tau_d=tau_d, tau_f=tau_f, U=U))
    T.connect("i == j")
    T.x = 1
    T.uu = U
    St = StateMonitor(G, ["v", "u"], record=True)
    run(10 * ms)
    return own(v=St.v[:], u=St.u[:], x=T.x[:], uu=T.uu[:])


def test_named_pathways_and_short_term_plasticity(backend):
    ref = compare(backend, named_pathways_and_stp)
    assert ref["u"].min() < 0 and ref["v"].max() > 0


# -- connect() with a fixed-size sample() -------------------------------------
# The choice is random, so the device cannot match Brian2 element for element:
# the tests check what must hold exactly (row sizes against Brian2, distinct
# targets in range and in iteration order) and that the choice is uniform.

def rows(outer, inner, n_outer):
    return [inner[outer == o] for o in range(n_outer)]


def check_sample_rows(outer, inner, sizes, population):
    """Every outer index's row: ``sizes[o]`` distinct elements of
    ``population`` (a list, in iteration order), in that order."""
    assert np.all(np.diff(outer) >= 0), "synapses not grouped by outer index"
    rank = {v: r for r, v in enumerate(population)}
    for o, row in enumerate(rows(outer, inner, len(sizes))):
        assert len(row) == sizes[o], f"row {o}: {len(row)} != {sizes[o]}"
        assert all(v in rank for v in row), f"row {o}: {row} not in {population}"
        assert np.all(np.diff([rank[v] for v in row]) > 0), f"row {o}: {row}"


def sample_forms():
    seed(11)
    G = NeuronGroup(30, "v : 1")
    H = NeuronGroup(25, "v : 1")
    S1 = Synapses(G, H)
    S1.connect(j="k for k in sample(N_post, size=7)")
    S2 = Synapses(G, H)                                  # low, high, step; size from i
    S2.connect(j="k for k in sample(3, N_post, 4, size=i % 7)")
    S3 = Synapses(G, H)                                  # over presynaptic
    S3.connect(i="k for k in sample(N_pre, size=4)")
    S4 = Synapses(G, H)                                  # condition on the outer index
    S4.connect(j="k for k in sample(N_post, size=3) if i % 3 != 0")
    S5 = Synapses(G, H)                                  # negative: none, too big: all
    S5.connect(j="k for k in sample(N_post, size=i - 3)", skip_if_invalid=True)
    S6 = Synapses(G, H)                                  # negative step
    S6.connect(j="k for k in sample(N_post - 1, -1, -2, size=4)")
    S7 = Synapses(G, G[10:20])                           # subgroup target, n=2
    S7.connect(j="k for k in sample(N_post, size=2)", n=2)
    S8 = Synapses(G, H, "w : 1")                         # size from a pre variable
    G.v = "i % 4"
    S8.connect(j="k for k in sample(N_post, size=int(v_pre) + 1)")
    S8.w = "i + j"
    return own(**{f"{x}{n}": getattr(S, x)[:] for n, S in
                  enumerate([S1, S2, S3, S4, S5, S6, S7, S8], 1) for x in "ij"},
               nout1=S1.N_outgoing[:], nout2=S2.N_outgoing[:], nin3=S3.N_incoming[:],
               nout4=S4.N_outgoing[:], nout5=S5.N_outgoing[:], nout6=S6.N_outgoing[:],
               nout7=S7.N_outgoing[:], nout8=S8.N_outgoing[:], w8=S8.w[:])


def test_connect_sample_fixed_size(backend):
    ref = on_runtime(sample_forms)
    got = on_device(backend, sample_forms)
    # row sizes are deterministic: same as Brian2's
    for k in ref:
        if k.startswith("n"):
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        assert got[k].shape == ref[k].shape, k
    n = np.arange(30)
    check_sample_rows(got["i1"], got["j1"], [7] * 30, list(range(25)))
    check_sample_rows(got["i2"], got["j2"], n % 7, list(range(3, 25, 4)))
    check_sample_rows(got["j3"], got["i3"], [4] * 25, list(range(30)))
    check_sample_rows(got["i4"], got["j4"], np.where(n % 3 != 0, 3, 0), list(range(25)))
    check_sample_rows(got["i5"], got["j5"], np.clip(n - 3, 0, 25), list(range(25)))
    # iteration order, like Brian2's cython and C++ standalone templates
    # (its numpy target sorts a sample ascending)
    check_sample_rows(got["i6"], got["j6"], [4] * 30, list(range(24, -1, -2)))
    check_sample_rows(got["i7"][::2], got["j7"][::2], [2] * 30, list(range(10)))
    assert np.array_equal(got["i7"][::2], got["i7"][1::2])
    assert np.array_equal(got["j7"][::2], got["j7"][1::2])
    check_sample_rows(got["i8"], got["j8"], n % 4 + 1, list(range(25)))
    np.testing.assert_array_equal(got["w8"], got["i8"] + got["j8"])
    # rows where the size is the population are not random
    for o in range(28, 30):
        np.testing.assert_array_equal(got["j5"][got["i5"] == o], np.arange(25))
    # the others are (rows of 7 of 25 all alike: chance 1 in 10^147)
    assert len({tuple(r) for r in rows(got["i1"], got["j1"], 30)}) > 1


def connect_script(name, j, n=10, **kwds):
    """A script connecting a group of ``n`` neurons to itself with the
    generator ``j`` (Synapses named ``name``); returns the sources."""
    def script():
        G = NeuronGroup(n, "v : 1")
        S = Synapses(G, G, name=name)
        S.connect(j=j, **kwds)
        return S.i[:]
    return script


def sample_with_condition(cond, skip):
    seed(23)
    G = NeuronGroup(40, "v : 1")
    S = Synapses(G, G)
    S.connect(j=f"i + k - 4 for k in sample(9, size=5){cond}", skip_if_invalid=skip)
    return own(i=S.i[:], j=S.j[:])


def test_connect_sample_then_condition(backend):
    # Brian2 samples first and then applies the condition and skip_if_invalid,
    # so with the same random stream the conditional synapses are the
    # unconditional ones less those that fail (same seed, same code object
    # order: the same stream)
    plain = on_device(backend, sample_with_condition, "", True)
    cond = on_device(backend, sample_with_condition, " if (i + j) % 3 != 0", True)
    keep = (plain["i"] + plain["j"]) % 3 != 0
    np.testing.assert_array_equal(cond["i"], plain["i"][keep])
    np.testing.assert_array_equal(cond["j"], plain["j"][keep])
    assert 0 < keep.sum() < len(keep)
    # skip_if_invalid drops targets outside 0..39: full rows of 5 in the middle
    i, j = plain["i"], plain["j"]
    assert np.all((j >= 0) & (j < 40) & (np.abs(j - i) <= 4))
    counts = np.bincount(i, minlength=40)
    assert np.all(counts[4:36] == 5) and np.all(counts <= 5)
    assert counts[:4].sum() < 20 and counts[36:].sum() < 20   # edges lose some
    ref = on_runtime(sample_with_condition, "", True)
    assert np.array_equal(np.bincount(ref["i"], minlength=40)[4:36], counts[4:36])
    # without skip_if_invalid the edges fail (size 9: every element is taken)
    full = connect_script("edge_synapses", "i + k - 4 for k in sample(9, size=9)", n=40)
    with pytest.raises(IndexError, match="edge_synapses"):
        on_device(backend, full)


def sample_statistics(seed_value):
    seed(seed_value)
    G = NeuronGroup(3000, "v : 1")
    H = NeuronGroup(6, "v : 1")
    S = Synapses(G, H)
    S.connect(j="k for k in sample(N_post, size=2)")
    L = NeuronGroup(1000, "v : 1")
    T = Synapses(G[:200], L)
    T.connect(j="k for k in sample(N_post, size=10)")
    return own(i=S.i[:], j=S.j[:], ti=T.i[:], tj=T.j[:])


def test_connect_sample_uniform_and_reproducible(backend):
    got = on_device(backend, sample_statistics, 3)
    i, j = got["i"], got["j"]
    assert np.array_equal(i, np.repeat(np.arange(3000), 2))
    a, b = j[::2], j[1::2]
    assert np.all(a < b)
    # each of the 15 pairs of 6 targets is equally likely: 5 sigma
    pair = a * 6 + b
    counts = np.array([np.sum(pair == x * 6 + y) for x in range(6) for y in range(x + 1, 6)])
    p = 1 / 15
    assert np.all(np.abs(counts - 3000 * p) < 5 * np.sqrt(3000 * p * (1 - p))), counts
    # each target in 2 of 6 rows on average
    per_target = np.bincount(j, minlength=6)
    p = 2 / 6
    assert np.all(np.abs(per_target - 3000 * p) < 5 * np.sqrt(3000 * p * (1 - p))), per_target
    # a long walk (10 of 1000): targets spread evenly over ten bins
    tj = got["tj"]
    assert len(tj) == 2000 and len(np.unique(got["ti"] * 1000 + tj)) == 2000
    bins = np.bincount(tj // 100, minlength=10)
    assert np.all(np.abs(bins - 200) < 5 * np.sqrt(2000 * 0.1 * 0.9)), bins
    # seed() reproduces the choice, another seed changes it
    again = on_device(backend, sample_statistics, 3)
    assert np.array_equal(again["j"], j) and np.array_equal(again["tj"], tj)
    other = on_device(backend, sample_statistics, 4)
    assert not np.array_equal(other["j"], j) and not np.array_equal(other["tj"], tj)


@pytest.mark.parametrize("size, skip, error, words", [
    ("N_post + 1", False, IndexError, ["bigger than the population size 10", "i=0"]),
    ("i - 5", False, IndexError, ["is negative"]),
    ("i + 6", False, IndexError, ["bigger than the population size 10"]),
])
def test_connect_sample_size_errors(backend, size, skip, error, words):
    script = connect_script("sampled_synapses", f"k for k in sample(N_post, size={size})",
                            skip_if_invalid=skip)

    with pytest.raises(Exception) as exc:           # Brian2 refuses it too
        on_runtime(script)
    assert isinstance(exc.value.__cause__ or exc.value, error)
    with pytest.raises(error) as exc:
        on_device(backend, script)
    msg = str(exc.value)
    assert "sampled_synapses" in msg and all(w in msg for w in words), msg


def test_connect_sample_zero_step(backend):
    script = connect_script("stepless_synapses", "k for k in sample(0, N_post, 0, size=2)")

    with pytest.raises(ValueError, match="stepless_synapses.*step"):
        on_device(backend, script)


# -- spike propagation: homogeneous delays (ring of past spike lists), the
# -- mapping of rows to threads, serial order -----------------------------

def spiking_at(n, indices, steps):
    """A NeuronGroup (so that it has subgroups) whose neuron indices[k]
    spikes in time step steps[k]."""
    pattern = np.zeros((max(steps) + 1, n))
    pattern[steps, indices] = 1
    return NeuronGroup(n, "", threshold="pattern(t, i) > 0.5",
                       namespace=dict(pattern=TimedArray(pattern, dt=0.1 * ms)))


def homogeneous_network(delay_steps, post_delay_steps):
    rng = np.random.RandomState(3)
    # and spikes in the last steps of the first run
    inp = spiking_at(40, np.r_[rng.randint(0, 40, 500), 5, 8, 12, 20, 6, 9],
                     np.r_[rng.randint(1, 350, 500), 172, 172, 172, 172, 171, 171])
    G = NeuronGroup(70, """dv/dt = -v/(5*ms) : 1
                          hits : 1""", threshold="v > 1", reset="v = 0", method="exact")
    # subgroup source; rows of 70 (i % 4 == 0) and of about 8 synapses
    S = Synapses(inp[4:36], G, "w : 1\nc : 1",
                 on_pre="v_post += w\nc += 1",
                 on_post="hits_post += 1\nw -= 0.001",
                 delay={"pre": delay_steps * 0.1 * ms, "post": post_delay_steps * 0.1 * ms})
    S.connect("i % 4 == 0 or (i + 2*j) % 9 == 0")
    S.w = "0.15 + 0.01*((i*7 + j*3) % 10)"
    M = SpikeMonitor(G)
    St = StateMonitor(G, "v", record=[0, 1, 30, 69])
    run(17.3 * ms)
    run(20 * ms)                            # spikes in flight across runs
    return own(i=M.i[:], t=M.t[:] / ms, v=St.v[:], w=S.w[:], c=S.c[:], hits=G.hits[:])


@pytest.mark.parametrize("rows", ROW_MAPPINGS)
@pytest.mark.parametrize("delay_steps,post_delay_steps", [(0, 0), (1, 0), (23, 7)])
def test_homogeneous_delays_subgroup_pre_and_post(backend, monkeypatch, rows,
                                                   delay_steps, post_delay_steps):
    force_rows(monkeypatch, rows)
    ref = compare(backend, homogeneous_network, delay_steps, post_delay_steps)
    assert len(ref["i"]) > 20 and ref["hits"].max() > 0 and ref["c"].max() > 5


def delay_changes():
    inp = SpikeGeneratorGroup(3, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 2],
                              [1, 2, 3, 4.2, 4.4, 4.6, 8, 9, 14.3, 14.5, 14.8, 15, 15.3, 15.4] * ms)
    G = NeuronGroup(3, "v : 1\nu : 1")
    S = Synapses(inp, G, "w : 1", on_pre="v_post += w", delay=2 * ms)   # scalar delay
    S.connect()
    S.w = "1 + i + 10*j"
    P = Synapses(inp, G, "w : 1", on_pre="u_post += w")    # a delay per synapse
    P.connect()
    P.w = "1 + i + 10*j"
    P.delay = 2 * ms
    St = StateMonitor(G, ["v", "u"], record=True)
    run(5 * ms)                  # spikes at 4.2-4.6 ms are in flight
    S.delay = 3 * ms             # homogeneous -> homogeneous, longer
    P.delay = 3 * ms
    run(2 * ms)
    S.delay = 0.5 * ms           # shorter: in-flight spikes keep their time
    P.delay = "j * 1*ms"         # heterogeneous
    run(1.5 * ms)
    S.delay = 0 * ms
    P.delay = 1 * ms             # homogeneous again
    run(3 * ms)
    P.delay = "j * 0.25*ms"      # 2.5 steps: rounded as Brian2 rounds
    run(4 * ms)
    defaultclock.dt = 0.05 * ms  # waiting times rescaled to the new dt
    St2 = StateMonitor(G, ["v", "u"], record=True)
    run(3 * ms)
    return own(v=St.v[:], u=St.u[:], v2=St2.v[:], u2=St2.u[:])


def test_delay_changes_between_runs(backend):
    compare(backend, delay_changes)


def with_queue_layout(fn, interleaved):
    """``fn`` with the spike queues' entries slot-major or position-major
    (GPUDevice.queue_interleave); 'switch': the layout changes at every run
    (queues rebuilt, their spikes in flight carried over)."""
    def run_it():
        dev = brian2.get_device()
        if not hasattr(dev, "queue_interleave"):    # Brian2's runtime
            return fn()
        before = dev.queue_interleave
        if interleaved == "switch":
            from brian2 import Network
            start = Network.run

            def run_switching(self, *args, **kwds):
                dev.queue_interleave = not dev.queue_interleave
                return start(self, *args, **kwds)
            Network.run = run_switching
            try:
                return fn()
            finally:
                Network.run = start
                dev.queue_interleave = before   # the test's next run: the default
        dev.queue_interleave = interleaved
        try:
            return fn()
        finally:
            dev.queue_interleave = before
    return run_it


@pytest.mark.parametrize("layout", [False, True, "switch"])
def test_queue_layouts_agree(backend, layout):
    """Both layouts of a spike queue (and a change of layout between runs,
    with spikes in flight) give Brian2's results."""
    compare(backend, with_queue_layout(delay_changes, layout))
    out = on_device(backend, with_queue_layout(propagation, layout))
    default = on_device(backend, propagation)
    assert set(out) == set(default)
    for k in out:
        np.testing.assert_allclose(out[k], default[k], rtol=0, atol=1e-12)


def serial_order(delay):
    # v_post = 10*v_post + w writes the order of the applied synapses as
    # digits; several synapses reach one target in one step
    inp = spiking_at(70, [0, 1, 2, 3, 4, 5, 1, 3, 5, 0, 2, 4, 5] + list(range(6, 70)) * 2,
                     [10, 10, 10, 10, 10, 10, 20, 20, 20, 35, 35, 35, 50] + [12] * 64 + [30] * 64)
    G = NeuronGroup(20, "v : 1")
    G.run_regularly("v = 0", when="start")
    S = Synapses(inp[1:6], G, "w : 1", on_pre="v_post = 10*v_post + w")
    # synapse order differs from source order; several synapses per pair
    S.connect(i=[2, 0, 4, 2, 1, 0, 3, 4, 2, 0, 1],
              j=[0, 0, 0, 0, 1, 0, 0, 1, 1, 2, 0])
    L = Synapses(inp, G[4:], "w : 1", on_pre="v_post = 10*v_post + w")
    L.connect(j="(i*5 + k) % 16 for k in range(2) if i >= 6")   # 8 per target and step
    for syn in (S, L):
        syn.w = "1 + (i + 3*j) % 9"
        if delay == "hetero":
            syn.delay = "(i % 3) * 1*ms"      # pushes of different steps meet
        else:
            syn.delay = delay
    St = StateMonitor(G, "v", record=True, when="end")
    run(3 * ms)
    run(4 * ms)
    return own(v=St.v[:])


@pytest.mark.parametrize("rows", [None, "group"])
@pytest.mark.parametrize("delay", [0 * ms, 0.5 * ms, "hetero"])
def test_serial_code_applies_synapses_in_brian2_order(backend, monkeypatch, rows, delay):
    force_rows(monkeypatch, rows)          # serial code ignores the mapping
    ref = compare(backend, serial_order, delay, rtol=0)
    assert np.any(ref["v"] > 100)          # several synapses in one step


@pytest.mark.parametrize("rows", ["group", "thread", "flat"])
def test_propagation_kernels_correct_with_one_work_group(backend, monkeypatch, rows):
    # kernels stride over the grid: a grid of one work-group (as a fused
    # step kernel may launch them) gives the same results
    from spikegpu.device import GPUDevice
    launch_size = GPUDevice.launch_size

    def one_group(self, codeobj, policy):
        gs, ls = launch_size(self, codeobj, policy)
        return ls, ls
    monkeypatch.setattr(GPUDevice, "launch_size", one_group)
    force_rows(monkeypatch, rows)
    compare(backend, homogeneous_network, 23, 7)
    compare(backend, propagation)


# -- heterogeneous delays: a queue of (source, delay) bundles ---------------

def bundle_network(info=None):
    # rows of 50 synapses (2 per pair) over 7 delays: several synapses per
    # bundle; many spikes per step, so many bundles and spikes in flight
    rng = np.random.RandomState(7)
    inp = spiking_at(30, rng.randint(0, 30, 900), rng.randint(1, 250, 900))
    G = NeuronGroup(25, "v : 1")
    S = Synapses(inp, G, "w : 1\nc : 1", on_pre="v_post += w\nc += 1")
    S.connect(n=2)
    S.w = "1 + (i + 3*j) % 5"          # integers: sums exact in any order
    S.delay = "((j // 4 + i) % 7) * 0.3*ms"
    St = StateMonitor(G, "v", record=True)
    run(8 * ms)
    # c counts deliveries per synapse: read before delays change (a synapse
    # delivered twice in one step, from an old and a new delay, is counted
    # once by Brian2's numpy target)
    c = np.array(S.c[:])
    if info is not None:
        q = S.pre.queue.structure
        dev = brian2.get_device()
        info.update(sources=S.i[:], delays=np.round(S.delay[:] / (0.1 * ms)).astype(int),
                    Q=q.Q, cap=q.cap, n_bundles=q.n_bundles,
                    queue=dev.arr(q.variables["_sg_queue"]).size)
    # rebuilt queues: the events in flight (long lists of synapses, not
    # whole bundles) are carried over into extra bundles
    S.delay = "((i * 3 + j // 5) % 9) * 0.2*ms"
    run(5 * ms)
    S.delay = "((i + j) % 4) * 0.5*ms"
    run(10 * ms)
    return own(v=St.v[:], c=c)


@pytest.mark.parametrize("rows", ROW_MAPPINGS)
def test_bundles_with_many_spikes_in_flight_exact(backend, monkeypatch, rows):
    force_rows(monkeypatch, rows)
    ref = compare(backend, bundle_network, rtol=0)
    assert ref["v"].max() > 100 and ref["c"].min() > 0


def test_queue_memory_bounded_by_bundles(backend):
    info = {}
    on_device(backend, bundle_network, info)
    pairs = len(set(zip(info["sources"], info["delays"])))   # (source, delay) bundles
    n_syn = len(info["sources"])
    assert info["n_bundles"] == pairs and pairs < n_syn / 5
    assert info["Q"] == info["delays"].max() + 1
    # no events in flight at the first run: slots of n_bundles entries
    assert info["cap"] == pairs
    assert info["queue"] == info["Q"] * pairs


def summed_onto_synapses(dtype):
    brian2.prefs.core.default_integer_dtype = dtype
    try:
        source = NeuronGroup(5, "")
        target = NeuronGroup(5, "")
        conn = Synapses(source, target, "w : integer\nwf : 1")
        conn.connect(j="i")
        conn.w = 1
        summed = Synapses(source, conn, """w_post = x : integer (summed)
                                           wf_post = 0.5*x : 1 (summed)
                                           x : integer""")
        summed.connect("i>=j")
        summed.x = "i"
        run(defaultclock.dt)
        return own(w=conn.w[:], wf=conn.wf[:])
    finally:
        brian2.prefs.core.default_integer_dtype = np.int32


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_summed_variables_from_synapses_onto_synapses(backend, dtype):
    """Brian2's test_synapses_to_synapses_summed_variable: integer targets
    (atomic integer adds), and a float one, on the synapses of another
    Synapses."""
    ref = compare(backend, summed_onto_synapses, dtype)
    assert list(ref["w"]) == [10, 10, 9, 7, 4]
    assert np.allclose(ref["wf"], [5, 5, 4.5, 3.5, 2])


def synapses_of_synapses_connected_while_queued():
    # connect() of a Synapses whose source (or target) is another Synapses
    # whose own connect() is still queued: its size is read when the second
    # connect() is created (Brian2's test_synapses_to_synapses_statevar_access)
    source = NeuronGroup(10, "v:1")
    modulator = NeuronGroup(40, "")
    target = NeuronGroup(10, "v:1")
    conn = Synapses(source, target)
    conn.connect(j="i", n=2)
    modulator_to_conn = Synapses(modulator, conn)
    modulator_to_conn.connect(j="int(i/2)")
    conn_to_modulator = Synapses(conn, modulator)
    conn_to_modulator.connect(j="i")
    conn_to_modulator.connect(j="i + 20")
    run(0 * ms)
    return own(m2c_i=modulator_to_conn.i[:], m2c_j=modulator_to_conn.j[:],
               m2c_i_post=modulator_to_conn.i_post[:],
               c2m_i=conn_to_modulator.i[:], c2m_j=conn_to_modulator.j[:],
               c2m_i_pre=conn_to_modulator.i_pre[:])


def test_synapses_of_synapses_connected_while_queued(backend):
    ref = compare(backend, synapses_of_synapses_connected_while_queued)
    assert list(ref["c2m_j"]) == list(range(40))
    assert list(ref["m2c_i_post"]) == list(np.repeat(np.arange(10), 4))


# -- heterogeneous delays, additive code: the dendritic buffer ---------------

def dendritic_network(variant, info=None):
    # v_post += w with integer weights (sums exact in any order) onto a
    # subgroup, delays of 1..6 steps ('zero': 0..5); w doubles between the
    # runs with spikes in flight (Brian2 reads w at arrival: the queue
    # carries those); 'written': a run_regularly changes w during the run;
    # 'python': a network_operation is in the loop
    from brian2 import Network, collect, network_operation
    rng = np.random.RandomState(11)
    inp = spiking_at(40, rng.randint(0, 40, 600), rng.randint(1, 200, 600))
    G = NeuronGroup(60, "v : 1")
    S = Synapses(inp, G[10:50], "w : 1", on_pre="v_post += w")
    S.connect(condition="(i + j) % 3 == 0")
    S.connect(condition="(i * j) % 7 == 1")     # rows of several delays, n > 1
    S.w = "1 + (i + 3*j) % 5"
    first = 0 if variant == "zero" else 1
    S.delay = f"({first} + (i*7 + j) % 6) * 0.1*ms"
    if variant == "written":
        S.run_regularly("w = w + 1", dt=1 * ms)
    objects = [inp, G, S]
    if variant == "python":
        objects.append(network_operation(lambda: None, dt=5 * ms))
    St = StateMonitor(G, "v", record=True)
    net = Network(objects + [St])
    net.run(8 * ms)
    if info is not None:
        dev = brian2.get_device()
        q = S.pre.queue.structure
        info.update(dendritic=q.dendritic is not None,
                    dleft=int(q._read("_sg_dleft")[0]) if q.dendritic is not None else None,
                    merged=any({s.suffix for s in e.sections if s.codeobj is not None
                                and s.codeobj.template_name == "synapses"} >= {"push", "run"}
                               for e in dev.last_plan if hasattr(e, "sections")))
    S.w = "2 * w"
    net.run(6 * ms)
    return own(v=St.v[:], w=S.w[:])


@pytest.mark.parametrize("variant", ["plain", "zero", "written", "python"])
def test_dendritic_buffer_matches_brian2(backend, variant, monkeypatch):
    import spikegpu
    monkeypatch.setattr(spikegpu.gpu_standalone_device, "dendritic", True)
    ref = compare(backend, dendritic_network, variant, rtol=0)
    assert ref["v"].max() > 20
    info = {}
    on_device(backend, dendritic_network, variant, info)
    # the buffer is used (its counter ran down to 0 over the run) unless
    # something writes w during the run or Python code runs in the loop
    assert info["dendritic"]
    assert info["dleft"] == (-1 if variant in ("written", "python") else 0)
    # delays of at least a step: push and delivery share a launch group
    assert info["merged"] == (variant != "zero")


def test_dendritic_buffer_off_by_default(backend):
    info = {}
    on_device(backend, dendritic_network, "plain", info)
    assert info["dendritic"] is False and info["merged"]
