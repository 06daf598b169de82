"""The step loop replayed as CUDA graphs gives the same results as plain
launches (graphs are only used where the backend has them)."""
import brian2
from brian2 import NeuronGroup, PopulationRateMonitor, SpikeMonitor, StateMonitor, ms, run

from conftest import assert_same, on_device, own


def model(steps):
    G = NeuronGroup(300, """dv/dt = (I - v)/(10*ms) : 1 (unless refractory)
                           I : 1 (constant)""",
                    threshold="v > 1", reset="v = 0", refractory=1 * ms, method="exact")
    G.I = "1.05 + 2.0*i/N"
    M = SpikeMonitor(G)
    S = StateMonitor(G, "v", record=[0, 299])
    R = PopulationRateMonitor(G)
    run(steps * 0.1 * ms)
    G.v = 0.5
    run(37 * 0.1 * ms)          # a run shorter than one graph block
    dev = brian2.get_device()
    return own(i=M.i[:], t=M.t[:] / ms, v=S.v[:], r=R.rate[:] / brian2.Hz,
                graphs=[dev.stats.get("graphs_captured", 0)])


def test_graphs_on_off_identical(backend):
    def with_graphs(flag):
        # fuse=False: this small network would otherwise run as one fused kernel
        brian2.set_device("gpu_standalone", backend=backend, graphs=flag, fuse=False)
        return on_device(backend, model, 2345)

    on = with_graphs(True)
    off = with_graphs(False)
    if backend == "cuda":
        assert on["graphs"][0] > 0
    assert off["graphs"][0] == 0
    on.pop("graphs"), off.pop("graphs")
    assert len(on["i"]) > 1000            # many spikes: monitor buffers grow
    assert_same(off, on, rtol=0)
