"""The fused step kernel: a whole time step of a small network in one kernel.

For small networks a step costs what its launches cost (~1-3 us each even
inside a CUDA graph, ~9 us from Python), not what its arithmetic costs.  When
every code object of the step can run in one work-group, one kernel runs
``nsteps`` steps: each step calls the body functions of the step's kernels in
schedule order (the same bodies the separate kernels call, see
``codeobject.kernel_entry_points``), separated by work-group barriers, then
ticks the clock.  Results are bitwise those of the separate kernels: the same
code, the same random streams (keyed by the clock's timestep on the device).

``plan()`` decides whether a run can use it; `runloop.py` launches it once per
block of steps (the blocks that monitors' buffers are sized for).

With ``run(..., profile=True)`` on a backend with a cycle counter (CUDA), the
kernel also adds up the cycles of every body (until its barrier) and of the
clock tick: `Network.profiling_info` then splits the loop's time by object
without a host wait per object, which would measure launches, not kernels.
"""
import hashlib

from .codeobject import launches
from .generator import c_type

#: launch policies whose kernels are correct with a single work-group (all
#: loop with grid- or group-strides)
SINGLE_GROUP_POLICIES = {"elements", "events", "group", "single", "spike_blocks", "blocks",
                         "spike_threads", "spike_flat", "bundle_blocks", "bundle_threads",
                         "bundle_flat"}


class StepKernel:
    def __init__(self, device, codeobjs, arrays, clock_arrays, name, text, owners=None):
        self.device = device
        self.owners = owners              # profiling: the object name of each body
        self.codeobjs = codeobjs          # in step order, each once
        self.arrays = arrays              # DeviceArrays of the kernel's _a<k> parameters
        self.clock_arrays = clock_arrays  # timestep, t, dt DeviceArrays
        self.name, self.text = name, text
        self.kernel = None
        self.local_size = None

    def build(self):
        be = self.device.backend
        program = self.device.program(
            self.codeobjs, "the fused step kernel of "
            + ", ".join(co.name for co in self.codeobjs), [self.text])
        self.kernel = program.kernel(self.name)
        self.local_size = min(be.group_size, be.kernel_max_group(self.kernel))
        if self.owners is not None:
            import numpy as np
            self.cycles = np.zeros(len(self.owners) + 1, dtype=np.int64)
            self.cycles_buf = be.alloc(self.cycles.nbytes)
            be.upload(self.cycles_buf, self.cycles)

    def profile(self, seconds):
        """Per object name, its share of ``seconds`` (the loop's time) by the
        cycles its bodies took; the clock tick is 'clock'."""
        be = self.device.backend
        be.download(self.cycles_buf, self.cycles)
        be.free(self.cycles_buf)
        total = max(1, int(self.cycles.sum()))
        out = {}
        for name, c in zip(self.owners + ["clock"], self.cycles):
            out[name] = out.get(name, 0.0) + seconds * int(c) / total
        return out

    def args(self):
        """Arguments for the current buffers (they move when monitors grow)."""
        import numpy as np
        dev = self.device
        seed_buf, _ = dev.random.buffers()
        for a in self.arrays:
            a.ensure_device(dev.backend)
        out = [a.buf for a in self.arrays]
        out += [seed_buf] + [a.buf for a in self.clock_arrays] + [np.int64(0)]
        out += [np.int64(co.capacity) for co in self.codeobjs]
        out += [np.uint32(co.stream_id) for co in self.codeobjs]
        if self.owners is not None:
            out.append(self.cycles_buf)
        return out

    def launch(self, args, nsteps):
        import numpy as np
        args = list(args)       # backends may keep the list they last set
        args[len(self.arrays) + 4] = np.int64(nsteps)     # after seed, ts, t, dt
        self.device.backend.launch(self.kernel, self.local_size, self.local_size, args)


def _unique(codeobjs):
    # code objects come as weak proxies, which cannot be hashed
    seen = {}
    for co in codeobjs:
        seen.setdefault(id(co), co)
    return list(seen.values())


def _unique_arrays(device, codeobjs):
    seen = {}
    for co in codeobjs:
        for _, var in co.params:
            a = device.arrays[var]
            seen.setdefault(id(a), a)
    return list(seen.values())


def plan(device, objects, clock_arrays, profile=False):
    """A StepKernel for these objects (all on the clock of ``clock_arrays``),
    or None when the step cannot or should not be fused (``profile``: with
    cycle counts per body, None where the backend cannot count)."""
    mode = device.fuse
    if mode is False or (profile and not device.backend.has_cycle_counter):
        return None
    sections, owners = [], []
    for obj in objects:
        for co in obj._code_objects:
            for suffix, policy in launches(co).get("run", []):
                if policy not in SINGLE_GROUP_POLICIES:
                    return None
                sections.append((co, suffix))
                owners.append(obj.name)
    if not sections:
        return None
    # a CPU device runs one work-group on one core: separate kernels win there
    if mode == "auto" and (getattr(device.backend, "is_cpu", False)
                           or not _small(device, sections)):
        return None
    codeobjs = _unique(co for co, _ in sections)
    arrays = _unique_arrays(device, codeobjs)
    if 8 * (len(arrays) + 5 + 2 * len(codeobjs)) > device.backend.max_param_bytes:
        return None         # too many arguments for one kernel on this device
    name, text = _kernel_text(device, sections, codeobjs, arrays, profile)
    return StepKernel(device, codeobjs, arrays, clock_arrays, name, text,
                      owners if profile else None)


