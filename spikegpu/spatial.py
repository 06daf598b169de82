"""SpatialNeuron on the device: the data of Brian2's ``spatialstateupdate``
code object (the cable equation), kept on the device; the kernels are in
``templates/spatialstateupdate.mako``.

Brian2's scheme (``brian2/spatialneuron/spatialneuron.py`` and its C++
template) for one time step of a neuron with N compartments in S sections:

1. per compartment: the total membrane conductance and the current at v = 0
   (``_gtot``, ``_I0``) from the channel states, which the NeuronGroup's own
   state updater has moved on earlier in the step;
2. per section: the implicit Euler step of the cable equation is a
   tridiagonal system; it is solved three times (the Thomas algorithm, one
   factorisation): for the section with its ends held at 0 V (``_v_star``)
   and for a unit voltage at its start or at its end (``_u_minus``,
   ``_u_plus``);
3. the coupling system: one unknown per branch point (node 0: the start of
   the root section; node s + 1: the end of section s), one equation per
   node (no current is lost there).  Its matrix has the tree's shape; Brian2
   eliminates the nodes from the leaves to the root, then substitutes back;
4. per compartment: ``v = v_star + V(start) * u_minus + V(end) * u_plus``,
   and the capacitive current ``Ic``.

How this maps to the GPU (and why):

- steps 1 and 4 are parallel over compartments;
- step 2 is parallel over sections, a thread per section (the loads of a
  row are issued before the previous row is stored; the diagonal and the
  right-hand side come ready from step 1).  Long sections are cut into
  *virtual sections* of nearly equal length (at most ``MAX_CHUNK``
  compartments; by default `choose_chunk` picks the length from the
  morphology): a cut between two compartments is one more branch point
  with one child.  Eliminating that node's voltage gives back exactly the
  axial conductance between the two compartments (the series conductance
  of the two half compartments, Brian2's ``_invr``), so the result is the
  same up to rounding, while the serial work of a thread is bounded (one
  1,000-compartment cable: 16 threads of 63 compartments instead of one
  thread of 1,000).  Cuts lengthen the tree of step 3, so sections of a
  few dozen compartments stay whole;
- step 3 runs in one work-group, a level of the tree at a time (nodes of
  equal depth in parallel, a barrier between levels): the elimination goes
  from the deepest level to the root, every node pulling the rows of its
  children (already final) into its own, in Brian2's order of children, so
  no two threads write one row and the arithmetic is Brian2's, operation
  for operation; substitution goes from the root down.  The serial depth is
  the depth of the tree (a binary tree of 2,047 sections: 12 levels), not
  the number of sections (Brian2's C++ loops over them on one thread).

Small neurons (N <= ``GROUP_MAX`` x the device's work-group size) run the
whole step in one work-group ('group' mode, one kernel; many such neurons
can share one merged launch, a work-group each); larger ones run four
kernels ('multi' mode: currents over compartments, solves over sections,
the coupling in one work-group, the combination over compartments).  A
'prepare' kernel (Brian2's ``before_code``: axial conductances and the
constant part of the matrix) runs at the start of every run.

The morphology's structure (virtual sections, their parent nodes, the
children of each node, the nodes by level) is computed once per neuron on
the host from Brian2's ``_starts``, ``_ends`` and ``_morph_parent_i`` and
uploaded; it is kept (with the node scratch arrays) for later runs.
"""
import weakref

import numpy as np
from brian2.core.preferences import prefs
from brian2.core.variables import ArrayVariable

#: the longest virtual section (compartments a thread solves serially):
#: "auto" (`choose_chunk`), None (Brian2's sections as they are) or a number
MAX_CHUNK = "auto"
#: `choose_chunk`'s cost of a tree level (elimination and substitution)
#: against a compartment of the serial solve (forward and backward): ~3
#: dependent memory round trips and a barrier against ~1
LEVEL_COST = 3
#: the virtual section lengths `choose_chunk` tries
CHUNKS = (None, 128, 64, 32, 16, 8)
#: 'group' mode for neurons of at most GROUP_MAX x work-group size
#: compartments
GROUP_MAX = 2
#: force a mode ('group' or 'multi'); None: by size (tests set this)
FORCE_MODE = None

