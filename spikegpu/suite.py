"""Brian2's own standalone-compatible test suite on ``gpu_standalone``.

``python -m spikegpu suite BACKEND [-n WORKERS]`` (or
``scripts/brian2-suite.sh BACKEND [WORKERS]``) runs it the way Brian2 runs it
for a third-party device: ``brian2.test([], test_codegen_independent=False,
test_standalone='gpu_standalone', build_options={'backend': BACKEND})``,
i.e. the single-run tests, then the multiple-run tests (``build_on_run=False``),
then tests marked for this device; with ``-n N`` in N pytest-xdist workers
(``-p spikegpu.pytest_plugin`` registers the device in each).  A
NotImplementedError counts as a failure (``fail_for_not_implemented=True``):
a missing feature is reported, not skipped.

The tests listed in `KNOWN_FILE` cannot pass on this device for a reason
inherent to it; they are deselected and listed with their reasons in the
summary.  The summary (passed, failed, errors, skipped, each failing test
with a one-line reason) is printed and written as text and JSON.
"""
import datetime
import json
import os
import platform
import re
import sys
import time

KNOWN_FILE = os.path.join(os.path.dirname(__file__), "brian2_suite_known.txt")


def read_known(path=KNOWN_FILE):
    """{test node id (relative to brian2/tests): reason} from the known
    file: ``test_file.py::test_name  |  reason`` per line, ``#`` comments."""
    known = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not line:
                continue
            if "|" not in line:
                raise ValueError(f"{path}:{n}: expected 'test id | reason', got {line!r}")
            test, reason = (x.strip() for x in line.split("|", 1))
            if not reason:
                raise ValueError(f"{path}:{n}: {test} has no reason")
            known[test] = reason
    return known


def read_select(path):
    """Node id prefixes (relative to brian2/tests), one per line, from a
    file such as tests/brian2_suite_ci.txt."""
    with open(path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f
                if line.split("#", 1)[0].strip()]


def check_known(known, tests_dir):
    """Entries of the known file that name no test of this Brian2 version
    (a stale entry is an error, not a silent no-op)."""
    stale = []
    for test in known:
        fname, _, func = test.partition("::")
        func = func.split("[", 1)[0]
        path = os.path.join(tests_dir, fname)
        if not os.path.exists(path):
            stale.append(test)
            continue
        with open(path, encoding="utf-8") as f:
            if not re.search(rf"^def {re.escape(func)}\(", f.read(), re.M):
                stale.append(test)
    return stale


