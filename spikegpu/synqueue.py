"""Spike propagation of synaptic pathways: what Brian2 calls the spike
queue, prepared when a run starts (`prepare_queue`, called for the
pathway's code object, which Brian2 creates anew for every run), built and
kept on the device.

The pathway's synapses are sorted by (source, delay, synapse index) into
CSR rows: `_sg_rowstart` (per source neuron of the whole source group, +1)
and `_sg_rowsyn` (synapse indices); in a row, synapses of one delay are in
ascending synapse order, as in Brian2.  Kernels build them
(`csrbuild.py`: a stable radix sort of (source, delay steps) keys from the
synapse order); synapses that are in that order already (``on_pre`` with
one delay) need no sort and have no `_sg_rowsyn` (CSR position k is
synapse k, template keyword `_sg_identity`).  Then one of two structures:

`SpikeRing`, when all synapses of the pathway share one delay of d steps:
  no synapse is queued.  A ring of D = d + 1 slots, each holding a list of
  source spikes (R = stop - start indices, then their count):
  `_sg_ring`, `_sg_rhead`.  The pathway kernel (templates/synapses.mako)
  copies this step's events of the source range into the slot of now and
  applies the code to the rows of the events in the slot of now - d
  (d = 0: straight from the eventspace, no ring); 'advance' moves the head.
  Memory: D * (R + 1) ints.

`SynapseQueue`, for heterogeneous delays: a queue of (source, delay)
  bundles.  A bundle is a maximal run of one delay in a CSR row: bundle b
  covers CSR positions `_sg_bstart`[b] .. `_sg_bstart`[b + 1] and has the
  delay `_sg_bdelay`[b]; the bundles of source s are `_sg_rowbundle`[s] ..
  `_sg_rowbundle`[s + 1].  A ring of Q = max delay + 1 slots of bundle
  indices (`_sg_queue`, `_sg_qcount`, `_sg_qhead`): 'push' appends each
  bundle of this step's events to slot now + its delay (work per spike:
  its number of distinct delays, not its synapses), 'run' applies the
  code to the synapses of the bundles in the slot of now, 'advance'
  clears it and moves the head.  A source puts at most one bundle (one
  per delay) into a slot, so a slot holds at most n_bundles entries.
  Entry p of slot s is at p * Q + s (position-major, `GPUDevice.
  queue_interleave`): a step's few entries of all slots lie on a few pages,
  not on a page of each slot (s * n_bundles + p), which for many large
  pathways kept the GPU's address translation missing.
  Events in flight carried over from another structure (lists of synapse
  indices, not necessarily whole bundles) extend the position array
  (`_sg_rowsyn` beyond the CSR) and get extra bundles (of at most
  max(WARP, longest bundle) synapses) placed first in their slot; the
  slots' capacity grows by the most extra bundles of one slot.
  Memory: Q * (n_bundles + extra) + 2 * n_bundles + N_syn ints (Brunel-like
  rows of 1000 synapses over 41 delays: ~41 bundles a row, 1/24 of the
  Q * N_syn ints that a queue of synapses needs).

Rows (the ring's 'run': rows of events; the queue's 'push': the bundles of
rows of events; the queue's 'run': the positions of the bundles of a slot)
are mapped to threads per pathway (`choose_rows`, template keywords
`_sg_rows` and, for the queue's run, `_sg_brows`): 'group' (a work-group
per row, threads over its items), 'thread' (a thread per row looping over
its items; rows longer than a warp are left to a work-group pass of the
same kernel), 'flat' (a thread per row and item up to the longest row), or
'serial' (one thread) when the code must run serially: then rows are taken
in order and the queue is filled without atomics, so synapses are applied
in Brian2's order (push time, then source, then synapse index: a slot's
bundles are in push order, then source order, and a bundle's positions
ascend).

A structure is kept across runs (with the spikes in flight) while the
number of synapses, the delays (in steps), dt and the source range stay
the same: one kernel pass gives the range of delay steps and a 64-bit
checksum of every synapse's (index, source, steps), compared with the last
run's, so that no per-synapse data is read back.  Otherwise it is rebuilt
and the events in flight are carried over with their remaining time, as
Brian2's queue does: into a new ring if they are rows of spikes that the
new delay can still deliver on time, else into a queue (a 'fallback' queue
even for homogeneous delays, tried again as a ring at the next run).  Only
then, with events in flight, are rows, bundles and queue slots read back
to the host (`pending`, `_HostRows`).

What Brian2 sees as the pathway's ``queue`` is a `PathwayQueue`
(`GPUDevice.spike_queue`): it holds the structure, gives ``store()`` the
events in flight and takes them back from ``restore()``; the next run
builds a structure for them, as for a rebuild."""
import functools
import time

