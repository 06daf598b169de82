"""The ``gpu_standalone`` device: Brian2's device protocol.

State lives in device memory (`arrays.DeviceArray`); Brian2's front end
(equations, code generation, objects) is used unchanged.  Operations are
queued and executed at *flush points* (a value the queue changes is read, a
run starts): all code objects created since the last flush are compiled
together (`programs.py`), so a script pays few compilations (or none:
programs are cached on disk).  The parts live in modules of their own:
code objects (`codegen.py`), compilation (`programs.py`), synapse creation
(`connect.py`), the random state (`randomstate.py`), store/restore
(`storerestore.py`) and the run (`runloop.py`).
"""
import os
import weakref

import numpy as np
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core.clocks import Clock
from brian2.core.names import find_name
from brian2.core.variables import Constant, DynamicArrayVariable
from brian2.devices.device import Device, all_devices
from brian2.units.fundamentalunits import Quantity, fail_for_dimension_mismatch
from brian2.utils.logger import get_logger

from . import backends
from .arrays import DeviceArray
from .codeobject import (CONNECT_TEMPLATES, CUDACodeObject, OpenCLCodeObject, launch_size,
                         n_elements)
from .programs import Programs
from .randomstate import RandomState
from .rng_reference import NORMAL_METHODS

logger = get_logger("spikegpu.device")

#: templates evaluated on the host with numpy (read-only access by string)
HOST_TEMPLATES = {"group_variable_get", "group_variable_get_conditional",
                  "group_get_indices"}


