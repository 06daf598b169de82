"""SpatialNeuron (multicompartment neurons, spatial.py and
templates/spatialstateupdate.mako) on gpu_standalone: Brian2's own
SpatialNeuron tests, and models compared with Brian2's runtime (numpy
target, scipy's banded solver).

Without virtual sections (``spatial.MAX_CHUNK = None``) the device does
Brian2's arithmetic operation for operation, so results agree to 1e-10.
Cutting long sections (the default) changes the rounding, and a soma's
large axial conductance makes the branch-point system ill-conditioned
(condition ~1e7): both results then stay as close to the exact solution
(checked against long double arithmetic while developing), but differ from
each other by up to ~1e-9 relative after a few hundred steps."""
import os
import tempfile

import numpy as np
import pytest

import brian2
from brian2 import (Cylinder, Network, Section, SpatialNeuron, SpikeMonitor,
                    SpikeGeneratorGroup, StateMonitor, Soma, Synapses, cm, defaultclock, mV,
                    ms, msiemens, nA, ohm, run, siemens, uF, um)

import spikegpu.spatial as spatial
from conftest import assert_same, compare, on_device, own


@pytest.fixture
def chunk(request, monkeypatch):
    monkeypatch.setattr(spatial, "MAX_CHUNK", request.param)
    return request.param


@pytest.fixture
def mode(request, monkeypatch):
    monkeypatch.setattr(spatial, "FORCE_MODE", request.param)
    return request.param


# -- Brian2's own SpatialNeuron tests (standalone-compatible) ----------------

BRIAN_TESTS = ["test_finitecable", "test_rallpack1", "test_rallpack2", "test_rall",
               "test_basic_diffusion", "test_spatialneuron_timedarray",
               "test_spatialneuron_capacitive_currents",
               "test_spatialneuron_threshold_location"]


def _brian_test(backend, name):
    from brian2.tests import test_spatialneuron as bt
    brian2.set_device("gpu_standalone", backend=backend)
    try:
        getattr(bt, name)()
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")


@pytest.mark.parametrize("name", BRIAN_TESTS)
def test_brian2_spatialneuron(backend, name):
    _brian_test(backend, name)


@pytest.mark.parametrize("mode", ["group", "multi"], indirect=True)
@pytest.mark.parametrize("name", ["test_rall", "test_basic_diffusion"])
def test_brian2_spatialneuron_modes(backend, name, mode):
    _brian_test(backend, name)


@pytest.mark.slow
def test_brian2_rallpack3(backend):
    # 250,000 steps of a 1,000-compartment Hodgkin-Huxley axon
    _brian_test(backend, "test_rallpack3")


# -- the structure ------------------------------------------------------------

