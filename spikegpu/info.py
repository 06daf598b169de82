"""`python -m spikegpu info`: which GPU backends and devices spikegpu can use.

Never creates a CUDA context unless PyCUDA is installed (then only briefly, on
the primary context, to read the free memory) and works without any device.
"""
import os
import platform
import sys


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return None


def _cuda_info():
    d = {"pycuda": False, "version": None, "driver_version": None,
         "devices": [], "error": None}
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        d["error"] = f"PyCUDA is not installed ({exc.__class__.__name__})"
        return d
    except Exception as exc:  # broken install, missing libcuda.so, ...
        d["error"] = f"PyCUDA cannot be imported: {exc}"
        return d
    d["pycuda"] = True
    d["version"] = _version("pycuda")
    try:
        drv.init()
        v = drv.get_driver_version()
        d["driver_version"] = f"{v // 1000}.{(v % 1000) // 10}"
        n = drv.Device.count()
    except Exception as exc:
        d["error"] = f"CUDA driver: {exc}"
        return d
    for i in range(n):
        try:
            dev = drv.Device(i)
            cc = dev.compute_capability()
            entry = {"index": i, "name": dev.name(),
                     "compute_capability": f"{cc[0]}.{cc[1]}",
                     "total_memory": int(dev.total_memory()),
                     "free_memory": None,
                     "multiprocessors": int(dev.get_attribute(
                         drv.device_attribute.MULTIPROCESSOR_COUNT)),
                     "double": True}
            try:
                ctx = dev.retain_primary_context()
                ctx.push()
                try:
                    free, _total = drv.mem_get_info()
                    entry["free_memory"] = int(free)
                finally:
                    ctx.pop()
            except Exception:
                pass
            d["devices"].append(entry)
        except Exception as exc:
            d["devices"].append({"index": i, "error": str(exc)})
    if not d["devices"]:
        d["error"] = "PyCUDA found no CUDA device"
    return d


def _opencl_info():
    d = {"pyopencl": False, "version": None, "devices": [], "error": None}
    try:
        import pyopencl as cl
    except ImportError as exc:
        d["error"] = f"PyOpenCL is not installed ({exc.__class__.__name__})"
        return d
    except Exception as exc:
        d["error"] = f"PyOpenCL cannot be imported: {exc}"
        return d
    d["pyopencl"] = True
    d["version"] = getattr(cl, "VERSION_TEXT", None) or _version("pyopencl")
    try:
        platforms = cl.get_platforms()
    except Exception as exc:  # e.g. PLATFORM_NOT_FOUND_KHR: no ICD at all
        d["error"] = f"no OpenCL platform found ({exc})"
        platforms = []
    index = 0  # same numbering as spikegpu.backends.opencl.list_devices()
    for pi, p in enumerate(platforms):
        try:
            devs = p.get_devices()
        except Exception:
            continue
        for di, dev in enumerate(devs):
            entry = {"index": index, "platform_index": pi, "device_index": di,
                     "platform": p.name.strip(), "name": dev.name.strip()}
            try:
                entry["type"] = cl.device_type.to_string(dev.type)
            except Exception:
                entry["type"] = str(dev.type)
            try:
                dbl = bool(dev.double_fp_config)
            except Exception:
                dbl = False
            try:
                dbl = dbl or "cl_khr_fp64" in dev.extensions
            except Exception:
                pass
            entry["double"] = dbl
            for key, attr in (("global_memory", "global_mem_size"),
                              ("max_work_group_size", "max_work_group_size"),
                              ("compute_units", "max_compute_units"),
                              ("version", "version"),
                              ("driver_version", "driver_version")):
                try:
                    val = getattr(dev, attr)
                    entry[key] = val.strip() if isinstance(val, str) else int(val)
                except Exception:
                    entry[key] = None
            d["devices"].append(entry)
            index += 1
    if not d["devices"] and d["error"] is None:
        d["error"] = "no OpenCL device found"
    return d


