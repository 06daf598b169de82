"""The rows of a pathway built on the device (spikegpu/csrbuild.py) against
numpy: a stable argsort of (source, delay steps) from the synapse order, its
CSR rows and bundles; then as prepare_queue uses them for a pathway."""
import brian2
import numpy as np
import pytest
from brian2 import NeuronGroup, Synapses, ms, run

from spikegpu import csrbuild


def reference(sources, steps, n_src):
    """rowsyn, rowstart, bstart, bdelay, rowbundle as numpy gives them."""
    sources = np.asarray(sources, dtype=np.int64)
    steps = np.asarray(steps, dtype=np.int64)
    Q = int(steps.max()) + 1 if len(steps) else 1
    order = np.argsort(sources * Q + steps, kind="stable")
    src, st = sources[order], steps[order]
    rowstart = np.searchsorted(src, np.arange(n_src + 1))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (src[1:] != src[:-1]) | (st[1:] != st[:-1])
    first = np.flatnonzero(new)
    return dict(rowsyn=order, rowstart=rowstart, bstart=np.r_[first, len(order)],
                bdelay=st[first], rowbundle=np.searchsorted(first, rowstart))


@pytest.fixture
def device(backend):
    brian2.set_device("gpu_standalone", backend=backend)
    return brian2.get_device()


def build(device, sources, delays, dt, n_src, bundles=True):
    """A finished CSRBuild of these host arrays (``delays``: one value for
    all synapses, or one per synapse)."""
    be = device.backend
    sources = np.asarray(sources, dtype=np.int32)
    delays = np.atleast_1d(delays)
    bufs = [be.alloc(max(1, a.nbytes)) for a in (sources, delays)]
    for buf, a in zip(bufs, (sources, delays)):
        be.upload(buf, a)
    stride = 0 if delays.size == 1 and sources.size != 1 else 1
    b = csrbuild.CSRBuild(device, bufs[0], bufs[1], delays.dtype, sources.size, stride,
                          dt, n_src)
    b._inputs = bufs            # alive as long as the build
    b.compute_facts()
    b.build_rows()
    if bundles:
        b.build_bundles()
    return b


def check(device, sources, delays, dt, n_src):
    b = build(device, sources, delays, dt, n_src)
    n = len(sources)
    steps = (np.broadcast_to(np.asarray(delays, dtype=np.float64), (n,)) / dt + 0.5
             ).astype(np.int64)
    ref = reference(sources, steps, n_src)
    for name, expected in ref.items():
        got = b.read(name)
        np.testing.assert_array_equal(got, expected, err_msg=name)
    f = b.facts
    assert f.n_syn == n
    if n:
        assert (f.steps_min, f.steps_max) == (steps.min(), steps.max())
        assert (f.src_min, f.src_max) == (min(sources), max(sources))
        key = np.asarray(sources, dtype=np.int64) * (steps.max() + 1) + steps
        assert f.ordered == bool(np.all(np.diff(key) >= 0))
    b.release()
    return b


def test_sorted_sources_homogeneous_delay(device):
    rng = np.random.default_rng(1)
    sources = np.sort(rng.integers(0, 300, 20000))
    b = check(device, sources, np.array([2.3e-3]), 1e-4, 300)
    assert b.identity and b._keys is None           # no sort, no rowsyn


def test_random_sources_heterogeneous_delays(device):
    rng = np.random.default_rng(2)
    n = 50000
    b = check(device, rng.integers(0, 700, n), rng.uniform(0, 5e-3, n), 1e-4, 700)
    assert not b.facts.ordered
    # in order by source, unordered delays: sorted within rows
    sources = np.sort(rng.integers(0, 700, n))
    check(device, sources, rng.uniform(0, 5e-3, n), 1e-4, 700)
    # in (source, delay) order already: no sort
    delays = np.round(rng.uniform(0, 5e-3, n), 4)
    order = np.lexsort((delays, sources))
    b = check(device, sources, delays[order], 1e-4, 700)
    assert b.facts.ordered