import numpy as np
from brian2.core.variables import ArrayVariable

from . import csrbuild
from .csrbuild import RowStats

#: rows at least this long on average get a work-group each; shorter rows
#: get a thread each (CUDA's warp, NVIDIA's unit of coalesced access)
WARP = 32
#: rows up to this long (and shorter than WARP on average) get a thread per
#: synapse slot: a thread per row costs a row's dependent global accesses
#: in a row (Brunel-Hakim 1k's bundles of ~25 synapses: 8 of 13 us per fused
#: step on the H100, 'flat' pads at most to the longest row)
FLAT_MAX = 4 * WARP
#: tests force a mapping ('group', 'thread', 'flat'); None: by row length
FORCE_ROWS = None
#: targets per thread of a dendritic buffer's 'apply' (all loaded before
#: its first atomic add)
DEND_ITEMS = 4


def choose_rows(rows):
    """The mapping of rows to threads, from the `RowStats` (count, total
    length, longest) of the rows of the source range.  Mean >= WARP: a
    work-group per row ('group'), whose threads read the row's consecutive
    synapses together.  Shorter rows would leave most of a work-group idle:
    if no row is longer than FLAT_MAX, a thread per (event, position <
    longest row) ('flat': consecutive threads read consecutive synapses; a
    step waits for one synapse's chain of memory accesses, not a row's);
    else a thread per event ('thread'), rows longer than WARP handled by
    work-groups so that one long row does not serialise the step."""
    if FORCE_ROWS is not None:
        return FORCE_ROWS
    if not rows.count or rows.longest == 0:
        return "thread"
    if rows.total / rows.count >= WARP:
        return "group"
    if rows.longest <= FLAT_MAX:
        return "flat"
    return "thread"


def row_width(rows):
    """Threads per row of the 'group' mapping: the power of two at least the
    mean row length (rows longer than that stride), at most 1024.  A work-
    group of more threads takes several rows at once (one work-group runs
    the fused step: a row at a time would make each row of the step wait
    for the one before).  ``rows``: `RowStats`."""
    mean = rows.total / rows.count if rows.count else 1.0
    return int(min(1024, 2 ** int(np.ceil(np.log2(max(1.0, mean))))))


def _host(device, var):
    """Current host values of ``var`` (runs queued work only if it uses it)."""
    a = device._host_op(var)
    a.ensure_host()
    return a.host


