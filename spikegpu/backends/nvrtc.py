"""NVRTC: CUDA C++ compiled in the process (libnvrtc through ctypes), to a
cubin that PyCUDA loads (``module_from_buffer``), instead of an nvcc
process per program.  The prelude includes no system header under NVRTC
(``__CUDACC_RTC__``): it declares the integer types itself."""
import ctypes
import ctypes.util
import glob
import os

_lib = None


class NVRTCError(RuntimeError):
    def __init__(self, log):
        super().__init__(log)
        self.stderr = log


def _candidates():
    env = os.environ.get("SPIKEGPU_NVRTC")
    if env:
        yield env
    name = ctypes.util.find_library("nvrtc")
    if name:
        yield name
    roots = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    for root in filter(None, roots):
        yield from sorted(glob.glob(os.path.join(root, "lib64", "libnvrtc.so*")), reverse=True)
        yield from sorted(glob.glob(os.path.join(root, "lib", "libnvrtc.so*")), reverse=True)
    # the pip wheels nvidia-cuda-nvrtc(-cu12)
    import sys
    for path in sys.path:
        yield from sorted(glob.glob(os.path.join(path, "nvidia", "*", "lib", "libnvrtc.so*")),
                          reverse=True)
    yield from ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12")


def library():
    """The loaded libnvrtc, or None."""
    global _lib
    if _lib is None:
        for name in _candidates():
            if "builtins" in os.path.basename(name):
                continue
            try:
                _lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            _lib = False
    return _lib or None


def available():
    return library() is not None


def version():
    lib = library()
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def compile_cubin(source, arch, options=()):
    """The cubin of ``source`` for ``arch`` ('sm_90'); NVRTCError with the
    log if it does not compile."""
    lib = library()
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"spikegpu.cu", 0,
                                None, None)
    if rc != 0:
        raise NVRTCError(f"nvrtcCreateProgram failed ({rc})")
    try:
        opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in options]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        if rc != 0:
            raise NVRTCError(log.value.decode(errors="replace"))
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        cubin = ctypes.create_string_buffer(size.value)
        rc = lib.nvrtcGetCUBIN(prog, cubin)
        if rc != 0:
            raise NVRTCError(f"nvrtcGetCUBIN failed ({rc}): is {arch} a real architecture?")
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
