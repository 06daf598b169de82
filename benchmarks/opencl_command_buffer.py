#!/usr/bin/env python3
"""Does `cl_khr_command_buffer` make an OpenCL step cheaper?  PyOpenCL has no
API for the extension, so this calls it through ctypes on each platform
that offers it: a step of 5 small kernels (1,000 work-items, like LIF 1,000's
kernels), replayed from a command buffer holding 100 recorded steps
(simultaneous use: the next replay is enqueued before the last finishes)
versus the same launches enqueued one by one without waiting.  Prints
microseconds per step of both, in alternation, and writes JSON.

    python benchmarks/opencl_command_buffer.py [--steps 2000] [--json out.json]
"""
import argparse
import ctypes
import json
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CL_COMMAND_BUFFER_FLAGS_KHR = 0x1293
CL_COMMAND_BUFFER_SIMULTANEOUS_USE_KHR = 1
KERNELS_PER_STEP = 5
STEPS_PER_BUFFER = 100


class CommandBufferAPI:
    """The extension's entry points for one platform (ctypes)."""

    def __init__(self, platform):
        lib = ctypes.CDLL("libOpenCL.so.1")
        get = lib.clGetExtensionFunctionAddressForPlatform
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
        vp, u, sz, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int32

        def fn(name, res, *args):
            p = get(platform.int_ptr, name.encode())
            if not p:
                raise RuntimeError(f"{platform.name}: no {name}")
            return ctypes.CFUNCTYPE(res, *args)(p)

        self.create = fn("clCreateCommandBufferKHR", vp, u, ctypes.POINTER(vp), vp,
                         ctypes.POINTER(i32))
        self.ndrange = fn("clCommandNDRangeKernelKHR", i32, vp, vp, vp, vp, u,
                          ctypes.POINTER(sz), ctypes.POINTER(sz), ctypes.POINTER(sz),
                          u, vp, vp, vp)
        self.finalize = fn("clFinalizeCommandBufferKHR", i32, vp)
        self.enqueue = fn("clEnqueueCommandBufferKHR", i32, u, ctypes.POINTER(vp), vp,
                          u, vp, vp)
        self.release = fn("clReleaseCommandBufferKHR", i32, vp)


def _check(code, what):
    if code != 0:
        raise RuntimeError(f"{what} failed with OpenCL error {code}")


def measure(device, steps):
    import pyopencl as cl
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx)
    program = cl.Program(ctx, "__kernel void k(__global float *a, const int n) {"
                         " const int i = get_global_id(0); if (i < n) a[i] = 0.5f*a[i] + 1.0f; }"
                         ).build()
    buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, 4 * 1024)
    kernels = [cl.Kernel(program, "k") for _ in range(KERNELS_PER_STEP)]
    for k in kernels:
        k.set_args(buf, np.int32(1000))
    api = CommandBufferAPI(device.platform)
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    queues = (vp * 1)(queue.int_ptr)
    props = (ctypes.c_uint64 * 3)(CL_COMMAND_BUFFER_FLAGS_KHR,
                                  CL_COMMAND_BUFFER_SIMULTANEOUS_USE_KHR, 0)
    err = ctypes.c_int32(0)
    cb = api.create(1, queues, ctypes.cast(props, vp), ctypes.byref(err))
    _check(err.value, "clCreateCommandBufferKHR")
    gs, ls = (sz * 1)(1024), (sz * 1)(256)
    for _ in range(STEPS_PER_BUFFER):
        for k in kernels:
            _check(api.ndrange(cb, None, None, k.int_ptr, 1, None, gs, ls, 0, None, None,
                               None), "clCommandNDRangeKernelKHR")
    _check(api.finalize(cb), "clFinalizeCommandBufferKHR")

    def plain():
        for _ in range(steps):
            for k in kernels:
                cl.enqueue_nd_range_kernel(queue, k, (1024,), (256,))

    def replay():
        for _ in range(steps // STEPS_PER_BUFFER):
            _check(api.enqueue(0, None, cb, 0, None, None), "clEnqueueCommandBufferKHR")

    out = {"plain": [], "command buffer": []}
    plain(), replay(), queue.finish()           # warm up
    for _ in range(3):
        for name, fn in (("plain", plain), ("command buffer", replay)):
            t0 = time.perf_counter()
            fn()
            queue.finish()
            out[name].append(1e6 * (time.perf_counter() - t0) / steps)
    api.release(cb)
    return out


def main(argv=None):
    import pyopencl as cl
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "opencl_command_buffer.json"))
    args = ap.parse_args(argv)
    rows = []
    for platform in cl.get_platforms():
        for device in platform.get_devices():
            name = f"{platform.name} / {device.name}"
            if "cl_khr_command_buffer" not in device.extensions.split():
                rows.append(dict(device=name, offered=False))
                continue
            try:
                rows.append(dict(device=name, offered=True, us_per_step=measure(device, args.steps)))
            except Exception as exc:    # a platform's own failure is a result too
                rows.append(dict(device=name, offered=True, error=str(exc)))
    print(f"\n{'device':60s} {'plain us/step':>22s} {'command buffer us/step':>24s}")
    for r in rows:
        if "us_per_step" in r:
            p, c = r["us_per_step"]["plain"], r["us_per_step"]["command buffer"]
            print(f"{r['device'][:60]:60s} {', '.join(f'{x:.1f}' for x in p):>22s} "
                  f"{', '.join(f'{x:.1f}' for x in c):>24s}")
        else:
            print(f"{r['device'][:60]:60s} {r.get('error', 'cl_khr_command_buffer not offered')}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(kernels_per_step=KERNELS_PER_STEP, steps_per_buffer=STEPS_PER_BUFFER,
                       rows=rows), f, indent=1)
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
