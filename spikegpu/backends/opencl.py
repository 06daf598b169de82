"""PyOpenCL adapter (NVIDIA's OpenCL platform on a GPU, PoCL on a CPU)."""
import os

import numpy as np

from .base import (Backend, BackendError, KernelBuildError, annotate_build_log,
                   cache_dir, read_cache, source_key, write_cache)


def _import():
    try:
        import pyopencl as cl
    except ImportError as exc:  # pragma: no cover - depends on install
        raise BackendError(
            "backend='opencl' needs PyOpenCL, which is not installed "
            "(pip install 'pyopencl[pocl]' gives a CPU OpenCL device)") from exc
    return cl


def list_devices():
    """[(platform_index, device_index, platform, device)] of all OpenCL devices."""
    cl = _import()
    out = []
    try:
        platforms = cl.get_platforms()
    except cl.Error:
        return out
    for pi, p in enumerate(platforms):
        try:
            devs = p.get_devices()
        except cl.Error:
            continue
        for di, d in enumerate(devs):
            out.append((pi, di, p, d))
    return out


_probe_cache = {}


def device_works(device):
    """True if the device can build a double-precision kernel.  (PoCL 3.0
    bundled with some PyOpenCL wheels cannot target newer CPUs: 'unknown
    target CPU'; Debian's pocl-opencl-icd can.)"""
    cl = _import()
    key = (device.platform.name, device.platform.version, device.name)
    if key not in _probe_cache:
        try:
            ctx = cl.Context([device])
            cl.Program(ctx, "__kernel void f(__global float *x) { x[0] = 1.0f; }"
                       ).build(cache_dir=False)
            _probe_cache[key] = True
        except Exception:
            _probe_cache[key] = False
    return _probe_cache[key]


def pick_device(device_index=None, prefer_gpu=True):
    """Choose a device: explicit index (into `list_devices()`), else the
    PYOPENCL_CTX variable ('platform:device'), else the first GPU, else the
    first device of any type."""
    cl = _import()
    devs = list_devices()
    if not devs:
        raise BackendError("No OpenCL device found (is an ICD such as PoCL "
                           "installed? pip install 'pyopencl[pocl]')")
    if device_index is not None:
        try:
            return devs[int(device_index)][3]
        except IndexError:
            raise BackendError(f"OpenCL device index {device_index} out of "
                               f"range: {len(devs)} device(s) found") from None
    ctx_env = os.environ.get("PYOPENCL_CTX")
    if ctx_env:
        parts = ctx_env.split(":")
        pi = int(parts[0]) if parts[0] else 0
        di = int(parts[1]) if len(parts) > 1 and parts[1] else 0
        for p_i, d_i, _, d in devs:
            if p_i == pi and d_i == di:
                return d
        raise BackendError(f"PYOPENCL_CTX={ctx_env!r} names no device")
    if prefer_gpu:
        for _, _, _, d in devs:
            if d.type & cl.device_type.GPU and device_works(d):
                return d
    for _, _, _, d in devs:
        if device_works(d):
            return d
    raise BackendError("No OpenCL device can build kernels: "
                       + "; ".join(f"{p.name} / {d.name}" for _, _, p, d in devs)
                       + " (on Debian/Ubuntu, 'apt-get install pocl-opencl-icd' "
                       "gives a CPU device)")


class OpenCLProgram:
    def __init__(self, program):
        self._program = program
        self._kernels = {}

    def kernel(self, name):
        if name not in self._kernels:
            self._kernels[name] = getattr(self._program, name)
        return self._kernels[name]


def nv_compute_capability(device):
    """(major, minor) of an NVIDIA device (cl_nv_device_attribute_query),
    else (0, 0)."""
    if "cl_nv_device_attribute_query" not in device.extensions:
        return (0, 0)
    try:
        return (int(device.compute_capability_major_nv),
                int(device.compute_capability_minor_nv))
    except Exception:
        return (0, 0)


