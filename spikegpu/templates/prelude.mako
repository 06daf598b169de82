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
#define SG_LID ((int)get_local_id(0))
#define SG_LSIZE ((int)get_local_size(0))
#define SG_RAW_GROUP ((int)get_group_id(0))
#define SG_RAW_NGROUPS ((int)get_num_groups(0))
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
#define SG_PROF_ADD(p, v) atom_add((__global long *)(p), (long)(v))
#define SG_PROF_MAX(p, v) atom_max((__global long *)(p), (long)(v))
#ifdef SG_NV_PTX
## NVIDIA's OpenCL compiles inline PTX (the backend defines SG_NV_PTX there,
## sm_70 and later): the CUDA dialect's grid barrier (sg_grid_sync below the
## dialects; OpenCL 1.2's fences did not make other work-groups' writes
## visible to plain loads there) and native float atomics instead of
## compare-and-swap loops.
#define SG_GRID_BAR_T __global volatile uint
#else
## A barrier of the whole grid (the fused step kernel over all compute units:
## a work-group per compute unit, every one resident on a GPU).  bar[0]
## counts arrivals, bar[1] is the generation.  Not for CPU devices.
SG_FN void sg_grid_sync(__global volatile uint *bar) {
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    if (get_local_id(0) == 0) {
        const uint gen = atomic_add(&bar[1], 0u);
        mem_fence(CLK_GLOBAL_MEM_FENCE);
        if (atomic_inc(&bar[0]) == get_num_groups(0) - 1) {
            atomic_xchg(&bar[0], 0u);
            mem_fence(CLK_GLOBAL_MEM_FENCE);
            atomic_inc(&bar[1]);
        } else {
            while (atomic_add(&bar[1], 0u) == gen) { }
        }
        mem_fence(CLK_GLOBAL_MEM_FENCE);
    }
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
}
#endif
#define SG_GRID_KERNEL __kernel void
SG_FN int sg_atomic_add_int(SG_GLOBAL int32_t *p, int32_t v) { return atomic_add(p, v); }
SG_FN int sg_atomic_cas_int(SG_GLOBAL int32_t *p, int32_t cmp, int32_t v) { return atomic_cmpxchg(p, cmp, v); }
#ifdef SG_NV_PTX
SG_FN double sg_atomic_add_double(SG_GLOBAL double *p, double v) {
    double old;
    asm volatile("atom.global.add.f64 %0, [%1], %2;" : "=d"(old) : "l"(p), "d"(v) : "memory");
    return old;
}
SG_FN float sg_atomic_add_float(SG_GLOBAL float *p, float v) {
    float old;
    asm volatile("atom.global.add.f32 %0, [%1], %2;" : "=f"(old) : "l"(p), "f"(v) : "memory");
    return old;
}
#else
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
#endif
%else:
#ifdef __CUDACC_RTC__
## NVRTC has no system headers; math functions are built in
typedef signed char int8_t;   typedef unsigned char uint8_t;
typedef short int16_t;        typedef unsigned short uint16_t;
typedef int int32_t;          typedef unsigned int uint32_t;
typedef long long int64_t;    typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#include <math.h>
#endif
#define SG_KERNEL extern "C" __global__ void
#define SG_GLOBAL
#define SG_LOCAL __shared__
#define SG_FN static __device__ __forceinline__
#define SG_LID ((int)threadIdx.x)
#define SG_LSIZE ((int)blockDim.x)
#define SG_RAW_GROUP ((int)blockIdx.x)
#define SG_RAW_NGROUPS ((int)gridDim.x)
#define SG_BARRIER() __syncthreads()
#define SG_BARRIER_LOCAL() __syncthreads()
## the number of threads of the work-group whose p is true (every thread
## calls it).  CUDA only: on OpenCL a counter in work-group memory needs
## barriers that PoCL's compiler unrolls slowly in large fused kernels
#define SG_GROUP_COUNT(p) __syncthreads_count(p)
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
#define SG_PROF_ADD(p, v) atomicAdd((unsigned long long *)(p), (unsigned long long)(v))
#define SG_PROF_MAX(p, v) atomicMax((unsigned long long *)(p), (unsigned long long)(v))
#ifndef INFINITY
#define INFINITY (__int_as_float(0x7f800000))
#endif
#ifndef NAN
#define NAN (__int_as_float(0x7fffffff))
#endif
#define SG_GRID_BAR_T unsigned int
## SG_GRID_MINB: blocks a multiprocessor must hold at least (the step
## kernel's text defines it, stepkernel.plan), which caps the registers
#define SG_GRID_KERNEL extern "C" __global__ void __launch_bounds__(256, SG_GRID_MINB)
SG_FN int sg_atomic_add_int(int32_t *p, int32_t v) { return atomicAdd(p, v); }
SG_FN int sg_atomic_cas_int(int32_t *p, int32_t cmp, int32_t v) { return atomicCAS(p, cmp, v); }
SG_FN double sg_atomic_add_double(double *p, double v) { return atomicAdd(p, v); }
SG_FN float sg_atomic_add_float(float *p, float v) { return atomicAdd(p, v); }
%endif
## A barrier of the whole grid (the fused step kernel over all multiprocessors,
## launched cooperatively: every block is resident), for CUDA and NVIDIA's
## OpenCL (inline PTX).  One atomic add per block on bar[0]: block 0 adds
## 2^31 - (blocks - 1), the others 1, so the word's low bits return to 0
## and its top bit flips when the last block arrives; each block waits for
## the flip after its own add.  The add releases and the wait acquires at
## device scope (sm_70 and later; before: fences); per barrier on the
## H200, 1.0-1.2 us against 2.2 for a counter that the last block resets
## (README, "The cortical microcircuit").
#if ${'1' if dialect == 'cuda' else 'defined(SG_NV_PTX)'}
SG_FN void sg_grid_sync(SG_GRID_BAR_T *bar) {
    SG_BARRIER();
    if (SG_LID == 0) {
        const unsigned int add = SG_RAW_GROUP == 0 ? 0x80000000u - (SG_RAW_NGROUPS - 1) : 1u;
        unsigned int old, now;
%if dialect == 'cuda':
#if __CUDA_ARCH__ < 700
        __threadfence();
        old = atomicAdd(bar, add);
        do { now = *(volatile unsigned int *)bar; } while (((old ^ now) & 0x80000000u) == 0);
        __threadfence();
#else
%endif
        asm volatile("atom.add.release.gpu.u32 %0, [%1], %2;" : "=r"(old) : "l"(bar), "r"(add) : "memory");
        do {
            asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(now) : "l"(bar) : "memory");
        } while (((old ^ now) & 0x80000000u) == 0);
%if dialect == 'cuda':
#endif
%endif
    }
    SG_BARRIER();
}
#endif
## A value one work-group publishes for others of the same grid-form launch
## to wait for (the threshold's look-back, threshold.mako): a release store
## and acquire loads at device scope (atomics on other OpenCL devices).
#if ${'1' if dialect == 'cuda' else 'defined(SG_NV_PTX)'}
SG_FN void sg_publish_int(SG_GLOBAL int32_t *p, const int32_t v) {
%if dialect == 'cuda':
#if __CUDA_ARCH__ < 700
    __threadfence();
    *(volatile int32_t *)p = v;
#else
%endif
    asm volatile("st.release.gpu.u32 [%0], %1;" :: "l"(p), "r"(v) : "memory");
%if dialect == 'cuda':
#endif
%endif
}
SG_FN int32_t sg_poll_int(SG_GLOBAL int32_t *p) {
    int32_t v;
%if dialect == 'cuda':
#if __CUDA_ARCH__ < 700
    v = *(volatile int32_t *)p;
    __threadfence();
#else
%endif
    asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
%if dialect == 'cuda':
#endif
%endif
    return v;
}
#else
SG_FN void sg_publish_int(SG_GLOBAL int32_t *p, const int32_t v) {
    atomic_xchg((SG_GLOBAL volatile int *)p, v);
}
SG_FN int32_t sg_poll_int(SG_GLOBAL int32_t *p) {
    return atomic_add((SG_GLOBAL volatile int *)p, 0);
}
#endif
## A body's grid: work-group _sg_grp of _sg_ng (body parameters).  A kernel
## of its own passes its launch's grid; a merged launch gives each object
## its part of the grid; the fused step kernel, its one work-group.
## Kernels that are no body declare SG_WHOLE_GRID first.
#define SG_GROUP _sg_grp
#define SG_NGROUPS _sg_ng
#define SG_GID ((int64_t)_sg_grp * SG_LSIZE + SG_LID)
#define SG_GSIZE ((int64_t)_sg_ng * SG_LSIZE)
#define SG_WHOLE_GRID const int32_t _sg_grp = SG_RAW_GROUP, _sg_ng = SG_RAW_NGROUPS;
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
// a synaptic delay in steps, rounded as Brian2's C++ spike queue rounds
// (the rows' build and the dendritic push must agree)
SG_FN int64_t sg_delay_steps(double delay, double dt) { return (int64_t)(delay / dt + 0.5); }
SG_FN int32_t _sg_isign(int64_t x) { return (x > 0) - (x < 0); }
SG_FN int32_t _sg_fsign(double x) { return (x > 0.0) - (x < 0.0); }
%if normals == 'ziggurat':
#define SG_NORMAL_ZIGGURAT 1
%endif
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
## PoissonInput's binomial draws (functions.py): Brian2's normal
## approximation and numpy's inversion algorithm
SG_FN double _sg_binomial_normal(_sg_rng_t *r, const double loc, const double scale) {
    return _sg_normal(r) * scale + loc;
}
SG_FN int64_t _sg_binomial_inversion(_sg_rng_t *r, const int64_t n, const double P,
                                     const double q, const double qn, const double bound,
                                     const int64_t reverse) {
    int64_t X = 0;
    double px = qn;
    double U = _sg_uniform(r);
    while (U > px) {
        X++;
        if (X > bound) { X = 0; px = qn; U = _sg_uniform(r); }
        else { U -= px; px = ((n - X + 1) * P * px) / (X * q); }
    }
    return reverse ? n - X : X;
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
SG_FN void _sg_tick_body(SG_GLOBAL int64_t *timestep, SG_GLOBAL double *t, SG_GLOBAL const double *dt,
                         const int32_t _sg_grp, const int32_t _sg_ng) {
    if (SG_GID == 0) { timestep[0] += 1; t[0] = timestep[0] * dt[0]; }
}
SG_KERNEL _sg_tick(SG_GLOBAL int64_t *timestep, SG_GLOBAL double *t, SG_GLOBAL const double *dt) {
    SG_WHOLE_GRID
    _sg_tick_body(timestep, t, dt, _sg_grp, _sg_ng);
}
/* an event clock (Brian2 >= 2.10: run_at, monitors on given times): the next
   entry of its sorted times (which end with infinity) */
SG_FN void _sg_tick_event_body(SG_GLOBAL int64_t *timestep, SG_GLOBAL double *t,
                               SG_GLOBAL const double *times,
                               const int32_t _sg_grp, const int32_t _sg_ng) {
    if (SG_GID == 0) { timestep[0] += 1; t[0] = times[timestep[0]]; }
}
SG_KERNEL _sg_tick_event(SG_GLOBAL int64_t *timestep, SG_GLOBAL double *t,
                         SG_GLOBAL const double *times) {
    SG_WHOLE_GRID
    _sg_tick_event_body(timestep, t, times, _sg_grp, _sg_ng);
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
