"""NeuronGroup features on gpu_standalone against Brian2 runtime (numpy)."""
import brian2
import numpy as np
import pytest
from brian2 import (NeuronGroup, PopulationRateMonitor, SpikeMonitor, StateMonitor,
                    EventMonitor, TimedArray, defaultclock, linked_var, ms, run, Hz,
                    network_operation)

from conftest import compare, own


def lif(method="exact", N=50):
    G = NeuronGroup(N, """dv/dt = (I - v)/(10*ms) : 1 (unless refractory)
                          I : 1 (constant)""",
                    threshold="v > 1", reset="v = 0", refractory=2 * ms, method=method)
    G.I = "0.8 + 0.5*i/N"
    G.v = "0.2*i/N"
    M = SpikeMonitor(G)
    S = StateMonitor(G, "v", record=[0, 7, N - 1])
    R = PopulationRateMonitor(G)
    run(30 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, count=M.count[:], v=S.v[:], st=S.t[:] / ms,
                rate=R.rate[:] / Hz, rt=R.t[:] / ms, vend=G.v[:])


@pytest.mark.parametrize("method", ["exact", "euler", "rk2", "rk4", "exponential_euler"])
def test_integrators_threshold_reset_refractory(backend, method):
    ref = compare(backend, lif, method)
    assert len(ref["i"]) > 20


def hh_like():
    # a nonlinear model for the exponential Euler / rk4 paths
    G = NeuronGroup(20, """dv/dt = (-(v + 60) + 30*m**3*(50 - v) + I)/(5*ms) : 1
                           dm/dt = (1/(1 + exp(-(v + 40)/5)) - m)/(1*ms) : 1
                           I : 1 (constant)""",
                    threshold="v > 0", reset="v = -60", method="exponential_euler")
    G.v = -60
    G.I = "i*2"
    S = StateMonitor(G, ["v", "m"], record=True)
    M = SpikeMonitor(G)
    run(20 * ms)
    return own(v=S.v[:], m=S.m[:], i=M.i[:], t=M.t[:] / ms)


def test_nonlinear_multiple_variables(backend):
    compare(backend, hh_like)


def refractory_condition():
    G = NeuronGroup(10, """dv/dt = 1/(2*ms) : 1 (unless refractory)
                           dw/dt = -w/(3*ms) : 1""",
                    threshold="v > 1", reset="v = 0; w += 1",
                    refractory="w > 0.5", method="euler")
    M = SpikeMonitor(G)
    G.v = "i*0.1"
    run(20 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, w=G.w[:], nr=G.not_refractory[:])


def test_refractory_condition(backend):
    ref = compare(backend, refractory_condition)
    assert len(ref["i"]) > 0


def subgroups_and_run_regularly():
    G = NeuronGroup(30, """dv/dt = -v/(5*ms) : 1
                           x : 1""", threshold="v > 0.5", reset="v = 0", method="exact")
    a, b = G[:10], G[10:25]
    a.v = 1.2
    b.v = "0.1 + 0.05*i"
    G.run_regularly("v += 0.3*(x + 1)", dt=1 * ms)
    b.x = 1
    Ma = SpikeMonitor(a)
    Mb = SpikeMonitor(b, variables=["x", "v"])
    Sb = StateMonitor(b, "v", record=[0, 3])
    Rb = PopulationRateMonitor(b)
    run(10 * ms)
    return own(ai=Ma.i[:], at=Ma.t[:] / ms, bi=Mb.i[:], bt=Mb.t[:] / ms,
                bx=Mb.x[:], bcount=Mb.count[:], sv=Sb.v[:], rate=Rb.rate[:] / Hz,
                v=G.v[:])


def test_subgroups_run_regularly_monitor_variables(backend):
    ref = compare(backend, subgroups_and_run_regularly)
    assert len(ref["bi"]) > 0


def multiple_runs_and_set_get():
    G = NeuronGroup(5, """dv/dt = -v/(10*ms) + c/ms : 1
                          c : 1 (shared)""", threshold="v > 1", reset="v = 0",
                    method="euler")
    G.c = 0.2
    G.v = [0.0, 0.2, 0.4, 0.6, 0.8]
    M = SpikeMonitor(G)
    run(5 * ms)
    v_mid = G.v[:].copy()
    G.v[2] = 0.95            # set by index between runs
    G.c = 0.05               # change a shared variable
    G.v["i >= 3"] = "v + 0.1"  # string expression with a condition
    run(5 * ms)
    return own(v_mid=v_mid, v=G.v[:], i=M.i[:], t=M.t[:] / ms, c=np.array([G.c[:]]))


def test_multiple_runs_set_get_between(backend):
    compare(backend, multiple_runs_and_set_get)


def timed_array_and_functions():
    ta = TimedArray(np.array([0.0, 1.0, 3.0, -2.0]), dt=2 * ms)
    G = NeuronGroup(8, """dv/dt = (ta(t) + abs(k - 3) + clip(v, -1, 1)*sign(k-4) - v)/(3*ms) : 1
                          u = exprel(v) + sqrt(k + 1.0) + k % 3 + k // 3 + 2**k : 1
                          k : integer (constant)""", method="euler")
    G.k = "i"
    S = StateMonitor(G, ["v", "u"], record=True)
    run(8 * ms)
    return own(v=S.v[:], u=S.u[:])


def test_timedarray_and_math_functions(backend):
    compare(backend, timed_array_and_functions)