class GPUDevice(Device):
    def __init__(self):
        super().__init__()
        self.backend_name = "auto"
        self.device_index = None
        self.build_options = {}
        self.build_on_run = True
        self._backend = None
        #: replay the step loop as CUDA graphs where possible (off: debugging)
        self.use_graphs = os.environ.get("SPIKEGPU_GRAPHS", "1") != "0"
        #: time steps captured in one graph (or run by one fused step kernel)
        self.graph_block_steps = 1000
        #: run whole steps in one kernel (stepkernel.py): 'auto' (small
        #: networks), True (whenever possible) or False
        self.fuse = {"0": False, "1": True, "grid": "grid"}.get(
            os.environ.get("SPIKEGPU_FUSE", ""), "auto")
        self.fuse_max_neurons = 4096
        self.fuse_max_synapses = 2 ** 21
        #: 'auto' fuses larger networks over the whole device (CUDA)
        self.fuse_grid_auto = True
        #: blocks per multiprocessor of the grid-wide fused kernel (at most)
        self.grid_blocks_per_cu = int(os.environ.get("SPIKEGPU_GRID_BLOCKS_PER_CU", "2"))
        #: the grid form sizes queues' deliveries by their bundles of the
        #: step (stepkernel._mark_dynamic): 'units' (those mapped a
        #: work-group per bundle get work-groups, the others' bundles form
        #: one list, a unit of grid_unit_width threads per bundle; 'auto'
        #: width: about the mean bundle), 'auto' (only the former, where a
        #: launch group has at most stepkernel.DYNAMIC_AUTO_MAX of them), '1'
        #: (all by work-groups), '0' (none); each work-group taking
        #: grid_run_passes passes of its mapping
        self.grid_dynamic_runs = os.environ.get("SPIKEGPU_GRID_DYNAMIC_RUNS", "units")
        self.grid_run_passes = int(os.environ.get("SPIKEGPU_GRID_RUN_PASSES", "1"))
        self.grid_unit_width = os.environ.get("SPIKEGPU_GRID_UNIT_WIDTH", "auto")
        #: blocks of the grid form a multiprocessor must hold (CUDA's
        #: __launch_bounds__: fewer registers a thread) and gets: 'auto'
        #: (stepkernel.MIN_BLOCKS_LARGE for large steps, else 1) or a number
        self.grid_min_blocks = os.environ.get("SPIKEGPU_GRID_MIN_BLOCKS", "auto")
        #: the grid form compacts a large group's threshold events with a
        #: look-back in one group instead of a second group for the merge
        #: (stepkernel._lookback_thresholds)
        self.grid_threshold_lookback = os.environ.get("SPIKEGPU_GRID_LOOKBACK", "1") == "1"
        #: a spike queue's entries position-major (entry p of slot s at p * Q
        #: + s: a step's few entries of all slots share a few pages) instead
        #: of slot-major (s * capacity + p: a page per slot; synqueue.py)
        self.queue_interleave = os.environ.get("SPIKEGPU_QUEUE_INTERLEAVE", "1") == "1"
        #: how randn() draws (templates/rng.c): 'box-muller' (one Philox
        #: block, no branches), 'ziggurat' (mostly a table lookup and a
        #: multiply, rarely a retry) or 'auto': the ziggurat on a CPU device
        #: (PoCL: Brunel-Hakim 1,000 ~2x faster), Box-Muller on a GPU, where a
        #: warp waits for its slowest lane's retries (measured slower, README)
        self.normal_method = os.environ.get("SPIKEGPU_NORMALS", "auto")
        #: work-items of the one-work-group fused step kernel ('auto': the
        #: backend's group size on a GPU, stepkernel.CPU_FUSED_LOCAL_SIZE on
        #: a CPU device)
        self.fused_local_size = os.environ.get("SPIKEGPU_FUSED_LOCAL_SIZE", "auto")
        #: threads per block of the grid-wide fused kernel (at most the
        #: backend's max_work_group)
        self.grid_local_size = int(os.environ.get("SPIKEGPU_GRID_LOCAL_SIZE", "256"))
        #: work-groups per compute unit shared by a merged launch's members
        #: that follow the step's events (merged.assign_groups)
        self.event_groups_per_cu = int(os.environ.get("SPIKEGPU_EVENT_GROUPS_PER_CU", "8"))
        #: pathways of additive code sum ahead into a dendritic buffer
        #: (synqueue.py); off by default: slower on the H200's microcircuit
        #: than the bundle queue (README, "The cortical microcircuit")
        self.dendritic = os.environ.get("SPIKEGPU_DENDRITIC", "0") == "1"
        self._init_state()

    def normals(self):
        """The normal method this device's kernels are built with."""
        m = self.normal_method
        if m == "auto":
            return "ziggurat" if getattr(self.backend, "is_cpu", False) else "box-muller"
        if m not in NORMAL_METHODS:
            raise ValueError(f"normal_method (SPIKEGPU_NORMALS) must be 'auto' or one of "
                             f"{', '.join(NORMAL_METHODS)}, not {m!r}")
        return m

    def _init_state(self):
        self.arrays = weakref.WeakKeyDictionary()   # Variable -> DeviceArray
        self.pending_compile = []                   # code objects to compile
        self.queue = []                             # callables, in order
        self.queue_touched = set()                  # DeviceArray ids the queue uses
        self.compiler = Programs(self)
        self._compiled = weakref.WeakValueDictionary()  # name -> code object
        self.random = RandomState(self)
        self.stats = {"programs_built": 0, "kernel_launches": 0}
        self._namespace_arrays = []                 # function namespaces (TimedArray)
        self.last_run_info = {}
        self.last_plan = []                         # the last run's step plan (stepplan.py)
        self.last_step_kernel = None                # its fused kernel (stepkernel.py), if any

    # ------------------------------------------------------------------
    # device selection
    # ------------------------------------------------------------------
    def activate(self, build_on_run=True, **kwargs):
        backend = kwargs.pop("backend", None)
        device_index = kwargs.pop("device", None)
        if "graphs" in kwargs:
            self.use_graphs = bool(kwargs.pop("graphs"))
        if "fuse" in kwargs:
            fuse = kwargs.pop("fuse")
            if fuse not in ("auto", True, False, "grid"):
                raise ValueError("gpu_standalone: fuse must be 'auto', True, 'grid' or False")
            self.fuse = fuse
        if backend is not None:
            if backend not in ("auto", "cuda", "opencl"):
                raise ValueError(f"gpu_standalone: unknown backend {backend!r}; "
                                 "use 'auto', 'cuda' or 'opencl'")
            if self._backend is not None and (backend, device_index) != (
                    self.backend_name, self.device_index):
                self.reinit()
                self._backend = None
            self.backend_name = backend
            self.device_index = device_index
        super().activate(build_on_run=build_on_run, **kwargs)

    @property
    def backend(self):
        if self._backend is None:
            be = backends.get_backend(self.backend_name, self.device_index)
            # clocks (t, dt) are float64 in Brian2 even in float32 mode
            if not be.supports_double:
                raise backends.BackendError(
                    f"gpu_standalone: device '{be.device_name}' has no double "
                    "precision support, which Brian2's clocks (t, dt) and the "
                    "float64 default need")
            self._backend = be
            logger.info(f"gpu_standalone uses {be.device_name}")
        return self._backend

    def code_object_class(self, codeobj_class=None, fallback_pref=None):
        if codeobj_class is not None and issubclass(codeobj_class, NumpyCodeObject):
            return codeobj_class
        be = self.backend_name
        if be == "auto":
            be = self.backend.name
        return CUDACodeObject if be == "cuda" else OpenCLCodeObject

    # ------------------------------------------------------------------
    # arrays
    # ------------------------------------------------------------------
    def get_array_name(self, var, access_data=True):
        owner_name = getattr(var.owner, "name", "temporary")
        if isinstance(var, DynamicArrayVariable) and not access_data:
            return f"_dynamic_array_{owner_name}_{var.name}"
        return f"_array_{owner_name}_{var.name}"

    def add_array(self, var):
        shape = (var.size,) if getattr(var, "ndim", 1) == 1 else tuple(var.size)
        self.arrays[var] = DeviceArray(self.get_array_name(var), var.dtype, shape,
                                       dynamic=isinstance(var, DynamicArrayVariable))

    def arr(self, var):
        return self.arrays[var]

    def _host_op(self, var):
        """Before the host touches ``var``: run queued work that uses it."""
        a = self.arrays[var]
        if id(a) in self.queue_touched:
            self.flush()
        return a

    def init_with_zeros(self, var, dtype):
        a = self._host_op(var)
        a.host = np.zeros(a.shape, dtype=a.dtype)
        a.mark_host_written()

    def init_with_arange(self, var, start, dtype):
        a = self._host_op(var)
        a.host = np.arange(start, start + a.size, dtype=a.dtype).reshape(a.shape)
        a.mark_host_written()
        a.arange = int(start)

    def fill_with_array(self, var, arr):
        a = self._host_op(var)
        arr = np.asarray(arr)
        if arr.size == a.size:
            a.host = np.array(arr, dtype=a.dtype).reshape(a.shape)
        else:
            a.ensure_host()
            host = np.array(a.host, dtype=a.dtype)
            host[...] = arr
            a.host = host
        a.mark_host_written()

    def resize(self, var, new_size):
        a = self._host_op(var)
        a.set_shape((int(new_size),), self.backend)

    def resize_along_first(self, var, new_size):
        a = self._host_op(var)
        if isinstance(new_size, tuple):     # the full shape (restore())
            a.set_shape(tuple(int(n) for n in new_size), self.backend)
        else:
            a.set_shape((int(new_size),) + tuple(a.shape[1:]), self.backend)

    def get_value(self, var, access_data=True):
        # only queued work that uses ``var`` runs (a clock's dt, read by
        # Brian2 while objects are created, must not compile and run
        # everything queued so far: that would be a program per object)
        a = self._host_op(var)
        a.ensure_host()
        view = a.host.view()
        view.flags.writeable = False
        return view

    def set_value(self, var, value):
        self.fill_with_array(var, value)

    def spike_queue(self, source_start, source_end):
        # propagation is done by kernels (see synapses templates); this holds
        # their structure and the spikes in flight for store()/restore()
        from .synqueue import PathwayQueue
        return PathwayQueue(self)

    # -- VariableView hooks --------------------------------------------------
    def variableview_set_with_index_array(self, variableview, item, value, check_units):
        variable = variableview.variable
        if check_units:
            fail_for_dimension_mismatch(variable.dim, value,
                                        "Incorrect unit for setting variable %s"
                                        % variableview.name)
        if variable.scalar:
            if not (isinstance(item, slice) and item == slice(None)):
                raise IndexError("Illegal index for variable %s, it is a "
                                 "scalar variable." % variableview.name)
            indices = 0
        elif (isinstance(item, slice) and item == slice(None)
              and variableview.index_var == "_idx"):
            indices = slice(None)
        else:
            indices = variableview.indexing(item, variableview.index_var)
        value = np.asarray(Quantity(value)) if isinstance(value, Quantity) else np.asarray(value)
        a = self._host_op(variable)
        a.ensure_host()
        host = np.array(a.host, dtype=a.dtype)
        if not isinstance(indices, slice) and np.ndim(indices) and value.ndim and \
                value.shape != np.shape(indices) and value.size != 1:
            raise ValueError(f"Provided values do not match the size of the "
                             f"indices, {value.size} != {np.size(indices)}.")
        host[indices] = value
        a.host = host
        a.mark_host_written()

    # ------------------------------------------------------------------
    # code objects
    # ------------------------------------------------------------------
    def code_object(self, owner, name, abstract_code, variables, template_name,
                    variable_indices, codeobj_class=None, template_kwds=None,
                    override_conditional_write=None, compiler_kwds=None):
        if template_name in HOST_TEMPLATES:
            # evaluated on the host with numpy (reading subexpressions):
            # Brian2 adds a function's numpy implementation (from its Python
            # function) only when the code object class it checked is numpy's;
            # it checked ours, so add it here, as Brian2 would have
            from .functions import ensure_numpy_implementations
            ensure_numpy_implementations(variables)
            return Device.code_object(self, owner, name, abstract_code, variables,
                                      template_name, variable_indices,
                                      codeobj_class=NumpyCodeObject,
                                      template_kwds=template_kwds,
                                      override_conditional_write=override_conditional_write,
                                      compiler_kwds=compiler_kwds)
        from .codegen import create_code_object
        codeobj = create_code_object(
            self, owner, find_name(name), abstract_code, variables, template_name,
            variable_indices, self.code_object_class(codeobj_class),
            template_kwds=template_kwds,
            override_conditional_write=override_conditional_write,
            compiler_kwds=compiler_kwds)
        # user functions with only a C++ implementation: compiled as they are
        # (on CUDA their functions become device functions)
        from .functions import cpp_fallbacks, cuda_device_functions
        codeobj.cpp_functions = cpp_fallbacks(variables, type(codeobj), owner)
        if codeobj.cpp_functions and issubclass(type(codeobj), CUDACodeObject):
            codeobj.support_code = cuda_device_functions(codeobj.support_code)
            codeobj.cpp_functions = {name: cuda_device_functions(code) for name, code
                                     in codeobj.cpp_functions.items()}
        self.pending_compile.append(codeobj)
        return codeobj

    # ------------------------------------------------------------------
    # compilation and the operation queue
    # ------------------------------------------------------------------
    def _compile_pending(self):
        cos, self.pending_compile = self.pending_compile, []
        try:
            self.compiler.compile(cos)
        except backends.KernelBuildError as exc:
            raise self._cpp_function_error(cos, exc) from None
        for co in cos:
            self._compiled[co.name] = co

    def _cpp_function_error(self, codeobjs, exc):
        """A build error of code objects that use C++ implementations of
        functions (they have no spikegpu one): the functions whose code does
        not build on its own are named, with the compiler's message; ``exc``
        itself if they all build."""
        funcs = {}
        for co in codeobjs:
            funcs.update(getattr(co, "cpp_functions", {}))
        bad = []
        for name, code in sorted(funcs.items()):
            try:
                self.compiler.program([], f"the C++ implementation of function '{name}'",
                                      [code])
            except backends.KernelBuildError as one:
                bad.append((name, one))
        if not bad:
            return exc
        dialect = "CUDA C++" if self.backend.name == "cuda" else "OpenCL C"
        lines = [f"Function '{name}' has no spikegpu implementation; its C++ "
                 f"implementation ('cpp') was compiled as it is, as {dialect}, and "
                 f"did not build.  Give it an implementation for spikegpu "
                 f"(@implementation('spikegpu', ...); see the README, 'User-defined "
                 f"functions').\n{one}" for name, one in bad]
        return backends.KernelBuildError("\n".join(lines))

    def program(self, codeobjs, what, extra=(), options=()):
        return self.compiler.program(codeobjs, what, extra, options)

    def tick_kernel(self, clock=None):
        """The kernel that advances ``clock`` (a Clock or an event clock)."""
        from .clocks import is_event_clock
        if clock is not None and is_event_clock(clock):
            return self.compiler.tick_event_kernel()
        return self.compiler.tick_kernel()

    def _all_codeobjects(self):
        """The compiled code objects still alive (for tools and profiling)."""
        return list(self._compiled.values())

    def enqueue(self, fn, touched=()):
        self.queue.append(fn)
        self.queue_touched.update(touched)

    def enqueue_codeobject(self, codeobj, block):
        # what the operation may change: not the clocks (only runs change
        # them; Brian2 reads dt while it creates objects)
        touched = {id(self.arrays[v]) for _, v in codeobj.params
                   if v in self.arrays and not isinstance(v.owner, Clock)}
        if codeobj.template_name in CONNECT_TEMPLATES:
            # creation resizes every per-synapse variable of the owner and
            # sets its counts (N, N_incoming, ...)
            owner = codeobj.owner
            touched |= {id(self.arrays[v])
                        for v in list(owner.variables.values()) + list(owner._registered_variables)
                        if v in self.arrays}
            self.enqueue(lambda: self.connect(codeobj), touched)
        else:
            self.enqueue(lambda: self.launch_codeobject(codeobj, block, oneoff=True), touched)

    def _scalar_value(self, var):
        if isinstance(var, Constant):
            return var.value
        # queued work may change it (e.g. the N of a Synapses whose
        # connect() is still queued, read to size another connect's scratch)
        a = self._host_op(var)
        a.ensure_host()
        return a.host.ravel()[0].item()

    def require_memory(self, name, need, what):
        """Raise a MemoryError naming object ``name`` and ``what`` if ``need``
        bytes are more than the device has free (before allocating them)."""
        free, total = self.backend.memory_info()
        avail = free if free is not None else total
        if need > avail:
            raise MemoryError(
                f"{name}: {what}: about {need} bytes of device memory needed, but only "
                f"{avail} bytes are {'free' if free is not None else 'on the device'} "
                f"on {self.backend.device_name}")

    def connect(self, codeobj):
        from .connect import connect
        connect(self, codeobj)

    def flush(self):
        """Compile what is pending and execute the queued operations."""
        if not self.queue and not self.pending_compile:
            return
        self._compile_pending()
        queue, self.queue = self.queue, []
        self.queue_touched = set()
        for fn in queue:
            fn()

    # -- random numbers (randomstate.py) -------------------------------------
    def _rng_buffers(self):
        return self.random.buffers()

    def seed(self, seed=None):
        self.random.seed(seed)

    def get_random_state(self):
        self.flush()
        return self.random.get_state()

    def set_random_state(self, state):
        self.flush()
        self.random.set_state(state)

    # -- kernel launch -------------------------------------------------------
    def kernel_args(self, codeobj, step_buf, capacity=0):
        be = self.backend
        seed_buf, _ = self.random.buffers()
        args = []
        for pname, var in codeobj.params:
            a = self.arrays[var]
            a.ensure_device(be)
            args.append(a.buf)
        args += codeobj.fields.values()
        args += [seed_buf, step_buf, np.uint32(codeobj.stream_id), np.int64(capacity)]
        return args

    def launch_size(self, codeobj, policy):
        return launch_size(self, codeobj, policy)

    def _n_elements(self, codeobj):
        return n_elements(self, codeobj)

    def launch_codeobject(self, codeobj, block, oneoff=False, step_buf=None):
        if oneoff and codeobj.template_name in ("statemonitor", "ratemonitor"):
            # StateMonitor.record_single_timestep(): one row more, outside a
            # run (the run reserved exactly its own rows)
            from .monitors import one_row
            with one_row(self, codeobj):
                return self._launch(codeobj, block, oneoff)
        return self._launch(codeobj, block, oneoff, step_buf)

    def _launch(self, codeobj, block, oneoff=False, step_buf=None):
        be = self.backend
        if oneoff:
            step_buf = self.random.next_oneoff()
        args = self.kernel_args(codeobj, step_buf, codeobj.capacity)
        for kernel, policy in codeobj.kernels.get(block, []):
            gs, ls = self.launch_size(codeobj, policy)
            be.launch(kernel, gs, ls, args)
            self.stats["kernel_launches"] += 1
        # conservatively: every array a kernel can see may have changed
        for pname, var in codeobj.params:
            self.arrays[var].mark_device_written()

    # ------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------
    def network_run(self, net, duration, report=None, report_period=10,
                    namespace=None, profile=None, level=0, **kwds):
        from .runloop import run_network
        run_network(self, net, duration, report=report, report_period=report_period,
                    namespace=namespace, profile=profile, level=level + 1)

    def build(self, direct_call=True, **kwds):
        """Accepted for scripts written for cpp_standalone/cuda_standalone:
        gpu_standalone runs each ``run()`` at once, so this only finishes
        pending work."""
        self.flush()

    def network_store(self, net, name="default", filename=None):
        from .storerestore import network_store
        network_store(self, net, name=name, filename=filename)

    def network_restore(self, net, name="default", filename=None,
                        restore_random_state=False):
        from .storerestore import network_restore
        network_restore(self, net, name=name, filename=filename,
                        restore_random_state=restore_random_state)

    def reinit(self):
        build_on_run, build_options = self.build_on_run, self.build_options
        for a in list(self.arrays.values()):
            a.free()
        self.random.free()
        self._init_state()
        super().__init__()
        self.build_on_run, self.build_options = build_on_run, build_options

    def delete(self, data=True, code=True, directory=True, force=False):
        pass

    def synchronize(self):
        self.flush()
        if self._backend is not None:
            self._backend.synchronize()


gpu_standalone_device = GPUDevice()
all_devices["gpu_standalone"] = gpu_standalone_device
