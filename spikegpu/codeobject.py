"""Code objects: one Brian2 code object = one or more kernels plus the rule
that sizes their launch.  Two classes (CUDA and OpenCL) share everything;
they differ only in `class_name`, which Brian uses to look up function
implementations (both inherit the generator's 'spikegpu' ones)."""
import numpy as np
from brian2.codegen.codeobject import CodeObject
from brian2.core.variables import ArrayVariable, Constant

from .generator import GPUCodeGenerator, c_type
from .templater import GPUTemplater

#: template -> {block: [(kernel suffix, launch policy)]}
#:   elements: grid-stride over the code object's elements (N or indices)
#:   events:   grid-stride over this step's events of the eventspace
#:   group:    one work-group
#:   single:   one thread
#:   spike_blocks / spike_threads / spike_flat: rows of this step's events
#:             (a work-group per event / a thread per event / a thread per
#:             event and row position), see synqueue.choose_rows
#:   bundle_blocks / bundle_threads / bundle_flat: the bundles of a queue
#:             slot (a work-group / a thread per bundle / a thread per
#:             bundle and position), see synqueue.SynapseQueue
#:   sections: grid-stride over a SpatialNeuron's sections (spatial.py)
#:   dendrites: a pathway's dendritic buffer, _sg_ditems targets a thread
LAUNCHES = {
    "stateupdate": {"run": [("run", "elements")]},
    "reset": {"run": [("run", "events")]},
    "threshold": {"run": [("run", "group")], "after_run": [("after_run", "single")]},
    "statemonitor": {"run": [("run", "group")]},
    "spikemonitor": {"run": [("run", "group")]},
    "ratemonitor": {"run": [("run", "single")]},
    "group_variable_set": {"run": [("run", "elements")]},
    "group_variable_set_conditional": {"run": [("run", "elements")]},
    "spikegenerator": {"run": [("run", "single")]},
    "summed_variable": {"run": [("zero", "elements"), ("run", "elements")]},
    # a pathway's propagation runs in its 'synapses' code object, which
    # Brian2 creates for every run (so the spike queue is prepared with the
    # current delays); the push code object, created once, launches nothing
    "synapses_push_spikes": {},
    "synapses": {},     # per pathway structure: synapses_launches
    # creation runs through GPUDevice.connect (host scan between the passes)
    "synapses_create_generator": {"run": [("count", "elements"), ("fill", "elements")]},
    "synapses_create_array": {"run": [("fill", "elements")]},
    # a SpatialNeuron's cable equation: spatial.spatial_launches (one
    # work-group per neuron, or four kernels for large neurons)
    "spatialstateupdate": {},
}

#: large groups: every work-group compacts its events, one merges them
THRESHOLD_MULTIBLOCK = {"run": [("blocks", "blocks"), ("merge", "group")],
                        "after_run": [("after_run", "single")]}


#: synqueue's mapping of rows of events to threads -> launch policy
ROW_POLICIES = {"group": "spike_blocks", "thread": "spike_threads", "flat": "spike_flat",
                "serial": "single"}
#: the same for the bundles of a queue slot
BUNDLE_POLICIES = {"group": "bundle_blocks", "thread": "bundle_threads",
                   "flat": "bundle_flat", "serial": "single"}


def synapses_launches(kw):
    """A pathway: homogeneous delays (a ring of spike lists): one kernel,
    plus moving the ring if the delay is not zero; heterogeneous delays:
    push, apply the slot of now, advance (see synqueue.py)."""
    rows = ROW_POLICIES[kw["_sg_rows"]]
    if kw["_sg_mode"] == "ring":
        return {"run": [("run", rows)] + ([("advance", "single")] if kw["_sg_delay"] else [])}
    # a dendritic buffer: the push walks the rows' synapses (and their
    # bundles only in a run's last steps)
    push = ROW_POLICIES[kw["_sg_prows"]] if kw.get("_sg_dendritic") else rows
    apply = [("apply", "dendrites")] if kw.get("_sg_dendritic") else []
    return {"run": [("push", push)] + apply + [("run", BUNDLE_POLICIES[kw["_sg_brows"]]),
                                               ("advance", "single")]}


