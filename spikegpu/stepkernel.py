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

from .merged import (EVENT_POLICIES, assign_groups, body_member, dispatch, fill_table,
                     find_member, local_decls, member_of, own_groups, table_row_words,
                     unique_arrays)
from .stepplan import Barrier

#: launch policies whose kernels are correct with a single work-group (all
#: loop with grid- or group-strides)
SINGLE_GROUP_POLICIES = {"elements", "events", "group", "single", "spike_blocks", "blocks",
                         "spike_threads", "spike_flat", "bundle_blocks", "bundle_threads",
                         "bundle_flat", "sections", "dendrites"}


class StepKernel:
    def __init__(self, device, groups, clock_arrays, name, text, profile=False, grid=False,
                 pointers=False, min_blocks=1):
        self.device = device
        self.grid = grid                  # over the whole device (else one work-group)
        self.min_blocks = min_blocks      # grid form: blocks a multiprocessor holds at least
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
        self.busy = self.longest = self.phases = None   # grid form, after a profiled run
        self.table_buf = None
        self.launch_info = {}

    def build(self):
        be = self.device.backend
        codeobjs = {id(m.codeobj): m.codeobj for m in self.members if m.codeobj is not None}
        program = self.device.program(
            list(codeobjs.values()), "the fused step kernel of "
            + ", ".join(sorted({m.owner_name for m in self.members})), [self.text],
            be.fused_build_options)
        self.kernel = program.kernel(self.name)
        if self.grid:
            self.local_size = grid_local_size(self.device)
            self.coop = be.cooperative_kernel(program, self.name)
            per_cu = max(1, min(blocks_per_cu(self.device, self.min_blocks),
                                be.resident_groups(self.coop, self.local_size)))
            self.blocks = per_cu * be.compute_units
            self.launch_info = dict(blocks=self.blocks, local_size=self.local_size,
                                    min_blocks=self.min_blocks,
                                    **be.kernel_usage(self.coop))
            # the barrier's word, then groups' counts (_count_group)
            words = counts_words(self.groups)
            self.barrier_buf = be.alloc(4 * words)
            be.upload(self.barrier_buf, np.zeros(words, dtype=np.uint32))
        else:
            want = self.device.fused_local_size
            if want == "auto":
                want = CPU_FUSED_LOCAL_SIZE if getattr(be, "is_cpu", False) else be.group_size
            self.local_size = min(int(want), be.group_size, be.kernel_max_group(self.kernel))
        if self.profile_names is not None:
            # per group, then per member (busy, longest), then per group its
            # blocks' phases (grid form: PHASES)
            self.cycles = np.zeros(_phase_slot(self.groups, self.members, len(self.groups)),
                                   dtype=np.int64)
            self.cycles_buf = be.alloc(self.cycles.nbytes)
            be.upload(self.cycles_buf, self.cycles)

    def profile(self, seconds):
        """Per object name, its share of ``seconds`` (the loop's time) by the
        cycles its bodies took (the clock's tick is folded into the others)."""
        be = self.device.backend
        be.download(self.cycles_buf, self.cycles)
        be.free(self.cycles_buf)
        if self.grid:
            self.busy, self.longest = self._busy(seconds)
            self.phases = self._phases(seconds)
        counted = [(n, int(c)) for n, c in zip(self.profile_names, self.cycles) if n != "clock"]
        total = max(1, sum(c for _, c in counted))
        out = {}
        for name, c in counted:
            out[name] = out.get(name, 0.0) + seconds * c / total
        return out

    def _busy(self, seconds):
        """Per group, per kind of body, its work-groups' time, summed over
        the blocks and divided by their number (seconds of the loop): what
        the group's wall time is made of; and per group its three longest
        work-groups (microseconds, with their members' mappings)."""
        total = max(1, int(self.cycles[:len(self.groups)].sum()))
        out, longest, base, nm = [], [], len(self.groups), len(self.members)
        for g in self.groups:
            kinds = {}
            for k, m in enumerate(g):
                kind = _kind(m)
                kinds[kind] = kinds.get(kind, 0) + int(self.cycles[base + k])
            out.append({n: seconds * c / self.blocks / total for n, c in kinds.items()})
            top = sorted(range(len(g)), key=lambda k: -self.cycles[base + nm + k])[:3]
            longest.append([
                (f"{g[k].owner_name} {_kind(g[k])} x{g[k].groups} "
                 + ",".join(f"{n[4:]}={v}" for n, v in sorted(
                     (g[k].codeobj.extra if g[k].codeobj is not None else {}).items())
                     if n in ("_sg_rows", "_sg_brows", "_sg_maxrow", "_sg_bmaxrow",
                              "_sg_bwidth", "_sg_width")),
                 round(1e6 * seconds * int(self.cycles[base + nm + k]) / total, 2))
                for k in top])
            base += len(g)
        return out, longest

    def _phases(self, seconds):
        """Per group, what its blocks spend on average (seconds of the loop)
        in each of PHASES: its prologue (counting its dynamic members' work),
        its work-groups, its units, and waiting at its closing barrier for
        the last block: a long wait means unequal blocks, a short one blocks
        equally slow."""
        total = max(1, int(self.cycles[:len(self.groups)].sum()))
        at = _phase_slot(self.groups, self.members)
        ph = self.cycles[at:].reshape(len(self.groups), len(PHASES))
        return [{n: seconds * int(c) / self.blocks / total for n, c in zip(PHASES, row)}
                for row in ph]

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
                            busy_s=self.busy[k] if self.busy else None,
                            phases_s=self.phases[k] if self.phases else None,
                            longest_us=self.longest[k] if self.busy else None,
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
            ptrs = np.array(be.addresses([a.buf for a in self.arrays]), dtype=np.uint64)
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


