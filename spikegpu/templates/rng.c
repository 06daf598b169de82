/* ------------------------------------------------------------------------
 * spikegpu counter-based RNG: Philox4x32-10 (Random123-compatible) plus
 * bit-reproducible uniform / normal transforms.
 *
 * Portable between CUDA C++ (nvcc) and OpenCL C 1.2.  Expects a prelude that
 * defines SG_FN and the integer types uint32_t, uint64_t, int32_t, int64_t.
 *
 * Reproducibility rules (the numpy reference spikegpu/rng_reference.py
 * replicates every operation below):
 *  - every multiply whose result feeds an addition is an explicit fma();
 *  - every other (inexact) product goes through _SG_MUL, which is
 *    __dmul_rn() on CUDA (never contracted) and a plain product elsewhere
 *    (FP_CONTRACT is switched off on OpenCL, here and by the prelude);
 *  - products by powers of two are exact, so contraction cannot change them;
 *  - only +, -, *, /, sqrt, floor, fma are used (all IEEE-exact).
 * ---------------------------------------------------------------------- */
#ifdef __OPENCL_VERSION__
#pragma OPENCL FP_CONTRACT OFF
#endif

#if defined(__CUDACC__)
#define _SG_D2L(x) ((int64_t)__double_as_longlong(x))
#define _SG_L2D(x) __longlong_as_double((long long)(x))
#define _SG_MUL(a, b) __dmul_rn((a), (b))
#elif defined(__OPENCL_VERSION__)
#define _SG_D2L(x) ((int64_t)as_long(x))
#define _SG_L2D(x) as_double((long)(x))
#define _SG_MUL(a, b) ((a) * (b))
#else
/* plain C host fallback (testing only) */
typedef union { double d; int64_t l; } _sg_dl_t;
SG_FN int64_t _sg_d2l(double x) { _sg_dl_t u; u.d = x; return u.l; }
SG_FN double _sg_l2d(int64_t x) { _sg_dl_t u; u.l = x; return u.d; }
#define _SG_D2L(x) _sg_d2l(x)
#define _SG_L2D(x) _sg_l2d(x)
#define _SG_MUL(a, b) ((a) * (b))
#endif

typedef struct { uint32_t k0, k1, c0, c1, c2, c3; } _sg_rng_t;

