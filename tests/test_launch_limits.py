"""A kernel that uses many registers cannot run the backend's full work-group
(CUDA: "too many resources requested for launch", OpenCL: OUT_OF_RESOURCES;
found on the H200 with SpatialNeuron networks).  Kernels of one work-group
launch with the largest power of two the compiled kernel allows, and give
the same results."""
import pytest

import brian2
from brian2 import NeuronGroup, PopulationRateMonitor, SpikeMonitor, ms, run

from conftest import assert_same, on_device, own
from test_spatialneuron import small_branched


def small_group():
    # a threshold and monitors of one work-group each, launched separately
    brian2.get_device().fuse = False
    G = NeuronGroup(500, """dv/dt = (I - v)/(10*ms) : 1 (unless refractory)
                            I : 1 (constant)""",
                    threshold="v > 1", reset="v = 0", refractory=1 * ms, method="exact")
    G.I = "1.1 + 0.8*((i*7919) % 500)/500"
    M = SpikeMonitor(G)
    R = PopulationRateMonitor(G[100:300])
    run(15 * ms)
    return own(i=M.i[:], t=M.t[:] / ms, rate=R.rate[:] * ms, ls=G.lastspike[:] / ms)


def spatial():
    brian2.get_device().fuse = False
    return small_branched()


@pytest.mark.parametrize("fn", [small_group, spatial], ids=["threshold", "spatial"])
def test_group_kernels_fit_the_kernel_limit(backend, fn, monkeypatch):
    from spikegpu import backends
    full = on_device(backend, fn)
    if fn is small_group:
        assert len(full["i"]) > 300
    be = type(backends.get_backend(backend))
    sizes = []

    def limited(self, kernel):
        sizes.append(1)
        return 96           # as if registers allowed 96 threads: launches use 64
    monkeypatch.setattr(be, "kernel_max_group", limited)
    small = on_device(backend, fn)
    if fn is small_group:       # its threshold runs alone (a spatial step may merge)
        assert sizes, "no kernel asked for its limit"
    assert_same(full, small, rtol=1e-12, atol=1e-12)
