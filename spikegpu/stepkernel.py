"""The fused step kernel: whole time steps of a small network in one kernel.

For small networks a step costs what its launches cost (~1-3 us each even
inside a CUDA graph, ~9 us from Python), not what its arithmetic costs.  When
every kernel of the step can run in one work-group, one kernel runs
``nsteps`` steps: each step runs the step plan's groups (`stepplan.py`) in
order, separated by work-group barriers; a group's members (`merged.py`)
one after the other, each over its whole grid (the one work-group), with
the same dispatch code as a merged launch.  The clock's tick is the last
group's member.  Results are bitwise those of separate kernels: the same
bodies, the same random streams (keyed by the clock's timestep on the
device).

On CUDA a second form runs the same groups over the whole device
(``grid``): a block per multiprocessor (or as many as fit), launched
cooperatively so that all are resident; a group's work-groups are spread
over the blocks as in a merged launch (the same table and dispatch), and
a grid-wide barrier (``sg_grid_sync``) separates the groups.  Medium and
large networks then pay a barrier per group instead of a launch.

``plan()`` decides whether a run can use it; `runloop.py` launches it once per
block of steps (the blocks that monitors' buffers are sized for).

With ``run(..., profile=True)`` on a backend with a cycle counter (CUDA), the
kernel also adds up the cycles of every group (a section each when
profiling) until its barrier: `Network.profiling_info` then splits the
loop's time by object without a host wait per object, which would measure
launches, not kernels.
"""
import hashlib

import numpy as np

from .merged import (assign_groups, dispatch, fill_table, local_decls,
                     member_of, table_row_words, unique_arrays)
from .stepplan import Barrier

#: launch policies whose kernels are correct with a single work-group (all
#: loop with grid- or group-strides)
SINGLE_GROUP_POLICIES = {"elements", "events", "group", "single", "spike_blocks", "blocks",
                         "spike_threads", "spike_flat", "bundle_blocks", "bundle_threads",
                         "bundle_flat", "sections", "dendrites"}


