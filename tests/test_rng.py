"""Tests for the Philox4x32-10 RNG (spikegpu/templates/rng.c) and its numpy
reference (spikegpu/rng_reference.py)."""
import ctypes
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from spikegpu import rng_reference as ref  # noqa: E402

RNG_C = os.path.join(ROOT, "spikegpu", "templates", "rng.c")

KEYS = (0x12345678, 0x9ABCDEF0)
STEP = 123457
STREAM = 3


def _rng_source():
    with open(RNG_C) as f:
        return f.read()


def _bits(x):
    return np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)


def _assert_bitwise(a, b):
    a, b = _bits(a), _bits(b)
    assert a.shape == b.shape
    nbad = int(np.count_nonzero(a != b))
    assert nbad == 0, f"{nbad} of {a.size} values differ bitwise"


METHODS = ref.NORMAL_METHODS


def _reference_draws(n, k0=KEYS[0], k1=KEYS[1], step=STEP, stream=STREAM,
                     method="box-muller"):
    idx = np.arange(n, dtype=np.uint32)
    out = np.empty((n, 5))
    for call in range(3):
        out[:, call] = ref.uniform(k0, k1, idx, step, stream, call=call)
    for call in (3, 4):
        out[:, call] = ref.normal(k0, k1, idx, step, stream, call=call, method=method)
    return out


def _math_inputs(n, seed=5):
    rng = np.random.default_rng(seed)
    # 53-bit grid values in (0, 1] (as the normal's tail passes to _sg_log)
    # plus edge cases; exp's arguments over [-700, 700] and near 0 (the
    # ziggurat's wedges: (-6, 0.5]); Box-Muller's cosine arguments on the
    # 53-bit grid in [0, 1) with its quadrants' edges
    xl = (rng.integers(0, 2**53, n, dtype=np.uint64) + np.uint64(1)).astype(np.float64) * 2.0**-53
    xl[:8] = [1.0, 2.0**-53, 0.5, 1 - 2.0**-53, np.sqrt(0.5), np.sqrt(2) / 2 + 2.0**-53, 0.75, 0.25]
    xe = np.where(np.arange(n) % 2 == 0, rng.uniform(-700, 700, n), rng.uniform(-6, 0.5, n))
    xe[:10] = [0.0, -0.0, 1e-300, -1e-17, np.log(2), -np.log(2), 0.5 * np.log(2),
               -0.5 * np.log(2), 700.0, -700.0]
    xc = rng.integers(0, 2**53, n, dtype=np.uint64).astype(np.float64) * 2.0**-53
    xc[:12] = [0.0, 0.25, 0.5, 0.75, 0.125, 0.375, 0.625, 0.875,
               2.0**-53, 0.25 - 2.0**-53, 0.5 + 2.0**-53, 1 - 2.0**-53]
    return xl, xe, xc


# --------------------------------------------------------------------- KATs
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_kat_reference(ctr, key, expected):
    out = ref.philox4x32(*ctr, *key)
    assert tuple(int(o) for o in out) == expected
    # vectorised: same value in every lane
    out = ref.philox4x32(np.full(3, ctr[0], np.uint32), ctr[1], ctr[2], ctr[3], *key)
    for o, e in zip(out, expected):
        assert o.dtype == np.uint32 and np.all(o == e)


def test_fma_emulation_exact():
    rng = np.random.default_rng(0)
    n = 4000
    cases = []
    a = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
    b = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
    cases.append((a, b, rng.standard_normal(n) * np.exp2(rng.integers(-130, 130, n))))
    cases.append((a, b, -(a * b) * (1 + rng.integers(-4, 5, n) * 2.0**-52)))
    p, e = ref._two_prod(a, b)
    # a*b + c at / next to rounding midpoints
    cases.append((a, b, np.spacing(p) * 0.5 * rng.integers(-4, 5, n) - e * rng.integers(0, 2, n)))
    for a, b, c in cases:
        got = ref.fma(a, b, c)
        exact = np.array([float(Fraction(x) * Fraction(y) + Fraction(z))
                          for x, y, z in zip(a, b, c)])
        _assert_bitwise(got, exact)


def test_uniform_reference_formula():
    idx = np.arange(1000, dtype=np.uint32)
    o = ref.philox4x32(idx, 2, STEP, STREAM, *KEYS)
    expected = ((o[0] >> 5).astype(np.uint64) * 67108864.0 + (o[1] >> 6)) * (1.0 / 9007199254740992.0)
    _assert_bitwise(ref.uniform(*KEYS, idx, STEP, STREAM, call=2), expected)


