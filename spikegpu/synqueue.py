"""Spike propagation of synaptic pathways: what Brian2 calls the spike
queue, built on the host when a run starts (`prepare_queue`, called for the
pathway's code object, which Brian2 creates anew for every run) and kept on
the device.

The pathway's synapses are sorted by (source, delay, synapse index) into
CSR rows: `_sg_rowstart` (per source neuron of the whole source group, +1)
and `_sg_rowsyn` (synapse indices); in a row, synapses of one delay are in
ascending synapse order, as in Brian2.  Then one of two structures:

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
the same.  Otherwise it is rebuilt and the events in flight are carried
over with their remaining time, as Brian2's queue does: into a new ring if
they are rows of spikes that the new delay can still deliver on time, else
into a queue (a 'fallback' queue even for homogeneous delays, tried again
as a ring at the next run).

What Brian2 sees as the pathway's ``queue`` is a `PathwayQueue`
(`GPUDevice.spike_queue`): it holds the structure, gives ``store()`` the
events in flight and takes them back from ``restore()``; the next run
builds a structure for them, as for a rebuild."""
import numpy as np
from brian2.core.variables import ArrayVariable

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


def choose_rows(lengths):
    """The mapping of rows to threads, from the row lengths of the source
    range.  Mean >= WARP: a work-group per row ('group'), whose threads read
    the row's consecutive synapses together.  Shorter rows would leave most
    of a work-group idle: if no row is longer than FLAT_MAX, a thread per
    (event, position < longest row) ('flat': consecutive threads read
    consecutive synapses; a step waits for one synapse's chain of memory
    accesses, not a row's); else a thread per event ('thread'), rows longer
    than WARP handled by work-groups so that one long row does not
    serialise the step."""
    if FORCE_ROWS is not None:
        return FORCE_ROWS
    if not len(lengths) or lengths.max() == 0:
        return "thread"
    if lengths.mean() >= WARP:
        return "group"
    if lengths.max() <= FLAT_MAX:
        return "flat"
    return "thread"


def row_width(lengths):
    """Threads per row of the 'group' mapping: the power of two at least the
    mean row length (rows longer than that stride), at most 1024.  A work-
    group of more threads takes several rows at once (one work-group runs
    the fused step: a row at a time would make each row of the step wait
    for the one before)."""
    mean = float(lengths.mean()) if len(lengths) else 1.0
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

    def __init__(self, device, pathway, layout, rowstart, rowsyn, arrays, rowitems=None):
        self.layout = layout            # what decides whether to rebuild
        self.n_syn, self.dt, self.start, self.stop, self.steps = layout
        self.rowstart, self.rowsyn = rowstart, rowsyn
        # the rows of events: CSR positions per source (ring), or bundles
        # per source (queue's push)
        lengths = np.diff(rowstart if rowitems is None else rowitems)[self.start:self.stop]
        self.maxrow = int(lengths.max()) if len(lengths) else 0
        self.rows = choose_rows(lengths)
        self.width = row_width(lengths)
        self.variables = {}
        self.device = device
        for name, value in [("_sg_rowstart", rowstart), ("_sg_rowsyn", rowsyn)] + arrays:
            # owned by the pathway: kernel arguments named after it
            v = ArrayVariable(name=name, owner=pathway, size=max(1, value.size),
                              device=device, dtype=np.int32, read_only=True)
            device.add_array(v)
            if value.size:
                device.fill_with_array(v, value.astype(np.int32))
            self.variables[name] = v

    def matches(self, layout):
        return not self.fallback and _same_layout(self.layout, layout)

    def template_kwds(self, serial):
        return {"_sg_mode": self.mode, "_sg_rows": "serial" if serial else self.rows,
                "_sg_start": self.start, "_sg_stop": self.stop, "_sg_maxrow": self.maxrow,
                "_sg_nrange": self.stop - self.start, "_sg_warp": WARP,
                "_sg_width": self.width}

    def _read(self, name, offset=0, count=None):
        """Device values of one of our arrays (a part of it: no full download)."""
        a = self.device.arr(self.variables[name])
        if a.host_valid:
            flat = a.host.ravel()
            return np.array(flat[offset:None if count is None else offset + count])
        count = a.size - offset if count is None else count
        out = np.empty(count, dtype=np.int32)
        if count:
            self.device.backend.download(a.buf, out, offset_bytes=4 * offset)
        return out

    def _row(self, src):
        return self.rowsyn[self.rowstart[src]:self.rowstart[src + 1]]


