"""Numpy reference implementation of ``spikegpu/templates/rng.c``.

Bitwise-identical to the device code (CUDA / OpenCL): Philox4x32-10
(Random123-compatible), 53-bit uniforms and normals by Box-Muller or by a
ziggurat (``normal(method=...)``), using the portable ``_sg_log``,
``_sg_cospi2`` and ``_sg_exp`` implementations.  ``fma`` is emulated
exactly (vectorised, error-free transformations + round-to-odd).
"""
import numpy as np

__all__ = ["philox4x32", "uniform", "normal", "fma", "sg_log", "sg_exp", "sg_cospi2",
           "uniform_from_words", "normal_from_words", "zig_tables", "NORMAL_METHODS"]

#: how _sg_normal draws (GPUDevice.normal_method)
NORMAL_METHODS = ("box-muller", "ziggurat")

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


# ---------------------------------------------------------------- exp
_EXP_P = (4.13813679705723846039e-08, -1.65339022054652515390e-06,
          6.61375632143793436117e-05, -2.77777777770155933842e-03,
          1.66666666666666019037e-01)
_INVLN2 = 1.44269504088896338700e+00


def sg_exp(x):
    """Replica of ``_sg_exp`` (|x| <= 700)."""
    x = np.asarray(x, dtype=np.float64)
    dk = np.floor(fma(x, _INVLN2, 0.5))
    hi = fma(-dk, _LN2_HI, x)
    lo = dk * _LN2_LO
    r = hi - lo
    t = r * r
    p = _horner(t, _EXP_P)
    c = fma(-t, p, r)
    q = (r * c) / (2.0 - c)
    y = 1.0 - ((lo - q) - hi)
    scale = ((dk.astype(np.int64) + 1023) << 52).view(np.float64)
    return y * scale


# ------------------------------------------------------------ ziggurat
#: 128 layers (Marsaglia & Tsang 2000, with Doornik's 2005 layer index
#: drawn apart from the uniform): the base strip's edge and the layers' area
ZIG_R = 3.442619855899
ZIG_V = 9.91256303526217e-3
ZIG_LAYERS = 128


def zig_tables():
    """(x, ratio): the layers' right edges x[0..128] (x[0] the base
    strip's width V / f(R), x[128] = 0) and ratio[i] = x[i+1] / x[i]; the
    values templates/rng.c holds (tests compare them)."""
    import math
    f = math.exp(-0.5 * ZIG_R * ZIG_R)
    x = [0.0] * (ZIG_LAYERS + 1)
    x[0], x[1] = ZIG_V / f, ZIG_R
    for i in range(2, ZIG_LAYERS):
        x[i] = math.sqrt(-2.0 * math.log(ZIG_V / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    ratio = [x[i + 1] / x[i] for i in range(ZIG_LAYERS)]
    return np.array(x), np.array(ratio)


# ------------------------------------------------------------ distributions
def _bits53(a, b):
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    return ((a >> np.uint64(5)) << np.uint64(26)) | (b >> np.uint64(6))


def uniform_from_words(o0, o1):
    return _bits53(o0, o1).astype(np.float64) * _TWO_M53


_ZX, _ZRATIO = zig_tables()
_TWO_M52 = 2.0 ** -52
_TWO_M32 = 2.0 ** -32
#: a draw's j-th try reads block c1 = call + (j << 24), the tail's extra
#: uniforms block c1 + (j << 24) + (1 << 23)
_ZIG_TRY = 1 << 24
_ZIG_TAIL = 1 << 23
_ZIG_TRIES = 64


def normal(k0, k1, idx, step, stream, call=0, method="box-muller"):
    """Value returned by ``_sg_normal`` with counter c1 == call, built with
    ``method`` (GPUDevice.normal_method: 'box-muller', or 'ziggurat' where
    the prelude defines SG_NORMAL_ZIGGURAT)."""
    if method == "box-muller":
        o = philox4x32(idx, call, step, stream, k0, k1)
        return normal_from_words(*o)
    if method != "ziggurat":
        raise ValueError(f"unknown normal method {method!r}")
    return normal_ziggurat(k0, k1, idx, step, stream, call)


def normal_ziggurat(k0, k1, idx, step, stream, call=0):
    """The ziggurat's draw: tries until one is accepted, try j on its own
    Philox block."""
    k0, k1, idx, step, stream = np.broadcast_arrays(
        _u32(k0), _u32(k1), _u32(idx), _u32(step), _u32(stream))
    out = np.zeros(idx.shape, dtype=np.float64)
    todo = np.ones(idx.shape, dtype=bool)
    for j in range(_ZIG_TRIES):
        if not todo.any():
            break
        w = np.nonzero(todo)
        c1 = (call + j * _ZIG_TRY) & 0xFFFFFFFF
        o = philox4x32(idx[w], c1, step[w], stream[w], k0[w], k1[w])
        u = (_bits53(o[0], o[1]).astype(np.int64) - (1 << 52)).astype(np.float64) * _TWO_M52
        i = (o[2] & np.uint32(ZIG_LAYERS - 1)).astype(np.int64)
        xi = _ZX[i]
        x = u * xi
        done = np.abs(u) < _ZRATIO[i]
        res = np.where(done, x, 0.0)
        tail = ~done & (i == 0)
        if tail.any():
            t = np.nonzero(tail)
            ot = philox4x32(idx[w][t], (c1 + _ZIG_TAIL) & 0xFFFFFFFF, step[w][t],
                            stream[w][t], k0[w][t], k1[w][t])
            ua = (_bits53(ot[0], ot[1]) + np.uint64(1)).astype(np.float64) * _TWO_M53
            ub = (_bits53(ot[2], ot[3]) + np.uint64(1)).astype(np.float64) * _TWO_M53
            xt = -sg_log(ua) / ZIG_R
            yt = -sg_log(ub)
            ok = 2.0 * yt > xt * xt
            val = np.where(u[t] < 0, -(ZIG_R + xt), ZIG_R + xt)
            res[t] = np.where(ok, val, 0.0)
            done[t] = ok
        wedge = ~done & (i != 0)
        if wedge.any():
            g = np.nonzero(wedge)
            xg, ig = x[g], i[g]
            x0, x1 = _ZX[ig], _ZX[ig + 1]
            f0 = sg_exp(0.5 * fma(xg, xg, -(x0 * x0)))
            f1 = sg_exp(0.5 * fma(xg, xg, -(x1 * x1)))
            v = o[3][g].astype(np.float64) * _TWO_M32
            ok = fma(v, f0 - f1, f1) < 1.0
            res[g] = np.where(ok, xg, 0.0)
            done[g] = ok
        sub = out[w]
        sub[done] = res[done]
        out[w] = sub
        left = todo[w]
        left[done] = False
        todo[w] = left
    return out


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