class StepKernel:
    def __init__(self, device, groups, clock_arrays, name, text, profile=False, grid=False,
                 pointers=False):
        self.device = device
        self.grid = grid                  # over the whole device (else one work-group)
        self.pointers = pointers          # arrays' addresses in a buffer (else arguments)
        self.pointer_buf = None
        self.groups = groups              # [[Member]] in step order
        self.members = [m for g in groups for m in g]
        self.arrays = [a for a, _ in unique_arrays(self.members)]
        self.clock_arrays = clock_arrays  # timestep, t, dt DeviceArrays
        self.name, self.text = name, text
        self.profile_names = [_group_label(k, g) for k, g in enumerate(groups)] \
            if profile else None
        self.kernel = None
        self.local_size = None
        self.table_buf = None

    def build(self):
        be = self.device.backend
        codeobjs = {id(m.codeobj): m.codeobj for m in self.members if m.codeobj is not None}
        program = self.device.program(
            list(codeobjs.values()), "the fused step kernel of "
            + ", ".join(sorted({m.owner_name for m in self.members})), [self.text])
        self.kernel = program.kernel(self.name)
        if self.grid:
            self.local_size = grid_local_size(self.device)
            self.coop = be.cooperative_kernel(program, self.name)
            per_cu = max(1, min(self.device.grid_blocks_per_cu,
                                be.resident_groups(self.coop, self.local_size)))
            self.blocks = per_cu * be.compute_units
            self.barrier_buf = be.alloc(8)
            be.upload(self.barrier_buf, np.zeros(2, dtype=np.uint32))
        else:
            self.local_size = min(be.group_size, be.kernel_max_group(self.kernel))
        if self.profile_names is not None:
            self.cycles = np.zeros(len(self.groups), dtype=np.int64)
            self.cycles_buf = be.alloc(self.cycles.nbytes)
            be.upload(self.cycles_buf, self.cycles)

    def profile(self, seconds):
        """Per object name, its share of ``seconds`` (the loop's time) by the
        cycles its bodies took (the clock's tick is folded into the others)."""
        be = self.device.backend
        be.download(self.cycles_buf, self.cycles)
        be.free(self.cycles_buf)
        counted = [(n, int(c)) for n, c in zip(self.profile_names, self.cycles) if n != "clock"]
        total = max(1, sum(c for _, c in counted))
        out = {}
        for name, c in counted:
            out[name] = out.get(name, 0.0) + seconds * c / total
        return out

    def describe(self):
        """Per group: its label, members and work-groups, and its pathways'
        propagation (mode, mappings, longest rows, slot capacity):
        benchmarks print it."""
        out = []
        for k, g in enumerate(self.groups):
            paths = {}
            for m in g:
                kw = m.codeobj.extra if m.codeobj is not None else {}
                if "_sg_mode" in kw:
                    key = (kw["_sg_mode"], kw.get("_sg_rows"), kw.get("_sg_brows"))
                    p = paths.setdefault(key, dict(n=0, maxrow=0, bmaxrow=0, cap=0, nsyn=0))
                    p["n"] += 1
                    p["maxrow"] = max(p["maxrow"], kw.get("_sg_maxrow", 0))
                    p["bmaxrow"] = max(p["bmaxrow"], kw.get("_sg_bmaxrow", 0))
                    p["cap"] = max(p["cap"], kw.get("_sg_cap", 0))
                    p["nsyn"] += kw.get("_sg_nsyn", 0)
            out.append(dict(label=_group_label(k, g), members=len(g),
                            groups=sum(m.groups for m in g),
                            pathways={"/".join(map(str, key)): v for key, v in paths.items()}))
        return out

    def args(self):
        """Arguments for the current buffers and capacities (they change when
        monitors grow)."""
        dev = self.device
        be = dev.backend
        seed_buf, _ = dev.random.buffers()
        if self.grid:       # consecutive work-groups within each group
            W = table_row_words(self.members)
            tab = np.concatenate([fill_table(g, width=W) for g in self.groups]).ravel()
            tab = np.concatenate([tab, grid_member_map(self.groups, tab.size)])
        else:
            tab = fill_table(self.members, first_group=[0] * len(self.members))
        if self.table_buf is not None:
            be.free(self.table_buf)
        self.table_buf = be.alloc(tab.nbytes)
        be.upload(self.table_buf, tab)
        for a in self.arrays:
            a.ensure_device(be)
        if self.pointers:
            ptrs = np.array([be.address(a.buf) for a in self.arrays], dtype=np.uint64)
            if self.pointer_buf is not None:
                be.free(self.pointer_buf)
            self.pointer_buf = be.alloc(ptrs.nbytes)
            be.upload(self.pointer_buf, ptrs)
            out = [self.pointer_buf]
        else:
            out = [a.buf for a in self.arrays]
        out += [self.table_buf, seed_buf, self.clock_arrays[0].buf, np.int64(0)]
        if self.grid:
            out.append(self.barrier_buf)
        if self.profile_names is not None:
            out.append(self.cycles_buf)
        return out

    def launch(self, args, nsteps):
        args = list(args)       # backends may keep the list they last set
        # after the arrays (or their pointer buffer), table, seed, step
        args[(1 if self.pointers else len(self.arrays)) + 3] = np.int64(nsteps)
        be = self.device.backend
        if self.grid:
            be.launch_cooperative(self.coop, self.blocks, self.local_size, args)
        else:
            be.launch(self.kernel, self.local_size, self.local_size, args)


def grid_local_size(device):
    return max(32, min(device.backend.max_work_group, device.grid_local_size))