def _auto_choice(cuda, opencl):
    """What set_device('gpu_standalone', backend='auto') would use (mirrors
    spikegpu.backends.get_backend without creating a context)."""
    if cuda["pycuda"] and any("name" in dev for dev in cuda["devices"]):
        idx = int(os.environ.get("SPIKEGPU_CUDA_DEVICE", 0))
        name = next((dev["name"] for dev in cuda["devices"]
                     if dev.get("index") == idx), "?")
        return {"backend": "cuda", "index": idx, "device": f"CUDA / {name}",
                "error": None}
    if not opencl["devices"]:
        return {"backend": None, "index": None, "device": None,
                "error": "no usable device: install PyCUDA (CUDA GPU) or an "
                         "OpenCL driver (pip install 'pyopencl[pocl]')"}
    try:
        from .backends import opencl as ocl
        chosen = ocl.pick_device()
        for pi, di, p, dev in ocl.list_devices():
            if dev == chosen:
                for e in opencl["devices"]:
                    if e["platform_index"] == pi and e["device_index"] == di:
                        return {"backend": "opencl", "index": e["index"],
                                "device": f"{e['platform']} / {e['name']}",
                                "error": None}
        return {"backend": "opencl", "index": None,
                "device": f"{chosen.platform.name.strip()} / {chosen.name.strip()}",
                "error": None}
    except Exception as exc:
        return {"backend": "opencl", "index": None, "device": None,
                "error": str(exc)}


def info():
    """Backends and devices found, as a dict with keys 'python', 'platform',
    'spikegpu', 'brian2', 'numpy', 'cuda', 'opencl' and 'auto'."""
    cuda = _cuda_info()
    opencl = _opencl_info()
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "spikegpu": _version("spikegpu"),
        "brian2": _version("brian2"),
        "numpy": _version("numpy"),
        "cuda": cuda,
        "opencl": opencl,
        "auto": _auto_choice(cuda, opencl),
    }


def _mib(n):
    return "?" if n is None else f"{n / 2**20:,.0f} MiB"


def _yes(b):
    return "yes" if b else "no"


def format_info(d):
    """The dict of info() as readable text."""
    lines = [f"spikegpu {d.get('spikegpu') or '(not installed)'}  "
             f"Python {d['python']}  brian2 {d.get('brian2')}  "
             f"numpy {d.get('numpy')}  ({d['platform']})", ""]
    c = d["cuda"]
    if c["pycuda"]:
        lines.append(f"CUDA (PyCUDA {c['version']}, driver "
                     f"{c['driver_version'] or '?'}):")
    else:
        lines.append("CUDA (PyCUDA): not available")
    for dev in c["devices"]:
        if "error" in dev:
            lines.append(f"  [{dev['index']}] error: {dev['error']}")
            continue
        lines.append(f"  [{dev['index']}] {dev['name']}")
        lines.append(f"      compute capability {dev['compute_capability']}, "
                     f"{dev['multiprocessors']} multiprocessors")
        lines.append(f"      memory: {_mib(dev['total_memory'])} total, "
                     f"{_mib(dev['free_memory'])} free")
        lines.append(f"      double precision: {_yes(dev['double'])}")
    if c["error"]:
        lines.append(f"  {c['error']}")
    lines.append("")
    o = d["opencl"]
    if o["pyopencl"]:
        lines.append(f"OpenCL (PyOpenCL {o['version']}):")
    else:
        lines.append("OpenCL (PyOpenCL): not available")
    for dev in o["devices"]:
        lines.append(f"  [{dev['index']}] {dev['platform']} / {dev['name']}  "
                     f"(PYOPENCL_CTX={dev['platform_index']}:{dev['device_index']})")
        lines.append(f"      type {dev['type']}, {dev['version']}, "
                     f"driver {dev['driver_version']}")
        lines.append(f"      double precision: {_yes(dev['double'])}")
        lines.append(f"      global memory: {_mib(dev['global_memory'])}, "
                     f"max work-group size {dev['max_work_group_size']}, "
                     f"compute units {dev['compute_units']}")
    if o["error"]:
        lines.append(f"  {o['error']}")
    lines.append("")
    a = d["auto"]
    if a["backend"] is None:
        lines.append(f"backend='auto' would pick: nothing ({a['error']})")
    elif a["device"] is None:
        lines.append(f"backend='auto' would pick: {a['backend']}, "
                     f"but no device ({a['error']})")
    else:
        idx = "" if a["index"] is None else f" (device={a['index']})"
        lines.append(f"backend='auto' would pick: {a['backend']}: "
                     f"{a['device']}{idx}")
    return "\n".join(lines)