class _Propagation:
    """Device arrays and template keywords of one pathway's propagation."""
    mode = None
    fallback = False
    build_s = None      # seconds prepare_queue took to build it (benchmarks)

    def __init__(self, device, pathway, layout, arrays, rows):
        """``arrays``: [(name, host array to upload, or (device buffer,
        elements) that the build filled)]; ``rows``: `RowStats` of the rows
        of events (CSR positions per source for the ring, bundles per source
        for the queue's push)."""
        self.layout = layout            # what decides whether to rebuild
        self.n_syn, self.dt, self.start, self.stop = layout[:4]
        # no _sg_rowsyn: CSR position k is synapse k
        self.identity = not any(name == "_sg_rowsyn" for name, _ in arrays)
        self.maxrow = rows.longest
        self.rows = choose_rows(rows)
        self.width = row_width(rows)
        self.variables = {}
        self.device = device
        for name, value in arrays:
            size = value.size if isinstance(value, np.ndarray) else value[1]
            # int32 (the dendritic buffer: its target's type; its counter int64)
            dtype = value.dtype if isinstance(value, np.ndarray) and \
                name in ("_sg_dbuf", "_sg_dleft") else np.dtype(np.int32)
            # owned by the pathway: kernel arguments named after it
            v = ArrayVariable(name=name, owner=pathway, size=max(1, size),
                              device=device, dtype=dtype, read_only=True)
            device.add_array(v)
            if isinstance(value, np.ndarray):
                if value.size:
                    device.fill_with_array(v, value.astype(dtype))
            else:
                device.arr(v).adopt(device.backend, value[0], size)
            self.variables[name] = v

    def matches(self, layout):
        return not self.fallback and layout == self.layout

    def template_kwds(self, serial):
        return {"_sg_mode": self.mode, "_sg_rows": "serial" if serial else self.rows,
                "_sg_start": self.start, "_sg_stop": self.stop, "_sg_maxrow": self.maxrow,
                "_sg_nrange": self.stop - self.start, "_sg_warp": WARP,
                "_sg_width": self.width, "_sg_identity": self.identity,
                "_sg_nsyn": self.n_syn}

    def _rowsyn(self):
        """The synapse of every CSR position (host copy: events in flight)."""
        return np.arange(self.n_syn, dtype=np.int32) if self.identity \
            else self._read("_sg_rowsyn")

    def _read(self, name, offset=0, count=None):
        """Device values of one of our arrays (a part of it: no full download)."""
        a = self.device.arr(self.variables[name])
        if a.host_valid:
            flat = a.host.ravel()
            return np.array(flat[offset:None if count is None else offset + count])
        count = a.size - offset if count is None else count
        out = np.empty(count, dtype=self.variables[name].dtype)
        if count:
            self.device.backend.download(a.buf, out, offset_bytes=out.itemsize * offset)
        return out


class SpikeRing(_Propagation):
    mode = "ring"

    def __init__(self, device, pathway, layout, build, spikes=()):
        d = layout[4]
        self.d, self.D = d, d + 1
        R = layout[3] - layout[2]
        self.R = R
        arrays = []
        if d > 0:
            ring = np.zeros((self.D, R + 1), dtype=np.int32)
            # events in flight: spikes of age a sit in slot (0 - a) mod D
            for age, srcs in spikes:
                ring[-age % self.D, :len(srcs)] = srcs
                ring[-age % self.D, R] = len(srcs)
            arrays = [("_sg_ring", ring.ravel()), ("_sg_rhead", np.zeros(1, dtype=np.int32))]
        rows = build.stats("rowstart", layout[2], layout[3])
        arrays = [("_sg_rowstart", build.take("rowstart"))] + arrays
        if not build.identity:
            arrays.append(("_sg_rowsyn", build.take("rowsyn")))
        super().__init__(device, pathway, layout, arrays, rows)

    @staticmethod
    def nbytes(d, R):
        """The ring and its head (the rows are built already)."""
        return 4 * ((d + 1) * (R + 1) * (d > 0) + 1)

    def template_kwds(self, serial):
        kw = super().template_kwds(serial)
        kw.update(_sg_delay=self.d, _sg_D=self.D, _sg_rcap=self.R)
        return kw

    def pending(self):
        """Events in flight: [(steps until delivery, synapse indices in order)]."""
        if self.d == 0:
            return []
        head = int(self._read("_sg_rhead")[0])
        out = []
        rowstart = rowsyn = None
        for j in range(self.d):              # spikes of the step j steps before the last
            slot = (head - 1 - j) % self.D
            row = slot * (self.R + 1)
            n = int(self._read("_sg_ring", row + self.R, 1)[0])
            if n:
                if rowstart is None:         # the rows, read only for events in flight
                    rowstart, rowsyn = self._read("_sg_rowstart"), self._rowsyn()
                srcs = self._read("_sg_ring", row, n)
                syn = np.concatenate([rowsyn[rowstart[s]:rowstart[s + 1]] for s in srcs])
                if len(syn):
                    out.append((self.d - 1 - j, syn))
        return out