def _small(device, sections):
    """Auto rule: one work-group is fast enough when no kernel of the step
    loops over more than `fuse_max_neurons` neurons or events, and no
    synapse-wide kernel (pathways, summed variables, synaptic state
    updates) over more than `fuse_max_synapses` synapses (a step's synaptic
    events are a small fraction of them)."""
    from brian2.synapses.synapses import Synapses, SynapticPathway
    for co, suffix in sections:
        policy = dict(launches(co)["run"])[suffix]
        synaptic = isinstance(co.owner, (Synapses, SynapticPathway))
        if co.template_name == "synapses":
            # the pathway (Brian2 >= 2.10 makes the Synapses the owner)
            n = int(device._scalar_value(co.extra["pathway"].synapses.variables["N"]))
            synaptic = True
        elif policy in ("events", "blocks"):
            n = co.ctx.eventspace_size
        elif policy == "elements":
            n = device._n_elements(co)
        elif policy == "group":
            n = (co.variables["_indices"].size if "_indices" in co.variables
                 else co.ctx.eventspace_size or 0)
        else:
            n = 0
        if n > (device.fuse_max_synapses if synaptic else device.fuse_max_neurons):
            return False
    return True


def _field_literal(ctype, value):
    from .codeobject import literal
    return f"(({ctype}){literal(value)})"


def _kernel_text(device, sections, codeobjs, arrays, profile=False):
    """The step kernel (its name, its source): parameters _a<k> for
    ``arrays``, then seed, clock, nsteps, a capacity and a random stream per
    code object (``profile``: then the cycle counts); the bodies are in the
    code objects' kernel texts."""
    index = {id(a): k for k, a in enumerate(arrays)}
    position = {id(co): k for k, co in enumerate(codeobjs)}
    params = [f"SG_GLOBAL {c_type(a.dtype)}* _a{k}" for k, a in enumerate(arrays)]
    params += ["SG_GLOBAL const uint32_t* _sg_seed", "SG_GLOBAL int64_t* _sg_ts",
               "SG_GLOBAL double* _sg_t", "SG_GLOBAL const double* _sg_dt",
               "const int64_t _sg_nsteps"]
    params += [f"const int64_t _sg_cap{k}" for k in range(len(codeobjs))]
    # random streams are arguments: code objects made for a new run take new
    # streams, and the source (and its compiled binary) must stay the same
    params += [f"const uint32_t _sg_stream{k}" for k in range(len(codeobjs))]
    if profile:
        params.append("SG_GLOBAL int64_t* _sg_prof")

    def count(k):       # thread 0 adds the cycles since the last count
        return ("\n        if (SG_LID == 0) { const int64_t _sg_c = SG_CYCLES(); "
                f"_sg_prof[{k}] += _sg_c - _sg_c0; _sg_c0 = _sg_c; }}" if profile else "")
    local_vars = {}
    for co, suffix in sections:
        for t, n, size in co.ctx.locals.get(suffix, []):
            if local_vars.setdefault(n, (t, size)) != (t, size):
                raise ValueError(f"spikegpu: work-group array {n} declared twice "
                                 "with different types or sizes")
    calls = []
    for n, (co, suffix) in enumerate(sections):
        k = position[id(co)]
        args = [f"_a{index[id(device.arrays[var])]}" for _, var in co.params]
        args += [_field_literal(t, v) for _, t, v in co.fields]
        args += ["_sg_seed", "_sg_ts", f"_sg_stream{k}", f"_sg_cap{k}", "0", "1"]
        largs = "".join(f" SG_LOCAL_ARG({n})" for t, n, _ in co.ctx.locals.get(suffix, []))
        calls.append(f"        {co.kernel_name}_{suffix}_body({', '.join(args)}{largs});\n"
                     "        SG_BARRIER();" + count(n))
    decls = "\n".join(f"    SG_LOCAL_DECL({t}, {n}, {size})" for n, (t, size) in local_vars.items())
    body = "\n".join(calls)
    if profile:
        decls += "\n    int64_t _sg_c0 = SG_CYCLES();"
    kernel = (f"SG_STEP_KERNEL KSTEP({', '.join(params)})\n{{\n{decls}\n"
              f"    for (int64_t _sg_s = 0; _sg_s < _sg_nsteps; _sg_s++) {{\n{body}\n"
              "        if (SG_LID == 0) { _sg_ts[0] += 1; _sg_t[0] = _sg_ts[0] * _sg_dt[0]; }\n"
              f"        SG_BARRIER();{count(len(sections))}\n    }}\n}}\n")
    name = "step" + hashlib.sha1(kernel.encode()).hexdigest()[:16]
    return name, kernel.replace("KSTEP", name)
