"""Results bitwise equal to Brian2's numpy runtime where IEEE arithmetic
makes them so: +, -, * and / are correctly rounded everywhere, so the same
operations in the same order give the same bits, unless the compiler
contracts a*b + c into a fused multiply-add (one rounding instead of two).
CUDA is built with --fmad=false; OpenCL C contracts unless told not to
(#pragma OPENCL FP_CONTRACT OFF at the top of templates/prelude.mako)."""
import numpy as np
import pytest
from brian2 import NeuronGroup, StateMonitor, TimedArray, ms, run

from conftest import on_device, on_runtime, own


def euler_timedarray(N=64, steps=200):
    rng = np.random.RandomState(20261130)
    inp = TimedArray(rng.uniform(-1, 2, size=37), dt=0.2 * ms)
    G = NeuronGroup(N, """dv/dt = (inp(t)*g - v*w + 0.3*u*v)/(7*ms) : 1
                          du/dt = (0.7*v - 0.2*u*u + 1.3*inp(t) - u*w*g)/(11*ms) : 1
                          g : 1 (constant)
                          w : 1 (constant)""", method="euler")
    G.g = rng.uniform(0.5, 1.5, size=N)
    G.w = rng.uniform(0.1, 0.9, size=N)
    G.v = rng.uniform(-1, 1, size=N)
    G.u = rng.uniform(-1, 1, size=N)
    M = StateMonitor(G, ["v", "u"], record=[0, 1, N - 1])
    run(steps * 0.1 * ms)
    return own(v=G.v[:], u=G.u[:], Mv=M.v[:], Mu=M.u[:])


def test_euler_with_timedarray_bitwise_equal_to_numpy(backend):
    ref = on_runtime(euler_timedarray)
    got = on_device(backend, euler_timedarray)
    for k in ref:
        assert ref[k].shape == got[k].shape
        differ = np.count_nonzero(ref[k].view(np.uint64) != got[k].view(np.uint64))
        assert differ == 0, f"{k}: {differ} of {ref[k].size} values differ in their bits"
    assert np.ptp(ref["v"]) > 0.1          # a model that does something


def test_opencl_prelude_forbids_contraction_first():
    """The pragma stands before any code of the OpenCL prelude, so that it
    covers the prelude's own helpers, the support code and every kernel."""
    from spikegpu.templater import render_prelude
    src = render_prelude("opencl", "double", 256, "")
    code = [line.strip() for line in src.splitlines()
            if line.strip() and not line.strip().startswith("//")]
    assert code[0] == "#pragma OPENCL FP_CONTRACT OFF"
    assert "FP_CONTRACT ON" not in src and "FP_CONTRACT DEFAULT" not in src
