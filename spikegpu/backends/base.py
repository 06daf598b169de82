"""The small interface every compute backend implements.

A backend compiles one source string into a program, owns device buffers, and
launches kernels with a fixed argument list.  Nothing here knows about Brian2;
kernel logic lives in the templates, never in a backend.
"""
import hashlib
import os

import numpy as np


class BackendError(RuntimeError):
    pass


class KernelBuildError(BackendError):
    """A kernel program failed to compile; the message shows the failing lines."""


def cache_dir():
    d = os.environ.get("SPIKEGPU_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "spikegpu")
    os.makedirs(d, exist_ok=True)
    return d


#: every kernel-cache file starts with this, then the payload's length
#: (8 bytes, little endian) and its SHA-256; a file that does not match is
#: never handed to a driver (a truncated binary crashed PoCL)
CACHE_MAGIC = b"spikegpu-kernel-cache-1\n"
_HEADER = len(CACHE_MAGIC) + 8 + 32


def write_cache(path, payload):
    """Store ``payload`` (bytes) at ``path`` with its length and checksum;
    written to a temporary file first, then renamed (readers never see a
    partial file from this writer).  Errors are ignored: the cache is only
    an optimisation."""
    payload = bytes(payload)
    header = CACHE_MAGIC + len(payload).to_bytes(8, "little") + hashlib.sha256(payload).digest()
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(header + payload)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def read_cache(path):
    """The payload stored at ``path`` by `write_cache`, or None if there is
    none or it fails the check (wrong header, length or checksum: a damaged
    or foreign file, which is removed so that the rebuild replaces it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    payload = data[_HEADER:]
    ok = (len(data) >= _HEADER and data.startswith(CACHE_MAGIC)
          and int.from_bytes(data[len(CACHE_MAGIC):len(CACHE_MAGIC) + 8], "little")
          == len(payload)
          and hashlib.sha256(payload).digest() == data[len(CACHE_MAGIC) + 8:_HEADER])
    if ok:
        return payload
    try:
        os.remove(path)
    except OSError:
        pass
    return None


def source_key(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def annotate_build_log(source, log, what, limit=12):
    """Build an error message that quotes the generated lines the compiler
    complains about (both nvcc and clang print ``<file>:LINE:`` or ``(LINE)``)."""
    import re
    lines = source.split("\n")
    seen = []
    for m in re.finditer(r"(?::(\d+):\d+[: ]|\((\d+)\):)", log):
        n = int(m.group(1) or m.group(2))
        if n not in seen and 0 < n <= len(lines):
            seen.append(n)
    quoted = "\n".join(f"  line {n}: {lines[n - 1].strip()}" for n in seen[:limit])
    msg = f"Compilation of {what} failed.\n"
    if quoted:
        msg += f"Failing generated line(s):\n{quoted}\n"
    msg += f"Compiler output:\n{log.strip()[:4000]}"
    return msg


class Backend:
    """Interface.  ``name`` is 'cuda' or 'opencl'."""
    name = None
    #: short string naming the device (used in cache keys and `info`)
    device_name = None

    # -- compile ----------------------------------------------------------
    #: extra build options of programs holding a fused step kernel
    fused_build_options = ()

    def build(self, source, what="kernels", options=()):
        """Compile ``source``; return an object with ``kernel(name)``."""
        raise NotImplementedError

    # -- memory -----------------------------------------------------------
    def alloc(self, nbytes):
        raise NotImplementedError

    def free(self, buf):
        pass

    def upload(self, buf, array, offset_bytes=0):
        raise NotImplementedError

    def download(self, buf, array, offset_bytes=0):
        """Blocking copy of ``array.nbytes`` bytes from ``buf`` into ``array``."""
        raise NotImplementedError

    def copy(self, dst, src, nbytes):
        raise NotImplementedError

    def zero(self, buf, offset_bytes, nbytes):
        """Set ``nbytes`` bytes of ``buf`` to zero on the device (enqueued)."""
        raise NotImplementedError

    # -- execution --------------------------------------------------------
    def launch(self, kernel, global_size, local_size, args):
        raise NotImplementedError

    def synchronize(self):
        raise NotImplementedError

    #: bytes of kernel arguments a launch may pass (CUDA's classic limit)
    max_param_bytes = 4096

    def kernel_usage(self, kernel):
        """What a compiled kernel uses (registers, spilled bytes), where known."""
        return {}

    def kernel_max_group(self, kernel):
        """The largest work-group this compiled kernel can be launched with."""
        return self.group_size

    #: can record a sequence of launches once and replay it (CUDA graphs)
    supports_graphs = False
    #: kernels can read a cycle counter (SG_CYCLES(); profiling the fused step)
    has_cycle_counter = False
    #: cooperative launches and sg_grid_sync (the grid-wide fused step kernel)
    supports_grid_sync = False
    #: kernels may read array addresses from a buffer (CUDA; OpenCL 1.2 has
    #: no pointers in buffers): the fused step kernel then takes any number
    #: of arrays, not only what its parameter space holds
    supports_pointer_table = False

    def address(self, buf):
        """A buffer's device address (supports_pointer_table)."""
        raise NotImplementedError

    def addresses(self, bufs):
        """address() of each buffer (a backend may batch the queries)."""
        return [self.address(b) for b in bufs]

    # -- properties -------------------------------------------------------
    @property
    def supports_double(self):
        return True

    def memory_info(self):
        """(free_bytes or None, total_bytes)"""
        raise NotImplementedError

    def describe(self):
        free, total = self.memory_info()
        return dict(backend=self.name, device=self.device_name,
                    double=self.supports_double, total_memory=total,
                    free_memory=free)


def scalar_arg(value, ctype):
    """numpy scalar for a by-value kernel argument of C type ``ctype``."""
    return {"int": np.int32, "int32_t": np.int32, "long": np.int64,
            "int64_t": np.int64, "double": np.float64, "float": np.float32,
            "uint32_t": np.uint32}[ctype](value)
