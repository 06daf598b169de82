"""The ``gpu_standalone`` device.

State lives in device memory (`arrays.DeviceArray`); Brian2's front end
(equations, code generation, objects) is used unchanged.  Operations are
queued and executed at *flush points* (a value is read, a run starts): all
code objects created since the last flush are compiled together as one
program, so a script pays one compilation (or none: programs are cached on
disk) rather than one per object.  `runloop.py` drives the time steps.
"""
import os
import weakref

import numpy as np
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core.names import find_name
from brian2.core.preferences import prefs
from brian2.core.variables import ArrayVariable, Constant, DynamicArrayVariable
from brian2.devices.device import Device, all_devices
from brian2.units.fundamentalunits import Quantity, fail_for_dimension_mismatch
from brian2.utils.logger import get_logger

from . import backends
from .arrays import DeviceArray
from .codeobject import (CONNECT_TEMPLATES, LAUNCHES, CUDACodeObject, OpenCLCodeObject,
                         RenderContext, launches,
                         array_params, constant_lines, kernel_entry_points,
                         kernel_param_list, literal)
from .generator import real_type

logger = get_logger("spikegpu.device")

#: templates evaluated on the host with numpy (read-only access by string)
HOST_TEMPLATES = {"group_variable_get", "group_variable_get_conditional",
                  "group_get_indices"}

_RNG_SOURCE = None


def rng_source():
    global _RNG_SOURCE
    if _RNG_SOURCE is None:
        path = os.path.join(os.path.dirname(__file__), "templates", "rng.c")
        with open(path) as f:
            _RNG_SOURCE = f.read()
    return _RNG_SOURCE


