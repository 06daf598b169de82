"""CUDA graphs through the driver API (PyCUDA 2026.1 has no graph API).

Launches issued on the backend's PyCUDA stream between `begin` and `end` are
captured into a graph; replaying it costs ~1 us per kernel instead of a
Python launch (~9 us)."""
import ctypes
import ctypes.util

_lib = None


def _cuda():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("cuda") or "libcuda.so.1"
        _lib = ctypes.CDLL(name)
    return _lib


def _check(rc, what):
    if rc != 0:
        raise RuntimeError(f"CUDA driver call {what} failed with error {rc}")


CAPTURE_MODE_RELAXED = 2


class Graph:
    """An instantiated graph of captured launches."""

    def __init__(self, graph, exec_):
        self._graph, self._exec = graph, exec_

    def launch(self, stream_handle):
        _check(_cuda().cuGraphLaunch(self._exec, ctypes.c_void_p(stream_handle)),
               "cuGraphLaunch")

    def __del__(self):
        try:
            lib = _cuda()
            lib.cuGraphExecDestroy(self._exec)
            lib.cuGraphDestroy(self._graph)
        except Exception:
            pass


def begin_capture(stream_handle):
    _check(_cuda().cuStreamBeginCapture_v2(ctypes.c_void_p(stream_handle),
                                           CAPTURE_MODE_RELAXED),
           "cuStreamBeginCapture")


def end_capture(stream_handle):
    lib = _cuda()
    graph = ctypes.c_void_p()
    _check(lib.cuStreamEndCapture(ctypes.c_void_p(stream_handle), ctypes.byref(graph)),
           "cuStreamEndCapture")
    exec_ = ctypes.c_void_p()
    _check(lib.cuGraphInstantiateWithFlags(ctypes.byref(exec_), graph,
                                           ctypes.c_ulonglong(0)),
           "cuGraphInstantiate")
    return Graph(graph, exec_)