#: the parts of a grid group that a profile times in every block, and
#: within the prologue, the time its thread 0 takes to read its count
PHASES = ("prologue", "workgroups", "units", "wait", "counts")


def _phase_slot(groups, members, k=0):
    """The profile's slot of group k's first phase: after a count per group
    and two per member (busy, longest)."""
    return len(groups) + 2 * len(members) + len(PHASES) * k


def blocks_per_cu(device, min_blocks):
    """The grid form's blocks a compute unit: what the device asks for, at
    least what the launch bounds were written for (the launch takes fewer
    where fewer are resident)."""
    return max(device.grid_blocks_per_cu, min_blocks)


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


def _kind(member):
    return "clock" if member.codeobj is None else \
        f"{member.codeobj.template_name}_{member.body.rsplit('_', 2)[-2]}"


def _group_label(k, members):
    """A profiled group's name: its object's, or for a merged group its
    kinds of body, e.g. '[3] synapses_run x64, poissoninput x8'."""
    if len(members) == 1:
        return members[0].owner_name
    kinds = {}
    for m in members:
        kinds[_kind(m)] = kinds.get(_kind(m), 0) + 1
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
    groups = member_groups(device, entries)
    members = [m for g in groups for m in g]
    n_arrays = len(unique_arrays(members))
    # arrays as arguments, or (when they would not fit) their addresses in a buffer
    pointers = 8 * (n_arrays + 6) > be.max_param_bytes
    if pointers and not be.supports_pointer_table:
        return None         # too many arguments for one kernel on this device
    if grid:
        if device.grid_threshold_lookback:
            groups = _lookback_thresholds(device, groups)
        L = grid_local_size(device)
        for k, g in enumerate(groups):
            assign_groups(device, g, L)
            if device.grid_dynamic_runs != "0":
                groups[k] = _mark_dynamic(g, L, device.grid_run_passes,
                                          device.grid_dynamic_runs, device.grid_unit_width)
    min_blocks = _min_blocks(device, groups) if grid else 1
    name, text = _kernel_text(groups, profile, grid, pointers, min_blocks,
                              blocks_per_cu(device, min_blocks) * be.compute_units)
    return StepKernel(device, groups, clock_arrays, name, text, profile, grid, pointers,
                      min_blocks)


#: grid_min_blocks 'auto': blocks a multiprocessor holds where a group of the
#: step has more work-groups over neurons (not over events: those share a
#: budget of the device, `merged.assign_groups`) than two a multiprocessor
#: (measured on the H200, side by side in one process: the microcircuit
#: 0.56-0.61 against 0.62-0.64 (64 Synapses), 0.31-0.34 against 0.36 (8);
#: Brunel-Hakim 1e5 25.0 against 27.5 us a step, COBAHH 1e5 37.7-38.5
#: against 41.3-41.5); smaller steps keep one (COBAHH 1e4: 32.1 against
#: 23.4 us with three: its state update spills at 80 registers; Brunel-
#: Hakim 1e4 the same)
MIN_BLOCKS_LARGE = 3


