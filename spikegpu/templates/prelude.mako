## The dialect: everything a kernel needs to be written once for CUDA C++
## and OpenCL C.  Rendered once per program with dialect = 'cuda' | 'opencl'.
%if dialect == 'opencl':
#pragma OPENCL FP_CONTRACT OFF
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
typedef char int8_t;   typedef uchar uint8_t;
typedef short int16_t; typedef ushort uint16_t;
typedef int int32_t;   typedef uint uint32_t;
typedef long int64_t;  typedef ulong uint64_t;
#define SG_KERNEL __kernel void
#define SG_GLOBAL __global
#define SG_LOCAL __local
#define SG_FN static inline
#define SG_GID ((int64_t)get_global_id(0))
#define SG_GSIZE ((int64_t)get_global_size(0))
#define SG_LID ((int)get_local_id(0))
#define SG_LSIZE ((int)get_local_size(0))
#define SG_GROUP ((int)get_group_id(0))
#define SG_NGROUPS ((int)get_num_groups(0))
#define SG_BARRIER() barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)
## orders work-group memory only: a global fence costs ~1 us on NVIDIA's OpenCL
#define SG_BARRIER_LOCAL() barrier(CLK_LOCAL_MEM_FENCE)
## work-group memory: CUDA declares it inside a kernel body (SG_SHARED);
## OpenCL only at kernel scope, so bodies receive it as pointers
#define SG_SHARED(T, name, n)
#define SG_LOCAL_PARAM(T, name) , __local T *name
#define SG_LOCAL_DECL(T, name, n) __local T name[n];
#define SG_LOCAL_ARG(name) , name
## a pointer to work-group memory, as a function parameter
#define SG_LOCAL_PTR __local
#define SG_STEP_KERNEL __kernel void
#define SG_AS_LONG(x) as_long(x)
#define SG_AS_DOUBLE(x) as_double(x)
#define SG_AS_INT(x) as_int(x)
#define SG_AS_FLOAT(x) as_float(x)
#define SG_CYCLES() ((int64_t)0)
SG_FN int sg_atomic_add_int(SG_GLOBAL int32_t *p, int32_t v) { return atomic_add(p, v); }
SG_FN int sg_atomic_cas_int(SG_GLOBAL int32_t *p, int32_t cmp, int32_t v) { return atomic_cmpxchg(p, cmp, v); }
SG_FN double sg_atomic_add_double(SG_GLOBAL double *p, double v) {
    SG_GLOBAL long *lp = (SG_GLOBAL long *)p;
    long old = *lp, assumed;
    do { assumed = old;
         old = atom_cmpxchg(lp, assumed, as_long(as_double(assumed) + v));
    } while (old != assumed);
    return as_double(old);
}
SG_FN float sg_atomic_add_float(SG_GLOBAL float *p, float v) {
    SG_GLOBAL int *ip = (SG_GLOBAL int *)p;
    int old = *ip, assumed;
    do { assumed = old;
         old = atomic_cmpxchg(ip, assumed, as_int(as_float(assumed) + v));
    } while (old != assumed);
    return as_float(old);
}
%else:
#include <stdint.h>
#include <math.h>
#define SG_KERNEL extern "C" __global__ void
#define SG_GLOBAL
#define SG_LOCAL __shared__
#define SG_FN static __device__ __forceinline__
#define SG_GID ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define SG_GSIZE ((int64_t)gridDim.x * blockDim.x)
#define SG_LID ((int)threadIdx.x)
#define SG_LSIZE ((int)blockDim.x)
#define SG_GROUP ((int)blockIdx.x)
#define SG_NGROUPS ((int)gridDim.x)
#define SG_BARRIER() __syncthreads()
#define SG_BARRIER_LOCAL() __syncthreads()
#define SG_SHARED(T, name, n) __shared__ T name[n]
#define SG_LOCAL_PARAM(T, name)
#define SG_LOCAL_DECL(T, name, n)
#define SG_LOCAL_ARG(name)
#define SG_LOCAL_PTR
#define SG_STEP_KERNEL extern "C" __global__ void __launch_bounds__(SG_WG)
#define SG_AS_LONG(x) __double_as_longlong(x)
#define SG_AS_DOUBLE(x) __longlong_as_double(x)
#define SG_AS_INT(x) __float_as_int(x)
#define SG_AS_FLOAT(x) __int_as_float(x)
## the SM's cycle counter (profiling the fused step; OpenCL has none)
#define SG_CYCLES() ((int64_t)clock64())
#ifndef INFINITY
#define INFINITY (__int_as_float(0x7f800000))
#endif
#ifndef NAN
#define NAN (__int_as_float(0x7fffffff))
#endif
SG_FN int sg_atomic_add_int(int32_t *p, int32_t v) { return atomicAdd(p, v); }
SG_FN int sg_atomic_cas_int(int32_t *p, int32_t cmp, int32_t v) { return atomicCAS(p, cmp, v); }
SG_FN double sg_atomic_add_double(double *p, double v) { return atomicAdd(p, v); }
SG_FN float sg_atomic_add_float(float *p, float v) { return atomicAdd(p, v); }
%endif
#define SG_REAL ${real}
#define SG_WG ${wg}
## Python semantics for %, // and ** (Brian follows numpy).
SG_FN int64_t _sg_imod(int64_t a, int64_t b) { int64_t r = a % b; return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
SG_FN int64_t _sg_ifloordiv(int64_t a, int64_t b) { int64_t q = a / b; return ((a % b != 0) && ((a < 0) != (b < 0))) ? q - 1 : q; }
SG_FN double _sg_fmod(double a, double b) { double r = fmod(a, b); return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r; }
SG_FN float _sg_fmodf(float a, float b) { float r = fmod(a, b); return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r; }
SG_FN int64_t _sg_ipow(int64_t b, int64_t e) { int64_t r = 1; while (e > 0) { if (e & 1) r *= b; b *= b; e >>= 1; } return r; }
SG_FN double _sg_exprel(double x) { if (fabs(x) < 1e-16) return 1.0; if (x > 717.0) return INFINITY; return expm1(x) / x; }
SG_FN float _sg_exprelf(float x) { if (fabs(x) < 1e-16f) return 1.0f; if (x > 88.0f) return INFINITY; return expm1(x) / x; }
SG_FN double _sg_clip_d(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
SG_FN float _sg_clip_f(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
SG_FN int64_t _sg_clip_i(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }
SG_FN int64_t _sg_timestep(double t, double dt) { return (int64_t)((t + 1e-3 * dt) / dt); }
SG_FN int32_t _sg_isign(int64_t x) { return (x > 0) - (x < 0); }
SG_FN int32_t _sg_fsign(double x) { return (x > 0.0) - (x < 0.0); }
${rng_source}
SG_FN int32_t _sg_poisson_small(_sg_rng_t *r, double lam) {
    double p = exp(-lam), s = p, u = _sg_uniform(r); int32_t x = 0;
    while (u > s && x < 100000) { x++; p *= lam / x; s += p; }
    return x;
}
SG_FN int32_t _sg_poisson(_sg_rng_t *r, double lam) {
    int32_t k = 0;
    if (!(lam > 0.0)) return 0;
    while (lam > 500.0) { k += _sg_poisson_small(r, 500.0); lam -= 500.0; }
    return k + _sg_poisson_small(r, lam);
}
## Inclusive prefix sum of every thread's ``v`` over the work-group, in
## ``buf`` (SG_LSIZE ints of work-group memory; buf[SG_LSIZE - 1] is the
## total); returns this thread's.  Every thread of the work-group calls it.
SG_FN int32_t sg_group_scan(SG_LOCAL_PTR int32_t *buf, const int32_t v) {
    buf[SG_LID] = v;
    SG_BARRIER_LOCAL();
    for (int o = 1; o < SG_LSIZE; o <<= 1) {
        const int32_t t = SG_LID >= o ? buf[SG_LID - o] : 0;
        SG_BARRIER_LOCAL();
        buf[SG_LID] += t;
        SG_BARRIER_LOCAL();
    }
    return buf[SG_LID];
}
## Clocks tick on the device so that no value goes from host to device per step.
SG_KERNEL _sg_tick(SG_GLOBAL int64_t *timestep, SG_GLOBAL double *t, SG_GLOBAL const double *dt) {
    if (SG_GID == 0) { timestep[0] += 1; t[0] = timestep[0] * dt[0]; }
}
#define _sg_rand(_vidx) _sg_uniform(&_sg_rng)
#define _sg_randn(_vidx) _sg_normal(&_sg_rng)
#define _sg_poisson_fn(_lam, _vidx) _sg_poisson(&_sg_rng, (_lam))
SG_FN int64_t _sg_ta_index(double t, double dt, int64_t K, int64_t n) {
    const double eps = dt / K;
    int64_t i = (int64_t)((t / eps + 0.5) / K);
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}
#define _sg_timedarray_1d(_v, _n, _dt, _K, _t) ((_v)[_sg_ta_index((_t), (_dt), (_K), (_n))])
#define _sg_timedarray_2d(_v, _rows, _cols, _dt, _K, _t, _i) ((_v)[_sg_ta_index((_t), (_dt), (_K), (_rows)) * (_cols) + (_i)])
