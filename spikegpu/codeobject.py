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
    return {"run": [("push", rows), ("run", BUNDLE_POLICIES[kw["_sg_brows"]]),
                    ("advance", "single")]}


def launches(codeobj):
    if codeobj.template_name == "threshold" and codeobj.extra.get("_sg_multiblock"):
        return THRESHOLD_MULTIBLOCK
    if codeobj.template_name == "synapses":
        return synapses_launches(codeobj.extra)
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


class RenderContext:
    """What a template sees as ``c``."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def ptr(self, name):
        return self.array(self.variables[name])

    def num(self, name, value=None):
        """A per-object number in a template (a size, an offset, a count):
        ``value``, or the template keyword ``name``.  Templates write such
        numbers through this (not as Mako literals) so that objects whose
        code differs only in them can share one kernel."""
        return literal(self.kw[name] if value is None else value)

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
        self.program = None
        self.extra = {}           # template keywords the launcher needs
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


BODY_SCALARS = ["_sg_seed", "_sg_step", "_sg_stream", "_sg_capacity"]


def kernel_entry_points(codeobj):
    """The kernels around a code object's body functions (templates write
    ``KNAME_<suffix>_body``; see common.mako's ``signature``)."""
    params = kernel_param_list(codeobj.params)
    names = ", ".join([p for p, _ in codeobj.params] + BODY_SCALARS)
    out = []
    for kernels in launches(codeobj).values():
        for suffix, _ in kernels:
            loc = codeobj.ctx.locals.get(suffix, [])
            decls = " ".join(f"SG_LOCAL_DECL({t}, {n}, {size})" for t, n, size in loc)
            largs = "".join(f" SG_LOCAL_ARG({n})" for _, n, _ in loc)
            out.append(f"SG_KERNEL KNAME_{suffix}({params}) {{ {decls} "
                       f"KNAME_{suffix}_body({names}{largs}); }}")
    return "\n".join(out)


def kernel_param_list(params):
    """The fixed kernel argument list: arrays, then RNG key/step/stream and
    the buffer capacity that appending kernels respect."""
    parts = [f"SG_GLOBAL {c_type(var.dtype)}* {pname}" for pname, var in params]
    parts += ["SG_GLOBAL const uint32_t* _sg_seed", "SG_GLOBAL const int64_t* _sg_step",
              "const uint32_t _sg_stream", "const int64_t _sg_capacity"]
    return ", ".join(parts)


def constant_lines(variables, used_names):
    lines = []
    for name, var in sorted(variables.items()):
        if isinstance(var, Constant) and name in used_names:
            lines.append(f"const {c_type(var.dtype)} {name} = {literal(var.value)};")
    return lines


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


def launch_size(device, codeobj, policy):
    """(global size, local size) of a kernel of ``codeobj`` launched with
    ``policy`` (see LAUNCHES)."""
    be = device.backend
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
        n = n_elements(device, codeobj)
    limit = wg * max(1, be.compute_units) * 8
    n = max(1, min(int(n), limit))
    return ((n + wg - 1) // wg) * wg, wg