class QueuePlan:
    """What a SynapseQueue adds to the bundles of a build, computed before
    allocating (its size is checked against the device's free memory):
    events in flight (synapse indices, not necessarily whole bundles) extend
    the position array, in extra bundles of at most max(WARP, longest
    bundle) positions (the run's mapping keeps its row lengths), placed
    first in their slot."""

    def __init__(self, build, start, stop, Q, events):
        self.n_syn = n_syn = build.n
        self.n_bundles = nb = build.n_bundles
        b0, b1 = (int(build.read("rowbundle", s, 1)[0]) for s in (start, stop))
        inrange = build.stats("bstart", b0, b1)
        chunk = max(WARP, build.longest("bstart", 0, nb))
        ext_syn, ext_len = [], []
        slots = [[] for _ in range(Q)]
        for r, syn in events:
            for a in range(0, len(syn), chunk):
                part = np.asarray(syn[a:a + chunk])
                slots[r].append(nb + len(ext_len))
                ext_syn.append(part)
                ext_len.append(len(part))
        self.n_extra = len(ext_len)
        # a source puts at most one bundle (one per delay) into a slot: the
        # bundles bound every slot, plus the extra bundles placed in it
        self.cap = max(1, nb + max(len(x) for x in slots))
        self.Q = Q
        self.slots = slots
        self.count = np.array([len(x) for x in slots], dtype=np.int32)
        self.ext_syn = np.concatenate(ext_syn + [np.zeros(0, dtype=np.int32)]).astype(np.int32)
        # the extra bundles end where the next begins (bstart[nb] = n_syn)
        self.ext_ends = (n_syn + np.cumsum(ext_len, dtype=np.int64)).astype(np.int32)
        # the run's rows: the bundles that pushes and the extras put in slots
        self.run_rows = RowStats(inrange.count + self.n_extra, inrange.total + sum(ext_len),
                                 max([inrange.longest] + ext_len))

    def nbytes(self):
        """Still to allocate: the queue, counts and head, and for events in
        flight, the longer positions, bstart and bdelay."""
        ext = 0
        if self.n_extra:
            ext = self.n_syn + len(self.ext_syn) + 2 * (self.n_bundles + self.n_extra) + 1
        return 4 * (self.Q * self.cap + self.Q + 1 + ext)