/* Philox4x32-10 block, exactly as Random123's philox4x32_R(10, ctr, key). */
SG_FN void _sg_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                             uint32_t k0, uint32_t k1, uint32_t *out)
{
    int i;
    for (i = 0; i < 10; ++i) {
        uint64_t p0, p1;
        uint32_t hi0, lo0, hi1, lo1;
        if (i > 0) {
            k0 = (uint32_t)(k0 + 0x9E3779B9u);
            k1 = (uint32_t)(k1 + 0xBB67AE85u);
        }
        p0 = (uint64_t)0xD2511F53u * (uint64_t)c0;
        p1 = (uint64_t)0xCD9E8D57u * (uint64_t)c2;
        hi0 = (uint32_t)(p0 >> 32);
        lo0 = (uint32_t)p0;
        hi1 = (uint32_t)(p1 >> 32);
        lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

SG_FN _sg_rng_t _sg_rng_make(uint32_t k0, uint32_t k1, uint32_t idx,
                             uint32_t step, uint32_t stream)
{
    _sg_rng_t r;
    r.k0 = k0;
    r.k1 = k1;
    r.c0 = idx;
    r.c1 = 0u;
    r.c2 = step;
    r.c3 = stream;
    return r;
}

/* 53-bit integer from two 32-bit words: (a >> 5) * 2^26 + (b >> 6) */
SG_FN uint64_t _sg_bits53(uint32_t a, uint32_t b)
{
    return (((uint64_t)(a >> 5)) << 26) | (uint64_t)(b >> 6);
}

/* natural log for finite normal x > 0 (fdlibm e_log.c algorithm, < 1 ulp) */
SG_FN double _sg_log(double x)
{
    int64_t bits = _SG_D2L(x);
    int32_t k = (int32_t)((bits >> 52) & 0x7ff) - 1023;
    int64_t mbits = (bits & (int64_t)0x000FFFFFFFFFFFFF) | (int64_t)0x3FF0000000000000;
    double m, f, s, z, p, R, hf, t, a, b, c, dk;
    if (mbits > (int64_t)0x3FF6A09E667F3BCD) {   /* m > sqrt(2): m /= 2 */
        mbits -= (int64_t)0x0010000000000000;
        k += 1;
    }
    m = _SG_L2D(mbits);
    dk = (double)k;
    f = m - 1.0;                 /* exact */
    s = f / (2.0 + f);
    z = _SG_MUL(s, s);
    p = fma(z, 0.14798198605116586, 0.15313837699209373);
    p = fma(z, p, 0.1818357216161805);
    p = fma(z, p, 0.22222198432149784);
    p = fma(z, p, 0.2857142874366239);
    p = fma(z, p, 0.3999999999940942);
    p = fma(z, p, 0.6666666666666735);
    R = _SG_MUL(z, p);
    hf = 0.5 * f;                /* exact */
    t = fma(hf, f, R);                                   /* hfsq + R */
    a = fma(s, t, _SG_MUL(dk, 1.9082149292705877e-10));  /* s*(hfsq+R) + k*ln2_lo */
    b = fma(hf, f, -a);                                  /* hfsq - a */
    c = b - f;
    return fma(dk, 0.6931471803691238, -c);              /* k*ln2_hi - c */
}

/* cos(2*pi*u) for u in [0, 1) (any finite u >= 0 with 4u < 2^31) */
SG_FN double _sg_cospi2(double u)
{
    double v = 4.0 * u;          /* exact */
    double fq = floor(v);
    double r = v - fq;           /* exact, in [0, 1) */
    int q = (int)fq;
    double r2, p, res;
    if (r > 0.5) {
        r = r - 1.0;             /* exact, in (-0.5, 0) */
        q += 1;
    }
    /* angle = q*pi/2 + r*pi/2 with |r| <= 0.5 */
    r2 = _SG_MUL(r, r);
    if (q & 1) {
        /* sin(pi/2 r), Taylor to r^17 */
        p = fma(r2, 6.0669357311061955e-12, -6.688035109811468e-10);
        p = fma(r2, p, 5.692172921967927e-08);
        p = fma(r2, p, -3.598843235212085e-06);
        p = fma(r2, p, 0.00016044118478735983);
        p = fma(r2, p, -0.004681754135318688);
        p = fma(r2, p, 0.07969262624616705);
        p = fma(r2, p, -0.6459640975062463);
        p = fma(r2, p, 6.123233995736766e-17);       /* lo part of pi/2 */
        res = fma(r, 1.5707963267948966, _SG_MUL(r, p));
    } else {
        /* cos(pi/2 r), Taylor to r^18 */
        p = fma(r2, -5.294400200734623e-13, 6.565963114979473e-11);
        p = fma(r2, p, -6.386603083791852e-09);
        p = fma(r2, p, 4.710874778818172e-07);
        p = fma(r2, p, -2.5202042373060607e-05);
        p = fma(r2, p, 0.0009192602748394266);
        p = fma(r2, p, -0.02086348076335296);
        p = fma(r2, p, 0.25366950790104803);
        p = fma(r2, p, -1.2337005501361697);
        res = fma(r2, p, 1.0);
    }
    if ((q + 1) & 2) {
        res = -res;
    }
    return res;
}

/* uniform double in [0, 1) with 53 random bits; one Philox block per call */
SG_FN double _sg_uniform(_sg_rng_t *r)
{
    uint32_t o[4];
    _sg_philox4x32_10(r->c0, r->c1, r->c2, r->c3, r->k0, r->k1, o);
    r->c1 += 1u;
    return (double)_sg_bits53(o[0], o[1]) * (1.0 / 9007199254740992.0);
}

/* standard normal (Box-Muller, one value per Philox block) */
SG_FN double _sg_normal(_sg_rng_t *r)
{
    uint32_t o[4];
    double u1, u2, rad;
    _sg_philox4x32_10(r->c0, r->c1, r->c2, r->c3, r->k0, r->k1, o);
    r->c1 += 1u;
    u1 = (double)(_sg_bits53(o[0], o[1]) + 1u) * (1.0 / 9007199254740992.0);  /* (0, 1] */
    u2 = (double)_sg_bits53(o[2], o[3]) * (1.0 / 9007199254740992.0);         /* [0, 1) */
    rad = sqrt(-2.0 * _sg_log(u1));
    return _SG_MUL(rad, _sg_cospi2(u2));
}

/* No "#pragma OPENCL FP_CONTRACT DEFAULT" here: contraction stays off for
 * the code after this file too (the prelude switches it off first; the
 * kernels must not contract a*b + c either, as CUDA is built with
 * --fmad=false: tests/test_bitwise.py). */