def launches(codeobj):
    if codeobj.template_name == "threshold" and codeobj.extra.get("_sg_multiblock"):
        return THRESHOLD_MULTIBLOCK
    if codeobj.template_name == "synapses":
        return synapses_launches(codeobj.extra)
    if codeobj.template_name == "spatialstateupdate":
        from .spatial import spatial_launches
        return spatial_launches(codeobj.extra)
    return LAUNCHES[codeobj.template_name]


#: templates whose 'run' block the device executes with its own host logic
CONNECT_TEMPLATES = ("synapses_create_generator", "synapses_create_array")


def literal(value, dtype=None):
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if np.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if np.isnan(v):
        return "NAN"
    return repr(v)


#: how a field of each C type is passed by value (small ints widen to int32)
FIELD_TYPES = {"double": np.float64, "float": np.float32, "int64_t": np.int64,
               "uint64_t": np.uint64, "int32_t": np.int32, "uint32_t": np.uint32}


def field_ctype(dtype):
    """The C type of a field holding a value of ``dtype``."""
    ct = c_type(dtype)
    return ct if ct in FIELD_TYPES else "int32_t"


class Fields:
    """A kernel's per-object numbers, in order: a body parameter each
    (``const <type> <name>``).  Objects whose kernels differ only in these
    share one compiled body; a merged launch reads them from a table."""

    def __init__(self):
        self.items = {}         # name -> (C type, value)

    def add(self, name, ctype, value):
        old = self.items.setdefault(name, (ctype, value))
        if old[0] != ctype or not (old[1] == value or (old[1] != old[1] and value != value)):
            raise ValueError(f"spikegpu: field {name} given twice ({old} and {(ctype, value)})")
        return name

    def __iter__(self):
        return iter((n, t, v) for n, (t, v) in self.items.items())

    def __len__(self):
        return len(self.items)

    def params(self):
        return [f"const {t} {n}" for n, (t, _) in self.items.items()]

    def values(self):
        """Numpy scalars to pass as kernel arguments."""
        return [FIELD_TYPES[t](v) for _, (t, v) in self.items.items()]


class _Vars:
    """``c.vars``: an array's pointer (``ptr[0]`` for a scalar), a
    constant's field."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __getitem__(self, name):
        var = self.ctx.variables[name]
        if isinstance(var, ArrayVariable):
            p = GPUCodeGenerator.get_array_name(var)
            return p + "[0]" if var.scalar else p
        if isinstance(var, Constant):
            return self.ctx.constant(name)
        raise KeyError(name)


class _Sizes:
    """``c.sizes``: an array's size, as a field."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __getitem__(self, name):
        var = self.ctx.variables[name]
        size = var.size if not isinstance(var.size, tuple) else var.size[0]
        return self.ctx.fields.add(f"_sg_size_{name}", "int64_t", int(size))


#: stands for the body's parameter list until the template is rendered
#: (templates register fields while they render)
PARAMS_PLACEHOLDER = "/*SG_PARAMS*/"


class RenderContext:
    """What a template sees as ``c``.  Per-object numbers become fields
    (`Fields`): constants (``c.vars``), sizes (``c.sizes``), ``c.num``."""

    param_list = PARAMS_PLACEHOLDER

    def __init__(self, **kw):
        self.fields = Fields()
        self.__dict__.update(kw)
        self.vars = _Vars(self)
        self.sizes = _Sizes(self)

    def ptr(self, name):
        return self.array(self.variables[name])

    def constant(self, name):
        var = self.variables[name]
        value = var.value
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        return self.fields.add(name, field_ctype(var.dtype), value)

    def num(self, name, value=None):
        """A per-object number in a template (a size, an offset, a count):
        ``value``, or the template keyword ``name``; a field."""
        value = self.kw[name] if value is None else value
        if isinstance(value, (bool, np.bool_, int, np.integer)):
            return self.fields.add(f"_sg_n{name}", "int64_t", int(value))
        return self.fields.add(f"_sg_n{name}", "double", float(value))

    @property
    def eventspace_n(self):
        return self.num("_eventspace_n", self.eventspace_size)

    def array(self, var):
        return GPUCodeGenerator.get_array_name(var)

    def ctype(self, var):
        return c_type(var.dtype)