class SpikeRing(_Propagation):
    mode = "ring"

    def __init__(self, device, pathway, layout, rowstart, rowsyn, spikes=()):
        d = layout[4][1]
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
        super().__init__(device, pathway, layout, rowstart, rowsyn, arrays)

    @staticmethod
    def nbytes(d, R, n_src, n_syn):
        return 4 * ((d + 1) * (R + 1) * (d > 0) + n_src + 1 + n_syn + 1)

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
        for j in range(self.d):              # spikes of the step j steps before the last
            slot = (head - 1 - j) % self.D
            row = slot * (self.R + 1)
            n = int(self._read("_sg_ring", row + self.R, 1)[0])
            if n:
                srcs = self._read("_sg_ring", row, n)
                syn = np.concatenate([self._row(s) for s in srcs])
                if len(syn):
                    out.append((self.d - 1 - j, syn))
        return out


def bundles(rowstart, possteps):
    """Bundles of CSR rows sorted by (source, delay, synapse index): maximal
    runs of one delay in a row.  Returns (bstart: n_bundles + 1 CSR
    positions, bdelay: n_bundles delays, rowbundle: n_src + 1, the bundles
    of source s are rowbundle[s] .. rowbundle[s + 1])."""
    n = len(possteps)
    src = np.repeat(np.arange(len(rowstart) - 1), np.diff(rowstart))
    new = np.ones(n, dtype=bool)
    new[1:] = (possteps[1:] != possteps[:-1]) | (src[1:] != src[:-1])
    first = np.flatnonzero(new)
    bstart = np.r_[first, n].astype(np.int64)
    rowbundle = np.searchsorted(first, rowstart, side="left")
    return bstart, np.asarray(possteps)[first], rowbundle


class QueuePlan:
    """Host arrays of a SynapseQueue, computed before allocating (their
    size is checked against the device's free memory)."""

    def __init__(self, rowstart, rowsyn, possteps, start, stop, Q, events):
        bstart, bdelay, rowbundle = bundles(rowstart, possteps)
        self.n_bundles = nb = len(bdelay)
        blens = np.diff(bstart)
        inrange = blens[rowbundle[start]:rowbundle[stop]]
        # events in flight (synapse indices, not necessarily whole bundles):
        # their synapses extend the position array, in extra bundles of at
        # most max(WARP, longest bundle) positions (the run's mapping keeps
        # its row lengths), placed first in their slot
        chunk = max(WARP, int(blens.max()) if nb else 0)
        ext_syn, ext_start, ext_len = [], [], []
        slots = [[] for _ in range(Q)]
        pos = len(rowsyn)
        for r, syn in events:
            for a in range(0, len(syn), chunk):
                part = np.asarray(syn[a:a + chunk])
                slots[r].append(nb + len(ext_start))
                ext_syn.append(part)
                ext_start.append(pos)
                ext_len.append(len(part))
                pos += len(part)
        self.n_extra = len(ext_start)
        # a source puts at most one bundle (one per delay) into a slot: the
        # bundles bound every slot, plus the extra bundles placed in it
        self.cap = max(1, nb + max(len(x) for x in slots))
        self.Q = Q
        self.rowbundle = rowbundle.astype(np.int32)
        self.bstart = np.r_[bstart[:-1], ext_start, pos].astype(np.int32)
        self.bdelay = np.r_[bdelay, np.zeros(self.n_extra, dtype=np.int64)].astype(np.int32)
        self.rowsyn = np.concatenate([rowsyn] + ext_syn).astype(np.int32)
        self.queue = np.zeros(Q * self.cap, dtype=np.int32)
        self.count = np.zeros(Q, dtype=np.int32)
        for r, ids in enumerate(slots):
            self.queue[r * self.cap:r * self.cap + len(ids)] = ids
            self.count[r] = len(ids)
        # the run's rows: the bundles that pushes and the extras put in slots
        self.lengths = np.r_[inrange, ext_len].astype(np.int64)

    def nbytes(self, n_src):
        # queue, counts + head, bundles (start, delay), rowstart + rowbundle,
        # positions (CSR + extension)
        nb = self.n_bundles + self.n_extra
        return 4 * (self.Q * self.cap + self.Q + 1 + 2 * nb + 1 + 2 * (n_src + 1)
                    + max(1, len(self.rowsyn)))


class SynapseQueue(_Propagation):
    mode = "queue"

    def __init__(self, device, pathway, layout, rowstart, plan):
        self.Q, self.cap = plan.Q, plan.cap
        self.n_bundles, self.n_extra = plan.n_bundles, plan.n_extra
        self.bstart = plan.bstart
        super().__init__(device, pathway, layout, rowstart, plan.rowsyn,
                         [("_sg_rowbundle", plan.rowbundle), ("_sg_bstart", plan.bstart),
                          ("_sg_bdelay", plan.bdelay), ("_sg_queue", plan.queue),
                          ("_sg_qcount", plan.count),
                          ("_sg_qhead", np.zeros(1, dtype=np.int32))],
                         rowitems=plan.rowbundle)
        # the run's mapping: rows = bundles in the slot of now
        self.brows = choose_rows(plan.lengths)
        self.bmaxrow = int(plan.lengths.max()) if len(plan.lengths) else 0
        self.bwidth = row_width(plan.lengths)

    def template_kwds(self, serial):
        kw = super().template_kwds(serial)
        kw.update(_sg_Q=self.Q, _sg_cap=self.cap,
                  _sg_brows="serial" if serial else self.brows, _sg_bmaxrow=self.bmaxrow,
                  _sg_bwidth=self.bwidth)
        return kw

    def _bundle(self, b):
        return self.rowsyn[self.bstart[b]:self.bstart[b + 1]]

    def pending(self):
        head = int(self._read("_sg_qhead")[0])
        count = self._read("_sg_qcount")
        out = []
        for r in range(self.Q):
            slot = (head + r) % self.Q
            if count[slot]:
                ids = self._read("_sg_queue", slot * self.cap, int(count[slot]))
                syn = np.concatenate([self._bundle(b) for b in ids])
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