#: template keyword -> launches (see codeobject.LAUNCHES for the policies;
#: 'sections': grid-stride over the virtual sections)
LAUNCHES = {
    "group": {"before_run": [("prepare", "elements")],
              "run": [("step", "group")]},
    "multi": {"before_run": [("prepare", "elements")],
              "run": [("currents", "elements"), ("solve", "sections"),
                      ("couple", "group"), ("combine", "elements")]},
}


#: for the step plan: what the step's kernels write and only read besides
#: what the abstract code does (arrays named nowhere count as written, and
#: every neuron's kernels read the clock's dt: as written, no two neurons'
#: steps could share a launch)
TEMPLATE_WRITES = ("v", "Ic", "_v_previous", "_c", "_v_star", "_u_plus", "_u_minus",
                   "_sg_sp_diag", "_sg_sp_pdiag", "_sg_sp_ppar", "_sg_sp_b")
TEMPLATE_READS = ("dt", "Cm", "area", "r_length_1", "r_length_2", "Ri", "_invr",
                  "_ab_star0", "_ab_star1", "_ab_star2", "_starts", "_ends",
                  "_morph_parent_i", "_sg_sp_invr0", "_sg_sp_invrn", "_sg_sp_bound",
                  "_sg_sp_pnode", "_sg_sp_vsec", "_sg_sp_cstart", "_sg_sp_child",
                  "_sg_sp_lnode", "_sg_sp_lstart")


def spatial_launches(kw):
    return LAUNCHES[kw["_sg_sp_mode"]]


