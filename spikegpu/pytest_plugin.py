"""A pytest plugin for running Brian2's own test suite on ``gpu_standalone``.

``-p spikegpu.pytest_plugin`` (with or without pytest-xdist's ``-n N``)
registers the device in every process (xdist workers call
``set_device('gpu_standalone')`` by name), and records every test's
outcome for `spikegpu.suite` (in the controlling process, which receives
the workers' reports).  When `spikegpu.suite` sets
``SPIKEGPU_SUITE_KNOWN`` (the file of tests that cannot pass on this device,
with reasons) it deselects those tests, and ``SPIKEGPU_SUITE_SELECT`` (node
id prefixes, comma-separated) keeps only the tests it names; both are
reported by the runner, never silently.
"""
import os
import time

import spikegpu  # noqa: F401  (registers gpu_standalone)

#: one dict per test phase report: phase, test, when, outcome, reason, seconds
RESULTS = []
#: phase name -> {"seconds": wall time, "exit": pytest exit status}
PHASES = {}
_state = {"phase": None, "t0": None}


def reset():
    RESULTS.clear()
    PHASES.clear()


def _phase(config):
    opts = getattr(config, "device_options", None) or {}
    if getattr(config, "device", None) != "gpu_standalone":
        return "other"
    return "multiple_runs" if opts.get("build_on_run", True) is False else "single_run"


def one_line(report):
    """The reason of a failure or skip on one line: the innermost exception
    of a chain (the cause, e.g. a NotImplementedError that Brian2 re-raised
    as BrianObjectException), then the one the test saw if it differs."""
    lr = report.longrepr
    if lr is None:
        return ""
    if isinstance(lr, tuple) and len(lr) == 3:          # skip: (file, line, reason)
        return str(lr[2]).replace("Skipped: ", "", 1).strip()
    messages = []
    chain = getattr(lr, "chain", None)
    if chain:
        messages = [crash.message for _, crash, _ in chain if crash is not None]
    elif getattr(lr, "reprcrash", None) is not None:
        messages = [lr.reprcrash.message]
    if not messages:
        text = str(lr).strip()
        messages = [text.splitlines()[0] if text else ""]

    def first(m):
        lines = [x.strip() for x in str(m).splitlines() if x.strip()]
        return lines[0] if lines else ""
    reason = first(messages[0])
    last = first(messages[-1])
    if len(messages) > 1 and last.split(":")[0] != reason.split(":")[0]:
        reason += f" (raised as {last.split(':')[0]})"
    return reason[:300]


def _known():
    path = os.environ.get("SPIKEGPU_SUITE_KNOWN")
    if not path:
        return {}
    from .suite import read_known
    return read_known(path)


def _is_known(nodeid, known):
    """A known entry names a test function (all its parametrizations) or
    one parametrization."""
    return nodeid in known or nodeid.split("[", 1)[0] in known


def _selected(nodeid, prefixes):
    return any(nodeid.startswith(p) for p in prefixes)


def pytest_collection_modifyitems(config, items):
    known = _known()
    select = [p.strip() for p in os.environ.get("SPIKEGPU_SUITE_SELECT", "").split(",")
              if p.strip()]
    if not known and not select:
        return
    keep, drop = [], []
    for item in items:
        if _is_known(item.nodeid, known) or (select and not _selected(item.nodeid, select)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionstart(session):
    _state["phase"] = _phase(session.config)
    _state["t0"] = time.time()


def pytest_sessionfinish(session, exitstatus):
    if _state["t0"] is not None and not hasattr(session.config, "workerinput"):
        PHASES[_state["phase"]] = {"seconds": round(time.time() - _state["t0"], 1),
                                   "exit": int(exitstatus)}


def _record(report, when):
    if report.passed and when != "call":
        return
    if report.skipped:
        outcome = "skipped"
    elif report.failed:
        outcome = "failed" if when == "call" else "error"
    else:
        outcome = "passed"
    RESULTS.append({"phase": _state["phase"], "test": report.nodeid, "when": when,
                    "outcome": outcome,
                    "reason": one_line(report) if outcome != "passed" else "",
                    "seconds": round(getattr(report, "duration", 0.0), 3)})


def pytest_runtest_logreport(report):
    _record(report, report.when)


def pytest_collectreport(report):
    if report.failed:
        _record(report, "collect")
