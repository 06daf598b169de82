"""The rows of a synaptic pathway, built on the device (kernels:
templates/csrbuild.mako).  `synqueue.prepare_queue` uses them when a run
starts; the layout is described there.

From the pathway's synapse sources and delays (in steps, rounded as
Brian2's C++ spike queue rounds: ``(int)(delay/dt + 0.5)``):

- `facts`: one pass over the synapses gives the least and greatest steps
  and source, a 64-bit checksum of (synapse, source, steps) and whether the
  synapses are in (source, steps) order already.  These decide whether the
  structure of the last run can be kept (no per-synapse data leaves the
  device).
- `build_rows`: ``rowsyn``, the synapse indices sorted stably by the key
  (source - src0) * R + (steps - steps0), R the range of steps (a stable
  sort from the identity order: in a row, by delay, then synapse index), by
  an LSD radix sort of 4 bits a pass over only the bits the keys use (32-bit
  keys where they fit, else 64-bit).  Synapses already in order (an
  ``on_pre`` pathway with one delay: connect() creates synapses by source)
  need no sort and no ``rowsyn``: it is the identity (`identity`).
  ``rowstart`` (n_src + 1) from the sorted keys.
- `build_bundles`: bundles (maximal runs of one (source, steps)) from the
  places where the key changes, numbered by an exclusive scan: ``bstart``,
  ``bdelay``, ``rowbundle``.

The host reads only a few numbers: per-work-group partial results (facts,
longest rows), the number of bundles, and the ends of ranges.  Results stay
in device buffers that the propagation structure takes over (`take`);
temporaries are freed by `release`.
"""
from collections import namedtuple

import numpy as np

#: work-group size of the build kernels (a power of two), elements per
#: thread of a tile (scan and sort work on tiles of WG * ITEMS elements)
WG = 256
ITEMS = 8
RADIX_BITS = 4
RADIX = 1 << RADIX_BITS

#: what one pass over a pathway's synapses tells (`CSRBuild.compute_facts`)
Facts = namedtuple("Facts", "n_syn steps_min steps_max src_min src_max checksum ordered")
#: a set of rows (or bundles): how many, their total length, the longest
RowStats = namedtuple("RowStats", "count total longest")