class Structure:
    """A neuron's virtual sections and coupling tree (host arrays)."""

    def __init__(self, starts, ends, parent, max_chunk=None):
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        parent = np.asarray(parent, dtype=np.int64)
        nsec = len(starts)
        if nsec == 0 or starts[0] != 0 or np.any(starts[1:] != ends[:-1]) \
                or np.any(ends <= starts):
            raise ValueError("spikegpu: a SpatialNeuron's sections must be "
                             "contiguous, in order and not empty")
        self.N = int(ends[-1])
        bound, pnode = [], []
        last_vs = np.zeros(nsec, dtype=np.int64)   # a section's last virtual section
        for s in range(nsec):
            n = int(ends[s] - starts[s])
            k = 1 if not max_chunk else -(-n // int(max_chunk))
            edges = starts[s] + (np.arange(k + 1) * n) // k
            for c in range(k):
                v = len(pnode)
                if c > 0:
                    pnode.append(v)                 # the end of the chunk before
                elif parent[s] == 0:
                    if s != 0:
                        raise ValueError("spikegpu: a SpatialNeuron's morphology "
                                         "has more than one root section")
                    pnode.append(0)
                else:
                    p = int(parent[s]) - 1
                    if not 0 <= p < s:
                        raise ValueError("spikegpu: a section's parent must come "
                                         "before it")
                    pnode.append(int(last_vs[p]) + 1)
                bound.append(int(edges[c]))
            last_vs[s] = len(pnode) - 1
        bound.append(self.N)
        self.nvs = nvs = len(pnode)
        self.nnodes = nvs + 1
        self.bound = np.asarray(bound, dtype=np.int32)
        self.pnode = np.asarray(pnode, dtype=np.int32)
        self.vsec = np.repeat(np.arange(nvs, dtype=np.int32), np.diff(self.bound))
        # children (virtual sections) of every node, in ascending order
        order = np.argsort(self.pnode, kind="stable")
        self.child = order.astype(np.int32)
        self.cstart = np.searchsorted(self.pnode[order], np.arange(self.nnodes + 1),
                                      side="left").astype(np.int32)
        depth = np.zeros(self.nnodes, dtype=np.int64)
        for v in range(nvs):
            depth[v + 1] = depth[self.pnode[v]] + 1
        self.nlevels = int(depth.max()) + 1
        lorder = np.argsort(depth, kind="stable")
        self.lnode = lorder.astype(np.int32)
        self.lstart = np.searchsorted(depth[lorder], np.arange(self.nlevels + 1),
                                      side="left").astype(np.int32)
        self.max_len = int(np.diff(self.bound).max())

    def int_arrays(self):
        return {"_sg_sp_bound": self.bound, "_sg_sp_pnode": self.pnode,
                "_sg_sp_vsec": self.vsec, "_sg_sp_cstart": self.cstart,
                "_sg_sp_child": self.child, "_sg_sp_lnode": self.lnode,
                "_sg_sp_lstart": self.lstart}

    def float_sizes(self):
        return {"_sg_sp_diag": self.N, "_sg_sp_invr0": self.nvs, "_sg_sp_invrn": self.nvs,
                "_sg_sp_ppar": self.nvs, "_sg_sp_pdiag": self.nnodes,
                "_sg_sp_b": self.nnodes}


def choose_chunk(starts, ends, parent):
    """The longest virtual section for a morphology: the one of `CHUNKS`
    that minimises the serial work of a step, 2 x the longest virtual
    section (the tridiagonal solve's two sweeps) + 2 x LEVEL_COST x the
    tree's levels (elimination and substitution).  Cutting halves the first
    and lengthens the tree (a cable of 1,000 compartments: 64; a binary
    tree of 2,046 sections of 49: no cut)."""
    best, best_cost = None, None
    for chunk in CHUNKS:
        st = Structure(starts, ends, parent, chunk)
        cost = 2 * st.max_len + 2 * LEVEL_COST * st.nlevels
        if best_cost is None or cost < best_cost:
            best, best_cost = chunk, cost
    return best


#: Brian2's ``_starts`` variable of a neuron -> (settings, Structure,
#: {name: ArrayVariable}); kept while the neuron lives
_cache = weakref.WeakKeyDictionary()


def prepare_spatial(device, owner, variables, kw, accesses):
    """The device arrays of the structure of ``owner`` (a SpatialNeuron)
    for its spatialstateupdate code object; sets the template keywords in
    ``kw`` and adds to ``accesses`` (the generator's, for the step plan)
    what the template writes and reads.  Returns {name: ArrayVariable} to add to
    the code object's variables."""
    for name in TEMPLATE_WRITES:
        accesses[name] = "w"
    for name in TEMPLATE_READS:
        accesses.setdefault(name, "r")
    key = variables["_starts"]
    settings = (MAX_CHUNK,)
    entry = _cache.get(key)
    if entry is None or entry[0] != settings or \
            any(v not in device.arrays for v in entry[2].values()):
        starts = np.array(device.get_value(variables["_starts"]))
        ends = np.array(device.get_value(variables["_ends"]))
        parent = np.array(device.get_value(variables["_morph_parent_i"]))
        chunk = choose_chunk(starts, ends, parent) if MAX_CHUNK == "auto" else MAX_CHUNK
        st = Structure(starts, ends, parent, chunk)
        arrays = {}
        real = np.dtype(prefs["core.default_float_dtype"])
        for name, value in st.int_arrays().items():
            v = ArrayVariable(name=name, owner=owner, size=value.size, device=device,
                              dtype=np.int32, read_only=True)
            device.add_array(v)
            device.fill_with_array(v, value)
            arrays[name] = v
        for name, size in st.float_sizes().items():
            v = ArrayVariable(name=name, owner=owner, size=size, device=device,
                              dtype=real, read_only=True)
            device.add_array(v)
            arrays[name] = v
        entry = (settings, st, arrays)
        _cache[key] = entry
    st = entry[1]
    if st.N != int(device._scalar_value(variables["N"])):
        raise ValueError("spikegpu: the morphology does not match the neuron's size")
    mode = FORCE_MODE or ("group" if st.N <= GROUP_MAX * device.backend.group_size
                          else "multi")
    kw.update(_sg_sp_mode=mode, _sg_sp_nvs=st.nvs, _sg_sp_nlevels=st.nlevels)
    return dict(entry[2])
