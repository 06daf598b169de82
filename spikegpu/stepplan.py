"""The plan of a time step: between Brian2's schedule and the launches.

Brian2 runs a step as its objects' code in schedule order.  The plan keeps
that order where it matters and merges the rest: every kernel of the step
(a *section*: a code object's kernel, or a clock's tick) is placed in the
first launch group after the last group holding a section it depends on,
so that all sections that can run together (neuron state updates,
PoissonInputs, pathways' pushes and deliveries, monitors of one slot and
beyond) share one launch (`merged.py` writes its kernel), as GeNN's merged
groups do.

Two sections depend on each other when they touch one array and not both
only read it nor both only add to it atomically (``+=``/``-=`` onto pre/post
variables: additions commute), and, for arrays indexed through a
subgroup's indices, their ranges overlap (PoissonInputs on disjoint
populations of one group merge).  What a section touches comes from the
generator (`GPUCodeGenerator.accesses`: 'r', 'w' or 'a' per variable) and
the template: the eventspace is written by the threshold and read by every
other template, clocks only by their tick; a pathway's 'push' and 'advance' touch only its
propagation arrays (and read the eventspace); every other array a kernel
uses counts as written.  A `network_operation` is a barrier: nothing moves
across it.  One exception by elements: a heterogeneous-delay pathway
whose delays are all at least a step pushes and delivers in one group (its
push writes only slots ahead of the one its run and apply read).
"""
import os

from brian2.core.clocks import Clock
from brian2.core.operations import NetworkOperation

from .codeobject import launches

READ, WRITE, ATOMIC = "r", "w", "a"
#: a pathway's push and delivery share a group when its delays allow
#: (SPIKEGPU_MERGE_PUSH_RUN=0: never, for measurements)
MERGE_PUSH_RUN = os.environ.get("SPIKEGPU_MERGE_PUSH_RUN", "1") != "0"


class Section:
    """One kernel of the step: ``codeobj``'s kernel ``suffix`` launched with
    ``policy`` (``codeobj`` None: the clock's tick), with what it touches:
    ``accesses`` {id(DeviceArray): (mode, lo, hi)}."""

    def __init__(self, obj, clock, codeobj, suffix, policy, accesses):
        self.obj, self.clock, self.codeobj = obj, clock, codeobj
        self.suffix, self.policy, self.accesses = suffix, policy, accesses

    @property
    def name(self):
        return self.obj.name if self.obj is not None else "clock"

    def conflicts(self, other):
        if MERGE_PUSH_RUN and self.codeobj is not None and self.codeobj is other.codeobj and \
                self.suffix != other.suffix and \
                {self.suffix, other.suffix} <= {"push", "apply", "run"} and \
                self.codeobj.extra.get("_sg_mindelay", 0) >= 1:
            # a queue's push fills slots at least a step ahead, its run
            # and apply read the slot of now (queue and dendritic buffer):
            # they touch different elements
            return False
        mine, theirs = self.accesses, other.accesses
        if len(theirs) < len(mine):
            mine, theirs = theirs, mine
        for key, (m1, lo1, hi1) in mine.items():
            t = theirs.get(key)
            if t is None:
                continue
            m2, lo2, hi2 = t
            if m1 == m2 and m1 in (READ, ATOMIC):
                continue
            if lo1 < hi2 and lo2 < hi1:
                return True
        return False

    def __repr__(self):
        return f"Section({self.name}, {self.suffix})"


class Group:
    """Sections of one clock that run as one launch (in any order)."""

    def __init__(self, clock, sections):
        self.clock = clock
        self.sections = list(sections)

    def __repr__(self):
        return f"Group({self.sections})"


class Barrier:
    """A network_operation: Python code between launches."""

    def __init__(self, obj):
        self.obj = obj
        self.clock = obj.clock


def _accesses(device, codeobj, suffix, clock):
    """What one kernel of ``codeobj`` touches: {id(DeviceArray): (mode, lo, hi)}."""
    out = {}

    def add(var, mode, lo=0, hi=None):
        a = device.arrays[var]
        key = id(a)
        hi = a.size if hi is None else hi
        old = out.get(key)
        if old is not None:
            mode = old[0] if old[0] == mode else WRITE
            lo, hi = min(lo, old[1]), max(hi, old[2])
        out[key] = (mode, lo, hi)

    names = {}
    for name, var in codeobj.variables.items():
        names.setdefault(id(var), []).append(name)
    evar = codeobj.eventspace_var
    only_structure = codeobj.template_name == "synapses" and suffix in ("push", "advance")
    for _, var in codeobj.params:
        vnames = names.get(id(var), [])
        if var is evar:
            add(var, WRITE if codeobj.template_name == "threshold" else READ)
            continue
        if isinstance(var.owner, Clock):    # only the tick writes a clock
            add(var, READ)
            continue
        if only_structure:
            if any(n in codeobj.structure for n in vnames):
                add(var, WRITE)
            continue
        modes = {codeobj.code_access.get(n, WRITE) for n in vnames} or {WRITE}
        mode = modes.pop() if len(modes) == 1 else WRITE
        if codeobj.template_name == "threshold" and \
                {"not_refractory", "lastspike"} & set(vnames):
            mode = WRITE    # written by the template, not the abstract code
        lo, hi = 0, None
        for n in vnames:
            index = codeobj.variable_indices.get(n)
            ivar = codeobj.variables.get(index) if isinstance(index, str) else None
            if ivar is not None and ivar in device.arrays:
                start = device.arrays[ivar].arange
                if start is not None:       # a subgroup's neurons
                    lo, hi = start, start + device.arrays[ivar].size
        add(var, mode, lo, hi)
    if codeobj.ctx.uses_rng and not only_structure:
        add(clock.variables["timestep"], READ)       # the random numbers' counter
    return out


def _tick_accesses(device, clock):
    from .clocks import arrays
    out = {}
    for a, mode in zip(arrays(device, clock), (WRITE, WRITE, READ)):
        out[id(a)] = (mode, 0, a.size)
    return out


def sections_of(device, objects, clocks):
    """The step's sections and barriers in schedule order, then a tick per
    clock."""
    out = []
    for obj in objects:
        if isinstance(obj, NetworkOperation):
            out.append(Barrier(obj))
            continue
        for co in obj._code_objects:
            for suffix, policy in launches(co).get("run", []):
                out.append(Section(obj, obj.clock, co, suffix, policy,
                                   _accesses(device, co, suffix, obj.clock)))
    for clock in clocks:
        out.append(Section(None, clock, None, "tick", "single", _tick_accesses(device, clock)))
    return out


def plan_step(device, objects, clocks, merge=True):
    """The step as a list of `Group`s and `Barrier`s, in launch order.
    ``merge`` False: a group per section, in schedule order (profiling per
    object)."""
    entries = []
    floor = 0       # nothing moves before the last barrier
    for sec in sections_of(device, objects, clocks):
        if isinstance(sec, Barrier):
            entries.append(sec)
            floor = len(entries)
            continue
        if not merge:
            entries.append(Group(sec.clock, [sec]))
            continue
        after = floor
        for k in range(len(entries) - 1, floor - 1, -1):
            if any(sec.conflicts(other) for other in entries[k].sections):
                after = k + 1
                break
        for k in range(after, len(entries)):
            if entries[k].clock is sec.clock:
                entries[k].sections.append(sec)
                break
        else:
            entries.append(Group(sec.clock, [sec]))
    return entries
