"""Kernels are cached on disk: building the same script again compiles nothing."""
import brian2
import pytest
from brian2 import NeuronGroup, SpikeMonitor, ms, run

from conftest import on_device, own


def script():
    G = NeuronGroup(20, "dv/dt = (1.5 - v)/(10*ms) : 1", threshold="v > 1",
                    reset="v = 0", method="exact")
    G.v = "i / 20.0"            # spikes within the run
    M = SpikeMonitor(G)
    run(5 * ms)
    dev = brian2.get_device()
    return own(i=M.i[:], builds=[dev.backend.n_builds])


def test_second_run_of_a_script_compiles_nothing(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEGPU_CACHE_DIR", str(tmp_path))
    first = on_device(backend, script)
    second = on_device(backend, script)
    assert list(tmp_path.iterdir())            # binaries were written
    assert second["builds"][0] == first["builds"][0]
    assert (second["i"] == first["i"]).all() and len(first["i"]) >= 6


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif how == "truncate_payload_end":
        path.write_bytes(data[:-1])
    elif how == "flip":
        b = bytearray(data)
        b[len(b) * 2 // 3] ^= 0x5A
        path.write_bytes(bytes(b))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "old_format":       # a raw binary as earlier versions stored it
        path.write_bytes(data[len(data) // 3:])


@pytest.mark.parametrize("how", ["truncate", "truncate_payload_end", "flip", "empty",
                                 "old_format"])
def test_damaged_cache_files_are_checked_and_rebuilt(backend, tmp_path, monkeypatch, how):
    """Every cache file damaged: the next run checks each entry (length,
    checksum) before a driver sees it, rebuilds, and gives the same result
    (a truncated binary handed to PoCL crashed the process)."""
    from spikegpu import backends
    monkeypatch.setenv("SPIKEGPU_CACHE_DIR", str(tmp_path))
    before = backends.get_backend(backend).n_builds
    first = on_device(backend, script)
    built = first["builds"][0] - before
    files = sorted(tmp_path.iterdir())
    assert files and built > 0
    for f in files:
        _damage(f, how)
    second = on_device(backend, script)
    assert (second["i"] == first["i"]).all() and len(first["i"]) > 0
    assert second["builds"][0] - first["builds"][0] == built     # all rebuilt
    third = on_device(backend, script)                   # and stored again, valid
    assert third["builds"][0] == second["builds"][0]
    assert (third["i"] == first["i"]).all()


def test_cache_entry_format(tmp_path):
    from spikegpu.backends.base import read_cache, write_cache
    path = str(tmp_path / "entry.bin")
    payload = bytes(range(256)) * 10
    write_cache(path, payload)
    assert read_cache(path) == payload
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"]   # no temporary left
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-10])
    assert read_cache(path) is None
    assert not (tmp_path / "entry.bin").exists()        # removed: rebuilt next time
    assert read_cache(path) is None                      # absent