def multisynaptic_numbers(pre, post):
    """For each synapse, how many earlier synapses connect the same pair."""
    n = len(pre)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    key = pre.astype(np.int64) * (int(post.max()) + 1) + post
    order = np.argsort(key, kind="stable")
    sk = key[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    run_start = np.repeat(start, np.diff(np.r_[start, n]))
    out = np.empty(n, dtype=np.int32)
    out[order] = np.arange(n) - run_start
    return out


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
        self.fuse = {"0": False, "1": True}.get(os.environ.get("SPIKEGPU_FUSE", ""), "auto")
        self.fuse_max_neurons = 4096
        self.fuse_max_synapses = 2 ** 21
        self._init_state()

    def _init_state(self):
        self.arrays = weakref.WeakKeyDictionary()   # Variable -> DeviceArray
        self.pending_compile = []                   # code objects to compile
        self.queue = []                             # callables, in order
        self.queue_touched = set()                  # DeviceArray ids the queue uses
        self.programs = {}                          # source -> program
        self._kernel_programs = {}                  # (support, kernel text) -> program
        self._tick_program = None                   # a program with _sg_tick
        self._compiled = weakref.WeakValueDictionary()  # name -> code object
        self.seed_value = None
        self._seed_buf = None
        self._seed_key = None                       # host copy of the Philox key
        self._oneoff_buf = None
        self._oneoff_counter = 0
        self._stream_counter = 0
        self.stats = {"programs_built": 0, "kernel_launches": 0}
        self._namespace_arrays = []                 # function namespaces (TimedArray)
        self.last_run_info = {}

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
            if fuse not in ("auto", True, False):
                raise ValueError("gpu_standalone: fuse must be 'auto', True or False")
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
        self.flush()
        a = self.arrays[var]
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
            return Device.code_object(self, owner, name, abstract_code, variables,
                                      template_name, variable_indices,
                                      codeobj_class=NumpyCodeObject,
                                      template_kwds=template_kwds,
                                      override_conditional_write=override_conditional_write,
                                      compiler_kwds=compiler_kwds)
        name = find_name(name)
        codeobj_class = self.code_object_class(codeobj_class)
        if template_name not in LAUNCHES:
            raise NotImplementedError(
                f"spikegpu: '{getattr(owner, 'name', owner)}' needs Brian2's "
                f"'{template_name}' code object, which gpu_standalone does not "
                "support yet")
        template = getattr(codeobj_class.templater, template_name)
        generator = codeobj_class.generator_class(
            variables=variables, variable_indices=variable_indices, owner=owner,
            iterate_all=template.iterate_all, codeobj_class=codeobj_class,
            override_conditional_write=override_conditional_write,
            allows_scalar_write=template.allows_scalar_write, name=name,
            template_name=template_name)
        kw = dict(template_kwds or {})
        scalar_code, vector_code, gen_kwds = generator.translate(
            abstract_code, dtype=prefs["core.default_float_dtype"])
        if len(scalar_code) == 1 and None in scalar_code:
            scalar_code = scalar_code[None]
            vector_code = vector_code[None]

        # function namespaces (e.g. TimedArray values) and scratch arrays of
        # some templates become kernel arguments
        extra = [(key, np.asarray(value).ravel()) for key, value in gen_kwds["function_namespace"]]
        if template_name == "synapses_create_generator":
            n_outer = self._scalar_value(variables[kw["outer_index_size"]])
            extra += [("_sg_counts", np.zeros(n_outer + 1, dtype=np.int64)),
                      ("_sg_error", np.zeros(4, dtype=np.int32))]
        evar = kw.get("eventspace_variable")
        if template_name == "threshold" and evar.size - 1 > 4 * self.backend.group_size:
            bsize = self.backend.group_size
            nblocks = (evar.size - 1 + bsize - 1) // bsize
            kw.update(_sg_multiblock=True, _sg_nblocks=nblocks, _sg_bsize=bsize)
            extra += [("_sg_tscratch", np.zeros(nblocks * bsize, dtype=np.int32)),
                      ("_sg_tcount", np.zeros(nblocks, dtype=np.int32))]
        for key, value in extra:
            if key not in variables:
                v = ArrayVariable(name=key, owner=None, size=value.size,
                                  device=self, dtype=value.dtype, read_only=True)
                self.add_array(v)
                self.fill_with_array(v, value)
                self._namespace_arrays.append(v)
                variables = dict(variables)
                variables[key] = v

        if template_name == "synapses":
            # the pathway's propagation (synqueue.py), prepared for every run
            from .synqueue import prepare_queue
            pathway = kw["pathway"]
            queue = prepare_queue(self, pathway, serial=generator.scalar_writes)
            evar = pathway.source.variables[pathway.eventspace_name]
            variables = dict(variables)
            variables.update(queue.variables)
            variables["_sg_eventspace"] = evar
            kw.update(queue.template_kwds(serial=generator.scalar_writes))

        params = array_params(variables)
        def _flat(block):
            parts = block.values() if isinstance(block, dict) else [block]
            return "\n".join(p if isinstance(p, str) else "\n".join(p) for p in parts)
        code_text = _flat(scalar_code) + "\n" + _flat(vector_code)
        from brian2.utils.stringtools import get_identifiers
        used = get_identifiers(code_text) | {"N"}
        tvars = {}
        sizes = {}
        for vname, var in variables.items():
            if isinstance(var, ArrayVariable):
                p = generator.get_array_name(var)
                tvars[vname] = p + "[0]" if var.scalar else p
                sizes[vname] = var.size if not isinstance(var.size, tuple) else var.size[0]
            elif isinstance(var, Constant):
                tvars[vname] = literal(var.value)
        ctx = RenderContext(
            kname="KNAME", param_list=kernel_param_list(params),
            constants=constant_lines(variables, used), vars=tvars, sizes=sizes,
            variables=variables, kw=kw, scalar_code=scalar_code, locals=template.locals,
            vector_code=vector_code, serial=generator.scalar_writes,
            # (also functions defined through #define, e.g. binomial draws)
            uses_rng=(any(f in code_text + "\n".join(gen_kwds["hashdefine_lines"])
                          for f in ("_sg_rand", "_sg_randn", "_sg_poisson_fn", "_sg_rng"))
                      or kw.get("iterator_func") == "sample"),
            eventspace=generator.get_array_name(evar) if evar is not None else None,
            eventspace_n=(evar.size - 1) if evar is not None else None)
        if ctx.serial:
            logger.debug(f"{name}: writes shared or pre/post variables in an "
                         "order-dependent way, runs serially")
        source = template.render(c=ctx)
        support = "\n".join(gen_kwds["support_code_lines"])
        codeobj = codeobj_class(owner, source, variables, variable_indices,
                                template_name=template_name,
                                template_source=template.template_source, name=name,
                                compiler_kwds=compiler_kwds)
        codeobj.support_code = support
        codeobj.hashdefines = "\n".join(gen_kwds["hashdefine_lines"])
        codeobj.params = params
        codeobj.serial = ctx.serial
        codeobj.extra = kw
        codeobj.ctx = ctx
        codeobj.kernel_source = source + "\n" + kernel_entry_points(codeobj)
        if ctx.uses_rng:
            # only code objects that draw random numbers take a stream, so that
            # the same code objects get the same streams after
            # restore(restore_random_state=True) (see get_random_state)
            self._stream_counter += 1
            codeobj.stream_id = self._stream_counter
        self.pending_compile.append(codeobj)
        return codeobj

    # ------------------------------------------------------------------
    # compilation and the operation queue
    # ------------------------------------------------------------------
    def _compile_pending(self):
        if not self.pending_compile:
            return
        import hashlib
        cos = self.pending_compile
        self.pending_compile = []
        for co in cos:
            text = co.hashdefines + "\n" + co.kernel_source
            h = hashlib.sha1(text.encode()).hexdigest()[:16]
            co.kernel_name = f"k{h}"
            co.kernel_text = text.replace("KNAME", co.kernel_name)
        # a code object of a new run whose code an earlier program holds
        # (the kernel's name is its text's hash) takes it from there: the
        # pending set differs from run to run, one program per set would
        # compile the same kernels again
        new = [co for co in cos if (co.support_code, co.kernel_text) not in self._kernel_programs]
        if new:
            program = self.program(new, f"the kernels of {', '.join(co.name for co in new)}")
            self._tick_program = program
            for co in new:
                self._kernel_programs[(co.support_code, co.kernel_text)] = program
        for co in cos:
            program = self._kernel_programs[(co.support_code, co.kernel_text)]
            self._compiled[co.name] = co
            co.program = program
            for block, kernels in launches(co).items():
                co.kernels[block] = [(program.kernel(f"{co.kernel_name}_{suffix}"), policy)
                                     for suffix, policy in kernels]

    def program(self, codeobjs, what, extra=()):
        """The program of the prelude, these compiled code objects' support
        code and kernels, and ``extra`` source: from memory, the disk cache,
        or built (``what`` names it in a build error)."""
        from .templater import render_prelude
        be = self.backend
        supports = [c for c in dict.fromkeys(co.support_code for co in codeobjs) if c.strip()]
        kernels = list(dict.fromkeys(co.kernel_text for co in codeobjs))
        prelude = render_prelude(be.dialect(), real_type(), be.group_size, rng_source())
        source = "\n".join([prelude] + supports + kernels + list(extra))
        program = self.programs.get(source)
        if program is None:
            before = be.n_builds
            program = be.build(source, what=what)
            self.stats["programs_built"] += be.n_builds - before
            self.programs[source] = program
        return program

    def tick_kernel(self):
        """The clock tick (in the prelude of every program; a run without
        any kernel of its own builds the prelude alone)."""
        if self._tick_program is None:
            self._tick_program = self.program([], "the clock tick")
        return self._tick_program.kernel("_sg_tick")

    def _all_codeobjects(self):
        """The compiled code objects still alive (for tools and profiling)."""
        return list(self._compiled.values())

    def enqueue(self, fn, touched=()):
        self.queue.append(fn)
        self.queue_touched.update(touched)

    def enqueue_codeobject(self, codeobj, block):
        touched = {id(self.arrays[v]) for _, v in codeobj.params if v in self.arrays}
        if codeobj.template_name in CONNECT_TEMPLATES:
            # creation resizes every per-synapse variable of the owner
            touched |= {id(self.arrays[v]) for v in codeobj.owner._registered_variables
                        if v in self.arrays}
            self.enqueue(lambda: self.connect(codeobj), touched)
        else:
            self.enqueue(lambda: self.launch_codeobject(codeobj, block, oneoff=True), touched)

    def _scalar_value(self, var):
        if isinstance(var, Constant):
            return var.value
        a = self.arrays[var]
        a.ensure_host()
        return a.host.ravel()[0].item()

    def check_fits(self, owner, new_synapses, extra_bytes=0):
        """Raise before allocating if ``new_synapses`` more synapses of
        ``owner`` (all its per-synapse variables) cannot fit in device memory."""
        per_synapse = sum(np.dtype(v.dtype).itemsize for v in owner._registered_variables
                          if not v.scalar)
        self.require_memory(owner.name, new_synapses * per_synapse + extra_bytes,
                            f"{new_synapses} new synapses ({per_synapse} bytes per synapse)")

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

    # -- synapse creation -----------------------------------------------------
    def connect(self, codeobj):
        """Create synapses on the device: count per outer index, scan on the
        host, grow the synaptic arrays, fill (or fill directly for arrays)."""
        be = self.backend
        owner = codeobj.owner
        v = codeobj.variables
        sv = owner.variables
        for name, size, offset in (("N_incoming", "N_post", "_target_offset"),
                                   ("N_outgoing", "N_pre", "_source_offset")):
            n = int(self._scalar_value(v[size])) + int(self._scalar_value(v[offset]))
            if sv[name].size != n:
                sv[name].resize(n)
        old = int(self._scalar_value(sv["N"]))
        _, step_buf = self._rng_buffers()
        self._oneoff_counter += 1
        be.upload(step_buf, np.array([self._oneoff_counter], dtype=np.int64))
        kernels = codeobj.kernels["run"]
        if codeobj.template_name == "synapses_create_generator":
            args = self.kernel_args(codeobj, step_buf, 0)
            gs, ls = self.launch_size(codeobj, "elements")
            be.launch(kernels[0][0], gs, ls, args)
            counts_a = self.arrays[v["_sg_counts"]]
            err_a = self.arrays[v["_sg_error"]]
            for a in (counts_a, err_a):
                a.mark_device_written()
                a.ensure_host()
            if err_a.host[0]:
                code, a, b, outer = (int(x) for x in err_a.host[:4])
                err_a.host = np.zeros(4, dtype=np.int32)
                err_a.mark_host_written()
                raise self._connect_error(codeobj, code, a, b, outer)
            counts = counts_a.host[:-1]
            total = int(counts.sum())
            self.check_fits(owner, total)
            offsets = np.zeros(len(counts_a.host), dtype=np.int64)
            offsets[:-1] = old + np.cumsum(counts) - counts
            owner._resize(old + total)
            counts_a.host = offsets
            counts_a.mark_host_written()
            args = self.kernel_args(codeobj, step_buf, 0)
            be.launch(kernels[1][0], gs, ls, args)
        else:
            n = v["sources"].size
            self.check_fits(owner, n)
            owner._resize(old + n)
            args = self.kernel_args(codeobj, step_buf, old)
            gs, ls = self.launch_size(codeobj, "elements")
            be.launch(kernels[0][0], gs, ls, args)
        for pname, var in codeobj.params:
            self.arrays[var].mark_device_written()
        self.stats["kernel_launches"] += len(kernels)
        msi = codeobj.extra.get("multisynaptic_index")
        if msi:
            pre = self.get_value(sv["_synaptic_pre"])
            post = self.get_value(sv["_synaptic_post"])
            self.fill_with_array(sv[msi], multisynaptic_numbers(pre, post))

    def _connect_error(self, codeobj, code, a, b, outer):
        """The exception for an error flagged by the count pass of
        synapses_create_generator (codes: see the template)."""
        owner, kw = codeobj.owner, codeobj.extra
        at = f"(for {kw['outer_index']}={outer})"
        if code == 1:
            n = int(self._scalar_value(codeobj.variables[kw["result_index_size"]]))
            return IndexError(
                f"{owner.name}: connect() tried to create a synapse to neuron "
                f"{kw['result_index']}={a}, outside the range 0 to {n - 1}")
        if code == 2:
            return IndexError(
                f"{owner.name}: connect(): Requested sample size {a} is bigger "
                f"than the population size {b} {at}; skip_if_invalid=True takes "
                "the whole population instead")
        if code == 3:
            return IndexError(
                f"{owner.name}: connect(): Requested sample size {a} is negative {at}")
        if code == 4:
            return ValueError(f"{owner.name}: connect(): the step of "
                              f"{kw['iterator_func']}() must not be zero {at}")
        return RuntimeError(f"{owner.name}: connect() failed on the device "
                            f"(error code {code})")

    def flush(self):
        """Compile what is pending and execute the queued operations."""
        if not self.queue and not self.pending_compile:
            return
        self._compile_pending()
        queue, self.queue = self.queue, []
        self.queue_touched = set()
        for fn in queue:
            fn()

    # -- RNG buffers -------------------------------------------------------
    def _rng_buffers(self):
        be = self.backend
        if self._seed_buf is None:
            self._seed_buf = be.alloc(8)
            self._oneoff_buf = be.alloc(8)
            self._apply_seed(self.seed_value)
        return self._seed_buf, self._oneoff_buf

    def _apply_seed(self, seed):
        if seed is None:
            key = np.frombuffer(os.urandom(8), dtype=np.uint32).copy()
        else:
            s = int(seed) & 0xFFFFFFFFFFFFFFFF
            key = np.array([s & 0xFFFFFFFF, s >> 32], dtype=np.uint32)
        self._oneoff_counter = 0
        self._seed_key = key
        if self._seed_buf is not None:
            self.backend.upload(self._seed_buf, key)

    def seed(self, seed=None):
        self.seed_value = seed
        if self._seed_buf is not None:
            self.enqueue(lambda: self._apply_seed(seed))

    def get_random_state(self):
        """A random number is a function of the Philox key, the code object's
        stream, the counter (the clock's time step; for one-off code objects
        ``_oneoff_counter``) and the element: the state is the key and the
        two counters that hand out streams and one-off steps (and numpy's
        state, which Brian2 restores as well).  Code objects are created
        anew for each run, so after ``restore()`` without the random state
        they take new streams: new random numbers, as Brian2's semantics."""
        self.flush()
        self._rng_buffers()
        return {"spikegpu_philox_key": np.array(self._seed_key, dtype=np.uint32),
                "stream_counter": self._stream_counter,
                "oneoff_counter": self._oneoff_counter,
                "numpy_state": np.random.get_state()}

    def set_random_state(self, state):
        if not (isinstance(state, dict) and "spikegpu_philox_key" in state):
            raise ValueError("gpu_standalone: the stored random state was not stored by "
                             "gpu_standalone (restore_random_state=True needs a state "
                             "stored on this device)")
        self.flush()
        self._rng_buffers()
        self._seed_key = np.array(state["spikegpu_philox_key"], dtype=np.uint32)
        self.backend.upload(self._seed_buf, self._seed_key)
        self._stream_counter = int(state["stream_counter"])
        self._oneoff_counter = int(state["oneoff_counter"])
        np.random.set_state(state["numpy_state"])

    # -- kernel launch -------------------------------------------------------
    def kernel_args(self, codeobj, step_buf, capacity=0):
        be = self.backend
        seed_buf, _ = self._rng_buffers()
        args = []
        for pname, var in codeobj.params:
            a = self.arrays[var]
            a.ensure_device(be)
            args.append(a.buf)
        args += [seed_buf, step_buf, np.uint32(codeobj.stream_id), np.int64(capacity)]
        return args

    def launch_size(self, codeobj, policy):
        be = self.backend
        wg = be.max_work_group
        if policy == "single" or (policy in ("elements", "events") and codeobj.serial):
            return 1, 1
        if policy == "group":
            return be.group_size, be.group_size
        if policy == "blocks":      # one work-group per block of elements
            return codeobj.extra["_sg_nblocks"] * codeobj.extra["_sg_bsize"], \
                codeobj.extra["_sg_bsize"]
        if policy == "spike_blocks":    # a work-group per event of the source range
            blocks = max(1, min(codeobj.extra["_sg_nrange"], 4 * be.compute_units))
            return blocks * wg, wg
        if policy == "bundle_blocks":   # a work-group per bundle of a queue slot
            blocks = max(1, min(codeobj.extra["_sg_cap"], 4 * be.compute_units))
            return blocks * wg, wg
        if policy == "events":
            n = codeobj.ctx.eventspace_n
        elif policy == "spike_threads":
            n = codeobj.extra["_sg_nrange"]
        elif policy == "spike_flat":
            n = codeobj.extra["_sg_nrange"] * max(1, codeobj.extra["_sg_maxrow"])
        elif policy == "bundle_threads":
            n = codeobj.extra["_sg_cap"]
        elif policy == "bundle_flat":
            n = codeobj.extra["_sg_cap"] * max(1, codeobj.extra["_sg_bmaxrow"])
        else:
            n = self._n_elements(codeobj)
        limit = wg * max(1, be.compute_units) * 8
        n = max(1, min(int(n), limit))
        return ((n + wg - 1) // wg) * wg, wg

    def _n_elements(self, codeobj):
        v = codeobj.variables
        if codeobj.template_name == "group_variable_set":
            return v["_group_idx"].size
        if codeobj.template_name == "synapses_create_generator":
            return self._scalar_value(v[codeobj.extra["outer_index_size"]])
        if codeobj.template_name == "synapses_create_array":
            return v["sources"].size
        N = v.get("N")
        if isinstance(N, Constant):
            return int(N.value)
        if isinstance(N, ArrayVariable):
            a = self.arrays[N]
            a.ensure_host()
            return int(a.host.ravel()[0])
        return int(getattr(codeobj.owner, "N", 1))

    def launch_codeobject(self, codeobj, block, oneoff=False, step_buf=None):
        be = self.backend
        if oneoff:
            _, oneoff_buf = self._rng_buffers()
            self._oneoff_counter += 1
            be.upload(oneoff_buf, np.array([self._oneoff_counter], dtype=np.int64))
            step_buf = oneoff_buf
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

    # Brian2's store()/restore() on top of the device hooks: get_value,
    # set_value and resize for the state variables (monitors shrink back),
    # PathwayQueue for the spikes in flight (synqueue.py),
    # get_random_state/set_random_state.  store() is Brian2's, plus the
    # delays of heterogeneous pathways, which Brian2 2.9 misses (they belong
    # to the Synapses but live in the pathway; Brian2 2.10 stores them the
    # same way, brian2 #1726).
    def network_store(self, net, name="default", filename=None):
        import pickle
        from brian2.core.network import _get_all_objects
        from brian2.synapses.synapses import SynapticPathway
        self._check_not_running("store")
        self.flush()
        objects = _get_all_objects(net.objects)
        for clock in {obj.clock for obj in objects}:
            clock._set_t_update_dt(target_t=net.t)
        state = net._full_state()
        for obj in objects:
            if isinstance(obj, SynapticPathway) and "delay" not in state[obj.name]:
                delay = obj.variables["delay"]
                state[obj.name]["delay"] = (np.array(delay.get_value()), delay.size)
        state["_random_generator_state"] = self.get_random_state()
        if filename is None:
            net._stored_state[name] = state
            return
        stored = {}
        if os.path.exists(filename):      # a file holds several named states
            with open(filename, "rb") as f:
                stored = pickle.load(f)
        stored[name] = state
        with open(filename, "wb") as f:
            pickle.dump(stored, f, protocol=pickle.HIGHEST_PROTOCOL)

    def network_restore(self, net, name="default", filename=None,
                        restore_random_state=False):
        from brian2.core.network import Network
        self._check_not_running("restore")
        self.flush()
        Network.restore.original_function(net, name=name, filename=filename,
                                          restore_random_state=restore_random_state)

    @staticmethod
    def _check_not_running(what):
        from brian2.core.network import Network
        if Network._globally_running:
            # monitors' sizes and the clocks' host copies are only current
            # between runs
            raise NotImplementedError(f"gpu_standalone: {what}() during a run (from a "
                                      "network_operation) is not supported; call it "
                                      "between runs")

    def reinit(self):
        build_on_run, build_options = self.build_on_run, self.build_options
        for a in list(self.arrays.values()):
            a.free()
        for b in (self._seed_buf, self._oneoff_buf):
            if b is not None and self._backend is not None:
                self._backend.free(b)
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
