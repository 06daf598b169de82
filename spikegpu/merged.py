"""Merged launches: one kernel runs the bodies of several objects (a group
of the step plan, `stepplan.py`), as GeNN's merged groups do.

Each object of a group is a *member*: a call of one body function
(templates write a kernel as ``<kernel>_<suffix>_body``; the clock tick is
``_sg_tick_body`` in the prelude) with its arrays, its fields (per-object
numbers: `codeobject.Fields`) and its part of the grid.  A merged kernel
takes every array of its members once (``_a0``, ``_a1``, ...), a *table*
(a row of int64 words per member: first work-group, number of work-groups,
random stream, capacity, then the fields; floats as their bits) and the
RNG key and counter.  A work-group finds its member by a binary search over
the rows, selects the member's arrays by a switch over the member index
and calls the member's body with its part of the grid.  Members that call
one body share that call, so a kernel's code grows with the number of
distinct bodies, not of objects.  OpenCL 1.2 has no pointers in buffers,
so arrays are selected from kernel arguments on both backends (a group
whose arguments exceed the device's parameter space is launched in parts).

The fused step kernels (`stepkernel.py`) call the same dispatch code.
"""
import hashlib

import numpy as np

from .generator import c_type

#: table row: first work-group, work-groups, stream, capacity, fields
ROW_HEADER = 4
#: policies whose work-group count follows the events of the step (rows of
#: spikes, bundles of a queue slot): their share of a merged launch is
#: sized by synapses, not each the whole device
EVENT_POLICIES = ("spike_blocks", "spike_threads", "spike_flat", "bundle_blocks",
                  "bundle_threads", "bundle_flat")


class Member:
    """One body call of a merged launch."""

    def __init__(self, body, arrays, ptypes, fields, local_arrays=(), codeobj=None,
                 policy="single", standard=True, owner_name="clock"):
        self.body = body                    # body function name
        self.arrays = arrays                # DeviceArrays, in parameter order
        self.ptypes = ptypes                # their C element types
        self.fields = fields                # [(name, C type, value)]
        self.locals = list(local_arrays)    # [(type, name, size)] work-group arrays
        self.codeobj = codeobj
        self.policy = policy
        self.standard = standard            # takes seed, step, stream, capacity
        self.owner_name = owner_name
        self.groups = 1                     # work-groups of a merged launch
        self.dynamic = None                 # grid form: counted per step (stepkernel)
        self.unit = None                    # grid form: threads per bundle (stepkernel)

    @property
    def stream(self):
        return self.codeobj.stream_id if self.codeobj is not None else 0

    @property
    def capacity(self):
        return self.codeobj.capacity if self.codeobj is not None else 0


def member_of(device, section):
    """The member for a `stepplan.Section`."""
    co = section.codeobj
    if co is None:      # the clock's tick
        from .clocks import arrays, is_event_clock
        body = "_sg_tick_event_body" if is_event_clock(section.clock) else "_sg_tick_body"
        return Member(body, arrays(device, section.clock), ["int64_t", "double", "double"], [],
                      standard=False)
    return body_member(device, co, section.suffix, section.policy, section.name)


def body_member(device, co, suffix, policy, owner_name):
    """The member calling code object ``co``'s body ``suffix``."""
    return Member(f"{co.kernel_name}_{suffix}_body",
                  [device.arrays[var] for _, var in co.params],
                  [c_type(var.dtype) for _, var in co.params], list(co.fields),
                  co.ctx.locals.get(suffix, []), codeobj=co, policy=policy,
                  owner_name=owner_name)


