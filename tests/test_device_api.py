"""Device-level behaviour: float32, report=, scripts written for
cpp_standalone (build_on_run=False + device.build())."""
import numpy as np
import pytest
import brian2
from brian2 import NeuronGroup, SpikeMonitor, StateMonitor, device, ms, prefs, run

from conftest import compare, on_device, own


def lif():
    G = NeuronGroup(40, "dv/dt = (1.2 + 0.01*i - v)/(10*ms) : 1", threshold="v > 1",
                    reset="v = 0", method="exact")
    M = SpikeMonitor(G)
    S = StateMonitor(G, "v", record=[0, 39])
    run(20 * ms, report=lambda elapsed, done, start, duration: reports.append(done))
    return own(i=M.i[:], t=M.t[:] / ms, v=S.v[:], is32=[G.v[:].dtype == np.float32])


reports = []


def test_float32(backend):
    prefs.core.default_float_dtype = np.float32
    try:
        ref = compare(backend, lif, rtol=1e-5)
    finally:
        prefs.core.default_float_dtype = np.float64
    assert ref["is32"][0]


def test_report_callback_called(backend):
    reports.clear()
    on_device(backend, lif)
    assert reports[0] == 0.0 and reports[-1] == 1.0


def test_build_on_run_false_and_device_build(backend):
    def script():
        brian2.set_device("gpu_standalone", backend=backend, build_on_run=False)
        G = NeuronGroup(5, "dv/dt = (2 - v)/(5*ms) : 1", threshold="v > 1",
                        reset="v = 0", method="exact")
        M = SpikeMonitor(G)
        run(5 * ms)
        run(5 * ms)
        device.build(directory=None, with_output=False)
        return own(i=M.i[:], t=M.t[:] / ms)

    ref = compare(backend, lambda: _runtime_twice())
    got = on_device(backend, script)
    np.testing.assert_array_equal(got["i"], ref["i"])
    np.testing.assert_allclose(got["t"], ref["t"])


def _runtime_twice():
    G = NeuronGroup(5, "dv/dt = (2 - v)/(5*ms) : 1", threshold="v > 1",
                    reset="v = 0", method="exact")
    M = SpikeMonitor(G)
    run(5 * ms)
    run(5 * ms)
    return own(i=M.i[:], t=M.t[:] / ms)


def test_run_without_kernels(backend):
    """A network with nothing to compute (only parameters) still advances
    time (its run builds only the clock tick)."""
    def script():
        G = NeuronGroup(3, "v : 1")
        G.v = np.arange(3)            # no code object at all
        run(1 * ms)
        run(0.5 * ms)
        return own(t=np.asarray(brian2.defaultclock.t_).ravel(), v=G.v[:])

    ref = compare(backend, script)
    assert ref["t"][0] == pytest.approx(1.5e-3)
