"""Cooperative launches through the CUDA driver API (PyCUDA has none): a
kernel whose blocks wait for each other (the grid-wide barrier of the fused
step kernel) must have all of them resident at once, which
cuLaunchCooperativeKernel guarantees (or refuses).  The kernel is loaded
from the program's cubin into a module of its own."""
import ctypes

import numpy as np

from .cudagraph import _check, _cuda


class CooperativeKernel:
    def __init__(self, cubin, name):
        lib = _cuda()
        self.module = ctypes.c_void_p()
        _check(lib.cuModuleLoadData(ctypes.byref(self.module), ctypes.c_char_p(cubin)),
               "cuModuleLoadData")
        self.func = ctypes.c_void_p()
        _check(lib.cuModuleGetFunction(ctypes.byref(self.func), self.module, name.encode()),
               "cuModuleGetFunction")

    def max_blocks_per_sm(self, block):
        n = ctypes.c_int()
        _check(_cuda().cuOccupancyMaxActiveBlocksPerMultiprocessor(
            ctypes.byref(n), self.func, ctypes.c_int(block), ctypes.c_size_t(0)),
            "cuOccupancyMaxActiveBlocksPerMultiprocessor")
        return n.value

    def usage(self):
        """Registers per thread and local (spilled) bytes per thread."""
        out = {}
        for key, attr in (("registers", 4), ("local_bytes", 3)):
            n = ctypes.c_int()
            _check(_cuda().cuFuncGetAttribute(ctypes.byref(n), ctypes.c_int(attr), self.func),
                   "cuFuncGetAttribute")
            out[key] = n.value
        return out

    @staticmethod
    def _value(arg):
        if isinstance(arg, np.generic):
            return {np.dtype(np.int64): ctypes.c_int64, np.dtype(np.uint64): ctypes.c_uint64,
                    np.dtype(np.int32): ctypes.c_int32, np.dtype(np.uint32): ctypes.c_uint32,
                    np.dtype(np.float64): ctypes.c_double,
                    np.dtype(np.float32): ctypes.c_float}[arg.dtype](arg.item())
        return ctypes.c_uint64(int(arg))        # a device allocation

    def launch(self, stream_handle, grid, block, args):
        values = [self._value(a) for a in args]
        params = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        _check(_cuda().cuLaunchCooperativeKernel(
            self.func, ctypes.c_uint(grid), ctypes.c_uint(1), ctypes.c_uint(1),
            ctypes.c_uint(block), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.c_uint(0),
            ctypes.c_void_p(stream_handle), params), "cuLaunchCooperativeKernel")

    def __del__(self):
        try:
            _cuda().cuModuleUnload(self.module)
        except Exception:
            pass
