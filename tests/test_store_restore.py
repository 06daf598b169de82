"""store()/restore() on gpu_standalone against Brian2 runtime: state
variables, synapses, monitors (which shrink back), clocks, spikes in flight
in the spike queues, named states, files, the random state."""
import os

import numpy as np
import pytest
from brian2 import (Network, NeuronGroup, PopulationRateMonitor, SpikeGeneratorGroup,
                    SpikeMonitor, StateMonitor, Synapses, defaultclock, ms,
                    network_operation, restore, run, seed, store)

from conftest import compare, on_device, on_runtime, own

# values taken before a later restore()/run() are copied at once: Brian2's
# runtime arrays are views that the next run overwrites
snap = own


def lif_network():
    inp = SpikeGeneratorGroup(8, np.arange(40) % 8, np.linspace(1, 38, 40) * ms)
    G = NeuronGroup(5, """dv/dt = -v/tau : 1
                          tau : second""", threshold="v > 1", reset="v = 0",
                    method="exact")
    G.tau = 10 * ms
    S = Synapses(inp, G, "w : 1", on_pre="v_post += w")
    S.connect()
    S.w = "0.1 + 0.05*i + 0.03*j"
    S.delay = "(i + 2*j) * 0.4*ms"
    return inp, G, S


def classic_pattern():
    # Brian2's documented use: one initial state, runs with other parameters
    inp, G, S = lif_network()
    M = SpikeMonitor(G)
    St = StateMonitor(G, "v", record=[0, 4])
    store()
    out = {}
    for k, tau in enumerate([5, 10, 20]):
        restore()
        G.tau = tau * ms
        run(40 * ms)
        out.update(snap(**{f"i{k}": M.i[:], f"t{k}": M.t[:] / ms, f"v{k}": St.v[:],
                           f"clock{k}": [defaultclock.t / ms, len(St.t)]}))
    return own(**out)


def test_store_run_restore_with_other_parameter(backend):
    ref = compare(backend, classic_pattern)
    # the parameter matters and each run started from the stored state
    assert len(ref["i0"]) < len(ref["i1"]) < len(ref["i2"])
    assert list(ref["clock2"]) == [40, 400]


def named_states_and_shrinking_monitors():
    inp, G, S = lif_network()
    M = SpikeMonitor(G, variables="v")
    St = StateMonitor(G, "v", record=True)
    R = PopulationRateMonitor(G)
    net = Network(inp, G, S, M, St, R)
    net.store("start")
    net.run(15 * ms)
    net.store("middle")
    net.run(15 * ms)
    first = snap(i=M.i[:], t=M.t[:] / ms, mv=M.v[:], v=St.v[:], rate=R.rate[:] / (1 / ms),
                 w=S.w[:])
    S.w = "w * 3"       # changed after store: restore() brings it back
    net.run(5 * ms)
    sizes = [len(M.i), St.v.shape[1], len(R.t)]
    net.restore("middle")
    sizes += [len(M.i), St.v.shape[1], len(R.t), net.t / ms, len(M.count[:])]
    net.run(15 * ms)
    again = snap(i=M.i[:], t=M.t[:] / ms, mv=M.v[:], v=St.v[:], rate=R.rate[:] / (1 / ms),
                 w=S.w[:])
    net.restore("start")
    sizes += [len(M.i), St.v.shape[1], len(R.t), net.t / ms, M.count[:].sum()]
    return own(sizes=sizes, **{f"first_{k}": v for k, v in first.items()},
               **{f"again_{k}": v for k, v in again.items()})


def test_named_states_and_monitors_shrink(backend):
    ref = compare(backend, named_states_and_shrinking_monitors)
    for k in ("i", "t", "mv", "v", "rate", "w"):
        np.testing.assert_array_equal(ref[f"again_{k}"], ref[f"first_{k}"])
    sizes = ref["sizes"]
    assert sizes[0] > sizes[3] > 0 and sizes[1] == 350 and sizes[4] == 150
    assert list(sizes[-5:]) == [0, 0, 0, 0, 0]