def test_rounding_as_brian2(device):
    # half steps round up, as (int)(delay/dt + 0.5); float32 delays too
    dt = 1e-4
    delays = np.array([0.0, 0.5, 1.5, 2.5, 2.4999999, 7.5, 1.0, 0.49999]) * dt
    rng = np.random.default_rng(3)
    sources = rng.integers(0, 3, delays.size)
    check(device, sources, delays, dt, 3)
    check(device, sources, delays.astype(np.float32), dt, 3)


def test_empty_rows_and_no_synapses(device):
    rng = np.random.default_rng(4)
    # sources 5 .. 95 of 120, every third row empty: empty rows first, last
    # and between
    sources = rng.choice([s for s in range(5, 96) if s % 3], 3000)
    check(device, sources, rng.uniform(0, 2e-3, sources.size), 1e-4, 120)
    check(device, np.sort(sources), np.array([1e-3]), 1e-4, 120)
    check(device, np.zeros(0, dtype=np.int32), np.array([1e-3]), 1e-4, 10)
    check(device, np.zeros(0, dtype=np.int32), np.zeros(0), 1e-4, 10)
    check(device, [7], np.array([3e-4]), 1e-4, 10)


def test_wide_keys(device):
    # sources over 2^23 neurons x 1024 delay steps: 64-bit keys
    rng = np.random.default_rng(5)
    n, n_src = 20000, 1 << 23
    sources = rng.integers(0, n_src, n)
    sources[:2] = 0, n_src - 1
    delays = rng.integers(0, 1024, n) * 1e-4
    delays[:2] = 0, 1023e-4
    b = check(device, sources, delays, 1e-4, n_src)
    assert b._key_bytes() == 8


def test_scan_levels(device):
    """The device-wide scan over tile boundaries and three levels."""
    be = device.backend
    b = csrbuild.CSRBuild(device, None, None, np.float64, 0, 0, 1e-4, 0)
    tile = b.tile
    prog = b._program()
    rng = np.random.default_rng(6)
    for n in (1, tile - 1, tile, tile + 1, tile * tile + 3):
        x = rng.integers(0, 3, n).astype(np.int32)
        buf = be.alloc(x.nbytes)
        be.upload(buf, x)
        b.scan(prog, buf, n)
        got = np.empty_like(x)
        be.download(buf, got)
        np.testing.assert_array_equal(got, np.cumsum(x) - x, err_msg=str(n))
        be.free(buf)
    b.release()


def test_large_build(device):
    """More elements than a tile of tiles: several scan levels in the sort's
    counts and the bundles' flags."""
    rng = np.random.default_rng(7)
    n = 4_500_000
    b = check(device, rng.integers(0, 20000, n), rng.integers(0, 41, n) * 1e-4, 1e-4, 20000)
    assert n + 1 > b.tile ** 2


# -- as prepare_queue uses it: the structure of a pathway ---------------------
def structure_arrays(pathway):
    q = pathway.queue.structure
    dev = brian2.get_device()
    arrays = {name[4:]: np.array(dev.get_value(v)) for name, v in q.variables.items()}
    if q.identity:          # synapses in order: no array
        assert "rowsyn" not in arrays
        arrays["rowsyn"] = np.arange(q.n_syn)
    return q, arrays


