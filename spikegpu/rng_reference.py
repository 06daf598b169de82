"""Numpy reference implementation of ``spikegpu/templates/rng.c``.

Bitwise-identical to the device code (CUDA / OpenCL): Philox4x32-10
(Random123-compatible), 53-bit uniforms and Box-Muller normals using the
portable ``_sg_log`` / ``_sg_cospi2`` implementations.  ``fma`` is emulated
exactly (vectorised, error-free transformations + round-to-odd).
"""
import numpy as np

__all__ = ["philox4x32", "uniform", "normal", "fma", "sg_log", "sg_cospi2",
           "uniform_from_words", "normal_from_words"]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_TWO_M53 = 1.0 / 9007199254740992.0


def _u32(x):
    return np.asarray(x, dtype=np.uint64) & _MASK32


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block; arguments broadcast (uint32 values); returns 4
    uint32 arrays."""
    c0, c1, c2, c3, k0, k1 = np.broadcast_arrays(
        _u32(c0), _u32(c1), _u32(c2), _u32(c3), _u32(k0), _u32(k1))
    k0 = k0.copy()
    k1 = k1.copy()
    for i in range(10):
        if i > 0:
            k0 = (k0 + np.uint64(_W0)) & _MASK32
            k1 = (k1 + np.uint64(_W1)) & _MASK32
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0, lo0 = p0 >> _S32, p0 & _MASK32
        hi1, lo1 = p1 >> _S32, p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return tuple(x.astype(np.uint32) for x in (c0, c1, c2, c3))


# ---------------------------------------------------------------- exact fma
_SPLIT = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _two_prod(a, b):
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _add_round_odd(a, b):
    s, e = _two_sum(a, b)
    need = (e != 0) & ((s.view(np.int64) & 1) == 0)
    if np.any(need):
        s = np.where(need, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s


def fma(a, b, c):
    """Correctly rounded a*b+c for float64 arrays (exact emulation, valid
    without overflow / underflow of intermediate terms; Boldo & Melquiond,
    'Emulation of FMA and correctly rounded sums: proved algorithms using
    rounding to odd', IEEE TC 2008)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64),
                                  np.asarray(b, np.float64),
                                  np.asarray(c, np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        uh, ul = _two_prod(a, b)
        th, tl = _two_sum(c, uh)
        v = _add_round_odd(tl, ul)
        r = th + v
    # zero products: plain IEEE sum (keeps signed-zero semantics)
    zp = (uh == 0)
    if np.any(zp):
        r = np.where(zp, uh + c, r)
    return r


# ---------------------------------------------------------- math functions
_LG = (0.14798198605116586, 0.15313837699209373, 0.1818357216161805,
       0.22222198432149784, 0.2857142874366239, 0.3999999999940942,
       0.6666666666666735)
_LN2_HI = 0.6931471803691238
_LN2_LO = 1.9082149292705877e-10
_SIN = (6.0669357311061955e-12, -6.688035109811468e-10, 5.692172921967927e-08,
        -3.598843235212085e-06, 0.00016044118478735983, -0.004681754135318688,
        0.07969262624616705, -0.6459640975062463, 6.123233995736766e-17)
_PIO2_HI = 1.5707963267948966
_COS = (-5.294400200734623e-13, 6.565963114979473e-11, -6.386603083791852e-09,
        4.710874778818172e-07, -2.5202042373060607e-05, 0.0009192602748394266,
        -0.02086348076335296, 0.25366950790104803, -1.2337005501361697, 1.0)


def _horner(z, coeffs):
    p = fma(z, coeffs[0], coeffs[1])
    for c in coeffs[2:]:
        p = fma(z, p, c)
    return p


def sg_log(x):
    """Replica of ``_sg_log`` (x finite, normal, > 0)."""
    x = np.asarray(x, dtype=np.float64)
    bits = x.view(np.int64)
    k = ((bits >> 52) & 0x7FF).astype(np.int64) - 1023
    mbits = (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    big = mbits > 0x3FF6A09E667F3BCD
    mbits = np.where(big, mbits - 0x0010000000000000, mbits)
    k = np.where(big, k + 1, k)
    m = mbits.view(np.float64)
    dk = k.astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = _horner(z, _LG)
    R = z * p
    hf = 0.5 * f
    t = fma(hf, f, R)
    a = fma(s, t, dk * _LN2_LO)
    b = fma(hf, f, -a)
    c = b - f
    return fma(dk, _LN2_HI, -c)


def sg_cospi2(u):
    """Replica of ``_sg_cospi2``: cos(2*pi*u), u in [0, 1)."""
    u = np.asarray(u, dtype=np.float64)
    v = 4.0 * u
    fq = np.floor(v)
    r = v - fq
    q = fq.astype(np.int64)
    big = r > 0.5
    r = np.where(big, r - 1.0, r)
    q = np.where(big, q + 1, q)
    r2 = r * r
    ps = _horner(r2, _SIN)
    s = fma(r, _PIO2_HI, r * ps)
    c = _horner(r2, _COS)
    res = np.where((q & 1) != 0, s, c)
    return np.where(((q + 1) & 2) != 0, -res, res)


# ------------------------------------------------------------ distributions
def _bits53(a, b):
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    return ((a >> np.uint64(5)) << np.uint64(26)) | (b >> np.uint64(6))


def uniform_from_words(o0, o1):
    return _bits53(o0, o1).astype(np.float64) * _TWO_M53


def normal_from_words(o0, o1, o2, o3):
    u1 = (_bits53(o0, o1) + np.uint64(1)).astype(np.float64) * _TWO_M53
    u2 = _bits53(o2, o3).astype(np.float64) * _TWO_M53
    rad = np.sqrt(-2.0 * sg_log(u1))
    return rad * sg_cospi2(u2)


def uniform(k0, k1, idx, step, stream, call=0):
    """Value returned by the ``call``-th draw (c1 == call) of
    ``_sg_uniform`` on ``_sg_rng_make(k0, k1, idx, step, stream)``."""
    o = philox4x32(idx, call, step, stream, k0, k1)
    return uniform_from_words(o[0], o[1])


def normal(k0, k1, idx, step, stream, call=0):
    """Value returned by ``_sg_normal`` with counter c1 == call."""
    o = philox4x32(idx, call, step, stream, k0, k1)
    return normal_from_words(*o)