def _lookback_thresholds(device, groups):
    """The grid form: a large group's threshold (its 'blocks' compaction in
    group k, its 'merge' in a later group j) compacts and writes the
    eventspace in group k by a look-back (threshold.mako, 'lookback'),
    and its published counts are cleared in the group after k (the step's
    first group if k is its last); a group left empty goes.  Only where
    nothing else in groups k..j-1 touches the eventspace (the look-back
    writes it earlier than the merge did) and each of its work-groups
    takes one block (the look-back waits only on lower work-groups)."""
    for k in range(len(groups)):
        for m in list(groups[k]):
            co = m.codeobj
            if co is None or not co.extra.get("_sg_multiblock") or \
                    not m.body.endswith("_blocks_body"):
                continue
            merge = [(j, x) for j in range(k + 1, len(groups)) for x in groups[j]
                     if x.codeobj is co and x.body.endswith("_merge_body")]
            if len(merge) != 1:
                continue
            j, mm = merge[0]
            espace = device.arrays[co.eventspace_var]
            if any(x is not m and any(a is espace for a in x.arrays)
                   for g in groups[k:j] for x in g):
                continue
            look = body_member(device, co, "lookback", m.policy, m.owner_name)
            if own_groups(device, look, grid_local_size(device)) != co.extra["_sg_nblocks"]:
                continue
            # the clear's group: the next that is not k and keeps a member
            later = [(k + d) % len(groups) for d in range(1, len(groups))]
            later = [c for c in later if c != j or len(groups[j]) > 1]
            if not later:
                continue        # the step would be this group alone
            c = later[0]
            clear = body_member(device, co, "clear", "single", m.owner_name)
            groups = [list(g) for g in groups]
            groups[k] = sorted([x for x in groups[k] if x is not m] + [look],
                               key=lambda x: x.body)
            groups[j] = [x for x in groups[j] if x is not mm]
            groups[c] = sorted(groups[c] + [clear], key=lambda x: x.body)
            return _lookback_thresholds(device, [g for g in groups if g])   # the next one
    return groups


def _min_blocks(device, groups):
    if device.grid_min_blocks != "auto":
        return int(device.grid_min_blocks)
    most = max([sum(m.groups for m in g if m.policy not in EVENT_POLICIES)
                for g in groups] + [0])
    return MIN_BLOCKS_LARGE if most > 2 * device.backend.compute_units else 1


def member_groups(device, entries):
    """The members of each launch group of a step plan, ordered by body."""
    return [sorted((member_of(device, s) for s in e.sections), key=lambda m: m.body)
            for e in entries]


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


