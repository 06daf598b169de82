"""PyCUDA adapter (the tuned production path on NVIDIA GPUs)."""
import os

import numpy as np

from .base import (Backend, BackendError, KernelBuildError, annotate_build_log,
                   cache_dir, read_cache, source_key, write_cache)

_context = None


def _import():
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        raise BackendError(
            "backend='cuda' needs PyCUDA, which is not installed (pip install "
            "'spikegpu[cuda]' on a machine with the CUDA toolkit)") from exc
    return drv


def available():
    try:
        drv = _import()
        drv.init()
        return drv.Device.count() > 0
    except Exception:
        return False


class CUDAProgram:
    def __init__(self, module, cubin=None):
        self._module = module
        self.cubin = cubin
        self._kernels = {}

    def kernel(self, name):
        if name not in self._kernels:
            self._kernels[name] = self._module.get_function(name)
        return self._kernels[name]


class CUDABackend(Backend):
    name = "cuda"

    def __init__(self, device_index=None):
        global _context
        drv = self.drv = _import()
        drv.init()
        if device_index is None:
            device_index = int(os.environ.get("SPIKEGPU_CUDA_DEVICE", 0))
        if drv.Device.count() == 0:
            raise BackendError("backend='cuda': PyCUDA found no CUDA device")
        if _context is None:
            self.cu_device = drv.Device(int(device_index))
            _context = self.cu_device.retain_primary_context()
            _context.push()
            import atexit
            atexit.register(_pop_context)
        self.cu_device = _context.get_device()
        self.ctx = _context
        self.stream = drv.Stream()
        cc = self.cu_device.compute_capability()
        self.arch = f"sm_{cc[0]}{cc[1]}"
        self.device_name = f"CUDA / {self.cu_device.name()} ({self.arch})"
        self.n_builds = 0
        self.max_work_group = 256
        #: threads of single-work-group kernels (threshold scan, monitors)
        self.group_size = 1024
        self.compute_units = self.cu_device.get_attribute(
            drv.device_attribute.MULTIPROCESSOR_COUNT)
        #: kernel arguments: 32,764 bytes from CUDA 12.1 on Volta and newer
        #: (merged launches of many objects pass many arrays), else 4,096
        if drv.get_driver_version() >= 12010 and cc[0] >= 7:
            self.max_param_bytes = 32764
        #: 'nvrtc' (in the process, libnvrtc) or 'nvcc' (a process per
        #: program, PyCUDA's compiler); SPIKEGPU_CUDA_COMPILER chooses
        from . import nvrtc
        choice = os.environ.get("SPIKEGPU_CUDA_COMPILER", "auto")
        if choice not in ("auto", "nvrtc", "nvcc"):
            raise BackendError(f"SPIKEGPU_CUDA_COMPILER={choice!r}: use nvrtc, nvcc or auto")
        if choice == "nvrtc" and not nvrtc.available():
            raise BackendError("SPIKEGPU_CUDA_COMPILER=nvrtc, but libnvrtc was not found "
                               "(set SPIKEGPU_NVRTC to its path)")
        self.compiler = choice if choice != "auto" else (
            "nvrtc" if nvrtc.available() else "nvcc")

    def memory_info(self):
        free, total = self.drv.mem_get_info()
        return free, total

    def build(self, source, what="kernels", options=()):
        compiler = self.compiler
        opts = ["-O3", "--fmad=false", "-w"] + list(options)
        key = source_key("cuda", compiler, self.device_name, self.drv.get_driver_version(),
                         " ".join(opts), source)
        path = os.path.join(cache_dir(), f"cuda-{key}.cubin")
        cubin = read_cache(path)        # None if absent or damaged
        if cubin is not None:
            try:
                return CUDAProgram(self.drv.module_from_buffer(cubin), cubin)
            except self.drv.Error:
                pass    # a cubin the driver refuses: rebuild
        self.n_builds += 1
        try:
            if compiler == "nvrtc":
                from . import nvrtc
                cubin = nvrtc.compile_cubin(source, self.arch,
                                            ["--fmad=false", "-w"] + list(options))
            else:
                from pycuda.compiler import compile as nvcc_compile
                cubin = nvcc_compile(source, options=opts, arch=self.arch,
                                     no_extern_c=True, cache_dir=False)
        except Exception as exc:  # pycuda.driver.CompileError, NVRTCError
            log = getattr(exc, "stderr", "") or str(exc)
            raise KernelBuildError(annotate_build_log(source, log, what)) from None
        write_cache(path, cubin)
        return CUDAProgram(self.drv.module_from_buffer(cubin), cubin)

    def alloc(self, nbytes):
        try:
            return self.drv.mem_alloc(max(int(nbytes), 8))
        except self.drv.MemoryError:
            free, total = self.memory_info()
            raise MemoryError(f"CUDA allocation of {nbytes} bytes failed "
                              f"({free} of {total} bytes free)") from None

    def free(self, buf):
        buf.free()

    def upload(self, buf, array, offset_bytes=0):
        array = np.ascontiguousarray(array)
        if array.nbytes:
            self.stream.synchronize()
            self.drv.memcpy_htod(int(buf) + offset_bytes, array)

    def download(self, buf, array, offset_bytes=0):
        if array.nbytes:
            self.stream.synchronize()
            self.drv.memcpy_dtoh(array, int(buf) + offset_bytes)

    def copy(self, dst, src, nbytes):
        if nbytes:
            self.drv.memcpy_dtod_async(dst, src, int(nbytes), stream=self.stream)

    def zero(self, buf, offset_bytes, nbytes):
        if nbytes:
            self.drv.memset_d8_async(int(buf) + int(offset_bytes), 0, int(nbytes),
                                     stream=self.stream)

    def launch(self, kernel, global_size, local_size, args):
        nblocks = max(1, int(global_size) // int(local_size))
        kernel(*args, block=(int(local_size), 1, 1), grid=(nblocks, 1),
               stream=self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def kernel_max_group(self, kernel):
        return kernel.get_attribute(self.drv.function_attribute.MAX_THREADS_PER_BLOCK)

    #: clock64() (profiling the fused step)
    has_cycle_counter = True

    # -- CUDA graphs (see cudagraph.py) ---------------------------------------
    supports_graphs = True

    def begin_capture(self):
        from . import cudagraph
        cudagraph.begin_capture(self.stream.handle)

    def end_capture(self):
        from . import cudagraph
        return cudagraph.end_capture(self.stream.handle)

    def launch_graph(self, graph):
        graph.launch(self.stream.handle)

    # -- the grid-wide fused step kernel (see cooperative.py) ----------------
    supports_grid_sync = True
    supports_pointer_table = True

    def address(self, buf):
        return int(buf)

    def cooperative_kernel(self, program, name):
        from .cooperative import CooperativeKernel
        return CooperativeKernel(program.cubin, name)

    def kernel_usage(self, kernel):
        return kernel.usage()

    def resident_groups(self, kernel, block):
        """Blocks of ``block`` threads one multiprocessor holds at once."""
        return kernel.max_blocks_per_sm(block)

    def launch_cooperative(self, kernel, grid, block, args):
        kernel.launch(self.stream.handle, grid, block, args)

    def dialect(self):
        return "cuda"


def _pop_context():
    global _context
    if _context is not None:
        try:
            _context.pop()
        except Exception:
            pass
        _context = None