def test_structure_virtual_sections():
    # root 0..4 (5), child A 5..14 (10) of the root, child B 15..16 (2) of A
    st = spatial.Structure([0, 5, 15], [5, 15, 17], [0, 1, 2], max_chunk=4)
    assert st.N == 17
    # root: 2 + 3; A: 3 + 3 + 4; B: 2
    np.testing.assert_array_equal(st.bound, [0, 2, 5, 8, 11, 15, 17])
    # a chunk's parent is the end of the chunk before it; A's first chunk
    # hangs at the root's end (node 2), B's at A's end (node 5)
    np.testing.assert_array_equal(st.pnode, [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(st.vsec, np.repeat(np.arange(6), [2, 3, 3, 3, 4, 2]))
    assert st.nlevels == 7 and st.max_len == 4
    whole = spatial.Structure([0, 5, 15], [5, 15, 17], [0, 1, 2])
    np.testing.assert_array_equal(whole.bound, [0, 5, 15, 17])
    np.testing.assert_array_equal(whole.pnode, [0, 1, 2])


def test_structure_levels_and_children():
    # a root with three children, the second with two children of its own
    st = spatial.Structure([0, 2, 3, 5, 6, 8], [2, 3, 5, 6, 8, 9],
                           [0, 1, 1, 3, 3, 1])
    np.testing.assert_array_equal(st.pnode, [0, 1, 1, 3, 3, 1])
    # children of each node (virtual sections), ascending: Brian2's order
    kids = [list(st.child[st.cstart[i]:st.cstart[i + 1]]) for i in range(st.nnodes)]
    assert kids == [[0], [1, 2, 5], [], [3, 4], [], [], []]
    levels = [sorted(st.lnode[st.lstart[k]:st.lstart[k + 1]]) for k in range(st.nlevels)]
    assert levels == [[0], [1], [2, 3, 6], [4, 5]]


def test_choose_chunk():
    # a long cable is cut; a tree of short sections is not (cuts would
    # lengthen the branch-point tree more than they shorten the solves)
    assert spatial.choose_chunk([0], [1000], [0]) == 64
    starts = np.arange(0, 31 * 20, 20)
    parent = np.r_[0, np.arange(1, 16).repeat(2)]
    assert spatial.choose_chunk(starts, starts + 20, parent) is None


def test_structure_errors():
    with pytest.raises(ValueError, match="contiguous"):
        spatial.Structure([0, 3], [2, 5], [0, 1])
    with pytest.raises(ValueError, match="root"):
        spatial.Structure([0, 2], [2, 5], [0, 0])


# -- compared with Brian2's runtime ------------------------------------------

def _branched_morphology():
    morpho = Soma(diameter=30 * um)
    morpho.axon = Cylinder(n=50, diameter=10 * um, length=100 * um)
    morpho.dend = Section(n=10, diameter=np.linspace(10, 0.5, 11) * um,
                          length=np.ones(10) * 10 * um)
    morpho.dend.L = Cylinder(n=7, diameter=2 * um, length=50 * um)
    morpho.dend.R = Cylinder(n=40, diameter=1 * um, length=80 * um)
    morpho.dend.R.x = Cylinder(n=3, diameter=0.5 * um, length=10 * um)
    morpho.dend.R.y = Cylinder(n=1, diameter=0.5 * um, length=10 * um)
    return morpho


#: Ic in uA/cm**2: values compared in mV and uA/cm**2
UA_CM2 = brian2.uA / cm ** 2


def small_branched():
    # few code objects (a cold Cython build is ~4 s each)
    defaultclock.dt = 0.01 * ms
    eqs = """Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2
             I : amp (point current)"""
    neuron = SpatialNeuron(_branched_morphology(), eqs, Cm=1 * uF / cm ** 2,
                           Ri=100 * ohm * cm)
    neuron.v = -70 * mV
    neuron.I[0] = 0.5 * nA
    neuron.I[100] = -0.02 * nA
    run(2 * ms)
    return own(vend=neuron.v[:] / mV, Ic_end=neuron.Ic[:] / UA_CM2)


def passive_branched():
    defaultclock.dt = 0.01 * ms
    eqs = """Im = gL*(EL - v) : amp/meter**2
             gL : siemens/meter**2
             EL : volt
             I : amp (point current)"""
    neuron = SpatialNeuron(_branched_morphology(), eqs, Cm=1 * uF / cm ** 2,
                           Ri=100 * ohm * cm)
    neuron.v = "-70*mV + 5*mV*sin(i)"
    neuron.EL = "-70*mV + 2*mV*(i % 3)"
    neuron.gL = 1e-4 * siemens / cm ** 2
    neuron.dend.L.gL = 3e-4 * siemens / cm ** 2
    neuron.I[0] = 0.5 * nA
    neuron.dend.R.I[10] = -0.02 * nA
    M = StateMonitor(neuron, ["v", "Ic"], record=[0, 10, 55, 70, 100, 110])
    run(1 * ms)
    neuron.I[0] = 0 * nA
    run(1 * ms)
    return own(v=M.v[:] / mV, Ic=M.Ic[:] / UA_CM2, t=M.t[:] / ms, vend=neuron.v[:] / mV,
               vL=neuron.dend.L.v[:] / mV, Ic_end=neuron.Ic[:] / UA_CM2)


def on_cython(fn):
    """``fn`` on Brian2's runtime device with the Cython target (Brian2's
    C++ arithmetic; its numpy target solves with LAPACK's banded solver),
    compiled without -ffast-math and without contracting a*b + c into fma
    (Brian2's default flags allow both; our kernels do neither, as numpy)."""
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "cython"
    flags = brian2.prefs.codegen.cpp.extra_compile_args_gcc
    cache = brian2.prefs.codegen.runtime.cython.cache_dir
    brian2.prefs.codegen.cpp.extra_compile_args_gcc = ["-w", "-O3", "-ffp-contract=off",
                                                       "-std=c++11"]
    # (Brian2's extension cache does not key on the flags: a cache of these)
    brian2.prefs.codegen.runtime.cython.cache_dir = os.path.join(
        tempfile.gettempdir(), f"spikegpu-cython-strict-{os.getuid()}")
    try:
        brian2.defaultclock.dt = 0.1 * ms
        return {k: np.array(v, copy=True) for k, v in fn().items()}
    finally:
        brian2.prefs.codegen.target = "numpy"
        brian2.prefs.codegen.cpp.extra_compile_args_gcc = flags
        brian2.prefs.codegen.runtime.cython.cache_dir = cache


@pytest.mark.parametrize("chunk", [None], indirect=True)
def test_same_arithmetic_as_brian2_cpp(backend, chunk, monkeypatch):
    # Brian2's sections as they are: Brian2's C++ arithmetic, operation for
    # operation, in both modes
    ref = on_cython(small_branched)
    for mode in ("group", "multi"):
        monkeypatch.setattr(spatial, "FORCE_MODE", mode)
        assert_same(ref, on_device(backend, small_branched), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("chunk,mode", [(None, "group"), (None, "multi"), (4, "group"),
                                        (4, "multi"), (1, "multi"), ("auto", None)],
                         indirect=True)
def test_branched_passive(backend, mode, chunk):
    ref = compare(backend, passive_branched, rtol=1e-8, atol=1e-6)
    assert np.ptp(ref["vend"]) > 1


def cable_only():
    # no soma: a well-conditioned branch-point system
    defaultclock.dt = 0.025 * ms
    morpho = Cylinder(n=300, diameter=2 * um, length=600 * um)
    morpho.a = Cylinder(n=130, diameter=1 * um, length=300 * um)
    morpho.b = Cylinder(n=70, diameter=1.2 * um, length=200 * um)
    eqs = """Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2
             I : amp (point current)"""
    neuron = SpatialNeuron(morpho, eqs, Cm=1 * uF / cm ** 2, Ri=150 * ohm * cm)
    neuron.v = -70 * mV
    neuron.I[0] = 0.05 * nA
    neuron.I[450] = 0.02 * nA
    M = StateMonitor(neuron, "v", record=[0, 299, 300, 429, 430, 499])
    run(5 * ms)
    return own(v=M.v[:] / mV, vend=neuron.v[:] / mV)


@pytest.mark.parametrize("chunk", [16], indirect=True)
def test_cable_virtual_sections_tight(backend, chunk):
    # the cut sections change the rounding only
    compare(backend, cable_only, rtol=1e-11, atol=1e-10)


HH = """
Im = gl*(El - v) + gNa*m**3*h*(ENa - v) + gK*n**4*(EK - v) + gs*(Es - v) : amp/meter**2
dm/dt = alpham*(1 - m) - betam*m : 1
dn/dt = alphan*(1 - n) - betan*n : 1
dh/dt = alphah*(1 - h) - betah*h : 1
alpham = (0.1/mV)*10*mV/exprel((-v + 25*mV + El)/(10*mV))/ms : Hz
betam = 4*exp((-v + El)/(18*mV))/ms : Hz
alphah = 0.07*exp((-v + El)/(20*mV))/ms : Hz
betah = 1/(exp((-v + 30*mV + El)/(10*mV)) + 1)/ms : Hz
alphan = (0.01/mV)*10*mV/exprel((-v + 10*mV + El)/(10*mV))/ms : Hz
betan = 0.125*exp((-v + El)/(80*mV))/ms : Hz
dgs/dt = -gs/(2*ms) : siemens/meter**2
gNa : siemens/meter**2
gK : siemens/meter**2
I : amp (point current)
"""
HH_NS = dict(El=-65 * mV, ENa=50 * mV, EK=-77 * mV, Es=0 * mV,
             gl=0.3 * msiemens / cm ** 2)


def _hh_neuron(n_dend=20, name=None, **kw):
    morpho = Soma(diameter=25 * um)
    morpho.dend = Cylinder(n=n_dend, diameter=2 * um, length=200 * um)
    morpho.dend.a = Cylinder(n=n_dend // 2, diameter=1 * um, length=100 * um)
    morpho.dend.b = Cylinder(n=n_dend // 2, diameter=1 * um, length=100 * um)
    neuron = SpatialNeuron(morpho, HH, Cm=1 * uF / cm ** 2, Ri=100 * ohm * cm,
                           method="exponential_euler", threshold="v > -20*mV",
                           threshold_location=0, refractory="v > -40*mV",
                           namespace=HH_NS, name=name or "spatialneuron*", **kw)
    neuron.v = -65 * mV
    neuron.m, neuron.h, neuron.n = 0.0529, 0.596, 0.3177
    neuron.main.gNa = 120 * msiemens / cm ** 2     # channels in the soma only
    neuron.main.gK = 36 * msiemens / cm ** 2
    return neuron


def hh_soma_spikes():
    neuron = _hh_neuron()
    neuron.I[0] = 0.5 * nA
    neuron.dend.a.I[5] = 0.05 * nA
    S = SpikeMonitor(neuron)
    M = StateMonitor(neuron, ["v", "m"], record=[0, 5, 21, 40])
    run(25 * ms)
    return own(i=S.i[:], t=S.t[:] / ms, v=M.v[:] / mV, m=M.m[:], vend=neuron.v[:] / mV)


@pytest.mark.parametrize("chunk", [None, 8], indirect=True)
def test_hh_soma_spikes(backend, chunk):
    # a spike's upstroke amplifies rounding differences (also those of exp)
    # to ~1e-5 mV; spike indices and times are the same
    ref = compare(backend, hh_soma_spikes, rtol=1e-6, atol=1e-4)
    assert len(ref["i"]) >= 2 and set(ref["i"]) == {0}


def network():
    # a ring of neurons: a spike at a soma excites the next neuron's
    # dendrite (compartment 15) after 1 ms; one input starts it
    neurons = [_hh_neuron(name=f"cell{k}") for k in range(4)]
    inp = SpikeGeneratorGroup(1, [0, 0], [1, 12] * ms)
    syns = []
    s = Synapses(inp, neurons[0], "w : siemens/meter**2", on_pre="gs_post += w")
    s.connect(i=0, j=[0, 10])
    s.w = [40, 20] * msiemens / cm ** 2
    syns.append(s)
    for k in range(4):
        s = Synapses(neurons[k], neurons[(k + 1) % 4], on_pre="gs_post += 100*msiemens/cm**2",
                     delay=1 * ms)
        s.connect(i=0, j=[15, 25])
        syns.append(s)
    mons = [SpikeMonitor(n) for n in neurons]
    st = StateMonitor(neurons[2], "v", record=[0, 15, 35])
    net = Network(neurons, inp, syns, mons, st)
    net.run(30 * ms)
    out = {}
    for k, m in enumerate(mons):
        out[f"i{k}"], out[f"t{k}"] = np.array(m.i[:]), np.array(m.t[:] / ms)
    out["v2"] = np.array(st.v[:] / mV)
    return out


@pytest.mark.parametrize("chunk", [None], indirect=True)
def test_network_of_spatial_neurons(backend, chunk):
    ref = compare(backend, network, rtol=1e-6, atol=1e-4)
    assert all(len(ref[f"t{k}"]) >= 2 for k in range(4))


@pytest.mark.parametrize("n", [1, 2])
def test_auto_rule_spreads_spatial_neurons(backend, n):
    # one work-group would solve several neurons' cables one after the
    # other: with more than one SpatialNeuron the auto rule does not call
    # the step small (the grid form, or separate kernels, run them side by side)
    from spikegpu.stepkernel import _small

    def script():
        eqs = "Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2"
        cells = []
        for k in range(n):
            morpho = Soma(diameter=20 * um)
            morpho.d = Cylinder(n=10, diameter=1 * um, length=100 * um)
            cells.append(SpatialNeuron(morpho, eqs, Cm=1 * uF / cm ** 2, Ri=150 * ohm * cm,
                                       name=f"cell{k}"))
        Network(cells).run(0.1 * ms)
        dev = brian2.get_device()
        sections = [s for e in dev.last_plan for s in getattr(e, "sections", [])]
        return {"small": np.array([_small(dev, sections)])}
    assert on_device(backend, script)["small"][0] == (n == 1)


def runs_with_changes():
    # Cm, dt and a point current change between runs (the constant part of
    # the matrix is prepared for every run)
    defaultclock.dt = 0.02 * ms
    eqs = """Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2
             I : amp (point current)"""
    morpho = Soma(diameter=20 * um)
    morpho.d = Cylinder(n=60, diameter=1 * um, length=300 * um)
    neuron = SpatialNeuron(morpho, eqs, Cm=1 * uF / cm ** 2, Ri=150 * ohm * cm)
    neuron.v = -70 * mV
    neuron.I[30] = 0.01 * nA
    M = StateMonitor(neuron, "v", record=[0, 30, 60])
    run(1 * ms)
    neuron.Cm = 2 * uF / cm ** 2
    neuron.d.Cm[10:20] = 0.5 * uF / cm ** 2
    run(1 * ms)
    defaultclock.dt = 0.05 * ms
    neuron.I[30] = 0 * nA
    neuron.I[0] = 0.02 * nA
    run(2 * ms)
    return own(v=M.v[:] / mV, t=M.t[:] / ms, vend=neuron.v[:] / mV, Ic=neuron.Ic[:] / UA_CM2)


@pytest.mark.parametrize("chunk", [None], indirect=True)
@pytest.mark.parametrize("mode", ["group", "multi"], indirect=True)
def test_runs_with_changes(backend, mode, chunk):
    compare(backend, runs_with_changes, rtol=1e-8, atol=1e-6)


# -- CUDA ---------------------------------------------------------------------

@pytest.mark.parametrize("fuse", [False, True])
def test_programs_compile_as_cuda(monkeypatch, fuse):
    """Both modes' kernels (and a fused step with them) are valid CUDA C++
    (NVRTC, no GPU needed)."""
    from spikegpu.backends import nvrtc
    if not nvrtc.available():
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc)")
    from test_cuda_source import cuda_sources
    seen = 0
    for mode in ("group", "multi"):
        monkeypatch.setattr(spatial, "FORCE_MODE", mode)
        for what, source in cuda_sources(small_branched, monkeypatch, fuse):
            try:
                nvrtc.compile_cubin(source, "sm_90", ["--fmad=false", "-w"])
            except nvrtc.NVRTCError as exc:
                pytest.fail(f"{mode}: {what}: {exc}")
            seen += "spatialstateupdate" in what or "step" in what
    assert seen >= 2


def float32_cable():
    brian2.prefs.core.default_float_dtype = np.float32
    try:
        return cable_only()
    finally:
        brian2.prefs.core.default_float_dtype = np.float64


@pytest.mark.parametrize("mode", ["group", "multi"], indirect=True)
def test_single_precision(backend, mode):
    # float32 arrays (the solve's temporaries are double, as in Brian2's
    # C++); no soma: with one, the branch-point system's condition (~1e7)
    # leaves no correct digit in single precision, on Brian2's targets too
    # (its rallpack tests skip float32)
    compare(backend, float32_cable, rtol=1e-4, atol=1e-3)


def store_restore():
    defaultclock.dt = 0.02 * ms
    eqs = """Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2
             I : amp (point current)"""
    neuron = SpatialNeuron(_branched_morphology(), eqs, Cm=1 * uF / cm ** 2,
                           Ri=100 * ohm * cm)
    neuron.v = -70 * mV
    neuron.I[0] = 0.5 * nA
    net = Network(neuron)
    net.run(0.5 * ms)
    net.store()
    net.run(0.5 * ms)
    first = np.array(neuron.v[:] / mV)
    net.restore()
    net.run(0.5 * ms)
    return own(first=first, again=neuron.v[:] / mV)


def test_store_restore(backend):
    ref = compare(backend, store_restore, rtol=1e-8, atol=1e-6)
    np.testing.assert_array_equal(ref["first"], ref["again"])