# -------------------------------------------------------------- statistics
@pytest.mark.parametrize("method", METHODS)
def test_statistics(method):
    n = 10**6
    idx = np.arange(n, dtype=np.uint32)
    u = ref.uniform(*KEYS, idx, STEP, STREAM, call=0)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 2e-3
    z = ref.normal(*KEYS, idx, STEP, STREAM, call=1, method=method)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 5e-3
    assert abs(z.std() - 1.0) < 5e-3
    # the shape: 64 bins of equal normal probability (their edges
    # by bisection on erf) against a chi-square bound (mean 63, sd 11.2:
    # 63 + 5 sd), and the tails beyond the ziggurat's R (its own branch)
    # and beyond 4
    phi = np.vectorize(lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))))
    edges = [-np.inf]
    for k in range(1, 64):
        lo, hi = -6.0, 6.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if phi(mid) < k / 64 else (lo, mid)
        edges.append(0.5 * (lo + hi))
    counts, _ = np.histogram(z, bins=edges + [np.inf])
    chi2 = float(np.sum((counts - n / 64) ** 2 / (n / 64)))
    assert chi2 < 63 + 5 * 11.2, chi2
    for cut in (ref.ZIG_R, 4.0):
        p = 2 * (1 - float(phi(cut)))
        k = int(np.count_nonzero(np.abs(z) > cut))
        assert abs(k - n * p) < 5 * math.sqrt(n * p), (cut, k, n * p)
    assert abs(float(np.mean(z ** 4)) - 3.0) < 0.05
    # different streams / steps are different
    z2 = ref.normal(*KEYS, idx[:1000], STEP, STREAM + 1, call=1, method=method)
    assert not np.array_equal(z[:1000], z2)


def _c_table(name):
    body = _rng_source().split(f"_SG_TABLE {name}[", 1)[1].split("{", 1)[1].split("}", 1)[0]
    return np.array([float(v) for v in body.split(",") if v.strip()])


def test_ziggurat_tables():
    """rng.c's layers are zig_tables()'s values; the layers have equal
    areas (V) and the base strip holds R's tail."""
    x, ratio = ref.zig_tables()
    _assert_bitwise(_c_table("_sg_zig_x"), x)
    _assert_bitwise(_c_table("_sg_zig_ratio"), ratio)
    f = np.exp(-0.5 * x * x)
    assert x[1] == ref.ZIG_R and x[-1] == 0.0
    np.testing.assert_allclose(x[1:-1] * (f[2:] - f[1:-1]), ref.ZIG_V, rtol=1e-8)   # R, V as published: ~1e-9 drift by the top
    tail = math.sqrt(math.pi / 2) * math.erfc(ref.ZIG_R / math.sqrt(2))
    assert abs(x[0] * f[1] - (ref.ZIG_R * f[1] + tail)) < 1e-12


def test_log_exp_cos_accuracy():
    n = 10**6
    xl, xe, xc = _math_inputs(n)
    lg = ref.sg_log(xl)
    npl = np.log(xl)
    ulp = np.spacing(np.abs(npl))
    nz = npl != 0
    assert lg[0] == 0.0
    assert np.all(np.abs(lg - npl)[nz] <= 2 * ulp[nz])
    assert np.max(np.abs((lg - npl)[nz] / npl[nz])) < 4e-16

    ex = ref.sg_exp(xe)
    npe = np.exp(xe)
    assert ex[0] == 1.0 and ex[1] == 1.0
    assert np.all(np.abs(ex - npe) <= 2 * np.spacing(npe))
    assert np.max(np.abs(ex - npe) / npe) < 4e-16

    cs = ref.sg_cospi2(xc)
    # extended-precision reference after exact quadrant reduction (a plain
    # np.cos(2*np.pi*u) is itself inaccurate near the zeros of cos)
    pi = np.longdouble("3.14159265358979323846264338327950288")
    v = 4 * xc
    q = np.floor(v)
    r = v - q
    big = r > 0.5
    r = np.where(big, r - 1, r)
    q = (q + big).astype(np.int64)
    rl = r.astype(np.longdouble) * (pi / 2)
    exact = np.where(q & 1, np.sin(rl), np.cos(rl))
    exact = np.where((q + 1) & 2, -exact, exact)
    if np.finfo(np.longdouble).nmant >= 63:
        err = np.abs(cs.astype(np.longdouble) - exact)
        assert np.all(err <= 2 * np.spacing(np.abs(exact).astype(np.float64)))
        nz = exact != 0
        assert float(np.max(err[nz] / np.abs(exact[nz]))) < 4e-16
    # and against numpy's own cos (absolute, since 2*pi*u rounds)
    assert np.max(np.abs(cs - np.cos(2 * np.pi * xc))) < 2e-15
    assert cs[0] == 1.0 and cs[2] == -1.0