def summarize(results, phases, known, meta):
    """The summary dict from the plugin's records."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    per_phase = {}
    failures, errors, skipped = [], [], []
    key = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped"}
    for r in results:
        k = key[r["outcome"]]
        counts[k] += 1
        per_phase.setdefault(r["phase"], dict.fromkeys(counts, 0))[k] += 1
        entry = {"test": r["test"], "phase": r["phase"], "reason": r["reason"]}
        if r["outcome"] == "failed":
            failures.append(entry)
        elif r["outcome"] == "error":
            errors.append(dict(entry, when=r["when"]))
        elif r["outcome"] == "skipped":
            skipped.append(entry)
    out = dict(meta)
    out.update(counts=counts, phases={p: dict(per_phase.get(p, dict.fromkeys(counts, 0)),
                                              **phases.get(p, {}))
                                      for p in sorted(set(per_phase) | set(phases))},
               failures=failures, errors=errors, skipped=skipped,
               known=[{"test": t, "reason": r} for t, r in sorted(known.items())],
               tests=[{"test": r["test"], "phase": r["phase"], "when": r["when"],
                       "outcome": r["outcome"], "seconds": r["seconds"]} for r in results],
               ok=counts["failed"] == 0 and counts["errors"] == 0 and counts["passed"] > 0)
    return out


def format_summary(s):
    c = s["counts"]
    lines = [
        f"Brian2 {s['brian2']} standalone-compatible suite on gpu_standalone "
        f"(backend={s['backend']}: {s['device']})",
        f"Python {s['python']}, spikegpu {s['spikegpu']}, {s['workers']} worker(s), "
        f"{s['seconds']:.0f} s, {s['date']}",
        f"command: {s['command']}",
    ]
    if s.get("select"):
        lines.append(f"selected: the tests whose node ids start with one of "
                     f"{len(s['select'])} prefixes"
                     + (f" ({', '.join(s['select_files'])})" if s.get("select_files") else
                        f": {', '.join(s['select'])}"))
    lines.append(f"passed {c['passed']}, failed {c['failed']}, errors {c['errors']}, "
                 f"skipped {c['skipped']}, known (deselected) {len(s['known'])}")
    for p, pc in s["phases"].items():
        lines.append(f"  {p}: passed {pc.get('passed', 0)}, failed {pc.get('failed', 0)}, "
                     f"errors {pc.get('errors', 0)}, skipped {pc.get('skipped', 0)}"
                     + (f" ({pc['seconds']:.0f} s)" if "seconds" in pc else ""))
    for title, items in (("FAILED", s["failures"]), ("ERROR", s["errors"]),
                         ("SKIPPED", s["skipped"]), ("KNOWN (deselected)", s["known"])):
        if items:
            lines.append(f"{title}:")
            lines += [f"  {it['test']}: {it['reason']}" for it in items]
    if s.get("stale_known"):
        lines.append("STALE entries in the known file (no such test): "
                     + ", ".join(s["stale_known"]))
    lines.append("OK" if s["ok"] else "NOT OK")
    return "\n".join(lines)


def run_suite(backend="opencl", workers=2, out_dir="build/brian2-suite", long_tests=False,
              select=(), keyword=None, float32=False, known_file=KNOWN_FILE,
              extra_args=(), command=None, select_files=()):
    """Run the suite; write ``<out_dir>/brian2-suite-<backend>-brian<version>
    .{txt,json}``; return the summary dict."""
    import brian2
    import numpy as np

    import spikegpu
    from . import pytest_plugin
    known = read_known(known_file)
    tests_dir = os.path.join(os.path.dirname(brian2.__file__), "tests")
    stale = check_known(known, tests_dir)
    os.environ["SPIKEGPU_SUITE_KNOWN"] = os.path.abspath(known_file)
    os.environ["SPIKEGPU_SUITE_SELECT"] = ",".join(select)
    pytest_plugin.reset()
    args = ["-p", "spikegpu.pytest_plugin", "-p", "no:cacheprovider"]
    parallel = []
    if workers and workers > 1:
        args += ["-n", str(workers)]    # after brian2.test's '-n auto': wins
        parallel = ["gpu_standalone"]
    if keyword:
        args += ["-k", keyword]
    args += list(extra_args)
    device_name = backend
    try:
        from .backends import get_backend
        device_name = get_backend(backend, None).device_name
    except Exception as exc:  # the run reports the failure itself
        device_name = f"{backend} (unavailable: {exc})"
    t0 = time.time()
    brian2.test([], test_codegen_independent=False, test_standalone="gpu_standalone",
                fail_for_not_implemented=True, test_in_parallel=parallel,
                long_tests=long_tests, build_options={"backend": backend},
                float_dtype=np.float32 if float32 else None, additional_args=args)
    seconds = time.time() - t0
    meta = {"backend": backend, "device": device_name, "brian2": brian2.__version__,
            "python": platform.python_version(), "spikegpu": spikegpu.__version__,
            "numpy": np.__version__, "workers": workers or 1,
            "long_tests": long_tests, "float32": float32, "select": list(select),
            "select_files": list(select_files),
            "keyword": keyword, "seconds": round(seconds, 1),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": command or " ".join(sys.argv)}
    summary = summarize(list(pytest_plugin.RESULTS), dict(pytest_plugin.PHASES), known, meta)
    if stale:
        summary["stale_known"] = stale
        summary["ok"] = False
    text = format_summary(summary)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        base = os.path.join(out_dir, f"brian2-suite-{backend}-brian{brian2.__version__}"
                            + ("-float32" if float32 else "")
                            + ("-part" if select or keyword else ""))
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        with open(base + ".txt", "w", encoding="utf-8") as f:
            f.write(text + "\n")
        summary["files"] = [base + ".txt", base + ".json"]
    print("\n" + text)
    if out_dir:
        print(f"summary written to {base}.txt and .json")
    return summary


def main(args):
    """``python -m spikegpu suite`` (argparse namespace from __main__)."""
    summary = run_suite(backend=args.backend, workers=args.workers, out_dir=args.out,
                        long_tests=args.long, select=[s for s in args.select if s],
                        keyword=args.keyword, float32=args.float32,
                        known_file=args.known, extra_args=args.pytest_args,
                        select_files=args.select_file,
                        command="python -m spikegpu suite " + " ".join(args.argv))
    return 0 if summary["ok"] else 1