def test_pathway_structures(device):
    G = NeuronGroup(200, "v : 1", threshold="False")
    H = NeuronGroup(150, "v : 1", threshold="False")
    # on_pre, sources in order, one delay: a ring; on_post, sources (the
    # targets) in random order, heterogeneous delays: a queue
    S = Synapses(G, H, "w : 1", on_pre="v_post += w", on_post="v_pre += w",
                 delay={"pre": 1.2 * ms})
    S.connect(p=0.05)
    S.connect(i=np.arange(0, 200, 7), j=(np.arange(0, 200, 7) * 13) % 150)
    S.post.delay = "(i * 7 + j) % 23 * 0.1*ms"
    # a subgroup source range and empty rows; a pathway with no synapses
    T = Synapses(G[50:120], H, on_pre="v_post += 1", delay=0.3 * ms)
    T.connect("i % 4 == 1 and j < 40")
    U = Synapses(G, H, on_pre="v_post += 1")
    U.connect(False)
    run(0 * ms)
    i, j = np.array(S.i[:]), np.array(S.j[:])
    cases = [(S.pre, i, np.full(len(i), 12), 200, "ring"),
             (S.post, j, np.array(S.post.delay[:] / (0.1 * ms) + 0.5).astype(int), 150,
              "queue"),
             (T.pre, np.array(T.i[:]) + 50, np.full(len(T), 3), 200, "ring"),
             (U.pre, np.zeros(0, dtype=int), np.zeros(0, dtype=int), 200, "ring")]
    identities = []
    for pathway, sources, steps, n_src, mode in cases:
        q, arrays = structure_arrays(pathway)
        ref = reference(sources, steps, n_src)
        n = len(sources)
        # synapses in order (T, U; not S, connected twice): no rowsyn
        assert q.mode == mode and q.identity == np.array_equal(ref["rowsyn"], np.arange(n))
        identities.append(q.identity)
        np.testing.assert_array_equal(arrays["rowstart"], ref["rowstart"])
        np.testing.assert_array_equal(arrays["rowsyn"][:n], ref["rowsyn"])
        if mode == "queue":
            for name in ("bstart", "bdelay", "rowbundle"):
                np.testing.assert_array_equal(arrays[name][:len(ref[name])], ref[name],
                                              err_msg=name)
            assert q.n_bundles == len(ref["bdelay"])
    assert identities == [False, False, True, True]


def test_kept_or_rebuilt_by_checksum(device):
    G = NeuronGroup(100, "v : 1", threshold="False")
    S = Synapses(G, G, "w : 1", on_pre="v_post += w")
    S.connect(p=0.2)
    S.delay = "(i + 2 * j) % 9 * 0.1*ms"
    run(0 * ms)
    first = S.pre.queue.structure
    run(0 * ms)
    assert S.pre.queue.structure is first               # nothing changed: kept
    # the same delays, exchanged between synapses: the same range of steps,
    # another checksum
    d = np.array(S.delay[:] / ms)
    S.delay = d[::-1] * ms
    run(0 * ms)
    second = S.pre.queue.structure
    assert second is not first
    _, arrays = structure_arrays(S.pre)
    ref = reference(S.i[:], (d[::-1] / 0.1 + 0.5).astype(int), 100)
    np.testing.assert_array_equal(arrays["rowsyn"][:len(d)], ref["rowsyn"])


def test_no_per_synapse_download(device, monkeypatch):
    """Building (and keeping) a structure with no events in flight reads
    only a few numbers back."""
    G = NeuronGroup(1000, "v : 1", threshold="False")
    S = Synapses(G, G, "w : 1", on_pre="v_post += w")
    S.connect(p=0.2)
    S.delay = "rand() * 3*ms"
    n = len(S)                      # (runs the queued creation)
    be = device.backend
    sizes = []
    download = type(be).download

    def counting(self, buf, array, offset_bytes=0):
        sizes.append(array.nbytes)
        return download(self, buf, array, offset_bytes)

    monkeypatch.setattr(type(be), "download", counting)
    run(0 * ms)
    run(0 * ms)                     # kept
    S.delay = "rand() * 2*ms"
    run(0 * ms)                     # rebuilt
    assert S.pre.queue.structure.mode == "queue"
    # per-synapse data would be >= 4 bytes a synapse; what comes back is a
    # few numbers per work-group (8 per compute unit: ~50 KB on an H100)
    assert n > 150000 and max(sizes) < n


def test_build_too_large_for_device_memory(device, monkeypatch):
    """The sort's temporaries are counted before they are allocated."""
    G = NeuronGroup(100, "v : 1", threshold="False")
    S = Synapses(G, G, "w : 1", on_post="v_pre += w", name="sorted_pathway")
    S.connect(p=0.5)
    S.post.delay = "rand() * 2*ms"
    n = len(S)
    be = device.backend
    monkeypatch.setattr(type(be), "memory_info", lambda self: (12 * n, 12 * n))
    with pytest.raises(Exception) as exc:       # Brian2 wraps it
        run(0 * ms)
    err = exc.value
    while not isinstance(err, MemoryError) and (err.__cause__ or err.__context__):
        err = err.__cause__ or err.__context__
    assert isinstance(err, MemoryError)
    msg = str(err)
    assert "sorted_pathway" in msg and f"rows of {n} synapses" in msg and "bytes" in msg