# ------------------------------------------------------------------ OpenCL
OPENCL_KERNELS = r"""
__kernel void draws(__global double *out, const uint k0, const uint k1,
                    const uint step, const uint stream, const uint n)
{
    uint i = get_global_id(0);
    if (i >= n) return;
    _sg_rng_t r = _sg_rng_make(k0, k1, i, step, stream);
    out[5 * i + 0] = _sg_uniform(&r);
    out[5 * i + 1] = _sg_uniform(&r);
    out[5 * i + 2] = _sg_uniform(&r);
    out[5 * i + 3] = _sg_normal(&r);
    out[5 * i + 4] = _sg_normal(&r);
}

__kernel void mathfn(__global const double *xl, __global const double *xe,
                     __global const double *xc, __global double *lg,
                     __global double *ex, __global double *cs, const uint n)
{
    uint i = get_global_id(0);
    if (i >= n) return;
    lg[i] = _sg_log(xl[i]);
    ex[i] = _sg_exp(xe[i]);
    cs[i] = _sg_cospi2(xc[i]);
}

__kernel void philox(__global const uint *in, __global uint *out, const uint n)
{
    uint i = get_global_id(0);
    uint o[4];
    if (i >= n) return;
    _sg_philox4x32_10(in[6*i], in[6*i+1], in[6*i+2], in[6*i+3], in[6*i+4], in[6*i+5], o);
    out[4*i] = o[0]; out[4*i+1] = o[1]; out[4*i+2] = o[2]; out[4*i+3] = o[3];
}
"""


def _opencl_program(src):
    """Build `src` on the first OpenCL device (PoCL preferred) with fp64
    that can compile kernels; skip when there is none."""
    cl = pytest.importorskip("pyopencl")
    from spikegpu.backends import opencl as ocl
    devices = [d for *_, d in ocl.list_devices() if "cl_khr_fp64" in d.extensions]
    # PoCL first, then enumeration order
    devices.sort(key=lambda d: "portable computing language" not in d.platform.name.lower())
    for dev in devices:
        if ocl.device_works(dev):
            ctx = cl.Context([dev])
            prg = cl.Program(ctx, src).build()  # a failure here is a real error
            return cl, ctx, cl.CommandQueue(ctx), prg
    pytest.skip("no OpenCL device with fp64 can build kernels")


@pytest.fixture(scope="module", params=METHODS)
def opencl(request):
    # the real program prelude (dialect + rng.c), as the device renders it,
    # for each way of drawing normals
    from spikegpu.templater import render_prelude
    return _opencl_program(render_prelude("opencl", "double", 256, _rng_source(),
                                          request.param) + OPENCL_KERNELS) + (request.param,)


def test_opencl_kat(opencl):
    cl, ctx, queue, prg, method = opencl
    inp = np.array([list(c) + list(k) for c, k, _ in KAT], dtype=np.uint32)
    mf = cl.mem_flags
    d_in = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=inp)
    out = np.zeros((len(KAT), 4), dtype=np.uint32)
    d_out = cl.Buffer(ctx, mf.WRITE_ONLY, out.nbytes)
    cl.Kernel(prg, "philox")(queue, (len(KAT),), None, d_in, d_out, np.uint32(len(KAT)))
    cl.enqueue_copy(queue, out, d_out)
    assert [tuple(int(x) for x in row) for row in out] == [e for _, _, e in KAT]


def _opencl_draws(opencl, n, k0, k1, step, stream):
    cl, ctx, queue, prg, method = opencl
    out = np.empty((n, 5), dtype=np.float64)
    d_out = cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, out.nbytes)
    cl.Kernel(prg, "draws")(queue, (n,), None, d_out, np.uint32(k0), np.uint32(k1),
              np.uint32(step), np.uint32(stream), np.uint32(n))
    cl.enqueue_copy(queue, out, d_out)
    return out


@pytest.mark.parametrize("k0,k1,step,stream", [(KEYS[0], KEYS[1], STEP, STREAM),
                                               (0, 0, 0, 0),
                                               (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 7)])
def test_opencl_draws_bitwise(opencl, k0, k1, step, stream):
    n = 100000
    got = _opencl_draws(opencl, n, k0, k1, step, stream)
    expected = _reference_draws(n, k0, k1, step, stream, opencl[-1])
    _assert_bitwise(got[:, :3], expected[:, :3])   # uniforms
    _assert_bitwise(got[:, 3:], expected[:, 3:])   # normals
    assert np.count_nonzero(np.abs(expected[:, 3:]) > ref.ZIG_R) > 10   # the ziggurat's tail
    assert got[:, :3].min() >= 0.0 and got[:, :3].max() < 1.0