class SynapseQueue(_Propagation):
    mode = "queue"

    def __init__(self, device, pathway, layout, build, plan, additive=None):
        self.Q, self.cap = plan.Q, plan.cap
        self.n_bundles, self.n_extra = plan.n_bundles, plan.n_extra
        self.steps_min = layout[4]
        rows = build.stats("rowbundle", layout[2], layout[3])
        self.dendritic = additive
        dend = []
        if additive is not None:
            # the dendritic buffer: Q slots of the target range's sums
            self.prows_stats = build.stats("rowstart", layout[2], layout[3])
            dend = [("_sg_dbuf", np.zeros(self.Q * additive.n, dtype=additive.dtype)),
                    ("_sg_dleft", np.full(1, -1, dtype=np.int64))]
        if plan.n_extra:
            build.extend("rowsyn", plan.ext_syn, keep=build.n)
            build.extend("bstart", plan.ext_ends, keep=plan.n_bundles + 1)
            build.extend("bdelay", np.zeros(plan.n_extra), keep=plan.n_bundles)
        # slots are read up to their count: only the extra bundles' entries
        # need values
        be = device.backend
        self.interleaved = device.queue_interleave
        queue = be.alloc(4 * max(1, self.Q * self.cap))
        if self.interleaved:
            longest = max(len(ids) for ids in plan.slots)
            if longest:
                first = np.zeros((longest, self.Q), dtype=np.int32)
                for r, ids in enumerate(plan.slots):
                    first[:len(ids), r] = ids
                be.upload(queue, first.ravel())
        else:
            for r, ids in enumerate(plan.slots):
                if ids:
                    be.upload(queue, np.array(ids, dtype=np.int32),
                              offset_bytes=4 * r * self.cap)
        arrays = [("_sg_rowsyn", build.take("rowsyn"))] if "rowsyn" in build.buffers else []
        super().__init__(device, pathway, layout, arrays + [
                          ("_sg_rowstart", build.take("rowstart")),
                          ("_sg_rowbundle", build.take("rowbundle")),
                          ("_sg_bstart", build.take("bstart")),
                          ("_sg_bdelay", build.take("bdelay")),
                          ("_sg_queue", (queue, self.Q * self.cap)),
                          ("_sg_qcount", plan.count),
                          ("_sg_qhead", np.zeros(1, dtype=np.int32))] + dend, rows)
        if additive is not None:
            # the synapses' delays (their steps as the build rounds them)
            self.variables["_sg_sdelay"] = pathway._delays
            self.prows = choose_rows(self.prows_stats)
            self.pmaxrow = self.prows_stats.longest
            self.pwidth = row_width(self.prows_stats)
        # the run's mapping: rows = bundles in the slot of now
        self.brows = choose_rows(plan.run_rows)
        self.bmaxrow = plan.run_rows.longest
        self.bwidth = row_width(plan.run_rows)

    def template_kwds(self, serial):
        kw = super().template_kwds(serial)
        kw.update(_sg_Q=self.Q, _sg_cap=self.cap, _sg_qinter=self.interleaved,
                  _sg_brows="serial" if serial else self.brows, _sg_bmaxrow=self.bmaxrow,
                  _sg_bwidth=self.bwidth, _sg_mindelay=self.steps_min,
                  _sg_dendritic=self.dendritic is not None)
        if self.dendritic is not None:
            a = self.dendritic
            delays = self.variables["_sg_sdelay"]
            kw.update(_sg_dtarget=a.target_name, _sg_datomic=a.atomic, _sg_dctype=a.ctype,
                      _sg_dlo=a.lo, _sg_dn=a.n, _sg_dt=float(self.dt), _sg_ditems=DEND_ITEMS,
                      _sg_dstride=0 if delays.size == 1 and self.n_syn != 1 else 1,
                      _sg_prows=self.prows, _sg_pmaxrow=self.pmaxrow, _sg_pwidth=self.pwidth,
                      _sg_dreads=[var for _, var in a.reads])
        return kw

    def set_dendritic(self, steps):
        """The coming run's use of the dendritic buffer: ``steps`` of the
        run (a spike goes to the buffer while its every arrival falls within
        the run, i.e. while at least Q steps are left; later ones and the
        events in flight at a run's end go through the queue), or None: not
        at all (something writes what the code reads)."""
        value = np.array([-1 if steps is None else int(steps)], dtype=np.int64)
        self.device.fill_with_array(self.variables["_sg_dleft"], value)

    def pending(self):
        head = int(self._read("_sg_qhead")[0])
        count = self._read("_sg_qcount")
        if not count.any():
            return []
        # the bundles, read only for events in flight
        bstart, rowsyn = self._read("_sg_bstart"), self._rowsyn()
        if self.interleaved:    # position-major: the first rows hold them all
            first = self._read("_sg_queue", 0, int(count.max()) * self.Q).reshape(-1, self.Q)
        out = []
        for r in range(self.Q):
            slot = (head + r) % self.Q
            if count[slot]:
                ids = first[:count[slot], slot] if self.interleaved else \
                    self._read("_sg_queue", slot * self.cap, int(count[slot]))
                syn = np.concatenate([rowsyn[bstart[b]:bstart[b + 1]] for b in ids])
                if len(syn):
                    out.append((r, syn))
        return out


