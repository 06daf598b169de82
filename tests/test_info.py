"""`python -m spikegpu info` and spikegpu.info.info()."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "spikegpu", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def _has_opencl_device():
    try:
        import pyopencl as cl
        return any(p.get_devices() for p in cl.get_platforms())
    except Exception:
        return False


needs_opencl = pytest.mark.skipif(not _has_opencl_device(),
                                  reason="no OpenCL device (install PoCL)")


def test_info_dict_structure():
    from spikegpu.info import format_info, info
    d = info()
    for key in ("python", "platform", "cuda", "opencl", "auto"):
        assert key in d
    assert set(d["cuda"]) >= {"pycuda", "devices", "error"}
    assert set(d["opencl"]) >= {"pyopencl", "devices", "error"}
    assert set(d["auto"]) >= {"backend", "device", "index", "error"}
    assert d["auto"]["backend"] in ("cuda", "opencl", None)
    if not d["cuda"]["pycuda"]:
        assert d["cuda"]["devices"] == []
        assert "not installed" in d["cuda"]["error"]
    for dev in d["opencl"]["devices"]:
        for key in ("index", "platform_index", "device_index", "platform",
                    "name", "type", "double", "global_memory",
                    "max_work_group_size", "compute_units"):
            assert key in dev
        assert isinstance(dev["double"], bool)
    json.dumps(d)  # plain data only
    text = format_info(d)
    assert "backend='auto' would pick" in text


@pytest.mark.opencl
@needs_opencl
def test_info_lists_pocl_device_with_double():
    from spikegpu.info import info
    d = info()
    assert d["opencl"]["pyopencl"]
    pocl = [dev for dev in d["opencl"]["devices"]
            if "portable computing language" in dev["platform"].lower()
            or "pocl" in dev["platform"].lower()]
    if not pocl:
        pytest.skip("OpenCL devices found, but none is PoCL")
    assert pocl[0]["double"] is True
    assert pocl[0]["global_memory"] > 0
    assert pocl[0]["compute_units"] >= 1
    assert pocl[0]["max_work_group_size"] >= 1
    if not d["cuda"]["devices"]:
        assert d["auto"]["backend"] == "opencl"
        assert d["auto"]["device"]


@pytest.mark.opencl
@needs_opencl
def test_python_m_spikegpu_info():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "OpenCL (PyOpenCL" in out
    assert "Portable Computing Language" in out or "pocl" in out.lower()
    assert "double precision: yes" in out
    assert "backend='auto' would pick:" in out
    assert "CUDA" in out


def test_python_m_spikegpu_default_command_and_json():
    r = _run()  # no subcommand: info
    assert r.returncode == 0, r.stderr
    assert "backend='auto' would pick" in r.stdout
    r = _run("info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"cuda", "opencl", "auto"} <= set(d)