def test_opencl_math_bitwise(opencl):
    cl, ctx, queue, prg, method = opencl
    n = 10**6
    ins = _math_inputs(n)
    mf = cl.mem_flags
    d_in = [cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x) for x in ins]
    outs = [np.empty(n) for _ in ins]
    d_out = [cl.Buffer(ctx, mf.WRITE_ONLY, o.nbytes) for o in outs]
    cl.Kernel(prg, "mathfn")(queue, (n,), None, *d_in, *d_out, np.uint32(n))
    for o, d in zip(outs, d_out):
        cl.enqueue_copy(queue, o, d)
    for o, x, fn in zip(outs, ins, (ref.sg_log, ref.sg_exp, ref.sg_cospi2)):
        _assert_bitwise(o, fn(x))


# ------------------------------------------------- host C / C++ compilers
HOST_C = r"""
#include <stdint.h>
#include <math.h>
#define SG_FN static inline
#include "rng.c"
void host_draws(double *out, uint32_t k0, uint32_t k1, uint32_t step,
                uint32_t stream, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        _sg_rng_t r = _sg_rng_make(k0, k1, i, step, stream);
        out[5 * i + 0] = _sg_uniform(&r);
        out[5 * i + 1] = _sg_uniform(&r);
        out[5 * i + 2] = _sg_uniform(&r);
        out[5 * i + 3] = _sg_normal(&r);
        out[5 * i + 4] = _sg_normal(&r);
    }
}
void host_math(const double *xl, const double *xe, const double *xc,
               double *lg, double *ex, double *cs, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        lg[i] = _sg_log(xl[i]);
        ex[i] = _sg_exp(xe[i]);
        cs[i] = _sg_cospi2(xc[i]);
    }
}
"""


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flags", [["-O2", "-ffp-contract=off"],
                                   ["-O3", "-march=native", "-ffp-contract=fast"]])
def test_host_c_bitwise(tmp_path, flags, method):
    """Compile rng.c as host C; with -ffp-contract=fast (like nvcc's default
    fmad=true) the results must still match, i.e. nothing is contractible."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    shutil.copy(RNG_C, tmp_path / "rng.c")
    (tmp_path / "host.c").write_text(HOST_C)
    lib = tmp_path / "librng.so"
    if method == "ziggurat":
        flags = flags + ["-DSG_NORMAL_ZIGGURAT"]
    res = subprocess.run([cc, *flags, "-std=c99", "-Wall", "-shared", "-fPIC",
                          "-o", str(lib), str(tmp_path / "host.c"), "-lm"],
                         capture_output=True, text=True)
    if res.returncode != 0 and "-march=native" in flags:
        pytest.skip("compiler rejects -march=native: " + res.stderr[-300:])
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr, res.stderr
    so = ctypes.CDLL(str(lib))
    dptr = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")
    u32 = ctypes.c_uint32
    so.host_draws.argtypes = [dptr, u32, u32, u32, u32, u32]
    so.host_math.argtypes = [dptr] * 6 + [u32]
    n = 20000
    out = np.empty((n, 5))
    so.host_draws(out, KEYS[0], KEYS[1], STEP, STREAM, n)
    _assert_bitwise(out, _reference_draws(n, method=method))
    ins = _math_inputs(200000)
    outs = [np.empty_like(x) for x in ins]
    so.host_math(*ins, *outs, ins[0].size)
    for o, x, fn in zip(outs, ins, (ref.sg_log, ref.sg_exp, ref.sg_cospi2)):
        _assert_bitwise(o, fn(x))


CUDA_STUB = r"""
#include <stdint.h>
#include <string.h>
#include <cmath>
#define __CUDACC__ 1
#define __device__
static inline long long __double_as_longlong(double x) { long long r; memcpy(&r, &x, 8); return r; }
static inline double __longlong_as_double(long long x) { double r; memcpy(&r, &x, 8); return r; }
static inline double __dmul_rn(double a, double b) { return a * b; }
using std::fma; using std::floor; using std::sqrt;
#define SG_FN static inline
#include "rng.c"
double use(uint32_t i) { _sg_rng_t r = _sg_rng_make(1u, 2u, i, 3u, 4u);
                         return _sg_uniform(&r) + _sg_normal(&r); }
"""


@pytest.mark.parametrize("method", METHODS)
def test_cuda_syntax_with_gxx(tmp_path, method):
    """C++ syntax check of the CUDA branch (nvcc is usually not available)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    shutil.copy(RNG_C, tmp_path / "rng.c")
    (tmp_path / "stub.cpp").write_text(CUDA_STUB)
    res = subprocess.run([cxx, "-fsyntax-only", "-std=c++11", "-Wall", "-Wextra",
                          *(["-DSG_NORMAL_ZIGGURAT"] if method == "ziggurat" else []),
                          "-Wconversion", "-Wno-sign-conversion", "-x", "c++",
                          str(tmp_path / "stub.cpp")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr, res.stderr