def grid_member_map(groups, start):
    """The grid form's map from a group's work-groups to its members (one
    load instead of a binary search over the table's rows, on a path that
    every work-group of every group walks): a word per group with the
    offset of its map (words from the table's start, which is ``start``
    words before this part), then per group the member of each work-
    group."""
    maps = [np.repeat(np.arange(len(g), dtype=np.int64),
                      [m.groups for m in g]) for g in groups]
    offsets = start + len(groups) + np.cumsum([0] + [len(x) for x in maps[:-1]])
    return np.concatenate([np.asarray(offsets, dtype=np.int64)] + maps)


def _group_label(k, members):
    """A profiled group's name: its object's, or for a merged group its
    kinds of body, e.g. '[3] synapses_run x64, poissoninput x8'."""
    if len(members) == 1:
        return members[0].owner_name
    kinds = {}
    for m in members:
        kind = "clock" if m.codeobj is None else \
            f"{m.codeobj.template_name}_{m.body.rsplit('_', 2)[-2]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return f"[{k}] " + ", ".join(f"{n} x{c}" for n, c in sorted(kinds.items()))


def plan(device, entries, clock_arrays, profile=False):
    """A StepKernel for a step plan of one clock (``clock_arrays``), or None
    when the step cannot or should not be fused (``profile``: with cycle
    counts per group, None where the backend cannot count)."""
    mode = device.fuse
    be = device.backend
    if mode is False or (profile and not be.has_cycle_counter):
        return None
    if mode == "grid" and not be.supports_grid_sync:
        return None
    if any(isinstance(e, Barrier) for e in entries):
        return None
    sections = [s for e in entries for s in e.sections]
    if any(s.policy not in SINGLE_GROUP_POLICIES for s in sections):
        return None
    if not any(s.codeobj is not None for s in sections):
        return None
    grid = mode == "grid"
    if mode == "auto":
        # a CPU device: the fused kernel is faster per step (PoCL, README), but
        # PoCL takes ~40 s to build it: not worth it unless asked for
        if getattr(be, "is_cpu", False):
            return None
        if not _small(device, sections):
            if not (be.supports_grid_sync and device.fuse_grid_auto):
                return None
            grid = True
    groups = [sorted((member_of(device, s) for s in e.sections), key=lambda m: m.body)
              for e in entries]
    members = [m for g in groups for m in g]
    n_arrays = len(unique_arrays(members))
    # arrays as arguments, or (when they would not fit) their addresses in a buffer
    pointers = 8 * (n_arrays + 6) > be.max_param_bytes
    if pointers and not be.supports_pointer_table:
        return None         # too many arguments for one kernel on this device
    if grid:
        for g in groups:
            assign_groups(device, g, grid_local_size(device))
    name, text = _kernel_text(groups, profile, grid, pointers)
    return StepKernel(device, groups, clock_arrays, name, text, profile, grid, pointers)


def _small(device, sections):
    """Auto rule: one work-group is fast enough when the step has at most
    one SpatialNeuron, no kernel of the step
    loops over more than `fuse_max_neurons` neurons or events, and no
    synapse-wide kernel (pathways, summed variables, synaptic state
    updates) over more than `fuse_max_synapses` synapses (a step's synaptic
    events are a small fraction of them)."""
    from brian2.synapses.synapses import Synapses, SynapticPathway
    # SpatialNeurons: one work-group would solve their cables one after the
    # other (a neuron's solve is a chain of dependent steps), the grid form
    # side by side
    if sum(1 for s in sections if s.codeobj is not None
           and s.codeobj.template_name == "spatialstateupdate") > 1:
        return False
    for sec in sections:
        co, policy = sec.codeobj, sec.policy
        if co is None:
            continue
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


