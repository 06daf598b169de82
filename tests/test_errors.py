"""Unsupported input gets a clear error naming the object and the feature."""
import pytest

import spikegpu
from brian2 import (Function, NeuronGroup, Synapses, implementation, ms, run,
                    set_device, check_units)

from spikegpu import backends
from spikegpu.backends import KernelBuildError
from conftest import on_device


broken = Function(lambda x: x, arg_units=[1], return_unit=1)
broken.implementations.add_implementation(
    "spikegpu", {"support_code": "SG_FN double broken_fn(double x) { return x +* ; }"},
    name="broken_fn")


@check_units(x=1, result=1)
def only_python(x):
    return x


def test_function_without_c_implementation(backend):
    """A function with neither a spikegpu nor a C++ implementation: Brian2's
    error, naming the function."""
    def script():
        G = NeuronGroup(3, "dv/dt = only_python(v)/ms : 1")
        run(1 * ms)

    with pytest.raises(Exception) as exc:
        on_device(backend, script)
    msg = str(exc.value) + str(exc.value.__cause__)
    assert "only_python" in msg and "No implementation available" in msg


def test_kernel_build_error_shows_failing_line(backend):
    def script():
        G = NeuronGroup(3, "v : 1")
        G.v = "broken(1.0)"
        return G.v[:]

    with pytest.raises(KernelBuildError) as exc:
        on_device(backend, script)
    msg = str(exc.value)
    assert "group_variable_set" in msg
    assert "return x +* ;" in msg


def test_unknown_backend():
    with pytest.raises(ValueError, match="metal"):
        set_device("gpu_standalone", backend="metal")


def test_backend_not_installed(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwds):
        if name.startswith("pycuda"):
            raise ImportError("no pycuda here")
        return real_import(name, *args, **kwds)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(backends, "_instances", {})
    # the device keeps its backend between tests of one backend
    monkeypatch.setattr(spikegpu.gpu_standalone_device, "_backend", None)

    def script():
        G = NeuronGroup(3, "dv/dt = -v/ms : 1")
        run(1 * ms)

    with pytest.raises(backends.BackendError, match="PyCUDA"):
        on_device("cuda", script)


def test_device_without_double_precision(monkeypatch, backend):
    be = backends.get_backend(backend)
    monkeypatch.setattr(type(be), "supports_double", property(lambda self: False))
    monkeypatch.setattr(spikegpu.gpu_standalone_device, "_backend", None)

    def script():
        G = NeuronGroup(3, "dv/dt = -v/ms : 1")
        run(1 * ms)

    with pytest.raises(backends.BackendError, match="double precision"):
        on_device(backend, script)


def test_network_too_large_for_device_memory(backend, monkeypatch):
    be = backends.get_backend(backend)
    monkeypatch.setattr(type(be), "memory_info", lambda self: (10_000, 10_000))

    def script():
        G = NeuronGroup(100, "v : 1")
        S = Synapses(G, G, "w : 1", name="big_synapses")
        S.connect()
        return S.i[:]

    with pytest.raises(MemoryError) as exc:
        on_device(backend, script)
    msg = str(exc.value)
    assert "big_synapses" in msg and "10000 new synapses" in msg and "bytes" in msg
