"""A kernel that uses many registers cannot run the backend's full work-group
(CUDA: "too many resources requested for launch", OpenCL: OUT_OF_RESOURCES;
found on the H200 with SpatialNeuron networks).  Kernels of one work-group
launch with the largest power of two the compiled kernel allows, and give
the same results."""
import pytest

from conftest import assert_same, on_device
from test_neurongroup import large_group
from test_spatialneuron import small_branched


@pytest.mark.parametrize("fn", [large_group, small_branched], ids=["threshold", "spatial"])
def test_group_kernels_fit_the_kernel_limit(backend, fn, monkeypatch):
    from spikegpu import backends
    full = on_device(backend, fn)
    be = type(backends.get_backend(backend))
    sizes = []

    def limited(self, kernel):
        sizes.append(1)
        return 96           # as if registers allowed 96 threads: launches use 64
    monkeypatch.setattr(be, "kernel_max_group", limited)
    small = on_device(backend, fn)
    if fn is large_group:       # its threshold runs alone (a spatial step may merge)
        assert sizes, "no kernel asked for its limit"
    assert_same(full, small, rtol=1e-12, atol=1e-12)