def feedforward(connect=True):
    # fixed names: a state can be restored into objects created anew
    inp = SpikeGeneratorGroup(6, [0, 1, 2, 3, 4, 5, 0, 2, 4, 1, 3, 5],
                              [1, 1.5, 2, 2.5, 3, 3.2, 6, 6.1, 6.3, 9, 9.4, 9.9] * ms,
                              name="inp")
    G = NeuronGroup(4, "dv/dt = -v/(20*ms) : 1", threshold="v > 1.2", reset="v = 0",
                    method="exact", name="target")
    S = Synapses(inp, G, "w : 1", on_pre="v_post += w", name="syn")
    # one delay for all: a ring of spikes rather than a queue of synapses
    H = Synapses(inp, G, on_pre="v_post += 0.25", delay=3.5 * ms, name="hom")
    if connect:
        S.connect("(i + j) % 3 != 0")
        S.w = "0.3 + 0.07*i + 0.05*j"
        S.delay = "((7*i + 3*j) % 11) * 0.9*ms"   # 0 to 9 ms
        H.connect("j == i % 4")
    M = SpikeMonitor(G, name="spikes")
    St = StateMonitor(G, "v", record=True, name="v")
    return Network(inp, G, S, H, M, St), S, M, St


def spikes_in_flight():
    net, S, M, St = feedforward()
    net.store("empty")          # before the first run: no queue yet
    net.run(4 * ms)             # input spikes are now in flight (delays up to 9 ms)
    net.store()
    net.run(16 * ms)
    first = snap(i=M.i[:], t=M.t[:] / ms, v=St.v[:])
    out = {}
    for k in range(2):
        net.restore()
        net.run(16 * ms)
        out.update(snap(**{f"i{k}": M.i[:], f"t{k}": M.t[:] / ms, f"v{k}": St.v[:]}))
    # restored with weights changed after restore(): the same spikes arrive
    net.restore()
    S.w = "w * 2"
    net.run(16 * ms)
    out.update(snap(i2=M.i[:], t2=M.t[:] / ms, v2=St.v[:]))
    # the state stored before the first run has no spikes in flight
    net.restore("empty")
    net.run(20 * ms)
    out.update(snap(v_empty=St.v[:]))
    return own(**out, **{f"first_{k}": v for k, v in first.items()})


def test_spikes_in_flight_across_store_restore(backend):
    ref = compare(backend, spikes_in_flight)
    for k in range(2):
        np.testing.assert_array_equal(ref[f"v{k}"], ref["first_v"])
        np.testing.assert_array_equal(ref[f"t{k}"], ref["first_t"])
    assert len(ref["first_i"]) >= 2
    assert len(ref["i2"]) > len(ref["first_i"])
    # spikes delivered after 4 ms (in flight at store()) matter
    assert np.any(ref["first_v"][:, 50:] != 0)
    # restoring "empty" (stored before the first run) empties the queues
    # (spikes were in flight when restore() was called) and replays from t=0
    np.testing.assert_array_equal(ref["v_empty"], ref["first_v"])


def delays_changed_after_store():
    net, S, M, St = feedforward()
    net.run(4 * ms)
    net.store()
    delays = S.delay[:] / ms
    net.run(16 * ms)
    first = snap(t=M.t[:] / ms, v=St.v[:])
    S.delay = "2*ms"            # a new queue, with spikes in flight
    net.run(3 * ms)
    net.restore()               # the stored delays and spikes come back
    restored = S.delay[:] / ms
    net.run(16 * ms)
    return own(delays=delays, restored=restored, t=M.t[:] / ms, v=St.v[:],
               **{f"first_{k}": v for k, v in first.items()})


def test_restore_brings_back_delays_and_their_queue(backend):
    # Brian2 2.9's runtime does not store heterogeneous delays (brian2 #1726),
    # so this is checked on the device alone
    got = on_device(backend, delays_changed_after_store)
    assert len(np.unique(got["delays"])) > 5
    np.testing.assert_array_equal(got["restored"], got["delays"])
    np.testing.assert_array_equal(got["t"], got["first_t"])
    np.testing.assert_array_equal(got["v"], got["first_v"])


def store_to_file(path, connect=True):
    net, S, M, St = feedforward()
    net.store(filename=path)
    net.run(5 * ms)
    net.store("second", filename=path)
    net.run(10 * ms)
    full = snap(i=M.i[:], t=M.t[:] / ms, v=St.v[:])
    del net, S, M, St
    out = {}
    for name, T in (("default", 15), ("second", 10)):
        # new objects with the same names (without connect(): restore()
        # creates the synapses)
        net, S, M, St = feedforward(connect)
        net.restore(name, filename=path)
        n_syn = len(S)
        net.run(T * ms)
        out.update(snap(**{f"{name}_i": M.i[:], f"{name}_t": M.t[:] / ms,
                           f"{name}_v": St.v[:], f"{name}_nsyn": n_syn}))
        del net, S, M, St
    os.remove(path)
    return own(**out, **{f"full_{k}": v for k, v in full.items()})