def custom_event():
    G = NeuronGroup(6, "dv/dt = (1 + 0.2*i - v)/(4*ms) : 1",
                    events={"half": "v > 0.5 and not crossed"}, method="exact")
    G.variables.add_array("crossed", size=6, dtype=bool)
    G.run_on_event("half", "crossed = True")
    E = EventMonitor(G, "half", variables=["v"])
    run(5 * ms)
    return own(i=E.i[:], t=E.t[:] / ms, v=E.v[:])


def test_event_monitor_custom_event(backend):
    ref = compare(backend, custom_event)
    assert len(ref["i"]) == 6


def statemonitor_dt():
    G = NeuronGroup(3, "dv/dt = (1 - v)/(5*ms) : 1", method="exact")
    S = StateMonitor(G, "v", record=True, dt=0.5 * ms)
    run(5 * ms)
    return own(v=S.v[:], t=S.t[:] / ms)


def test_statemonitor_own_dt(backend):
    ref = compare(backend, statemonitor_dt)
    assert ref["t"].shape == (10,)


def network_op():
    G = NeuronGroup(4, "dv/dt = (1 - v)/(5*ms) : 1", method="exact")
    seen = []

    @network_operation(dt=1 * ms)
    def kick():
        seen.append(G.v[:].copy())
        G.v[0] = 0

    run(4 * ms)
    return own(seen=np.array(seen), v=G.v[:])


def test_network_operation_reads_and_writes(backend):
    compare(backend, network_op)


def large_group():
    # more neurons than one work-group handles: the multi-block threshold
    G = NeuronGroup(5000, """dv/dt = (I - v)/(10*ms) : 1 (unless refractory)
                             I : 1 (constant)""",
                    threshold="v > 1", reset="v = 0", refractory=1 * ms, method="exact")
    G.I = "0.9 + 0.4*((i*7919) % 5000)/5000"
    M = SpikeMonitor(G)
    R = PopulationRateMonitor(G[1000:3000])
    run(15 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, rate=R.rate[:] / Hz, ls=G.lastspike[:] / ms)


def test_large_group_threshold(backend):
    ref = compare(backend, large_group)
    assert len(ref["i"]) > 100


def linked_variables():
    # Names fix the order of the two state updates (Brian2 breaks ties of
    # one slot by name; automatic names such as neurongroup_9 and
    # neurongroup_10 would order them differently from one run to the
    # next: a failure seen once on the H200 with 12 workers)
    G1 = NeuronGroup(5, "dv/dt = (i*0.1 - v)/(5*ms) : 1", method="exact", name="lv_G1")
    G2 = NeuronGroup(5, """v : 1 (linked)
                          dw/dt = (v - w)/(2*ms) : 1""",
                     threshold="w > 0.2", reset="w = 0", method="euler", name="lv_G2")
    G2.v = linked_var(G1, "v")
    G3 = NeuronGroup(2, "x : 1 (linked)")
    G3.x = linked_var(G1.v, index=[4, 1])
    M = SpikeMonitor(G2)
    S = StateMonitor(G3, "x", record=True)
    run(10 * ms)
    return own(w=G2.w[:], i=M.i[:], t=M.t[:] / ms, x=S.x[:], x_now=G3.x[:])


def test_linked_variables(backend):
    ref = compare(backend, linked_variables)
    assert len(ref["i"]) > 0 and ref["x"].max() > 0.3


def record_single_timestep():
    from brian2 import StateMonitor, PopulationRateMonitor
    G = NeuronGroup(3, "dv/dt = -v/(5*ms) : 1", threshold="v > 0.95", reset="v = 0",
                    method="exact")
    G.v = [1, 0.5, 0.97]
    mon = StateMonitor(G, "v", record=True)
    run(0.5 * ms)
    mon.record_single_timestep()
    return own(t=mon.t[:], v=mon.v[:], G_v=G.v[:])


def test_state_monitor_record_single_timestep(backend):
    """After a run, record_single_timestep() records the values at the end
    of the run, at t = the end of the run (Brian2's test of the same name)."""
    ref = compare(backend, record_single_timestep)
    assert len(ref["t"]) == 6 and np.isclose(ref["t"][-1], 0.5e-3)
    assert np.array_equal(ref["v"][:, -1], ref["G_v"])


def event_clocks():
    from brian2 import EventClock, StateMonitor
    G = NeuronGroup(3, "dv/dt = -v/(10*ms) : 1\nu : 1", method="exact")
    G.v = [0.2, 0.5, 1.0]
    G.run_at("u += v", times=[0, 1, 3, 7] * defaultclock.dt)
    M = StateMonitor(G, ["u", "v"], record=True, when="end")
    Me = StateMonitor(G, "v", record=True, clock=EventClock(times=[0.0, 0.25, 0.5, 2.0] * ms))
    run(0.6 * ms)
    run(0.6 * ms)          # the event clocks continue where they were
    return own(u=G.u[:], Mu=M.u[:], Mt=M.t[:], Met=Me.t[:], Mev=Me.v[:])


@pytest.mark.skipif(not hasattr(brian2, "EventClock"),
                    reason="Brian2 < 2.10 has no EventClock (run_at)")
def test_event_clocks(backend):
    """Brian2 2.10's event-driven clocks: run_at and a StateMonitor on an
    EventClock, next to the default clock, over two runs."""
    ref = compare(backend, event_clocks)
    assert np.allclose(ref["Met"], [0.0, 0.25e-3, 0.5e-3])
    assert len(ref["Mt"]) == 12 and np.count_nonzero(np.diff(ref["Mu"][0])) == 3
