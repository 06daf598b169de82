"""Test fixtures: every device test runs on each backend named in
SPIKEGPU_TEST_BACKENDS (default: opencl; the GPU script adds cuda) and is
compared with Brian2's runtime device (numpy target)."""
import os

import numpy as np
import pytest

import brian2
import spikegpu  # noqa: F401


def _backends():
    return [b.strip() for b in os.environ.get("SPIKEGPU_TEST_BACKENDS", "opencl").split(",")
            if b.strip()]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        params = [pytest.param(b, marks=[pytest.mark.cuda] if b == "cuda" else [])
                  for b in _backends()]
        metafunc.parametrize("backend", params)


# -- the fused pass (scripts/test.sh) ------------------------------------------
# With SPIKEGPU_RECORD_FUSABLE=<directory>, every test whose network the
# fused step kernel would run (stepkernel.plan gives a kernel with fuse=True
# where the default, fuse='auto', gave none) is written to a file there; the
# second pass (SPIKEGPU_FUSE=1) runs exactly those tests.  Tests that choose
# the step mode themselves (test_stepkernel, test_graphs) are not recorded:
# the second pass would repeat them unchanged.
_current = {"test": None}


def pytest_configure(config):
    rec = os.environ.get("SPIKEGPU_RECORD_FUSABLE")
    if not rec:
        return
    from spikegpu import stepkernel
    plan = stepkernel.plan

    def recording_plan(device, objects, clock_arrays, profile=False):
        result = plan(device, objects, clock_arrays, profile=profile)
        if result is None and device.fuse == "auto" and _current["test"]:
            device.fuse = True
            try:
                would = plan(device, objects, clock_arrays, profile=profile)
            finally:
                device.fuse = "auto"
            if would is not None:
                worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
                with open(os.path.join(rec, f"fusable-{worker}.txt"), "a") as f:
                    f.write(_current["test"] + "\n")
        return result

    stepkernel.plan = recording_plan


@pytest.fixture(autouse=True)
def _fresh_brian(request):
    _current["test"] = request.node.nodeid
    brian2.device.reinit()
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    brian2.prefs.core.default_float_dtype = np.float64
    brian2.defaultclock.dt = 0.1 * brian2.ms
    spikegpu.gpu_standalone_device.use_graphs = True
    spikegpu.gpu_standalone_device.fuse = {"0": False, "1": True, "grid": "grid"}.get(
        os.environ.get("SPIKEGPU_FUSE", ""), "auto")
    # the device outlives the test: settings a test changes (grid_min_blocks,
    # queue_interleave, normal_method, ...) go back to what they were
    dev = spikegpu.gpu_standalone_device
    settings = {k: v for k, v in vars(dev).items() if isinstance(v, (bool, int, float, str))}
    yield
    for k, v in settings.items():
        setattr(dev, k, v)
    from brian2.devices.device import reinit_devices
    reinit_devices()
    brian2.set_device("runtime")


def _own(result):
    # Brian >= 2.10 runtime arrays can be views into memory that reinit frees
    if isinstance(result, dict):
        return {k: np.array(v, copy=True) for k, v in result.items()}
    if isinstance(result, tuple):
        return tuple(np.array(v, copy=True) for v in result)
    return np.array(result, copy=True)


def own(**values):
    """Copy results while the objects are alive (Brian >= 2.10 runtime
    arrays are views into memory freed with their monitor)."""
    return {k: np.array(v, copy=True) for k, v in values.items()}


def on_device(backend, fn, *args, **kwds):
    """Run ``fn`` (which builds a network, runs it and returns numpy values)
    under gpu_standalone with ``backend``."""
    brian2.set_device("gpu_standalone", backend=backend)
    brian2.defaultclock.dt = 0.1 * brian2.ms
    try:
        return _own(fn(*args, **kwds))
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")


def on_runtime(fn, *args, **kwds):
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    brian2.defaultclock.dt = 0.1 * brian2.ms
    return _own(fn(*args, **kwds))


def assert_same(ref, got, rtol=1e-10, atol=0.0):
    assert set(ref) == set(got)
    for k in ref:
        r, g = np.asarray(ref[k]), np.asarray(got[k])
        assert r.shape == g.shape, f"{k}: shape {r.shape} != {g.shape}"
        if r.dtype.kind in "iub":
            np.testing.assert_array_equal(g, r, err_msg=k)
        else:
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=k)


def compare(backend, fn, *args, rtol=1e-10, atol=0.0):
    """Run ``fn`` on Brian2 runtime and on the device; assert equal results;
    return the reference."""
    ref = on_runtime(fn, *args)
    assert_same(ref, on_device(backend, fn, *args), rtol=rtol, atol=atol)
    return ref