def own_groups(device, member, L):
    """Work-groups of size L the member would take on its own."""
    co, policy = member.codeobj, member.policy
    if co is None or policy in ("single", "group") or (
            co.serial and policy in ("elements", "events")):
        return 1
    gs, ls = device.launch_size(co, policy)
    if policy in ("blocks", "spike_blocks", "bundle_blocks"):
        return max(1, gs // ls)          # a work-group per block/row
    return max(1, -(-gs // L))


def assign_groups(device, members, L):
    """Each member's work-groups in a merged launch: its own count, except
    that members driven by the step's events share a budget of the device
    (`GPUDevice.event_groups_per_cu` work-groups per compute unit) in proportion to their synapses."""
    budget = device.event_groups_per_cu * max(1, device.backend.compute_units)
    event = [m for m in members if m.policy in EVENT_POLICIES and not m.codeobj.serial]
    for m in members:
        m.groups = own_groups(device, m, L)
    if len(event) > 1 and sum(m.groups for m in event) > budget:
        weight = [max(1, int(m.codeobj.extra.get("_sg_nsyn", 1))) for m in event]
        total = sum(weight)
        for m, w in zip(event, weight):
            m.groups = max(1, min(m.groups, round(budget * w / total)))


def field_load(ctype, word):
    if ctype == "double":
        return f"SG_AS_DOUBLE({word})"
    if ctype == "float":
        return f"(float)SG_AS_DOUBLE({word})"
    return f"({ctype})({word})"


def table_row_words(members):
    return ROW_HEADER + max([len(m.fields) for m in members] + [0])


def fill_table(members, first_group=None, width=None):
    """The table of ``members`` (int64, a row each, ``width`` words or as
    many as they need); ``first_group``: the first work-group of each
    member (default: consecutive by `groups`)."""
    W = width or table_row_words(members)
    tab = np.zeros((len(members), W), dtype=np.int64)
    start = 0
    for k, m in enumerate(members):
        tab[k, 0] = start if first_group is None else first_group[k]
        tab[k, 1] = m.groups
        tab[k, 2] = m.stream
        tab[k, 3] = m.capacity
        for j, (_, ctype, value) in enumerate(m.fields):
            if ctype in ("double", "float"):
                tab[k, ROW_HEADER + j] = np.array(float(value), dtype=np.float64).view(np.int64)
            else:
                tab[k, ROW_HEADER + j] = int(value)
        start += m.groups
    return tab


def dispatch(members, arg_name, indent="    "):
    """Code that calls member ``_m``'s body (``_row``: its table row,
    ``_grp``/``_ng``: its part of the grid; ``arg_name(array)``: the
    kernel argument holding an array).  Members come in runs of one body."""
    out = []
    k = 0
    first = True
    while k < len(members):
        j = k
        while j < len(members) and members[j].body == members[k].body:
            j += 1
        run = members[k:j]
        m0 = run[0]
        out.append(f"{indent}{'if' if first else 'else if'} (_m < {j}) {{")
        args, decls, cases = [], [], {}
        for p, ptype in enumerate(m0.ptypes):
            names = [arg_name(m.arrays[p]) for m in run]
            if len(set(names)) == 1:
                args.append(names[0])
                continue
            q = f"_q{p}"
            decls.append(f"{indent}    SG_GLOBAL {ptype}* {q} = {names[0]};")
            for i, n in enumerate(names):
                cases.setdefault(k + i, []).append(f"{q} = {n};")
            args.append(q)
        out += decls
        if cases:
            out.append(f"{indent}    switch (_m) {{")
            for i in sorted(cases):
                out.append(f"{indent}    case {i}: {' '.join(cases[i])} break;")
            out.append(f"{indent}    default: break;")
            out.append(f"{indent}    }}")
        args += [field_load(t, f"_row[{ROW_HEADER + i}]") for i, (_, t, _) in enumerate(m0.fields)]
        if m0.standard:
            args += ["_sg_seed", "_sg_step", "(uint32_t)_row[2]", "_row[3]"]
        args += ["_grp", "_ng"]
        largs = "".join(f" SG_LOCAL_ARG({n})" for _, n, _ in m0.locals)
        out.append(f"{indent}    {m0.body}({', '.join(args)}{largs});")
        out.append(f"{indent}}}")
        first = False
        k = j
    return "\n".join(out)


def find_member(n, g, indent="    ", var="_m", first="_tab[(int64_t)_mid * _W]"):
    """Code setting ``var`` to the member whose work-groups hold ``g``: the
    last of ``n`` whose first work-group (``first``, an expression of
    ``_mid``; default: word 0 of its row of ``_tab``) is at most ``g``."""
    return (f"{indent}int32_t {var} = 0;\n"
            f"{indent}for (int32_t _hi = {n - 1}; {var} < _hi; ) {{\n"
            f"{indent}    const int32_t _mid = ({var} + _hi + 1) / 2;\n"
            f"{indent}    if ({first} <= {g}) {var} = _mid; else _hi = _mid - 1;\n"
            f"{indent}}}")


def local_decls(members, indent="    "):
    """Work-group arrays of all members, declared once (OpenCL: at kernel
    scope; CUDA declares them in the bodies)."""
    seen = {}
    for m in members:
        for t, n, size in m.locals:
            if seen.setdefault(n, (t, size)) != (t, size):
                raise ValueError(f"spikegpu: work-group array {n} declared twice with "
                                 "different types or sizes")
    return "\n".join(f"{indent}SG_LOCAL_DECL({t}, {n}, {size})" for n, (t, size) in seen.items())


def unique_arrays(members):
    seen = {}
    for m in members:
        for a, t in zip(m.arrays, m.ptypes):
            seen.setdefault(id(a), (a, t))
    return list(seen.values())


class MergedKernel:
    """The kernel of one merged launch (members ordered by body)."""

    def __init__(self, members):
        self.members = members
        self.arrays = unique_arrays(members)
        index = {id(a): k for k, (a, _) in enumerate(self.arrays)}
        W = table_row_words(members)
        params = [f"SG_GLOBAL {t}* _a{k}" for k, (_, t) in enumerate(self.arrays)]
        params += ["SG_GLOBAL const int64_t* _sg_tab", "SG_GLOBAL const uint32_t* _sg_seed",
                   "SG_GLOBAL const int64_t* _sg_step"]
        text = (f"SG_KERNEL KMERGED({', '.join(params)})\n{{\n"
                f"{local_decls(members)}\n"
                f"    SG_GLOBAL const int64_t *_tab = _sg_tab;\n"
                f"    const int64_t _W = {W};\n"
                f"    const int32_t _g = SG_RAW_GROUP;\n"
                f"{find_member(len(members), '_g')}\n"
                f"    SG_GLOBAL const int64_t *_row = _tab + (int64_t)_m * _W;\n"
                f"    const int32_t _grp = _g - (int32_t)_row[0], _ng = (int32_t)_row[1];\n"
                f"{dispatch(members, lambda a: f'_a{index[id(a)]}')}\n}}\n")
        self.name = "m" + hashlib.sha1(text.encode()).hexdigest()[:16]
        self.text = text.replace("KMERGED", self.name)

    def param_bytes(self):
        return 8 * (len(self.arrays) + 3)