#: bundle policies -> work-groups of L threads for n bundles, as
#: ceil(n * num / den) (the templates' mappings: synapses.mako, `rows`)
def _bundle_cost(member, L):
    kw = member.codeobj.extra
    if member.policy == "bundle_flat":      # a thread per (bundle, item < longest)
        return max(1, kw["_sg_bmaxrow"]), L
    if member.policy == "bundle_blocks":    # L // width bundles at once
        return 1, max(1, L // max(1, min(L, kw["_sg_bwidth"])))
    return 1, L                             # a thread per bundle


#: 'auto': dynamic deliveries where a launch group has at most this many
#: (measured on the H200's microcircuit, 0.3 s runs: 8 Synapses, each a
#: work-group per bundle, 0.44-0.45 -> 0.39-0.40 RTF; 64 Synapses, 16 of
#: them a work-group per bundle, 0.69 -> 0.78, all 64 dynamic 0.68-0.70 ->
#: 0.72-0.90: many small pathways pay more for their work-groups' chains
#: than their balance gains)
DYNAMIC_AUTO_MAX = 8
#: 'units': only where a launch group has at least this many short-bundle
#: deliveries to put in one list (measured with the microcircuit's 47: see
#: `_mark_dynamic`; one pathway, e.g. Brunel-Hakim's, keeps its mapping)
UNITS_MIN = 2


def _mark_dynamic(g, L, passes, which="auto", width="auto"):
    """The grid form sizes a queue's delivery by the bundles of its slot of
    now (known when the step starts: its pushes came in earlier steps),
    not by its share of the synapses: a pathway of few synapses from a
    population firing fast otherwise gets a work-group or two that loop
    over its slot while the rest of the device waits at the barrier (the
    microcircuit: one work-group of an L5E pathway took up to ~50 us of
    a ~45 us-average group).  Marks those members ``dynamic`` (their
    work-groups counted in the kernel, ``passes`` passes of the mapping
    each) and puts them last (at most L of them).  ``which``: '1' all
    deliveries, 'auto' see DYNAMIC_AUTO_MAX, 'units' those of long bundles
    (a work-group per bundle) and the others by *units*: the bundles of
    all their slots of now in one list, a unit of ``width`` consecutive
    threads per bundle (the body ``<kernel>_bundle_body``), the units of
    all blocks striding over the list with no work-group barrier between
    them, so that many small pathways cost what one pathway with their
    bundles costs (where there are at least UNITS_MIN of them)."""
    policies = ("bundle_blocks",) if which in ("auto", "units") else \
        ("bundle_flat", "bundle_blocks", "bundle_threads")
    cand = _delivery_candidates(g, policies)
    if which in ("auto", "units") and len(cand) > DYNAMIC_AUTO_MAX:
        cand = []
    units = _delivery_candidates(g, ("bundle_flat", "bundle_threads")) \
        if which == "units" else []
    if len(units) < UNITS_MIN:
        units = []
    cand, units = cand[:L], units[:max(0, L - len(cand))]
    for m in cand + units:
        co = m.codeobj
        # a work-group-mapped member: its work-groups of ``passes`` passes
        # each; a unit member: its bundles, one a unit
        num, den = _bundle_cost(m, L) if m in cand else (1, 1)
        params = [var for _, var in co.params]
        m.dynamic = (params.index(co.variables["_sg_qcount"]),
                     params.index(co.variables["_sg_qhead"]), num,
                     den * passes if m in cand else den)
        m.groups = 0
    if units:
        if width == "auto":     # about the mean bundle, weighted by synapses
            w = [(m.codeobj.extra["_sg_bwidth"], m.codeobj.extra.get("_sg_nsyn", 1))
                 for m in units]
            mean = sum(a * b for a, b in w) / max(1, sum(b for _, b in w))
            width = 2 ** int(np.round(np.log2(max(1.0, mean))))
        for m in units:
            m.unit = int(min(32, max(4, int(width))))
            m.body = m.body[:-len("_run_body")] + "_bundle_body"
    return [m for m in g if m.dynamic is None] + cand + units


def _delivery_candidates(g, policies):
    return [m for m in g if m.codeobj is not None and m.policy in policies
            and not m.codeobj.serial and "_sg_qcount" in m.codeobj.variables
            and not m.codeobj.extra.get("_sg_dendritic")]


def _dynamic_prologue(g, arg, indent="        ", counts_at=None):
    """Code that counts the work-groups of the group's dynamic members
    (thread j: member j's ceil(bundles * num / den)) into _sg_dn and their
    exclusive prefix sum into _sg_dp (a scan over the work-group).  A
    switch picks thread j's counters (case j), the loads follow it, the
    same instructions in all threads.  (Measured on the microcircuit's 64
    members: ~7 us with the loads in the cases, in all threads after it,
    or with the counters' addresses from the table: the three dependent
    loads are the cost, which `_count_group` takes off the group's path.)
    ``counts_at``: profile slot of thread 0's time to its count."""
    dyn = [m for m in g if m.dynamic]
    nd = len(dyn)
    cases = []
    for j, m in enumerate(dyn):
        qc, qh, num, den = m.dynamic
        cases.append(f"{indent}    case {j}: _qc = {arg(m.arrays[qc])}; "
                     f"_qh = {arg(m.arrays[qh])}; _num = {num}; _den = {den}; break;")
    pick = (f"{indent}    SG_GLOBAL const int32_t *_qc = 0, *_qh = 0;\n"
            f"{indent}    int64_t _num = 0, _den = 1;\n"
            f"{indent}    switch (SG_LID) {{\n" + "\n".join(cases) + "\n"
            f"{indent}    default: break;\n"
            f"{indent}    }}\n")
    return (f"{indent}if (SG_LID < {nd}) {{\n"
            f"{pick}"
            f"{indent}    const int64_t _c = ((int64_t)_qc[_qh[0]] * _num + _den - 1) / _den;\n"
            f"{indent}    _sg_dn[SG_LID] = (int32_t)_c; _sg_dp[SG_LID + 1] = (int32_t)_c;\n"
            + (f"{indent}    if (SG_LID == 0) SG_PROF_ADD(&_sg_prof[{counts_at}], "
               f"SG_CYCLES() - _sg_t0);\n" if counts_at is not None else "") +
            f"{indent}}}\n"
            f"{indent}if (SG_LID == 0) _sg_dp[0] = 0;\n"
            f"{indent}SG_BARRIER_LOCAL();\n"
            f"{indent}for (int32_t _o = 1; _o < {nd}; _o <<= 1) {{\n"
            f"{indent}    const int32_t _x = SG_LID < {nd} && SG_LID >= _o ? _sg_dp[SG_LID + 1 - _o] : 0;\n"
            f"{indent}    SG_BARRIER_LOCAL();\n"
            f"{indent}    if (SG_LID < {nd}) _sg_dp[SG_LID + 1] += _x;\n"
            f"{indent}    SG_BARRIER_LOCAL();\n"
            f"{indent}}}\n"), nd


def _unit_loop(g, nw, nd, arg, busy_start="", busy_end=""):
    """The grid form's loop over the bundles of the group's unit members
    (the last, dynamic members nw..nd-1 of the prologue's scan _sg_dp,
    `_mark_dynamic`): unit _u of every block's SG_LSIZE / width takes the
    _u-th bundle of their list.  ``busy_start``/``busy_end``: profile code
    around the block's whole loop (attributed to the first unit member)."""
    w = g[-1].unit
    first = len(g) - (nd - nw)
    return (f"        {{\n"
            f"{busy_start}"
            f"        const int32_t _upb = SG_LSIZE / {w};\n"
            f"        if (SG_LID < _upb * {w})\n"     # whole units only
            f"        for (int32_t _u = _sg_dp[{nw}] + SG_RAW_GROUP * _upb + SG_LID / {w}; "
            f"_u < _sg_dp[{nd}]; _u += SG_RAW_NGROUPS * _upb) {{\n"
            f"{find_member(nd - nw, '_u', ' ' * 12, '_m', f'_sg_dp[{nw} + _mid]')}\n"
            f"            SG_GLOBAL const int64_t *_row = _tab + (int64_t)({first} + _m) * _W;\n"
            f"            const int32_t _grp = _u - _sg_dp[{nw} + _m], _ng = {w};\n"
            f"{dispatch(g[first:], arg, indent='            ')}\n"
            f"        }}\n"
            f"{busy_end}"
            f"        }}\n")


#: work-items of the one-work-group step kernel on a CPU device: PoCL runs
#: a work-group's items in a loop between barriers, each of the step's
#: barrier-separated phases paying for all of them; with 8 (measured side by
#: side, README) Brunel-Hakim 1,000 takes 37-42 us a step instead of 94-100,
#: LIF 1,000 5.0 instead of 18.7 (1 crashes PoCL's compiler)
CPU_FUSED_LOCAL_SIZE = 8

#: the dynamic members' counts (_sg_dp, then _sg_dn, per group) start this
#: many words into the barrier's buffer (after the grid barrier's word)
COUNTS0 = 32


def _counts_size(g):
    """Words of a group's counts: _sg_dp (its dynamic members + 1), _sg_dn."""
    nd = sum(1 for m in g if m.dynamic)
    return 2 * nd + 1 if nd else 0


def counts_words(groups):
    """Words of the barrier's buffer: the barrier's, then the counts."""
    return COUNTS0 + sum(_counts_size(g) for g in groups)


def _count_group(groups, k, blocks=None):
    """An earlier group of the step that can count group k's dynamic
    members' work (`_dynamic_prologue`) for it, or None: one whose members
    and those after it up to k leave the members' queue counters alone.
    Its last block counts: of those groups, the one of most work-groups
    below ``blocks`` (the last block idle in a long group), else the one
    of fewest.  Every block of group k then reads the counts (two
    contiguous loads) instead of reading each member's queue (3 dependent
    loads into 2x64 scattered small arrays for the microcircuit: 6 of its
    ~7 us prologue, README)."""
    queues = {id(m.arrays[i]) for m in groups[k] if m.dynamic for i in m.dynamic[:2]}
    ok = []
    for e in range(k - 1, -1, -1):
        if any(id(a) in queues for m in groups[e] for a in m.arrays):
            break
        ok.append(e)
    size = {e: sum(m.groups for m in groups[e]) for e in ok}
    idle = [e for e in ok if blocks is not None and size[e] < blocks]
    if idle:
        return max(idle, key=lambda e: (size[e], -e))
    return min(ok, key=lambda e: (size[e], e)) if ok else None


def _counted_in(prologue, nd, at):
    """Code for an earlier group: its last block counts (``prologue``) and
    stores _sg_dp and _sg_dn at word ``at`` of the barrier's buffer; the
    grid barrier after that group publishes them."""
    return (f"        if (SG_RAW_GROUP == SG_RAW_NGROUPS - 1) {{\n"
            f"        SG_BARRIER_LOCAL();\n"      # its units may still read _sg_dp
            f"{prologue}"
            f"        SG_GLOBAL int32_t *_pre = (SG_GLOBAL int32_t *)_sg_bar + {at};\n"
            f"        if (SG_LID <= {nd}) _pre[SG_LID] = _sg_dp[SG_LID];\n"
            f"        if (SG_LID < {nd}) _pre[{nd + 1} + SG_LID] = _sg_dn[SG_LID];\n"
            f"        }}\n")


def _counted_read(nd, at):
    return (f"        {{\n"
            f"        SG_GLOBAL const int32_t *_pre = (SG_GLOBAL const int32_t *)_sg_bar + {at};\n"
            f"        if (SG_LID <= {nd}) _sg_dp[SG_LID] = _pre[SG_LID];\n"
            f"        if (SG_LID < {nd}) _sg_dn[SG_LID] = _pre[{nd + 1} + SG_LID];\n"
            f"        SG_BARRIER_LOCAL();\n"
            f"        }}\n")


def _phase_stamps(at):
    """Profile code for a grid group's PHASES (cycles summed over the
    blocks into _sg_prof[at..]): a stamp at its start, then one closing each
    phase."""
    out = ["        const int64_t _sg_t0 = SG_CYCLES();\n"]
    for j in range(4):
        prev = "_sg_t0" if j == 0 else f"_sg_t{j}"
        out.append(f"        const int64_t _sg_t{j + 1} = SG_CYCLES();\n"
                   f"        if (SG_LID == 0) SG_PROF_ADD(&_sg_prof[{at + j}], _sg_t{j + 1} - {prev});\n")
    return out


def _kernel_text(groups, profile=False, grid=False, pointers=False, min_blocks=1,
                 n_blocks=None):
    """The step kernel (its name, its source): parameters _a<k> for the
    members' arrays (``pointers``: one buffer of their addresses), the
    table, the RNG key, the clock's timestep (the random numbers' counter),
    the number of steps (``profile``: then the cycle counts per group);
    the grid form's blocks per multiprocessor (``min_blocks``, CUDA) and
    about how many blocks it will have (``n_blocks``)."""
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
    # grid form: each member's work-groups' cycles too (its busy time, summed
    # over the blocks), after the groups' counts
    busy_start = "            const int64_t _sg_w0 = SG_CYCLES();\n" if profile else ""

    def busy_end(base, m="_m"):     # and its longest work-group
        nm = len(members)
        return (f"            if (SG_LID == 0) {{ const int64_t _sg_w = SG_CYCLES() - _sg_w0; "
                f"SG_PROF_ADD(&_sg_prof[{len(groups) + base} + {m}], _sg_w); "
                f"SG_PROF_MAX(&_sg_prof[{len(groups) + nm + base} + {m}], _sg_w); }}\n"
                if profile else "")
    if pointers:
        arg = lambda a: f"((SG_GLOBAL {types[id(a)]}*)_sg_ptr[{index[id(a)]}])"  # noqa: E731
    else:
        arg = lambda a: f"_a{index[id(a)]}"      # noqa: E731
    blocks = []
    base = 0
    ndyn = 0
    pre_at = COUNTS0    # the groups' counts in the barrier's buffer
    counted = {}        # group -> code counting a later group's dynamic members
    for k, g in enumerate(groups):
        if grid:        # the group's work-groups spread over the blocks
            last = f"(int64_t)({base + len(g) - 1}) * _W"
            at = _phase_slot(groups, members, k)
            prologue, nd = "", 0
            if any(m.dynamic for m in g):
                e = _count_group(groups, k, n_blocks)
                prologue, nd = _dynamic_prologue(
                    g, arg, counts_at=at + 4 if profile and e is None else None)
                if e is not None:   # counted in group e, read here
                    counted[e] = counted.get(e, "") + _counted_in(prologue, nd, pre_at)
                    prologue = _counted_read(nd, pre_at)
                pre_at += _counts_size(g)
            ndyn = max(ndyn, nd)
            nu = sum(1 for m in g if m.unit)
            nw = nd - nu        # dynamic by work-groups, then by units
            if nw:      # work-groups _tot.. are theirs
                find = (f"            int32_t _m, _grp, _ng;\n"
                        f"            if (_v < _tot) {{\n"
                        f"                _m = (int32_t)_vm[_v];\n"
                        f"                _grp = _v - (int32_t)_tab[(int64_t)_m * _W];\n"
                        f"                _ng = (int32_t)_tab[(int64_t)_m * _W + 1];\n"
                        f"            }} else {{\n"
                        f"                const int32_t _d = _v - _tot;\n"
                        f"{find_member(nw, '_d', ' ' * 16, '_j', '_sg_dp[_mid]')}\n"
                        f"                _m = {len(g) - nd} + _j; _grp = _d - _sg_dp[_j]; _ng = _sg_dn[_j];\n"
                        f"            }}\n"
                        f"            SG_GLOBAL const int64_t *_row = _tab + (int64_t)_m * _W;\n")
                end = f"_tot + _sg_dp[{nw}]"
            else:
                find = (f"            const int32_t _m = (int32_t)_vm[_v];\n"
                        f"            SG_GLOBAL const int64_t *_row = _tab + (int64_t)_m * _W;\n"
                        f"            const int32_t _grp = _v - (int32_t)_row[0], _ng = (int32_t)_row[1];\n")
                end = "_tot"
            wg = g[:len(g) - nu]
            units = _unit_loop(g, nw, nd, arg, busy_start,
                               busy_end(base, f"{len(g) - nu}")) if nu else ""
            stamp = _phase_stamps(at) if profile else [""] * 5
            blocks.append(
                f"        {{\n"
                f"{stamp[0]}"
                f"{prologue}"
                f"{stamp[1]}"
                f"        SG_GLOBAL const int64_t *_tab = _sg_tab + (int64_t){base} * _W;\n"
                f"        const int32_t _tot = (int32_t)(_sg_tab[{last}] + _sg_tab[{last} + 1]);\n"
                f"        SG_GLOBAL const int64_t *_vm = _sg_tab + _sg_tab[{len(members)} * _W + {k}];\n"
                f"        for (int32_t _v = SG_RAW_GROUP; _v < {end}; _v += SG_RAW_NGROUPS) {{\n"
                f"{find}"
                f"{busy_start}"
                f"{dispatch(wg, arg, indent='            ')}\n"
                f"            SG_BARRIER_LOCAL();\n"
                f"{busy_end(base)}"
                f"        }}\n"
                f"{stamp[2]}"
                f"{units}"
                f"COUNTED{k}\n"
                f"{stamp[3]}"
                f"        sg_grid_sync(_sg_bar);\n"
                f"{stamp[4]}"
                f"        }}{count(k)}")
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
    if grid:
        blocks = [b.replace(f"COUNTED{k}\n", counted.get(k, "")) for k, b in enumerate(blocks)]
    decls = local_decls(members)
    if ndyn:
        decls += (f"\n    SG_LOCAL_DECL(int32_t, _sg_dn, {ndyn}) SG_SHARED(int32_t, _sg_dn, {ndyn});"
                  f"\n    SG_LOCAL_DECL(int32_t, _sg_dp, {ndyn + 1}) "
                  f"SG_SHARED(int32_t, _sg_dp, {ndyn + 1});")
    if profile:
        decls += "\n    int64_t _sg_c0 = SG_CYCLES();"
    kernel = (f"#define SG_GRID_MINB {int(min_blocks)}\n" if grid else "") + (
              f"{'SG_GRID_KERNEL' if grid else 'SG_STEP_KERNEL'} KSTEP({', '.join(params)})\n"
              f"{{\n{decls}\n"
              f"    const int64_t _W = {W};\n"
              f"    for (int64_t _sg_s = 0; _sg_s < _sg_nsteps; _sg_s++) {{\n"
              + "\n".join(blocks) + "\n    }\n}\n")
    name = "step" + hashlib.sha1(kernel.encode()).hexdigest()[:16]
    return name, kernel.replace("KSTEP", name)