class PathwayQueue:
    """A pathway's ``queue``: its propagation structure, and the events in
    flight that ``restore()`` handed back until the next run takes them."""

    def __init__(self, device):
        self.device = device
        self.structure = None       # SpikeRing or SynapseQueue (prepare_queue)
        self.restored = None        # (dt, events) from restore()

    def prepare(self, delays, dt, sources):
        # called by Brian2 >= 2.10 before a run; the structure is built when
        # the pathway's code object is created (prepare_queue)
        pass

    def __bool__(self):
        # Brian2 >= 2.10 takes a true `pathway.queue` for its runtime C++
        # queue and asks it for a capsule
        return False

    # Brian2's protocol for store() and restore()
    def _full_state(self):
        if self.restored is not None:
            dt, events = self.restored
        elif self.structure is None:
            return None
        else:
            dt, events = self.structure.dt, self.structure.pending()
        return {"spikegpu_events": [(int(r), np.array(syn, dtype=np.int32))
                                    for r, syn in events], "dt": dt}

    def _restore_from_full_state(self, state):
        if state is None:       # stored before the first run: nothing in flight
            self.restored = (None, [])
        elif isinstance(state, dict) and "spikegpu_events" in state:
            self.restored = (state["dt"], [(int(r), np.asarray(syn, dtype=np.int32))
                                           for r, syn in state["spikegpu_events"]])
        else:
            raise ValueError("gpu_standalone: the stored spike queue was not stored by "
                             "gpu_standalone (states of another device cannot be "
                             "restored)")


class _HostRows:
    """Host copies of the pathway's sources and of a build's rows, read from
    the device when first used (only for events in flight)."""

    def __init__(self, device, pathway, build):
        self.device, self.pathway, self.build = device, pathway, build

    @functools.cached_property
    def sources(self):
        return np.asarray(_host(self.device, self.pathway.synapse_sources),
                          dtype=np.int64).ravel()

    @functools.cached_property
    def rowstart(self):
        return self.build.read("rowstart")

    @functools.cached_property
    def rowsyn(self):
        return self.build.read("rowsyn")


def _as_spike_lists(events, d, host, start, stop, exact):
    """Events in flight as [(age, source spikes)] for a ring of delay d, or
    None if they are not whole rows of spikes that d still delivers on time
    (``exact``: in the ring's order, ascending sources, as serial code needs).
    ``host``: a `_HostRows`."""
    out = []
    for r, syn in events:
        if r > d - 1:
            return None
        src = host.sources[syn]
        srcs = src[np.r_[True, src[1:] != src[:-1]]] if exact else np.unique(src)
        if np.any(np.diff(srcs) <= 0) or srcs[0] < start or srcs[-1] >= stop:
            return None
        rowstart, rowsyn = host.rowstart, host.rowsyn
        rows = np.concatenate([rowsyn[rowstart[s]:rowstart[s + 1]] for s in srcs])
        if not (np.array_equal(rows, syn) if exact
                else np.array_equal(np.sort(rows), np.sort(syn))):
            return None
        out.append((d - r, srcs.astype(np.int32)))
    return out


class Additive:
    """A pathway whose code only adds a value of synaptic constants to one
    post-synaptic variable (generator's ``additive``): that variable's
    kernel name, C type and atomic add, the target range [lo, lo + n) and
    the synaptic variables the value reads ([(name, Variable)])."""

    def __init__(self, target_name, ctype, atomic, dtype, lo, n, reads):
        self.target_name, self.ctype, self.atomic, self.dtype = target_name, ctype, atomic, dtype
        self.lo, self.n, self.reads = int(lo), int(n), tuple(reads)

    def key(self):
        return (self.target_name, self.ctype, self.lo, self.n,
                tuple(name for name, _ in self.reads))