class GPUCodeObject(CodeObject):
    templater = GPUTemplater()
    generator_class = GPUCodeGenerator
    class_name = "spikegpu_gpu"

    def __init__(self, owner, code, variables, variable_indices, template_name,
                 template_source, name, compiler_kwds=None):
        super().__init__(owner, code, variables, variable_indices,
                         template_name=template_name,
                         template_source=template_source, name=name,
                         compiler_kwds=compiler_kwds or {})
        self.namespace = {}
        # filled in by GPUDevice.code_object
        self.kernel_source = code
        self.kernel_name = None
        self.params = []          # [(pointer name, DeviceArray-owning Variable)]
        self.serial = False
        self.stream_id = 0
        self.kernels = {}         # block -> [(kernel object, policy)]
        self.kernel_by_suffix = {}
        self.program = None
        self.extra = {}           # template keywords the launcher needs
        self.fields = Fields()    # per-object numbers (body parameters)
        self.code_access = {}     # variable name -> 'r', 'w' or 'a' (generator)
        self.eventspace_var = None
        self.structure = set()    # a pathway's propagation arrays (synqueue)
        self.capacity = 0         # rows/events appending kernels may write

    def compile_block(self, block):
        return None  # compiled in batches by GPUDevice

    def run_block(self, block):
        from brian2.devices.device import get_device
        if block not in launches(self):
            return
        get_device().enqueue_codeobject(self, block)


class CUDACodeObject(GPUCodeObject):
    class_name = "spikegpu_cuda"


class OpenCLCodeObject(GPUCodeObject):
    class_name = "spikegpu_opencl"


#: every body's last parameters: the RNG key and counter, the random
#: stream, the capacity that appending kernels respect, and the work-group
#: of the body's grid and the number of work-groups in it (a merged launch
#: gives each object a part of its grid: see SG_GID in prelude.mako)
BODY_SCALARS = ["_sg_seed", "_sg_step", "_sg_stream", "_sg_capacity"]
BODY_GRID = ["_sg_grp", "_sg_ng"]


def body_param_list(params, fields):
    parts = [f"SG_GLOBAL {c_type(var.dtype)}* {pname}" for pname, var in params]
    parts += fields.params()
    parts += ["SG_GLOBAL const uint32_t* _sg_seed", "SG_GLOBAL const int64_t* _sg_step",
              "const uint32_t _sg_stream", "const int64_t _sg_capacity",
              "const int32_t _sg_grp", "const int32_t _sg_ng"]
    return ", ".join(parts)


def kernel_entry_points(codeobj):
    """The kernels around a code object's body functions (templates write
    ``KNAME_<suffix>_body``; see common.mako's ``signature``): arrays,
    fields and the RNG/capacity scalars are kernel arguments; the body's
    grid is the launch's."""
    params = kernel_param_list(codeobj.params, codeobj.fields)
    names = ", ".join([p for p, _ in codeobj.params] + [n for n, _, _ in codeobj.fields]
                      + BODY_SCALARS + ["SG_RAW_GROUP", "SG_RAW_NGROUPS"])
    out = []
    for kernels in launches(codeobj).values():
        for suffix, _ in kernels:
            loc = codeobj.ctx.locals.get(suffix, [])
            decls = " ".join(f"SG_LOCAL_DECL({t}, {n}, {size})" for t, n, size in loc)
            largs = "".join(f" SG_LOCAL_ARG({n})" for _, n, _ in loc)
            out.append(f"SG_KERNEL KNAME_{suffix}({params}) {{ {decls} "
                       f"KNAME_{suffix}_body({names}{largs}); }}")
    return "\n".join(out)