class CSRBuild:
    """One build of a pathway's rows.  ``sources``: a device buffer of
    int32 sources (n_syn); ``delays``: a device buffer of delays (one for
    all synapses if ``delay_stride`` is 0, else one per synapse), of
    ``delay_dtype``; sources lie in [0, n_src)."""

    def __init__(self, device, sources, delays, delay_dtype, n_syn, delay_stride, dt, n_src):
        self.device = device
        self.be = be = device.backend
        self.src, self.delays = sources, delays
        self.delay_dtype = np.dtype(delay_dtype)
        self.n, self.dstride, self.dt, self.n_src = int(n_syn), int(delay_stride), float(dt), int(n_src)
        self.wg = min(WG, 1 << (int(be.max_work_group).bit_length() - 1))
        self.tile = self.wg * ITEMS
        self.max_groups = 8 * max(1, int(be.compute_units))
        self.buffers = {}       # results: name -> (device buffer, elements)
        self._temps = []        # freed by release()
        self.facts = None
        self.n_bundles = None
        self._keys = None       # sorted keys (None: the identity order, 'direct')
        self._programs = {}     # 64-bit keys? -> program

    # -- the pieces ---------------------------------------------------------
    def _program(self):
        """The build kernels for the keys' width (32 bits until the facts
        are known)."""
        key64 = self.facts is not None and self._key_bits() > 32
        if key64 not in self._programs:
            from .generator import c_type
            from .templater import render
            source = render("csrbuild.mako", ktype="uint64_t" if key64 else "uint32_t",
                            dtype=c_type(self.delay_dtype), wg=self.wg, items=ITEMS)
            self._programs[key64] = self.device.program(
                [], "the device build of a pathway's rows", [source])
        return self._programs[key64]

    def _alloc(self, elements, itemsize=4, temp=True):
        buf = self.be.alloc(max(1, int(elements)) * itemsize)
        if temp:
            self._temps.append(buf)
        return buf

    def _free(self, *bufs):
        """Free temporaries before the build ends (lower peak memory)."""
        bufs = [b for b in bufs if b is not None]
        self.be.synchronize()
        for b in bufs:
            self._temps = [t for t in self._temps if t is not b]
            self.be.free(b)

    def _result(self, name, elements):
        buf = self._alloc(elements, temp=False)
        self.buffers[name] = (buf, int(elements))
        return buf

    def _groups(self, items):
        return max(1, min(-(-int(items) // self.wg), self.max_groups))

    def _launch(self, prog, name, groups, args):
        self.be.launch(prog.kernel(name), groups * self.wg, self.wg, args)
        self.device.stats["kernel_launches"] += 1

    def _key_args(self, kin=None, vin=None):
        f = self.facts
        R = f.steps_max - f.steps_min + 1
        return [self.src, self.delays, np.int64(self.dstride), np.float64(self.dt),
                np.int64(f.src_min), np.int64(f.steps_min), np.int64(R),
                kin if kin is not None else self.src, vin if vin is not None else self.src]

    def scan(self, prog, buf, n):
        """Exclusive prefix sum of ``n`` int32 in ``buf``, in place: tiles
        scanned by work-groups, their sums scanned (recursively), added back."""
        ntiles = -(-int(n) // self.tile)
        sums = self._alloc(ntiles)
        self._launch(prog, "_sg_csr_scan_tiles", min(ntiles, self.max_groups),
                     [buf, np.int64(n), sums, np.int64(ntiles)])
        if ntiles > 1:
            self.scan(prog, sums, ntiles)
            self._launch(prog, "_sg_csr_scan_add", self._groups(n), [buf, np.int64(n), sums])

    def read(self, name, offset=0, count=None):
        """Host copy of (a part of) a result."""
        if name == "rowsyn" and self.identity:
            return np.arange(offset, self.n if count is None else offset + count,
                             dtype=np.int32)
        buf, n = self.buffers[name]
        count = n - offset if count is None else count
        out = np.empty(count, dtype=np.int32)
        if count:
            self.be.download(buf, out, offset_bytes=4 * offset)
        return out

    # -- the build ----------------------------------------------------------
    def compute_facts(self):
        """`Facts` of the synapses (one pass; the host reads a few numbers
        per work-group)."""
        n = self.n
        if n == 0:
            self.facts = Facts(0, 0, 0, 0, -1, 0, True)
            return self.facts
        prog = self._program()
        groups = self._groups(n)
        out = self._alloc(6 * groups, 8)
        self._launch(prog, "_sg_csr_stats", groups,
                     [self.src, self.delays, np.int64(self.dstride), np.float64(self.dt),
                      np.int64(n), out])
        part = np.empty((groups, 6), dtype=np.int64)
        self.be.download(out, part)
        self.facts = Facts(n, int(part[:, 0].min()), int(part[:, 1].max()),
                           int(part[:, 2].min()), int(part[:, 3].max()),
                           int(part[:, 4].view(np.uint64).sum(dtype=np.uint64)),
                           not part[:, 5].any())
        if self.facts.src_min < 0 or self.facts.src_max >= self.n_src:
            raise ValueError(f"synapse sources outside 0 .. {self.n_src - 1}")
        return self.facts

    def _key_bits(self):
        f = self.facts
        if f.n_syn == 0:
            return 0
        R = f.steps_max - f.steps_min + 1
        return ((f.src_max - f.src_min + 1) * R - 1).bit_length()

    def _key_bytes(self):
        return 8 if self._key_bits() > 32 else 4

    def rows_bytes(self):
        """Device memory that `build_rows` needs at most: rowstart, and for a
        sort rowsyn, two key arrays, a second index array and the counts."""
        n = self.n
        need = 4 * (self.n_src + 1)
        if not self.identity:
            ntiles = -(-n // self.tile)
            need += 4 * n + 2 * n * self._key_bytes() + 4 * n + 2 * 4 * RADIX * ntiles + 64
        return need

    def bundles_bytes(self):
        """Device memory that `build_bundles` needs at most (n_bundles <=
        n_syn): the flags to scan, bstart, bdelay, rowbundle."""
        n = self.n
        return 4 * ((n + 1) + (n + 1) + max(1, n) + (self.n_src + 1)) + 4 * (n // self.tile + 2)

    @property
    def identity(self):
        """rowsyn is the identity (the synapses are in order): no array."""
        return self.facts.ordered

    def build_rows(self):
        """rowstart, and rowsyn unless it is the identity."""
        n = self.n
        bits = self._key_bits()
        prog = self._program()
        rowstart = self._result("rowstart", self.n_src + 1)
        if not self.identity:
            self._keys = self._sort(prog, bits, self._result("rowsyn", n))
        flavor = "direct" if self._keys is None else "sorted"
        self._launch(prog, f"_sg_csr_rows_{flavor}", self._groups(n + 1),
                     self._key_args(self._keys) + [np.int64(n), np.int64(self.n_src), rowstart])

    def _sort(self, prog, bits, rowsyn):
        """Radix sort of (key, synapse index) from the identity order; the
        indices end in ``rowsyn``; returns the sorted keys."""
        n = self.n
        kbytes = 8 if bits > 32 else 4
        passes = -(-bits // RADIX_BITS)
        ntiles = -(-n // self.tile)
        groups = min(ntiles, self.max_groups)
        hist = self._alloc(RADIX * ntiles)
        keys = [self._alloc(n, kbytes), self._alloc(n, kbytes) if passes > 1 else None]
        vals = [rowsyn, self._alloc(n) if passes > 1 else None]
        kin = vin = None
        for p in range(passes):
            # the last pass writes keys[0] and rowsyn
            out = (passes - 1 - p) % 2
            flavor = "direct" if p == 0 else "sorted"
            common = self._key_args(kin, vin) + [np.int64(n), np.int32(RADIX_BITS * p),
                                                  np.int64(ntiles)]
            self._launch(prog, f"_sg_csr_count_{flavor}", groups, common + [hist])
            self.scan(prog, hist, RADIX * ntiles)
            self._launch(prog, f"_sg_csr_scatter_{flavor}", groups,
                         common + [hist, keys[out], vals[out]])
            kin, vin = keys[out], vals[out]
        self._free(hist, keys[1], vals[1])
        return keys[0]

    def build_bundles(self):
        """bstart, bdelay, rowbundle (after `build_rows`)."""
        n = self.n
        prog = self._program()
        flavor = "direct" if self._keys is None else "sorted"
        key_args = self._key_args(self._keys)
        bid = self._alloc(n + 1)
        self._launch(prog, f"_sg_csr_bflags_{flavor}", self._groups(n + 1),
                     key_args + [np.int64(n), bid])
        self.scan(prog, bid, n + 1)
        nb = np.empty(1, dtype=np.int32)
        self.be.download(bid, nb, offset_bytes=4 * n)
        self.n_bundles = nb = int(nb[0])
        bstart = self._result("bstart", nb + 1)
        bdelay = self._result("bdelay", nb)
        rowbundle = self._result("rowbundle", self.n_src + 1)
        self._launch(prog, f"_sg_csr_bstarts_{flavor}", self._groups(n + 1),
                     key_args + [np.int64(n), bid, bstart, bdelay])
        self._launch(prog, "_sg_csr_rowbundle", self._groups(self.n_src + 1),
                     [self.buffers["rowstart"][0], bid, np.int64(self.n_src), rowbundle])

    # -- what the structure needs to know -----------------------------------
    def longest(self, name, lo, hi):
        """The greatest a[i + 1] - a[i], i in [lo, hi), of result ``name``."""
        if hi <= lo:
            return 0
        prog = self._program()
        groups = self._groups(hi - lo)
        out = self._alloc(groups, 8)
        self._launch(prog, "_sg_csr_maxdiff", groups,
                     [self.buffers[name][0], np.int64(lo), np.int64(hi), out])
        part = np.empty(groups, dtype=np.int64)
        self.be.download(out, part)
        return int(part.max())

    def stats(self, name, lo, hi):
        """`RowStats` of the rows lo .. hi of result ``name`` (rowstart:
        synapses per source; rowbundle: bundles per source; bstart:
        synapses per bundle)."""
        ends = self.read(name, lo, 1)[0], self.read(name, hi, 1)[0]
        return RowStats(hi - lo, int(ends[1]) - int(ends[0]), self.longest(name, lo, hi))

    def extend(self, name, values, keep):
        """Result ``name`` with its first ``keep`` elements followed by
        ``values`` (a new buffer; carried-over events in flight).  rowsyn:
        the identity is written out first."""
        if name == "rowsyn" and self.identity and name not in self.buffers:
            buf = self._result(name, keep + len(values))
            self._launch(self._program(), "_sg_csr_iota",
                         self._groups(keep), [np.int64(keep), buf])
            self.be.upload(buf, np.asarray(values, dtype=np.int32), offset_bytes=4 * keep)
            return
        old, _ = self.buffers.pop(name)
        buf = self._result(name, keep + len(values))
        self.be.copy(buf, old, 4 * keep)
        self.be.upload(buf, np.asarray(values, dtype=np.int32), offset_bytes=4 * keep)
        self.be.synchronize()
        self.be.free(old)

    def take(self, name):
        """Hand result ``name`` (buffer, elements) over to its new owner."""
        return self.buffers.pop(name)

    def release(self):
        """Free the temporaries and every result not taken."""
        if self._temps or self.buffers:
            self.be.synchronize()
        for buf in self._temps + [b for b, _ in self.buffers.values()]:
            self.be.free(buf)
        self._temps, self.buffers, self._keys = [], {}, None


def for_pathway(device, pathway, dt, n_src):
    """A `CSRBuild` of the pathway's sources and delays (made current on the
    device; queued work that writes them runs first)."""
    be = device.backend
    src = device._host_op(pathway.synapse_sources)
    delays = device._host_op(pathway._delays)
    for a in (src, delays):
        a.ensure_device(be)
    if src.dtype != np.int32:
        raise TypeError(f"{pathway.name}: synapse sources of type {src.dtype}, not int32")
    n = src.size
    stride = 0 if delays.size == 1 and n != 1 else 1
    return CSRBuild(device, src.buf, delays.buf, delays.dtype, n, stride, dt, n_src)