def test_store_and_restore_file_into_new_objects(backend, tmp_path):
    ref = compare(backend, store_to_file, str(tmp_path / "state.pickle"))
    for name in ("default", "second"):
        for k in ("i", "t", "v"):
            np.testing.assert_array_equal(ref[f"{name}_{k}"], ref[f"full_{k}"])
    assert ref["default_nsyn"] == 16 and len(ref["full_i"]) > 0
    # synapses (with their delays) created by restore() alone; Brian2 2.9's
    # runtime does not store delays (brian2 #1726), so on the device alone
    got = on_device(backend, store_to_file, str(tmp_path / "state2.pickle"), False)
    for name in ("default", "second"):
        for k in ("i", "t", "v", "nsyn"):
            np.testing.assert_array_equal(got[f"{name}_{k}"], ref[f"{name}_{k}"])


def noisy(path=None, seed_value=None, restore_from=None):
    # random numbers: noise (per step), reset, synaptic transmission and a
    # one-off rand() after store(); target sums of synapses are exact, so
    # any difference comes from the random numbers
    if seed_value is not None:
        seed(seed_value)
    G = NeuronGroup(50, """dv/dt = (1.1 - v)/(10*ms) + 0.3*xi/sqrt(ms) : 1
                           u : 1
                           c : 1""", threshold="v > 1", reset="v = rand()*0.5",
                    method="euler", name="noisy")
    S = Synapses(G, G, on_pre="c_post += 1.0*(rand() < 0.5)", delay=1 * ms, name="syn")
    S.connect("j == (i + 1) % 50")
    M = SpikeMonitor(G, name="spikes")
    St = StateMonitor(G, "v", record=[0, 7], name="v")
    net = Network(G, S, M, St)
    if restore_from is not None:
        net.restore(filename=restore_from, restore_random_state=True)
    else:
        net.run(3 * ms)
        net.store(filename=path)
    results = []
    for restore_random_state in (None, False, True):
        if restore_random_state is not None:
            net.restore(filename=path, restore_random_state=restore_random_state)
        G.u = "rand()"
        net.run(20 * ms)
        results.append(snap(v=St.v[:], i=M.i[:], t=M.t[:] / ms, c=G.c[:], u=G.u[:],
                            vend=G.v[:]))
        if restore_from is not None:
            break
    return own(**{f"{k}{n}": v for n, r in enumerate(results) for k, v in r.items()})


def test_restore_random_state_gives_bitwise_identical_runs(backend, tmp_path):
    path = str(tmp_path / "noisy.pickle")
    got = on_device(backend, noisy, path)
    assert len(got["i0"]) > 50 and got["c0"].sum() > 10
    for k in ("v", "i", "t", "c", "u", "vend"):
        a, b = got[f"{k}0"], got[f"{k}2"]
        assert a.shape == b.shape and a.tobytes() == b.tobytes(), k
    # without the random state, random numbers continue (new ones)
    assert not np.array_equal(got["u0"], got["u1"])
    assert not np.array_equal(got["vend0"], got["vend1"])
    # the key of an unseeded run is in the state: a fresh device with another
    # seed repeats the stored run after restore(restore_random_state=True)
    again = on_device(backend, noisy, seed_value=12345, restore_from=path)
    for k in ("v", "i", "t", "c", "u", "vend"):
        assert np.array_equal(again[f"{k}0"], got[f"{k}0"]), k


def with_queue():
    inp = SpikeGeneratorGroup(2, [0, 1], [1, 2] * ms, name="inp")
    G = NeuronGroup(2, "v : 1", name="g")
    S = Synapses(inp, G, on_pre="v_post += 1", delay=5 * ms, name="s")
    S.connect(j="i")
    net = Network(inp, G, S)
    net.run(3 * ms)             # spikes in flight
    return net


def test_errors(backend, tmp_path):
    path = str(tmp_path / "runtime.pickle")
    on_runtime(lambda: with_queue().store(filename=path) or {})

    def restore_runtime_state(restore_random_state):
        with_queue().restore(filename=path, restore_random_state=restore_random_state)
        return {}

    with pytest.raises(ValueError, match="random state was not stored by gpu_standalone"):
        on_device(backend, restore_runtime_state, True)
    with pytest.raises(ValueError, match="spike queue was not stored by gpu_standalone"):
        on_device(backend, restore_runtime_state, False)

    def store_during_run():
        G = NeuronGroup(2, "v : 1")

        @network_operation(dt=1 * ms)
        def op():
            store()

        run(2 * ms)
        return {}

    with pytest.raises(NotImplementedError, match="during a run"):
        on_device(backend, store_during_run)