def _kernel_text(groups, profile=False, grid=False, pointers=False):
    """The step kernel (its name, its source): parameters _a<k> for the
    members' arrays (``pointers``: one buffer of their addresses), the
    table, the RNG key, the clock's timestep (the random numbers' counter),
    the number of steps (``profile``: then the cycle counts per group)."""
    members = [m for g in groups for m in g]
    arrays = unique_arrays(members)
    index = {id(a): k for k, (a, _) in enumerate(arrays)}
    types = {id(a): t for a, t in arrays}
    W = table_row_words(members)
    params = ["SG_GLOBAL const uint64_t* _sg_ptr"] if pointers else \
        [f"SG_GLOBAL {t}* _a{k}" for k, (_, t) in enumerate(arrays)]
    params += ["SG_GLOBAL const int64_t* _sg_tab", "SG_GLOBAL const uint32_t* _sg_seed",
               "SG_GLOBAL const int64_t* _sg_step", "const int64_t _sg_nsteps"]
    if grid:
        params.append("SG_GLOBAL unsigned int* _sg_bar")
    if profile:
        params.append("SG_GLOBAL int64_t* _sg_prof")

    def count(k):       # thread 0 (of block 0) adds the cycles since the last count
        first = "SG_LID == 0 && SG_RAW_GROUP == 0" if grid else "SG_LID == 0"
        return (f"\n        if ({first}) {{ const int64_t _sg_c = SG_CYCLES(); "
                f"_sg_prof[{k}] += _sg_c - _sg_c0; _sg_c0 = _sg_c; }}" if profile else "")
    if pointers:
        arg = lambda a: f"((SG_GLOBAL {types[id(a)]}*)_sg_ptr[{index[id(a)]}])"  # noqa: E731
    else:
        arg = lambda a: f"_a{index[id(a)]}"      # noqa: E731
    blocks = []
    base = 0
    for k, g in enumerate(groups):
        if grid:        # the group's work-groups spread over the blocks
            last = f"(int64_t)({base + len(g) - 1}) * _W"
            blocks.append(
                f"        {{\n"
                f"        SG_GLOBAL const int64_t *_tab = _sg_tab + (int64_t){base} * _W;\n"
                f"        const int32_t _tot = (int32_t)(_sg_tab[{last}] + _sg_tab[{last} + 1]);\n"
                f"        SG_GLOBAL const int64_t *_vm = _sg_tab + _sg_tab[{len(members)} * _W + {k}];\n"
                f"        for (int32_t _v = SG_RAW_GROUP; _v < _tot; _v += SG_RAW_NGROUPS) {{\n"
                f"            const int32_t _m = (int32_t)_vm[_v];\n"
                f"            SG_GLOBAL const int64_t *_row = _tab + (int64_t)_m * _W;\n"
                f"            const int32_t _grp = _v - (int32_t)_row[0], _ng = (int32_t)_row[1];\n"
                f"{dispatch(g, arg, indent='            ')}\n"
                f"            SG_BARRIER_LOCAL();\n"
                f"        }}\n"
                f"        }}\n"
                f"        sg_grid_sync(_sg_bar);{count(k)}")
        else:           # one work-group: each member over its whole grid
            blocks.append(
                f"        for (int32_t _m = 0; _m < {len(g)}; _m++) {{\n"
                f"            SG_GLOBAL const int64_t *_row = _sg_tab + (int64_t)({base} + _m) * _W;\n"
                f"            const int32_t _grp = 0, _ng = 1;\n"
                f"{dispatch(g, arg, indent='            ')}\n"
                f"            SG_BARRIER_LOCAL();\n"
                f"        }}\n"
                f"        SG_BARRIER();{count(k)}")
        base += len(g)
    decls = local_decls(members)
    if profile:
        decls += "\n    int64_t _sg_c0 = SG_CYCLES();"
    kernel = (f"{'SG_GRID_KERNEL' if grid else 'SG_STEP_KERNEL'} KSTEP({', '.join(params)})\n"
              f"{{\n{decls}\n"
              f"    const int64_t _W = {W};\n"
              f"    for (int64_t _sg_s = 0; _sg_s < _sg_nsteps; _sg_s++) {{\n"
              + "\n".join(blocks) + "\n    }\n}\n")
    name = "step" + hashlib.sha1(kernel.encode()).hexdigest()[:16]
    return name, kernel.replace("KSTEP", name)