def kernel_param_list(params, fields):
    """The kernel argument list of a code object's kernels: arrays, fields,
    then RNG key/step/stream and the buffer capacity that appending kernels
    respect."""
    parts = [f"SG_GLOBAL {c_type(var.dtype)}* {pname}" for pname, var in params]
    parts += fields.params()
    parts += ["SG_GLOBAL const uint32_t* _sg_seed", "SG_GLOBAL const int64_t* _sg_step",
              "const uint32_t _sg_stream", "const int64_t _sg_capacity"]
    return ", ".join(parts)


def array_params(variables):
    seen = {}
    for name, var in sorted(variables.items()):
        if isinstance(var, ArrayVariable):
            pname = GPUCodeGenerator.get_array_name(var)
            if pname not in seen:
                seen[pname] = var
    return list(seen.items())


# -- launching ---------------------------------------------------------------

def n_elements(device, codeobj):
    """The number of elements an 'elements' launch covers."""
    v = codeobj.variables
    if codeobj.template_name == "group_variable_set":
        return v["_group_idx"].size
    if codeobj.template_name == "synapses_create_generator":
        return device._scalar_value(v[codeobj.extra["outer_index_size"]])
    if codeobj.template_name == "synapses_create_array":
        return v["sources"].size
    N = v.get("N")
    if isinstance(N, Constant):
        return int(N.value)
    if isinstance(N, ArrayVariable):
        a = device.arrays[N]
        a.ensure_host()
        return int(a.host.ravel()[0])
    return int(getattr(codeobj.owner, "N", 1))


def group_launch_size(be, codeobj):
    """The work-group of a 'group' kernel: the backend's group size, or the
    largest power of two the code object's kernels can be launched with
    (a kernel using many registers cannot run 1,024 threads: CUDA refuses
    the launch, OpenCL says OUT_OF_RESOURCES).  Its bodies loop over the
    work-group, so any size gives the same result."""
    limit = getattr(codeobj, "_sg_group_limit", None)
    if limit is None:
        limit = be.group_size
        for k in codeobj.kernel_by_suffix.values():
            limit = min(limit, int(be.kernel_max_group(k)))
        n = 1
        while 2 * n <= limit:
            n *= 2
        limit = codeobj._sg_group_limit = n
    return limit


def launch_size(device, codeobj, policy):
    """(global size, local size) of a kernel of ``codeobj`` launched with
    ``policy`` (see LAUNCHES)."""
    be = device.backend
    wg = be.max_work_group
    if policy == "single" or (policy in ("elements", "events") and codeobj.serial):
        return 1, 1
    if policy == "group":
        n = group_launch_size(be, codeobj)
        return n, n
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
        n = codeobj.ctx.eventspace_size
    elif policy == "spike_threads":
        n = codeobj.extra["_sg_nrange"]
    elif policy == "spike_flat":
        n = codeobj.extra["_sg_nrange"] * max(1, codeobj.extra["_sg_maxrow"],
                                              codeobj.extra.get("_sg_pmaxrow", 0))
    elif policy == "bundle_threads":
        n = codeobj.extra["_sg_cap"]
    elif policy == "bundle_flat":
        n = codeobj.extra["_sg_cap"] * max(1, codeobj.extra["_sg_bmaxrow"])
    elif policy == "dendrites":     # _sg_ditems targets a thread
        n = -(-codeobj.extra["_sg_dn"] // codeobj.extra["_sg_ditems"])
    elif policy == "sections":
        # a thread per (virtual) section of a SpatialNeuron, each solving
        # its section serially: small work-groups spread them over the
        # compute units
        ls = min(wg, 32)
        n = max(1, codeobj.extra["_sg_sp_nvs"])
        return -(-n // ls) * ls, ls
    else:
        n = n_elements(device, codeobj)
    limit = wg * max(1, be.compute_units) * 8
    n = max(1, min(int(n), limit))
    return ((n + wg - 1) // wg) * wg, wg