class OpenCLBackend(Backend):
    name = "opencl"

    def __init__(self, device=None, device_index=None):
        cl = self.cl = _import()
        self.device = device if device is not None else pick_device(device_index)
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx)
        self.device_name = f"{self.device.platform.name.strip()} / {self.device.name.strip()}"
        self.is_cpu = bool(self.device.type & cl.device_type.CPU)
        self.n_builds = 0  # real compilations (cache misses)
        self._last_args = {}    # id(kernel) -> (kernel, the argument list last set)
        self.max_work_group = min(256, self.device.max_work_group_size)
        #: threads of single-work-group kernels (threshold scan, monitors,
        #: the fused step kernel): as many as a GPU allows
        self.group_size = (self.max_work_group if self.is_cpu
                           else min(1024, self.device.max_work_group_size))
        self.compute_units = self.device.max_compute_units
        self.max_param_bytes = self.device.max_parameter_size
        #: single-precision / and sqrt correctly rounded, as CUDA's defaults
        #: and numpy give them (OpenCL allows 2.5 ulp otherwise); double
        #: precision is always correctly rounded.  (Contraction of a*b + c
        #: into fma is switched off by the prelude's FP_CONTRACT pragma.)
        self.default_options = []
        #: SPIKEGPU_OPENCL_FUSED_OPTIONS, e.g. -cl-opt-disable: PoCL builds the
        #: fused step kernel of Brunel-Hakim 1,000 in 3.5 s instead of 50 s
        #: (it then runs ~3.5x slower; the same IEEE arithmetic): the test
        #: command's setting, where builds, not runs, take the time
        self.fused_build_options = tuple(os.environ.get("SPIKEGPU_OPENCL_FUSED_OPTIONS",
                                                        "").split())
        #: NVIDIA's OpenCL on sm_70 or later: inline PTX (prelude: the grid
        #: barrier, native float atomics); SPIKEGPU_OPENCL_PTX=0 switches it off
        self.nv_ptx = nv_compute_capability(self.device) >= (7, 0) and \
            os.environ.get("SPIKEGPU_OPENCL_PTX", "1") != "0"
        if self.nv_ptx:
            self.default_options.append("-DSG_NV_PTX")
        self.supports_pointer_table = self.nv_ptx      # see address()
        if self.device.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT:
            self.default_options.append("-cl-fp32-correctly-rounded-divide-sqrt")

    @property
    def supports_double(self):
        return bool(self.device.double_fp_config) or "cl_khr_fp64" in self.device.extensions

    def memory_info(self):
        return None, self.device.global_mem_size

    def build(self, source, what="kernels", options=()):
        cl = self.cl
        opts = list(options) + self.default_options
        key = source_key("opencl", self.device_name, self.device.driver_version,
                         " ".join(opts), source)
        path = os.path.join(cache_dir(), f"ocl-{key}.bin")
        binary = read_cache(path)       # None if absent or damaged
        if binary is not None:
            try:
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    prg = cl.Program(self.ctx, [self.device], [binary]).build(options=opts)
                return OpenCLProgram(prg)
            except Exception:
                pass  # a binary the driver refuses (another driver build): rebuild
        self.n_builds += 1
        import warnings
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prg = cl.Program(self.ctx, source).build(options=opts, cache_dir=False)
        except cl.RuntimeError as exc:
            raise KernelBuildError(annotate_build_log(source, str(exc), what)) from None
        try:
            binary = prg.get_info(cl.program_info.BINARIES)[0]
        except Exception:
            binary = None
        if binary:
            write_cache(path, binary)
        return OpenCLProgram(prg)

    def alloc(self, nbytes):
        cl = self.cl
        try:
            return cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, size=max(int(nbytes), 8))
        except cl.Error as exc:
            raise MemoryError(f"OpenCL allocation of {nbytes} bytes failed: {exc}") from None

    def free(self, buf):
        buf.release()

    def upload(self, buf, array, offset_bytes=0):
        array = np.ascontiguousarray(array)
        if array.nbytes:
            self.cl.enqueue_copy(self.queue, buf, array, dst_offset=offset_bytes,
                                 is_blocking=True)

    def download(self, buf, array, offset_bytes=0):
        if array.nbytes:
            self.cl.enqueue_copy(self.queue, array, buf, src_offset=offset_bytes,
                                 is_blocking=True)

    def copy(self, dst, src, nbytes):
        if nbytes:
            self.cl.enqueue_copy(self.queue, dst, src, byte_count=int(nbytes))

    def zero(self, buf, offset_bytes, nbytes):
        if nbytes:
            self.cl.enqueue_fill_buffer(self.queue, buf, np.uint8(0), int(offset_bytes),
                                        int(nbytes))

    def launch(self, kernel, global_size, local_size, args):
        # a prepared launch passes the same list every step: OpenCL kernels
        # keep their arguments, so set them only when the list changes
        # (a list is never changed in place once launched)
        last = self._last_args.get(id(kernel))
        if last is None or last[0] is not kernel or last[1] is not args:
            for i, a in enumerate(args):
                kernel.set_arg(i, a)
            self._last_args[id(kernel)] = (kernel, args)
        self.cl.enqueue_nd_range_kernel(self.queue, kernel, (int(global_size),),
                                        (int(local_size),))

    def synchronize(self):
        self.queue.finish()

    def kernel_max_group(self, kernel):
        return kernel.get_work_group_info(self.cl.kernel_work_group_info.WORK_GROUP_SIZE,
                                          self.device)

    # -- the grid-wide fused step kernel ----------------------------------------
    # OpenCL has no cooperative launch: a work-group per compute unit, which a
    # GPU keeps resident (a CPU device runs work-groups one after another on
    # few threads: never there).  On NVIDIA (sm_70+) the barrier is the CUDA
    # dialect's, in inline PTX; elsewhere opt-in (SPIKEGPU_OPENCL_GRID=1):
    # OpenCL 1.2's fences did not make one work-group's writes visible to
    # another's plain loads on NVIDIA's driver (measured on the H200: the
    # barrier held, but work-groups read stale spikes and state).
    @property
    def supports_grid_sync(self):
        if self.is_cpu:
            return False
        return os.environ.get("SPIKEGPU_OPENCL_GRID", "1" if self.nv_ptx else "0") == "1"

    # Too many arrays for one kernel's arguments (the microcircuit's step
    # kernel): on NVIDIA a kernel reads their addresses from a buffer, as on
    # CUDA.  OpenCL 1.2 has no buffer addresses; NVIDIA's driver keeps a
    # buffer at one address once used on its one device, which a kernel
    # reports.  Checked against CUDA, bitwise (tests/gpu).  (The attribute
    # supports_pointer_table is set in __init__.)
    def address(self, buf):
        return self.addresses([buf])[0]

    def addresses(self, bufs):
        """One launch per buffer writing its address into slot k of a
        buffer, one download at the end (not a round trip per buffer: the
        step kernel's ~800 arrays at a run's start and when a monitor grows)."""
        cl = self.cl
        if getattr(self, "_addr_kernel", None) is None:
            prg = cl.Program(self.ctx, "__kernel void sg_address(__global char *p, "
                             "__global ulong *out, const uint k) { out[k] = (ulong)p; }"
                             ).build()
            self._addr_kernel = prg.sg_address
        out = np.zeros(max(1, len(bufs)), dtype=np.uint64)
        dst = self.alloc(out.nbytes)
        try:
            for k, buf in enumerate(bufs):
                self._addr_kernel.set_args(buf, dst, np.uint32(k))
                cl.enqueue_nd_range_kernel(self.queue, self._addr_kernel, (1,), (1,))
            self.download(dst, out)
        finally:
            self.free(dst)
        return [int(x) for x in out[:len(bufs)]]

    def cooperative_kernel(self, program, name):
        return program.kernel(name)

    def resident_groups(self, kernel, block):
        return 1

    def launch_cooperative(self, kernel, grid, block, args):
        self.launch(kernel, grid * block, block, args)

    def dialect(self):
        return "opencl"