def _same_layout(a, b):
    return (a[:4] == b[:4] and a[4][0] == b[4][0]
            and (a[4][1] == b[4][1] if a[4][0] == "homogeneous"
                 else np.array_equal(a[4][1], b[4][1])))


def _as_spike_lists(events, d, sources, rowstart, rowsyn, start, stop, exact):
    """Events in flight as [(age, source spikes)] for a ring of delay d, or
    None if they are not whole rows of spikes that d still delivers on time
    (``exact``: in the ring's order, ascending sources, as serial code needs)."""
    out = []
    for r, syn in events:
        if r > d - 1:
            return None
        src = sources[syn]
        srcs = src[np.r_[True, src[1:] != src[:-1]]] if exact else np.unique(src)
        if np.any(np.diff(srcs) <= 0) or srcs[0] < start or srcs[-1] >= stop:
            return None
        rows = np.concatenate([rowsyn[rowstart[s]:rowstart[s + 1]] for s in srcs])
        if not (np.array_equal(rows, syn) if exact
                else np.array_equal(np.sort(rows), np.sort(syn))):
            return None
        out.append((d - r, srcs.astype(np.int32)))
    return out


def prepare_queue(device, pathway, serial=False):
    """The pathway's propagation structure for the coming run (kept from
    the last run if nothing it depends on changed).  ``serial``: the
    pathway's code must see synapses in Brian2's order."""
    sources = np.asarray(_host(device, pathway.synapse_sources), dtype=np.int64).ravel()
    n_syn = len(sources)
    dt = float(pathway.source.clock.dt_)
    delays = np.asarray(_host(device, pathway._delays), dtype=np.float64).ravel()
    if delays.size == 1 and n_syn != 1:
        delays = np.full(n_syn, delays[0])
    # rounded as Brian2's (C++) spike queue rounds: (int)(delay/dt + 0.5)
    steps = (delays / dt + 0.5).astype(np.int64)
    start, stop = int(pathway.spikes_start), int(pathway.spikes_stop)
    homogeneous = n_syn == 0 or steps.min() == steps.max()
    layout = (n_syn, dt, start, stop,
              ("homogeneous", int(steps[0]) if n_syn else 0) if homogeneous
              else ("heterogeneous", steps.astype(np.int32)))
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
    n_src = pathway.source.variables[pathway.eventspace_name].size - 1
    order = np.argsort(sources * (int(steps.max()) + 1 if n_syn else 1) + steps, kind="stable")
    rowstart = np.searchsorted(sources[order], np.arange(n_src + 1)).astype(np.int32)
    rowsyn = order.astype(np.int32)
    free, total = device.backend.memory_info()
    avail = free if free is not None else total

    if homogeneous:
        d = layout[4][1]
        spikes = _as_spike_lists(events, d, sources, rowstart, rowsyn, start, stop, serial)
        if spikes is not None:
            need = SpikeRing.nbytes(d, stop - start, n_src, n_syn)
            if need > avail:
                raise MemoryError(f"{pathway.name}: the spike ring ({d + 1} delay slots x "
                                  f"{stop - start} sources) needs about {need} bytes of "
                                  f"device memory, more than {device.backend.device_name} "
                                  "has free")
            q = SpikeRing(device, pathway, layout, rowstart, rowsyn, spikes)
            pq.structure = q
            return q
    Q = max([int(steps.max()) + 1 if n_syn else 1] + [r + 1 for r, _ in events])
    plan = QueuePlan(rowstart, rowsyn, steps[order], start, stop, Q, events)
    need = plan.nbytes(n_src)
    if need > avail:
        raise MemoryError(f"{pathway.name}: the spike queue ({Q} delay slots x "
                          f"{plan.cap} bundles of {n_syn} synapses) needs about {need} "
                          f"bytes of device memory, more than "
                          f"{device.backend.device_name} has free")
    q = SynapseQueue(device, pathway, layout, rowstart, plan)
    q.fallback = homogeneous
    pq.structure = q
    return q
