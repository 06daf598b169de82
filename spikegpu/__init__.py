"""spikegpu: a GPU backend for Brian2 (CUDA through PyCUDA, OpenCL through
PyOpenCL) from one template layer.

    from brian2 import *; import spikegpu
    set_device('gpu_standalone', backend='opencl')   # or 'cuda', 'auto'
"""
__version__ = "0.1.0"

from . import functions  # noqa: F401  (registers function implementations)
from .device import GPUDevice, gpu_standalone_device  # noqa: F401

__all__ = ["GPUDevice", "gpu_standalone_device"]
