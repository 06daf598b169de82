"""Kernels are cached on disk: building the same script again compiles nothing."""
import brian2
from brian2 import NeuronGroup, SpikeMonitor, ms, run

from conftest import on_device, own


def script():
    G = NeuronGroup(20, "dv/dt = (1.5 - v)/(10*ms) : 1", threshold="v > 1",
                    reset="v = 0", method="exact")
    M = SpikeMonitor(G)
    run(5 * ms)
    dev = brian2.get_device()
    return own(i=M.i[:], builds=[dev.backend.n_builds])


def test_second_run_of_a_script_compiles_nothing(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEGPU_CACHE_DIR", str(tmp_path))
    first = on_device(backend, script)
    second = on_device(backend, script)
    assert list(tmp_path.iterdir())            # binaries were written
    assert second["builds"][0] == first["builds"][0]
    assert (second["i"] == first["i"]).all()
