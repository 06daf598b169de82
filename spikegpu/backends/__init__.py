"""Backend selection: 'cuda' (PyCUDA), 'opencl' (PyOpenCL) or 'auto'."""
from .base import Backend, BackendError, KernelBuildError

_instances = {}


def get_backend(name="auto", device_index=None):
    """Return a (cached) backend instance.  'auto' picks CUDA when PyCUDA and a
    GPU are there, else an OpenCL GPU, else any OpenCL device (PoCL)."""
    name = (name or "auto").lower()
    if name == "auto":
        from . import cuda
        name = "cuda" if cuda.available() else "opencl"
    if name not in ("cuda", "opencl"):
        raise BackendError(f"Unknown backend {name!r}: use 'cuda', 'opencl' or 'auto'")
    key = (name, device_index)
    if key not in _instances:
        if name == "cuda":
            from .cuda import CUDABackend
            _instances[key] = CUDABackend(device_index=device_index)
        else:
            from .opencl import OpenCLBackend
            _instances[key] = OpenCLBackend(device_index=device_index)
    return _instances[key]


__all__ = ["get_backend", "Backend", "BackendError", "KernelBuildError"]