def prepare_queue(device, pathway, serial=False, additive=None):
    """The pathway's propagation structure for the coming run (kept from
    the last run if nothing it depends on changed).  ``serial``: the
    pathway's code must see synapses in Brian2's order; ``additive``: an
    `Additive` (a queue then also gets a dendritic buffer)."""
    dt = float(pathway.source.clock.dt_)
    n_src = pathway.source.variables[pathway.eventspace_name].size - 1
    build = csrbuild.for_pathway(device, pathway, dt, n_src)
    t0 = time.perf_counter()
    try:
        q = _prepare(device, pathway, build, dt, n_src, serial, additive)
    finally:
        build.release()     # temporaries, and what the structure did not take
    if q.build_s is None:   # built now (the host has read results: it waited)
        q.build_s = time.perf_counter() - t0
    return q


def _prepare(device, pathway, build, dt, n_src, serial, additive):
    facts = build.compute_facts()
    n_syn = facts.n_syn
    start, stop = int(pathway.spikes_start), int(pathway.spikes_stop)
    # what decides whether to rebuild: the synapses' sources and delays in
    # steps enter through the checksum
    layout = (n_syn, dt, start, stop, facts.steps_min, facts.steps_max, facts.checksum,
              additive.key() if additive is not None else None, device.queue_interleave)
    homogeneous = facts.steps_min == facts.steps_max
    pq = pathway.queue
    if not isinstance(pq, PathwayQueue):      # created under another device
        pq = pathway.queue = PathwayQueue(device)
    old, restored, pq.restored = pq.structure, pq.restored, None
    if restored is None and old is not None and old.matches(layout):
        return old          # same synapses and delays: keep spikes in flight

    if restored is not None:                  # restore(): the stored events
        events_dt, events = restored
        if events and max(int(syn.max()) for _, syn in events if len(syn)) >= n_syn:
            raise ValueError(f"{pathway.name}: the restored spikes in flight go to "
                             f"synapses that do not exist ({n_syn} synapses)")
    else:
        events = old.pending() if old is not None else []
        events_dt = old.dt if old is not None else dt
    if events and events_dt != dt:
        # Brian2 rescales the waiting time, (int)(r*old_dt/dt + 0.5); its C++
        # queue keeps only the last of several slots that meet in one (when
        # dt grows), we keep them all
        merged = {}
        for r, syn in events:
            r = int(r * events_dt / dt + 0.5)
            merged[r] = np.concatenate([merged[r], syn]) if r in merged else syn
        events = sorted(merged.items())
    device.require_memory(pathway.name, build.rows_bytes(),
                          f"building the rows of {n_syn} synapses")
    build.build_rows()

    if homogeneous:
        d = facts.steps_min
        spikes = _as_spike_lists(events, d, _HostRows(device, pathway, build),
                                 start, stop, serial)
        if spikes is not None:
            device.require_memory(pathway.name, SpikeRing.nbytes(d, stop - start),
                                  f"the spike ring ({d + 1} delay slots x {stop - start} sources)")
            q = SpikeRing(device, pathway, layout, build, spikes)
            pq.structure = q
            return q
    device.require_memory(pathway.name, build.bundles_bytes(),
                          f"the bundles of {n_syn} synapses")
    build.build_bundles()
    Q = max([facts.steps_max + 1 if n_syn else 1] + [r + 1 for r, _ in events])
    plan = QueuePlan(build, start, stop, Q, events)
    device.require_memory(pathway.name, plan.nbytes(),
                          f"the spike queue ({Q} delay slots x {plan.cap} bundles of {n_syn} synapses)")
    if additive is not None:
        device.require_memory(pathway.name, Q * additive.n * np.dtype(additive.dtype).itemsize,
                              f"the dendritic buffer ({Q} delay slots x {additive.n} targets)")
    q = SynapseQueue(device, pathway, layout, build, plan, additive)
    q.fallback = homogeneous
    pq.structure = q
    return q
