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
 * Normals: Box-Muller (one Philox block a draw, no branches: GPUs), or with
 * SG_NORMAL_ZIGGURAT defined (the prelude does so on CPU devices,
 * GPUDevice.normal_method) a ziggurat whose layers are constants.
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

#if defined(__CUDACC__)
#define _SG_TABLE static __device__ const double
#elif defined(__OPENCL_VERSION__)
#define _SG_TABLE __constant double
#else
#define _SG_TABLE static const double
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

/* exp(x) for |x| <= 700 (fdlibm e_exp algorithm: x = k ln2 + r, a rational
 * approximation of exp(r), < 1 ulp) */
SG_FN double _sg_exp(double x)
{
    double dk = floor(fma(x, 1.44269504088896338700e+00, 0.5));
    double hi = fma(-dk, 0.6931471803691238, x);     /* exact: k ln2_hi has spare bits */
    double lo = _SG_MUL(dk, 1.9082149292705877e-10);
    double r = hi - lo;
    double t = _SG_MUL(r, r);
    double p = fma(t, 4.13813679705723846039e-08, -1.65339022054652515390e-06);
    double c, q, y;
    p = fma(t, p, 6.61375632143793436117e-05);
    p = fma(t, p, -2.77777777770155933842e-03);
    p = fma(t, p, 1.66666666666666019037e-01);
    c = fma(-t, p, r);                                 /* r - t p */
    q = _SG_MUL(r, c) / (2.0 - c);
    y = 1.0 - ((lo - q) - hi);
    return y * _SG_L2D(((int64_t)dk + 1023) << 52);    /* exact: a power of two */
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

#ifdef SG_NORMAL_ZIGGURAT
/* the ziggurat's layers (rng_reference.zig_tables(); tests/test_rng.py
 * checks these values): right edges x[0..128], ratios x[i+1]/x[i] */
_SG_TABLE _sg_zig_x[129] = {
    3.7130862467425505, 3.442619855899, 3.2230849845811416, 3.0832288582168683,
    2.9786962526477803, 2.894344007021529, 2.8231253505489105, 2.761169372387177,
    2.7061135731218195, 2.6564064112613597, 2.6109722484318474, 2.569033625924938,
    2.5300096723888275, 2.493454522095372, 2.4590181774118305, 2.42642064553375,
    2.3954342780110625, 2.3658713701176386, 2.3375752413392368, 2.310413683698763,
    2.2842740596774718, 2.2590595738691985, 2.2346863955909795, 2.2110814088787034,
    2.188180432076049, 2.165926793748922, 2.1442701823603953, 2.1231657086739766,
    2.1025731351892385, 2.082456237992017, 2.0627822745083084, 2.0435215366550676,
    2.0246469733773855, 2.006133869963472, 1.98795957412762, 1.9701032608543265,
    1.9525457295535567, 1.9352692282966228, 1.9182573008645099, 1.901494653105151,
    1.884967035707759, 1.8686611409944887, 1.8525645117280911, 1.836665460258446,
    1.8209529965961255, 1.8054167642192285, 1.7900469825998586, 1.7748343955860695,
    1.7597702248995934, 1.7448461281138004, 1.7300541605637305, 1.7153867407136676,
    1.7008366185699169, 1.6863968467791681, 1.672060754097601, 1.6578219209540241,
    1.6436741568628686, 1.6296114794706347, 1.615628095043161, 1.6017183802213781,
    1.5878768648905761, 1.5740982160230008, 1.560377222366169, 1.5467087798599104,
    1.5330878776740433, 1.5195095847659401, 1.5059690368632033, 1.492461423781354,
    1.4789819769899242, 1.4655259573427108, 1.4520886428892246, 1.4386653166845635,
    1.42525125451406, 1.4118417124470577, 1.3984319141310053, 1.3850170377326518,
    1.3715922024273426, 1.3581524543301435, 1.344692751753547, 1.3312079496656273,
    1.317692783209414, 1.3041418501286168, 1.2905495919261964, 1.2769102735601556,
    1.263217961454621, 1.2494664995730682, 1.2356494832633627, 1.2217602305399964,
    1.2077917504159497, 1.1937367078331287, 1.1795873846639882, 1.1653356361647524,
    1.1509728421488674, 1.1364898520131608, 1.1218769225825422, 1.107123647534036,
    1.0922188769072774, 1.0771506248928957, 1.0619059636948243, 1.0464709007640454,
    1.0308302360681956, 1.0149673952513305, 0.9988642334929836, 0.982500803515429,
    0.9658550794011499, 0.9489026255113064, 0.9316161966151508, 0.9139652510230323,
    0.8959153525809377, 0.8774274291129234, 0.8584568431938132, 0.8389522142975774,
    0.8188539067003573, 0.7980920606440569, 0.7765839878947599, 0.7542306644540556,
    0.7309119106424888, 0.7064796113354365, 0.6807479186691546, 0.6534786387399752,
    0.6243585973360507, 0.5929629424714483, 0.5586921784081852, 0.5206560387620606,
    0.4774378372966898, 0.4265479863554235, 0.36287143109703196, 0.27232086481396467,
    0.0
};
_SG_TABLE _sg_zig_ratio[128] = {
    0.9271586026096681, 0.9362302895738892, 0.9566079929529229, 0.9660963845448882,
    0.971681487982781, 0.9753938521821022, 0.9780541171685178, 0.980060694640489,
    0.9816315315239645, 0.9828963811271866, 0.9839375456663325, 0.9848098704733534,
    0.9855513792328944, 0.9861893030819736, 0.9867436799867864, 0.9872295978111943,
    0.9876586437103296, 0.9880398701570176, 0.9883804563121089, 0.9886861715693078,
    0.9889617072428545, 0.9892109183130244, 0.9894370025436909, 0.9896426351781105,
    0.9898300715969688, 0.9900012265183524, 0.9901577357834697, 0.9903010050508025,
    0.9904322485336944, 0.9905525200843218, 0.9906627383358567, 0.9907637071892196,
    0.9908561326209719, 0.9909406365607181, 0.991017768416579, 0.9910880146997187,
    0.991151807102165, 0.991209529308185, 0.9912615227624552, 0.9913080915739614,
    0.9913495066999154, 0.9913860095266759, 0.9914178149430195, 0.9914451139838447,
    0.9914680761085329, 0.9914868511670121, 0.9915015710974835, 0.9915123513923666,
    0.9915192923629307, 0.9915224802280646, 0.9915219880484646, 0.9915178765240442,
    0.9915101946694387, 0.9914989803800052, 0.9914842608986051, 0.9914660531916395,
    0.9914443642412228, 0.9914191912590011, 0.9913905218258715, 0.9913583339607497,
    0.9913225961204966, 0.9912832671321499, 0.9912402960576856, 0.991193621990624,
    0.991143173782899, 0.991088869699481, 0.9910306169972894, 0.9909683114239041,
    0.9909018366304913, 0.9908310634921467, 0.9907558493275227, 0.9906760370080955,
    0.9905914539457294, 0.9905019109452362, 0.9904072009063883, 0.990307097357238,
    0.990201352797563, 0.9900896968277136, 0.9899718340339569, 0.9898474415964779,
    0.9897161665803526, 0.9895776228628198, 0.9894313876418468, 0.9892769974609422,
    0.9891139436730952, 0.9889416672520418, 0.9887595528412437, 0.9885669219091597,
    0.9883630248526034, 0.9881470318569457, 0.9879180222809051, 0.987674972282531,
    0.9874167403388364, 0.9871420502305995, 0.9868494709610887, 0.9865373929461655,
    0.986203999644239, 0.9858472335755389, 0.98546475539409, 0.9850538942989907,
    0.9846115875710347, 0.9841343063494573, 0.9836179638544746, 0.9830578010168337,
    0.9824482427525728, 0.9817827157061126, 0.9810534148544756, 0.9802510014227667,
    0.9793642073274506, 0.9783793105963312, 0.9772794298852922, 0.9760435609386315,
    0.9746452378300764, 0.9730506368752245, 0.9712158326862985, 0.9690827290502092,
    0.9665728537853818, 0.9635775863118795, 0.959942176565901, 0.9554384188286962,
    0.9497153478809163, 0.9422042060159378, 0.9319193267489506, 0.9169927970716931,
    0.8934105197245976, 0.8507165493794344, 0.7504610213889943, 0.0
};

#endif

/* uniform double in [0, 1) with 53 random bits; one Philox block per call */
SG_FN double _sg_uniform(_sg_rng_t *r)
{
    uint32_t o[4];
    _sg_philox4x32_10(r->c0, r->c1, r->c2, r->c3, r->k0, r->k1, o);
    r->c1 += 1u;
    return (double)_sg_bits53(o[0], o[1]) * (1.0 / 9007199254740992.0);
}

#ifdef SG_NORMAL_ZIGGURAT
/* standard normal: a ziggurat of 128 layers (Marsaglia & Tsang 2000; the
 * layer's index from bits apart from the uniform's, as Doornik 2005).  Try j
 * reads Philox block c1 + (j << 24): 53 bits for u in [-1, 1), 7 for the
 * layer, 32 for the wedge's test; ~98.8 % of draws end at the first try
 * with a multiply (Box-Muller's log, cosine and square root cost ~3x the
 * block on PoCL).  The tail (beyond R) takes two uniforms from block
 * c1 + (j << 24) + (1 << 23).  A draw consumes one counter value whatever
 * it tried, so draws stay where rng_reference.normal() finds them. */
SG_FN double _sg_normal(_sg_rng_t *r)
{
    uint32_t o[4];
    uint32_t j;
    double res = 0.0;
    for (j = 0u; j < 64u; ++j) {
        const uint32_t c1 = r->c1 + (j << 24);
        double u, x;
        int i;
        _sg_philox4x32_10(r->c0, c1, r->c2, r->c3, r->k0, r->k1, o);
        /* (bits - 2^52) 2^-52: exact, in [-1, 1) */
        u = (double)((int64_t)_sg_bits53(o[0], o[1]) - (int64_t)4503599627370496) *
            (1.0 / 4503599627370496.0);
        i = (int)(o[2] & 127u);
        x = _SG_MUL(u, _sg_zig_x[i]);
        if (fabs(u) < _sg_zig_ratio[i]) {
            res = x;
            break;
        }
        if (i == 0) {       /* beyond R: Marsaglia's tail */
            double ua, ub, xt, yt;
            _sg_philox4x32_10(r->c0, c1 + (1u << 23), r->c2, r->c3, r->k0, r->k1, o);
            ua = (double)(_sg_bits53(o[0], o[1]) + 1u) * (1.0 / 9007199254740992.0);
            ub = (double)(_sg_bits53(o[2], o[3]) + 1u) * (1.0 / 9007199254740992.0);
            xt = -_sg_log(ua) / 3.442619855899;
            yt = -_sg_log(ub);
            if (2.0 * yt > _SG_MUL(xt, xt)) {
                res = u < 0.0 ? -(3.442619855899 + xt) : 3.442619855899 + xt;
                break;
            }
        } else {            /* the wedge between layers i and i + 1 */
            const double x0 = _sg_zig_x[i], x1 = _sg_zig_x[i + 1];
            const double f0 = _sg_exp(0.5 * fma(x, x, -_SG_MUL(x0, x0)));
            const double f1 = _sg_exp(0.5 * fma(x, x, -_SG_MUL(x1, x1)));
            if (fma((double)o[3] * (1.0 / 4294967296.0), f0 - f1, f1) < 1.0) {
                res = x;
                break;
            }
        }
    }
    r->c1 += 1u;
    return res;
}

#else
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

#endif

/* No "#pragma OPENCL FP_CONTRACT DEFAULT" here: contraction stays off for
 * the code after this file too (the prelude switches it off first; the
 * kernels must not contract a*b + c either, as CUDA is built with
 * --fmad=false: tests/test_bitwise.py). */
